#include "align/pool_prompter.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>

#include "common/error.h"

namespace alignpro {

namespace {

const char kPlaceholder[] = "{prompt}";

std::string number(double value) {
  std::ostringstream out;
  out.precision(17);
  out << value;
  return out.str();
}

void check_templates(const std::vector<std::string>& templates) {
  if (templates.empty()) {
    throw InputError("prompter.pool is empty; prompter.kind = pool needs at least one template");
  }
  for (size_t i = 0; i < templates.size(); ++i) {
    if (templates[i].find(kPlaceholder) == std::string::npos) {
      throw InputError("prompter.pool[" + std::to_string(i) + "] = '" + templates[i] +
                       "' has no {prompt}; each template must show where the user prompt goes");
    }
  }
}

std::vector<double> checked_reference(std::vector<double> reference, size_t pool_size) {
  if (reference.empty()) return std::vector<double>(pool_size, 1.0 / pool_size);
  if (reference.size() != pool_size) {
    throw InputError("prompter.pool_reference has " + std::to_string(reference.size()) +
                     " probabilities for " + std::to_string(pool_size) +
                     " templates in prompter.pool; give one per template, or none for uniform");
  }
  double total = 0.0;
  for (size_t i = 0; i < reference.size(); ++i) {
    if (!(reference[i] > 0.0) || !std::isfinite(reference[i])) {
      throw InputError("prompter.pool_reference[" + std::to_string(i) +
                       "] = " + number(reference[i]) +
                       "; each probability must be positive (a template "
                       "the reference never chooses would make the KL infinite)");
    }
    total += reference[i];
  }
  if (std::abs(total - 1.0) > 1e-6) {
    throw InputError("prompter.pool_reference sums to " + number(total) + "; it must sum to 1");
  }
  for (double& p : reference) p /= total;  // remove the rounding the check allowed
  return reference;
}

}  // namespace

PoolPrompter::PoolPrompter(std::vector<std::string> templates, std::vector<double> reference)
    : templates_(std::move(templates)) {
  check_templates(templates_);
  reference_ = checked_reference(std::move(reference), templates_.size());
  const torch::Tensor ref = torch::tensor(reference_, torch::kFloat64);
  reference_log_probs_ = torch::log(ref).to(torch::kFloat32);
  logits_ = reference_log_probs_.clone().requires_grad_(true);
}

torch::Tensor PoolPrompter::log_probs() const {
  return torch::log_softmax(logits_, 0);
}

torch::Tensor PoolPrompter::log_prob(int64_t choice) const {
  if (choice < 0 || choice >= static_cast<int64_t>(size())) {
    throw RuntimeError("pool prompter: choice " + std::to_string(choice) + " is outside the " +
                       std::to_string(size()) + " templates");
  }
  return log_probs()[choice];
}

std::vector<double> PoolPrompter::probabilities() const {
  const torch::Tensor p = torch::softmax(logits_.detach().to(torch::kFloat64), 0);
  return std::vector<double>(p.data_ptr<double>(), p.data_ptr<double>() + p.numel());
}

int64_t PoolPrompter::sample(RngStream& rng) const {
  const std::vector<double> p = probabilities();
  const double u = rng.uniform();
  double cumulative = 0.0;
  for (size_t i = 0; i < p.size(); ++i) {
    cumulative += p[i];
    if (u < cumulative) return static_cast<int64_t>(i);
  }
  // u fell in the rounding gap above the last cumulative sum: the last template with mass.
  for (size_t i = p.size(); i-- > 0;) {
    if (p[i] > 0) return static_cast<int64_t>(i);
  }
  return static_cast<int64_t>(p.size()) - 1;
}

std::string PoolPrompter::rewrite(int64_t choice, const std::string& prompt) const {
  const std::string& pattern = templates_.at(choice);
  std::string out;
  size_t from = 0;
  for (size_t at; (at = pattern.find(kPlaceholder, from)) != std::string::npos;) {
    out.append(pattern, from, at - from);
    out += prompt;
    from = at + sizeof(kPlaceholder) - 1;
  }
  out.append(pattern, from, std::string::npos);
  return out;
}

PoolRewardEstimate::PoolRewardEstimate(size_t pool_size)
    : sums_(pool_size, 0.0), counts_(pool_size, 0) {}

PoolRewardEstimate::PoolRewardEstimate(std::vector<double> sums, std::vector<int64_t> counts)
    : sums_(std::move(sums)), counts_(std::move(counts)) {
  if (sums_.size() != counts_.size()) {
    throw InputError("pool reward estimate: " + std::to_string(sums_.size()) + " sums but " +
                     std::to_string(counts_.size()) + " counts");
  }
}

void PoolRewardEstimate::add(int64_t choice, double reward) {
  sums_.at(choice) += reward;
  ++counts_.at(choice);
}

bool PoolRewardEstimate::complete() const {
  return std::all_of(counts_.begin(), counts_.end(), [](int64_t n) { return n > 0; });
}

std::vector<double> PoolRewardEstimate::means() const {
  std::vector<double> means(sums_.size(), std::numeric_limits<double>::quiet_NaN());
  for (size_t i = 0; i < sums_.size(); ++i) {
    if (counts_[i] > 0) means[i] = sums_[i] / static_cast<double>(counts_[i]);
  }
  return means;
}

std::vector<double> optimal_pool_distribution(const std::vector<double>& reference,
                                              const std::vector<double>& mean_reward,
                                              double kl_coef) {
  if (reference.size() != mean_reward.size() || reference.empty()) {
    throw RuntimeError("optimal pool distribution: " + std::to_string(reference.size()) +
                       " reference probabilities for " + std::to_string(mean_reward.size()) +
                       " rewards");
  }
  const size_t n = reference.size();
  std::vector<double> out(n, 0.0);
  if (kl_coef <= 0.0) {
    const double best = *std::max_element(mean_reward.begin(), mean_reward.end());
    for (size_t i = 0; i < n; ++i) out[i] = mean_reward[i] == best ? reference[i] : 0.0;
  } else {
    // log rho* up to a constant; subtracting the maximum keeps exp() in range.
    std::vector<double> log_weight(n);
    for (size_t i = 0; i < n; ++i)
      log_weight[i] = std::log(reference[i]) + mean_reward[i] / kl_coef;
    const double top = *std::max_element(log_weight.begin(), log_weight.end());
    for (size_t i = 0; i < n; ++i) out[i] = std::exp(log_weight[i] - top);
  }
  double total = 0.0;
  for (double p : out) total += p;
  for (double& p : out) p /= total;
  return out;
}

namespace {

void check_same_size(const std::vector<double>& p, const std::vector<double>& q) {
  if (p.size() != q.size()) {
    throw RuntimeError("distributions over " + std::to_string(p.size()) + " and " +
                       std::to_string(q.size()) + " templates cannot be compared");
  }
}

}  // namespace

double kl_divergence(const std::vector<double>& p, const std::vector<double>& q) {
  check_same_size(p, q);
  double kl = 0.0;
  for (size_t i = 0; i < p.size(); ++i) {
    if (p[i] <= 0.0) continue;
    if (q[i] <= 0.0) return std::numeric_limits<double>::infinity();
    kl += p[i] * std::log(p[i] / q[i]);
  }
  return kl;
}

double total_variation(const std::vector<double>& p, const std::vector<double>& q) {
  check_same_size(p, q);
  double l1 = 0.0;
  for (size_t i = 0; i < p.size(); ++i) l1 += std::abs(p[i] - q[i]);
  return 0.5 * l1;
}

}  // namespace alignpro
