#include "io/hdf5_util.h"

#include <algorithm>
#include <mutex>

#include "common/error.h"

namespace alignpro::h5 {

namespace {

constexpr unsigned kDeflateLevel = 4;
// Enough of the error stack to name the cause (for example the errno of a failed write)
// without burying the message.
constexpr size_t kMaxStackChars = 1200;

herr_t collect_error(unsigned n, const H5E_error2_t* error, void* data) {
  auto* out = static_cast<std::string*>(data);
  if (out->size() > kMaxStackChars) return 0;
  if (!out->empty()) out->append("; ");
  out->append(error->desc ? error->desc : "unknown error");
  if (error->func_name) out->append(" (").append(error->func_name).append(")");
  return 0;
}

hid_t file_type_of(ColumnType type) {
  switch (type) {
    case ColumnType::kInt64:
      return H5T_STD_I64LE;
    case ColumnType::kUInt64:
      return H5T_STD_U64LE;
    case ColumnType::kFloat64:
      return H5T_IEEE_F64LE;
    case ColumnType::kString:
      break;
  }
  return H5I_INVALID_HID;
}

hid_t memory_type_of(ColumnType type) {
  switch (type) {
    case ColumnType::kInt64:
      return H5T_NATIVE_INT64;
    case ColumnType::kUInt64:
      return H5T_NATIVE_UINT64;
    case ColumnType::kFloat64:
      return H5T_NATIVE_DOUBLE;
    case ColumnType::kString:
      break;
  }
  return H5I_INVALID_HID;
}

// Appends the UTF-8 encoding of U+FFFD, the replacement character.
void append_replacement(std::string& out) {
  out.append("\xEF\xBF\xBD");
}

// Length of the valid UTF-8 sequence starting at text[i], or 0 when it is not valid.
size_t utf8_sequence_length(std::string_view text, size_t i) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char c = byte(i);
  size_t length = 0;
  uint32_t code = 0;
  if (c < 0x80) return c == 0 ? 0 : 1;
  if ((c & 0xE0) == 0xC0) {
    length = 2;
    code = c & 0x1F;
  } else if ((c & 0xF0) == 0xE0) {
    length = 3;
    code = c & 0x0F;
  } else if ((c & 0xF8) == 0xF0) {
    length = 4;
    code = c & 0x07;
  } else {
    return 0;
  }
  if (i + length > text.size()) return 0;
  for (size_t k = 1; k < length; ++k) {
    if ((byte(i + k) & 0xC0) != 0x80) return 0;
    code = (code << 6) | (byte(i + k) & 0x3F);
  }
  // Overlong encodings, surrogates and code points past U+10FFFF are not valid UTF-8.
  static const uint32_t kMinimum[] = {0, 0, 0x80, 0x800, 0x10000};
  if (code < kMinimum[length] || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF)) return 0;
  return length;
}

Handle select_rows(hid_t dataset, hsize_t first, hsize_t count, const std::string& file,
                   const std::string& where) {
  Handle space = checked(H5Dget_space(dataset), file, "cannot get the dataspace of " + where);
  check(H5Sselect_hyperslab(space, H5S_SELECT_SET, &first, nullptr, &count, nullptr), file,
        "cannot select rows of " + where);
  return space;
}

}  // namespace

void silence_errors() {
  static std::once_flag once;
  std::call_once(once, [] { H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr); });
}

std::string take_error_stack() {
  std::string out;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, collect_error, &out);
  H5Eclear2(H5E_DEFAULT);
  return out.empty() ? std::string("no HDF5 error details") : out;
}

void fail(const std::string& file, const std::string& what) {
  throw RuntimeError(file + ": " + what + ": " + take_error_stack());
}

Handle& Handle::operator=(Handle&& other) noexcept {
  if (this != &other) {
    reset();
    id_ = other.id_;
    other.id_ = H5I_INVALID_HID;
  }
  return *this;
}

