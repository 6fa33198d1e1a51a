// Models the project makes itself: configs of tiny Llama-style models, seeded initial weights,
// and the conversion of a causal LM into a reward model (a sequence-classification head with one
// label on the same body).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "model/transformer.h"

namespace alignpro::demo {

struct TinyLlamaSpec {
  int64_t vocab_size = 0;
  int64_t hidden_size = 64;
  int64_t intermediate_size = 192;
  int64_t layers = 2;
  int64_t heads = 4;
  int64_t kv_heads = 4;
  int64_t max_positions = 128;
  int64_t pad_token_id = 0;
  int64_t eos_token_id = 1;
  bool tie_word_embeddings = true;
};

// A LlamaForCausalLM config.json with the keys transformers writes for one.
nlohmann::ordered_json tiny_llama_config(const TinyLlamaSpec& spec);

// The config.json text of a reward model on the body of `causal_json` (a causal LM's config):
// the architecture becomes <Family>ForSequenceClassification with one label, and pad_token_id
// is set (a batch of padded rows needs it to find each row's last token). `source` names the
// config in errors.
std::string reward_config_text(const std::string& causal_json, int64_t pad_token_id,
                               const std::string& source);

// Draws every weight from the seeded streams: matrices and embeddings from N(0, std^2), as the
// reference initialises them, norm weights 1 and biases 0. Parameter i draws from
// RngStream(seed, kInit, {i}), so the weights depend only on the seed and the architecture.
void init_weights(torch::nn::Module& model, uint64_t seed, double std = 0.02);

// Copies every tensor of the checkpoint in `folder` whose name and shape match a parameter of
// `model` and returns how many were copied; the others keep their values.
int64_t copy_matching_weights(Transformer& model, const std::string& folder);

}  // namespace alignpro::demo
