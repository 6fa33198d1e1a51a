#include "model/scoring.h"

#include <gtest/gtest.h>

#include "common/error.h"
#include "fixtures.h"

namespace alignpro {
namespace {

using testing::model_dir;

struct Pairs {
  std::vector<std::vector<int64_t>> prompts, continuations;
};

Pairs some_pairs() {
  return {{{5, 9, 13, 4}, {20}, {7, 7, 8, 100, 250, 31}, {42, 43}},
          {{11, 12, 13}, {60, 61, 62, 63, 64, 65}, {1}, {}}};
}

// log p(continuation) of one row, from the logits of one unpadded forward.
std::vector<float> reference_logprobs(Transformer& model, const std::vector<int64_t>& prompt,
                                      const std::vector<int64_t>& continuation) {
  std::vector<int64_t> ids = prompt;
  ids.insert(ids.end(), continuation.begin(), continuation.end());
  torch::NoGradGuard no_grad;
  const torch::Tensor logits =
      model.forward(torch::tensor(ids, torch::kInt64).view({1, -1})).squeeze(0);  // [seq, vocab]
  const torch::Tensor logprobs = torch::log_softmax(logits, -1);
  std::vector<float> out;
  for (size_t j = 0; j < continuation.size(); ++j) {
    out.push_back(
        logprobs[static_cast<int64_t>(prompt.size() + j) - 1][continuation[j]].item<float>());
  }
  return out;
}

class ScoringTest : public ::testing::TestWithParam<std::string> {};

TEST_P(ScoringTest, BatchedLogprobsEqualThoseFromEachRowsLogits) {
  const auto model = load_model(model_dir(GetParam()));
  const Pairs pairs = some_pairs();
  torch::NoGradGuard no_grad;
  const ContinuationScores scores = score_continuations(*model, pairs.prompts, pairs.continuations);
  EXPECT_FALSE(scores.sums.requires_grad());
  const auto rows = unpad_rows(scores.token_logprobs, scores.mask);
  for (size_t i = 0; i < pairs.prompts.size(); ++i) {
    const auto expected = reference_logprobs(*model, pairs.prompts[i], pairs.continuations[i]);
    ASSERT_EQ(rows[i].size(), expected.size()) << "row " << i;
    double sum = 0;
    for (size_t j = 0; j < expected.size(); ++j) {
      EXPECT_NEAR(rows[i][j], expected[j], 1e-4) << "row " << i << " token " << j;
      sum += expected[j];
    }
    EXPECT_NEAR(scores.sums[static_cast<int64_t>(i)].item<double>(), sum, 1e-4);
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, ScoringTest, ::testing::ValuesIn(testing::causal_models()));

TEST(Scoring, GradientsOfTheBatchEqualTheSumOfPerRowGradients) {
  const auto model = load_model(model_dir("qwen2_bias"));
  const Pairs pairs = some_pairs();
  const auto gradients = [&]() {
    std::vector<torch::Tensor> out;
    for (const auto& p : model->parameters()) {
      out.push_back(p.grad().defined() ? p.grad().clone() : torch::zeros_like(p));
    }
    return out;
  };
  model->zero_grad(/*set_to_none=*/true);
  const ContinuationScores scores = score_continuations(*model, pairs.prompts, pairs.continuations);
  ASSERT_TRUE(scores.sums.requires_grad());
  scores.sums.sum().backward();
  const auto batched = gradients();

  model->zero_grad(/*set_to_none=*/true);
  for (size_t i = 0; i < pairs.prompts.size(); ++i) {
    if (pairs.continuations[i].empty()) continue;  // contributes nothing
    score_continuations(*model, {pairs.prompts[i]}, {pairs.continuations[i]}).sums.sum().backward();
  }
  const auto summed = gradients();
  double largest = 0;
  for (size_t k = 0; k < batched.size(); ++k) {
    EXPECT_TRUE(torch::isfinite(batched[k]).all().item<bool>());
    EXPECT_LT((batched[k] - summed[k]).abs().max().item<double>(),
              1e-4 * std::max(1.0, summed[k].abs().max().item<double>()));
    largest = std::max(largest, batched[k].abs().max().item<double>());
  }
  EXPECT_GT(largest, 0.0);
}

TEST(Scoring, GradientMatchesAFiniteDifference) {
  const auto model = load_model(model_dir("gpt2"));
  const Pairs pairs = some_pairs();
  torch::Tensor weight;
  for (const auto& item : model->named_parameters()) {
    if (item.key() == "transformer.h.1.mlp.c_fc.bias") weight = item.value();
  }
  ASSERT_TRUE(weight.defined());
  model->zero_grad(/*set_to_none=*/true);
  score_continuations(*model, pairs.prompts, pairs.continuations).sums.sum().backward();
  const double analytic = weight.grad()[3].item<double>();
  const double h = 1e-2;
  const auto total = [&] {
    torch::NoGradGuard no_grad;
    return score_continuations(*model, pairs.prompts, pairs.continuations)
        .sums.sum()
        .item<double>();
  };
  torch::NoGradGuard no_grad;
  weight[3] += h;
  const double up = total();
  weight[3] -= 2 * h;
  const double down = total();
  weight[3] += h;
  // Central difference in float32: error O(h^2) plus rounding O(eps / h).
  EXPECT_NEAR(analytic, (up - down) / (2 * h), 2e-3 * std::max(1.0, std::abs(analytic)));
}

TEST(Scoring, BadInputsFail) {
  const auto model = load_model(model_dir("gpt2"));
  EXPECT_THROW(score_continuations(*model, {{}}, {{1}}), InputError);
  EXPECT_THROW(score_continuations(*model, {{1}}, {{1, 300}}), InputError);
  EXPECT_THROW(score_continuations(*model, {{1}}, {}), InputError);
  const auto reward = load_model(model_dir("gpt2_reward"));
  EXPECT_THROW(score_continuations(*reward, {{1}}, {{2}}), InputError);
  EXPECT_THROW(score_sequences(*model, {{1}}), InputError);
  EXPECT_THROW(score_sequences(*reward, {{}}), InputError);
}

}  // namespace
}  // namespace alignpro
