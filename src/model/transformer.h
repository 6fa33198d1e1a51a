// Decoder-only transformer language and reward models in libtorch. Parameter names equal the
// Hugging Face state-dict keys ("model.layers.0.self_attn.q_proj.weight", "transformer.h.0.attn.
// c_attn.weight", ...), so checkpoints load by name and save back in the same layout.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "model/config.h"
#include "model/kv_cache.h"

namespace alignpro {

class Transformer : public torch::nn::Module {
 public:
  explicit Transformer(ModelConfig config) : config_(std::move(config)) {}
  ~Transformer() override = default;

  const ModelConfig& config() const { return config_; }
  bool is_classifier() const { return config_.head == ModelHead::kSequenceClassification; }
  // Width of the head's output: the vocabulary, or the number of labels of a classifier.
  int64_t output_size() const { return is_classifier() ? config_.num_labels : config_.vocab_size; }
  torch::Device device() const;
  torch::ScalarType dtype() const;

  // Final hidden states after the last norm, [batch, seq, hidden].
  //   input_ids       [batch, seq] int64.
  //   attention_mask  [batch, past + seq], nonzero for tokens and 0 for padding (left padding in
  //                   generation); undefined means no padding.
  //   position_ids    [batch, seq] int64; undefined means past .. past + seq - 1.
  //   cache           when given, the keys and values of the `past` earlier positions; this
  //                   call appends its own and advances the cache.
  virtual torch::Tensor hidden_states(const torch::Tensor& input_ids,
                                      const torch::Tensor& attention_mask,
                                      const torch::Tensor& position_ids, KvCache* cache) = 0;

  // The head on hidden states [..., hidden]: logits over the vocabulary, or a classifier's
  // scores, [..., output_size], always float32.
  virtual torch::Tensor head(const torch::Tensor& hidden) = 0;

  // head(hidden_states(...)): logits [batch, seq, vocab] (or scores of every position).
  torch::Tensor forward(const torch::Tensor& input_ids, const torch::Tensor& attention_mask = {},
                        const torch::Tensor& position_ids = {}, KvCache* cache = nullptr);

  // An empty cache for `batch` rows of up to `capacity` positions, on the model's device.
  KvCache new_cache(int64_t batch, int64_t capacity) const;

  // Tensors to save, under their Hugging Face names; a tied output matrix is left out, as the
  // reference does.
  std::vector<std::pair<std::string, torch::Tensor>> checkpoint_tensors() const;

  // Names the reference may store that this model does not use (buffers of older versions).
  virtual bool ignorable_checkpoint_tensor(const std::string& name) const { return false; }

 private:
  ModelConfig config_;
};

// Builds a model with uninitialised weights of the given dtype on the given device.
std::shared_ptr<Transformer> make_model(const ModelConfig& config, torch::Device device,
                                        torch::ScalarType dtype);

struct LoadOptions {
  torch::Device device = torch::kCPU;
  // Unset: float32 on the CPU, bfloat16 on CUDA (see default_dtype in model/device.h).
  std::optional<torch::ScalarType> dtype;
};

// Loads FOLDER (config.json and safetensors weights). Every parameter must be present with the
// right shape; tensors the model does not use are reported in one warning. Throws InputError.
std::shared_ptr<Transformer> load_model(const std::string& folder, const LoadOptions& options = {});

// Copies the weights of a checkpoint into a model built from the same config.
void load_weights(Transformer& model, const std::string& folder);

// Writes config.json (as it was read) and the weights in safetensors to FOLDER, so that the
// reference implementation and load_model read it back.
void save_model(const Transformer& model, const std::string& folder);

}  // namespace alignpro
