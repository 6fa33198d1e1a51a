// Log-probabilities of given continuations (for the policy loss, with gradients, and for the
// reference model and the KL, under torch::NoGradGuard) and reward-model scores.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <optional>
#include <vector>

#include "model/transformer.h"

namespace alignpro {

struct ContinuationScores {
  torch::Tensor token_logprobs;  // [batch, longest continuation] float32, 0 past each one's end
  torch::Tensor mask;            // [batch, longest continuation] float32, 1 for real tokens
  torch::Tensor sums;            // [batch] float32, the summed log-probability of each continuation
};

// log p(continuation[i][j] | prompt[i], continuation[i][..j]) for every row, in one batched,
// left-padded forward. The tensors carry gradients when grad mode is on. Prompts need at least
// one token; continuations may be empty (their sum is 0).
ContinuationScores score_continuations(Transformer& model,
                                       const std::vector<std::vector<int64_t>>& prompts,
                                       const std::vector<std::vector<int64_t>>& continuations,
                                       int64_t pad_token_id = 0);

// Per-row values of a [batch, n] tensor up to each row's length in `mask`, as floats.
std::vector<std::vector<float>> unpad_rows(const torch::Tensor& values, const torch::Tensor& mask);

// The index of the token a sequence classifier reads in each row of input_ids [batch, seq]: the
// rightmost token that is not pad_token_id (index 0 for a row of padding only), exactly as the
// reference does; without a pad id, the last index. Returns [batch] int64.
torch::Tensor last_non_pad_index(const torch::Tensor& input_ids,
                                 std::optional<int64_t> pad_token_id);

// A classifier's scores for already padded input, as the reference's
// *ForSequenceClassification.forward computes them (positions 0..seq-1 whatever the padding).
// Without a pad id in the config only a batch of one is accepted, as in the reference.
// Returns [batch, num_labels] float32.
torch::Tensor classification_scores(Transformer& model, const torch::Tensor& input_ids,
                                    const torch::Tensor& attention_mask = {});

// Scores token sequences with a reward model, right-padding them with the config's pad id so that
// every row gets the score it would get alone, in batches of at most max_batch rows (0: one
// batch). Rows that end in the pad id are read at the last other token, as the reference reads
// them. Runs without gradients. Returns [count, num_labels] float32 on the CPU.
torch::Tensor score_sequences(Transformer& model,
                              const std::vector<std::vector<int64_t>>& sequences,
                              int64_t max_batch = 0);

}  // namespace alignpro
