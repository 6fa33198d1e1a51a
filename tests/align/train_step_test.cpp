#include "align/train_step.h"

#include <gtest/gtest.h>

#include <cmath>

#include "align/pool_policy.h"
#include "common/error.h"
#include "fake_target.h"

namespace alignpro {
namespace {

using testing::wording_pool;
using testing::WordingTarget;

PromptDataset questions() {
  return PromptDataset::from_prompts(
      {"What is rain?", "Name a prime.", "Why is the sky blue?", "How do magnets work?",
       "What is a noun?", "Who wrote Hamlet?"},
      "questions");
}

// Returns a chosen reward for responses to one prompt, and records the prompts it saw.
class ProbeReward final : public RewardFunction {
 public:
  std::vector<double> score(const std::vector<std::string>& prompts,
                            const std::vector<std::string>& responses) override {
    seen.insert(seen.end(), prompts.begin(), prompts.end());
    std::vector<double> out;
    for (const auto& prompt : prompts) out.push_back(prompt == poisoned ? NAN : 1.0);
    return out;
  }
  std::string describe() const override { return "probe"; }
  std::vector<std::string> seen;
  std::string poisoned;
};

struct PoolRun {
  PoolRun(const TrainStepOptions& options, int64_t batch_prompts, RewardFunction& reward)
      : data(questions()),
        schedule(options.seed, data.size(), batch_prompts, true),
        prompter(wording_pool(), {0.4, 0.3, 0.2, 0.1}),
        policy(prompter),
        comm(make_local_communicator()),
        sync(*comm, policy.parameters(), Aggregation::kAllreduce),
        optimizer(policy.parameters(), AdamWOptions{}),
        step(*comm, options, data, schedule, policy, target, reward, sync, &optimizer) {}
  PromptDataset data;
  PromptSchedule schedule;
  PoolPrompter prompter;
  PoolPolicy policy;
  WordingTarget target;
  std::unique_ptr<Communicator> comm;
  GradientSync sync;
  AdamW optimizer;
  TrainStep step;
};

TEST(TrainStep, PoolPrompterConvergesToTheExactOptimumThroughTheWholeStep) {
  TrainStepOptions options;
  options.seed = 5;
  options.candidates = 4;
  options.samples = 2;
  options.kl_coef = 0.1;
  KeywordReward reward({"thank you"});
  PoolRun run(options, 8, reward);
  const int64_t steps = 800;
  const LrSchedule schedule(0.05, 0, "cosine", steps);
  PoolRewardEstimate estimate(wording_pool().size());
  for (int64_t s = 0; s < steps; ++s) {
    const StepOutcome out = run.step.run(s, schedule.at(s));
    for (size_t u = 0; u < out.unit_choices.size(); ++u) {
      estimate.add(out.unit_choices[u], out.unit_rewards[u]);
    }
  }
  // The target's chance of thanking the user is the expected reward of each template.
  std::vector<double> expected_reward;
  for (const auto& t : wording_pool()) {
    expected_reward.push_back(WordingTarget::thanks_probability(t));
  }
  const auto rho_star =
      optimal_pool_distribution(run.prompter.reference(), expected_reward, options.kl_coef);
  const auto trained = run.prompter.probabilities();
  EXPECT_LT(total_variation(trained, rho_star), 0.05)
      << trained[0] << " " << trained[1] << " " << trained[2] << " " << trained[3];
  EXPECT_GT(total_variation(run.prompter.reference(), rho_star), 0.3);
  const PoolStanding standing = pool_standing(run.prompter, estimate, options.kl_coef);
  ASSERT_EQ(standing.rho_star.size(), 4u);
  EXPECT_LT(total_variation(standing.rho_star, rho_star), 0.05);
  EXPECT_NEAR(standing.total_variation, total_variation(trained, standing.rho_star), 1e-12);
}

TEST(TrainStep, OutcomeHoldsEveryUnitWithItsStreamsAndTheOriginalPrompt) {
  TrainStepOptions options;
  options.seed = 1;
  options.candidates = 2;
  options.samples = 3;
  ProbeReward reward;
  PoolRun run(options, 3, reward);
  const StepOutcome out = run.step.run(0, 0.01);
  ASSERT_EQ(out.units.size(), 6u);
  const auto batch = run.schedule.batch(0);
  for (const UnitOutcome& unit : out.units) {
    EXPECT_EQ(unit.prompt, run.data.prompt(batch[unit.slot]));
    EXPECT_EQ(unit.rewrite.text, run.prompter.rewrite(unit.rewrite.choice, unit.prompt));
    ASSERT_EQ(unit.responses.size(), 3u);
    EXPECT_EQ(unit.rewrite_stream, RngStream(1, RngPurpose::kRewrite,
                                             {0, static_cast<uint64_t>(unit.slot),
                                              static_cast<uint64_t>(unit.candidate)})
                                       .stream_id());
    EXPECT_EQ(unit.response_streams.size(), 3u);
  }
  // The reward saw the original prompts, never the rewrites.
  for (const auto& prompt : reward.seen) EXPECT_EQ(prompt.find("Answer"), std::string::npos);
  EXPECT_EQ(reward.seen.size(), 18u);
  EXPECT_EQ(out.reward_mean, 1.0);
  EXPECT_EQ(out.updates, 1);
}

TEST(TrainStep, LeaveOneOutAdvantagesSumToZeroPerPrompt) {
  TrainStepOptions options;
  options.seed = 2;
  options.candidates = 4;
  KeywordReward reward({"thank you"});
  PoolRun run(options, 3, reward);
  const StepOutcome out = run.step.run(0, 0.01);
  for (int64_t slot = 0; slot < 3; ++slot) {
    double sum = 0;
    for (const auto& unit : out.units) {
      if (unit.slot == slot) sum += unit.advantage;
    }
    EXPECT_NEAR(sum, 0.0, 1e-9);
  }
}

TEST(TrainStep, NonFiniteRewardNamesTheUnitAndLeavesTheWeights) {
  TrainStepOptions options;
  options.seed = 3;
  options.candidates = 2;
  ProbeReward reward;
  PoolRun run(options, 4, reward);
  const auto batch = run.schedule.batch(0);
  reward.poisoned = run.data.prompt(batch[2]);
  const auto before = run.prompter.logits().detach().clone();
  try {
    run.step.run(0, 0.01);
    FAIL() << "no error";
  } catch (const RuntimeError& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("non-finite reward at step 0, prompt index " + std::to_string(batch[2]) +
                           ", candidate 0 (rank 0)"),
              std::string::npos)
        << message;
  }
  EXPECT_TRUE(torch::equal(run.prompter.logits(), before));
}

TEST(TrainStep, TooManyMinibatchesIsAnInputError) {
  TrainStepOptions options;
  options.candidates = 2;
  options.minibatches = 5;
  KeywordReward reward({"x"});
  EXPECT_THROW(PoolRun(options, 2, reward), InputError);
}

TEST(TrainStep, PpoEpochsAndMinibatchesMakeOneUpdateEach) {
  TrainStepOptions options;
  options.seed = 4;
  options.candidates = 4;
  options.ppo_epochs = 3;
  options.minibatches = 2;
  KeywordReward reward({"thank you"});
  PoolRun run(options, 2, reward);
  const StepOutcome out = run.step.run(0, 0.05);
  EXPECT_EQ(out.updates, 6);
  EXPECT_EQ(run.optimizer.step_count(), 6);
  EXPECT_GE(out.clipped_fraction, 0.0);
  EXPECT_LE(out.clipped_fraction, 1.0);
}

}  // namespace
}  // namespace alignpro
