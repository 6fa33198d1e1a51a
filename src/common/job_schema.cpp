// The job-file schema: one row per key. The reader, validator, printer and the README's
// reference are all generated from this table, so code and documentation cannot drift.
#include <cmath>
#include <limits>
#include <sstream>

#include "common/job.h"

namespace alignpro {

namespace {

constexpr double kIntMax = 9.0e18;

// Binds a row to one field of one section of Job.
template <class Section, class T>
void bind(KeySpec& spec, Section Job::*section, T Section::*field) {
  spec.store = [section, field](Job& job, const JobValue& value) {
    (job.*section).*field = std::get<T>(value);
  };
  spec.load = [section, field](const Job& job) { return JobValue((job.*section).*field); };
}

struct Row {
  KeySpec spec;
  template <class Section, class T>
  Row(const char* section, const char* key, KeyType type, JobValue def, Section Job::*sec,
      T Section::*field, const char* unit, const char* doc) {
    spec.section = section;
    spec.key = key;
    spec.type = type;
    spec.default_value = std::move(def);
    spec.unit = unit;
    spec.doc = doc;
    bind(spec, sec, field);
  }
  Row& range(double lo, double hi, bool lo_open = false) {
    spec.min = lo;
    spec.max = hi;
    spec.min_open = lo_open;
    return *this;
  }
  Row& choices(std::vector<std::string> allowed) {
    spec.choices = std::move(allowed);
    return *this;
  }
  Row& path(PathKind kind) {
    spec.path_kind = kind;
    return *this;
  }
};

using K = KeyType;
using S = std::string;
using SL = std::vector<std::string>;
using RL = std::vector<double>;
using I = int64_t;

std::vector<KeySpec> build_schema() {
  std::vector<Row> rows = {
      // [run]
      Row("run", "name", K::kString, S(""), &Job::run, &RunConfig::name, "",
          "Name of the run, used in logs and default file names; empty: the job file's stem."),
      Row("run", "seed", K::kInt, I(0), &Job::run, &RunConfig::seed, "",
          "Seed of every random stream of the run; results depend only on it, not on ranks.")
          .range(0, kIntMax),
      Row("run", "steps", K::kInt, I(100), &Job::run, &RunConfig::steps, "steps",
          "Training steps to run.")
          .range(1, 1e9),
      Row("run", "output", K::kPath, S(""), &Job::run, &RunConfig::output, "path",
          "Results file (HDF5); empty: runs/NAME.h5 in the job file's folder.")
          .path(PathKind::kOutput),
      Row("run", "mode", K::kChoice, S("align-pro"), &Job::run, &RunConfig::mode, "",
          "align-pro: train the prompter, the target stays frozen; rlhf: train the target "
          "itself by the same objective (the paper's upper reference).")
          .choices({"align-pro", "rlhf"}),
      Row("run", "checkpoint_every", K::kInt, I(10), &Job::run, &RunConfig::checkpoint_every,
          "steps", "Write a checkpoint every this many steps; 0: only at the end and on signals.")
          .range(0, 1e9),
      Row("run", "keep_checkpoints", K::kInt, I(2), &Job::run, &RunConfig::keep_checkpoints, "",
          "How many of the newest checkpoints to keep.")
          .range(1, 1000),
      Row("run", "resume", K::kChoice, S("auto"), &Job::run, &RunConfig::resume, "",
          "auto: resume an unfinished run found at run.output; never: refuse to touch an "
          "existing results file; require: fail unless there is a run to resume.")
          .choices({"auto", "never", "require"}),
      Row("run", "log_every", K::kInt, I(1), &Job::run, &RunConfig::log_every, "steps",
          "Print the progress line every this many steps.")
          .range(1, 1e9),
      // [data]
      Row("data", "train", K::kPath, S(""), &Job::data, &DataConfig::train, "path",
          "Training prompts: JSONL (one object per line) or plain text (one prompt per line).")
          .path(PathKind::kFile),
      Row("data", "eval", K::kPath, S(""), &Job::data, &DataConfig::eval, "path",
          "Held-out prompts for evaluation, same formats; empty: no evaluation.")
          .path(PathKind::kFile),
      Row("data", "format", K::kChoice, S("auto"), &Job::data, &DataConfig::format, "",
          "File format; auto: .jsonl/.json is JSONL, anything else plain text.")
          .choices({"auto", "jsonl", "text"}),
      Row("data", "field", K::kString, S("prompt"), &Job::data, &DataConfig::field, "",
          "JSONL field that holds the prompt."),
      Row("data", "hh_rlhf", K::kBool, false, &Job::data, &DataConfig::hh_rlhf, "",
          "The field holds an HH-RLHF conversation; the prompt is the text before its last "
          "assistant turn."),
      Row("data", "max_prompts", K::kInt, I(0), &Job::data, &DataConfig::max_prompts, "prompts",
          "Use at most this many prompts of each file; 0: all.")
          .range(0, 1e12),
      Row("data", "shuffle", K::kBool, true, &Job::data, &DataConfig::shuffle, "",
          "Shuffle the training prompts every epoch (from run.seed)."),
      // [prompter]
      Row("prompter", "kind", K::kChoice, S("lm"), &Job::prompter, &PrompterConfig::kind, "",
          "lm: a language model writes each rewrite; pool: a learned categorical choice among "
          "the templates in prompter.pool.")
          .choices({"lm", "pool"}),
      Row("prompter", "model", K::kPath, S(""), &Job::prompter, &PrompterConfig::model, "path",
          "Prompter model folder (Hugging Face layout); needed for kind = lm.")
          .path(PathKind::kDir),
      Row("prompter", "reference", K::kPath, S(""), &Job::prompter, &PrompterConfig::reference,
          "path", "Reference prompter (the KL anchor); empty: a frozen copy of prompter.model.")
          .path(PathKind::kDir),
      Row("prompter", "candidates", K::kInt, I(4), &Job::prompter, &PrompterConfig::candidates,
          "per prompt", "K: rewrites sampled per prompt and step.")
          .range(1, 4096),
      Row("prompter", "template", K::kString, S("{prompt}"), &Job::prompter,
          &PrompterConfig::template_, "",
          "How a user prompt is shown to the prompter; must contain {prompt}."),
      Row("prompter", "chat_format", K::kChoice, S("none"), &Job::prompter,
          &PrompterConfig::chat_format, "", "Chat format wrapped around the template.")
          .choices({"none", "chatml", "llama3", "llama2"}),
      Row("prompter", "max_new_tokens", K::kInt, I(48), &Job::prompter,
          &PrompterConfig::max_new_tokens, "tokens", "Longest rewrite.")
          .range(1, 65536),
      Row("prompter", "temperature", K::kReal, 1.0, &Job::prompter, &PrompterConfig::temperature,
          "", "Sampling temperature of rewrites.")
          .range(0, 100, true),
      Row("prompter", "top_k", K::kInt, I(0), &Job::prompter, &PrompterConfig::top_k, "tokens",
          "Sample among the k most likely tokens; 0: no limit.")
          .range(0, 1e9),
      Row("prompter", "top_p", K::kReal, 1.0, &Job::prompter, &PrompterConfig::top_p, "",
          "Nucleus sampling mass; 1: no limit.")
          .range(0, 1, true),
      Row("prompter", "pool", K::kStringList, SL{}, &Job::prompter, &PrompterConfig::pool, "",
          "Candidate templates for kind = pool; each must contain {prompt}."),
      Row("prompter", "pool_reference", K::kRealList, RL{}, &Job::prompter,
          &PrompterConfig::pool_reference, "probability",
          "Reference distribution over prompter.pool; empty: uniform. Must sum to 1."),
      // [target]
      Row("target", "model", K::kPath, S(""), &Job::target, &TargetConfig::model, "path",
          "The frozen target model folder (Hugging Face layout).")
          .path(PathKind::kDir),
      Row("target", "samples", K::kInt, I(1), &Job::target, &TargetConfig::samples, "per rewrite",
          "M: responses sampled per rewrite; R(x, x') is their mean reward.")
          .range(1, 4096),
      Row("target", "template", K::kString, S("{prompt}"), &Job::target, &TargetConfig::template_,
          "", "How a rewrite is shown to the target; {prompt} stands for the rewrite."),
      Row("target", "chat_format", K::kChoice, S("none"), &Job::target, &TargetConfig::chat_format,
          "", "Chat format wrapped around the template.")
          .choices({"none", "chatml", "llama3", "llama2"}),
      Row("target", "max_new_tokens", K::kInt, I(64), &Job::target, &TargetConfig::max_new_tokens,
          "tokens", "Longest response.")
          .range(1, 65536),
      Row("target", "temperature", K::kReal, 1.0, &Job::target, &TargetConfig::temperature, "",
          "Sampling temperature of responses.")
          .range(0, 100, true),
      Row("target", "top_k", K::kInt, I(0), &Job::target, &TargetConfig::top_k, "tokens",
          "Sample among the k most likely tokens; 0: no limit.")
          .range(0, 1e9),
      Row("target", "top_p", K::kReal, 1.0, &Job::target, &TargetConfig::top_p, "",
          "Nucleus sampling mass; 1: no limit.")
          .range(0, 1, true),
      Row("target", "stop", K::kStringList, SL{}, &Job::target, &TargetConfig::stop, "",
          "Strings that end a response (besides the end-of-sequence token)."),
      Row("target", "batch_size", K::kInt, I(32), &Job::target, &TargetConfig::batch_size,
          "sequences", "Responses generated together in one batch on a rank.")
          .range(1, 65536),
      // [reward]
      Row("reward", "kind", K::kChoice, S("model"), &Job::reward, &RewardConfig::kind, "",
          "model: a reward model scores (prompt, response); keywords, length, regex: rules; "
          "sum: a weighted sum of the kinds in reward.terms.")
          .choices({"model", "keywords", "length", "regex", "sum"}),
      Row("reward", "model", K::kPath, S(""), &Job::reward, &RewardConfig::model, "path",
          "Reward model folder (a sequence-classification checkpoint); needed for kind = model.")
          .path(PathKind::kDir),
      Row("reward", "template", K::kString, S("{prompt}{response}"), &Job::reward,
          &RewardConfig::template_, "",
          "How the reward model sees the ORIGINAL prompt and the response; must contain "
          "{prompt} and {response}."),
      Row("reward", "keywords", K::kStringList, SL{}, &Job::reward, &RewardConfig::keywords, "",
          "keywords: the reward is the fraction of these words found in the response."),
      Row("reward", "length_min", K::kInt, I(1), &Job::reward, &RewardConfig::length_min, "words",
          "length: reward 1 for responses of at least this many words.")
          .range(0, 1e9),
      Row("reward", "length_max", K::kInt, I(100), &Job::reward, &RewardConfig::length_max, "words",
          "length: ... and at most this many words; 0 otherwise.")
          .range(0, 1e9),
      Row("reward", "regex", K::kString, S(""), &Job::reward, &RewardConfig::regex, "",
          "regex: reward 1 when the response matches this PCRE2 pattern, 0 otherwise."),
      Row("reward", "terms", K::kStringList, SL{}, &Job::reward, &RewardConfig::terms, "",
          "sum: the kinds to add up (model, keywords, length, regex)."),
      Row("reward", "weights", K::kRealList, RL{}, &Job::reward, &RewardConfig::weights, "",
          "sum: one weight per term."),
      Row("reward", "batch_size", K::kInt, I(32), &Job::reward, &RewardConfig::batch_size,
          "sequences", "Pairs scored together in one batch by the reward model.")
          .range(1, 65536),
      // [optim]
      Row("optim", "lr", K::kReal, 1e-5, &Job::optim, &OptimConfig::lr, "",
          "Peak learning rate of AdamW.")
          .range(0, 1, true),
      Row("optim", "kl_coef", K::kReal, 0.05, &Job::optim, &OptimConfig::kl_coef, "",
          "lambda: weight of KL(prompter || reference).")
          .range(0, 1000),
      Row("optim", "kl_mode", K::kChoice, S("reward"), &Job::optim, &OptimConfig::kl_mode, "",
          "reward: subtract lambda * KL from each candidate's return; loss: add lambda * KL "
          "as a separate loss term.")
          .choices({"reward", "loss"}),
      Row("optim", "kl_estimator", K::kChoice, S("k1"), &Job::optim, &OptimConfig::kl_estimator, "",
          "k1: log-ratio; k3: ratio - 1 - log-ratio (non-negative, lower variance).")
          .choices({"k1", "k3"}),
      Row("optim", "batch_prompts", K::kInt, I(8), &Job::optim, &OptimConfig::batch_prompts,
          "prompts", "B: prompts per step; a step has B * K work units.")
          .range(1, 1e7),
      Row("optim", "advantage_std", K::kBool, false, &Job::optim, &OptimConfig::advantage_std, "",
          "Divide each advantage by the standard deviation of its prompt's group."),
      Row("optim", "ppo_epochs", K::kInt, I(1), &Job::optim, &OptimConfig::ppo_epochs, "",
          "Passes over each step's rollouts; above 1, the PPO clipped objective is used.")
          .range(1, 100),
      Row("optim", "minibatches", K::kInt, I(1), &Job::optim, &OptimConfig::minibatches, "",
          "Updates per pass over a step's rollouts.")
          .range(1, 1024),
      Row("optim", "clip", K::kReal, 0.2, &Job::optim, &OptimConfig::clip, "",
          "PPO clipping range of the probability ratio.")
          .range(0, 10, true),
      Row("optim", "weight_decay", K::kReal, 0.0, &Job::optim, &OptimConfig::weight_decay, "",
          "AdamW decoupled weight decay.")
          .range(0, 10),
      Row("optim", "adam_beta1", K::kReal, 0.9, &Job::optim, &OptimConfig::adam_beta1, "",
          "AdamW first-moment decay.")
          .range(0, 1),
      Row("optim", "adam_beta2", K::kReal, 0.999, &Job::optim, &OptimConfig::adam_beta2, "",
          "AdamW second-moment decay.")
          .range(0, 1),
      Row("optim", "adam_eps", K::kReal, 1e-8, &Job::optim, &OptimConfig::adam_eps, "",
          "AdamW denominator term.")
          .range(0, 1, true),
      Row("optim", "max_grad_norm", K::kReal, 1.0, &Job::optim, &OptimConfig::max_grad_norm, "",
          "Clip the global gradient norm to this; 0: no clipping.")
          .range(0, 1e9),
      Row("optim", "warmup_steps", K::kInt, I(0), &Job::optim, &OptimConfig::warmup_steps, "steps",
          "Linear learning-rate warmup.")
          .range(0, 1e9),
      Row("optim", "schedule", K::kChoice, S("constant"), &Job::optim, &OptimConfig::schedule, "",
          "Learning rate after warmup.")
          .choices({"constant", "cosine"}),
      Row("optim", "aggregation", K::kChoice, S("allreduce"), &Job::optim,
          &OptimConfig::aggregation, "",
          "allreduce: every replica applies the optimiser; reduce: rank 0 alone holds the "
          "optimiser state and broadcasts the new weights.")
          .choices({"allreduce", "reduce"}),
      Row("optim", "normalize", K::kChoice, S("units"), &Job::optim, &OptimConfig::normalize, "",
          "Divide the summed gradient by the global number of work units or of rewrite tokens.")
          .choices({"units", "tokens"}),
      Row("optim", "checksum_every", K::kInt, I(10), &Job::optim, &OptimConfig::checksum_every,
          "steps", "Compare a checksum of all replicas every this many steps; 0: never.")
          .range(0, 1e9),
      // [eval]
      Row("eval", "every", K::kInt, I(0), &Job::eval, &EvalConfig::every, "steps",
          "Evaluate every this many steps during training; 0: only after the last step.")
          .range(0, 1e9),
      Row("eval", "prompts", K::kInt, I(0), &Job::eval, &EvalConfig::prompts, "prompts",
          "Held-out prompts to evaluate; 0: all of data.eval.")
          .range(0, 1e12),
      Row("eval", "rlhf_target", K::kPath, S(""), &Job::eval, &EvalConfig::rlhf_target, "path",
          "A target tuned by run.mode = rlhf, evaluated on x as the RLHF condition; empty: "
          "no RLHF condition.")
          .path(PathKind::kDir),
      Row("eval", "decoding", K::kStringList, SL{"greedy", "sampled"}, &Job::eval,
          &EvalConfig::decoding, "", "Decodings to evaluate: greedy, sampled, or both."),
      Row("eval", "bootstrap", K::kInt, I(1000), &Job::eval, &EvalConfig::bootstrap, "resamples",
          "Bootstrap resamples for the confidence intervals.")
          .range(10, 1e7),
      Row("eval", "confidence", K::kReal, 0.95, &Job::eval, &EvalConfig::confidence, "",
          "Confidence level of the intervals.")
          .range(0, 1, true),
      // [runtime]
      Row("runtime", "device", K::kChoice, S("auto"), &Job::runtime, &RuntimeConfig::device, "",
          "auto: CUDA when present (one GPU per rank, by node-local rank), else CPU.")
          .choices({"auto", "cpu", "cuda"}),
      Row("runtime", "dtype", K::kChoice, S("auto"), &Job::runtime, &RuntimeConfig::dtype, "",
          "auto: float32 on CPU, bfloat16 on CUDA.")
          .choices({"auto", "float32", "bfloat16", "float16"}),
      Row("runtime", "threads", K::kInt, I(0), &Job::runtime, &RuntimeConfig::threads, "threads",
          "Compute threads per rank; 0: the node's cores divided by its ranks.")
          .range(0, 4096),
      Row("runtime", "watchdog_warn", K::kReal, 120.0, &Job::runtime, &RuntimeConfig::watchdog_warn,
          "seconds", "Name the ranks missing from a collective after this long.")
          .range(0, 1e7, true),
      Row("runtime", "watchdog_abort", K::kReal, 1800.0, &Job::runtime,
          &RuntimeConfig::watchdog_abort, "seconds",
          "Abort the job when a collective has waited this long.")
          .range(0, 1e7, true),
  };
  std::vector<KeySpec> schema;
  schema.reserve(rows.size());
  for (auto& row : rows) schema.push_back(std::move(row.spec));
  return schema;
}

std::string format_number(double x) {
  std::ostringstream out;
  if (std::abs(x) >= 1e6 && x == std::floor(x) && std::abs(x) < 1e15) {
    out << static_cast<int64_t>(x);
  } else {
    out << x;
  }
  return out.str();
}

}  // namespace

const std::vector<KeySpec>& job_schema() {
  static const std::vector<KeySpec> schema = build_schema();
  return schema;
}

const std::vector<std::string>& job_sections() {
  static const std::vector<std::string> sections = {"run",    "data",  "prompter", "target",
                                                    "reward", "optim", "eval",     "runtime"};
  return sections;
}

std::string KeySpec::allowed() const {
  auto bounds = [&](const char* what) {
    if (min == max) return std::string(what);
    std::string text = std::string(what) + " in " + (min_open ? "(" : "[") + format_number(min) +
                       ", " + format_number(max) + "]";
    return text;
  };
  switch (type) {
    case KeyType::kBool:
      return "true or false";
    case KeyType::kInt:
      return bounds("an integer");
    case KeyType::kReal:
      return bounds("a number");
    case KeyType::kString:
      return "a string";
    case KeyType::kPath:
      return "a path (string)";
    case KeyType::kStringList:
      return "a list of strings";
    case KeyType::kRealList:
      return "a list of numbers";
    case KeyType::kChoice: {
      std::string text = "one of: ";
      for (size_t i = 0; i < choices.size(); ++i) text += (i ? ", " : "") + choices[i];
      return text;
    }
  }
  return "";
}

}  // namespace alignpro
