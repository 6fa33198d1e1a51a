// Thin helpers over the HDF5 C API shared by the results file and the checkpoints: handles that
// close themselves, errors that carry the file, the HDF5 path and HDF5's own error stack, and
// typed reading and writing of attributes and one-column datasets.
#pragma once

#include <hdf5.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace alignpro::h5 {

// Turns off HDF5's printing of its error stack to stderr; errors become exceptions instead.
// Safe to call many times.
void silence_errors();

// HDF5's current error stack as one line ("what (function); ..."), cleared afterwards.
std::string take_error_stack();

// Throws RuntimeError("FILE: WHAT: <HDF5 error stack>").
[[noreturn]] void fail(const std::string& file, const std::string& what);

// An HDF5 identifier that closes itself, whatever kind of object it names.
class Handle {
 public:
  Handle() = default;
  explicit Handle(hid_t id) : id_(id) {}
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  Handle(Handle&& other) noexcept : id_(other.id_) { other.id_ = H5I_INVALID_HID; }
  Handle& operator=(Handle&& other) noexcept;
  ~Handle() { reset(); }

  hid_t get() const { return id_; }
  operator hid_t() const { return id_; }  // NOLINT: handles are passed straight to the C API
  bool valid() const { return id_ >= 0; }
  // Closes now; returns false when HDF5 reported a failure while closing (a failed flush).
  bool reset();

 private:
  hid_t id_ = H5I_INVALID_HID;
};

// Checks an id returned by HDF5 and wraps it; throws with the file and what was attempted.
Handle checked(hid_t id, const std::string& file, const std::string& what);
void check(herr_t status, const std::string& file, const std::string& what);

// Variable-length UTF-8 string type (what h5py reads as str).
Handle utf8_type();

// Replaces invalid UTF-8 and NUL bytes with U+FFFD, so every stored text decodes in h5py.
std::string sanitize_utf8(std::string_view text);

bool has_attribute(hid_t object, const std::string& name);
// Creates or overwrites a scalar attribute.
void write_attribute(hid_t object, const std::string& name, int64_t value, const std::string& file);
void write_attribute(hid_t object, const std::string& name, double value, const std::string& file);
void write_attribute(hid_t object, const std::string& name, const std::string& value,
                     const std::string& file);
void write_attribute(hid_t object, const std::string& name, const std::vector<std::string>& value,
                     const std::string& file);
void write_attribute(hid_t object, const std::string& name, const std::vector<int64_t>& value,
                     const std::string& file);
// A fixed-length string attribute of `size` bytes (NUL-padded, longer values cut at a character
// boundary). Its value lives in the attribute itself rather than in HDF5's global heap, so a
// write that fails half-way (a full disk) cannot leave it pointing at bytes that never arrived.
void write_fixed_string_attribute(hid_t object, const std::string& name, const std::string& value,
                                  size_t size, const std::string& file);
// Read attributes; nullopt when missing or of another type class. Strings may be of variable
// or fixed length.
std::optional<int64_t> read_int_attribute(hid_t object, const std::string& name);
std::optional<double> read_real_attribute(hid_t object, const std::string& name);
std::optional<std::string> read_string_attribute(hid_t object, const std::string& name);
std::optional<std::vector<std::string>> read_string_list_attribute(hid_t object,
                                                                   const std::string& name);
std::optional<std::vector<int64_t>> read_int_list_attribute(hid_t object, const std::string& name);

// The value types of a column.
enum class ColumnType { kInt64, kUInt64, kFloat64, kString };
using ColumnData = std::variant<std::vector<int64_t>, std::vector<uint64_t>, std::vector<double>,
                                std::vector<std::string>>;
ColumnData empty_column(ColumnType type);
size_t column_size(const ColumnData& data);

// A one-dimensional dataset that grows: chunked, deflate-compressed, unlimited length.
void create_column(hid_t group, const std::string& name, ColumnType type, hsize_t chunk_rows,
                   const std::string& file, const std::string& where);
// Number of rows currently allocated (may exceed the committed rows of a running file).
hsize_t column_length(hid_t dataset, const std::string& file, const std::string& where);
// Writes rows [first, first + size) and grows the dataset to first + size if needed.
void write_column(hid_t dataset, hsize_t first, const ColumnData& data, const std::string& file,
                  const std::string& where);
// Reads rows [first, first + count).
ColumnData read_column(hid_t dataset, ColumnType type, hsize_t first, hsize_t count,
                       const std::string& file, const std::string& where);
// Shrinks (or grows) the dataset to exactly `rows` rows.
void resize_column(hid_t dataset, hsize_t rows, const std::string& file, const std::string& where);

// File-access property list with the newest file format (needed for SWMR).
Handle latest_format_access(const std::string& file);

}  // namespace alignpro::h5
