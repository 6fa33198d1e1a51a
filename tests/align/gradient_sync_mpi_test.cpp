// Gradient aggregation across real MPI ranks (run at 1, 2 and 4 ranks). Each rank holds a
// replica of a tiny MLP; the global batch of work units is split by Sharding.
#include <gtest/gtest.h>

#include <cmath>

#include "align/gradient_sync.h"
#include "align/optimizer.h"
#include "align/sharding.h"
#include "common/error.h"
#include "common/rng.h"
#include "dist/communicator.h"
#include "support/mpi_world.h"

namespace alignpro {
namespace {

constexpr int64_t kUnits = 12;  // B = 3 prompts times K = 4 candidates
// Buckets of 64 bytes: the 49 parameters of the MLP travel in several collectives.
constexpr size_t kBucketBytes = 64;

torch::Tensor stream_tensor(std::vector<int64_t> shape, uint64_t index) {
  RngStream rng(2024, RngPurpose::kInit, {index});
  torch::Tensor out = torch::empty(shape, torch::kFloat32);
  auto* data = out.data_ptr<float>();
  for (int64_t i = 0; i < out.numel(); ++i) data[i] = static_cast<float>(2 * rng.uniform() - 1);
  return out;
}

// The same weights on every rank and in every copy, drawn from named streams.
torch::nn::Sequential make_model() {
  torch::nn::Sequential model(torch::nn::Linear(4, 8), torch::nn::Tanh(), torch::nn::Linear(8, 1));
  torch::NoGradGuard no_grad;
  uint64_t index = 0;
  for (auto& p : model->parameters()) p.copy_(stream_tensor(p.sizes().vec(), index++));
  return model;
}

// The summed squared error of the units in [begin, end), scaled up so that clipping matters.
torch::Tensor units_loss(torch::nn::Sequential& model, int64_t begin, int64_t end) {
  torch::Tensor loss = torch::zeros({});
  for (int64_t u = begin; u < end; ++u) {
    const torch::Tensor x = stream_tensor({1, 4}, 1000 + u) * 3;
    const torch::Tensor y = stream_tensor({1, 1}, 2000 + u);
    loss = loss + 4 * (model->forward(x) - y).pow(2).sum();
  }
  return loss;
}

double max_relative_difference(const std::vector<torch::Tensor>& a,
                               const std::vector<torch::Tensor>& b) {
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double scale = std::max(1e-12, a[i].abs().max().item<double>());
    worst = std::max(worst, (a[i] - b[i]).abs().max().item<double>() / scale);
  }
  return worst;
}

std::vector<torch::Tensor> grads_of(const std::vector<torch::Tensor>& params) {
  std::vector<torch::Tensor> grads;
  for (const auto& p : params) grads.push_back(p.grad().clone());
  return grads;
}

// One training step of the replica on this rank's shard.
void local_backward(torch::nn::Sequential& model, const Sharding& sharding) {
  const UnitRange mine = sharding.range(testing::mpi_world().rank());
  for (auto& p : model->parameters()) p.mutable_grad() = torch::Tensor();
  units_loss(model, mine.begin, mine.end).backward();
}

TEST(GradientSyncMpi, DistributedGradientEqualsSingleProcessGradient) {
  const Sharding sharding(kUnits, testing::mpi_world().size());
  for (Aggregation aggregation : {Aggregation::kAllreduce, Aggregation::kReduce}) {
    auto replica = make_model();
    local_backward(replica, sharding);
    GradientSync sync(testing::mpi_world(), replica->parameters(), aggregation, kBucketBytes);
    sync.sum_gradients(static_cast<double>(kUnits));

    auto whole = make_model();
    (units_loss(whole, 0, kUnits) / static_cast<double>(kUnits)).backward();
    if (sync.holds_optimizer()) {
      // Float32 sums in a different order: a few ulps of the largest gradient.
      EXPECT_LT(
          max_relative_difference(grads_of(whole->parameters()), grads_of(replica->parameters())),
          1e-5)
          << "rank " << testing::mpi_world().rank();
    }
    EXPECT_GT(sync.stats().collectives, 3);
  }
}

TEST(GradientSyncMpi, BothStrategiesGiveTheSameWeightsAfterSeveralSteps) {
  const Sharding sharding(kUnits, testing::mpi_world().size());
  AdamWOptions options;
  options.weight_decay = 0.01;
  const LrSchedule schedule(0.02, 2, "cosine", 6);
  auto by_allreduce = make_model();
  auto by_reduce = make_model();
  auto alone = make_model();
  GradientSync allreduce(testing::mpi_world(), by_allreduce->parameters(), Aggregation::kAllreduce,
                         kBucketBytes);
  GradientSync reduce(testing::mpi_world(), by_reduce->parameters(), Aggregation::kReduce,
                      kBucketBytes);
  AdamW allreduce_optimizer(by_allreduce->parameters(), options);
  std::unique_ptr<AdamW> reduce_optimizer;
  if (reduce.holds_optimizer()) {
    reduce_optimizer = std::make_unique<AdamW>(by_reduce->parameters(), options);
  }
  AdamW alone_optimizer(alone->parameters(), options);

  bool clipped = false;
  for (int64_t step = 0; step < 6; ++step) {
    const double lr = schedule.at(step);
    local_backward(by_allreduce, sharding);
    const double norm_a = allreduce.update(&allreduce_optimizer, lr, 1.0, kUnits);
    local_backward(by_reduce, sharding);
    const double norm_r = reduce.update(reduce_optimizer.get(), lr, 1.0, kUnits);
    EXPECT_NEAR(norm_a, norm_r, 1e-5 * norm_a);
    clipped = clipped || norm_a > 1.0;

    alone_optimizer.zero_grad();
    (units_loss(alone, 0, kUnits) / static_cast<double>(kUnits)).backward();
    clip_grad_norm(alone->parameters(), 1.0);
    alone_optimizer.step(lr);
  }
  EXPECT_TRUE(clipped);  // the clipping path was exercised
  EXPECT_LT(max_relative_difference(by_allreduce->parameters(), by_reduce->parameters()), 1e-6);
  EXPECT_LT(max_relative_difference(by_allreduce->parameters(), alone->parameters()), 1e-5);
  EXPECT_NO_THROW(allreduce.check_replicas(6));
  EXPECT_NO_THROW(reduce.check_replicas(6));
  // Per step, 49 parameters in buckets of 16: allreduce 4 collectives; reduce 4 reductions, the
  // norm and 4 broadcasts. Plus one checksum each.
  EXPECT_EQ(allreduce.stats().collectives, 6 * 4 + 1);
  EXPECT_EQ(reduce.stats().collectives, 6 * 9 + 1);
}

TEST(GradientSyncMpi, DivergedReplicasAreDetectedAndNamed) {
  auto model = make_model();
  GradientSync sync(testing::mpi_world(), model->parameters(), Aggregation::kAllreduce,
                    kBucketBytes);
  ASSERT_NO_THROW(sync.check_replicas(3));
  const int rank = testing::mpi_world().rank();
  if (rank % 2 == 1) {
    torch::NoGradGuard no_grad;
    model->parameters()[2][0] += 1e-3f * rank;
  }
  if (testing::mpi_world().size() == 1) {
    EXPECT_NO_THROW(sync.check_replicas(4));  // nothing to diverge from
    return;
  }
  try {
    sync.check_replicas(4);
    FAIL() << "rank " << rank << ": no error";
  } catch (const RuntimeError& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("diverged at step 4"), std::string::npos) << message;
    for (int r = 1; r < testing::mpi_world().size(); ++r) {
      const bool named = message.find("rank " + std::to_string(r) + " has") != std::string::npos;
      EXPECT_EQ(named, r % 2 == 1) << "rank " << r << " in: " << message;
    }
  }
}

