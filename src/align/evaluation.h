// Evaluation on held-out prompts: the frozen target answers each prompt x itself (no
// optimisation), the prompter's rewrite of x (Align-Pro), and optionally x under a tuned target
// (RLHF), under each decoding of eval.decoding, with the same streams for every condition. The
// prompts are split across ranks; the coordinator gathers the samples and computes the tables.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "align/dataset.h"
#include "align/job_models.h"
#include "common/job.h"
#include "dist/communicator.h"
#include "io/records.h"

namespace alignpro {

struct EvaluationResult {
  std::vector<EvalSample> samples;     // every evaluated response (coordinator only)
  std::vector<EvalSummary> summaries;  // per decoding and condition (coordinator only)
};

// Evaluates the job's conditions on the first eval.prompts held-out prompts (all when 0).
// rlhf_target, when given, adds the "rlhf" condition. eval_index names this evaluation in the
// streams; step is the number of training steps done.
EvaluationResult evaluate(const Job& job, Communicator& comm, JobModels& models,
                          LmResponder* rlhf_target, const PromptDataset& prompts,
                          int64_t eval_index, int64_t step);

// The summaries as a fixed-width table for the log.
std::string format_eval_table(const std::vector<EvalSummary>& summaries);

}  // namespace alignpro
