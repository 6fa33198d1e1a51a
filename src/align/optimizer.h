// The prompter's optimiser: AdamW with decoupled weight decay (the update of
// torch.optim.AdamW, operation for operation), global gradient-norm clipping, and the learning
// rate schedule (linear warmup, then constant or cosine decay). Its state is a set of named
// tensors so that a checkpoint can store it and a resumed run continue exactly.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "common/job.h"

namespace alignpro {

struct AdamWOptions {
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;  // decoupled: each step scales a weight by (1 - lr * weight_decay)
};

AdamWOptions adamw_options(const OptimConfig& optim);

class AdamW {
 public:
  // params: leaf tensors with requires_grad; names: one per parameter, used as the keys of
  // the state (empty: "0", "1", ...).
  AdamW(std::vector<torch::Tensor> params, AdamWOptions options,
        std::vector<std::string> names = {});

  // One update with learning rate lr from the parameters' .grad(); a parameter without a
  // gradient is left alone, as torch does.
  void step(double lr);
  void zero_grad();

  int64_t step_count() const { return step_count_; }
  const std::vector<torch::Tensor>& params() const { return params_; }

  // "step" (the optimiser's step count), and for each parameter "step.NAME" (the updates it
  // has had: torch counts per parameter, and skips one without a gradient), "exp_avg.NAME" and
  // "exp_avg_sq.NAME" (its moments, on the CPU, in its dtype). Counts are 0-dim int64 tensors.
  std::map<std::string, torch::Tensor> state() const;
  // Restores state(); throws InputError naming a missing entry or one whose shape differs.
  // source names the checkpoint in messages.
  void load_state(const std::map<std::string, torch::Tensor>& state, const std::string& source);

 private:
  std::vector<torch::Tensor> params_;
  std::vector<std::string> names_;
  AdamWOptions options_;
  int64_t step_count_ = 0;
  std::vector<int64_t> param_steps_;
  std::vector<torch::Tensor> exp_avg_;  // same shape, dtype and device as each parameter
  std::vector<torch::Tensor> exp_avg_sq_;
};

// Scales all gradients together so that their global L2 norm is at most max_norm (the rule of
// torch.nn.utils.clip_grad_norm_: factor max_norm / (norm + 1e-6), applied only when below 1).
// max_norm = 0 clips nothing. Returns the norm before clipping (NaN or infinite when a
// gradient is; the caller stops the step then).
double clip_grad_norm(const std::vector<torch::Tensor>& params, double max_norm);

// The learning rate of step s (0-based): peak * (s + 1) / warmup during warmup; after it,
// peak (constant) or peak * (1 + cos(pi * p)) / 2 with p = (s - warmup) / (steps - warmup)
// (cosine, which reaches 0 at the end of the run).
class LrSchedule {
 public:
  LrSchedule(double peak_lr, int64_t warmup_steps, const std::string& kind, int64_t total_steps);
  double at(int64_t step) const;

 private:
  double peak_lr_;
  int64_t warmup_steps_;
  bool cosine_;
  int64_t total_steps_;
};

LrSchedule lr_schedule(const OptimConfig& optim, int64_t total_steps);

}  // namespace alignpro