TEST(GradientSyncMpi, NonFiniteGradientOnOneRankStopsEveryRank) {
  const Sharding sharding(kUnits, testing::mpi_world().size());
  for (Aggregation aggregation : {Aggregation::kAllreduce, Aggregation::kReduce}) {
    auto model = make_model();
    local_backward(model, sharding);
    if (testing::mpi_world().rank() == testing::mpi_world().size() - 1) {
      model->parameters()[0].mutable_grad()[0][0] = INFINITY;
    }
    GradientSync sync(testing::mpi_world(), model->parameters(), aggregation, kBucketBytes);
    std::unique_ptr<AdamW> optimizer;
    if (sync.holds_optimizer())
      optimizer = std::make_unique<AdamW>(model->parameters(), AdamWOptions{});
    const auto before = model->parameters()[1].detach().clone();
    EXPECT_THROW(sync.update(optimizer.get(), 0.01, 1.0, kUnits), RuntimeError);
    EXPECT_TRUE(torch::equal(model->parameters()[1], before));
    // Every rank is still in step: a collective after the failure completes.
    EXPECT_TRUE(testing::mpi_world().all(true, "after a failed update"));
  }
}

TEST(GradientSyncMpi, BroadcastParametersCopiesRankZero) {
  auto model = make_model();
  {
    torch::NoGradGuard no_grad;
    for (auto& p : model->parameters()) p.add_(static_cast<float>(testing::mpi_world().rank()));
  }
  GradientSync sync(testing::mpi_world(), model->parameters(), Aggregation::kReduce, kBucketBytes);
  sync.broadcast_parameters();
  auto expected = make_model();
  EXPECT_EQ(max_relative_difference(model->parameters(), expected->parameters()), 0.0);
}

}  // namespace
}  // namespace alignpro
