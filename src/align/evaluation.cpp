#include "align/evaluation.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <tuple>

#include "align/evaluation_stats.h"
#include "align/sharding.h"
#include "common/log.h"

namespace alignpro {

namespace {

constexpr uint64_t kRewriteDraw = 0;
constexpr uint64_t kResponseDraw = 1;

std::vector<RngStream> eval_streams(const Job& job, int64_t eval_index, int64_t first,
                                    int64_t count, uint64_t draw) {
  std::vector<RngStream> streams;
  for (int64_t i = first; i < first + count; ++i) {
    streams.emplace_back(static_cast<uint64_t>(job.run.seed), RngPurpose::kEval,
                         std::initializer_list<uint64_t>{static_cast<uint64_t>(eval_index),
                                                         static_cast<uint64_t>(i), draw});
  }
  return streams;
}

// This rank's samples of one decoding, for every condition.
std::vector<EvalSample> evaluate_slice(const Job& job, JobModels& models, LmResponder* rlhf_target,
                                       const std::vector<std::string>& prompts, int64_t first,
                                       bool greedy, int64_t eval_index, int64_t step) {
  const auto count = static_cast<int64_t>(prompts.size());
  auto respond = [&](LmResponder& target, const std::vector<std::string>& seen) {
    if (greedy) return target.respond_greedy(seen);
    auto streams = eval_streams(job, eval_index, first, count, kResponseDraw);
    return target.respond(seen, streams);
  };
  auto rewrite = [&]() {
    if (greedy) return models.rewrite_greedy(prompts);
    auto streams = eval_streams(job, eval_index, first, count, kRewriteDraw);
    std::vector<std::string> texts;
    for (const auto& r : models.prompter().sample(prompts, streams)) texts.push_back(r.text);
    return texts;
  };
  // In run.mode = "rlhf" the policy is the target itself: there is nothing to rewrite.
  std::vector<std::pair<std::string, std::vector<std::string>>> seen = {{"none", prompts}};
  if (job.run.mode != "rlhf") seen.emplace_back("align-pro", rewrite());
  std::vector<EvalSample> samples;
  auto add_condition = [&](const std::string& condition, const std::vector<std::string>& input,
                           const std::vector<std::string>& responses) {
    const auto rewards = models.reward->score(prompts, responses);
    for (int64_t i = 0; i < count; ++i) {
      EvalSample s;
      s.eval_index = eval_index;
      s.step = step;
      s.condition = condition;
      s.decoding = greedy ? "greedy" : "sampled";
      s.prompt_index = first + i;
      s.prompt = prompts[i];
      s.rewrite = input[i];
      s.response = responses[i];
      s.reward = rewards[i];
      samples.push_back(std::move(s));
    }
  };
  for (const auto& [condition, input] : seen) {
    add_condition(condition, input, respond(*models.target, input));
  }
  if (rlhf_target) add_condition("rlhf", prompts, respond(*rlhf_target, prompts));
  return samples;
}

std::vector<EvalSummary> summarize(const Job& job, const std::vector<EvalSample>& samples,
                                   const std::string& decoding, int64_t eval_index, int64_t step) {
  std::map<std::string, std::vector<double>> rewards;  // condition -> by prompt index
  std::vector<std::string> order;
  for (const auto& s : samples) {
    if (s.decoding != decoding) continue;
    auto& list = rewards[s.condition];
    if (list.empty()) order.push_back(s.condition);
    if (static_cast<int64_t>(list.size()) <= s.prompt_index) list.resize(s.prompt_index + 1);
    list[s.prompt_index] = s.reward;
  }
  const ConditionRewards baseline{"none", rewards["none"]};
  std::vector<ConditionRewards> conditions;
  for (const auto& name : order) {
    if (name != baseline.name) conditions.push_back({name, rewards[name]});
  }
  BootstrapOptions options;
  options.resamples = job.eval.bootstrap;
  options.confidence = job.eval.confidence;
  options.seed = static_cast<uint64_t>(job.run.seed);
  options.tag = static_cast<uint64_t>(eval_index) * 2 + (decoding == "greedy" ? 0 : 1);
  std::vector<EvalSummary> out;
  for (const auto& stats : evaluation_stats(baseline, conditions, options)) {
    EvalSummary row;
    row.eval_index = eval_index;
    row.step = step;
    row.condition = stats.name;
    row.decoding = decoding;
    row.n = stats.prompts;
    row.confidence = job.eval.confidence;
    row.mean = {stats.mean.value, stats.mean.ci_low, stats.mean.ci_high};
    row.std = {stats.std.value, stats.std.ci_low, stats.std.ci_high};
    row.win_rate = {stats.win_rate.value, stats.win_rate.ci_low, stats.win_rate.ci_high};
    row.gain = {stats.gain.value, stats.gain.ci_low, stats.gain.ci_high};
    out.push_back(row);
  }
  return out;
}

}  // namespace

EvaluationResult evaluate(const Job& job, Communicator& comm, JobModels& models,
                          LmResponder* rlhf_target, const PromptDataset& prompts,
                          int64_t eval_index, int64_t step) {
  int64_t n = static_cast<int64_t>(prompts.size());
  if (job.eval.prompts > 0) n = std::min(n, job.eval.prompts);
  const Sharding sharding(n, comm.size());
  const UnitRange mine = sharding.range(comm.rank());
  std::vector<std::string> local;
  for (int64_t i = mine.begin; i < mine.end; ++i) local.push_back(prompts.prompt(i));

  torch::NoGradGuard no_grad;
  std::vector<EvalSample> samples;
  for (const auto& decoding : job.eval.decoding) {
    if (local.empty()) break;
    auto part = evaluate_slice(job, models, rlhf_target, local, mine.begin, decoding == "greedy",
                               eval_index, step);
    samples.insert(samples.end(), part.begin(), part.end());
  }
  const auto gathered = comm.gather(to_bytes(samples), 0, "evaluation");
  EvaluationResult result;
  if (!comm.is_coordinator()) return result;
  for (const auto& bytes : gathered) {
    auto part = from_bytes<std::vector<EvalSample>>(bytes);
    result.samples.insert(result.samples.end(), part.begin(), part.end());
  }
  // One order whatever the number of ranks: by decoding, then condition, then prompt.
  auto position = [](const std::vector<std::string>& list, const std::string& name) {
    return std::find(list.begin(), list.end(), name) - list.begin();
  };
  static const std::vector<std::string> kConditions = {"none", "align-pro", "rlhf"};
  std::stable_sort(result.samples.begin(), result.samples.end(),
                   [&](const EvalSample& a, const EvalSample& b) {
                     return std::make_tuple(position(job.eval.decoding, a.decoding),
                                            position(kConditions, a.condition), a.prompt_index) <
                            std::make_tuple(position(job.eval.decoding, b.decoding),
                                            position(kConditions, b.condition), b.prompt_index);
                   });
  for (const auto& decoding : job.eval.decoding) {
    auto rows = summarize(job, result.samples, decoding, eval_index, step);
    result.summaries.insert(result.summaries.end(), rows.begin(), rows.end());
  }
  return result;
}

std::string format_eval_table(const std::vector<EvalSummary>& summaries) {
  std::string out;
  char line[512];
  std::snprintf(line, sizeof(line), "%-10s %-8s %5s  %-24s %-8s %-24s %-26s\n", "condition",
                "decoding", "n", "mean reward [95% CI]", "std", "win rate vs none", "gain vs none");
  out += line;
  for (const auto& s : summaries) {
    std::snprintf(line, sizeof(line),
                  "%-10s %-8s %5lld  %6.3f [%6.3f, %6.3f]   %6.3f   %5.3f [%5.3f, %5.3f]    "
                  "%+6.3f [%+6.3f, %+6.3f]\n",
                  s.condition.c_str(), s.decoding.c_str(), static_cast<long long>(s.n),
                  s.mean.value, s.mean.ci_low, s.mean.ci_high, s.std.value, s.win_rate.value,
                  s.win_rate.ci_low, s.win_rate.ci_high, s.gain.value, s.gain.ci_low,
                  s.gain.ci_high);
    out += line;
  }
  return out;
}

}  // namespace alignpro
