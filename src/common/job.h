// A job: one experiment, read from a TOML file with sections [run], [data], [prompter],
// [target], [reward], [optim], [eval] and [runtime]. Every key, with its type, default, unit,
// allowed range and meaning, is declared once in job_schema.cpp; the reader, the validator, the
// resolved-configuration printer and the README's reference are all made from that table.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <variant>
#include <vector>

#include "common/error.h"

namespace alignpro {

struct RunConfig {
  std::string name;
  int64_t seed = 0;
  int64_t steps = 0;
  std::string output;
  std::string mode;
  int64_t checkpoint_every = 0;
  int64_t keep_checkpoints = 0;
  std::string resume;
  int64_t log_every = 0;
};

struct DataConfig {
  std::string train;
  std::string eval;
  std::string format;
  std::string field;
  bool hh_rlhf = false;
  int64_t max_prompts = 0;
  bool shuffle = true;
};

struct PrompterConfig {
  std::string kind;
  std::string model;
  std::string reference;
  int64_t candidates = 0;
  std::string template_;
  std::string chat_format;
  int64_t max_new_tokens = 0;
  double temperature = 0;
  int64_t top_k = 0;
  double top_p = 0;
  std::vector<std::string> pool;
  std::vector<double> pool_reference;
};

struct TargetConfig {
  std::string model;
  int64_t samples = 0;
  std::string template_;
  std::string chat_format;
  int64_t max_new_tokens = 0;
  double temperature = 0;
  int64_t top_k = 0;
  double top_p = 0;
  std::vector<std::string> stop;
  int64_t batch_size = 0;
};

struct RewardConfig {
  std::string kind;
  std::string model;
  std::string template_;
  std::vector<std::string> keywords;
  int64_t length_min = 0;
  int64_t length_max = 0;
  std::string regex;
  std::vector<std::string> terms;
  std::vector<double> weights;
  int64_t batch_size = 0;
};

struct OptimConfig {
  double lr = 0;
  double kl_coef = 0;
  std::string kl_mode;
  std::string kl_estimator;
  int64_t batch_prompts = 0;
  bool advantage_std = false;
  int64_t ppo_epochs = 0;
  int64_t minibatches = 0;
  double clip = 0;
  double weight_decay = 0;
  double adam_beta1 = 0;
  double adam_beta2 = 0;
  double adam_eps = 0;
  double max_grad_norm = 0;
  int64_t warmup_steps = 0;
  std::string schedule;
  std::string aggregation;
  std::string normalize;
  int64_t checksum_every = 0;
};

struct EvalConfig {
  int64_t every = 0;
  int64_t prompts = 0;
  std::string rlhf_target;
  std::vector<std::string> decoding;
  int64_t bootstrap = 0;
  double confidence = 0;
};

struct RuntimeConfig {
  std::string device;
  std::string dtype;
  int64_t threads = 0;
  double watchdog_warn = 0;
  double watchdog_abort = 0;
};

struct Job {
  RunConfig run;
  DataConfig data;
  PrompterConfig prompter;
  TargetConfig target;
  RewardConfig reward;
  OptimConfig optim;
  EvalConfig eval;
  RuntimeConfig runtime;

  std::string path;                    // the job file as given on the command line
  std::string text;                    // its full text, kept for the results file
  std::vector<std::string> overrides;  // the --set arguments, in order

  // The resolved configuration, one `section.key = value` line per key in schema order.
  std::string canonical() const;
  // A stable 64-bit hash of canonical(), compared across ranks.
  uint64_t hash() const;
  // The hash of what the run computes, which its results file and checkpoints carry: hash()
  // without the keys that only say how the run is operated (run.resume, run.log_every,
  // run.checkpoint_every, run.keep_checkpoints, runtime.device, runtime.threads and the
  // watchdog times), so that a run may be resumed with those changed.
  uint64_t results_hash() const;
  // The resolved configuration as TOML, for `alignpro check` and the log.
  std::string to_toml() const;
  // Work units of one step: prompts per step times candidates per prompt.
  int64_t units_per_step() const { return optim.batch_prompts * prompter.candidates; }
};

// A value in a job file, in the types the schema knows.
using JobValue =
    std::variant<bool, int64_t, double, std::string, std::vector<std::string>, std::vector<double>>;

enum class KeyType { kBool, kInt, kReal, kString, kChoice, kPath, kStringList, kRealList };
// What a path key must name.
enum class PathKind { kNone, kFile, kDir, kFileOrDir, kOutput };

struct KeySpec {
  std::string section;
  std::string key;
  KeyType type;
  JobValue default_value;
  std::string unit;
  std::string doc;
  double min = 0, max = 0;           // for kInt and kReal; min == max means unbounded
  bool min_open = false;             // the range excludes min
  std::vector<std::string> choices;  // for kChoice
  PathKind path_kind = PathKind::kNone;
  std::function<void(Job&, const JobValue&)> store;
  std::function<JobValue(const Job&)> load;

  std::string full_name() const { return section + "." + key; }
  // What values are allowed, in words: "an integer in [1, 1000000]", "one of: a, b".
  std::string allowed() const;
};

// The schema: every key of every section, in the order of the reference.
const std::vector<KeySpec>& job_schema();
const std::vector<std::string>& job_sections();

// All problems found in a job, each a complete sentence naming file, line, key, value and rule.
class JobError : public InputError {
 public:
  explicit JobError(std::vector<std::string> problems);
  const std::vector<std::string>& problems() const { return problems_; }

 private:
  std::vector<std::string> problems_;
};

struct JobReadOptions {
  std::vector<std::string> overrides;  // "section.key=value"
  int world_size = 1;                  // checked against the work units of a step
  bool check_files = true;             // check that input paths exist
};

// Reads, resolves and validates a job file; throws JobError listing every problem.
Job read_job(const std::string& path, const JobReadOptions& options = {});
// The same from text (the path is used in messages and to resolve relative paths).
Job parse_job(const std::string& text, const std::string& path, const JobReadOptions& options = {});

// The README's job-file reference, in Markdown, made from the schema.
std::string job_reference_markdown();

// Edit distance, for "did you mean" suggestions.
size_t edit_distance(const std::string& a, const std::string& b);

}  // namespace alignpro
