#include "align/evaluation_stats.h"

#include <gtest/gtest.h>

#include <cmath>

#include "common/error.h"
#include "common/rng.h"

namespace alignpro {
namespace {

BootstrapOptions options(int64_t resamples = 2000, double confidence = 0.95) {
  BootstrapOptions o;
  o.resamples = resamples;
  o.confidence = confidence;
  o.seed = 3;
  return o;
}

std::vector<double> normal_rewards(uint64_t tag, size_t n, double mean, double sd) {
  std::vector<double> out;
  for (size_t i = 0; i < n; ++i) {
    RngStream rng(17, RngPurpose::kEval, {tag, i});
    out.push_back(mean + sd * rng.normal());
  }
  return out;
}

TEST(EvaluationStats, AllWinsGiveWinRateOneWithADegenerateInterval) {
  const ConditionRewards base{"none", {0.1, 0.2, 0.3, 0.0, 0.5}};
  const ConditionRewards better{"align-pro", {0.2, 0.9, 0.4, 0.1, 0.6}};
  const auto stats = evaluation_stats(base, {better}, options());
  ASSERT_EQ(stats.size(), 2u);
  EXPECT_EQ(stats[1].name, "align-pro");
  EXPECT_EQ(stats[1].win_rate.value, 1.0);
  EXPECT_EQ(stats[1].win_rate.ci_low, 1.0);
  EXPECT_EQ(stats[1].win_rate.ci_high, 1.0);
  EXPECT_GT(stats[1].gain.ci_low, 0.0);
}

TEST(EvaluationStats, BaselineAgainstItselfTiesEverywhere) {
  const ConditionRewards base{"none", {1.0, 2.0, 3.0}};
  const auto stats = evaluation_stats(base, {}, options(200));
  ASSERT_EQ(stats.size(), 1u);
  EXPECT_EQ(stats[0].win_rate.value, 0.5);
  EXPECT_EQ(stats[0].win_rate.ci_low, 0.5);
  EXPECT_EQ(stats[0].gain.value, 0.0);
  EXPECT_EQ(stats[0].gain.ci_high, 0.0);
  EXPECT_DOUBLE_EQ(stats[0].mean.value, 2.0);
  EXPECT_DOUBLE_EQ(stats[0].std.value, 1.0);
}

TEST(EvaluationStats, TiesCountHalf) {
  EXPECT_DOUBLE_EQ(win_rate({1, 2, 3, 4}, {1, 3, 3, 0}), (0.5 + 0 + 0.5 + 1) / 4);
}

TEST(EvaluationStats, KnownShiftIsRecoveredWithinItsInterval) {
  // Paired rewards: the condition adds exactly 0.3 to each prompt's noisy baseline, so the
  // gain is 0.3 in every resample, while the mean's interval reflects the spread.
  const auto base_rewards = normal_rewards(1, 400, 0.0, 1.0);
  std::vector<double> shifted;
  for (double r : base_rewards) shifted.push_back(r + 0.3);
  const auto stats = evaluation_stats({"none", base_rewards}, {{"shifted", shifted}}, options());
  EXPECT_NEAR(stats[1].gain.value, 0.3, 1e-12);
  EXPECT_NEAR(stats[1].gain.ci_low, 0.3, 1e-12);
  EXPECT_NEAR(stats[1].gain.ci_high, 0.3, 1e-12);
  EXPECT_NEAR(stats[1].mean.value - stats[0].mean.value, 0.3, 1e-12);
  // The 95% interval of a mean of 400 unit-variance values is about +-1.96 / 20 = +-0.098.
  const double half_width = (stats[0].mean.ci_high - stats[0].mean.ci_low) / 2;
  EXPECT_NEAR(half_width, 0.098, 0.015);
  EXPECT_LT(stats[0].mean.ci_low, stats[0].mean.value);
  EXPECT_GT(stats[0].mean.ci_high, stats[0].mean.value);
  EXPECT_NEAR(stats[0].std.value, 1.0, 0.1);
  EXPECT_LT(stats[0].std.ci_low, stats[0].std.value);
  EXPECT_EQ(stats[1].win_rate.value, 1.0);
}

TEST(EvaluationStats, NoisyGainIntervalCoversTheTruth) {
  const auto base_rewards = normal_rewards(2, 500, 0.0, 1.0);
  const auto noise = normal_rewards(3, 500, 0.2, 0.5);
  std::vector<double> better;
  for (size_t i = 0; i < base_rewards.size(); ++i) better.push_back(base_rewards[i] + noise[i]);
  const auto stats = evaluation_stats({"none", base_rewards}, {{"better", better}}, options());
  // Interval of the mean gain: 0.2 +- 1.96 * 0.5 / sqrt(500) = 0.2 +- 0.044.
  EXPECT_LT(stats[1].gain.ci_low, 0.2 + 0.02);
  EXPECT_GT(stats[1].gain.ci_high, 0.2 - 0.02);
  EXPECT_GT(stats[1].gain.ci_low, 0.0);
  EXPECT_GT(stats[1].win_rate.ci_low, 0.5);
}

TEST(EvaluationStats, ResamplesAreReproducibleAndDependOnSeedAndTag) {
  const auto base_rewards = normal_rewards(4, 50, 0.0, 1.0);
  const auto a = evaluation_stats({"none", base_rewards}, {}, options(300));
  const auto b = evaluation_stats({"none", base_rewards}, {}, options(300));
  EXPECT_EQ(a[0].mean.ci_low, b[0].mean.ci_low);
  auto other = options(300);
  other.tag = 1;
  EXPECT_NE(evaluation_stats({"none", base_rewards}, {}, other)[0].mean.ci_low, a[0].mean.ci_low);
}

TEST(EvaluationStats, HigherConfidenceWidensTheInterval) {
  const auto base_rewards = normal_rewards(5, 100, 0.0, 1.0);
  const auto narrow = evaluation_stats({"none", base_rewards}, {}, options(1000, 0.5))[0].mean;
  const auto wide = evaluation_stats({"none", base_rewards}, {}, options(1000, 0.99))[0].mean;
  EXPECT_LT(wide.ci_low, narrow.ci_low);
  EXPECT_GT(wide.ci_high, narrow.ci_high);
}

TEST(EvaluationStats, BadRewardsAreRejectedWithTheirCondition) {
  try {
    evaluation_stats({"none", {1.0, 2.0}}, {{"align-pro", {1.0, NAN}}}, options(10));
    FAIL() << "no error";
  } catch (const RuntimeError& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("'align-pro'"), std::string::npos) << message;
    EXPECT_NE(message.find("prompt 1"), std::string::npos) << message;
  }
  EXPECT_THROW(evaluation_stats({"none", {1.0}}, {{"x", {1.0, 2.0}}}, options(10)), RuntimeError);
  EXPECT_THROW(evaluation_stats({"none", {}}, {}, options(10)), RuntimeError);
}

TEST(Quantile, InterpolatesLikeNumpy) {
  EXPECT_DOUBLE_EQ(quantile({4, 1, 3, 2}, 0.5), 2.5);
  EXPECT_DOUBLE_EQ(quantile({1, 2, 3, 4, 5}, 0.25), 2.0);
  EXPECT_DOUBLE_EQ(quantile({1, 2}, 0.1), 1.1);
  EXPECT_DOUBLE_EQ(quantile({7}, 0.975), 7.0);
}

}  // namespace
}  // namespace alignpro