bool Handle::reset() {
  if (id_ < 0) return true;
  herr_t status = 0;
  if (H5Iis_valid(id_) > 0) {
    switch (H5Iget_type(id_)) {
      case H5I_FILE:
        status = H5Fclose(id_);
        break;
      case H5I_GROUP:
        status = H5Gclose(id_);
        break;
      case H5I_DATASET:
        status = H5Dclose(id_);
        break;
      case H5I_DATATYPE:
        status = H5Tclose(id_);
        break;
      case H5I_DATASPACE:
        status = H5Sclose(id_);
        break;
      case H5I_ATTR:
        status = H5Aclose(id_);
        break;
      case H5I_GENPROP_LST:
        status = H5Pclose(id_);
        break;
      default:
        status = H5Idec_ref(id_) < 0 ? -1 : 0;
        break;
    }
  }
  id_ = H5I_INVALID_HID;
  return status >= 0;
}

Handle checked(hid_t id, const std::string& file, const std::string& what) {
  if (id < 0) fail(file, what);
  return Handle(id);
}

void check(herr_t status, const std::string& file, const std::string& what) {
  if (status < 0) fail(file, what);
}

Handle utf8_type() {
  Handle type(H5Tcopy(H5T_C_S1));
  H5Tset_size(type, H5T_VARIABLE);
  H5Tset_cset(type, H5T_CSET_UTF8);
  return type;
}

std::string sanitize_utf8(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    const size_t length = utf8_sequence_length(text, i);
    if (length == 0) {
      append_replacement(out);
      ++i;
    } else {
      out.append(text.substr(i, length));
      i += length;
    }
  }
  return out;
}

bool has_attribute(hid_t object, const std::string& name) {
  return H5Aexists(object, name.c_str()) > 0;
}

namespace {

// Opens the attribute, or creates it with the given type and dataspace.
Handle open_or_create_attribute(hid_t object, const std::string& name, hid_t type, hid_t space,
                                const std::string& file) {
  if (has_attribute(object, name)) {
    Handle existing(H5Aopen(object, name.c_str(), H5P_DEFAULT));
    Handle existing_space(H5Aget_space(existing));
    const bool same_shape =
        existing.valid() && existing_space.valid() &&
        H5Sget_simple_extent_npoints(existing_space) == H5Sget_simple_extent_npoints(space) &&
        H5Sget_simple_extent_type(existing_space) == H5Sget_simple_extent_type(space);
    if (same_shape) return existing;
    existing.reset();
    check(H5Adelete(object, name.c_str()), file, "cannot replace attribute '" + name + "'");
  }
  return checked(H5Acreate2(object, name.c_str(), type, space, H5P_DEFAULT, H5P_DEFAULT), file,
                 "cannot create attribute '" + name + "'");
}

void write_scalar(hid_t object, const std::string& name, hid_t file_type, hid_t memory_type,
                  const void* value, const std::string& file) {
  Handle space(H5Screate(H5S_SCALAR));
  Handle attribute = open_or_create_attribute(object, name, file_type, space, file);
  check(H5Awrite(attribute, memory_type, value), file, "cannot write attribute '" + name + "'");
}

template <class T>
std::optional<T> read_numeric(hid_t object, const std::string& name, H5T_class_t type_class,
                              hid_t memory_type) {
  if (!has_attribute(object, name)) return std::nullopt;
  Handle attribute(H5Aopen(object, name.c_str(), H5P_DEFAULT));
  if (!attribute.valid()) return std::nullopt;
  Handle type(H5Aget_type(attribute));
  Handle space(H5Aget_space(attribute));
  if (!type.valid() || H5Tget_class(type) != type_class) return std::nullopt;
  if (H5Sget_simple_extent_npoints(space) != 1) return std::nullopt;
  T value{};
  if (H5Aread(attribute, memory_type, &value) < 0) return std::nullopt;
  return value;
}

}  // namespace

