// The Llama family (Llama, Mistral, Qwen2): pre-norm decoder layers with RMSNorm, rotary
// embeddings, grouped-query attention and a SwiGLU MLP. Names follow LlamaForCausalLM and
// LlamaForSequenceClassification: model.embed_tokens, model.layers.N.*, model.norm, lm_head, score.
#include <cmath>

#include "model/layers.h"

namespace alignpro {

namespace {

using layers::Linear;
using layers::RmsNorm;

struct LlamaAttention : torch::nn::Module {
  LlamaAttention(const ModelConfig& c, const torch::TensorOptions& o)
      : heads(c.num_heads), kv_heads(c.num_kv_heads), head_dim(c.head_dim) {
    q_proj = register_module(
        "q_proj", std::make_shared<Linear>(c.hidden_size, heads * head_dim, c.qkv_bias, o));
    k_proj = register_module(
        "k_proj", std::make_shared<Linear>(c.hidden_size, kv_heads * head_dim, c.qkv_bias, o));
    v_proj = register_module(
        "v_proj", std::make_shared<Linear>(c.hidden_size, kv_heads * head_dim, c.qkv_bias, o));
    o_proj = register_module(
        "o_proj", std::make_shared<Linear>(heads * head_dim, c.hidden_size, c.o_bias, o));
  }

  // x [batch, seq, hidden] -> [batch, seq, hidden]
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin,
                        const torch::Tensor& mask, KvCache* cache, int64_t layer) const {
    const int64_t batch = x.size(0), seq = x.size(1);
    torch::Tensor q = q_proj->forward(x).view({batch, seq, heads, head_dim});
    torch::Tensor k = k_proj->forward(x).view({batch, seq, kv_heads, head_dim});
    torch::Tensor v = v_proj->forward(x).view({batch, seq, kv_heads, head_dim});
    q = layers::apply_rotary(q, cos, sin);
    // [batch, kv_heads, seq, head_dim]
    k = layers::apply_rotary(k, cos, sin).transpose(1, 2);
    v = v.transpose(1, 2);
    if (cache != nullptr) std::tie(k, v) = cache->append(layer, k, v);
    const torch::Tensor out = layers::attend(q, k, v, mask, 1.0 / std::sqrt(double(head_dim)));
    return o_proj->forward(out);
  }

