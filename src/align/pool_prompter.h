// The `pool` prompter: instead of writing a rewrite, it chooses one of a fixed list of prompt
// templates (system prompts, prefixes, instructions), each holding {prompt}. Its policy is a
// categorical distribution rho(i) = softmax(logits)_i with a reference rho_ref (uniform or
// given). With a finite pool the KL-regularised optimum is known exactly,
//   rho*(i) = rho_ref(i) * exp(R(i) / lambda) / Z,
// so a run can log how far the trained prompter is from it.
//
// One distribution is shared by all prompts: the templates carry no prompt features, so a
// per-prompt table could not generalise to held-out prompts. The objective averaged over
// prompts is then sum_i rho(i) * mean_x R(x, i) - lambda * KL(rho || rho_ref), whose maximiser
// is rho* with R(i) = mean_x R(x, i), the mean reward of template i over prompts.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "common/rng.h"

namespace alignpro {

class PoolPrompter {
 public:
  // templates: each must contain {prompt}; reference: empty (uniform) or one positive
  // probability per template summing to 1. Throws InputError naming prompter.pool[i] or
  // prompter.pool_reference. The logits start at log(reference), so training starts from
  // rho = rho_ref as an LM prompter starts from its reference copy.
  PoolPrompter(std::vector<std::string> templates, std::vector<double> reference);

  size_t size() const { return templates_.size(); }
  const std::vector<std::string>& templates() const { return templates_; }
  // The trainable parameter. [pool], float32 (as the gradient aggregation expects), requires
  // grad.
  torch::Tensor& logits() { return logits_; }
  const torch::Tensor& logits() const { return logits_; }

  // log rho(i) for every template, with the graph to logits. [pool]
  torch::Tensor log_probs() const;
  // log rho(choice), with the graph. [] (0-dim)
  torch::Tensor log_prob(int64_t choice) const;
  // log rho_ref. [pool]
  const torch::Tensor& reference_log_probs() const { return reference_log_probs_; }
  // rho and rho_ref as plain numbers.
  std::vector<double> probabilities() const;
  const std::vector<double>& reference() const { return reference_; }

  // A template index drawn from rho (inverse CDF of one uniform from rng).
  int64_t sample(RngStream& rng) const;
  // Template `choice` with {prompt} replaced by the user prompt (every occurrence).
  std::string rewrite(int64_t choice, const std::string& prompt) const;

 private:
  std::vector<std::string> templates_;
  std::vector<double> reference_;
  torch::Tensor reference_log_probs_;  // [pool]
  torch::Tensor logits_;               // [pool]
};

// The mean reward of each template over everything observed so far.
class PoolRewardEstimate {
 public:
  explicit PoolRewardEstimate(size_t pool_size);
  // Restores an estimate from its sums and counts (as a checkpoint keeps them).
  PoolRewardEstimate(std::vector<double> sums, std::vector<int64_t> counts);
  void add(int64_t choice, double reward);
  // Whether every template has at least one observation, so that rho* is defined.
  bool complete() const;
  std::vector<double> means() const;  // NaN for templates never observed
  const std::vector<int64_t>& counts() const { return counts_; }
  const std::vector<double>& sums() const { return sums_; }

 private:
  std::vector<double> sums_;
  std::vector<int64_t> counts_;
};

// rho*(i) proportional to reference(i) * exp(reward(i) / kl_coef). kl_coef = 0 is the limit:
// all mass on the best templates, shared in proportion to the reference.
std::vector<double> optimal_pool_distribution(const std::vector<double>& reference,
                                              const std::vector<double>& mean_reward,
                                              double kl_coef);

// KL(p || q) in nats; terms with p(i) = 0 add nothing; infinite where q(i) = 0 < p(i).
double kl_divergence(const std::vector<double>& p, const std::vector<double>& q);
// Total variation distance: half the L1 distance.
double total_variation(const std::vector<double>& p, const std::vector<double>& q);

}  // namespace alignpro