void write_attribute(hid_t object, const std::string& name, int64_t value,
                     const std::string& file) {
  write_scalar(object, name, H5T_STD_I64LE, H5T_NATIVE_INT64, &value, file);
}

void write_attribute(hid_t object, const std::string& name, double value, const std::string& file) {
  write_scalar(object, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &value, file);
}

void write_attribute(hid_t object, const std::string& name, const std::string& value,
                     const std::string& file) {
  const std::string clean = sanitize_utf8(value);
  const char* pointer = clean.c_str();
  Handle type = utf8_type();
  write_scalar(object, name, type, type, &pointer, file);
}

void write_attribute(hid_t object, const std::string& name, const std::vector<std::string>& value,
                     const std::string& file) {
  std::vector<std::string> clean;
  std::vector<const char*> pointers;
  clean.reserve(value.size());
  for (const auto& text : value) clean.push_back(sanitize_utf8(text));
  for (const auto& text : clean) pointers.push_back(text.c_str());
  const hsize_t size = value.size();
  Handle type = utf8_type();
  Handle space(H5Screate_simple(1, &size, nullptr));
  Handle attribute = open_or_create_attribute(object, name, type, space, file);
  check(H5Awrite(attribute, type, pointers.data()), file, "cannot write attribute '" + name + "'");
}

void write_attribute(hid_t object, const std::string& name, const std::vector<int64_t>& value,
                     const std::string& file) {
  const hsize_t size = value.size();
  Handle space(H5Screate_simple(1, &size, nullptr));
  Handle attribute = open_or_create_attribute(object, name, H5T_STD_I64LE, space, file);
  check(H5Awrite(attribute, H5T_NATIVE_INT64, value.data()), file,
        "cannot write attribute '" + name + "'");
}

void write_fixed_string_attribute(hid_t object, const std::string& name, const std::string& value,
                                  size_t size, const std::string& file) {
  std::string clean = sanitize_utf8(value);
  if (clean.size() > size) {
    size_t cut = size;
    while (cut > 0 && (static_cast<unsigned char>(clean[cut]) & 0xC0) == 0x80) --cut;
    clean.resize(cut);
  }
  clean.resize(size, '\0');
  Handle type(H5Tcopy(H5T_C_S1));
  H5Tset_size(type, size);
  H5Tset_strpad(type, H5T_STR_NULLPAD);
  H5Tset_cset(type, H5T_CSET_UTF8);
  write_scalar(object, name, type, type, clean.data(), file);
}

std::optional<int64_t> read_int_attribute(hid_t object, const std::string& name) {
  return read_numeric<int64_t>(object, name, H5T_INTEGER, H5T_NATIVE_INT64);
}

std::optional<double> read_real_attribute(hid_t object, const std::string& name) {
  return read_numeric<double>(object, name, H5T_FLOAT, H5T_NATIVE_DOUBLE);
}

std::optional<std::vector<std::string>> read_string_list_attribute(hid_t object,
                                                                   const std::string& name) {
  if (!has_attribute(object, name)) return std::nullopt;
  Handle attribute(H5Aopen(object, name.c_str(), H5P_DEFAULT));
  if (!attribute.valid()) return std::nullopt;
  Handle type(H5Aget_type(attribute));
  if (!type.valid() || H5Tget_class(type) != H5T_STRING) return std::nullopt;
  Handle space(H5Aget_space(attribute));
  const hssize_t count = H5Sget_simple_extent_npoints(space);
  if (count < 0) return std::nullopt;
  if (H5Tis_variable_str(type) <= 0) {
    const size_t size = H5Tget_size(type);
    std::string buffer(size * static_cast<size_t>(count), '\0');
    if (count > 0 && H5Aread(attribute, type, buffer.data()) < 0) return std::nullopt;
    std::vector<std::string> out;
    for (hssize_t i = 0; i < count; ++i) {
      std::string value = buffer.substr(static_cast<size_t>(i) * size, size);
      value.resize(std::min(value.size(), value.find('\0')));
      out.push_back(value);
    }
    return out;
  }
  std::vector<char*> pointers(static_cast<size_t>(count), nullptr);
  // Read with the stored type itself: HDF5 does not convert between character sets.
  Handle memory_type(H5Tget_native_type(type, H5T_DIR_DEFAULT));
  if (count > 0 && H5Aread(attribute, memory_type, pointers.data()) < 0) return std::nullopt;
  std::vector<std::string> out;
  for (char* p : pointers) out.emplace_back(p ? p : "");
  if (count > 0) H5Dvlen_reclaim(memory_type, space, H5P_DEFAULT, pointers.data());
  return out;
}

