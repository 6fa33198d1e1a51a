// Statistics of an evaluation: per condition (no optimisation, Align-Pro, RLHF) the mean and
// standard deviation of the reward over held-out prompts, the win rate against no optimisation
// on the same prompts (a tie counts half), and the paired reward gain, each with a percentile
// bootstrap confidence interval. The bootstrap resamples prompts, the same resamples for every
// statistic and condition (so intervals of different conditions are paired too), drawn from
// RngStream(seed, kBootstrap, {tag, resample}).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace alignpro {

struct BootstrapOptions {
  int64_t resamples = 1000;
  double confidence = 0.95;  // the interval holds this share of the bootstrap distribution
  uint64_t seed = 0;
  uint64_t tag = 0;  // separates evaluations of one run (for example the training step)
};

// A statistic and its confidence interval [ci_low, ci_high].
struct IntervalEstimate {
  double value = 0;
  double ci_low = 0;
  double ci_high = 0;
};

struct ConditionStats {
  std::string name;
  int64_t prompts = 0;
  IntervalEstimate mean;      // mean reward
  IntervalEstimate std;       // sample standard deviation of the reward (n - 1; 0 for one prompt)
  IntervalEstimate win_rate;  // P(reward > baseline reward on the same prompt) + P(tie) / 2
  IntervalEstimate gain;      // mean of (reward - baseline reward) on the same prompts
};

// A condition's rewards, one per held-out prompt, in the prompt order of the baseline.
struct ConditionRewards {
  std::string name;
  std::vector<double> rewards;
};

// The statistics of every condition against baseline (no optimisation), which is reported
// first (its win rate is 0.5 and its gain 0 by construction). Throws RuntimeError for a NaN or
// infinite reward (naming the condition and prompt), a condition of another length, or no
// prompts.
std::vector<ConditionStats> evaluation_stats(const ConditionRewards& baseline,
                                             const std::vector<ConditionRewards>& conditions,
                                             const BootstrapOptions& options);

// The q-quantile of values with linear interpolation between order statistics (the default of
// numpy.quantile). values need not be sorted.
double quantile(std::vector<double> values, double q);

// Sample statistics used above, exposed for tests.
double mean_of(const std::vector<double>& values);
double sample_std(const std::vector<double>& values);
double win_rate(const std::vector<double>& rewards, const std::vector<double>& baseline);

}  // namespace alignpro
