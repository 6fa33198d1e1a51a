// The models a job names, loaded once per rank on the rank's device: the prompter (an LM with
// its frozen reference, or a pool of templates), the frozen target, and the reward.
//
// With run.mode = "rlhf" the target itself is the policy: `lm_prompter` holds a trainable copy
// of the target (its reference is the frozen target), it writes the response directly, and the
// step's responder only passes that response on, so the same step trains it by the same
// objective.
#pragma once

#include <memory>

#include "align/lm_adapters.h"
#include "align/pool_policy.h"
#include "align/pool_prompter.h"
#include "common/job.h"
#include "io/checkpoint.h"

namespace alignpro {

struct JobModels {
  torch::Device device = torch::kCPU;
  std::unique_ptr<LmPrompter> lm_prompter;  // prompter.kind = "lm"
  std::unique_ptr<PoolPrompter> pool;       // prompter.kind = "pool"
  std::unique_ptr<PoolPolicy> pool_policy;
  std::unique_ptr<LmResponder> target;  // the frozen target, as loaded
  std::unique_ptr<Responder> echo;      // run.mode = "rlhf": the policy's text is the response
  std::unique_ptr<LmResponder> tuned;   // run.mode = "rlhf": the trained copy, answering prompts
  std::unique_ptr<RewardFunction> reward;
  ModelIdentities identities;

  PrompterPolicy& prompter();
  // What answers the step's rewrites: the frozen target, or the echo in run.mode = "rlhf".
  Responder& responder();
  // The prompter's trainable tensors by name, for checkpoints.
  std::vector<std::pair<std::string, torch::Tensor>> named_parameters();
  // Rewrites for evaluation with greedy decoding: the LM's greedy rewrite, or the pool's most
  // probable template.
  std::vector<std::string> rewrite_greedy(const std::vector<std::string>& prompts);
};

// Saves the trained target of a run.mode = "rlhf" job as a Hugging Face folder (weights,
// config, generation config and tokenizer files of the original target). Rank 0 writes.
void save_tuned_target(const Job& job, JobModels& models, const std::string& folder);

// Where an rlhf run saves its tuned target: the results file's path without ".h5", + "-target".
std::string tuned_target_folder(const Job& job);

// Loads every model of the job on the device chosen for this node-local rank.
JobModels load_job_models(const Job& job, int local_rank);

// Loads a target model and its prompt format as the job's [target] section describes them,
// from `folder` (the job's target, or a tuned one for the RLHF condition).
std::unique_ptr<LmResponder> load_target(const Job& job, const std::string& folder,
                                         torch::Device device, torch::ScalarType dtype);

}  // namespace alignpro
