#include "model/layers.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

namespace alignpro::layers {

Linear::Linear(int64_t in, int64_t out, bool has_bias, const torch::TensorOptions& options) {
  weight = register_parameter("weight", torch::empty({out, in}, options));
  if (has_bias) bias = register_parameter("bias", torch::empty({out}, options));
}

Conv1D::Conv1D(int64_t in, int64_t out, const torch::TensorOptions& options) {
  weight = register_parameter("weight", torch::empty({in, out}, options));
  bias = register_parameter("bias", torch::empty({out}, options));
}

torch::Tensor Conv1D::forward(const torch::Tensor& x) const {
  // [..., in] -> [..., out]
  auto sizes = x.sizes().vec();
  sizes.back() = weight.size(1);
  return torch::addmm(bias, x.reshape({-1, x.size(-1)}), weight).view(sizes);
}

Embedding::Embedding(int64_t count, int64_t dim, const torch::TensorOptions& options) {
  weight = register_parameter("weight", torch::empty({count, dim}, options));
}

RmsNorm::RmsNorm(int64_t dim, double eps_, const torch::TensorOptions& options) : eps(eps_) {
  weight = register_parameter("weight", torch::empty({dim}, options));
}

torch::Tensor RmsNorm::forward(const torch::Tensor& x) const {
  const torch::Tensor h = x.to(torch::kFloat32);
  const torch::Tensor variance = h.pow(2).mean(-1, /*keepdim=*/true);
  return weight * (h * torch::rsqrt(variance + eps)).to(x.scalar_type());
}

LayerNorm::LayerNorm(int64_t dim, double eps_, const torch::TensorOptions& options) : eps(eps_) {
  weight = register_parameter("weight", torch::empty({dim}, options));
  bias = register_parameter("bias", torch::empty({dim}, options));
}

torch::Tensor LayerNorm::forward(const torch::Tensor& x) const {
  return torch::layer_norm(x, {weight.size(0)}, weight, bias, eps);
}

torch::Tensor activate(const torch::Tensor& x, Activation activation) {
  switch (activation) {
    case Activation::kSilu:
      return torch::silu(x);
    case Activation::kGeluExact:
      return torch::gelu(x);
    case Activation::kGeluTanh:
      return torch::gelu(x, "tanh");
    case Activation::kRelu:
      return torch::relu(x);
  }
  return x;
}

Rotary::Rotary(const ModelConfig& config, torch::Device device) {
  const int64_t dim = config.head_dim;
  const RopeConfig& rope = config.rope;
  const auto f32 = torch::TensorOptions().dtype(torch::kFloat32);
  // 1 / theta^(2i / dim), in float32 like the reference.
  torch::Tensor inv_freq =
      1.0 /
      torch::pow(rope.theta, torch::arange(0, dim, 2, torch::kInt64).to(torch::kFloat32) / dim);
  if (rope.type == RopeType::kLinear) {
    inv_freq = inv_freq / rope.factor;
  } else if (rope.type == RopeType::kLlama3) {
    // Llama 3: long wavelengths are slowed by `factor`, short ones kept, the band between them
    // interpolated (the reference's _compute_llama3_parameters, step for step in float32).
    const double old_context = static_cast<double>(rope.original_max_position_embeddings);
    const double low_freq_wavelen = old_context / rope.low_freq_factor;
    const double high_freq_wavelen = old_context / rope.high_freq_factor;
    const torch::Tensor wavelen = 2 * M_PI / inv_freq;
    torch::Tensor scaled =
        torch::where(wavelen > low_freq_wavelen, inv_freq / rope.factor, inv_freq);
    const torch::Tensor smooth = (old_context / wavelen - rope.low_freq_factor) /
                                 (rope.high_freq_factor - rope.low_freq_factor);
    const torch::Tensor smoothed = (1 - smooth) * scaled / rope.factor + smooth * scaled;
    const torch::Tensor medium =
        (wavelen >= high_freq_wavelen).logical_and(wavelen <= low_freq_wavelen);
    scaled = torch::where(medium, smoothed, scaled);
    inv_freq = scaled;
  }
  inv_freq_ = inv_freq.to(f32).to(device);
}

std::pair<torch::Tensor, torch::Tensor> Rotary::cos_sin(const torch::Tensor& positions,
                                                        torch::ScalarType dtype) const {
  // [batch, seq, head_dim / 2]
  const torch::Tensor freqs = positions.unsqueeze(-1).to(torch::kFloat32) * inv_freq_;
  // [batch, seq, 1, head_dim]
  const torch::Tensor emb = torch::cat({freqs, freqs}, -1).unsqueeze(2);
  return {emb.cos().to(dtype), emb.sin().to(dtype)};
}

torch::Tensor apply_rotary(const torch::Tensor& x, const torch::Tensor& cos,
                           const torch::Tensor& sin) {
  const int64_t half = x.size(-1) / 2;
  const torch::Tensor rotated = torch::cat({-x.narrow(-1, half, half), x.narrow(-1, 0, half)}, -1);
  return x * cos + rotated * sin;
}

MaskCache::MaskCache(torch::Tensor key_valid, int64_t past, int64_t seq, int64_t batch,
                     torch::Device device)
    : key_valid_(std::move(key_valid)), past_(past), seq_(seq), batch_(batch), device_(device) {}

const torch::Tensor& MaskCache::get(int64_t window) {
  auto it = masks_.find(window);
  if (it != masks_.end()) return it->second;
  const int64_t keys = past_ + seq_;
  torch::Tensor mask;
  const bool window_bites = window > 0 && keys > window;
  if (key_valid_.defined() || seq_ > 1 || window_bites) {
    const auto long_options = torch::TensorOptions().dtype(torch::kInt64).device(device_);
    const torch::Tensor key_pos = torch::arange(keys, long_options).view({1, keys});
    const torch::Tensor query_pos = torch::arange(past_, keys, long_options).view({seq_, 1});
    torch::Tensor allowed = key_pos <= query_pos;  // [seq, keys]
    if (window_bites) allowed = allowed.logical_and(query_pos - key_pos < window);
    allowed = allowed.unsqueeze(0);  // [1, seq, keys]
    if (key_valid_.defined()) allowed = allowed.logical_and(key_valid_.unsqueeze(1));
    // The lowest float rather than -inf: a padding query that sees no key then gets a uniform
    // (ignored) distribution instead of NaN, which would leak through later layers.
    const float lowest = std::numeric_limits<float>::lowest();
    mask =
        torch::zeros(allowed.sizes(), torch::TensorOptions().dtype(torch::kFloat32).device(device_))
            .masked_fill_(allowed.logical_not(), lowest);
    mask = mask.view({mask.size(0), 1, 1, seq_, keys});
  }
  return masks_.emplace(window, mask).first->second;
}

namespace {

// The inner loops of one-token attention, compiled for several instruction sets and chosen at
// run time: the build itself targets plain x86-64.
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define ALIGNPRO_MULTIVERSION __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define ALIGNPRO_MULTIVERSION
#endif

ALIGNPRO_MULTIVERSION float dot(const float* a, const float* b, int64_t n) {
  // Sixteen partial sums, so the compiler can vectorise without reassociating one sum.
  float partial[16] = {0};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    for (int j = 0; j < 16; ++j) partial[j] += a[i + j] * b[i + j];
  }
  float sum = 0;
  for (; i < n; ++i) sum += a[i] * b[i];
  for (int j = 0; j < 16; ++j) sum += partial[j];
  return sum;
}

ALIGNPRO_MULTIVERSION void add_scaled(float weight, const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += weight * x[i];
}

// Attention of one new token per row, float32 on the CPU, without autograd. Each (row, key-value
// head) reads its cached keys and values once for all query heads of its group; a batched matrix
// product here would run thousands of tiny products, each with its own dispatch.
//   q [batch, 1, heads, head_dim]; k, v [batch, kv_heads, keys, head_dim] (rows contiguous);
//   mask [batch or 1, 1, 1, 1, keys] or undefined. Returns [batch, 1, heads * head_dim].
torch::Tensor attend_one_token_cpu(const torch::Tensor& q_in, const torch::Tensor& k,
                                   const torch::Tensor& v, const torch::Tensor& mask,
                                   double scale) {
  const torch::Tensor q = q_in.contiguous();
  const int64_t batch = q.size(0), heads = q.size(2), dim = q.size(3);
  const int64_t kv_heads = k.size(1), keys = k.size(2), groups = heads / kv_heads;
  torch::Tensor out = torch::empty({batch, 1, heads * dim}, q.options());
  torch::Tensor m;
  int64_t mask_row_stride = 0;
  if (mask.defined()) {
    m = mask.reshape({mask.size(0), keys}).contiguous();
    mask_row_stride = mask.size(0) == 1 ? 0 : keys;
  }
  const float* qp = q.data_ptr<float>();
  const float* kp = k.data_ptr<float>();
  const float* vp = v.data_ptr<float>();
  const float* mp = m.defined() ? m.data_ptr<float>() : nullptr;
  float* op = out.data_ptr<float>();
  const int64_t k_row = k.stride(0), k_head = k.stride(1), k_key = k.stride(2);
  const int64_t v_row = v.stride(0), v_head = v.stride(1), v_key = v.stride(2);
  const auto fscale = static_cast<float>(scale);
  at::parallel_for(0, batch * kv_heads, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> scores(static_cast<size_t>(groups * keys));  // [groups, keys]
    for (int64_t item = begin; item < end; ++item) {
      const int64_t b = item / kv_heads, h = item % kv_heads;
      const float* kb = kp + b * k_row + h * k_head;
      const float* vb = vp + b * v_row + h * v_head;
      const float* mb = mp != nullptr ? mp + b * mask_row_stride : nullptr;
      const float* qb = qp + item * groups * dim;  // heads h*groups .. h*groups+groups-1
      float* ob = op + item * groups * dim;
      for (int64_t j = 0; j < keys; ++j) {
        const float* key = kb + j * k_key;
        const float bias = mb != nullptr ? mb[j] : 0.0f;
        for (int64_t g = 0; g < groups; ++g) {
          scores[static_cast<size_t>(g * keys + j)] = dot(qb + g * dim, key, dim) * fscale + bias;
        }
      }
      for (int64_t g = 0; g < groups; ++g) {
        float* s = scores.data() + g * keys;
        const float top = *std::max_element(s, s + keys);
        float total = 0;
        for (int64_t j = 0; j < keys; ++j) {
          s[j] = std::exp(s[j] - top);
          total += s[j];
        }
        const float inverse = 1.0f / total;
        for (int64_t j = 0; j < keys; ++j) s[j] *= inverse;
        std::fill(ob + g * dim, ob + (g + 1) * dim, 0.0f);
      }
      for (int64_t j = 0; j < keys; ++j) {
        const float* value = vb + j * v_key;
        for (int64_t g = 0; g < groups; ++g) {
          add_scaled(scores[static_cast<size_t>(g * keys + j)], value, ob + g * dim, dim);
        }
      }
    }
  });
  return out;
}

}  // namespace

