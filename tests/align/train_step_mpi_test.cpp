// The training step across real MPI ranks (run at 1, 2 and 4 ranks): every rank also runs the
// same job in a world of its own, and the distributed run must sample the same rewrites and
// responses, score the same rewards and end with the same prompter weights.
#include <gtest/gtest.h>

#include <map>

#include "align/pool_policy.h"
#include "align/train_step.h"
#include "common/error.h"
#include "dist/communicator.h"
#include "fake_target.h"
#include "support/mpi_world.h"

namespace alignpro {
namespace {

using testing::wording_pool;
using testing::WordingTarget;

PromptDataset questions() {
  return PromptDataset::from_prompts({"What is rain?", "Name a prime.", "Why is the sky blue?",
                                      "How do magnets work?", "What is a noun?"},
                                     "questions");
}

// A pool prompter trained by TrainStep on a given communicator.
struct Trainer {
  Trainer(Communicator& comm, const TrainStepOptions& options, Aggregation aggregation)
      : data(questions()),
        schedule(options.seed, data.size(), 3, true),
        prompter(wording_pool(), {}),
        policy(prompter),
        reward({"thank you"}),
        sync(comm, policy.parameters(), aggregation, 8),
        optimizer(sync.holds_optimizer()
                      ? std::make_unique<AdamW>(policy.parameters(), AdamWOptions{})
                      : nullptr),
        step(comm, options, data, schedule, policy, target, reward, sync, optimizer.get()) {}
  PromptDataset data;
  PromptSchedule schedule;
  PoolPrompter prompter;
  PoolPolicy policy;
  WordingTarget target;
  KeywordReward reward;
  GradientSync sync;
  std::unique_ptr<AdamW> optimizer;
  TrainStep step;
};

TrainStepOptions step_options() {
  TrainStepOptions options;
  options.seed = 77;
  options.candidates = 4;  // 3 prompts x 4 candidates = 12 units
  options.samples = 2;
  options.kl_coef = 0.2;
  options.ppo_epochs = 2;
  options.minibatches = 2;
  options.advantage_std = true;
  return options;
}

void expect_same_run(const TrainStepOptions& options, Aggregation aggregation) {
  auto alone_comm = make_local_communicator();
  Trainer distributed(testing::mpi_world(), options, aggregation);
  Trainer alone(*alone_comm, options, Aggregation::kAllreduce);
  const int64_t steps = 5;
  for (int64_t s = 0; s < steps; ++s) {
    const double lr = 0.05;
    const StepOutcome mine = distributed.step.run(s, lr);
    const StepOutcome whole = alone.step.run(s, lr);
    ASSERT_EQ(whole.units.size(), 12u);
    ASSERT_EQ(static_cast<int64_t>(mine.units.size()),
              distributed.step.sharding().range(testing::mpi_world().rank()).size());
    for (const UnitOutcome& unit : mine.units) {
      const UnitOutcome& same = whole.units.at(unit.unit);
      EXPECT_EQ(unit.rewrite.text, same.rewrite.text) << "step " << s << " unit " << unit.unit;
      EXPECT_EQ(unit.responses, same.responses);
      EXPECT_EQ(unit.rewards, same.rewards);
      EXPECT_NEAR(unit.advantage, same.advantage, 1e-5);
    }
    EXPECT_EQ(mine.unit_rewards, whole.unit_rewards);
    // Sums over ranks in another order: float32 rounding only.
    EXPECT_NEAR(mine.loss, whole.loss, 1e-5 * std::max(1.0, std::abs(whole.loss)));
    EXPECT_NEAR(mine.reward_mean, whole.reward_mean, 1e-12);
    EXPECT_EQ(mine.updates, 4);
  }
  // Weights after the steps: float32 sums of gradients in another order, through Adam.
  const auto a = distributed.prompter.logits().detach();
  const auto b = alone.prompter.logits().detach();
  EXPECT_LT(((a - b).abs().max() / b.abs().max()).item<double>(), 1e-5);
  EXPECT_GT((a - alone.prompter.reference_log_probs()).abs().max().item<double>(), 0.05);
  EXPECT_NO_THROW(distributed.sync.check_replicas(steps));
}

TEST(TrainStepMpi, AllreduceRunEqualsTheSingleProcessRun) {
  expect_same_run(step_options(), Aggregation::kAllreduce);
}

TEST(TrainStepMpi, ReduceRunEqualsTheSingleProcessRun) {
  TrainStepOptions options = step_options();
  options.kl_mode = KlMode::kLoss;
  options.kl_estimator = KlEstimator::kK3;
  options.normalize = LossNormalization::kTokens;
  expect_same_run(options, Aggregation::kReduce);
}

// Poisons the reward of one unit that lives on the last rank.
class PoisonedReward final : public RewardFunction {
 public:
  explicit PoisonedReward(std::string prompt) : prompt_(std::move(prompt)) {}
  std::vector<double> score(const std::vector<std::string>& prompts,
                            const std::vector<std::string>& responses) override {
    std::vector<double> out;
    for (const auto& p : prompts) out.push_back(p == prompt_ ? INFINITY : 0.5);
    return out;
  }
  std::string describe() const override { return "poisoned"; }

 private:
  std::string prompt_;
};

TEST(TrainStepMpi, NonFiniteRewardOnOneRankStopsEveryRankNamingTheUnit) {
  TrainStepOptions options = step_options();
  const PromptDataset data = questions();
  const PromptSchedule schedule(options.seed, data.size(), 3, true);
  PoolPrompter prompter(wording_pool(), {});
  PoolPolicy policy(prompter);
  WordingTarget target;
  const auto batch = schedule.batch(0);
  PoisonedReward reward(data.prompt(batch[2]));  // slot 2: units 8..11, on the last rank
  GradientSync sync(testing::mpi_world(), policy.parameters(), Aggregation::kAllreduce);
  AdamW optimizer(policy.parameters(), AdamWOptions{});
  TrainStep step(testing::mpi_world(), options, data, schedule, policy, target, reward, sync,
                 &optimizer);
  const int owner = step.sharding().owner(8);
  try {
    step.run(0, 0.01);
    FAIL() << "no error on rank " << testing::mpi_world().rank();
  } catch (const RuntimeError& e) {
    const std::string expected = "non-finite reward at step 0, prompt index " +
                                 std::to_string(batch[2]) + ", candidate 0 (rank " +
                                 std::to_string(owner) + ")";
    EXPECT_NE(std::string(e.what()).find(expected), std::string::npos) << e.what();
  }
  EXPECT_TRUE(testing::mpi_world().all(true, "after a failed step"));
}

}  // namespace
}  // namespace alignpro
