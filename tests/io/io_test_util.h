// Helpers of the io tests: records filled with distinct values, field-wise comparison, the
// message of a failure; and, from tests/support, temporary folders and running a command.
#pragma once

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <string>
#include <tuple>
#include <vector>

#include "io/records.h"
#include "io/results_file.h"
#include "support/command.h"
#include "support/temp_dir.h"

namespace alignpro::testing {

inline auto fields(const StepMetrics& m) {
  return std::tie(m.step, m.epoch, m.units, m.samples, m.reward_mean, m.reward_std, m.kl_mean,
                  m.loss, m.grad_norm, m.learning_rate, m.tokens, m.tokens_per_s, m.step_s,
                  m.elapsed_s, m.eta_s, m.phase_share);
}
inline auto fields(const TrainingSample& s) {
  return std::tie(s.step, s.prompt_index, s.candidate, s.sample, s.rank, s.seed, s.rewrite_stream,
                  s.response_stream, s.prompt, s.rewrite, s.response, s.reward, s.advantage,
                  s.logprob_prompter, s.logprob_reference, s.kl);
}
inline auto fields(const PhaseTimings& t) {
  return std::tie(t.step, t.rank, t.seconds);
}
inline auto fields(const Estimate& e) {
  return std::tie(e.value, e.ci_low, e.ci_high);
}
inline auto fields(const EvalSummary& s) {
  return std::make_tuple(s.eval_index, s.step, s.condition, s.decoding, s.n, s.confidence,
                         fields(s.mean), fields(s.std), fields(s.win_rate), fields(s.gain));
}
inline auto fields(const EvalSample& s) {
  return std::tie(s.eval_index, s.step, s.condition, s.decoding, s.prompt_index, s.prompt,
                  s.rewrite, s.response, s.reward);
}
inline auto fields(const PoolState& p) {
  return std::tie(p.step, p.trained, p.rho_star, p.total_variation, p.kl_rho_star_reference,
                  p.kl_trained_reference);
}

template <class R>
bool same(const R& a, const R& b) {
  return fields(a) == fields(b);
}
template <class R>
bool same(const std::vector<R>& a, const std::vector<R>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (!same(a[i], b[i])) return false;
  }
  return true;
}

// Values that differ per step and row, so a row written in the wrong place shows.
inline StepMetrics make_metrics(int64_t step) {
  StepMetrics m;
  m.step = step;
  m.epoch = step / 4;
  m.units = 8;
  m.samples = 16;
  m.reward_mean = 0.25 + 0.01 * step;
  m.reward_std = 0.125 + step;
  m.kl_mean = 0.001 * step;
  m.loss = -0.5 * step;
  m.grad_norm = 1.5 + step;
  m.learning_rate = 1e-5 * step;
  m.tokens = 1000 + step;
  m.tokens_per_s = 250.5 + step;
  m.step_s = 4.0 + step;
  m.elapsed_s = 10.0 * step;
  m.eta_s = 100.0 - step;
  for (int p = 0; p < kPhaseCount; ++p) m.phase_share[p] = (p + 1) / 21.0;
  return m;
}

inline TrainingSample make_sample(int64_t step, int64_t row) {
  TrainingSample s;
  s.step = step;
  s.prompt_index = 100 * step + row / 2;
  s.candidate = row % 2;
  s.sample = row % 3;
  s.rank = row % 4;
  s.seed = 42;
  s.rewrite_stream = 0xfedcba9876543210ull + static_cast<uint64_t>(row);
  s.response_stream = 0x8000000000000000ull + static_cast<uint64_t>(step);
  s.prompt = "prompt " + std::to_string(step) + "/" + std::to_string(row) + ": caf\xC3\xA9?";
  s.rewrite = "Please answer politely.\nprompt " + std::to_string(row) + " \xE2\x9C\x93";
  s.response = std::string(static_cast<size_t>(20 + row), 'r') + " \xF0\x9F\x99\x82";
  s.reward = 0.5 * step - 0.1 * row;
  s.advantage = 0.01 * row - 0.02;
  s.logprob_prompter = -3.5 - row;
  s.logprob_reference = -3.75 - row;
  s.kl = 0.25 * row;
  return s;
}

inline std::vector<TrainingSample> make_samples(int64_t step, int64_t count) {
  std::vector<TrainingSample> out;
  for (int64_t i = 0; i < count; ++i) out.push_back(make_sample(step, i));
  return out;
}

inline PhaseTimings make_timings(int64_t step, int64_t rank) {
  PhaseTimings t;
  t.step = step;
  t.rank = rank;
  for (int p = 0; p < kPhaseCount; ++p) t.seconds[p] = 0.5 * p + step + 0.01 * rank;
  return t;
}

inline EvalSummary make_summary(int64_t eval_index, int64_t step, const std::string& condition) {
  EvalSummary s;
  s.eval_index = eval_index;
  s.step = step;
  s.condition = condition;
  s.decoding = "greedy";
  s.n = 32;
  s.confidence = 0.95;
  s.mean = {0.6 + 0.01 * step, 0.55, 0.65};
  s.std = {0.2, 0.15, 0.25};
  s.win_rate = {condition == "none" ? 0.5 : 0.7, 0.6, 0.8};
  s.gain = {condition == "none" ? 0.0 : 0.1, 0.05, 0.15};
  return s;
}

inline EvalSample make_eval_sample(int64_t eval_index, int64_t step, int64_t prompt) {
  EvalSample s;
  s.eval_index = eval_index;
  s.step = step;
  s.condition = "align-pro";
  s.decoding = "greedy";
  s.prompt_index = prompt;
  s.prompt = "held-out " + std::to_string(prompt);
  s.rewrite = "rewritten held-out " + std::to_string(prompt);
  s.response = "eval response " + std::to_string(prompt);
  s.reward = 0.1 * prompt;
  return s;
}

inline PoolState make_pool_state(int64_t step) {
  PoolState p;
  p.step = step;
  p.trained = {0.5 - 0.01 * step, 0.3, 0.2 + 0.01 * step};
  p.rho_star = {0.4, 0.35, 0.25};
  p.total_variation = 0.1 / step;
  p.kl_rho_star_reference = 0.05;
  p.kl_trained_reference = 0.02 * step;
  return p;
}

inline RunInfo make_run_info(uint64_t hash = 0x0123456789abcdefull) {
  RunInfo info;
  info.job_name = "demo";
  info.job_text = "[run]\nname = \"demo\"\nsteps = 10\n";
  info.job_hash = hash;
  info.world_size = 2;
  info.hosts = {"node-a", "node-b"};
  info.total_steps = 10;
  info.pool_templates = {"Be brief: {prompt}", "Be kind: {prompt}", "{prompt}"};
  info.pool_reference = {0.25, 0.25, 0.5};
  return info;
}

// Appends and commits one step of every kind of row: metrics, `samples_per_step` samples,
// timings of two ranks and a pool state.
inline void write_step(ResultsWriter& writer, int64_t step, int64_t samples_per_step) {
  writer.append(make_metrics(step));
  writer.append(make_samples(step, samples_per_step));
  writer.append(make_timings(step, 0));
  writer.append(make_timings(step, 1));
  writer.append(make_pool_state(step));
  writer.commit_step(step);
}

// What f throws, or "" when it does not.
inline std::string message_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

inline bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

inline std::string quoted(const std::string& path) {
  return "'" + path + "'";
}

}  // namespace alignpro::testing
