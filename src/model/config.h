// The settings of a Hugging Face model folder: config.json (architecture, sizes, rotary and
// attention options) and generation_config.json (special tokens, sampling defaults). Keys a file
// leaves out take the reference implementation's defaults for that architecture, since
// save_pretrained writes only the keys that differ from them.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace alignpro {

enum class ModelFamily {
  kLlama,  // Llama, Mistral, Qwen2: RMSNorm, rotary embeddings, grouped-query attention, SwiGLU
  kGpt2,   // GPT-2: LayerNorm, learned positions, Conv1D projections
};

enum class ModelHead {
  kCausalLm,                // logits over the vocabulary
  kSequenceClassification,  // a score per label at the last non-padding token
};

enum class RopeType { kDefault, kLinear, kLlama3 };

enum class Activation { kSilu, kGeluExact, kGeluTanh, kRelu };

struct RopeConfig {
  RopeType type = RopeType::kDefault;
  double theta = 10000.0;
  double factor = 1.0;  // linear and llama3
  // llama3 only: the band between the two wavelength limits is interpolated smoothly.
  double low_freq_factor = 1.0;
  double high_freq_factor = 4.0;
  int64_t original_max_position_embeddings = 8192;
};

struct ModelConfig {
  std::string path;          // the config.json that was read
  std::string architecture;  // e.g. "LlamaForCausalLM"
  ModelFamily family = ModelFamily::kLlama;
  ModelHead head = ModelHead::kCausalLm;

  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_layers = 0;
  int64_t num_heads = 0;
  int64_t num_kv_heads = 0;  // fewer than num_heads: grouped-query attention
  int64_t head_dim = 0;
  int64_t max_position_embeddings = 0;
  double norm_eps = 1e-6;  // rms_norm_eps (Llama family) or layer_norm_epsilon (GPT-2)
  Activation activation = Activation::kSilu;
  std::string activation_name = "silu";
  RopeConfig rope;
  bool tie_word_embeddings = false;
  bool qkv_bias = false;  // q/k/v projections have biases (Qwen2; Llama's attention_bias)
  bool o_bias = false;    // the output projection has a bias (Llama's attention_bias)
  bool mlp_bias = false;
  // Per layer: 0 for full causal attention, else the sliding window in tokens (a query sees the
  // keys at most window - 1 positions behind it).
  std::vector<int64_t> layer_window;
  // GPT-2 attention scaling.
  bool scale_attn_weights = true;
  bool scale_attn_by_inverse_layer_idx = false;

  int64_t num_labels = 0;  // sequence classification only
  std::optional<int64_t> pad_token_id;
  std::optional<int64_t> bos_token_id;
  std::vector<int64_t> eos_token_ids;

  std::string json;  // the config.json text as read, written back when a model is saved
};

// generation_config.json; every field is optional in the file.
struct GenerationConfig {
  bool present = false;  // whether the folder had the file
  std::vector<int64_t> eos_token_ids;
  std::optional<int64_t> pad_token_id;
  std::optional<int64_t> bos_token_id;
  std::optional<bool> do_sample;
  std::optional<double> temperature;
  std::optional<int64_t> top_k;
  std::optional<double> top_p;
  std::optional<int64_t> max_new_tokens;
  std::string json;
};

// The architectures read_model_config accepts, for messages and documentation.
const std::vector<std::string>& supported_architectures();

// Reads FOLDER/config.json. Throws InputError naming the file, the key, the value and what is
// allowed for malformed JSON, an unsupported architecture or an unsupported setting.
ModelConfig read_model_config(const std::string& folder);
// The same from JSON text; `source` names it in messages.
ModelConfig parse_model_config(const std::string& json_text, const std::string& source);

// Reads FOLDER/generation_config.json if there is one (present = false otherwise).
GenerationConfig read_generation_config(const std::string& folder);

// The ids that end generation: generation_config.json's eos_token_id when it names any, else
// config.json's.
std::vector<int64_t> stop_token_ids(const ModelConfig& config, const GenerationConfig& generation);

}  // namespace alignpro
