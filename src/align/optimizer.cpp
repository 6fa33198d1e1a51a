#include "align/optimizer.h"

#include <cmath>
#include <utility>

#include "common/error.h"

namespace alignpro {

AdamWOptions adamw_options(const OptimConfig& optim) {
  AdamWOptions options;
  options.beta1 = optim.adam_beta1;
  options.beta2 = optim.adam_beta2;
  options.eps = optim.adam_eps;
  options.weight_decay = optim.weight_decay;
  return options;
}

AdamW::AdamW(std::vector<torch::Tensor> params, AdamWOptions options,
             std::vector<std::string> names)
    : params_(std::move(params)), names_(std::move(names)), options_(options) {
  if (names_.empty()) {
    for (size_t i = 0; i < params_.size(); ++i) names_.push_back(std::to_string(i));
  }
  if (names_.size() != params_.size()) {
    throw RuntimeError("AdamW: " + std::to_string(names_.size()) + " names for " +
                       std::to_string(params_.size()) + " parameters");
  }
  for (const auto& param : params_) {
    exp_avg_.push_back(torch::zeros_like(param, torch::MemoryFormat::Preserve));
    exp_avg_sq_.push_back(torch::zeros_like(param, torch::MemoryFormat::Preserve));
    param_steps_.push_back(0);
  }
}

void AdamW::step(double lr) {
  torch::NoGradGuard no_grad;
  ++step_count_;
  for (size_t i = 0; i < params_.size(); ++i) {
    torch::Tensor& param = params_[i];
    if (!param.grad().defined()) continue;
    const torch::Tensor& grad = param.grad();
    const int64_t step = ++param_steps_[i];
    // The operations and their order are those of torch.optim.AdamW (single-tensor path), so
    // that the results agree bit for bit.
    param.mul_(1 - lr * options_.weight_decay);
    exp_avg_[i].mul_(options_.beta1).add_(grad, 1 - options_.beta1);
    exp_avg_sq_[i].mul_(options_.beta2).addcmul_(grad, grad, 1 - options_.beta2);
    const double bias_correction1 = 1 - std::pow(options_.beta1, static_cast<double>(step));
    const double bias_correction2 = 1 - std::pow(options_.beta2, static_cast<double>(step));
    const double step_size = lr / bias_correction1;
    const torch::Tensor denom =
        (exp_avg_sq_[i].sqrt() / std::sqrt(bias_correction2)).add_(options_.eps);
    param.addcdiv_(exp_avg_[i], denom, -step_size);
  }
}

void AdamW::zero_grad() {
  for (auto& param : params_) {
    if (param.grad().defined()) param.mutable_grad() = torch::Tensor();
  }
}

std::map<std::string, torch::Tensor> AdamW::state() const {
  std::map<std::string, torch::Tensor> state;
  state["step"] = torch::tensor(step_count_, torch::kInt64);
  for (size_t i = 0; i < params_.size(); ++i) {
    state["step." + names_[i]] = torch::tensor(param_steps_[i], torch::kInt64);
    state["exp_avg." + names_[i]] = exp_avg_[i].detach().to(torch::kCPU).clone();
    state["exp_avg_sq." + names_[i]] = exp_avg_sq_[i].detach().to(torch::kCPU).clone();
  }
  return state;
}

namespace {

const torch::Tensor& state_entry(const std::map<std::string, torch::Tensor>& state,
                                 const std::string& key, const std::string& source) {
  const auto found = state.find(key);
  if (found == state.end()) {
    throw InputError(source + ": the optimiser state has no entry '" + key + "'");
  }
  return found->second;
}

torch::Tensor moment_entry(const std::map<std::string, torch::Tensor>& state,
                           const std::string& key, const torch::Tensor& like,
                           const std::string& source) {
  const torch::Tensor& value = state_entry(state, key, source);
  if (value.sizes() != like.sizes()) {
    throw InputError(source + ": optimiser state '" + key + "' has shape " +
                     c10::str(value.sizes()) + ", the parameter has " + c10::str(like.sizes()));
  }
  return value.to(like.device(), like.scalar_type()).clone();
}

int64_t step_entry(const std::map<std::string, torch::Tensor>& state, const std::string& key,
                   const std::string& source) {
  const torch::Tensor& value = state_entry(state, key, source);
  if (value.numel() != 1 || value.is_floating_point() || value.item<int64_t>() < 0) {
    throw InputError(source + ": optimiser state '" + key + "' must be one non-negative integer");
  }
  return value.item<int64_t>();
}

}  // namespace

void AdamW::load_state(const std::map<std::string, torch::Tensor>& state,
                       const std::string& source) {
  // Read everything before changing anything, so a bad state leaves the optimiser as it was.
  const int64_t steps = step_entry(state, "step", source);
  std::vector<int64_t> param_steps;
  std::vector<torch::Tensor> exp_avg, exp_avg_sq;
  for (size_t i = 0; i < params_.size(); ++i) {
    param_steps.push_back(step_entry(state, "step." + names_[i], source));
    exp_avg.push_back(moment_entry(state, "exp_avg." + names_[i], params_[i], source));
    exp_avg_sq.push_back(moment_entry(state, "exp_avg_sq." + names_[i], params_[i], source));
  }
  step_count_ = steps;
  param_steps_ = std::move(param_steps);
  exp_avg_ = std::move(exp_avg);
  exp_avg_sq_ = std::move(exp_avg_sq);
}

double clip_grad_norm(const std::vector<torch::Tensor>& params, double max_norm) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> norms;
  for (const auto& param : params) {
    if (param.grad().defined()) norms.push_back(param.grad().norm(2).to(torch::kCPU));
  }
  if (norms.empty()) return 0.0;
  const torch::Tensor total = torch::stack(norms).norm(2);  // the norm of the per-tensor norms
  if (max_norm > 0) {
    const torch::Tensor factor = torch::clamp(max_norm / (total + 1e-6), c10::nullopt, 1.0);
    for (const auto& param : params) {
      if (param.grad().defined()) param.grad().mul_(factor.to(param.grad().device()));
    }
  }
  return total.item<double>();
}

LrSchedule::LrSchedule(double peak_lr, int64_t warmup_steps, const std::string& kind,
                       int64_t total_steps)
    : peak_lr_(peak_lr), warmup_steps_(warmup_steps), total_steps_(total_steps) {
  if (kind != "constant" && kind != "cosine") {
    throw InputError("optim.schedule = '" + kind + "' is not known; allowed: constant, cosine");
  }
  cosine_ = kind == "cosine";
}

double LrSchedule::at(int64_t step) const {
  if (step < warmup_steps_) {
    return peak_lr_ * static_cast<double>(step + 1) / static_cast<double>(warmup_steps_);
  }
  if (!cosine_ || total_steps_ <= warmup_steps_) return peak_lr_;
  const double progress = std::min(1.0, static_cast<double>(step - warmup_steps_) /
                                            static_cast<double>(total_steps_ - warmup_steps_));
  return peak_lr_ * 0.5 * (1.0 + std::cos(M_PI * progress));
}

LrSchedule lr_schedule(const OptimConfig& optim, int64_t total_steps) {
  return LrSchedule(optim.lr, optim.warmup_steps, optim.schedule, total_steps);
}

}  // namespace alignpro
