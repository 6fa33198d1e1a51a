// The Align-Pro learning signal: the KL of the prompter to its reference, the per-candidate
// return, leave-one-out advantages over the K candidates of a prompt, and the clipped
// policy-gradient loss on the tokens of the rewrites. Tensors are libtorch tensors on any
// device; shapes use the axes units (the work units of this rank, slot-major: unit = slot * K +
// candidate), tokens (rewrite tokens, right-padded; mask says which are real), prompts and
// candidates.
#pragma once

#include <cstdint>
#include <string>

#include <torch/torch.h>

namespace alignpro {

// How KL(rho || rho_ref) is estimated from tokens sampled from rho, per token, with
// log_ratio = logp - ref_logp:
//   k1 = log_ratio                         (unbiased, can be negative)
//   k3 = exp(-log_ratio) - 1 + log_ratio   (unbiased, never negative, lower variance)
enum class KlEstimator { kK1, kK3 };
// Where the KL enters: subtracted from the return (reward), or added to the loss (loss).
// In reward mode the REINFORCE gradient of -lambda * k1 is exactly that of -lambda * KL. As a
// loss, k1's gradient d(sum_t logp_t) has zero mean over sampled rewrites, so it does not pull
// towards the reference; k3's gradient (1 - rho_ref/rho) d(logp) is in expectation that of
// KL(rho_ref || rho), which does. Both are offered, as the job file allows.
enum class KlMode { kReward, kLoss };
// What the summed loss is divided by: the global number of work units or of rewrite tokens.
enum class LossNormalization { kUnits, kTokens };

// Parse the job-file values; each throws InputError naming the key and what is allowed.
KlEstimator parse_kl_estimator(const std::string& value);         // optim.kl_estimator
KlMode parse_kl_mode(const std::string& value);                   // optim.kl_mode
LossNormalization parse_normalization(const std::string& value);  // optim.normalize

// The per-token KL estimate; masked-out tokens are 0 whatever their log-probs hold.
// logp, ref_logp, mask: [units, tokens] -> [units, tokens]
torch::Tensor kl_per_token(const torch::Tensor& logp, const torch::Tensor& ref_logp,
                           const torch::Tensor& mask, KlEstimator estimator);

// The KL estimate of each rewrite: the sum over its tokens. [units, tokens] -> [units]
torch::Tensor kl_per_unit(const torch::Tensor& logp, const torch::Tensor& ref_logp,
                          const torch::Tensor& mask, KlEstimator estimator);

// The return of each candidate. reward mode: R_hat - kl_coef * kl; loss mode: R_hat (the KL
// is then a loss term). rewards, kl: [units] -> [units]
torch::Tensor candidate_returns(const torch::Tensor& rewards, const torch::Tensor& kl,
                                double kl_coef, KlMode mode);

// Leave-one-out advantages: each candidate's return minus the mean return of the other K-1
// candidates of the same prompt; with divide_by_std, divided by (the sample standard deviation
// of the group's returns + 1e-6). With K = 1 there is no other candidate, the baseline is 0 and
// no division is done. returns: [prompts, candidates] -> [prompts, candidates]
torch::Tensor leave_one_out_advantages(const torch::Tensor& returns, bool divide_by_std);

struct PolicyLossInputs {
  torch::Tensor logp;        // [units, tokens] under the prompter now (carries the graph)
  torch::Tensor old_logp;    // [units, tokens] under the prompter at rollout time
  torch::Tensor ref_logp;    // [units, tokens] under the reference prompter
  torch::Tensor mask;        // [units, tokens] true (or 1) on rewrite tokens, false on padding
  torch::Tensor advantages;  // [units]
};

struct PolicyLossOptions {
  double clip = 0.2;     // the ratio logp/old_logp is clipped to [1 - clip, 1 + clip]
  double kl_coef = 0.0;  // lambda; used here only in loss mode
  KlMode kl_mode = KlMode::kReward;
  KlEstimator kl_estimator = KlEstimator::kK1;
  // The global number of units or tokens of the step (over all ranks), so that each rank's
  // loss is its share of one global mean and summed gradients need no further scaling.
  double normalizer = 1.0;
};

struct PolicyLoss {
  torch::Tensor loss;           // scalar with graph: policy term + KL term
  double policy_term = 0.0;     // its parts, for logs
  double kl_term = 0.0;         // 0 in reward mode
  double clipped_fraction = 0;  // share of this rank's rewrite tokens whose ratio was clipped
};

// The PPO clipped surrogate per token, -min(ratio * A, clip(ratio) * A) with ratio =
// exp(logp - old_logp), summed over the rewrite tokens of every unit and divided by the
// normalizer; in loss mode plus kl_coef * sum(k) / normalizer. When old_logp equals logp (one
// pass over fresh rollouts) its gradient is the REINFORCE gradient -A * d(sum_t logp_t).
PolicyLoss policy_loss(const PolicyLossInputs& inputs, const PolicyLossOptions& options);

// The divisor of the loss for a step's global counts.
double loss_normalizer(LossNormalization normalization, int64_t global_units,
                       int64_t global_tokens);

// The index along the first axis of the first row holding a NaN or infinity; -1 when all are
// finite. Used to name the work unit that broke a step.
int64_t first_nonfinite_row(const torch::Tensor& values);

}  // namespace alignpro
