#include "align/rewards.h"

#include <gtest/gtest.h>

#include "common/error.h"

namespace alignpro {
namespace {

std::vector<double> score_one_prompt(RewardFunction& reward,
                                     const std::vector<std::string>& responses) {
  return reward.score(std::vector<std::string>(responses.size(), "the original prompt"), responses);
}

// Records the prompts it was given, standing in for a reward model.
class RecordingReward final : public RewardFunction {
 public:
  explicit RecordingReward(std::vector<std::string>* seen) : seen_(seen) {}
  std::vector<double> score(const std::vector<std::string>& prompts,
                            const std::vector<std::string>& responses) override {
    *seen_ = prompts;
    return std::vector<double>(responses.size(), 0.25);
  }
  std::string describe() const override { return "model"; }

 private:
  std::vector<std::string>* seen_;
};

TEST(KeywordReward, FractionOfWholeWordsIgnoringCase) {
  KeywordReward reward({"safe", "Thank you", "ÉTÉ"});
  const auto scores = score_one_prompt(
      reward, {"SAFE and sound", "unsafe thankyou", "thank\n you, stay safe", "un été chaud", ""});
  EXPECT_DOUBLE_EQ(scores[0], 1.0 / 3);
  EXPECT_DOUBLE_EQ(scores[1], 0.0);  // "unsafe" and "thankyou" are not the whole words
  EXPECT_DOUBLE_EQ(scores[2], 2.0 / 3);
  EXPECT_DOUBLE_EQ(scores[3], 1.0 / 3);  // Unicode case folding
  EXPECT_DOUBLE_EQ(scores[4], 0.0);
}

TEST(KeywordReward, KeywordsAreLiteralNotPatterns) {
  KeywordReward reward({"a.b", "c++", "x\\Ey"});
  const auto scores = score_one_prompt(reward, {"aXb", "a.b and c++ and x\\Ey"});
  EXPECT_DOUBLE_EQ(scores[0], 0.0);
  EXPECT_DOUBLE_EQ(scores[1], 1.0);
}

TEST(KeywordReward, InvalidUtf8ResponseIsScoredNotRejected) {
  KeywordReward reward({"ok"});
  EXPECT_DOUBLE_EQ(score_one_prompt(reward, {"ok \xF0\x9F"})[0], 1.0);
}

TEST(KeywordReward, EmptyOrBlankKeywordsAreInputErrors) {
  EXPECT_THROW(KeywordReward({}), InputError);
  try {
    KeywordReward({"fine", "  "});
    FAIL() << "no error";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("reward.keywords[1]"), std::string::npos) << e.what();
  }
}

TEST(LengthReward, OneInsideTheWindowOfWords) {
  LengthReward reward(2, 3);
  const auto scores =
      score_one_prompt(reward, {"one", "one two", " one\ttwo\nthree ", "a b c d", ""});
  EXPECT_EQ(scores, (std::vector<double>{0, 1, 1, 0, 0}));
  EXPECT_THROW(LengthReward(5, 4), InputError);
}

TEST(RegexReward, MatchesAnywhereInTheResponse) {
  RegexReward reward("\\b[0-9]{3}\\b");
  EXPECT_EQ(score_one_prompt(reward, {"call 555 now", "call 5555", "no digits"}),
            (std::vector<double>{1, 0, 0}));
}

TEST(RegexReward, BadPatternNamesTheKeyAndOffset) {
  try {
    RegexReward reward("(unclosed");
    FAIL() << "no error";
  } catch (const InputError& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("reward.regex = '(unclosed'"), std::string::npos) << message;
    EXPECT_NE(message.find("offset"), std::string::npos) << message;
  }
  EXPECT_THROW(RegexReward(""), InputError);
}

TEST(WeightedSumReward, AddsWeightedTerms) {
  RewardConfig config;
  config.kind = "sum";
  config.terms = {"keywords", "length"};
  config.weights = {2.0, -0.5};
  config.keywords = {"yes"};
  config.length_min = 1;
  config.length_max = 2;
  const auto reward = make_reward(config);
  EXPECT_EQ(score_one_prompt(*reward, {"yes", "yes it is", "no"}),
            (std::vector<double>{1.5, 2.0, -0.5}));
  EXPECT_EQ(reward->describe(), "2*keywords + -0.5*length");
}

TEST(MakeReward, BuildsEachRuleKind) {
  RewardConfig config;
  config.kind = "regex";
  config.regex = "^Sure";
  EXPECT_EQ(score_one_prompt(*make_reward(config), {"Sure!", "Not sure"}),
            (std::vector<double>{1, 0}));
  config.kind = "length";
  config.length_min = 1;
  config.length_max = 1;
  EXPECT_EQ(make_reward(config)->describe(), "length");
}

TEST(MakeReward, ChecksTermsAndWeights) {
  RewardConfig config;
  config.kind = "sum";
  EXPECT_THROW(make_reward(config), InputError);
  config.terms = {"keywords"};
  config.keywords = {"a"};
  EXPECT_THROW(make_reward(config), InputError);  // no weight
  config.weights = {1.0};
  config.terms = {"sum"};
  EXPECT_THROW(make_reward(config), InputError);  // no nesting
}

TEST(MakeReward, ModelTermComesFromTheFactoryAndSeesTheOriginalPrompt) {
  RewardConfig config;
  config.kind = "model";
  EXPECT_THROW(make_reward(config), InputError);
  std::vector<std::string> seen;
  const auto reward = make_reward(config, [&] { return std::make_unique<RecordingReward>(&seen); });
  const auto scores = reward->score({"original x"}, {"response"});
  EXPECT_EQ(scores, (std::vector<double>{0.25}));
  EXPECT_EQ(seen, (std::vector<std::string>{"original x"}));
}

TEST(RewardFunction, MismatchedSizesAreRejected) {
  LengthReward reward(0, 10);
  EXPECT_THROW(reward.score({"a", "b"}, {"only one"}), RuntimeError);
}

}  // namespace
}  // namespace alignpro
