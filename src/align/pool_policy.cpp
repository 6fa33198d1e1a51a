#include "align/pool_policy.h"

#include "common/error.h"

namespace alignpro {

std::vector<Rewrite> PoolPolicy::sample(const std::vector<std::string>& prompts,
                                        std::vector<RngStream>& streams) {
  if (streams.size() != prompts.size()) {
    throw RuntimeError("pool prompter: " + std::to_string(streams.size()) + " streams for " +
                       std::to_string(prompts.size()) + " prompts");
  }
  torch::NoGradGuard no_grad;
  const torch::Tensor logp = prompter_.log_probs().to(torch::kFloat32);  // [pool]
  const torch::Tensor& ref = prompter_.reference_log_probs();            // [pool]
  std::vector<Rewrite> rewrites;
  rewrites.reserve(prompts.size());
  for (size_t i = 0; i < prompts.size(); ++i) {
    Rewrite rewrite;
    rewrite.choice = prompter_.sample(streams[i]);
    rewrite.text = prompter_.rewrite(rewrite.choice, prompts[i]);
    rewrite.tokens = {rewrite.choice};
    rewrite.old_logprobs = {logp[rewrite.choice].item<float>()};
    rewrite.ref_logprobs = {ref[rewrite.choice].item<float>()};
    rewrites.push_back(std::move(rewrite));
  }
  return rewrites;
}

TokenLogProbs PoolPolicy::log_probs(const std::vector<std::string>& prompts,
                                    const std::vector<Rewrite>& rewrites) {
  std::vector<int64_t> choices;
  for (const Rewrite& rewrite : rewrites) choices.push_back(rewrite.tokens.at(0));
  const torch::Tensor index = torch::tensor(choices, torch::kInt64);
  TokenLogProbs out;
  out.logprobs = prompter_.log_probs().index_select(0, index).unsqueeze(1);  // [units, 1]
  out.mask = torch::ones_like(out.logprobs.detach());
  return out;
}

PoolStanding pool_standing(const PoolPrompter& prompter, const PoolRewardEstimate& estimate,
                           double kl_coef) {
  PoolStanding standing;
  if (!estimate.complete()) return standing;
  standing.trained = prompter.probabilities();
  standing.rho_star = optimal_pool_distribution(prompter.reference(), estimate.means(), kl_coef);
  standing.total_variation = total_variation(standing.trained, standing.rho_star);
  standing.kl_rho_star_reference = kl_divergence(standing.rho_star, prompter.reference());
  standing.kl_trained_reference = kl_divergence(standing.trained, prompter.reference());
  return standing;
}

}  // namespace alignpro
