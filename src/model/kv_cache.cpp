#include "model/kv_cache.h"

#include <string>

#include "common/error.h"

namespace alignpro {

KvCache::KvCache(int64_t num_layers, int64_t batch, int64_t kv_heads, int64_t capacity,
                 int64_t head_dim, torch::TensorOptions options)
    : max_batch_(batch), batch_(batch), capacity_(capacity) {
  keys_.reserve(static_cast<size_t>(num_layers));
  values_.reserve(static_cast<size_t>(num_layers));
  for (int64_t i = 0; i < num_layers; ++i) {
    keys_.push_back(torch::empty({batch, kv_heads, capacity, head_dim}, options));
    values_.push_back(torch::empty({batch, kv_heads, capacity, head_dim}, options));
  }
}

std::pair<torch::Tensor, torch::Tensor> KvCache::append(int64_t layer, const torch::Tensor& keys,
                                                        const torch::Tensor& values) {
  const int64_t seq = keys.size(2);
  if (length_ + seq > capacity_) {
    throw RuntimeError("KV cache overflow: " + std::to_string(length_) + " positions filled, " +
                       std::to_string(seq) + " more asked for, capacity " +
                       std::to_string(capacity_));
  }
  if (keys.size(0) != batch_) {
    throw RuntimeError("KV cache holds " + std::to_string(batch_) + " rows, got keys for " +
                       std::to_string(keys.size(0)));
  }
  torch::Tensor k = keys_[static_cast<size_t>(layer)].narrow(0, 0, batch_);
  torch::Tensor v = values_[static_cast<size_t>(layer)].narrow(0, 0, batch_);
  k.narrow(2, length_, seq).copy_(keys);
  v.narrow(2, length_, seq).copy_(values);
  return {k.narrow(2, 0, length_ + seq), v.narrow(2, 0, length_ + seq)};
}

void KvCache::advance(int64_t seq) {
  length_ += seq;
}

void KvCache::keep_rows(const std::vector<int64_t>& rows) {
  for (size_t i = 0; i < rows.size(); ++i) {
    if (rows[i] < 0 || rows[i] >= batch_ || (i > 0 && rows[i] <= rows[i - 1])) {
      throw RuntimeError("KvCache::keep_rows needs ascending row indices below " +
                         std::to_string(batch_));
    }
  }
  // Ascending order means row rows[i] >= i, so moving to the front never overwrites a row that is
  // still to be moved.
  for (size_t layer = 0; layer < keys_.size(); ++layer) {
    for (size_t i = 0; i < rows.size(); ++i) {
      const int64_t from = rows[i];
      const auto to = static_cast<int64_t>(i);
      if (from == to) continue;
      keys_[layer][to].narrow(1, 0, length_).copy_(keys_[layer][from].narrow(1, 0, length_));
      values_[layer][to].narrow(1, 0, length_).copy_(values_[layer][from].narrow(1, 0, length_));
    }
  }
  batch_ = static_cast<int64_t>(rows.size());
}

void KvCache::reset(int64_t batch) {
  if (batch > max_batch_) {
    throw RuntimeError("KvCache::reset: batch " + std::to_string(batch) + " exceeds the " +
                       std::to_string(max_batch_) + " rows allocated");
  }
  batch_ = batch;
  length_ = 0;
}

}  // namespace alignpro
