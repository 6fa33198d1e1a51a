// The models of a job behind the training step's interfaces: an LM prompter (with its frozen
// reference), an LM target that answers rewrites, and a reward model that scores responses
// against the ORIGINAL prompt. Each pairs a model with its tokenizer and its prompt format.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "align/rewards.h"
#include "align/rollout.h"
#include "model/generate.h"
#include "model/transformer.h"
#include "text/template.h"
#include "text/tokenizer.h"

namespace alignpro {

// A causal LM with the tokenizer and prompt format it is used with.
struct LanguageModel {
  std::shared_ptr<Transformer> model;
  std::shared_ptr<Tokenizer> tokenizer;
  std::string folder;

  // Loads folder's config, weights and tokenizer on device in dtype.
  static LanguageModel load(const std::string& folder, torch::Device device,
                            torch::ScalarType dtype);
  std::vector<int64_t> encode(const PromptFormat& format, const TemplateFields& fields) const;
  // Generation options with the model's stop tokens, pad id and decoder filled in.
  GenerateOptions generate_options(int64_t max_new_tokens, double temperature, int64_t top_k,
                                   double top_p, const std::vector<std::string>& stop) const;
};

// The LM prompter: samples a rewrite of each prompt and scores rewrites under itself (with
// gradients) and under the frozen reference (without).
class LmPrompter final : public PrompterPolicy {
 public:
  LmPrompter(LanguageModel policy, LanguageModel reference, PromptFormat format,
             GenerateOptions options);

  std::vector<Rewrite> sample(const std::vector<std::string>& prompts,
                              std::vector<RngStream>& streams) override;
  TokenLogProbs log_probs(const std::vector<std::string>& prompts,
                          const std::vector<Rewrite>& rewrites) override;
  std::vector<torch::Tensor> parameters() override;

  // Greedy rewrites, for evaluation.
  std::vector<std::string> rewrite_greedy(const std::vector<std::string>& prompts);
  LanguageModel& policy() { return policy_; }

 private:
  std::vector<std::vector<int64_t>> encode_prompts(const std::vector<std::string>& prompts) const;

  LanguageModel policy_;
  LanguageModel reference_;
  PromptFormat format_;
  GenerateOptions options_;
};

// The frozen target: answers each rewrite, batch_size sequences at a time.
class LmResponder final : public Responder {
 public:
  LmResponder(LanguageModel target, PromptFormat format, GenerateOptions options,
              int64_t batch_size);

  std::vector<std::string> respond(const std::vector<std::string>& rewrites,
                                   std::vector<RngStream>& streams) override;
  // The same with greedy decoding (no stream is drawn from).
  std::vector<std::string> respond_greedy(const std::vector<std::string>& rewrites);

 private:
  std::vector<std::string> run(const std::vector<std::string>& rewrites,
                               std::vector<RngStream>& streams, bool greedy);

  LanguageModel target_;
  PromptFormat format_;
  GenerateOptions options_;
  int64_t batch_size_;
};

// A sequence-classification reward model reading "{prompt}...{response}" through its template.
class ModelReward final : public RewardFunction {
 public:
  ModelReward(LanguageModel reward_model, PromptTemplate format, int64_t batch_size);
  std::vector<double> score(const std::vector<std::string>& prompts,
                            const std::vector<std::string>& responses) override;
  std::string describe() const override;

 private:
  LanguageModel reward_model_;
  PromptTemplate format_;
  int64_t batch_size_;
};

}  // namespace alignpro
