#include "demo/supervised_data.h"

#include <nlohmann/json.hpp>

#include <fstream>
#include <functional>

#include "align/utf8.h"
#include "common/error.h"

namespace alignpro::demo {

namespace {

using Json = nlohmann::json;

std::string where(const std::string& path, int64_t line) {
  return path + ":" + std::to_string(line);
}

std::string short_text(const std::string& text) {
  return text.size() <= 60 ? text : text.substr(0, 57) + "...";
}

void check_utf8(const std::string& text, const std::string& path, int64_t line,
                const std::string& what) {
  const size_t bad = utf8_error_offset(text);
  if (bad != std::string::npos) {
    throw InputError(where(path, line) + ": " + what + " is not valid UTF-8 (malformed byte at " +
                     "offset " + std::to_string(bad) + ")");
  }
}

// Calls visit(text, line) for every line that is not blank.
void for_each_line(const std::string& path,
                   const std::function<void(const std::string&, int64_t)>& visit) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(path + ": cannot open the data file");
  std::string text;
  int64_t line = 0;
  while (std::getline(in, text)) {
    ++line;
    if (!text.empty() && text.back() == '\r') text.pop_back();
    if (text.find_first_not_of(" \t") == std::string::npos) continue;
    visit(text, line);
  }
  if (in.bad()) throw InputError(path + ": read failed after line " + std::to_string(line));
}

Json parse_object(const std::string& text, const std::string& path, int64_t line) {
  check_utf8(text, path, line, "the line");
  Json object;
  try {
    object = Json::parse(text);
  } catch (const Json::parse_error& e) {
    throw InputError(where(path, line) + ": not valid JSON (" + e.what() + ")");
  }
  if (!object.is_object()) {
    throw InputError(where(path, line) + ": expected a JSON object, found " +
                     short_text(object.dump()));
  }
  return object;
}

std::string keys_of(const Json& object) {
  std::string keys;
  for (const auto& item : object.items()) keys += (keys.empty() ? "" : ", ") + item.key();
  return keys.empty() ? "none" : keys;
}

// The string field `key`, or an error naming the line, the key and what was found.
std::string string_field(const Json& object, const std::string& key, const std::string& path,
                         int64_t line, const std::string& expected) {
  const auto it = object.find(key);
  if (it == object.end()) {
    throw InputError(where(path, line) + ": no \"" + key + "\" field; expected " + expected +
                     " (keys found: " + keys_of(object) + ")");
  }
  if (!it->is_string()) {
    throw InputError(where(path, line) + ": field \"" + key + "\" must be a string, found " +
                     short_text(it->dump()));
  }
  return it->get<std::string>();
}

bool is_jsonl(const std::string& path, const std::string& format) {
  if (format == "jsonl") return true;
  if (format == "text") return false;
  if (format != "auto") {
    throw InputError("data format \"" + format + "\" is not one of: auto, jsonl, text");
  }
  auto ends_with = [&](const std::string& suffix) {
    return path.size() >= suffix.size() &&
           path.compare(path.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  return ends_with(".jsonl") || ends_with(".json");
}

}  // namespace

std::vector<SftRecord> read_sft_data(const std::string& path, const std::string& format) {
  const bool jsonl = is_jsonl(path, format);
  const std::string expected = "{\"prompt\": string, \"completion\": string} or {\"text\": string}";
  std::vector<SftRecord> records;
  for_each_line(path, [&](const std::string& text, int64_t line) {
    SftRecord record;
    record.line = line;
    if (!jsonl) {
      check_utf8(text, path, line, "the line");
      record.completion = text;
      record.plain_text = true;
    } else {
      const Json object = parse_object(text, path, line);
      if (object.contains("text") && !object.contains("completion")) {
        record.completion = string_field(object, "text", path, line, expected);
        record.plain_text = true;
      } else {
        record.prompt = string_field(object, "prompt", path, line, expected);
        record.completion = string_field(object, "completion", path, line, expected);
      }
      if (record.plain_text && record.completion.empty()) {
        throw InputError(where(path, line) + ": field \"text\" is empty");
      }
    }
    records.push_back(std::move(record));
  });
  if (records.empty()) {
    throw InputError(path + ": holds no training examples (expected " +
                     (jsonl ? expected + " per line" : std::string("one text per line")) + ")");
  }
  return records;
}

std::vector<PreferenceRecord> read_preference_data(const std::string& path) {
  const std::string expected = "{\"prompt\": string, \"chosen\": string, \"rejected\": string}";
  std::vector<PreferenceRecord> records;
  for_each_line(path, [&](const std::string& text, int64_t line) {
    const Json object = parse_object(text, path, line);
    PreferenceRecord record;
    record.line = line;
    record.prompt = string_field(object, "prompt", path, line, expected);
    record.chosen = string_field(object, "chosen", path, line, expected);
    record.rejected = string_field(object, "rejected", path, line, expected);
    for (const auto* field : {"chosen", "rejected"}) {
      if (object.at(field).get_ref<const std::string&>().empty()) {
        throw InputError(where(path, line) + ": field \"" + field + "\" is empty");
      }
    }
    records.push_back(std::move(record));
  });
  if (records.empty()) {
    throw InputError(path + ": holds no preference pairs (expected " + expected + " per line)");
  }
  return records;
}

}  // namespace alignpro::demo
