#include "demo/world_probe.h"

#include <algorithm>

#include "model/generate.h"
#include "model/scoring.h"
#include "text/template.h"

namespace alignpro::demo {

namespace {

std::string render(const char* layout, const std::string& prompt,
                   const std::string& response = "") {
  return PromptTemplate::parse(layout, "world layout").render({prompt, "", response});
}

// Every input `samples` times (once when greedy), generated in batches; rows are input-major.
std::vector<std::string> generate_texts(Transformer& model, const Tokenizer& tokenizer,
                                        const std::vector<std::string>& inputs,
                                        const ProbeOptions& options, uint64_t stream_tag) {
  const int64_t samples = options.greedy ? 1 : std::max<int64_t>(1, options.samples);
  GenerateOptions generation;
  generation.max_new_tokens = options.max_new_tokens;
  generation.greedy = options.greedy;
  generation.temperature = options.temperature;
  if (tokenizer.eos_id()) generation.stop_token_ids = {*tokenizer.eos_id()};
  for (int64_t id : model.config().eos_token_ids) {
    if (std::find(generation.stop_token_ids.begin(), generation.stop_token_ids.end(), id) ==
        generation.stop_token_ids.end()) {
      generation.stop_token_ids.push_back(id);
    }
  }
  generation.decode = [&tokenizer](const std::vector<int64_t>& ids) {
    return tokenizer.decode(ids);
  };
  generation.pad_token_id = tokenizer.pad_id().value_or(0);

  std::vector<std::vector<int64_t>> rows;
  std::vector<RngStream> streams;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const std::vector<int64_t> ids = tokenizer.encode(inputs[i]);
    for (int64_t s = 0; s < samples; ++s) {
      rows.push_back(ids);
      streams.emplace_back(
          options.seed, RngPurpose::kEval,
          std::initializer_list<uint64_t>{stream_tag, i, static_cast<uint64_t>(s)});
    }
  }
  std::vector<std::string> texts;
  texts.reserve(rows.size());
  torch::NoGradGuard no_grad;
  const size_t batch = static_cast<size_t>(std::max<int64_t>(1, options.batch));
  for (size_t begin = 0; begin < rows.size(); begin += batch) {
    const size_t end = std::min(rows.size(), begin + batch);
    std::vector<std::vector<int64_t>> part(rows.begin() + begin, rows.begin() + end);
    std::vector<RngStream> part_streams(streams.begin() + begin, streams.begin() + end);
    for (auto& generated : generate(model, part, generation, part_streams)) {
      texts.push_back(generated.text);
    }
  }
  return texts;
}

}  // namespace

const char* wording_name(Wording wording) {
  switch (wording) {
    case Wording::kPlain:
      return "plain";
    case Wording::kDetailPrefix:
      return "detail prefix";
    case Wording::kThoroughSuffix:
      return "thorough suffix";
  }
  return "?";
}

std::vector<std::string> target_responses(Transformer& target, const Tokenizer& tokenizer,
                                          const std::vector<std::string>& prompts,
                                          const ProbeOptions& options, uint64_t stream_tag) {
  std::vector<std::string> inputs;
  inputs.reserve(prompts.size());
  for (const auto& prompt : prompts) inputs.push_back(render(kTargetTemplate, prompt));
  return generate_texts(target, tokenizer, inputs, options, stream_tag);
}

std::vector<float> reward_scores(Transformer& reward, const Tokenizer& tokenizer,
                                 const std::vector<std::string>& prompts,
                                 const std::vector<std::string>& responses) {
  std::vector<std::vector<int64_t>> rows;
  rows.reserve(prompts.size());
  for (size_t i = 0; i < prompts.size(); ++i) {
    rows.push_back(tokenizer.encode(render(kRewardTemplate, prompts[i], responses.at(i))));
  }
  const torch::Tensor scores = score_sequences(reward, rows, 64);  // [rows, 1]
  std::vector<float> out(rows.size());
  for (size_t i = 0; i < rows.size(); ++i)
    out[i] = scores[static_cast<int64_t>(i)][0].item<float>();
  return out;
}

std::vector<WordingStats> probe_target(Transformer& target, const Tokenizer& tokenizer,
                                       Transformer* reward, const std::vector<UserPrompt>& prompts,
                                       const ProbeOptions& options) {
  std::vector<WordingStats> out;
  for (Wording wording : {Wording::kPlain, Wording::kDetailPrefix, Wording::kThoroughSuffix}) {
    std::vector<std::string> worded;
    for (const auto& prompt : prompts) worded.push_back(apply_wording(prompt.text, wording));
    const std::vector<std::string> responses =
        target_responses(target, tokenizer, worded, options, static_cast<uint64_t>(wording));
    const size_t per_prompt = responses.size() / std::max<size_t>(1, prompts.size());
    WordingStats stats;
    stats.wording = wording;
    stats.responses = static_cast<int64_t>(responses.size());
    std::vector<std::string> originals;
    for (size_t i = 0; i < responses.size(); ++i) {
      const UserPrompt& prompt = prompts[i / per_prompt];
      originals.push_back(prompt.text);
      switch (judge_response(prompt.topic, responses[i])) {
        case ResponseKind::kHelpful:
          stats.helpful_rate += 1;
          break;
        case ResponseKind::kVague:
          stats.vague_rate += 1;
          break;
        case ResponseKind::kRefusal:
          stats.refusal_rate += 1;
          break;
        case ResponseKind::kOffTopic:
          stats.off_topic_rate += 1;
          break;
      }
    }
    if (reward != nullptr && !responses.empty()) {
      double sum = 0;
      for (float r : reward_scores(*reward, tokenizer, originals, responses)) sum += r;
      stats.mean_reward = sum / static_cast<double>(responses.size());
    }
    const double n = std::max<double>(1, static_cast<double>(responses.size()));
    stats.helpful_rate /= n;
    stats.vague_rate /= n;
    stats.refusal_rate /= n;
    stats.off_topic_rate /= n;
    out.push_back(stats);
  }
  return out;
}

PrompterStats probe_prompter(Transformer& prompter, const Tokenizer& tokenizer,
                             const std::vector<UserPrompt>& prompts, const ProbeOptions& options) {
  std::vector<std::string> inputs;
  for (const auto& prompt : prompts) inputs.push_back(render(kPrompterTemplate, prompt.text));
  const std::vector<std::string> rewrites =
      generate_texts(prompter, tokenizer, inputs, options, /*stream_tag=*/100);
  const size_t per_prompt = rewrites.size() / std::max<size_t>(1, prompts.size());
  PrompterStats stats;
  stats.rewrites = static_cast<int64_t>(rewrites.size());
  for (size_t i = 0; i < rewrites.size(); ++i) {
    const UserPrompt& prompt = prompts[i / per_prompt];
    stats.copy_rate += rewrites[i] == prompt.text;
    stats.worded_rate += has_helpful_wording(rewrites[i]);
    const std::optional<size_t> topic = topic_of(rewrites[i]);
    stats.topic_kept_rate += topic && *topic == prompt.topic;
  }
  const double n = std::max<double>(1, static_cast<double>(rewrites.size()));
  stats.copy_rate /= n;
  stats.worded_rate /= n;
  stats.topic_kept_rate /= n;
  return stats;
}

}  // namespace alignpro::demo
