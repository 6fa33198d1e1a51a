// The data files of supervised training: prompt/completion pairs or plain texts for `alignpro sft`,
// preference pairs for `alignpro fit-reward`. Files come from users: every bad line is an
// InputError naming the file, the line number and what is wrong.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace alignpro::demo {

// One training text. A plain text has no prompt: the model learns all of it.
struct SftRecord {
  std::string prompt;      // read by the model; trained on unless completion-only
  std::string completion;  // written by the model; the whole text for a plain text
  bool plain_text = false;
  int64_t line = 0;  // 1-based line in the file
};

// Reads JSONL (one object per line: {"prompt": ..., "completion": ...} or {"text": ...}) or
// plain text (every non-empty line is one text). format is "auto" (.jsonl and .json are JSONL,
// anything else text), "jsonl" or "text". Blank lines are skipped. Throws InputError for an
// unreadable file, a malformed line, invalid UTF-8 or a file without records.
std::vector<SftRecord> read_sft_data(const std::string& path, const std::string& format = "auto");

struct PreferenceRecord {
  std::string prompt;
  std::string chosen;
  std::string rejected;
  int64_t line = 0;
};

// Reads JSONL with {"prompt": ..., "chosen": ..., "rejected": ...} per line; chosen and
// rejected must be non-empty. Throws InputError as read_sft_data does.
std::vector<PreferenceRecord> read_preference_data(const std::string& path);

}  // namespace alignpro::demo
