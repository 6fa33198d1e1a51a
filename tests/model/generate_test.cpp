#include "model/generate.h"

#include <gtest/gtest.h>

#include <map>

#include "common/error.h"
#include "fixtures.h"
#include "model/scoring.h"

namespace alignpro {
namespace {

using testing::model_dir;
using testing::Reference;

std::vector<RngStream> streams_for(size_t count, uint64_t seed = 11) {
  std::vector<RngStream> streams;
  for (size_t i = 0; i < count; ++i)
    streams.emplace_back(seed, RngPurpose::kResponse, std::initializer_list<uint64_t>{i});
  return streams;
}

class GenerateFixtureTest : public ::testing::TestWithParam<std::string> {};

TEST_P(GenerateFixtureTest, GreedyTokensMatchReference) {
  const auto model = load_model(model_dir(GetParam()));
  const Reference ref(GetParam());
  GenerateOptions options;
  options.greedy = true;
  options.max_new_tokens = ref.info["greedy_max_new_tokens"].get<int64_t>();
  options.stop_token_ids = {ref.info["eos_token_id"].get<int64_t>()};
  std::vector<RngStream> none;
  const auto prompts = testing::rows_of(ref.info["prompts"]);
  const auto expected = testing::rows_of(ref.info["greedy"]);
  const auto out = generate(*model, prompts, options, none);
  ASSERT_EQ(out.size(), expected.size());
  for (size_t i = 0; i < out.size(); ++i) EXPECT_EQ(out[i].tokens, expected[i]) << "row " << i;
}

TEST_P(GenerateFixtureTest, ReturnedLogprobsEqualScoredLogprobs) {
  const auto model = load_model(model_dir(GetParam()));
  const Reference ref(GetParam());
  const auto prompts = testing::rows_of(ref.info["prompts"]);
  GenerateOptions options;
  options.max_new_tokens = 10;
  options.temperature = 0.8;
  options.top_k = 40;
  auto streams = streams_for(prompts.size());
  const auto out = generate(*model, prompts, options, streams);
  std::vector<std::vector<int64_t>> continuations;
  for (const auto& g : out) continuations.push_back(g.tokens);
  torch::NoGradGuard no_grad;
  const ContinuationScores scores = score_continuations(*model, prompts, continuations);
  const auto scored = unpad_rows(scores.token_logprobs, scores.mask);
  for (size_t i = 0; i < out.size(); ++i) {
    ASSERT_EQ(scored[i].size(), out[i].logprobs.size());
    for (size_t j = 0; j < scored[i].size(); ++j) {
      EXPECT_NEAR(scored[i][j], out[i].logprobs[j], 1e-4) << "row " << i << " token " << j;
    }
  }
}

TEST_P(GenerateFixtureTest, BatchedSamplingEqualsUnbatchedWithTheSameStreams) {
  const auto model = load_model(model_dir(GetParam()));
  const Reference ref(GetParam());
  auto prompts = testing::rows_of(ref.info["prompts"]);
  prompts.push_back({5, 6});
  GenerateOptions options;
  options.max_new_tokens = 15;
  options.temperature = 1.3;
  options.top_p = 0.9;
  options.stop_token_ids = {7, 8, 9};  // some rows stop early, and leave the batch
  auto batch_streams = streams_for(prompts.size());
  const auto batched = generate(*model, prompts, options, batch_streams);
  for (size_t i = 0; i < prompts.size(); ++i) {
    std::vector<RngStream> own = {RngStream(11, RngPurpose::kResponse, {i})};
    const auto alone = generate(*model, {prompts[i]}, options, own);
    EXPECT_EQ(batched[i].tokens, alone[0].tokens) << "row " << i;
    ASSERT_EQ(batched[i].logprobs.size(), alone[0].logprobs.size());
    for (size_t j = 0; j < alone[0].logprobs.size(); ++j) {
      EXPECT_NEAR(batched[i].logprobs[j], alone[0].logprobs[j], 1e-4);
    }
    EXPECT_EQ(batched[i].finish, alone[0].finish);
    EXPECT_EQ(own[0].position(), batch_streams[i].position());
    // One uniform (two 32-bit words) per sampled token.
    EXPECT_EQ(own[0].position(), 2 * alone[0].tokens.size());
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, GenerateFixtureTest,
                         ::testing::ValuesIn(testing::causal_models()));

class GenerateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    model_ = load_model(model_dir("llama_gqa"));
    ref_ = std::make_unique<Reference>("llama_gqa");
    prompts_ = testing::rows_of(ref_->info["prompts"]);
    greedy_ = testing::rows_of(ref_->info["greedy"]);
  }
  std::shared_ptr<Transformer> model_;
  std::unique_ptr<Reference> ref_;
  std::vector<std::vector<int64_t>> prompts_, greedy_;
  std::vector<RngStream> none_;
};

TEST_F(GenerateTest, StopTokenEndsItsRowAndKeepsTheToken) {
  // A token that row 0 emits for the first time at index 4.
  size_t at = 4;
  while (std::find(greedy_[0].begin(), greedy_[0].begin() + at, greedy_[0][at]) !=
         greedy_[0].begin() + at) {
    ++at;
  }
  const int64_t stop = greedy_[0][at];
  GenerateOptions options;
  options.greedy = true;
  options.max_new_tokens = 12;
  options.stop_token_ids = {stop};
  const auto out = generate(*model_, prompts_, options, none_);
  EXPECT_EQ(out[0].tokens, std::vector<int64_t>(greedy_[0].begin(), greedy_[0].begin() + at + 1));
  EXPECT_EQ(out[0].finish, FinishReason::kStopToken);
  for (size_t i = 1; i < out.size(); ++i) {
    auto end = std::find(greedy_[i].begin(), greedy_[i].end(), stop);
    if (end != greedy_[i].end()) ++end;
    EXPECT_EQ(out[i].tokens, std::vector<int64_t>(greedy_[i].begin(), end)) << "row " << i;
    const bool stops = std::find(greedy_[i].begin(), greedy_[i].end(), stop) != greedy_[i].end();
    EXPECT_EQ(out[i].finish, stops ? FinishReason::kStopToken : FinishReason::kLength);
  }
}

TEST_F(GenerateTest, StopStringEndsItsRowAndCutsTheText) {
  GenerateOptions options;
  options.greedy = true;
  options.max_new_tokens = 12;
  options.decode = [](const std::vector<int64_t>& ids) {
    std::string text;
    for (int64_t id : ids) text += "<" + std::to_string(id) + ">";
    return text;
  };
  const std::string stop = "<" + std::to_string(greedy_[1][3]) + ">";
  options.stop_strings = {stop};
  const auto out = generate(*model_, prompts_, options, none_);
  const auto expected_end = std::find(greedy_[1].begin(), greedy_[1].end(), greedy_[1][3]) + 1;
  EXPECT_EQ(out[1].tokens, std::vector<int64_t>(greedy_[1].begin(), expected_end));
  EXPECT_EQ(out[1].finish, FinishReason::kStopString);
  EXPECT_EQ(out[1].text.find(stop), std::string::npos);
  EXPECT_EQ(out[1].text + stop, options.decode(out[1].tokens));
  // Rows that never produce the stop string run to max_new_tokens and get their whole text.
  for (size_t i = 0; i < out.size(); ++i) {
    if (out[i].finish == FinishReason::kLength) {
      EXPECT_EQ(out[i].tokens.size(), 12u);
      EXPECT_EQ(out[i].text, options.decode(out[i].tokens));
    }
  }
}

TEST_F(GenerateTest, SameStreamsGiveTheSameSamplesAndOtherSeedsDiffer) {
  GenerateOptions options;
  options.max_new_tokens = 12;
  auto a = streams_for(prompts_.size(), 1);
  auto b = streams_for(prompts_.size(), 1);
  auto c = streams_for(prompts_.size(), 2);
  const auto first = generate(*model_, prompts_, options, a);
  const auto again = generate(*model_, prompts_, options, b);
  const auto other = generate(*model_, prompts_, options, c);
  bool any_difference = false;
  for (size_t i = 0; i < first.size(); ++i) {
    EXPECT_EQ(first[i].tokens, again[i].tokens);
    any_difference = any_difference || first[i].tokens != other[i].tokens;
  }
  EXPECT_TRUE(any_difference);
}

TEST_F(GenerateTest, BadInputsFailClearly) {
  GenerateOptions options;
  options.max_new_tokens = 4;
  auto streams = streams_for(1);
  EXPECT_THROW(generate(*model_, {{}}, options, streams), InputError);
  EXPECT_THROW(generate(*model_, {{1, 300}}, options, streams), InputError);
  EXPECT_THROW(generate(*model_, {{1}, {2}}, options, streams), InputError);  // one stream short
  options.temperature = 0;
  EXPECT_THROW(generate(*model_, {{1}}, options, streams), InputError);
  options.temperature = 1;
  options.top_p = 0;
  EXPECT_THROW(generate(*model_, {{1}}, options, streams), InputError);
  options.top_p = 1;
  options.stop_strings = {"x"};
  EXPECT_THROW(generate(*model_, {{1}}, options, streams), InputError);  // no decode
  options.stop_strings.clear();
  options.max_new_tokens = 0;
  EXPECT_TRUE(generate(*model_, {{1}}, options, streams)[0].tokens.empty());

  const auto gpt2 = load_model(model_dir("gpt2"));
  options.max_new_tokens = 60;
  try {
    generate(*gpt2, {std::vector<int64_t>(10, 5)}, options, streams);
    ADD_FAILURE() << "no InputError";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("n_positions 64"), std::string::npos) << e.what();
  }
  const auto reward = load_model(model_dir("llama_reward"));
  EXPECT_THROW(generate(*reward, {{1}}, options, streams), InputError);
}

