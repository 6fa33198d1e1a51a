#include "align/optimizer.h"

#include <gtest/gtest.h>

#include <cmath>

#include "common/error.h"
#include "common/rng.h"

namespace alignpro {
namespace {

// A deterministic tensor from a named stream: values in [-1, 1).
torch::Tensor stream_tensor(std::vector<int64_t> shape, uint64_t index) {
  RngStream rng(99, RngPurpose::kInit, {index});
  torch::Tensor out = torch::empty(shape, torch::kFloat32);
  auto* data = out.data_ptr<float>();
  for (int64_t i = 0; i < out.numel(); ++i) data[i] = static_cast<float>(2 * rng.uniform() - 1);
  return out;
}

std::vector<torch::Tensor> make_params() {
  return {stream_tensor({3, 4}, 0).requires_grad_(true),
          stream_tensor({5}, 1).requires_grad_(true)};
}

// Gradients that change from step to step, the same for every copy of the parameters.
void set_grads(std::vector<torch::Tensor>& params, int step) {
  for (size_t i = 0; i < params.size(); ++i) {
    params[i].mutable_grad() = stream_tensor(params[i].sizes().vec(), 100 + step * 10 + i) * 0.5;
  }
}

TEST(AdamW, MatchesTorchAdamWBitForBit) {
  AdamWOptions options;
  options.beta1 = 0.8;
  options.beta2 = 0.95;
  options.eps = 1e-6;
  options.weight_decay = 0.1;
  auto mine = make_params();
  auto theirs = make_params();
  AdamW optimizer(mine, options);
  torch::optim::AdamW reference(
      theirs, torch::optim::AdamWOptions(0.01).betas({0.8, 0.95}).eps(1e-6).weight_decay(0.1));
  for (int step = 0; step < 6; ++step) {
    const double lr = 0.01;
    set_grads(mine, step);
    set_grads(theirs, step);
    optimizer.step(lr);
    reference.step();
  }
  for (size_t i = 0; i < mine.size(); ++i) EXPECT_TRUE(torch::equal(mine[i], theirs[i])) << i;
}

// The update written out element by element in float64, from the AdamW paper's algorithm
// with PyTorch's placement of eps (after the bias-corrected square root).
TEST(AdamW, MatchesAHandwrittenReference) {
  AdamWOptions options;
  options.weight_decay = 0.05;
  auto params = make_params();
  AdamW optimizer(params, options);
  std::vector<std::vector<double>> w, m, v;
  for (const auto& p : params) {
    const auto flat = p.detach().to(torch::kFloat64).flatten();
    w.emplace_back(flat.data_ptr<double>(), flat.data_ptr<double>() + flat.numel());
    m.emplace_back(flat.numel(), 0.0);
    v.emplace_back(flat.numel(), 0.0);
  }
  const double lrs[] = {0.001, 0.003, 0.002, 0.0005};
  for (int step = 0; step < 4; ++step) {
    set_grads(params, step);
    for (size_t i = 0; i < params.size(); ++i) {
      const auto g = params[i].grad().to(torch::kFloat64).flatten();
      for (size_t j = 0; j < w[i].size(); ++j) {
        const double gj = g[j].item<double>();
        w[i][j] *= 1 - lrs[step] * options.weight_decay;
        m[i][j] = options.beta1 * m[i][j] + (1 - options.beta1) * gj;
        v[i][j] = options.beta2 * v[i][j] + (1 - options.beta2) * gj * gj;
        const double m_hat = m[i][j] / (1 - std::pow(options.beta1, step + 1));
        const double v_hat_sqrt =
            std::sqrt(v[i][j]) / std::sqrt(1 - std::pow(options.beta2, step + 1));
        w[i][j] -= lrs[step] * m_hat / (v_hat_sqrt + options.eps);
      }
    }
    optimizer.step(lrs[step]);
  }
  EXPECT_EQ(optimizer.step_count(), 4);
  for (size_t i = 0; i < params.size(); ++i) {
    const auto flat = params[i].detach().to(torch::kFloat64).flatten();
    for (size_t j = 0; j < w[i].size(); ++j) {
      // float32 parameters against a float64 reference: a few float32 ulps of values near 1.
      EXPECT_NEAR(flat[j].item<double>(), w[i][j], 1e-6) << i << "," << j;
    }
  }
}

TEST(AdamW, ParameterWithoutGradientIsLeftAlone) {
  auto params = make_params();
  const auto before = params[1].detach().clone();
  AdamW optimizer(params, AdamWOptions{});
  params[0].mutable_grad() = torch::ones_like(params[0]);
  optimizer.step(0.1);
  EXPECT_TRUE(torch::equal(params[1], before));
  EXPECT_EQ(optimizer.state().at("step.1").item<int64_t>(), 0);
  EXPECT_EQ(optimizer.state().at("step.0").item<int64_t>(), 1);
}

TEST(AdamW, StateRoundTripContinuesExactly) {
  AdamWOptions options;
  options.weight_decay = 0.01;
  auto a = make_params();
  AdamW first(a, options, {"w", "b"});
  for (int step = 0; step < 3; ++step) {
    set_grads(a, step);
    first.step(0.01);
  }
  const auto state = first.state();
  EXPECT_EQ(state.at("step").item<int64_t>(), 3);
  EXPECT_TRUE(state.count("exp_avg.w") && state.count("exp_avg_sq.b"));

  std::vector<torch::Tensor> b;
  for (const auto& p : a) b.push_back(p.detach().clone().requires_grad_(true));
  AdamW second(b, options, {"w", "b"});
  second.load_state(state, "checkpoint");
  for (int step = 3; step < 6; ++step) {
    set_grads(a, step);
    set_grads(b, step);
    first.step(0.01);
    second.step(0.01);
  }
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(torch::equal(a[i], b[i]));
}

TEST(AdamW, LoadStateNamesAMissingOrMisshapenEntry) {
  auto params = make_params();
  AdamW optimizer(params, AdamWOptions{}, {"w", "b"});
  auto state = optimizer.state();
  state.erase("exp_avg.b");
  try {
    optimizer.load_state(state, "ckpt.bin");
    FAIL() << "no error";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("ckpt.bin: the optimiser state has no entry 'exp_avg.b'"),
              std::string::npos)
        << e.what();
  }
  state = optimizer.state();
  state["exp_avg_sq.w"] = torch::zeros({4, 3});
  EXPECT_THROW(optimizer.load_state(state, "ckpt.bin"), InputError);
}

TEST(ClipGradNorm, MatchesTorchAndReturnsTheNormBeforeClipping) {
  auto mine = make_params();
  auto theirs = make_params();
  set_grads(mine, 0);
  set_grads(theirs, 0);
  const double expected_norm = std::sqrt(mine[0].grad().pow(2).sum().item<double>() +
                                         mine[1].grad().pow(2).sum().item<double>());
  const double norm = clip_grad_norm(mine, 0.5);
  const double torch_norm = torch::nn::utils::clip_grad_norm_(theirs, 0.5);
  EXPECT_NEAR(norm, expected_norm, 1e-5);
  EXPECT_NEAR(norm, torch_norm, 1e-6);
  for (size_t i = 0; i < mine.size(); ++i) {
    EXPECT_TRUE(torch::allclose(mine[i].grad(), theirs[i].grad(), 1e-6, 1e-7));
  }
  const double clipped = std::sqrt(mine[0].grad().pow(2).sum().item<double>() +
                                   mine[1].grad().pow(2).sum().item<double>());
  EXPECT_NEAR(clipped, 0.5, 1e-5);
}

TEST(ClipGradNorm, ZeroMaxNormOnlyMeasures) {
  auto params = make_params();
  set_grads(params, 1);
  const auto before = params[0].grad().clone();
  EXPECT_GT(clip_grad_norm(params, 0.0), 0.0);
  EXPECT_TRUE(torch::equal(params[0].grad(), before));
}

TEST(LrSchedule, WarmsUpLinearlyThenHoldsOrDecays) {
  const LrSchedule constant(1e-3, 4, "constant", 20);
  EXPECT_DOUBLE_EQ(constant.at(0), 0.25e-3);
  EXPECT_DOUBLE_EQ(constant.at(3), 1e-3);
  EXPECT_DOUBLE_EQ(constant.at(19), 1e-3);
  const LrSchedule cosine(1e-3, 4, "cosine", 20);
  EXPECT_DOUBLE_EQ(cosine.at(1), 0.5e-3);
  EXPECT_DOUBLE_EQ(cosine.at(4), 1e-3);
  EXPECT_NEAR(cosine.at(12), 0.5e-3, 1e-15);  // halfway through the decay
  EXPECT_LT(cosine.at(19), cosine.at(18));
  EXPECT_NEAR(cosine.at(20), 0.0, 1e-15);
  EXPECT_THROW(LrSchedule(1e-3, 0, "linear", 10), InputError);
}

}  // namespace
}  // namespace alignpro
