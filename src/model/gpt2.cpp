// GPT-2: pre-norm blocks with LayerNorm, learned position embeddings, fused q/k/v and Conv1D
// projections. Names follow GPT2LMHeadModel and GPT2ForSequenceClassification: transformer.wte,
// transformer.wpe, transformer.h.N.*, transformer.ln_f, lm_head, score.
#include <cmath>

#include "model/layers.h"

namespace alignpro {

namespace {

using layers::Conv1D;
using layers::LayerNorm;

struct Gpt2Attention : torch::nn::Module {
  Gpt2Attention(const ModelConfig& c, int64_t layer_index, const torch::TensorOptions& o)
      : heads(c.num_heads), head_dim(c.head_dim) {
    c_attn =
        register_module("c_attn", std::make_shared<Conv1D>(c.hidden_size, 3 * c.hidden_size, o));
    c_proj = register_module("c_proj", std::make_shared<Conv1D>(c.hidden_size, c.hidden_size, o));
    scale = c.scale_attn_weights ? 1.0 / std::sqrt(double(head_dim)) : 1.0;
    if (c.scale_attn_by_inverse_layer_idx) scale /= double(layer_index + 1);
  }

  // x [batch, seq, hidden] -> [batch, seq, hidden]
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& mask, KvCache* cache,
                        int64_t layer) const {
    const int64_t batch = x.size(0), seq = x.size(1), hidden = x.size(2);
    const torch::Tensor qkv = c_attn->forward(x);  // [batch, seq, 3 * hidden]
    const torch::Tensor q = qkv.narrow(2, 0, hidden).view({batch, seq, heads, head_dim});
    torch::Tensor k =
        qkv.narrow(2, hidden, hidden).view({batch, seq, heads, head_dim}).transpose(1, 2);
    torch::Tensor v =
        qkv.narrow(2, 2 * hidden, hidden).view({batch, seq, heads, head_dim}).transpose(1, 2);
    if (cache != nullptr) std::tie(k, v) = cache->append(layer, k, v);
    return c_proj->forward(layers::attend(q, k, v, mask, scale));
  }

  int64_t heads, head_dim;
  double scale;
  std::shared_ptr<Conv1D> c_attn, c_proj;
};

struct Gpt2Mlp : torch::nn::Module {
  Gpt2Mlp(const ModelConfig& c, const torch::TensorOptions& o) : activation(c.activation) {
    c_fc = register_module("c_fc", std::make_shared<Conv1D>(c.hidden_size, c.intermediate_size, o));
    c_proj =
        register_module("c_proj", std::make_shared<Conv1D>(c.intermediate_size, c.hidden_size, o));
  }
  torch::Tensor forward(const torch::Tensor& x) const {
    return c_proj->forward(layers::activate(c_fc->forward(x), activation));
  }
  Activation activation;
  std::shared_ptr<Conv1D> c_fc, c_proj;
};

struct Gpt2Block : torch::nn::Module {
  Gpt2Block(const ModelConfig& c, int64_t index, const torch::TensorOptions& o) : layer(index) {
    ln_1 = register_module("ln_1", std::make_shared<LayerNorm>(c.hidden_size, c.norm_eps, o));
    attn = register_module("attn", std::make_shared<Gpt2Attention>(c, index, o));
    ln_2 = register_module("ln_2", std::make_shared<LayerNorm>(c.hidden_size, c.norm_eps, o));
    mlp = register_module("mlp", std::make_shared<Gpt2Mlp>(c, o));
  }
  int64_t layer;
  std::shared_ptr<LayerNorm> ln_1, ln_2;
  std::shared_ptr<Gpt2Attention> attn;
  std::shared_ptr<Gpt2Mlp> mlp;
};

// The base model, registered as "transformer".
struct Gpt2Model : torch::nn::Module {
  Gpt2Model(const ModelConfig& c, const torch::TensorOptions& o) {
    wte =
        register_module("wte", std::make_shared<layers::Embedding>(c.vocab_size, c.hidden_size, o));
    wpe = register_module(
        "wpe", std::make_shared<layers::Embedding>(c.max_position_embeddings, c.hidden_size, o));
    auto list = register_module("h", torch::nn::ModuleList());
    for (int64_t i = 0; i < c.num_layers; ++i) {
      blocks.push_back(std::make_shared<Gpt2Block>(c, i, o));
      list->push_back(blocks.back());
    }
    ln_f = register_module("ln_f", std::make_shared<LayerNorm>(c.hidden_size, c.norm_eps, o));
  }
  std::shared_ptr<layers::Embedding> wte, wpe;
  std::vector<std::shared_ptr<Gpt2Block>> blocks;  // registered as "h"
  std::shared_ptr<LayerNorm> ln_f;
};

class Gpt2 : public Transformer {
 public:
  Gpt2(const ModelConfig& c, const torch::TensorOptions& o) : Transformer(c) {
    transformer_ = register_module("transformer", std::make_shared<Gpt2Model>(c, o));
    if (is_classifier()) {
      score_ = register_module(
          "score", std::make_shared<layers::Linear>(c.hidden_size, c.num_labels, false, o));
    } else if (!c.tie_word_embeddings) {
      lm_head_ = register_module(
          "lm_head", std::make_shared<layers::Linear>(c.hidden_size, c.vocab_size, false, o));
    }
  }

  torch::Tensor hidden_states(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                              const torch::Tensor& position_ids, KvCache* cache) override {
    const int64_t batch = input_ids.size(0), seq = input_ids.size(1);
    const int64_t past = cache != nullptr ? cache->length() : 0;
    const torch::Device device = input_ids.device();
    const torch::Tensor positions =
        position_ids.defined() ? position_ids : layers::default_positions(batch, past, seq, device);
    // [batch, seq, hidden]
    torch::Tensor h = transformer_->wte->forward(input_ids) + transformer_->wpe->forward(positions);
    layers::MaskCache masks(
        attention_mask.defined() ? attention_mask.to(torch::kBool) : torch::Tensor(), past, seq,
        batch, device);
    const torch::Tensor& mask = masks.get(0);
    for (const auto& block : transformer_->blocks) {
      h = h + block->attn->forward(block->ln_1->forward(h), mask, cache, block->layer);
      h = h + block->mlp->forward(block->ln_2->forward(h));
    }
    if (cache != nullptr) cache->advance(seq);
    return transformer_->ln_f->forward(h);
  }

  torch::Tensor head(const torch::Tensor& hidden) override {
    if (score_) return score_->forward(hidden).to(torch::kFloat32);
    const torch::Tensor& weight = lm_head_ ? lm_head_->weight : transformer_->wte->weight;
    return torch::linear(hidden, weight).to(torch::kFloat32);
  }

  bool ignorable_checkpoint_tensor(const std::string& name) const override {
    // Older versions saved the causal-mask buffers of every attention layer.
    const auto ends_with = [&](const std::string& suffix) {
      return name.size() >= suffix.size() &&
             name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
    };
    return ends_with(".attn.bias") || ends_with(".attn.masked_bias") ||
           (name == "lm_head.weight" && !lm_head_);
  }

 private:
  std::shared_ptr<Gpt2Model> transformer_;
  std::shared_ptr<layers::Linear> lm_head_;
  std::shared_ptr<layers::Linear> score_;
};

}  // namespace

std::shared_ptr<Transformer> make_gpt2(const ModelConfig& config,
                                       const torch::TensorOptions& options) {
  return std::make_shared<Gpt2>(config, options);
}

}  // namespace alignpro
