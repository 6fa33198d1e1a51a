#include "align/objective.h"

#include <gtest/gtest.h>

#include <cmath>

#include "common/error.h"

namespace alignpro {
namespace {

const auto kDouble = torch::TensorOptions().dtype(torch::kFloat64);

torch::Tensor tensor2d(std::vector<std::vector<double>> rows) {
  std::vector<torch::Tensor> parts;
  for (auto& row : rows) parts.push_back(torch::tensor(row, kDouble));
  return torch::stack(parts);
}

// Values are computed in float64 and compared against closed forms in float64: only rounding
// differs, so 1e-12 is ample.
constexpr double kTight = 1e-12;

TEST(KlEstimate, K1AndK3MatchTheirFormulasAndIgnorePadding) {
  const auto logp = tensor2d({{-1.0, -0.5, -INFINITY}, {-2.0, -0.1, -0.3}});
  const auto ref = tensor2d({{-1.5, -0.2, 0.0}, {-1.0, -0.1, -0.9}});
  const auto mask = tensor2d({{1, 1, 0}, {1, 1, 1}});
  const auto k1 = kl_per_token(logp, ref, mask, KlEstimator::kK1);
  const auto k3 = kl_per_token(logp, ref, mask, KlEstimator::kK3);
  const double logp_v[2][3] = {{-1.0, -0.5, 0}, {-2.0, -0.1, -0.3}};
  const double ref_v[2][3] = {{-1.5, -0.2, 0}, {-1.0, -0.1, -0.9}};
  for (int u = 0; u < 2; ++u) {
    for (int t = 0; t < 3; ++t) {
      if (u == 0 && t == 2) {
        EXPECT_EQ(k1[u][t].item<double>(), 0.0);
        EXPECT_EQ(k3[u][t].item<double>(), 0.0);
        continue;
      }
      const double d = ref_v[u][t] - logp_v[u][t];
      EXPECT_NEAR(k1[u][t].item<double>(), -d, kTight);
      EXPECT_NEAR(k3[u][t].item<double>(), std::exp(d) - 1 - d, kTight);
      EXPECT_GE(k3[u][t].item<double>(), 0.0);
    }
  }
  const auto per_unit = kl_per_unit(logp, ref, mask, KlEstimator::kK1);
  EXPECT_NEAR(per_unit[0].item<double>(), 0.5 - 0.3, kTight);
  EXPECT_NEAR(per_unit[1].item<double>(), -1.0 + 0.0 + 0.6, kTight);
}

TEST(CandidateReturns, FoldTheKlOnlyInRewardMode) {
  const auto rewards = torch::tensor({1.0, 2.0}, kDouble);
  const auto kl = torch::tensor({0.5, -1.0}, kDouble);
  const auto folded = candidate_returns(rewards, kl, 0.1, KlMode::kReward);
  EXPECT_NEAR(folded[0].item<double>(), 0.95, kTight);
  EXPECT_NEAR(folded[1].item<double>(), 2.1, kTight);
  EXPECT_TRUE(torch::equal(candidate_returns(rewards, kl, 0.1, KlMode::kLoss), rewards));
}

TEST(LeaveOneOut, SubtractsTheMeanOfTheOtherCandidates) {
  const auto returns = tensor2d({{1, 2, 3, 6}, {0, 0, 0, 4}});
  const auto advantages = leave_one_out_advantages(returns, false);
  EXPECT_NEAR(advantages[0][0].item<double>(), 1 - 11.0 / 3, kTight);
  EXPECT_NEAR(advantages[0][3].item<double>(), 6 - 2.0, kTight);
  EXPECT_NEAR(advantages[1][3].item<double>(), 4.0, kTight);
  EXPECT_NEAR(advantages[1][0].item<double>(), -4.0 / 3, kTight);
  // Each group's advantages sum to zero.
  EXPECT_NEAR(advantages.sum(1).abs().max().item<double>(), 0.0, kTight);
}

TEST(LeaveOneOut, DividesByTheGroupStandardDeviation) {
  const auto returns = tensor2d({{1, 2, 3, 6}});
  const auto plain = leave_one_out_advantages(returns, false);
  const auto scaled = leave_one_out_advantages(returns, true);
  const double var = (4 + 1 + 0 + 9) / 3.0;  // sample variance
  for (int k = 0; k < 4; ++k) {
    EXPECT_NEAR(scaled[0][k].item<double>(), plain[0][k].item<double>() / (std::sqrt(var) + 1e-6),
                kTight);
  }
  // Equal returns: advantages 0, never a division by zero.
  const auto flat = leave_one_out_advantages(tensor2d({{2, 2, 2}}), true);
  EXPECT_TRUE(torch::isfinite(flat).all().item<bool>());
  EXPECT_EQ(flat.abs().max().item<double>(), 0.0);
}

TEST(LeaveOneOut, SingleCandidateKeepsTheReturn) {
  const auto returns = tensor2d({{1.5}, {-2}});
  EXPECT_TRUE(torch::equal(leave_one_out_advantages(returns, true), returns));
}

struct TokenCase {
  torch::Tensor logp, old_logp, ref_logp, mask, advantages;
};

// Two units of three tokens; unit 1's last token is padding (with a log-prob that would blow
// up an unmasked exp). Ratios exp(logp - old) are exp(+-0.5), exp(+-0.05): some outside
// [0.8, 1.2], some inside.
TokenCase token_case() {
  TokenCase c;
  c.logp = tensor2d({{-1.0, -0.7, -2.0}, {-0.4, -1.1, 50.0}}).requires_grad_(true);
  c.old_logp = tensor2d({{-1.5, -0.75, -1.5}, {-0.9, -1.05, 0.0}});
  c.ref_logp = tensor2d({{-1.2, -0.6, -1.0}, {-0.5, -1.3, 0.0}});
  c.mask = tensor2d({{1, 1, 1}, {1, 1, 0}});
  c.advantages = torch::tensor({1.5, -2.0}, kDouble);
  return c;
}

PolicyLossInputs inputs_of(const TokenCase& c) {
  return PolicyLossInputs{c.logp, c.old_logp, c.ref_logp, c.mask, c.advantages};
}

TEST(PolicyLoss, ClippedSurrogateValueAndGradientMatchClosedForm) {
  const TokenCase c = token_case();
  PolicyLossOptions options;
  options.clip = 0.2;
  options.normalizer = 4.0;
  const PolicyLoss loss = policy_loss(inputs_of(c), options);
  loss.loss.backward();
  const auto grad = c.logp.grad();
  double expected_loss = 0;
  int clipped = 0;
  for (int u = 0; u < 2; ++u) {
    const double a = c.advantages[u].item<double>();
    for (int t = 0; t < 3; ++t) {
      if (c.mask[u][t].item<double>() == 0) {
        EXPECT_EQ(grad[u][t].item<double>(), 0.0);
        continue;
      }
      const double ratio = std::exp(c.logp[u][t].item<double>() - c.old_logp[u][t].item<double>());
      const double clamped = std::min(std::max(ratio, 0.8), 1.2);
      // The clipped branch is active (zero gradient) when it gives the larger loss.
      const bool clip_active = -a * clamped > -a * ratio;
      expected_loss += std::max(-a * ratio, -a * clamped) / 4.0;
      clipped += clip_active;
      const double expected_grad = clip_active ? 0.0 : -a * ratio / 4.0;
      EXPECT_NEAR(grad[u][t].item<double>(), expected_grad, kTight) << u << "," << t;
    }
  }
  EXPECT_NEAR(loss.loss.item<double>(), expected_loss, kTight);
  EXPECT_NEAR(loss.policy_term, expected_loss, kTight);
  EXPECT_DOUBLE_EQ(loss.clipped_fraction, clipped / 5.0);
  EXPECT_GT(clipped, 0);  // the case exercises both branches
  EXPECT_LT(clipped, 5);
}

TEST(PolicyLoss, FreshRolloutsGiveTheReinforceGradient) {
  TokenCase c = token_case();
  c.old_logp = c.logp.detach().clone();
  PolicyLossOptions options;
  options.normalizer = 2.0;  // two units
  policy_loss(inputs_of(c), options).loss.backward();
  // d/dlogp_t of -A * sum_t logp_t / N.
  const auto expected = -c.advantages.unsqueeze(1) * c.mask / 2.0;
  EXPECT_TRUE(torch::allclose(c.logp.grad(), expected, 0, kTight));
}

TEST(PolicyLoss, KlLossTermGradientMatchesClosedFormForBothEstimators) {
  for (KlEstimator estimator : {KlEstimator::kK1, KlEstimator::kK3}) {
    TokenCase c = token_case();
    c.advantages = torch::zeros({2}, kDouble);  // isolate the KL term
    PolicyLossOptions options;
    options.kl_mode = KlMode::kLoss;
    options.kl_coef = 0.3;
    options.kl_estimator = estimator;
    options.normalizer = 5.0;
    const PolicyLoss loss = policy_loss(inputs_of(c), options);
    loss.loss.backward();
    const auto d = c.ref_logp - c.logp.detach();  // ref - logp
    const auto dk = estimator == KlEstimator::kK1 ? torch::ones_like(d) : 1 - torch::exp(d);
    const auto expected = 0.3 * dk * c.mask / 5.0;
    EXPECT_TRUE(torch::allclose(c.logp.grad(), expected, 0, kTight));
    const double kl_sum = kl_per_token(c.logp, c.ref_logp, c.mask, estimator).sum().item<double>();
    EXPECT_NEAR(loss.kl_term, 0.3 * kl_sum / 5.0, kTight);
  }
}

TEST(PolicyLoss, RewardModeAddsNoKlTerm) {
  TokenCase c = token_case();
  PolicyLossOptions options;
  options.kl_coef = 0.3;
  options.kl_mode = KlMode::kReward;
  const PolicyLoss loss = policy_loss(inputs_of(c), options);
  EXPECT_EQ(loss.kl_term, 0.0);
  EXPECT_NEAR(loss.loss.item<double>(), loss.policy_term, kTight);
}

TEST(PolicyLoss, NormalizerSplitsAGlobalMeanAcrossRanks) {
  // Two halves of a batch, each divided by the global count, add up to the whole.
  TokenCase c = token_case();
  PolicyLossOptions options;
  options.normalizer = loss_normalizer(LossNormalization::kTokens, 2, 5);
  const double whole = policy_loss(inputs_of(c), options).policy_term;
  double parts = 0;
  for (int u = 0; u < 2; ++u) {
    PolicyLossInputs half{c.logp.narrow(0, u, 1), c.old_logp.narrow(0, u, 1),
                          c.ref_logp.narrow(0, u, 1), c.mask.narrow(0, u, 1),
                          c.advantages.narrow(0, u, 1)};
    parts += policy_loss(half, options).policy_term;
  }
  EXPECT_NEAR(parts, whole, kTight);
  EXPECT_EQ(loss_normalizer(LossNormalization::kUnits, 2, 5), 2.0);
  EXPECT_THROW(loss_normalizer(LossNormalization::kTokens, 2, 0), RuntimeError);
}

TEST(PolicyLoss, MismatchedShapesAreRejected) {
  TokenCase c = token_case();
  c.advantages = torch::zeros({3}, kDouble);
  EXPECT_THROW(policy_loss(inputs_of(c), {}), RuntimeError);
}

TEST(Objective, FirstNonfiniteRowNamesTheUnit) {
  EXPECT_EQ(first_nonfinite_row(torch::tensor({1.0, 2.0})), -1);
  EXPECT_EQ(first_nonfinite_row(torch::tensor(std::vector<double>{1.0, NAN, INFINITY})), 1);
  EXPECT_EQ(first_nonfinite_row(tensor2d({{1, 2}, {3, 4}, {5, -INFINITY}})), 2);
}

TEST(Objective, ParsesJobValuesAndNamesBadOnes) {
  EXPECT_EQ(parse_kl_estimator("k3"), KlEstimator::kK3);
  EXPECT_EQ(parse_kl_mode("loss"), KlMode::kLoss);
  EXPECT_EQ(parse_normalization("tokens"), LossNormalization::kTokens);
  try {
    parse_kl_estimator("k2");
    FAIL() << "no error";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("optim.kl_estimator = 'k2'"), std::string::npos);
  }
}

}  // namespace
}  // namespace alignpro