TEST(Sampler, KeepsOnlyTheTopKTokens) {
  const std::vector<float> probs = {0.05f, 0.3f, 0.1f, 0.25f, 0.2f, 0.1f};
  RngStream stream(3, RngPurpose::kResponse);
  std::map<int64_t, int> counts;
  for (int i = 0; i < 4000; ++i)
    ++counts[sample_from_probabilities(probs.data(), 6, 2, 1.0, stream)];
  EXPECT_EQ(counts.size(), 2u);
  EXPECT_GT(counts[1], 0);
  EXPECT_GT(counts[3], 0);
  // Renormalised over the two: 0.3 / 0.55.
  EXPECT_NEAR(counts[1] / 4000.0, 0.3 / 0.55, 0.03);
}

TEST(Sampler, KeepsTheNucleus) {
  const std::vector<float> probs = {0.05f, 0.3f, 0.1f, 0.25f, 0.2f, 0.1f};
  RngStream stream(4, RngPurpose::kResponse);
  std::map<int64_t, int> counts;
  // Mass before each token in order 1, 3, 4, ...: 0, 0.3, 0.55, 0.75 -> top_p 0.7 keeps 1, 3, 4.
  for (int i = 0; i < 6000; ++i)
    ++counts[sample_from_probabilities(probs.data(), 6, 0, 0.7, stream)];
  EXPECT_EQ(counts.size(), 3u);
  EXPECT_NEAR(counts[4] / 6000.0, 0.2 / 0.75, 0.03);
}

