#include "align/dataset.h"

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <numeric>
#include <optional>
#include <utility>

#include "align/utf8.h"
#include "common/error.h"
#include "common/rng.h"

namespace alignpro {

namespace {

const char kHumanMarker[] = "\n\nHuman:";
const char kAssistantMarker[] = "\n\nAssistant:";

bool ends_with(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() &&
         text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

bool is_blank(const std::string& line) {
  return line.find_first_not_of(" \t\r\n") == std::string::npos;
}

[[noreturn]] void bad_line(const std::string& path, int64_t line_number, const std::string& what) {
  throw InputError(path + ":" + std::to_string(line_number) + ": " + what);
}

// The prompt of one JSONL line: the named string field, optionally cut as HH-RLHF.
std::string jsonl_prompt(const std::string& line, const std::string& path, int64_t line_number,
                         const DatasetOptions& options) {
  nlohmann::json object;
  try {
    object = nlohmann::json::parse(line);
  } catch (const nlohmann::json::exception& e) {
    bad_line(path, line_number, std::string("not valid JSON: ") + e.what());
  }
  if (!object.is_object()) {
    bad_line(path, line_number,
             std::string("expected a JSON object, found a ") + object.type_name());
  }
  const auto field = object.find(options.field);
  if (field == object.end()) {
    bad_line(path, line_number,
             "the object has no field '" + options.field +
                 "' (data.field names the field that holds the prompt)");
  }
  if (!field->is_string()) {
    bad_line(path, line_number,
             "field '" + options.field + "' is a " + field->type_name() + ", expected a string");
  }
  std::string prompt = field->get<std::string>();
  if (options.hh_rlhf) {
    prompt = hh_rlhf_prompt(prompt);
    if (prompt.empty()) {
      bad_line(path, line_number,
               "field '" + options.field +
                   "' is not an HH-RLHF conversation (data.hh_rlhf = true "
                   "expects '\\n\\nHuman: ...' followed by '\\n\\nAssistant:')");
    }
  }
  if (prompt.empty()) bad_line(path, line_number, "field '" + options.field + "' is empty");
  return prompt;
}

// The prompt of one plain-text line, or nothing for a blank line.
std::optional<std::string> text_prompt(std::string line, const std::string& path,
                                       int64_t line_number) {
  if (!line.empty() && line.back() == '\r') line.pop_back();
  if (is_blank(line)) return std::nullopt;
  const size_t bad = utf8_error_offset(line);
  if (bad != std::string::npos) {
    bad_line(path, line_number,
             "invalid UTF-8 at byte " + std::to_string(bad + 1) + " of the line");
  }
  return line;
}

}  // namespace

DatasetOptions dataset_options(const DataConfig& data) {
  DatasetOptions options;
  options.format = data.format;
  options.field = data.field;
  options.hh_rlhf = data.hh_rlhf;
  options.max_prompts = data.max_prompts;
  return options;
}

DatasetFormat resolve_format(const std::string& path, const std::string& format) {
  if (format == "jsonl") return DatasetFormat::kJsonl;
  if (format == "text") return DatasetFormat::kText;
  if (format != "auto") {
    throw InputError("data.format = '" + format + "' is not known; allowed: auto, jsonl, text");
  }
  return ends_with(path, ".jsonl") || ends_with(path, ".json") ? DatasetFormat::kJsonl
                                                               : DatasetFormat::kText;
}

std::string hh_rlhf_prompt(const std::string& conversation) {
  const size_t last_assistant = conversation.rfind(kAssistantMarker);
  if (last_assistant == std::string::npos) return "";
  const size_t human = conversation.rfind(kHumanMarker, last_assistant);
  if (human == std::string::npos) return "";
  return conversation.substr(0, last_assistant + sizeof(kAssistantMarker) - 1);
}

PromptDataset::PromptDataset(std::vector<std::string> prompts, std::string source)
    : prompts_(std::move(prompts)), source_(std::move(source)) {}

PromptDataset PromptDataset::from_prompts(std::vector<std::string> prompts, std::string source) {
  if (prompts.empty()) throw InputError(source + ": the dataset holds no prompt");
  return PromptDataset(std::move(prompts), std::move(source));
}

PromptDataset PromptDataset::load(const std::string& path, const DatasetOptions& options) {
  const DatasetFormat format = resolve_format(path, options.format);
  if (format == DatasetFormat::kText && options.hh_rlhf) {
    throw InputError(path +
                     ": data.hh_rlhf = true needs a JSONL file (a conversation spans "
                     "several lines, which plain text cannot hold in one prompt)");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(path + ": cannot open the prompt file");
  std::vector<std::string> prompts;
  std::string line;
  int64_t line_number = 0;
  while (std::getline(in, line)) {
    ++line_number;
    if (options.max_prompts > 0 && static_cast<int64_t>(prompts.size()) >= options.max_prompts) {
      break;
    }
    if (format == DatasetFormat::kJsonl) {
      if (is_blank(line)) continue;
      prompts.push_back(jsonl_prompt(line, path, line_number, options));
    } else if (auto prompt = text_prompt(line, path, line_number)) {
      prompts.push_back(std::move(*prompt));
    }
  }
  if (in.bad()) throw InputError(path + ": read error after line " + std::to_string(line_number));
  if (prompts.empty()) {
    throw InputError(path + ": the file holds no prompt (" +
                     (format == DatasetFormat::kJsonl ? "JSONL" : "plain text") + ", " +
                     std::to_string(line_number) + " lines)");
  }
  return PromptDataset(std::move(prompts), path);
}

PromptSchedule::PromptSchedule(uint64_t seed, size_t dataset_size, int64_t batch_prompts,
                               bool shuffle)
    : seed_(seed), dataset_size_(dataset_size), batch_prompts_(batch_prompts), shuffle_(shuffle) {
  if (dataset_size == 0) throw InputError("the training dataset holds no prompt");
  if (batch_prompts <= 0) {
    throw InputError("optim.batch_prompts = " + std::to_string(batch_prompts) +
                     "; it must be at least 1");
  }
}

std::vector<size_t> PromptSchedule::epoch_order(int64_t epoch) const {
  std::vector<size_t> order(dataset_size_);
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  if (!shuffle_) return order;
  // Fisher-Yates from the back: position i swaps with a uniform position in [0, i].
  RngStream rng(seed_, RngPurpose::kShuffle, {static_cast<uint64_t>(epoch)});
  for (size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[rng.below(i)]);
  return order;
}

const std::vector<size_t>& PromptSchedule::cached_order(int64_t epoch) const {
  if (epoch != cached_epoch_) {
    cached_order_ = epoch_order(epoch);
    cached_epoch_ = epoch;
  }
  return cached_order_;
}

std::vector<size_t> PromptSchedule::batch(int64_t step) const {
  std::vector<size_t> indices;
  indices.reserve(batch_prompts_);
  DataCursor cursor = cursor_at(step);
  // A batch may run over the end of an epoch into the next one (or several, for tiny data).
  for (int64_t slot = 0; slot < batch_prompts_; ++slot) {
    indices.push_back(cached_order(cursor.epoch)[cursor.position]);
    if (++cursor.position == static_cast<int64_t>(dataset_size_)) {
      cursor.position = 0;
      ++cursor.epoch;
    }
  }
  return indices;
}

DataCursor PromptSchedule::cursor_at(int64_t step) const {
  const int64_t size = static_cast<int64_t>(dataset_size_);
  // (step * B) may not fit in 64 bits for absurd steps; split it to stay exact.
  const int64_t steps_per_wrap = size / std::gcd(size, batch_prompts_);
  const int64_t wraps = step / steps_per_wrap;  // whole cycles where position returns to 0
  const int64_t rest = (step % steps_per_wrap) * batch_prompts_;
  DataCursor cursor;
  cursor.epoch = wraps * (steps_per_wrap * batch_prompts_ / size) + rest / size;
  cursor.position = rest % size;
  return cursor;
}

void PromptSchedule::check_resume(int64_t step, const DataCursor& saved) const {
  const DataCursor expected = cursor_at(step);
  if (expected == saved) return;
  throw InputError("the checkpoint's data cursor (epoch " + std::to_string(saved.epoch) +
                   ", position " + std::to_string(saved.position) + ") does not match step " +
                   std::to_string(step) + " over " + std::to_string(dataset_size_) +
                   " prompts with " + std::to_string(batch_prompts_) +
                   " per step (expected epoch " + std::to_string(expected.epoch) + ", position " +
                   std::to_string(expected.position) +
                   "): data.train, data.max_prompts or optim.batch_prompts changed");
}

}  // namespace alignpro
