// The `pool` prompter as a policy of the training step: a rewrite is a template of the pool
// filled with the prompt, and its single "token" is the template's index.
#pragma once

#include <string>
#include <vector>

#include "align/pool_prompter.h"
#include "align/rollout.h"

namespace alignpro {

class PoolPolicy final : public PrompterPolicy {
 public:
  explicit PoolPolicy(PoolPrompter& prompter) : prompter_(prompter) {}

  std::vector<Rewrite> sample(const std::vector<std::string>& prompts,
                              std::vector<RngStream>& streams) override;
  TokenLogProbs log_probs(const std::vector<std::string>& prompts,
                          const std::vector<Rewrite>& rewrites) override;
  std::vector<torch::Tensor> parameters() override { return {prompter_.logits()}; }

  PoolPrompter& prompter() { return prompter_; }

 private:
  PoolPrompter& prompter_;
};

// The pool prompter's standing against the exact optimum, for the log and the results file.
struct PoolStanding {
  std::vector<double> trained;   // rho
  std::vector<double> rho_star;  // from the mean rewards observed so far
  double total_variation = 0;    // TV(rho, rho*)
  double kl_rho_star_reference = 0;
  double kl_trained_reference = 0;
};

// Empty vectors (and zeros) while some template has not been observed yet.
PoolStanding pool_standing(const PoolPrompter& prompter, const PoolRewardEstimate& estimate,
                           double kl_coef);

}  // namespace alignpro
