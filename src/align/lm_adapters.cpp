#include "align/lm_adapters.h"

#include "common/error.h"
#include "model/scoring.h"

namespace alignpro {

namespace {

// Runs fn on consecutive slices of at most `batch` items and concatenates the results.
template <class Out, class Fn>
std::vector<Out> in_batches(size_t count, int64_t batch, Fn fn) {
  std::vector<Out> out;
  out.reserve(count);
  const size_t step = batch > 0 ? static_cast<size_t>(batch) : std::max<size_t>(count, 1);
  for (size_t begin = 0; begin < count; begin += step) {
    auto part = fn(begin, std::min(count, begin + step));
    out.insert(out.end(), std::make_move_iterator(part.begin()),
               std::make_move_iterator(part.end()));
  }
  return out;
}

}  // namespace

LanguageModel LanguageModel::load(const std::string& folder, torch::Device device,
                                  torch::ScalarType dtype) {
  LoadOptions options;
  options.device = device;
  options.dtype = dtype;
  LanguageModel lm;
  lm.folder = folder;
  lm.model = load_model(folder, options);
  lm.tokenizer = std::make_shared<Tokenizer>(Tokenizer::from_folder(folder));
  return lm;
}

std::vector<int64_t> LanguageModel::encode(const PromptFormat& format,
                                           const TemplateFields& fields) const {
  auto ids = tokenizer->encode(format.render(fields), format.add_special_tokens());
  if (ids.empty()) {
    throw InputError(folder + ": the tokenizer turned a prompt into no tokens; give the " +
                     "template some fixed text or let the tokenizer add its BOS token");
  }
  return ids;
}

GenerateOptions LanguageModel::generate_options(int64_t max_new_tokens, double temperature,
                                                int64_t top_k, double top_p,
                                                const std::vector<std::string>& stop) const {
  GenerateOptions options;
  options.max_new_tokens = max_new_tokens;
  options.temperature = temperature;
  options.top_k = top_k;
  options.top_p = top_p;
  options.stop_strings = stop;
  options.stop_token_ids = stop_token_ids(model->config(), read_generation_config(folder));
  if (auto eos = tokenizer->eos_id()) {
    if (std::find(options.stop_token_ids.begin(), options.stop_token_ids.end(), *eos) ==
        options.stop_token_ids.end()) {
      options.stop_token_ids.push_back(*eos);
    }
  }
  options.pad_token_id = tokenizer->pad_id().value_or(model->config().pad_token_id.value_or(
      options.stop_token_ids.empty() ? 0 : options.stop_token_ids.front()));
  auto tokenizer_ref = tokenizer;
  options.decode = [tokenizer_ref](const std::vector<int64_t>& ids) {
    return tokenizer_ref->decode(ids);
  };
  return options;
}

LmPrompter::LmPrompter(LanguageModel policy, LanguageModel reference, PromptFormat format,
                       GenerateOptions options)
    : policy_(std::move(policy)),
      reference_(std::move(reference)),
      format_(std::move(format)),
      options_(std::move(options)) {
  for (auto& p : reference_.model->parameters()) p.set_requires_grad(false);
}

std::vector<std::vector<int64_t>> LmPrompter::encode_prompts(
    const std::vector<std::string>& prompts) const {
  std::vector<std::vector<int64_t>> ids;
  ids.reserve(prompts.size());
  for (const auto& prompt : prompts) ids.push_back(policy_.encode(format_, {prompt, "", ""}));
  return ids;
}

std::vector<Rewrite> LmPrompter::sample(const std::vector<std::string>& prompts,
                                        std::vector<RngStream>& streams) {
  torch::NoGradGuard no_grad;
  const auto inputs = encode_prompts(prompts);
  const auto generations = generate(*policy_.model, inputs, options_, streams);
  std::vector<std::vector<int64_t>> continuations;
  for (const auto& g : generations) continuations.push_back(g.tokens);
  const auto reference =
      score_continuations(*reference_.model, inputs, continuations, options_.pad_token_id);
  const auto ref_rows = unpad_rows(reference.token_logprobs, reference.mask);
  std::vector<Rewrite> rewrites(prompts.size());
  for (size_t i = 0; i < prompts.size(); ++i) {
    rewrites[i].text = generations[i].text;
    rewrites[i].tokens = generations[i].tokens;
    rewrites[i].old_logprobs = generations[i].logprobs;
    rewrites[i].ref_logprobs = ref_rows[i];
  }
  return rewrites;
}

TokenLogProbs LmPrompter::log_probs(const std::vector<std::string>& prompts,
                                    const std::vector<Rewrite>& rewrites) {
  std::vector<std::vector<int64_t>> continuations;
  for (const auto& r : rewrites) continuations.push_back(r.tokens);
  const auto scores = score_continuations(*policy_.model, encode_prompts(prompts), continuations,
                                          options_.pad_token_id);
  return {scores.token_logprobs.to(torch::kCPU, torch::kFloat32),
          scores.mask.to(torch::kCPU, torch::kFloat32)};
}

std::vector<torch::Tensor> LmPrompter::parameters() {
  return policy_.model->parameters();
}

std::vector<std::string> LmPrompter::rewrite_greedy(const std::vector<std::string>& prompts) {
  torch::NoGradGuard no_grad;
  GenerateOptions greedy = options_;
  greedy.greedy = true;
  std::vector<RngStream> none;
  std::vector<std::string> texts;
  for (const auto& g : generate(*policy_.model, encode_prompts(prompts), greedy, none)) {
    texts.push_back(g.text);
  }
  return texts;
}

LmResponder::LmResponder(LanguageModel target, PromptFormat format, GenerateOptions options,
                         int64_t batch_size)
    : target_(std::move(target)),
      format_(std::move(format)),
      options_(std::move(options)),
      batch_size_(batch_size) {}

std::vector<std::string> LmResponder::run(const std::vector<std::string>& rewrites,
                                          std::vector<RngStream>& streams, bool greedy) {
  torch::NoGradGuard no_grad;
  GenerateOptions options = options_;
  options.greedy = greedy;
  return in_batches<std::string>(rewrites.size(), batch_size_, [&](size_t begin, size_t end) {
    std::vector<std::vector<int64_t>> inputs;
    for (size_t i = begin; i < end; ++i) {
      inputs.push_back(target_.encode(format_, {rewrites[i], rewrites[i], ""}));
    }
    std::vector<RngStream> part;
    if (!greedy) part.assign(streams.begin() + begin, streams.begin() + end);
    std::vector<std::string> texts;
    for (const auto& g : generate(*target_.model, inputs, options, part)) texts.push_back(g.text);
    // Streams advance in place so that a caller can keep drawing from them.
    if (!greedy) std::copy(part.begin(), part.end(), streams.begin() + begin);
    return texts;
  });
}

std::vector<std::string> LmResponder::respond(const std::vector<std::string>& rewrites,
                                              std::vector<RngStream>& streams) {
  return run(rewrites, streams, false);
}

std::vector<std::string> LmResponder::respond_greedy(const std::vector<std::string>& rewrites) {
  std::vector<RngStream> none;
  return run(rewrites, none, true);
}

ModelReward::ModelReward(LanguageModel reward_model, PromptTemplate format, int64_t batch_size)
    : reward_model_(std::move(reward_model)), format_(std::move(format)), batch_size_(batch_size) {
  if (!reward_model_.model->is_classifier()) {
    throw InputError(reward_model_.folder + "/config.json: reward.model must be a " +
                     "sequence-classification checkpoint (*ForSequenceClassification)");
  }
}

std::vector<double> ModelReward::score(const std::vector<std::string>& prompts,
                                       const std::vector<std::string>& responses) {
  std::vector<std::vector<int64_t>> sequences;
  sequences.reserve(prompts.size());
  for (size_t i = 0; i < prompts.size(); ++i) {
    sequences.push_back(reward_model_.tokenizer->encode(
        format_.render({prompts[i], "", responses[i]}), /*add_special_tokens=*/true));
  }
  const torch::Tensor scores = score_sequences(*reward_model_.model, sequences, batch_size_);
  std::vector<double> out(prompts.size());
  auto column = scores.select(1, 0).to(torch::kFloat64).contiguous();
  std::copy(column.data_ptr<double>(), column.data_ptr<double>() + out.size(), out.begin());
  return out;
}

std::string ModelReward::describe() const {
  return "model(" + reward_model_.folder + ")";
}

}  // namespace alignpro