TEST(Sampler, FollowsTheDistributionWithoutFilters) {
  std::vector<float> probs(1000, 0.0f);
  probs[10] = 0.5f;
  probs[500] = 0.25f;
  probs[999] = 0.25f;
  RngStream stream(5, RngPurpose::kResponse);
  std::map<int64_t, int> counts;
  for (int i = 0; i < 4000; ++i)
    ++counts[sample_from_probabilities(probs.data(), 1000, 0, 1.0, stream)];
  EXPECT_EQ(counts.size(), 3u);
  EXPECT_NEAR(counts[10] / 4000.0, 0.5, 0.03);
}

TEST(Sampler, NucleusOverALargeFlatVocabularyGrowsTheSortedPrefix) {
  std::vector<float> probs(5000, 1.0f / 5000);
  RngStream stream(6, RngPurpose::kResponse);
  int64_t largest = 0;
  for (int i = 0; i < 2000; ++i) {
    largest = std::max(largest, sample_from_probabilities(probs.data(), 5000, 0, 0.5, stream));
  }
  // Equal probabilities sort by id, so the nucleus of half the mass is ids 0..2499.
  EXPECT_LT(largest, 2500);
  EXPECT_GT(largest, 2000);
}

TEST(Sampler, TopOneIsArgmaxWithTiesToTheLowerId) {
  const std::vector<float> probs = {0.1f, 0.4f, 0.1f, 0.4f};
  RngStream stream(7, RngPurpose::kResponse);
  for (int i = 0; i < 50; ++i)
    EXPECT_EQ(sample_from_probabilities(probs.data(), 4, 1, 1.0, stream), 1);
}

}  // namespace
}  // namespace alignpro
