#include "align/evaluation_stats.h"

#include <algorithm>
#include <cmath>

#include "common/error.h"
#include "common/rng.h"

namespace alignpro {

namespace {

void check_rewards(const ConditionRewards& condition, size_t prompts) {
  if (condition.rewards.size() != prompts) {
    throw RuntimeError("evaluation: condition '" + condition.name + "' has " +
                       std::to_string(condition.rewards.size()) + " rewards for " +
                       std::to_string(prompts) + " prompts");
  }
  for (size_t i = 0; i < prompts; ++i) {
    if (!std::isfinite(condition.rewards[i])) {
      throw RuntimeError("evaluation: condition '" + condition.name + "' has reward " +
                         std::to_string(condition.rewards[i]) + " for held-out prompt " +
                         std::to_string(i));
    }
  }
}

double outcome(double reward, double baseline) {
  return reward > baseline ? 1.0 : (reward == baseline ? 0.5 : 0.0);
}

// The four statistics of one condition, on the prompts listed in `indices`.
struct Sample {
  double mean, std, win_rate, gain;
};

Sample sample_of(const std::vector<double>& rewards, const std::vector<double>& baseline,
                 const std::vector<size_t>& indices) {
  const double n = static_cast<double>(indices.size());
  double sum = 0, wins = 0, gain = 0;
  for (size_t i : indices) {
    sum += rewards[i];
    wins += outcome(rewards[i], baseline[i]);
    gain += rewards[i] - baseline[i];
  }
  const double mean = sum / n;
  double squares = 0;
  for (size_t i : indices) squares += (rewards[i] - mean) * (rewards[i] - mean);
  const double std = indices.size() > 1 ? std::sqrt(squares / (n - 1)) : 0.0;
  return Sample{mean, std, wins / n, gain / n};
}

IntervalEstimate interval(double value, std::vector<double> draws, double confidence) {
  const double tail = (1.0 - confidence) / 2.0;
  return IntervalEstimate{value, quantile(draws, tail), quantile(draws, 1.0 - tail)};
}

}  // namespace

double quantile(std::vector<double> values, double q) {
  if (values.empty()) throw RuntimeError("quantile of no values");
  std::sort(values.begin(), values.end());
  const double position = q * static_cast<double>(values.size() - 1);
  const size_t below = static_cast<size_t>(std::floor(position));
  const size_t above = std::min(below + 1, values.size() - 1);
  const double fraction = position - static_cast<double>(below);
  return values[below] + fraction * (values[above] - values[below]);
}

double mean_of(const std::vector<double>& values) {
  double sum = 0;
  for (double v : values) sum += v;
  return values.empty() ? 0.0 : sum / static_cast<double>(values.size());
}

double sample_std(const std::vector<double>& values) {
  if (values.size() < 2) return 0.0;
  const double mean = mean_of(values);
  double squares = 0;
  for (double v : values) squares += (v - mean) * (v - mean);
  return std::sqrt(squares / static_cast<double>(values.size() - 1));
}

double win_rate(const std::vector<double>& rewards, const std::vector<double>& baseline) {
  double wins = 0;
  for (size_t i = 0; i < rewards.size(); ++i) wins += outcome(rewards[i], baseline.at(i));
  return rewards.empty() ? 0.0 : wins / static_cast<double>(rewards.size());
}

std::vector<ConditionStats> evaluation_stats(const ConditionRewards& baseline,
                                             const std::vector<ConditionRewards>& conditions,
                                             const BootstrapOptions& options) {
  const size_t n = baseline.rewards.size();
  if (n == 0) throw RuntimeError("evaluation: no held-out prompts to compute statistics on");
  if (options.resamples < 1) throw RuntimeError("evaluation: bootstrap needs resamples >= 1");
  std::vector<const ConditionRewards*> all = {&baseline};
  for (const auto& condition : conditions) all.push_back(&condition);
  for (const auto* condition : all) check_rewards(*condition, n);

  // draws[c][statistic][b]: statistic 0..3 (mean, std, win rate, gain) of condition c in
  // resample b.
  std::vector<std::vector<std::vector<double>>> draws(
      all.size(), std::vector<std::vector<double>>(4, std::vector<double>(options.resamples)));
  std::vector<size_t> indices(n);
  for (int64_t b = 0; b < options.resamples; ++b) {
    RngStream rng(options.seed, RngPurpose::kBootstrap, {options.tag, static_cast<uint64_t>(b)});
    for (size_t& index : indices) index = rng.below(n);
    for (size_t c = 0; c < all.size(); ++c) {
      const Sample s = sample_of(all[c]->rewards, baseline.rewards, indices);
      draws[c][0][b] = s.mean;
      draws[c][1][b] = s.std;
      draws[c][2][b] = s.win_rate;
      draws[c][3][b] = s.gain;
    }
  }

  std::vector<size_t> every(n);
  for (size_t i = 0; i < n; ++i) every[i] = i;
  std::vector<ConditionStats> out;
  for (size_t c = 0; c < all.size(); ++c) {
    const Sample s = sample_of(all[c]->rewards, baseline.rewards, every);
    ConditionStats stats;
    stats.name = all[c]->name;
    stats.prompts = static_cast<int64_t>(n);
    stats.mean = interval(s.mean, draws[c][0], options.confidence);
    stats.std = interval(s.std, draws[c][1], options.confidence);
    stats.win_rate = interval(s.win_rate, draws[c][2], options.confidence);
    stats.gain = interval(s.gain, draws[c][3], options.confidence);
    out.push_back(stats);
  }
  return out;
}

}  // namespace alignpro
