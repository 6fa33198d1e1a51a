#include "text/json_fields.h"

#include <fstream>
#include <sstream>

#include "common/error.h"

namespace alignpro::text {
namespace {

const char* type_name(const Json& value) {
  if (value.is_null()) return "null";
  if (value.is_boolean()) return "a boolean";
  if (value.is_number()) return "a number";
  if (value.is_string()) return "a string";
  if (value.is_array()) return "an array";
  return "an object";
}

[[noreturn]] void wrong_type(const Json& value, const char* expected, const JsonPath& at) {
  at.fail("expected " + std::string(expected) + ", found " + type_name(value) + " " +
          describe(value));
}

}  // namespace

std::string JsonPath::where() const {
  return field_.empty() ? file_ : file_ + ": field " + field_;
}

void JsonPath::fail(const std::string& what) const {
  throw InputError(where() + ": " + what);
}

std::string describe(const Json& value) {
  constexpr size_t kMaxLength = 80;
  std::string text = value.dump(-1, ' ', false, Json::error_handler_t::replace);
  if (text.size() > kMaxLength) text = text.substr(0, kMaxLength) + "...";
  return text;
}

Json read_json_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(path + ": cannot open the file");
  std::ostringstream content;
  content << in.rdbuf();
  if (in.bad()) throw InputError(path + ": cannot read the file");
  try {
    return Json::parse(content.str());
  } catch (const Json::parse_error& e) {
    throw InputError(path + ": invalid JSON at byte " + std::to_string(e.byte) + ": " + e.what());
  }
}

const Json* find_field(const Json& object, const std::string& key, const JsonPath& at) {
  if (!object.is_object()) wrong_type(object, "an object", at);
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return nullptr;
  return &*it;
}

const Json& require_field(const Json& object, const std::string& key, const JsonPath& at) {
  const Json* value = find_field(object, key, at);
  if (value == nullptr) (at / key).fail("missing; it is required here");
  return *value;
}

std::string string_field(const Json& object, const std::string& key, const JsonPath& at,
                         std::optional<std::string> fallback) {
  const Json* value = find_field(object, key, at);
  if (value == nullptr) {
    if (!fallback) (at / key).fail("missing; expected a string");
    return *fallback;
  }
  if (!value->is_string()) wrong_type(*value, "a string", at / key);
  return value->get<std::string>();
}

std::optional<std::string> optional_string_field(const Json& object, const std::string& key,
                                                 const JsonPath& at) {
  const Json* value = find_field(object, key, at);
  if (value == nullptr) return std::nullopt;
  if (!value->is_string()) wrong_type(*value, "a string or null", at / key);
  return value->get<std::string>();
}

bool bool_field(const Json& object, const std::string& key, const JsonPath& at,
                std::optional<bool> fallback) {
  const Json* value = find_field(object, key, at);
  if (value == nullptr) {
    if (!fallback) (at / key).fail("missing; expected true or false");
    return *fallback;
  }
  if (!value->is_boolean()) wrong_type(*value, "true or false", at / key);
  return value->get<bool>();
}

int64_t int_field(const Json& object, const std::string& key, const JsonPath& at,
                  std::optional<int64_t> fallback) {
  const Json* value = find_field(object, key, at);
  if (value == nullptr) {
    if (!fallback) (at / key).fail("missing; expected an integer");
    return *fallback;
  }
  if (!value->is_number_integer()) wrong_type(*value, "an integer", at / key);
  if (value->is_number_unsigned() && value->get<uint64_t>() > INT64_MAX) {
    (at / key).fail("the integer " + describe(*value) + " is too large");
  }
  return value->get<int64_t>();
}

int64_t token_id_value(const Json& value, const JsonPath& at) {
  constexpr int64_t kMaxId = (int64_t{1} << 31) - 1;
  if (!value.is_number_integer()) wrong_type(value, "a token id (an integer)", at);
  if (value.is_number_unsigned() ? value.get<uint64_t>() > uint64_t{kMaxId}
                                 : (value.get<int64_t>() < 0 || value.get<int64_t>() > kMaxId)) {
    at.fail("the token id " + describe(value) + " is outside [0, " + std::to_string(kMaxId) + "]");
  }
  return value.get<int64_t>();
}

void check_nesting(int depth, const JsonPath& at) {
  if (depth > kMaxNesting) {
    at.fail("components nest more than " + std::to_string(kMaxNesting) + " levels deep");
  }
}

std::string type_field(const Json& object, const JsonPath& at) {
  return string_field(object, "type", at);
}

void unsupported(const JsonPath& at, const std::string& value, const std::string& supported) {
  throw InputError(at.where() + " is " + value +
                   ", which alignpro does not support; supported: " + supported);
}

}  // namespace alignpro::text
