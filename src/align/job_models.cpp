#include "align/job_models.h"

#include <filesystem>

#include "common/error.h"
#include "io/model_identity.h"
#include "model/device.h"

namespace alignpro {

namespace {

// run.mode = "rlhf": the policy's own output is the response, passed on unchanged.
class EchoResponder final : public Responder {
 public:
  std::vector<std::string> respond(const std::vector<std::string>& rewrites,
                                   std::vector<RngStream>&) override {
    return rewrites;
  }
};

PromptFormat prompt_format(const std::string& text, const std::string& key,
                           const std::string& chat_format) {
  auto prompt_template = PromptTemplate::parse(text, key);
  prompt_template.require("prompt");
  return PromptFormat(std::move(prompt_template), parse_chat_format(chat_format, key));
}

// The frozen target of the job's target section, answering with `target`'s weights.
std::unique_ptr<LmResponder> frozen_target(const Job& job, LanguageModel target) {
  const auto& t = job.target;
  for (auto& p : target.model->parameters()) p.set_requires_grad(false);
  auto options = target.generate_options(t.max_new_tokens, t.temperature, t.top_k, t.top_p, t.stop);
  return std::make_unique<LmResponder>(std::move(target),
                                       prompt_format(t.template_, "target.template", t.chat_format),
                                       std::move(options), t.batch_size);
}

}  // namespace

std::unique_ptr<LmResponder> load_target(const Job& job, const std::string& folder,
                                         torch::Device device, torch::ScalarType dtype) {
  return frozen_target(job, LanguageModel::load(folder, device, dtype));
}

JobModels load_job_models(const Job& job, int local_rank) {
  JobModels models;
  models.device = choose_device(local_rank, job.runtime.device);
  const auto dtype = parse_dtype(job.runtime.dtype, models.device);
  const auto& p = job.prompter;
  const auto& t = job.target;
  if (job.run.mode == "rlhf") {
    // The policy trains in float32 from the target's weights; its frozen reference is a float32
    // copy of them, which is also the untuned target when the run computes in float32.
    LanguageModel policy = LanguageModel::load(t.model, models.device, torch::kFloat32);
    LanguageModel ref = LanguageModel::load(t.model, models.device, torch::kFloat32);
    if (dtype == torch::kFloat32) models.target = frozen_target(job, ref);
    auto options =
        policy.generate_options(t.max_new_tokens, t.temperature, t.top_k, t.top_p, t.stop);
    auto format = prompt_format(t.template_, "target.template", t.chat_format);
    models.tuned = std::make_unique<LmResponder>(policy, format, options, t.batch_size);
    models.lm_prompter = std::make_unique<LmPrompter>(std::move(policy), std::move(ref),
                                                      std::move(format), std::move(options));
    models.echo = std::make_unique<EchoResponder>();
    models.identities.reference_prompter = model_folder_identity(t.model);
    models.identities.target = models.identities.reference_prompter;
  } else if (p.kind == "pool") {
    models.pool = std::make_unique<PoolPrompter>(p.pool, p.pool_reference);
    models.pool_policy = std::make_unique<PoolPolicy>(*models.pool);
    std::string pool_text;
    for (const auto& t : p.pool) pool_text += t + "\n";
    models.identities.reference_prompter = "pool:" + text_identity(pool_text);
  } else {
    const std::string reference = p.reference.empty() ? p.model : p.reference;
    // The policy trains in float32 on every device; the reference only scores.
    LanguageModel policy = LanguageModel::load(p.model, models.device, torch::kFloat32);
    LanguageModel ref = LanguageModel::load(reference, models.device, torch::kFloat32);
    auto options = policy.generate_options(p.max_new_tokens, p.temperature, p.top_k, p.top_p, {});
    models.lm_prompter = std::make_unique<LmPrompter>(
        std::move(policy), std::move(ref),
        prompt_format(p.template_, "prompter.template", p.chat_format), std::move(options));
    models.identities.reference_prompter = model_folder_identity(reference);
  }
  if (!models.target) models.target = load_target(job, t.model, models.device, dtype);
  if (models.identities.target.empty()) models.identities.target = model_folder_identity(t.model);

  const auto& r = job.reward;
  models.reward = make_reward(r, [&]() -> std::unique_ptr<RewardFunction> {
    LanguageModel reward_model = LanguageModel::load(r.model, models.device, dtype);
    for (auto& param : reward_model.model->parameters()) param.set_requires_grad(false);
    auto format = PromptTemplate::parse(r.template_, "reward.template");
    format.require("prompt");
    format.require("response");
    models.identities.reward_model = model_folder_identity(r.model);
    return std::make_unique<ModelReward>(std::move(reward_model), std::move(format), r.batch_size);
  });
  if (models.identities.reward_model.empty()) {
    models.identities.reward_model = "rule:" + text_identity(models.reward->describe());
  }
  return models;
}

Responder& JobModels::responder() {
  if (echo) return *echo;
  return *target;
}

std::string tuned_target_folder(const Job& job) {
  std::filesystem::path path(job.run.output);
  if (path.extension() == ".h5") path.replace_extension();
  return path.string() + "-target";
}

void save_tuned_target(const Job& job, JobModels& models, const std::string& folder) {
  namespace fs = std::filesystem;
  const Transformer& model = *models.lm_prompter->policy().model;
  save_model(model, folder);
  for (const char* name : {"generation_config.json", "tokenizer.json", "tokenizer_config.json",
                           "special_tokens_map.json"}) {
    const fs::path from = fs::path(job.target.model) / name;
    if (!fs::exists(from)) continue;
    std::error_code ec;
    fs::copy_file(from, fs::path(folder) / name, fs::copy_options::overwrite_existing, ec);
    if (ec) {
      throw RuntimeError(folder + ": cannot copy " + from.string() + ": " + ec.message());
    }
  }
}

PrompterPolicy& JobModels::prompter() {
  if (lm_prompter) return *lm_prompter;
  return *pool_policy;
}

std::vector<std::pair<std::string, torch::Tensor>> JobModels::named_parameters() {
  std::vector<std::pair<std::string, torch::Tensor>> named;
  const std::string prefix = echo ? "target." : "prompter.";
  if (pool) {
    named.emplace_back("pool.logits", pool->logits());
  } else {
    for (const auto& item : lm_prompter->policy().model->named_parameters()) {
      named.emplace_back(prefix + item.key(), item.value());
    }
  }
  return named;
}

std::vector<std::string> JobModels::rewrite_greedy(const std::vector<std::string>& prompts) {
  if (lm_prompter) return lm_prompter->rewrite_greedy(prompts);
  const auto probabilities = pool->probabilities();
  const auto best = static_cast<int64_t>(
      std::max_element(probabilities.begin(), probabilities.end()) - probabilities.begin());
  std::vector<std::string> rewrites;
  for (const auto& prompt : prompts) rewrites.push_back(pool->rewrite(best, prompt));
  return rewrites;
}

}  // namespace alignpro