std::optional<std::string> read_string_attribute(hid_t object, const std::string& name) {
  auto list = read_string_list_attribute(object, name);
  if (!list || list->size() != 1) return std::nullopt;
  return list->front();
}

std::optional<std::vector<int64_t>> read_int_list_attribute(hid_t object, const std::string& name) {
  if (!has_attribute(object, name)) return std::nullopt;
  Handle attribute(H5Aopen(object, name.c_str(), H5P_DEFAULT));
  if (!attribute.valid()) return std::nullopt;
  Handle type(H5Aget_type(attribute));
  if (!type.valid() || H5Tget_class(type) != H5T_INTEGER) return std::nullopt;
  Handle space(H5Aget_space(attribute));
  const hssize_t count = H5Sget_simple_extent_npoints(space);
  if (count < 0) return std::nullopt;
  std::vector<int64_t> out(static_cast<size_t>(count));
  if (count > 0 && H5Aread(attribute, H5T_NATIVE_INT64, out.data()) < 0) return std::nullopt;
  return out;
}

ColumnData empty_column(ColumnType type) {
  switch (type) {
    case ColumnType::kInt64:
      return std::vector<int64_t>{};
    case ColumnType::kUInt64:
      return std::vector<uint64_t>{};
    case ColumnType::kFloat64:
      return std::vector<double>{};
    case ColumnType::kString:
      break;
  }
  return std::vector<std::string>{};
}

size_t column_size(const ColumnData& data) {
  return std::visit([](const auto& values) { return values.size(); }, data);
}

void create_column(hid_t group, const std::string& name, ColumnType type, hsize_t chunk_rows,
                   const std::string& file, const std::string& where) {
  const hsize_t initial = 0;
  const hsize_t maximum = H5S_UNLIMITED;
  Handle space = checked(H5Screate_simple(1, &initial, &maximum), file, "dataspace for " + where);
  Handle create = checked(H5Pcreate(H5P_DATASET_CREATE), file, "properties for " + where);
  check(H5Pset_chunk(create, 1, &chunk_rows), file, "cannot chunk " + where);
  // Byte shuffling groups the similar high bytes of numbers, which deflate then packs well.
  if (type != ColumnType::kString) check(H5Pset_shuffle(create), file, "shuffle for " + where);
  check(H5Pset_deflate(create, kDeflateLevel), file, "cannot compress " + where);
  Handle string_type = utf8_type();
  const hid_t stored = type == ColumnType::kString ? string_type.get() : file_type_of(type);
  checked(H5Dcreate2(group, name.c_str(), stored, space, H5P_DEFAULT, create, H5P_DEFAULT), file,
          "cannot create dataset " + where);
}

hsize_t column_length(hid_t dataset, const std::string& file, const std::string& where) {
  Handle space = checked(H5Dget_space(dataset), file, "cannot get the dataspace of " + where);
  if (H5Sget_simple_extent_ndims(space) != 1) {
    throw RuntimeError(file + ": " + where + " is not one-dimensional");
  }
  hsize_t length = 0;
  check(H5Sget_simple_extent_dims(space, &length, nullptr), file, "cannot size " + where);
  return length;
}

