// The tiny world's rules and data: deterministic, held-out prompts kept out of training, and the
// rates the design promises present in the generated data.
#include <gtest/gtest.h>

#include <filesystem>
#include <set>

#include "demo/world.h"
#include "demo_test_util.h"

namespace alignpro::demo {
namespace {

TEST(WorldRules, EveryFactNamesOnlyItsTopic) {
  for (size_t t = 0; t < topics().size(); ++t) {
    ASSERT_EQ(topic_of(topics()[t].fact), std::optional<size_t>(t)) << topics()[t].fact;
    EXPECT_EQ(topic_of(topics()[t].name), std::optional<size_t>(t));
  }
}

TEST(WorldRules, JudgeRecognisesEachKindOfResponse) {
  for (size_t t = 0; t < topics().size(); ++t) {
    for (uint64_t i = 0; i < 8; ++i) {
      RngStream rng(7, RngPurpose::kInit, {t, i});
      EXPECT_EQ(judge_response(t, helpful_response(t, rng)), ResponseKind::kHelpful);
      EXPECT_EQ(judge_response(t, refusal_response(t, rng)), ResponseKind::kRefusal);
      EXPECT_EQ(judge_response(t, off_topic_response(t, rng)), ResponseKind::kOffTopic);
    }
  }
  EXPECT_EQ(judge_response(0, "Here is what I know about volcanoes."), ResponseKind::kVague);
  EXPECT_EQ(judge_response(0, ""), ResponseKind::kRefusal);
  EXPECT_EQ(judge_response(0, "lava lava lava"), ResponseKind::kOffTopic);
  // Whole words only: "teams" is not the topic "tea".
  EXPECT_EQ(topic_of("two teams"), std::nullopt);
}

TEST(WorldRules, HelpfulWordingsAreRecognised) {
  const std::string request = "tell me about bees";
  EXPECT_FALSE(has_helpful_wording(request));
  EXPECT_TRUE(has_helpful_wording(apply_wording(request, Wording::kDetailPrefix)));
  EXPECT_TRUE(has_helpful_wording(apply_wording(request, Wording::kThoroughSuffix)));
  EXPECT_EQ(apply_wording(request, Wording::kPlain), request);
}

TEST(WorldData, HeldOutPromptsAreKeptOutOfEveryTrainingSet) {
  const WorldConfig config;
  std::set<std::string> held_out;
  for (const auto& prompt : eval_prompts()) held_out.insert(prompt.text);
  EXPECT_EQ(held_out.size(), 2 * topics().size());
  EXPECT_EQ(train_prompts().size() + eval_prompts().size(), all_user_prompts().size());
  // Every topic and every request form is still seen in training.
  std::set<size_t> train_topics, train_forms;
  for (const auto& prompt : train_prompts()) {
    EXPECT_FALSE(held_out.count(prompt.text)) << prompt.text;
    train_topics.insert(prompt.topic);
    train_forms.insert(prompt.form);
  }
  EXPECT_EQ(train_topics.size(), topics().size());
  EXPECT_EQ(train_forms.size(), request_forms().size());
  // No request form is a part of another, so a held-out request inside a text means it was used.
  auto contains_held_out = [&](const std::string& text) {
    for (const auto& prompt : held_out) {
      if (text.find(prompt) != std::string::npos) return true;
    }
    return false;
  };
  for (const auto& example : target_sft_data(config))
    EXPECT_FALSE(contains_held_out(example.prompt));
  for (const auto& example : prompter_sft_data(config)) {
    EXPECT_FALSE(contains_held_out(example.prompt));
  }
  for (const auto& pair : reward_pairs(config, false)) {
    EXPECT_FALSE(held_out.count(pair.prompt)) << pair.prompt;
  }
}

TEST(WorldData, GenerationIsDeterministicAndFollowsTheSeed) {
  WorldConfig config;
  config.target_examples = 200;
  const auto first = target_sft_data(config);
  const auto second = target_sft_data(config);
  ASSERT_EQ(first.size(), 200u);
  for (size_t i = 0; i < first.size(); ++i) {
    EXPECT_EQ(first[i].prompt, second[i].prompt);
    EXPECT_EQ(first[i].completion, second[i].completion);
  }
  config.seed += 1;
  const auto other = target_sft_data(config);
  size_t same = 0;
  for (size_t i = 0; i < first.size(); ++i) same += first[i].prompt == other[i].prompt;
  EXPECT_LT(same, first.size() / 4);
}

TEST(WorldData, TargetDataIsHelpfulMostlyUnderHelpfulWordings) {
  const WorldConfig config;
  double worded = 0, worded_helpful = 0, plain = 0, plain_helpful = 0;
  for (const auto& example : target_sft_data(config)) {
    const auto topic = topic_of(example.prompt);
    ASSERT_TRUE(topic.has_value()) << example.prompt;
    const bool helpful = judge_response(*topic, example.completion) == ResponseKind::kHelpful;
    if (has_helpful_wording(example.prompt)) {
      worded += 1;
      worded_helpful += helpful;
    } else {
      plain += 1;
      plain_helpful += helpful;
    }
  }
  EXPECT_NEAR(worded / (worded + plain), 0.5, 0.05);
  EXPECT_NEAR(worded_helpful / worded, config.worded_helpful_rate, 0.03);
  EXPECT_GT(plain_helpful / plain, 0.1);
  EXPECT_LT(plain_helpful / plain, 0.3);
}

TEST(WorldData, ReferencePrompterDataRarelyUsesHelpfulWordings) {
  const WorldConfig config;
  double worded = 0, copies = 0, changed_topic = 0;
  const auto data = prompter_sft_data(config);
  for (const auto& example : data) {
    worded += has_helpful_wording(example.completion);
    copies += example.prompt == "Request: " + example.completion + "\nRewrite:\n";
    changed_topic += topic_of(example.completion) != topic_of(example.prompt);
  }
  const double n = static_cast<double>(data.size());
  EXPECT_NEAR(worded / n, config.prompter_prefix_share + config.prompter_suffix_share, 0.025);
  EXPECT_NEAR(changed_topic / n, config.prompter_topic_change_share, 0.015);
  EXPECT_GT(copies / n, 0.8);
}

TEST(WorldData, RewardPairsPreferHelpfulOnTopicAnswers) {
  const WorldConfig config;
  for (bool held_out : {false, true}) {
    for (const auto& pair : reward_pairs(config, held_out)) {
      const auto topic = topic_of(pair.prompt);
      ASSERT_TRUE(topic.has_value()) << pair.prompt;
      EXPECT_EQ(judge_response(*topic, pair.chosen), ResponseKind::kHelpful);
      EXPECT_NE(judge_response(*topic, pair.rejected), ResponseKind::kHelpful);
    }
  }
}

// The shipped data files are what the generator writes today, byte for byte.
TEST(WorldData, ShippedDataFilesAreRegeneratedExactly) {
  const std::string folder = testing::scratch_dir("world_files");
  write_world_files(WorldConfig{}, folder);
  const std::string shipped = testing::demo_dir() + "/data";
  for (const char* name : {"train_prompts.jsonl", "eval_prompts.jsonl", "target_sft.jsonl",
                           "prompter_sft.jsonl", "reward_pairs.jsonl", "reward_pairs_eval.jsonl"}) {
    const std::string made = testing::read_file(folder + "/" + name);
    EXPECT_FALSE(made.empty()) << name;
    EXPECT_TRUE(made == testing::read_file(shipped + "/" + name))
        << name << " differs from " << shipped;
  }
}

}  // namespace
}  // namespace alignpro::demo
