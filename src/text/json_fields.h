// Checked access to the fields of a tokenizer's JSON files. Every error names the file, the
// field (as a path such as pre_tokenizer.pretokenizers[1].pattern), the value found and what
// was expected, since these files come from outside and may be wrong.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>

namespace alignpro::text {

using Json = nlohmann::json;

// Where a JSON value sits: a file and a field path inside it.
class JsonPath {
 public:
  explicit JsonPath(std::string file, std::string field = "")
      : file_(std::move(file)), field_(std::move(field)) {}
  JsonPath operator/(const std::string& key) const {
    return JsonPath(file_, field_.empty() ? key : field_ + "." + key);
  }
  JsonPath operator[](size_t index) const {
    return JsonPath(file_, field_ + "[" + std::to_string(index) + "]");
  }
  const std::string& file() const { return file_; }
  // "FILE: field F" (or just "FILE" at the top).
  std::string where() const;
  // Throws InputError "FILE: field F: what".
  [[noreturn]] void fail(const std::string& what) const;

 private:
  std::string file_;
  std::string field_;
};

// A short rendering of a JSON value for error messages (long values are cut).
std::string describe(const Json& value);

// Parses a whole file; a missing file or malformed JSON is an InputError with the byte position.
Json read_json_file(const std::string& path);

// The field `key` of object `object`, or nullptr when it is absent or null. Throws when
// `object` is not an object.
const Json* find_field(const Json& object, const std::string& key, const JsonPath& at);
// Like find_field, but a missing or null field is an error.
const Json& require_field(const Json& object, const std::string& key, const JsonPath& at);

// Typed fields; `fallback` is used when the field is absent or null (without one, that is an
// error). A value of another type is always an error.
std::string string_field(const Json& object, const std::string& key, const JsonPath& at,
                         std::optional<std::string> fallback = std::nullopt);
std::optional<std::string> optional_string_field(const Json& object, const std::string& key,
                                                 const JsonPath& at);
bool bool_field(const Json& object, const std::string& key, const JsonPath& at,
                std::optional<bool> fallback = std::nullopt);
int64_t int_field(const Json& object, const std::string& key, const JsonPath& at,
                  std::optional<int64_t> fallback = std::nullopt);
// A token id: an integer in [0, 2^31).
int64_t token_id_value(const Json& value, const JsonPath& at);

// Sequences of components nest; deeper than this is refused rather than recursed into.
constexpr int kMaxNesting = 16;
// Throws InputError when depth exceeds kMaxNesting.
void check_nesting(int depth, const JsonPath& at);

// The "type" of a component object such as a normalizer or a decoder.
std::string type_field(const Json& object, const JsonPath& at);
// Throws InputError: "FILE: field F is VALUE, which alignpro does not support; supported: LIST".
[[noreturn]] void unsupported(const JsonPath& at, const std::string& value,
                              const std::string& supported);

}  // namespace alignpro::text