  int64_t heads, kv_heads, head_dim;
  std::shared_ptr<Linear> q_proj, k_proj, v_proj, o_proj;
};

struct LlamaMlp : torch::nn::Module {
  LlamaMlp(const ModelConfig& c, const torch::TensorOptions& o) : activation(c.activation) {
    gate_proj = register_module(
        "gate_proj", std::make_shared<Linear>(c.hidden_size, c.intermediate_size, c.mlp_bias, o));
    up_proj = register_module(
        "up_proj", std::make_shared<Linear>(c.hidden_size, c.intermediate_size, c.mlp_bias, o));
    down_proj = register_module(
        "down_proj", std::make_shared<Linear>(c.intermediate_size, c.hidden_size, c.mlp_bias, o));
  }
  torch::Tensor forward(const torch::Tensor& x) const {
    return down_proj->forward(layers::activate(gate_proj->forward(x), activation) *
                              up_proj->forward(x));
  }
  Activation activation;
  std::shared_ptr<Linear> gate_proj, up_proj, down_proj;
};

struct LlamaLayer : torch::nn::Module {
  LlamaLayer(const ModelConfig& c, int64_t index, const torch::TensorOptions& o)
      : layer(index), window(c.layer_window[static_cast<size_t>(index)]) {
    self_attn = register_module("self_attn", std::make_shared<LlamaAttention>(c, o));
    mlp = register_module("mlp", std::make_shared<LlamaMlp>(c, o));
    input_layernorm =
        register_module("input_layernorm", std::make_shared<RmsNorm>(c.hidden_size, c.norm_eps, o));
    post_attention_layernorm = register_module(
        "post_attention_layernorm", std::make_shared<RmsNorm>(c.hidden_size, c.norm_eps, o));
  }
  int64_t layer;
  int64_t window;
  std::shared_ptr<LlamaAttention> self_attn;
  std::shared_ptr<LlamaMlp> mlp;
  std::shared_ptr<RmsNorm> input_layernorm, post_attention_layernorm;
};

// The base model, registered as "model".
struct LlamaModel : torch::nn::Module {
  LlamaModel(const ModelConfig& c, const torch::TensorOptions& o) {
    embed_tokens = register_module(
        "embed_tokens", std::make_shared<layers::Embedding>(c.vocab_size, c.hidden_size, o));
    auto list = register_module("layers", torch::nn::ModuleList());
    for (int64_t i = 0; i < c.num_layers; ++i) {
      blocks.push_back(std::make_shared<LlamaLayer>(c, i, o));
      list->push_back(blocks.back());
    }
    norm = register_module("norm", std::make_shared<RmsNorm>(c.hidden_size, c.norm_eps, o));
  }
  std::shared_ptr<layers::Embedding> embed_tokens;
  std::vector<std::shared_ptr<LlamaLayer>> blocks;  // registered as "layers"
  std::shared_ptr<RmsNorm> norm;
};

class Llama : public Transformer {
 public:
  Llama(const ModelConfig& c, const torch::TensorOptions& o)
      : Transformer(c), rotary_(c, o.device()) {
    model_ = register_module("model", std::make_shared<LlamaModel>(c, o));
    if (is_classifier()) {
      score_ =
          register_module("score", std::make_shared<Linear>(c.hidden_size, c.num_labels, false, o));
    } else if (!c.tie_word_embeddings) {
      lm_head_ = register_module("lm_head",
                                 std::make_shared<Linear>(c.hidden_size, c.vocab_size, false, o));
    }
  }

  torch::Tensor hidden_states(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                              const torch::Tensor& position_ids, KvCache* cache) override {
    const int64_t batch = input_ids.size(0), seq = input_ids.size(1);
    const int64_t past = cache != nullptr ? cache->length() : 0;
    const torch::Device device = input_ids.device();
    const torch::Tensor positions =
        position_ids.defined() ? position_ids : layers::default_positions(batch, past, seq, device);
    torch::Tensor h = model_->embed_tokens->forward(input_ids);  // [batch, seq, hidden]
    const auto [cos, sin] = rotary_.cos_sin(positions, h.scalar_type());
    layers::MaskCache masks(
        attention_mask.defined() ? attention_mask.to(torch::kBool) : torch::Tensor(), past, seq,
        batch, device);
    for (const auto& layer : model_->blocks) {
      const torch::Tensor attn =
          layer->self_attn->forward(layer->input_layernorm->forward(h), cos, sin,
                                    masks.get(layer->window), cache, layer->layer);
      h = h + attn;
      h = h + layer->mlp->forward(layer->post_attention_layernorm->forward(h));
    }
    if (cache != nullptr) cache->advance(seq);
    return model_->norm->forward(h);
  }

  torch::Tensor head(const torch::Tensor& hidden) override {
    if (score_) return score_->forward(hidden).to(torch::kFloat32);
    const torch::Tensor& weight = lm_head_ ? lm_head_->weight : model_->embed_tokens->weight;
    return torch::linear(hidden, weight).to(torch::kFloat32);
  }

  bool ignorable_checkpoint_tensor(const std::string& name) const override {
    // Older checkpoints store the rotary inverse frequencies; tied ones may store lm_head too.
    return name.find("rotary_emb.inv_freq") != std::string::npos ||
           (name == "lm_head.weight" && !lm_head_);
  }

 private:
  layers::Rotary rotary_;
  std::shared_ptr<LlamaModel> model_;
  std::shared_ptr<Linear> lm_head_;
  std::shared_ptr<Linear> score_;
};

}  // namespace

std::shared_ptr<Transformer> make_llama(const ModelConfig& config,
                                        const torch::TensorOptions& options) {
  return std::make_shared<Llama>(config, options);
}

}  // namespace alignpro