torch::Tensor attend(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                     const torch::Tensor& mask, double scale) {
  if (q.size(1) == 1 && q.device().is_cpu() && q.scalar_type() == torch::kFloat32 &&
      k.scalar_type() == torch::kFloat32 && k.stride(3) == 1 && v.stride(3) == 1 &&
      !(torch::GradMode::is_enabled() &&
        (q.requires_grad() || k.requires_grad() || v.requires_grad()))) {
    return attend_one_token_cpu(q, k, v, mask, scale);
  }
  const int64_t batch = q.size(0), seq = q.size(1), heads = q.size(2), dim = q.size(3);
  const int64_t kv_heads = k.size(1), keys = k.size(2);
  const int64_t groups = heads / kv_heads;
  // Query heads that share a key-value head are stacked as extra query rows:
  // [batch, kv_heads, groups * seq, head_dim]. For one new token this is a view.
  const torch::Tensor qg = q.view({batch, seq, kv_heads, groups, dim})
                               .permute({0, 2, 3, 1, 4})
                               .reshape({batch, kv_heads, groups * seq, dim});
  torch::Tensor scores = torch::matmul(qg, k.transpose(-2, -1)) * scale;  // [b, kvh, g*s, keys]
  if (mask.defined()) {
    scores = scores.view({batch, kv_heads, groups, seq, keys}).to(torch::kFloat32) + mask;
  }
  const torch::Tensor probs = torch::softmax(scores, -1, torch::kFloat32)
                                  .to(v.scalar_type())
                                  .view({batch, kv_heads, groups * seq, keys});
  const torch::Tensor out = torch::matmul(probs, v);  // [b, kvh, g*s, head_dim]
  return out.view({batch, kv_heads, groups, seq, dim})
      .permute({0, 3, 1, 2, 4})
      .reshape({batch, seq, heads * dim});
}

torch::Tensor default_positions(int64_t batch, int64_t past, int64_t seq, torch::Device device) {
  return torch::arange(past, past + seq, torch::TensorOptions().dtype(torch::kInt64).device(device))
      .unsqueeze(0)
      .expand({batch, seq});
}

}  // namespace alignpro::layers
