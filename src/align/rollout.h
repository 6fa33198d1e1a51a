// What a training step needs from the models, as two small interfaces: the prompter policy
// (samples rewrites, scores them with gradients) and the responder (the frozen target, which
// answers rewrites). The `pool` prompter and the LM prompter implement the first; an LM target
// implements the second. The step itself knows nothing of tokenizers or transformers.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "common/rng.h"

namespace alignpro {

// One sampled rewrite x' of a prompt x, with what the loss and the KL need later.
struct Rewrite {
  std::string text;                 // the rewrite the target will see
  std::vector<int64_t> tokens;      // the prompter's action: rewrite tokens (pool: one index)
  std::vector<float> old_logprobs;  // log rho(token) per token when it was sampled, nats
  std::vector<float> ref_logprobs;  // log rho_ref(token) per token, nats
  int64_t choice = -1;              // the template index for a pool prompter, else -1
};

// Per-token log-probs of a list of rewrites. [units, tokens] each, right-padded.
struct TokenLogProbs {
  torch::Tensor logprobs;  // float32, carries the graph to the prompter's parameters
  torch::Tensor mask;      // float32, 1 on real tokens, 0 on padding
};

class PrompterPolicy {
 public:
  virtual ~PrompterPolicy() = default;
  // One rewrite per prompt; prompts[i] draws only from streams[i]. Runs without gradients.
  virtual std::vector<Rewrite> sample(const std::vector<std::string>& prompts,
                                      std::vector<RngStream>& streams) = 0;
  // log rho of each rewrite's tokens under the prompter as it is now, with the graph.
  virtual TokenLogProbs log_probs(const std::vector<std::string>& prompts,
                                  const std::vector<Rewrite>& rewrites) = 0;
  // The trainable tensors, in the same order on every rank.
  virtual std::vector<torch::Tensor> parameters() = 0;
};

class Responder {
 public:
  virtual ~Responder() = default;
  // One response per rewrite; rewrites[i] draws only from streams[i].
  virtual std::vector<std::string> respond(const std::vector<std::string>& rewrites,
                                           std::vector<RngStream>& streams) = 0;
};

}  // namespace alignpro
