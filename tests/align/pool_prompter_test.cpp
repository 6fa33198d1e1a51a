#include "align/pool_prompter.h"

#include <gtest/gtest.h>

#include <cmath>

#include "align/objective.h"
#include "align/optimizer.h"
#include "common/error.h"

namespace alignpro {
namespace {

const std::vector<std::string> kPool = {"{prompt}", "Be brief. {prompt}",
                                        "Q: {prompt} A:", "Answer politely: {prompt}"};

TEST(PoolPrompter, StartsAtTheReference) {
  const PoolPrompter uniform(kPool, {});
  for (double p : uniform.probabilities()) EXPECT_NEAR(p, 0.25, 1e-7);
  const PoolPrompter given(kPool, {0.4, 0.3, 0.2, 0.1});
  const auto p = given.probabilities();
  EXPECT_NEAR(p[0], 0.4, 1e-7);
  EXPECT_NEAR(p[3], 0.1, 1e-7);
  EXPECT_NEAR(given.log_prob(2).item<double>(), std::log(0.2), 1e-6);
  EXPECT_TRUE(given.logits().requires_grad());
}

TEST(PoolPrompter, RewriteFillsEveryPlaceholder) {
  const PoolPrompter prompter({"{prompt} / {prompt}", "Say: {prompt}"}, {});
  EXPECT_EQ(prompter.rewrite(0, "hi"), "hi / hi");
  EXPECT_EQ(prompter.rewrite(1, "a {b}"), "Say: a {b}");
}

TEST(PoolPrompter, SamplingFollowsTheDistributionAndIsReproducible) {
  const PoolPrompter prompter(kPool, {0.4, 0.3, 0.2, 0.1});
  std::vector<int64_t> counts(4, 0);
  const int draws = 20000;
  for (int i = 0; i < draws; ++i) {
    RngStream rng(5, RngPurpose::kRewrite, {static_cast<uint64_t>(i)});
    ++counts[prompter.sample(rng)];
  }
  // Binomial standard deviation at p = 0.4 and 20000 draws is 0.0035; 0.015 is over 4 sigma.
  for (int i = 0; i < 4; ++i)
    EXPECT_NEAR(counts[i] / double(draws), prompter.reference()[i], 0.015);
  RngStream a(5, RngPurpose::kRewrite, {7}), b(5, RngPurpose::kRewrite, {7});
  EXPECT_EQ(prompter.sample(a), prompter.sample(b));
}

TEST(PoolPrompter, BadPoolsAreInputErrorsNamingTheKey) {
  const auto message = [](std::vector<std::string> pool, std::vector<double> ref) {
    try {
      PoolPrompter(std::move(pool), std::move(ref));
    } catch (const InputError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message({"{prompt}", "no placeholder"}, {}).find("prompter.pool[1]"),
            std::string::npos);
  EXPECT_NE(message({}, {}).find("prompter.pool is empty"), std::string::npos);
  EXPECT_NE(message(kPool, {0.5, 0.5}).find("prompter.pool_reference has 2"), std::string::npos);
  EXPECT_NE(message(kPool, {0.5, 0.5, 0.0, 0.0}).find("prompter.pool_reference[2]"),
            std::string::npos);
  EXPECT_NE(message(kPool, {0.5, 0.5, 0.5, 0.5}).find("sums to 2"), std::string::npos);
}

TEST(OptimalPool, IsReferenceTimesExponentiatedReward) {
  const std::vector<double> ref = {0.5, 0.25, 0.25};
  const std::vector<double> reward = {0.0, 1.0, 2.0};
  const auto best = optimal_pool_distribution(ref, reward, 0.5);
  const double z = 0.5 + 0.25 * std::exp(2.0) + 0.25 * std::exp(4.0);
  EXPECT_NEAR(best[0], 0.5 / z, 1e-12);
  EXPECT_NEAR(best[2], 0.25 * std::exp(4.0) / z, 1e-12);
  // Large lambda keeps the reference; a constant shift of rewards changes nothing.
  EXPECT_LT(total_variation(optimal_pool_distribution(ref, reward, 1e6), ref), 1e-5);
  const auto shifted = optimal_pool_distribution(ref, {10.0, 11.0, 12.0}, 0.5);
  EXPECT_LT(total_variation(shifted, best), 1e-12);
  // lambda = 0: the best templates, in proportion to the reference.
  const auto best_only = optimal_pool_distribution({0.2, 0.6, 0.2}, {1.0, 1.0, 0.0}, 0.0);
  EXPECT_NEAR(best_only[0], 0.25, 1e-15);
  EXPECT_NEAR(best_only[1], 0.75, 1e-15);
  EXPECT_EQ(best_only[2], 0.0);
  // Huge reward / lambda does not overflow.
  const auto extreme = optimal_pool_distribution(ref, {0.0, 1000.0, 0.0}, 1e-3);
  EXPECT_NEAR(extreme[1], 1.0, 1e-12);
}

TEST(OptimalPool, DistancesMatchTheirDefinitions) {
  const std::vector<double> p = {0.5, 0.5, 0.0}, q = {0.25, 0.25, 0.5};
  EXPECT_NEAR(kl_divergence(p, q), std::log(2.0), 1e-12);
  EXPECT_TRUE(std::isinf(kl_divergence(q, p)));
  EXPECT_NEAR(total_variation(p, q), 0.5, 1e-12);
  EXPECT_EQ(kl_divergence(p, p), 0.0);
  EXPECT_THROW(total_variation(p, {1.0}), RuntimeError);
}

TEST(PoolRewardEstimate, AveragesPerTemplate) {
  PoolRewardEstimate estimate(3);
  estimate.add(0, 1.0);
  estimate.add(0, 2.0);
  estimate.add(2, -1.0);
  EXPECT_FALSE(estimate.complete());
  EXPECT_TRUE(std::isnan(estimate.means()[1]));
  estimate.add(1, 0.5);
  EXPECT_TRUE(estimate.complete());
  EXPECT_EQ(estimate.means(), (std::vector<double>{1.5, 0.5, -1.0}));
}

// The synthetic bandit: the reward of template i for prompt slot s is base[i] plus a prompt
// shift (which the leave-one-out baseline removes) plus, on odd slots, a bonus for template 0
// (so that the mean over prompts differs from any single prompt), plus Gaussian noise.
struct Bandit {
  std::vector<double> base = {0.2, 0.5, 0.8, 0.3};
  double noise = 0.3;
  double reward(int64_t step, int64_t slot, int64_t candidate, int64_t choice) const {
    RngStream rng(11, RngPurpose::kResponse,
                  {static_cast<uint64_t>(step), static_cast<uint64_t>(slot),
                   static_cast<uint64_t>(candidate)});
    const double bonus = (slot % 2 == 1 && choice == 0) ? 0.6 : 0.0;
    return base[choice] + 0.1 * slot + bonus + noise * rng.normal();
  }
  // The mean reward over an even number of slots, up to the common prompt shift.
  std::vector<double> mean_reward() const {
    std::vector<double> mean = base;
    mean[0] += 0.3;
    return mean;
  }
};

TEST(PoolPrompter, ReinforceWithLeaveOneOutConvergesToTheExactOptimum) {
  const Bandit bandit;
  const double kl_coef = 0.2;
  const int64_t prompts = 8, candidates = 4, steps = 1500;
  PoolPrompter prompter(kPool, {0.4, 0.3, 0.2, 0.1});
  AdamW optimizer({prompter.logits()}, AdamWOptions{});
  const LrSchedule schedule(0.05, 0, "cosine", steps);
  PoolRewardEstimate estimate(prompter.size());

  for (int64_t step = 0; step < steps; ++step) {
    std::vector<int64_t> choices;
    std::vector<double> rewards;
    for (int64_t slot = 0; slot < prompts; ++slot) {
      for (int64_t k = 0; k < candidates; ++k) {
        RngStream rng(
            11, RngPurpose::kRewrite,
            {static_cast<uint64_t>(step), static_cast<uint64_t>(slot), static_cast<uint64_t>(k)});
        choices.push_back(prompter.sample(rng));
        rewards.push_back(bandit.reward(step, slot, k, choices.back()));
        estimate.add(choices.back(), rewards.back());
      }
    }
    const auto index = torch::tensor(choices, torch::kInt64);
    const torch::Tensor logp =
        prompter.log_probs().index_select(0, index).unsqueeze(1);  // [units, 1]
    const torch::Tensor ref = prompter.reference_log_probs().index_select(0, index).unsqueeze(1);
    const torch::Tensor mask = torch::ones_like(logp);
    const torch::Tensor kl = kl_per_unit(logp.detach(), ref, mask, KlEstimator::kK1);  // [units]
    const torch::Tensor returns =
        candidate_returns(torch::tensor(rewards, torch::kFloat32), kl, kl_coef, KlMode::kReward);
    const torch::Tensor advantages =
        leave_one_out_advantages(returns.view({prompts, candidates}), false).flatten();
    PolicyLossOptions options;
    options.normalizer = static_cast<double>(prompts * candidates);
    const PolicyLoss loss = policy_loss({logp, logp.detach(), ref, mask, advantages}, options);
    optimizer.zero_grad();
    loss.loss.backward();
    optimizer.step(schedule.at(step));
  }

  const auto target =
      optimal_pool_distribution(prompter.reference(), bandit.mean_reward(), kl_coef);
  const auto trained = prompter.probabilities();
  EXPECT_LT(total_variation(trained, target), 0.05)
      << "trained " << trained[0] << " " << trained[1] << " " << trained[2] << " " << trained[3]
      << ", rho* " << target[0] << " " << target[1] << " " << target[2] << " " << target[3];
  // The optimum is far from the reference, so converging to it means something.
  EXPECT_GT(total_variation(prompter.reference(), target), 0.3);
  // rho* from the rewards observed during training agrees with the exact one.
  ASSERT_TRUE(estimate.complete());
  const auto estimated = optimal_pool_distribution(prompter.reference(), estimate.means(), kl_coef);
  EXPECT_LT(total_variation(estimated, target), 0.05);
  EXPECT_GT(kl_divergence(target, prompter.reference()), 0.1);
}

}  // namespace
}  // namespace alignpro
