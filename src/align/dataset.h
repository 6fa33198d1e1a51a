// Prompt datasets and the order in which training visits them. A dataset is a list of user
// prompts read from JSONL or plain text; the schedule turns (seed, step) into the prompts of a
// step, so that every rank derives the same batch without talking to the others.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/data_cursor.h"
#include "common/job.h"

namespace alignpro {

enum class DatasetFormat { kJsonl, kText };

struct DatasetOptions {
  std::string format = "auto";   // auto (.jsonl/.json: JSONL, else text), jsonl, text
  std::string field = "prompt";  // JSONL field holding the prompt
  bool hh_rlhf = false;          // the field holds an HH-RLHF conversation
  int64_t max_prompts = 0;       // keep the first this many prompts; 0: all
};

// The dataset options of a job's [data] section.
DatasetOptions dataset_options(const DataConfig& data);

// The format a file is read in: the explicit one, or by extension for "auto".
DatasetFormat resolve_format(const std::string& path, const std::string& format);

// The prompt of an HH-RLHF conversation ("\n\nHuman: ...\n\nAssistant: ..." turns): the text up
// to and including the marker of the last assistant turn, without that turn's reply. Returns an
// empty string when the text has no assistant turn preceded by a human turn.
std::string hh_rlhf_prompt(const std::string& conversation);

class PromptDataset {
 public:
  // Reads prompts from path. Throws InputError naming the file, the line number and what is
  // wrong with a line, or that the file holds no prompt.
  static PromptDataset load(const std::string& path, const DatasetOptions& options);
  // A dataset from prompts in memory; source names it in messages.
  static PromptDataset from_prompts(std::vector<std::string> prompts, std::string source);

  size_t size() const { return prompts_.size(); }
  const std::string& prompt(size_t index) const { return prompts_.at(index); }
  const std::vector<std::string>& prompts() const { return prompts_; }
  const std::string& source() const { return source_; }

 private:
  PromptDataset(std::vector<std::string> prompts, std::string source);

  std::vector<std::string> prompts_;
  std::string source_;
};

// The order of prompts over a run. Step s takes the B prompts at positions s*B .. s*B+B-1 of
// the concatenated epoch orders; epoch e's order is a permutation drawn from
// RngStream(seed, kShuffle, {e}) (or the file order without shuffling). Everything depends on
// (seed, step) alone, never on the rank or on earlier calls.
class PromptSchedule {
 public:
  // Throws InputError when the dataset is empty or batch_prompts is not positive.
  PromptSchedule(uint64_t seed, size_t dataset_size, int64_t batch_prompts, bool shuffle);

  // The visiting order of one epoch: a permutation of 0 .. dataset_size-1.
  std::vector<size_t> epoch_order(int64_t epoch) const;
  // The dataset indices of the B prompts of a step, in slot order.
  std::vector<size_t> batch(int64_t step) const;
  // The cursor before step runs (after steps 0 .. step-1).
  DataCursor cursor_at(int64_t step) const;
  // Throws InputError when a checkpoint's cursor does not match resuming at step, which
  // means the data, max_prompts or batch size changed since the checkpoint.
  void check_resume(int64_t step, const DataCursor& saved) const;

  size_t dataset_size() const { return dataset_size_; }
  int64_t batch_prompts() const { return batch_prompts_; }

 private:
  const std::vector<size_t>& cached_order(int64_t epoch) const;

  uint64_t seed_;
  size_t dataset_size_;
  int64_t batch_prompts_;
  bool shuffle_;
  // The last epoch order computed; batches of one epoch reuse it. Not thread-safe.
  mutable int64_t cached_epoch_ = -1;
  mutable std::vector<size_t> cached_order_;
};

}  // namespace alignpro
