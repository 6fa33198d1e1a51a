// Keeping the prompter replicas of all ranks identical. Each rank's gradients are copied into
// one flat float32 buffer, summed across ranks one bucket per collective, and divided by the
// step's global count; then either every replica applies the optimiser (allreduce), or rank 0
// alone does and sends the new weights back the same bucketed way (reduce, which spares the
// other ranks the optimiser's memory). A checksum of the replicas catches any drift.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <torch/torch.h>

#include "align/optimizer.h"
#include "dist/communicator.h"

namespace alignpro {

enum class Aggregation { kAllreduce, kReduce };

// Parses optim.aggregation; throws InputError naming the key for anything else.
Aggregation parse_aggregation(const std::string& value);

// 25 MiB: large enough that per-collective latency is negligible, small enough that a bucket
// does not double the memory of a large model in one piece.
inline constexpr size_t kDefaultBucketBytes = size_t{25} << 20;

// What communication has cost this rank, accumulated over calls.
struct CommStats {
  double copy_seconds = 0;        // packing into and unpacking from the flat buffer
  double collective_seconds = 0;  // inside collectives, waiting for the slowest rank included
  int64_t bytes = 0;              // payload bytes this rank put into collectives
  int64_t collectives = 0;
};

// Where each parameter lives in the flat buffer, and how the buffer is cut into buckets.
class FlatLayout {
 public:
  FlatLayout(const std::vector<torch::Tensor>& params, size_t bucket_bytes);

  int64_t numel() const { return numel_; }
  // Element ranges [begin, end) of the buckets, in order; a parameter may span buckets.
  const std::vector<std::pair<int64_t, int64_t>>& buckets() const { return buckets_; }
  int64_t offset(size_t param) const { return offsets_.at(param); }

 private:
  int64_t numel_ = 0;
  std::vector<int64_t> offsets_;
  std::vector<std::pair<int64_t, int64_t>> buckets_;
};

class GradientSync {
 public:
  // params: the replica's trainable tensors, in the same order on every rank. Throws
  // RuntimeError for a parameter that is not float32, bfloat16 or float16 (the flat buffer is
  // float32, which holds these exactly).
  GradientSync(Communicator& comm, std::vector<torch::Tensor> params, Aggregation aggregation,
               size_t bucket_bytes = kDefaultBucketBytes);

  Aggregation aggregation() const { return aggregation_; }
  // Whether this rank holds the optimiser state: every rank for allreduce, rank 0 for reduce.
  bool holds_optimizer() const;

  // Sums every parameter's .grad() over ranks (a missing one counts as zeros) and divides by
  // divisor. allreduce: the result lands on every rank; reduce: on rank 0 only.
  void sum_gradients(double divisor);
  // Rank 0's parameter values to every other rank.
  void broadcast_parameters();

  // One whole update: sum gradients, clip them to max_grad_norm (0: no clipping), step the
  // optimiser with lr where it lives (optimizer may be null on ranks that do not hold it),
  // and for reduce broadcast the new weights. Returns the gradient norm before clipping, on
  // every rank. A NaN or infinite norm throws RuntimeError on every rank before any weight
  // changes.
  double update(AdamW* optimizer, double lr, double max_grad_norm, double divisor);

  // A 64-bit hash of this replica's parameters, bit for bit.
  uint64_t local_checksum() const;
  // Compares every replica with rank 0's; on a mismatch throws RuntimeError on every rank,
  // naming the ranks that differ and the step.
  void check_replicas(int64_t step);

  const CommStats& stats() const { return stats_; }

 private:
  void pack_grads(torch::Tensor& flat);
  void unpack_grads(const torch::Tensor& flat);
  void pack_values(torch::Tensor& flat) const;
  void unpack_values(const torch::Tensor& flat);
  void sum_buckets(torch::Tensor& flat);
  void broadcast_buckets(torch::Tensor& flat);
  double agree_on_norm(double norm);

  Communicator& comm_;
  std::vector<torch::Tensor> params_;
  Aggregation aggregation_;
  FlatLayout layout_;
  torch::Tensor flat_;  // [layout_.numel()] float32 on the CPU, reused across calls
  CommStats stats_;
};

}  // namespace alignpro
