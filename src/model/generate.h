// Batched text generation with a KV cache: prompts are left-padded into one batch, prefilled in
// one pass, then extended one token per step for the whole batch. Rows that finish leave the
// batch. Each row samples from its own RngStream on the CPU, so a sample depends only on that
// row's probabilities and stream, never on the other rows or on the device.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "common/rng.h"
#include "model/transformer.h"

namespace alignpro {

// Token ids -> text, e.g. a tokenizer's decode; used for stop strings and for the texts returned.
using DecodeFn = std::function<std::string(const std::vector<int64_t>&)>;

struct GenerateOptions {
  int64_t max_new_tokens = 64;
  // Greedy takes the most probable token and draws nothing from the streams.
  bool greedy = false;
  // Sampling, applied in the reference's order: temperature, then top-k, then top-p.
  double temperature = 1.0;  // > 0
  int64_t top_k = 0;         // keep the k most probable tokens; 0 keeps all
  double top_p = 1.0;        // keep the smallest set of most probable tokens with this much mass
  // A row ends after it emits one of these ids; the id is kept in its tokens.
  std::vector<int64_t> stop_token_ids;
  // A row ends once its decoded text contains one of these; needs `decode`. The returned text is
  // cut before the stop string; the tokens keep the one that completed it.
  std::vector<std::string> stop_strings;
  DecodeFn decode;
  // Fills the left padding; any id in the vocabulary works, padded positions are masked out.
  int64_t pad_token_id = 0;
};

enum class FinishReason { kLength, kStopToken, kStopString };
const char* finish_reason_name(FinishReason reason);

struct Generation {
  std::vector<int64_t> tokens;  // the new tokens, without the prompt
  // log p(token | prompt, earlier tokens) under the model itself (temperature 1, no top-k/top-p),
  // the quantity score_continuations computes.
  std::vector<float> logprobs;
  std::string text;  // decode(tokens) without a final stop token; empty without `decode`
  FinishReason finish = FinishReason::kLength;
};

// Generates a continuation of every prompt. `streams` has one stream per prompt (it may be empty
// when greedy); each sampled token draws one uniform number from its row's stream. Throws
// InputError for empty prompts, ids outside the vocabulary, bad options, or (GPT-2) prompts that
// would run past the model's positions.
std::vector<Generation> generate(Transformer& model,
                                 const std::vector<std::vector<int64_t>>& prompts,
                                 const GenerateOptions& options, std::vector<RngStream>& streams);

// The token one row samples: probabilities `probs` [vocab] (softmax of logits / temperature) are
// filtered by top-k and top-p, renormalised, and inverted at one uniform draw from `stream`. Ties
// are broken by the lower id. Exposed for tests.
int64_t sample_from_probabilities(const float* probs, int64_t vocab, int64_t top_k, double top_p,
                                  RngStream& stream);

}  // namespace alignpro
