#include "align/gradient_sync.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "align/phase_timer.h"
#include "common/error.h"
#include "common/rng.h"

namespace alignpro {

namespace {

void check_dtype(const torch::Tensor& param, size_t index) {
  const auto type = param.scalar_type();
  if (type != torch::kFloat32 && type != torch::kBFloat16 && type != torch::kFloat16) {
    throw RuntimeError("gradient aggregation: parameter " + std::to_string(index) + " is " +
                       std::string(c10::toString(type)) +
                       "; only float32, bfloat16 and float16 parameters are supported");
  }
}

uint64_t hash_bytes(uint64_t hash, const void* data, size_t bytes) {
  const auto* p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < bytes; i += 8) {
    uint64_t word = 0;
    std::memcpy(&word, p + i, std::min<size_t>(8, bytes - i));
    hash = mix64(hash ^ word);
  }
  return hash;
}

std::string hex(uint64_t value) {
  char text[17];
  std::snprintf(text, sizeof(text), "%016llx", static_cast<unsigned long long>(value));
  return text;
}

}  // namespace

Aggregation parse_aggregation(const std::string& value) {
  if (value == "allreduce") return Aggregation::kAllreduce;
  if (value == "reduce") return Aggregation::kReduce;
  throw InputError("optim.aggregation = '" + value + "' is not known; allowed: allreduce, reduce");
}

FlatLayout::FlatLayout(const std::vector<torch::Tensor>& params, size_t bucket_bytes) {
  for (const auto& param : params) {
    offsets_.push_back(numel_);
    numel_ += param.numel();
  }
  const int64_t per_bucket = std::max<int64_t>(1, bucket_bytes / sizeof(float));
  for (int64_t begin = 0; begin < numel_; begin += per_bucket) {
    buckets_.emplace_back(begin, std::min(numel_, begin + per_bucket));
  }
}

GradientSync::GradientSync(Communicator& comm, std::vector<torch::Tensor> params,
                           Aggregation aggregation, size_t bucket_bytes)
    : comm_(comm),
      params_(std::move(params)),
      aggregation_(aggregation),
      layout_(params_, bucket_bytes) {
  for (size_t i = 0; i < params_.size(); ++i) check_dtype(params_[i], i);
  flat_ = torch::empty({layout_.numel()}, torch::kFloat32);
}

bool GradientSync::holds_optimizer() const {
  return aggregation_ == Aggregation::kAllreduce || comm_.is_coordinator();
}

void GradientSync::pack_grads(torch::Tensor& flat) {
  ScopedSeconds timer(stats_.copy_seconds);
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < params_.size(); ++i) {
    torch::Tensor slot = flat.narrow(0, layout_.offset(i), params_[i].numel());
    const torch::Tensor& grad = params_[i].grad();
    if (grad.defined()) {
      slot.copy_(grad.reshape({-1}));
    } else {
      slot.zero_();
    }
  }
}

void GradientSync::unpack_grads(const torch::Tensor& flat) {
  ScopedSeconds timer(stats_.copy_seconds);
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < params_.size(); ++i) {
    torch::Tensor& param = params_[i];
    const torch::Tensor slot = flat.narrow(0, layout_.offset(i), param.numel());
    if (!param.grad().defined()) param.mutable_grad() = torch::zeros_like(param);
    param.mutable_grad().copy_(slot.view(param.sizes()));
  }
}

void GradientSync::pack_values(torch::Tensor& flat) const {
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < params_.size(); ++i) {
    flat.narrow(0, layout_.offset(i), params_[i].numel()).copy_(params_[i].detach().reshape({-1}));
  }
}

void GradientSync::unpack_values(const torch::Tensor& flat) {
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < params_.size(); ++i) {
    const torch::Tensor slot = flat.narrow(0, layout_.offset(i), params_[i].numel());
    params_[i].copy_(slot.view(params_[i].sizes()));
  }
}

