#include "align/objective.h"

#include "common/error.h"

namespace alignpro {

namespace {

void check_same_shape(const torch::Tensor& a, const torch::Tensor& b, const char* what) {
  if (a.sizes() != b.sizes()) {
    throw RuntimeError(std::string("objective: ") + what + " have different shapes");
  }
}

void check_token_inputs(const torch::Tensor& logp, const torch::Tensor& other,
                        const torch::Tensor& mask) {
  if (logp.dim() != 2) throw RuntimeError("objective: log-probs must be [units, tokens]");
  check_same_shape(logp, other, "log-probs of the policy and of the reference or rollout");
  check_same_shape(logp, mask, "log-probs and the token mask");
}

// logp - other on real tokens, 0 on padding, so that padding never reaches an exp().
torch::Tensor masked_log_ratio(const torch::Tensor& logp, const torch::Tensor& other,
                               const torch::Tensor& mask) {
  return torch::where(mask.to(torch::kBool), logp - other, torch::zeros_like(logp));
}

}  // namespace

KlEstimator parse_kl_estimator(const std::string& value) {
  if (value == "k1") return KlEstimator::kK1;
  if (value == "k3") return KlEstimator::kK3;
  throw InputError("optim.kl_estimator = '" + value + "' is not known; allowed: k1, k3");
}

KlMode parse_kl_mode(const std::string& value) {
  if (value == "reward") return KlMode::kReward;
  if (value == "loss") return KlMode::kLoss;
  throw InputError("optim.kl_mode = '" + value + "' is not known; allowed: reward, loss");
}

LossNormalization parse_normalization(const std::string& value) {
  if (value == "units") return LossNormalization::kUnits;
  if (value == "tokens") return LossNormalization::kTokens;
  throw InputError("optim.normalize = '" + value + "' is not known; allowed: units, tokens");
}

torch::Tensor kl_per_token(const torch::Tensor& logp, const torch::Tensor& ref_logp,
                           const torch::Tensor& mask, KlEstimator estimator) {
  check_token_inputs(logp, ref_logp, mask);
  const torch::Tensor log_ratio = masked_log_ratio(logp, ref_logp, mask);  // [units, tokens]
  if (estimator == KlEstimator::kK1) return log_ratio;
  // Padding has log_ratio 0, where k3 is exactly 0 too.
  return torch::exp(-log_ratio) - 1 + log_ratio;
}

torch::Tensor kl_per_unit(const torch::Tensor& logp, const torch::Tensor& ref_logp,
                          const torch::Tensor& mask, KlEstimator estimator) {
  return kl_per_token(logp, ref_logp, mask, estimator).sum(1);
}

torch::Tensor candidate_returns(const torch::Tensor& rewards, const torch::Tensor& kl,
                                double kl_coef, KlMode mode) {
  check_same_shape(rewards, kl, "rewards and KL estimates");
  if (mode == KlMode::kLoss) return rewards.clone();
  return rewards - kl_coef * kl;
}

torch::Tensor leave_one_out_advantages(const torch::Tensor& returns, bool divide_by_std) {
  if (returns.dim() != 2) {
    throw RuntimeError("objective: returns must be [prompts, candidates]");
  }
  const int64_t k = returns.size(1);
  if (k == 1) return returns.clone();
  const torch::Tensor others_sum = returns.sum(1, true) - returns;  // [prompts, candidates]
  torch::Tensor advantages = returns - others_sum / static_cast<double>(k - 1);
  if (divide_by_std) {
    const torch::Tensor group_std = returns.std(1, /*unbiased=*/true, /*keepdim=*/true);
    advantages = advantages / (group_std + 1e-6);
  }
  return advantages;
}

PolicyLoss policy_loss(const PolicyLossInputs& in, const PolicyLossOptions& options) {
  check_token_inputs(in.logp, in.old_logp, in.mask);
  check_same_shape(in.logp, in.ref_logp, "log-probs of the policy and of the reference");
  if (in.advantages.dim() != 1 || in.advantages.size(0) != in.logp.size(0)) {
    throw RuntimeError("objective: advantages must be [units] with one per row of log-probs");
  }
  const torch::Tensor mask = in.mask.to(in.logp.dtype());  // [units, tokens]
  const torch::Tensor ratio = torch::exp(masked_log_ratio(in.logp, in.old_logp.detach(), in.mask));
  const torch::Tensor advantage = in.advantages.detach().to(in.logp.dtype()).unsqueeze(1);
  const torch::Tensor unclipped = -advantage * ratio;  // [units, tokens]
  const torch::Tensor clipped =
      -advantage * torch::clamp(ratio, 1.0 - options.clip, 1.0 + options.clip);
  const torch::Tensor per_token = torch::max(unclipped, clipped) * mask;
  const torch::Tensor policy_term = per_token.sum() / options.normalizer;

  PolicyLoss out;
  out.loss = policy_term;
  out.policy_term = policy_term.item<double>();
  if (options.kl_mode == KlMode::kLoss && options.kl_coef != 0.0) {
    const torch::Tensor kl =
        kl_per_token(in.logp, in.ref_logp.detach(), in.mask, options.kl_estimator).sum();
    const torch::Tensor kl_term = options.kl_coef * kl / options.normalizer;
    out.loss = out.loss + kl_term;
    out.kl_term = kl_term.item<double>();
  }
  const double tokens = mask.sum().item<double>();
  const double clipped_tokens =
      ((clipped > unclipped).to(mask.dtype()) * mask).sum().item<double>();
  out.clipped_fraction = tokens > 0 ? clipped_tokens / tokens : 0.0;
  return out;
}

double loss_normalizer(LossNormalization normalization, int64_t global_units,
                       int64_t global_tokens) {
  const int64_t count = normalization == LossNormalization::kUnits ? global_units : global_tokens;
  if (count <= 0) {
    throw RuntimeError(
        "the step has no " +
        std::string(normalization == LossNormalization::kUnits ? "work units" : "rewrite tokens") +
        " to normalise the loss by");
  }
  return static_cast<double>(count);
}

int64_t first_nonfinite_row(const torch::Tensor& values) {
  if (values.numel() == 0) return -1;
  const torch::Tensor bad = ~torch::isfinite(values.detach());
  const torch::Tensor rows = values.dim() > 1 ? bad.flatten(1).any(1) : bad;  // [rows]
  const torch::Tensor index = rows.nonzero();
  return index.numel() == 0 ? -1 : index[0][0].item<int64_t>();
}

}  // namespace alignpro
