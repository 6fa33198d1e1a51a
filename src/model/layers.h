// Building blocks shared by the architectures in model/: projections, norms, rotary embeddings,
// attention masks and attention over a KV cache. Internal to model/.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "model/config.h"
#include "model/transformer.h"

namespace alignpro::layers {

// A linear map y = x W^T + b with W [out, in], as torch.nn.Linear stores it. Weights start
// uninitialised: they are always loaded from a checkpoint.
struct Linear : torch::nn::Module {
  Linear(int64_t in, int64_t out, bool bias, const torch::TensorOptions& options);
  torch::Tensor forward(const torch::Tensor& x) const { return torch::linear(x, weight, bias); }
  torch::Tensor weight;  // [out, in]
  torch::Tensor bias;    // [out] or undefined
};

// GPT-2's Conv1D: y = x W + b with W [in, out], the transpose of Linear's layout. Kept in that
// layout so the checkpoint's tensors load and save unchanged.
struct Conv1D : torch::nn::Module {
  Conv1D(int64_t in, int64_t out, const torch::TensorOptions& options);
  torch::Tensor forward(const torch::Tensor& x) const;
  torch::Tensor weight;  // [in, out]
  torch::Tensor bias;    // [out]
};

struct Embedding : torch::nn::Module {
  Embedding(int64_t count, int64_t dim, const torch::TensorOptions& options);
  torch::Tensor forward(const torch::Tensor& ids) const { return torch::embedding(weight, ids); }
  torch::Tensor weight;  // [count, dim]
};

// x / sqrt(mean(x^2) + eps) * weight, computed in float32 as the reference does.
struct RmsNorm : torch::nn::Module {
  RmsNorm(int64_t dim, double eps, const torch::TensorOptions& options);
  torch::Tensor forward(const torch::Tensor& x) const;
  torch::Tensor weight;  // [dim]
  double eps;
};

struct LayerNorm : torch::nn::Module {
  LayerNorm(int64_t dim, double eps, const torch::TensorOptions& options);
  torch::Tensor forward(const torch::Tensor& x) const;
  torch::Tensor weight;  // [dim]
  torch::Tensor bias;    // [dim]
  double eps;
};

torch::Tensor activate(const torch::Tensor& x, Activation activation);

// Rotary position embeddings (the "rotate half" layout): inverse frequencies from the config's
// rope settings, computed in float32 exactly as the reference computes them.
class Rotary {
 public:
  Rotary(const ModelConfig& config, torch::Device device);
  // cos and sin for positions [batch, seq]: each [batch, seq, 1, head_dim], in `dtype`.
  std::pair<torch::Tensor, torch::Tensor> cos_sin(const torch::Tensor& positions,
                                                  torch::ScalarType dtype) const;
  const torch::Tensor& inverse_frequencies() const { return inv_freq_; }

 private:
  torch::Tensor inv_freq_;  // [head_dim / 2] float32
};

// x * cos + rotate_half(x) * sin, for x [batch, seq, heads, head_dim].
torch::Tensor apply_rotary(const torch::Tensor& x, const torch::Tensor& cos,
                           const torch::Tensor& sin);

// Additive float32 masks for one forward: 0 where a query may look at a key, the lowest float
// where it may not. Built once per forward and shared by the layers with the same window.
class MaskCache {
 public:
  // key_valid [batch, past + seq] bool or undefined (all valid); queries sit at cache positions
  // past .. past + seq - 1.
  MaskCache(torch::Tensor key_valid, int64_t past, int64_t seq, int64_t batch,
            torch::Device device);
  // [batch, 1, 1, seq, past + seq] (broadcast over key-value heads and query groups), or
  // undefined when nothing is masked.
  const torch::Tensor& get(int64_t window);

 private:
  torch::Tensor key_valid_;
  int64_t past_, seq_, batch_;
  torch::Device device_;
  std::map<int64_t, torch::Tensor> masks_;
};

// Scaled dot-product attention with grouped-query heads, without repeating keys and values.
//   q [batch, seq, heads, head_dim]; k, v [batch, kv_heads, keys, head_dim];
//   mask as MaskCache::get returns. Returns [batch, seq, heads * head_dim].
torch::Tensor attend(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                     const torch::Tensor& mask, double scale);

// Positions past .. past + seq - 1 for every row, [batch, seq] int64.
torch::Tensor default_positions(int64_t batch, int64_t past, int64_t seq, torch::Device device);

}  // namespace alignpro::layers

namespace alignpro {

std::shared_ptr<Transformer> make_llama(const ModelConfig& config,
                                        const torch::TensorOptions& options);
std::shared_ptr<Transformer> make_gpt2(const ModelConfig& config,
                                       const torch::TensorOptions& options);

}  // namespace alignpro