void GradientSync::sum_buckets(torch::Tensor& flat) {
  ScopedSeconds timer(stats_.collective_seconds);
  float* data = flat.data_ptr<float>();
  for (const auto& [begin, end] : layout_.buckets()) {
    const size_t count = static_cast<size_t>(end - begin);
    if (aggregation_ == Aggregation::kAllreduce) {
      comm_.allreduce_sum(data + begin, count, "gradient allreduce");
    } else {
      comm_.reduce_sum(data + begin, count, 0, "gradient reduce");
    }
    stats_.bytes += static_cast<int64_t>(count * sizeof(float));
    ++stats_.collectives;
  }
}

void GradientSync::broadcast_buckets(torch::Tensor& flat) {
  ScopedSeconds timer(stats_.collective_seconds);
  float* data = flat.data_ptr<float>();
  for (const auto& [begin, end] : layout_.buckets()) {
    const size_t count = static_cast<size_t>(end - begin);
    comm_.broadcast(data + begin, count * sizeof(float), 0, "weight broadcast");
    if (comm_.is_coordinator()) stats_.bytes += static_cast<int64_t>(count * sizeof(float));
    ++stats_.collectives;
  }
}

void GradientSync::sum_gradients(double divisor) {
  pack_grads(flat_);
  sum_buckets(flat_);
  if (holds_optimizer()) {
    flat_.div_(divisor);
    unpack_grads(flat_);
  }
}

void GradientSync::broadcast_parameters() {
  if (comm_.is_coordinator()) {
    ScopedSeconds timer(stats_.copy_seconds);
    pack_values(flat_);
  }
  broadcast_buckets(flat_);
  if (!comm_.is_coordinator()) {
    ScopedSeconds timer(stats_.copy_seconds);
    unpack_values(flat_);
  }
}

// For reduce, only rank 0 knows the norm; every rank needs it to stop together on a NaN.
double GradientSync::agree_on_norm(double norm) {
  if (aggregation_ == Aggregation::kReduce) {
    ScopedSeconds timer(stats_.collective_seconds);
    comm_.broadcast(&norm, sizeof(norm), 0, "gradient norm");
    ++stats_.collectives;
  }
  return norm;
}

double GradientSync::update(AdamW* optimizer, double lr, double max_grad_norm, double divisor) {
  if (holds_optimizer() && optimizer == nullptr) {
    throw RuntimeError("gradient aggregation: rank " + std::to_string(comm_.rank()) +
                       " holds the optimiser state but was given no optimiser");
  }
  sum_gradients(divisor);
  double norm = 0.0;
  if (holds_optimizer()) norm = clip_grad_norm(params_, max_grad_norm);
  norm = agree_on_norm(norm);
  if (!std::isfinite(norm)) {
    throw RuntimeError("the summed gradient is not finite (global norm " + std::to_string(norm) +
                       "); the step is stopped before any weight changes");
  }
  if (holds_optimizer()) optimizer->step(lr);
  if (aggregation_ == Aggregation::kReduce) broadcast_parameters();
  return norm;
}

uint64_t GradientSync::local_checksum() const {
  uint64_t hash = mix64(params_.size());
  for (const auto& param : params_) {
    const torch::Tensor bytes = param.detach().to(torch::kCPU).contiguous();
    for (int64_t size : bytes.sizes()) hash = mix64(hash ^ static_cast<uint64_t>(size));
    hash = hash_bytes(hash, bytes.data_ptr(), bytes.numel() * bytes.element_size());
  }
  return hash;
}

void GradientSync::check_replicas(int64_t step) {
  const std::string mine = hex(local_checksum());
  std::vector<std::string> all;
  {
    ScopedSeconds timer(stats_.collective_seconds);
    all = comm_.allgather(mine, "replica checksum");
    ++stats_.collectives;
  }
  std::string diverged;
  for (size_t rank = 1; rank < all.size(); ++rank) {
    if (all[rank] != all[0]) {
      diverged +=
          (diverged.empty() ? "rank " : ", rank ") + std::to_string(rank) + " has " + all[rank];
    }
  }
  if (!diverged.empty()) {
    throw RuntimeError("prompter replicas diverged at step " + std::to_string(step) + ": " +
                       diverged + ", rank 0 has " + all[0]);
  }
}

}  // namespace alignpro
