// Measuring how the world's models behave, through the real generation and reward code: how
// often the target answers helpfully with and without the helpful wordings, what the reward
// model gives those answers, and what the reference prompter writes.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "demo/world.h"
#include "model/transformer.h"
#include "text/tokenizer.h"

namespace alignpro::demo {

struct ProbeOptions {
  bool greedy = true;
  int64_t samples = 1;  // responses per prompt when sampling
  double temperature = 1.0;
  int64_t max_new_tokens = 40;
  uint64_t seed = 0;
  int64_t batch = 64;  // prompts generated together
};

// What the target did for one wording of the prompts.
struct WordingStats {
  Wording wording = Wording::kPlain;
  int64_t responses = 0;
  double helpful_rate = 0;
  double vague_rate = 0;
  double refusal_rate = 0;
  double off_topic_rate = 0;
  double mean_reward = 0;  // 0 without a reward model
};
const char* wording_name(Wording wording);

// Generates the target's responses to every prompt in each wording (plain, detail prefix,
// thorough suffix), judges them by the world's rules against each prompt's topic, and, given a
// reward model, scores them against the ORIGINAL (plain) prompt. Sampling draws from
// RngStream(seed, kEval, {wording, prompt, sample}).
std::vector<WordingStats> probe_target(Transformer& target, const Tokenizer& tokenizer,
                                       Transformer* reward, const std::vector<UserPrompt>& prompts,
                                       const ProbeOptions& options);

// The target's response texts to already worded prompts (laid out by kTargetTemplate here).
std::vector<std::string> target_responses(Transformer& target, const Tokenizer& tokenizer,
                                          const std::vector<std::string>& prompts,
                                          const ProbeOptions& options, uint64_t stream_tag);

// Reward-model scores of (prompt, response) pairs, laid out by kRewardTemplate.
std::vector<float> reward_scores(Transformer& reward, const Tokenizer& tokenizer,
                                 const std::vector<std::string>& prompts,
                                 const std::vector<std::string>& responses);

// What the prompter's rewrites do to the requests.
struct PrompterStats {
  int64_t rewrites = 0;
  double copy_rate = 0;        // the rewrite is the request itself
  double worded_rate = 0;      // it carries a helpful wording
  double topic_kept_rate = 0;  // it names the request's topic and no other
};
PrompterStats probe_prompter(Transformer& prompter, const Tokenizer& tokenizer,
                             const std::vector<UserPrompt>& prompts, const ProbeOptions& options);

}  // namespace alignpro::demo
