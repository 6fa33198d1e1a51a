// One Align-Pro training step on one rank, in the order of its stages: shard the B*K work
// units, sample this rank's rewrites, generate M responses per rewrite, score them against the
// ORIGINAL prompts, share the per-unit rewards with every rank, compute returns and
// leave-one-out advantages, then the loss on the local units, the gradient aggregation and the
// update. Every unit draws from its own streams, so what is sampled does not depend on the
// number of ranks, and every rank applies the same update.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "align/dataset.h"
#include "align/gradient_sync.h"
#include "align/objective.h"
#include "align/optimizer.h"
#include "align/rewards.h"
#include "align/rollout.h"
#include "align/sharding.h"
#include "common/job.h"
#include "dist/communicator.h"

namespace alignpro {

struct TrainStepOptions {
  uint64_t seed = 0;
  int64_t candidates = 4;  // K
  int64_t samples = 1;     // M
  double kl_coef = 0.05;   // lambda
  KlMode kl_mode = KlMode::kReward;
  KlEstimator kl_estimator = KlEstimator::kK1;
  bool advantage_std = false;
  int64_t ppo_epochs = 1;
  int64_t minibatches = 1;
  double clip = 0.2;
  LossNormalization normalize = LossNormalization::kUnits;
  double max_grad_norm = 1.0;
};

TrainStepOptions train_step_options(const Job& job);

// One work unit as this rank produced it.
struct UnitOutcome {
  int64_t unit = 0;  // slot * K + candidate
  int64_t slot = 0;  // position of the prompt in the step's batch
  int64_t candidate = 0;
  int64_t prompt_index = 0;  // index of the prompt in the dataset
  std::string prompt;
  Rewrite rewrite;
  uint64_t rewrite_stream = 0;             // RngStream id the rewrite drew from
  std::vector<std::string> responses;      // M of them
  std::vector<uint64_t> response_streams;  // their stream ids
  std::vector<double> rewards;             // r(x, y) per response
  double reward_mean = 0;                  // R_hat(x, x')
  double kl = 0;                           // KL estimate of the rewrite, nats
  double advantage = 0;
};

// Seconds this rank spent in each phase of the step.
struct StepPhaseSeconds {
  double prompter_generation = 0;
  double target_generation = 0;
  double reward = 0;
  double backward = 0;       // log-probs, loss and backward pass
  double communication = 0;  // gradient and weight collectives
  double waiting = 0;        // sharing rewards and metrics: mostly waiting for slower ranks
};

struct StepOutcome {
  int64_t step = 0;
  std::vector<UnitOutcome> units;  // this rank's units
  // Per global unit, the same on every rank (float32-rounded as they were shared).
  std::vector<double> unit_rewards;  // R_hat
  std::vector<double> unit_kl;
  std::vector<int64_t> unit_choices;  // pool template indices, -1 for free-form rewrites
  // Metrics of the whole step, the same on every rank.
  double reward_mean = 0;       // over the B*K*M responses
  double reward_std = 0;        // population standard deviation over the same responses
  double kl_mean = 0;           // over the B*K rewrites
  double loss = 0;              // summed over ranks, averaged over the step's updates
  double grad_norm = 0;         // of the last update, before clipping
  double clipped_fraction = 0;  // share of rewrite tokens clipped, over all updates
  int64_t rewrite_tokens = 0;
  int64_t updates = 0;
  StepPhaseSeconds seconds;
};

class TrainStep {
 public:
  // Checks the options against the step's size (InputError: minibatches above the units,
  // fewer units than ranks). optimizer is null on ranks that do not hold it.
  TrainStep(Communicator& comm, const TrainStepOptions& options, const PromptDataset& prompts,
            const PromptSchedule& schedule, PrompterPolicy& prompter, Responder& target,
            RewardFunction& reward, GradientSync& sync, AdamW* optimizer);

  // Runs step `step` (0-based) with learning rate lr. Throws RuntimeError on every rank for a
  // NaN or infinite reward or loss, naming the unit (prompt index, candidate, rank), before
  // any weight changes.
  StepOutcome run(int64_t step, double lr);

  const Sharding& sharding() const { return sharding_; }

 private:
  // Per global unit, as shared by the all-gather.
  struct SharedUnits {
    std::vector<double> rewards, kl, tokens;
    std::vector<int64_t> choices;
  };

  std::vector<UnitOutcome> sample_rewrites(int64_t step, const std::vector<size_t>& batch,
                                           StepPhaseSeconds& seconds);
  void generate_responses(int64_t step, std::vector<UnitOutcome>& units, StepPhaseSeconds& seconds);
  void score_responses(std::vector<UnitOutcome>& units, StepPhaseSeconds& seconds);
  SharedUnits share_rewards(int64_t step, const std::vector<size_t>& batch,
                            const std::vector<UnitOutcome>& units, StepPhaseSeconds& seconds);
  std::vector<double> compute_advantages(const SharedUnits& shared) const;
  void learn(StepOutcome& out, const SharedUnits& shared, double lr);
  double minibatch_update(std::vector<UnitOutcome>& units, const UnitRange& global,
                          const SharedUnits& shared, double lr, StepOutcome& out);
  PolicyLoss local_loss(const std::vector<UnitOutcome*>& local, double normalizer);
  void check_finite_loss(const PolicyLoss& loss, const std::vector<UnitOutcome*>& units,
                         int64_t step);
  void summarize(StepOutcome& out, const SharedUnits& shared);

  Communicator& comm_;
  TrainStepOptions options_;
  const PromptDataset& prompts_;
  const PromptSchedule& schedule_;
  PrompterPolicy& prompter_;
  Responder& target_;
  RewardFunction& reward_;
  GradientSync& sync_;
  AdamW* optimizer_;
  Sharding sharding_;
};

}  // namespace alignpro