void write_column(hid_t dataset, hsize_t first, const ColumnData& data, const std::string& file,
                  const std::string& where) {
  const hsize_t count = column_size(data);
  if (count == 0) return;
  if (column_length(dataset, file, where) < first + count) {
    const hsize_t length = first + count;
    check(H5Dset_extent(dataset, &length), file, "cannot grow " + where);
  }
  Handle file_space = select_rows(dataset, first, count, file, where);
  Handle memory_space = checked(H5Screate_simple(1, &count, nullptr), file, "memory space");
  const std::string what = "cannot write rows " + std::to_string(first) + ".." +
                           std::to_string(first + count - 1) + " of " + where;
  if (const auto* texts = std::get_if<std::vector<std::string>>(&data)) {
    std::vector<std::string> clean;
    std::vector<const char*> pointers;
    clean.reserve(texts->size());
    for (const auto& text : *texts) clean.push_back(sanitize_utf8(text));
    for (const auto& text : clean) pointers.push_back(text.c_str());
    Handle type = utf8_type();
    check(H5Dwrite(dataset, type, memory_space, file_space, H5P_DEFAULT, pointers.data()), file,
          what);
    return;
  }
  std::visit(
      [&](const auto& values) {
        using T = typename std::decay_t<decltype(values)>::value_type;
        if constexpr (!std::is_same_v<T, std::string>) {
          hid_t memory_type = std::is_same_v<T, int64_t>    ? H5T_NATIVE_INT64
                              : std::is_same_v<T, uint64_t> ? H5T_NATIVE_UINT64
                                                            : H5T_NATIVE_DOUBLE;
          check(
              H5Dwrite(dataset, memory_type, memory_space, file_space, H5P_DEFAULT, values.data()),
              file, what);
        }
      },
      data);
}

ColumnData read_column(hid_t dataset, ColumnType type, hsize_t first, hsize_t count,
                       const std::string& file, const std::string& where) {
  ColumnData out = empty_column(type);
  if (count == 0) return out;
  Handle file_space = select_rows(dataset, first, count, file, where);
  Handle memory_space = checked(H5Screate_simple(1, &count, nullptr), file, "memory space");
  const std::string what = "cannot read rows " + std::to_string(first) + ".." +
                           std::to_string(first + count - 1) + " of " + where;
  if (type == ColumnType::kString) {
    Handle stored = checked(H5Dget_type(dataset), file, "cannot get the type of " + where);
    Handle memory_type(H5Tget_native_type(stored, H5T_DIR_DEFAULT));
    std::vector<char*> pointers(count, nullptr);
    check(H5Dread(dataset, memory_type, memory_space, file_space, H5P_DEFAULT, pointers.data()),
          file, what);
    auto& texts = std::get<std::vector<std::string>>(out);
    texts.reserve(count);
    for (char* p : pointers) texts.emplace_back(p ? p : "");
    H5Dvlen_reclaim(memory_type, memory_space, H5P_DEFAULT, pointers.data());
    return out;
  }
  std::visit(
      [&](auto& values) {
        using T = typename std::decay_t<decltype(values)>::value_type;
        if constexpr (!std::is_same_v<T, std::string>) {
          values.resize(count);
          check(H5Dread(dataset, memory_type_of(type), memory_space, file_space, H5P_DEFAULT,
                        values.data()),
                file, what);
        }
      },
      out);
  return out;
}

void resize_column(hid_t dataset, hsize_t rows, const std::string& file, const std::string& where) {
  check(H5Dset_extent(dataset, &rows), file,
        "cannot resize " + where + " to " + std::to_string(rows) + " rows");
}

Handle latest_format_access(const std::string& file) {
  Handle access = checked(H5Pcreate(H5P_FILE_ACCESS), file, "file-access properties");
  check(H5Pset_libver_bounds(access, H5F_LIBVER_LATEST, H5F_LIBVER_LATEST), file,
        "cannot select the newest file format");
  return access;
}

}  // namespace alignpro::h5
