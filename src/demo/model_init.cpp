#include "demo/model_init.h"

#include <vector>

#include "common/error.h"
#include "common/rng.h"
#include "model/safetensors.h"

namespace alignpro::demo {

namespace {

bool ends_with(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() &&
         text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

nlohmann::ordered_json tiny_llama_config(const TinyLlamaSpec& spec) {
  if (spec.vocab_size <= 0 || spec.hidden_size <= 0 || spec.heads <= 0 ||
      spec.hidden_size % spec.heads != 0 || spec.kv_heads <= 0 || spec.heads % spec.kv_heads != 0) {
    throw InputError("tiny Llama config: vocab_size " + std::to_string(spec.vocab_size) +
                     ", hidden_size " + std::to_string(spec.hidden_size) + ", heads " +
                     std::to_string(spec.heads) + ", kv_heads " + std::to_string(spec.kv_heads) +
                     ": sizes must be positive, heads must divide hidden_size and kv_heads heads");
  }
  return nlohmann::ordered_json{
      {"architectures", {"LlamaForCausalLM"}},
      {"attention_bias", false},
      {"attention_dropout", 0.0},
      {"bos_token_id", nullptr},
      {"eos_token_id", spec.eos_token_id},
      {"head_dim", spec.hidden_size / spec.heads},
      {"hidden_act", "silu"},
      {"hidden_size", spec.hidden_size},
      {"initializer_range", 0.02},
      {"intermediate_size", spec.intermediate_size},
      {"max_position_embeddings", spec.max_positions},
      {"mlp_bias", false},
      {"model_type", "llama"},
      {"num_attention_heads", spec.heads},
      {"num_hidden_layers", spec.layers},
      {"num_key_value_heads", spec.kv_heads},
      {"pad_token_id", spec.pad_token_id},
      {"pretraining_tp", 1},
      {"rms_norm_eps", 1e-5},
      {"rope_scaling", nullptr},
      {"rope_theta", 10000.0},
      {"tie_word_embeddings", spec.tie_word_embeddings},
      {"torch_dtype", "float32"},
      {"use_cache", true},
      {"vocab_size", spec.vocab_size},
  };
}

std::string reward_config_text(const std::string& causal_json, int64_t pad_token_id,
                               const std::string& source) {
  nlohmann::ordered_json config;
  try {
    config = nlohmann::ordered_json::parse(causal_json);
  } catch (const nlohmann::json::parse_error& e) {
    throw InputError(source + ": malformed JSON: " + e.what());
  }
  if (!config.is_object()) throw InputError(source + ": expected a JSON object");
  const auto architectures = config.find("architectures");
  std::string family;
  if (architectures != config.end() && architectures->is_array() && architectures->size() == 1 &&
      (*architectures)[0].is_string()) {
    const std::string name = (*architectures)[0].get<std::string>();
    for (const char* suffix : {"ForCausalLM", "LMHeadModel", "ForSequenceClassification"}) {
      if (ends_with(name, suffix))
        family = name.substr(0, name.size() - std::string(suffix).size());
    }
  }
  if (family.empty()) {
    throw InputError(
        source +
        ": key \"architectures\" must name one causal LM such as "
        "LlamaForCausalLM to build a reward model on, found " +
        (architectures == config.end() ? std::string("nothing") : architectures->dump()));
  }
  // GPT-2's causal class is GPT2LMHeadModel; its classifier is GPT2ForSequenceClassification.
  config["architectures"] = {family + "ForSequenceClassification"};
  config["id2label"] = {{"0", "LABEL_0"}};
  config["label2id"] = {{"LABEL_0", 0}};
  config["pad_token_id"] = pad_token_id;
  return config.dump(2) + "\n";
}

void init_weights(torch::nn::Module& model, uint64_t seed, double std) {
  torch::NoGradGuard no_grad;
  uint64_t index = 0;
  for (auto& item : model.named_parameters(/*recurse=*/true)) {
    torch::Tensor& param = item.value();
    const std::string& name = item.key();
    if (ends_with(name, "bias")) {
      param.zero_();
    } else if (param.dim() == 1) {
      param.fill_(1.0);  // the scale of a norm
    } else {
      RngStream rng(seed, RngPurpose::kInit, {index});
      std::vector<float> values(static_cast<size_t>(param.numel()));
      for (float& v : values) v = static_cast<float>(rng.normal() * std);
      param.copy_(
          torch::from_blob(values.data(), param.sizes(), torch::kFloat32).to(param.scalar_type()));
    }
    ++index;
  }
}

int64_t copy_matching_weights(Transformer& model, const std::string& folder) {
  const WeightFiles checkpoint(folder);
  torch::NoGradGuard no_grad;
  int64_t copied = 0;
  for (auto& item : model.named_parameters(/*recurse=*/true)) {
    torch::Tensor& param = item.value();
    if (!checkpoint.contains(item.key())) continue;
    const SafetensorsEntry& entry = checkpoint.entry(item.key());
    if (!torch::IntArrayRef(entry.shape).equals(param.sizes())) continue;
    param.copy_(checkpoint.load(item.key(), param.scalar_type(), param.device()));
    ++copied;
  }
  return copied;
}

}  // namespace alignpro::demo
