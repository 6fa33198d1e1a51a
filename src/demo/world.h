// The demo's tiny world, where the wording of a request decides how well the frozen target
// answers it. Users ask about one of many topics in plain words; the target was trained to answer
// helpfully and on topic mostly when the request carries one of two helpful wordings, and to
// refuse or drift to another topic otherwise; the reward model judges a response against the
// topic of the ORIGINAL request; the reference prompter mostly copies the request and only rarely
// adds a helpful wording. Everything here is deterministic: all randomness comes from RngStreams
// named by the world's seed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/rng.h"

namespace alignpro::demo {

// One subject a user can ask about. `fact` names the topic and no other topic.
struct Topic {
  std::string name;   // lower case, as it appears in a request: "volcanoes", "coral reefs"
  std::string field;  // a coarse subject area: "geology"
  std::string fact;   // one sentence, the heart of a helpful answer
};
const std::vector<Topic>& topics();

// One way a user words a request; `text` holds {topic}.
struct RequestForm {
  std::string text;
  // How often the target answers this form helpfully when no helpful wording is added.
  double helpful_rate = 0;
};
const std::vector<RequestForm>& request_forms();

// What a rewrite may add to a request. The two helpful wordings make the target answer well.
enum class Wording { kPlain, kDetailPrefix, kThoroughSuffix };
inline constexpr char kDetailPrefix[] = "Please explain in detail: ";
inline constexpr char kThoroughSuffix[] = " Give a thorough answer.";
std::string apply_wording(const std::string& request, Wording wording);
// Whether a prompt carries one of the helpful wordings.
bool has_helpful_wording(const std::string& prompt);

// How each model of the world reads its input; the job file uses the same strings.
inline constexpr char kPrompterTemplate[] = "Request: {prompt}\nRewrite:\n";
inline constexpr char kTargetTemplate[] = "User: {prompt}\nAssistant:\n";
inline constexpr char kRewardTemplate[] = "User: {prompt}\nAssistant:\n{response}";

// A user request: a topic worded by one request form.
struct UserPrompt {
  size_t topic = 0;
  size_t form = 0;
  std::string text;
};
// Every (topic, form) request, topic-major.
std::vector<UserPrompt> all_user_prompts();
// Two forms per topic, rotating with the topic, are held out from every model's training data
// and from the training prompts, so that evaluation sees requests no model has seen.
bool is_held_out(size_t topic, size_t form);
std::vector<UserPrompt> train_prompts();
std::vector<UserPrompt> eval_prompts();

// The topic a text is about: the one topic whose name it contains as whole words, if exactly one.
std::optional<size_t> topic_of(const std::string& text);

// What a response does for the request's topic, as the world's rules see it.
enum class ResponseKind {
  kHelpful,   // states the topic's fact, names no other topic, does not refuse
  kVague,     // names the topic but gives no fact and does not refuse
  kRefusal,   // declines or admits ignorance
  kOffTopic,  // about another topic, or about none
};
const char* response_kind_name(ResponseKind kind);
ResponseKind judge_response(size_t topic, const std::string& response);

// Responses of each kind, drawn from the stream: a helpful answer in one of several phrasings, a
// refusal (some name the topic), or a helpful answer about a different topic.
std::string helpful_response(size_t topic, RngStream& rng);
std::string refusal_response(size_t topic, RngStream& rng);
std::string off_topic_response(size_t topic, RngStream& rng);

// The sizes and rates of the generated training data.
struct WorldConfig {
  uint64_t seed = 2025;
  int64_t target_examples = 6000;
  int64_t prompter_examples = 4800;
  int64_t reward_pairs = 3000;
  int64_t reward_eval_pairs = 400;
  // Target data: the share of requests with each helpful wording, and how often a request with a
  // helpful wording is answered helpfully (plain requests use their form's helpful_rate).
  double target_prefix_share = 0.25;
  double target_suffix_share = 0.25;
  double worded_helpful_rate = 0.9;
  // Of the unhelpful target answers, the share that drift to another topic (the rest refuse).
  double off_topic_share = 0.3;
  // Reference prompter data: the share of rewrites that add each helpful wording, and that
  // change the topic (the rest copy the request).
  double prompter_prefix_share = 0.06;
  double prompter_suffix_share = 0.06;
  double prompter_topic_change_share = 0.03;
  // Reward data: the share of rejected answers that are refusals (the rest are off topic), and
  // of requests that carry a helpful wording.
  double rejected_refusal_share = 0.5;
  double reward_worded_share = 0.2;
};

// One supervised example: the model reads `prompt` and learns to write `completion`.
struct SftExample {
  std::string prompt;
  std::string completion;
};
// One preference: for the ORIGINAL request `prompt`, `chosen` is better than `rejected`.
struct PreferencePair {
  std::string prompt;
  std::string chosen;
  std::string rejected;
};

// The target's data: prompts already laid out by kTargetTemplate, completions its answers.
std::vector<SftExample> target_sft_data(const WorldConfig& config);
// The reference prompter's data: prompts laid out by kPrompterTemplate, completions the rewrites.
std::vector<SftExample> prompter_sft_data(const WorldConfig& config);
// Preference pairs on the training requests, or (held_out) on the held-out ones.
std::vector<PreferencePair> reward_pairs(const WorldConfig& config, bool held_out);

// Every text the world's models read or write, for learning the tokenizer.
std::vector<std::string> world_corpus(const WorldConfig& config);

// The files of the world, written into `folder` (created if needed):
//   train_prompts.jsonl, eval_prompts.jsonl    {"prompt", "topic"}
//   target_sft.jsonl, prompter_sft.jsonl       {"prompt", "completion"}
//   reward_pairs.jsonl, reward_pairs_eval.jsonl {"prompt", "chosen", "rejected"}
void write_world_files(const WorldConfig& config, const std::string& folder);

// One JSONL line for each kind of record (no trailing newline).
std::string sft_jsonl_line(const SftExample& example);
std::string preference_jsonl_line(const PreferencePair& pair);
std::string prompt_jsonl_line(const UserPrompt& prompt);

}  // namespace alignpro::demo
