// The attention keys and values of earlier positions, kept so that each generation step computes
// only the new token. Buffers are allocated once at full capacity and written in place; rows that
// finish can be dropped without reallocating.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <utility>
#include <vector>

namespace alignpro {

class KvCache {
 public:
  KvCache(int64_t num_layers, int64_t batch, int64_t kv_heads, int64_t capacity, int64_t head_dim,
          torch::TensorOptions options);

  int64_t batch() const { return batch_; }        // rows in use
  int64_t length() const { return length_; }      // positions filled, the same for every row
  int64_t capacity() const { return capacity_; }  // positions the buffers hold
  int64_t num_layers() const { return static_cast<int64_t>(keys_.size()); }

  // Writes one layer's new keys and values, [batch, kv_heads, seq, head_dim], after the filled
  // positions and returns views of all of them, [batch, kv_heads, length + seq, head_dim].
  // Throws RuntimeError when the cache would overflow.
  std::pair<torch::Tensor, torch::Tensor> append(int64_t layer, const torch::Tensor& keys,
                                                 const torch::Tensor& values);
  // Marks `seq` more positions filled; called once per forward, after every layer appended.
  void advance(int64_t seq);

  // Keeps only the given rows (ascending indices into the rows in use), moving them to the front
  // of the buffers in place; the other rows are forgotten.
  void keep_rows(const std::vector<int64_t>& rows);

  // Forgets everything; the buffers are kept for reuse with up to the original batch.
  void reset(int64_t batch);

 private:
  std::vector<torch::Tensor> keys_;    // per layer [max_batch, kv_heads, capacity, head_dim]
  std::vector<torch::Tensor> values_;  // per layer [max_batch, kv_heads, capacity, head_dim]
  int64_t max_batch_;
  int64_t batch_;
  int64_t capacity_;
  int64_t length_ = 0;
};

}  // namespace alignpro
