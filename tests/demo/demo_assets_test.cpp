// The demo's models behave as the world's design says, measured through the real generation and
// reward code on the held-out prompts. Set ALIGNPRO_DEMO_DIR to test regenerated assets.
#include <gtest/gtest.h>

#include <memory>

#include "demo/world.h"
#include "demo/world_probe.h"
#include "demo_test_util.h"
#include "model/config.h"
#include "model/transformer.h"
#include "text/tokenizer.h"

namespace alignpro::demo {
namespace {

struct DemoModels {
  std::shared_ptr<Transformer> target, prompter, reward;
  std::unique_ptr<Tokenizer> tokenizer;
};

// Loaded once for the whole suite: the models are small, but generation is the slow part.
const DemoModels& models() {
  static const DemoModels loaded = [] {
    const std::string dir = testing::demo_dir();
    DemoModels m;
    LoadOptions load;
    load.dtype = torch::kFloat32;
    m.target = load_model(dir + "/models/target", load);
    m.prompter = load_model(dir + "/models/prompter", load);
    m.reward = load_model(dir + "/models/reward", load);
    m.tokenizer = std::make_unique<Tokenizer>(Tokenizer::from_folder(dir + "/tokenizer"));
    return m;
  }();
  return loaded;
}

const WordingStats& stats_for(const std::vector<WordingStats>& all, Wording wording) {
  for (const auto& s : all) {
    if (s.wording == wording) return s;
  }
  throw std::logic_error("no stats for a wording");
}

TEST(DemoAssets, ModelsLoadWithTheHeadsTheWorldNeeds) {
  const DemoModels& m = models();
  EXPECT_FALSE(m.target->is_classifier());
  EXPECT_FALSE(m.prompter->is_classifier());
  ASSERT_TRUE(m.reward->is_classifier());
  EXPECT_EQ(m.reward->config().num_labels, 1);
  EXPECT_EQ(m.reward->config().pad_token_id, m.tokenizer->pad_id());
  for (const auto* model : {m.target.get(), m.prompter.get(), m.reward.get()}) {
    EXPECT_GE(model->config().vocab_size, m.tokenizer->vocab_size());
    // The same tokenizer ships in every model folder.
    EXPECT_EQ(testing::read_file(testing::demo_dir() + "/tokenizer/tokenizer.json"),
              testing::read_file(testing::demo_dir() + "/models/" +
                                 (model == m.target.get()     ? "target"
                                  : model == m.prompter.get() ? "prompter"
                                                              : "reward") +
                                 "/tokenizer.json"));
  }
}

// Greedy decoding gives the target's most likely answer: helpful with a helpful wording,
// unhelpful without one.
TEST(DemoAssets, GreedyTargetIsHelpfulMostlyUnderHelpfulWordings) {
  const DemoModels& m = models();
  ProbeOptions greedy;
  const auto stats = probe_target(*m.target, *m.tokenizer, m.reward.get(), eval_prompts(), greedy);
  const auto& plain = stats_for(stats, Wording::kPlain);
  for (Wording wording : {Wording::kDetailPrefix, Wording::kThoroughSuffix}) {
    const auto& worded = stats_for(stats, wording);
    EXPECT_GT(worded.helpful_rate, 0.8) << wording_name(wording);
    EXPECT_GT(worded.helpful_rate, plain.helpful_rate + 0.5) << wording_name(wording);
    EXPECT_GT(worded.mean_reward, plain.mean_reward + 1.0) << wording_name(wording);
  }
  EXPECT_LT(plain.helpful_rate, 0.3);
}

// Sampling shows the noise the world was made with: plain requests are sometimes answered well,
// worded ones sometimes not.
TEST(DemoAssets, SampledTargetHelpfulRatesFollowTheTrainingRates) {
  const DemoModels& m = models();
  ProbeOptions sampled;
  sampled.greedy = false;
  sampled.samples = 2;
  sampled.seed = 11;
  const auto stats = probe_target(*m.target, *m.tokenizer, m.reward.get(), eval_prompts(), sampled);
  const auto& plain = stats_for(stats, Wording::kPlain);
  const auto& prefix = stats_for(stats, Wording::kDetailPrefix);
  const WorldConfig design;
  EXPECT_GT(prefix.helpful_rate, design.worded_helpful_rate - 0.2);
  EXPECT_GT(plain.helpful_rate, 0.05);
  EXPECT_LT(plain.helpful_rate, 0.4);
  EXPECT_GT(prefix.mean_reward, plain.mean_reward + 1.0);
}

// For held-out requests, the reward model ranks a helpful on-topic answer above a refusal and
// above an equally helpful answer about another topic: it judges against the original request.
TEST(DemoAssets, RewardModelPrefersHelpfulOnTopicAnswers) {
  const DemoModels& m = models();
  std::vector<std::string> prompts, helpful, refusal, off_topic;
  for (const auto& prompt : eval_prompts()) {
    for (uint64_t i = 0; i < 3; ++i) {
      RngStream rng(99, RngPurpose::kEval, {prompt.topic, prompt.form, i});
      prompts.push_back(prompt.text);
      helpful.push_back(helpful_response(prompt.topic, rng));
      refusal.push_back(refusal_response(prompt.topic, rng));
      off_topic.push_back(off_topic_response(prompt.topic, rng));
    }
  }
  const auto r_helpful = reward_scores(*m.reward, *m.tokenizer, prompts, helpful);
  const auto r_refusal = reward_scores(*m.reward, *m.tokenizer, prompts, refusal);
  const auto r_off_topic = reward_scores(*m.reward, *m.tokenizer, prompts, off_topic);
  double over_refusal = 0, over_off_topic = 0;
  for (size_t i = 0; i < prompts.size(); ++i) {
    over_refusal += r_helpful[i] > r_refusal[i];
    over_off_topic += r_helpful[i] > r_off_topic[i];
  }
  const double n = static_cast<double>(prompts.size());
  EXPECT_GT(over_refusal / n, 0.95);
  EXPECT_GT(over_off_topic / n, 0.9);
}

// The reference prompter mostly copies the request, rarely adds a helpful wording, and keeps
// the topic: the room Align-Pro has to improve on.
TEST(DemoAssets, ReferencePrompterMostlyCopiesTheRequest) {
  const DemoModels& m = models();
  ProbeOptions greedy;
  const PrompterStats most_likely =
      probe_prompter(*m.prompter, *m.tokenizer, eval_prompts(), greedy);
  EXPECT_GT(most_likely.copy_rate, 0.8);
  EXPECT_GT(most_likely.topic_kept_rate, 0.9);
  ProbeOptions sampled;
  sampled.greedy = false;
  sampled.samples = 4;
  sampled.seed = 5;
  const PrompterStats stats = probe_prompter(*m.prompter, *m.tokenizer, eval_prompts(), sampled);
  EXPECT_GT(stats.copy_rate, 0.6);
  EXPECT_GT(stats.worded_rate, 0.03);
  EXPECT_LT(stats.worded_rate, 0.3);
  EXPECT_GT(stats.topic_kept_rate, 0.8);
}

}  // namespace
}  // namespace alignpro::demo
