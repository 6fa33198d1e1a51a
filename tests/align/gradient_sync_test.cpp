#include "align/gradient_sync.h"

#include <gtest/gtest.h>

#include "common/error.h"

namespace alignpro {
namespace {

std::vector<torch::Tensor> params_with_grads() {
  std::vector<torch::Tensor> params = {torch::arange(6, torch::kFloat32).view({2, 3}),
                                       torch::arange(3, torch::kFloat32)};
  for (auto& p : params) {
    p.requires_grad_(true);
    p.mutable_grad() = p.detach() * 2 + 1;
  }
  return params;
}

TEST(FlatLayout, CutsTheBufferIntoBucketsOfAtMostTheGivenBytes) {
  const auto params = params_with_grads();  // 6 + 3 elements
  const FlatLayout layout(params, 16);      // 4 floats per bucket
  EXPECT_EQ(layout.numel(), 9);
  EXPECT_EQ(layout.offset(1), 6);
  ASSERT_EQ(layout.buckets().size(), 3u);
  EXPECT_EQ(layout.buckets()[0], (std::pair<int64_t, int64_t>{0, 4}));
  EXPECT_EQ(layout.buckets()[2], (std::pair<int64_t, int64_t>{8, 9}));
  EXPECT_EQ(FlatLayout(params, kDefaultBucketBytes).buckets().size(), 1u);
}

TEST(GradientSync, SingleRankDividesByTheGlobalCount) {
  auto comm = make_local_communicator();
  auto params = params_with_grads();
  params[1].mutable_grad() = torch::Tensor();  // a parameter without gradient gets zeros
  GradientSync sync(*comm, params, Aggregation::kAllreduce, 8);
  sync.sum_gradients(4.0);
  EXPECT_TRUE(torch::allclose(params[0].grad(), (params[0].detach() * 2 + 1) / 4));
  EXPECT_TRUE(torch::equal(params[1].grad(), torch::zeros({3})));
  EXPECT_EQ(sync.stats().collectives, 5);  // 9 floats in buckets of 2
  EXPECT_EQ(sync.stats().bytes, 36);
}

TEST(GradientSync, UpdateClipsStepsAndReportsTheNorm) {
  auto comm = make_local_communicator();
  auto params = params_with_grads();
  auto reference = params_with_grads();
  GradientSync sync(*comm, params, Aggregation::kReduce);
  AdamW optimizer(params, AdamWOptions{});
  AdamW reference_optimizer(reference, AdamWOptions{});
  const double norm = sync.update(&optimizer, 0.01, 1.0, 2.0);
  for (auto& p : reference) p.mutable_grad().div_(2.0);
  const double expected_norm = clip_grad_norm(reference, 1.0);
  reference_optimizer.step(0.01);
  EXPECT_DOUBLE_EQ(norm, expected_norm);
  for (size_t i = 0; i < params.size(); ++i) EXPECT_TRUE(torch::equal(params[i], reference[i]));
}

TEST(GradientSync, NonFiniteGradientStopsBeforeTheStep) {
  auto comm = make_local_communicator();
  auto params = params_with_grads();
  params[0].mutable_grad()[0][1] = NAN;
  const auto before = params[0].detach().clone();
  GradientSync sync(*comm, params, Aggregation::kAllreduce);
  AdamW optimizer(params, AdamWOptions{});
  EXPECT_THROW(sync.update(&optimizer, 0.01, 1.0, 1.0), RuntimeError);
  EXPECT_TRUE(torch::equal(params[0], before));
  EXPECT_EQ(optimizer.step_count(), 0);
}

TEST(GradientSync, ChecksumSeesASingleBitAndIgnoresNothing) {
  auto comm = make_local_communicator();
  auto params = params_with_grads();
  GradientSync sync(*comm, params, Aggregation::kAllreduce);
  const uint64_t before = sync.local_checksum();
  EXPECT_EQ(before, sync.local_checksum());
  {
    torch::NoGradGuard no_grad;
    params[1][2] = std::nextafter(2.0f, 3.0f);  // one ulp
  }
  EXPECT_NE(before, sync.local_checksum());
  EXPECT_NO_THROW(sync.check_replicas(0));
}

TEST(GradientSync, DoubleParametersAreRejected) {
  auto comm = make_local_communicator();
  std::vector<torch::Tensor> params = {torch::zeros({2}, torch::kFloat64)};
  EXPECT_THROW(GradientSync(*comm, params, Aggregation::kAllreduce), RuntimeError);
  EXPECT_THROW(parse_aggregation("ring"), InputError);
  EXPECT_EQ(parse_aggregation("reduce"), Aggregation::kReduce);
}

}  // namespace
}  // namespace alignpro
