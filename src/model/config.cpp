#include "model/config.h"

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "common/error.h"

namespace alignpro {

namespace {

using nlohmann::json;

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& item : items) out += (out.empty() ? "" : ", ") + item;
  return out;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(path + ": cannot open file");
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

json parse_json_object(const std::string& text, const std::string& source) {
  json root;
  try {
    root = json::parse(text);
  } catch (const json::parse_error& e) {
    throw InputError(source + ": not valid JSON (at byte " +
                     std::to_string(e.byte > 0 ? e.byte - 1 : 0) + "): " + e.what());
  }
  if (!root.is_object()) throw InputError(source + ": expected a JSON object at the top level");
  return root;
}

// Typed access to optional keys, with messages that name the file, the key and the value.
class Reader {
 public:
  Reader(const json& object, std::string source) : object_(object), source_(std::move(source)) {}

  bool has(const std::string& key) const {
    return object_.contains(key) && !object_.at(key).is_null();
  }
  bool present(const std::string& key) const { return object_.contains(key); }

  int64_t integer(const std::string& key, int64_t fallback, int64_t minimum = 1) const {
    if (!has(key)) return fallback;
    const json& v = object_.at(key);
    if (!v.is_number_integer() || v.get<int64_t>() < minimum) {
      fail(key, v, "an integer >= " + std::to_string(minimum));
    }
    return v.get<int64_t>();
  }
  double number(const std::string& key, double fallback) const {
    if (!has(key)) return fallback;
    const json& v = object_.at(key);
    if (!v.is_number()) fail(key, v, "a number");
    return v.get<double>();
  }
  double positive_number(const std::string& key, double fallback) const {
    const double value = number(key, fallback);
    if (!(value > 0)) fail(key, object_.at(key), "a positive number");
    return value;
  }
  bool boolean(const std::string& key, bool fallback) const {
    if (!has(key)) return fallback;
    const json& v = object_.at(key);
    if (!v.is_boolean()) fail(key, v, "true or false");
    return v.get<bool>();
  }
  std::string string(const std::string& key, const std::string& fallback) const {
    if (!has(key)) return fallback;
    const json& v = object_.at(key);
    if (!v.is_string()) fail(key, v, "a string");
    return v.get<std::string>();
  }
  std::optional<int64_t> token_id(const std::string& key) const {
    if (!has(key)) return std::nullopt;
    return integer(key, 0, 0);
  }
  // An id or a list of ids (eos_token_id may be either).
  std::vector<int64_t> token_ids(const std::string& key) const {
    if (!has(key)) return {};
    const json& v = object_.at(key);
    std::vector<int64_t> out;
    if (v.is_number_integer() && v.get<int64_t>() >= 0) return {v.get<int64_t>()};
    if (!v.is_array()) fail(key, v, "a token id or a list of token ids");
    for (const auto& item : v) {
      if (!item.is_number_integer() || item.get<int64_t>() < 0) {
        fail(key, v, "a token id or a list of token ids");
      }
      out.push_back(item.get<int64_t>());
    }
    return out;
  }
  const json& at(const std::string& key) const { return object_.at(key); }

  [[noreturn]] void fail(const std::string& key, const json& value,
                         const std::string& expected) const {
    throw InputError(source_ + ": key \"" + key + "\" has value " + value.dump() + "; expected " +
                     expected);
  }
  [[noreturn]] void unsupported(const std::string& key, const json& value,
                                const std::string& supported) const {
    throw InputError(source_ + ": key \"" + key + "\" has value " + value.dump() +
                     ", which is not supported; supported: " + supported);
  }
  const std::string& source() const { return source_; }

 private:
  const json& object_;
  std::string source_;
};

struct ArchitectureInfo {
  std::string model_type;
  ModelFamily family;
  ModelHead head;
};

const std::map<std::string, ArchitectureInfo>& architecture_table() {
  static const std::map<std::string, ArchitectureInfo> table = {
      {"LlamaForCausalLM", {"llama", ModelFamily::kLlama, ModelHead::kCausalLm}},
      {"MistralForCausalLM", {"mistral", ModelFamily::kLlama, ModelHead::kCausalLm}},
      {"Qwen2ForCausalLM", {"qwen2", ModelFamily::kLlama, ModelHead::kCausalLm}},
      {"GPT2LMHeadModel", {"gpt2", ModelFamily::kGpt2, ModelHead::kCausalLm}},
      {"LlamaForSequenceClassification",
       {"llama", ModelFamily::kLlama, ModelHead::kSequenceClassification}},
      {"Qwen2ForSequenceClassification",
       {"qwen2", ModelFamily::kLlama, ModelHead::kSequenceClassification}},
      {"GPT2ForSequenceClassification",
       {"gpt2", ModelFamily::kGpt2, ModelHead::kSequenceClassification}},
  };
  return table;
}

Activation parse_activation(const Reader& r, const std::string& key, const std::string& name) {
  static const std::map<std::string, Activation> names = {
      {"silu", Activation::kSilu},
      {"swish", Activation::kSilu},
      {"gelu", Activation::kGeluExact},
      {"gelu_new", Activation::kGeluTanh},
      {"gelu_pytorch_tanh", Activation::kGeluTanh},
      {"gelu_fast", Activation::kGeluTanh},
      {"relu", Activation::kRelu},
  };
  auto it = names.find(name);
  if (it == names.end()) {
    std::vector<std::string> allowed;
    for (const auto& [n, a] : names) allowed.push_back(n);
    r.unsupported(key, name, join(allowed));
  }
  return it->second;
}

// Rotary settings, in either of the reference's spellings: the newer "rope_parameters" object
// (which carries rope_theta) or the older top-level "rope_theta" with a "rope_scaling" object.
RopeConfig parse_rope(const Reader& top) {
  RopeConfig rope;
  rope.theta = top.positive_number("rope_theta", 10000.0);
  const char* key = top.has("rope_parameters") ? "rope_parameters" : "rope_scaling";
  if (!top.has(key)) {
    if (top.number("partial_rotary_factor", 1.0) != 1.0) {
      top.unsupported("partial_rotary_factor", top.at("partial_rotary_factor"), "1.0");
    }
    return rope;
  }
  const json& params = top.at(key);
  if (!params.is_object()) top.fail(key, params, "an object");
  for (const auto& [name, value] : params.items()) {
    if (value.is_object()) {
      throw InputError(top.source() + ": key \"" + key + "\" holds per-layer rotary settings (\"" +
                       name + "\"), which are not supported; supported: one set for all layers");
    }
  }
  const Reader r(params, top.source() + " (" + key + ")");
  rope.theta = r.positive_number("rope_theta", rope.theta);
  if (r.number("partial_rotary_factor", top.number("partial_rotary_factor", 1.0)) != 1.0) {
    r.unsupported("partial_rotary_factor", params.at("partial_rotary_factor"), "1.0");
  }
  const std::string type = r.string("rope_type", r.string("type", "default"));
  if (type == "default") return rope;
  if (type == "linear") {
    rope.type = RopeType::kLinear;
    if (!r.has("factor")) r.fail("factor", nullptr, "a positive number for rope_type linear");
    rope.factor = r.positive_number("factor", 1.0);
    return rope;
  }
  if (type == "llama3") {
    rope.type = RopeType::kLlama3;
    for (const char* needed :
         {"factor", "low_freq_factor", "high_freq_factor", "original_max_position_embeddings"}) {
      if (!r.has(needed)) r.fail(needed, nullptr, "a positive number for rope_type llama3");
    }
    rope.factor = r.positive_number("factor", 1.0);
    rope.low_freq_factor = r.positive_number("low_freq_factor", 1.0);
    rope.high_freq_factor = r.positive_number("high_freq_factor", 4.0);
    rope.original_max_position_embeddings = r.integer("original_max_position_embeddings", 8192);
    if (rope.high_freq_factor <= rope.low_freq_factor) {
      r.fail("high_freq_factor", params.at("high_freq_factor"),
             "a number above low_freq_factor (" + std::to_string(rope.low_freq_factor) + ")");
    }
    return rope;
  }
  r.unsupported("rope_type", type, "default, linear, llama3");
}

void parse_llama_family(const Reader& r, const std::string& model_type, ModelConfig& c) {
  // The reference's class defaults, which config.json omits when a value equals them.
  struct Defaults {
    int64_t vocab, hidden, intermediate, layers, heads, max_positions;
    std::optional<int64_t> kv_heads, bos, eos;
  };
  Defaults d;
  if (model_type == "llama") {
    d = {32000, 4096, 11008, 32, 32, 2048, std::nullopt, 1, 2};
  } else if (model_type == "mistral") {
    d = {32000, 4096, 14336, 32, 32, 4096 * 32, 8, 1, 2};
  } else {
    d = {151936, 4096, 22016, 32, 32, 32768, 32, std::nullopt, std::nullopt};
  }
  c.vocab_size = r.integer("vocab_size", d.vocab);
  c.hidden_size = r.integer("hidden_size", d.hidden);
  c.intermediate_size = r.integer("intermediate_size", d.intermediate);
  c.num_layers = r.integer("num_hidden_layers", d.layers);
  c.num_heads = r.integer("num_attention_heads", d.heads);
  c.num_kv_heads = r.integer("num_key_value_heads", d.kv_heads.value_or(c.num_heads));
  c.max_position_embeddings = r.integer("max_position_embeddings", d.max_positions);
  c.norm_eps = r.positive_number("rms_norm_eps", 1e-6);
  c.activation_name = r.string("hidden_act", "silu");
  c.activation = parse_activation(r, "hidden_act", c.activation_name);
  c.tie_word_embeddings = r.boolean("tie_word_embeddings", false);
  if (r.has("head_dim")) {
    c.head_dim = r.integer("head_dim", 0);
  } else {
    if (c.hidden_size % c.num_heads != 0) {
      r.fail("num_attention_heads", r.at("num_attention_heads"),
             "a divisor of hidden_size (" + std::to_string(c.hidden_size) +
                 ") when head_dim is not given");
    }
    c.head_dim = c.hidden_size / c.num_heads;
  }
  if (c.head_dim % 2 != 0) {
    r.fail("head_dim", c.head_dim, "an even number (rotary embeddings rotate pairs)");
  }
  if (c.num_heads % c.num_kv_heads != 0) {
    r.fail("num_key_value_heads", c.num_kv_heads,
           "a divisor of num_attention_heads (" + std::to_string(c.num_heads) + ")");
  }
  c.rope = parse_rope(r);
  c.bos_token_id = r.present("bos_token_id") ? r.token_id("bos_token_id") : d.bos;
  if (r.present("eos_token_id")) {
    c.eos_token_ids = r.token_ids("eos_token_id");
  } else if (d.eos) {
    c.eos_token_ids = {*d.eos};
  }

  c.layer_window.assign(static_cast<size_t>(c.num_layers), 0);
  if (model_type == "llama") {
    c.qkv_bias = c.o_bias = r.boolean("attention_bias", false);
    c.mlp_bias = r.boolean("mlp_bias", false);
  } else if (model_type == "mistral") {
    const int64_t window = r.present("sliding_window") ? r.integer("sliding_window", 0) : 4096;
    c.layer_window.assign(static_cast<size_t>(c.num_layers), window);
  } else {  // qwen2
    c.qkv_bias = true;
    const bool use_window = r.boolean("use_sliding_window", false);
    const int64_t window =
        use_window ? (r.present("sliding_window") ? r.integer("sliding_window", 0) : 4096) : 0;
    const int64_t first_window_layer = r.integer("max_window_layers", 28, 0);
    std::vector<std::string> types;
    if (r.has("layer_types")) {
      const json& v = r.at("layer_types");
      if (!v.is_array() || v.size() != static_cast<size_t>(c.num_layers)) {
        r.fail("layer_types", v, "a list of " + std::to_string(c.num_layers) + " layer types");
      }
      for (const auto& t : v) {
        if (!t.is_string() || (t.get<std::string>() != "full_attention" &&
                               t.get<std::string>() != "sliding_attention")) {
          r.unsupported("layer_types", v, "full_attention, sliding_attention");
        }
        types.push_back(t.get<std::string>());
      }
    }
    for (int64_t i = 0; i < c.num_layers; ++i) {
      const bool sliding = types.empty() ? (window > 0 && i >= first_window_layer)
                                         : types[static_cast<size_t>(i)] == "sliding_attention";
      c.layer_window[static_cast<size_t>(i)] = sliding ? window : 0;
    }
  }
}

void parse_gpt2(const Reader& r, ModelConfig& c) {
  // GPT-2's own key names, with the generic ones it also answers to.
  auto pick = [&](const char* own, const char* generic, int64_t fallback) {
    return r.has(own) ? r.integer(own, fallback) : r.integer(generic, fallback);
  };
  c.vocab_size = r.integer("vocab_size", 50257);
  c.hidden_size = pick("n_embd", "hidden_size", 768);
  c.num_layers = pick("n_layer", "num_hidden_layers", 12);
  c.num_heads = pick("n_head", "num_attention_heads", 12);
  c.num_kv_heads = c.num_heads;
  c.max_position_embeddings = pick("n_positions", "max_position_embeddings", 1024);
  c.intermediate_size = r.integer("n_inner", 4 * c.hidden_size);
  c.norm_eps = r.positive_number("layer_norm_epsilon", 1e-5);
  c.activation_name = r.string("activation_function", "gelu_new");
  c.activation = parse_activation(r, "activation_function", c.activation_name);
  c.tie_word_embeddings = r.boolean("tie_word_embeddings", true);
  c.scale_attn_weights = r.boolean("scale_attn_weights", true);
  c.scale_attn_by_inverse_layer_idx = r.boolean("scale_attn_by_inverse_layer_idx", false);
  if (r.boolean("add_cross_attention", false)) {
    r.unsupported("add_cross_attention", true, "false (decoder-only GPT-2)");
  }
  if (c.hidden_size % c.num_heads != 0) {
    r.fail("n_head", c.num_heads, "a divisor of n_embd (" + std::to_string(c.hidden_size) + ")");
  }
  c.head_dim = c.hidden_size / c.num_heads;
  c.qkv_bias = c.o_bias = c.mlp_bias = true;
  c.layer_window.assign(static_cast<size_t>(c.num_layers), 0);
  c.bos_token_id = r.present("bos_token_id") ? r.token_id("bos_token_id") : 50256;
  c.eos_token_ids =
      r.present("eos_token_id") ? r.token_ids("eos_token_id") : std::vector<int64_t>{50256};
}

}  // namespace

const std::vector<std::string>& supported_architectures() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> out;
    for (const auto& [name, info] : architecture_table()) out.push_back(name);
    return out;
  }();
  return names;
}

ModelConfig parse_model_config(const std::string& json_text, const std::string& source) {
  const json root = parse_json_object(json_text, source);
  const Reader r(root, source);
  ModelConfig c;
  c.path = source;
  c.json = json_text;

  if (r.has("architectures")) {
    const json& list = root.at("architectures");
    if (!list.is_array() || list.size() != 1 || !list[0].is_string()) {
      r.fail("architectures", list, "a list with one architecture name");
    }
    c.architecture = list[0].get<std::string>();
  } else {
    // Without "architectures", the model type names the causal LM of that family.
    static const std::map<std::string, std::string> by_type = {{"llama", "LlamaForCausalLM"},
                                                               {"mistral", "MistralForCausalLM"},
                                                               {"qwen2", "Qwen2ForCausalLM"},
                                                               {"gpt2", "GPT2LMHeadModel"}};
    const std::string type = r.string("model_type", "");
    auto it = by_type.find(type);
    if (it == by_type.end()) {
      throw InputError(
          source + ": has no \"architectures\" and model_type \"" + type +
          "\" is not supported; supported architectures: " + join(supported_architectures()));
    }
    c.architecture = it->second;
  }
  auto it = architecture_table().find(c.architecture);
  if (it == architecture_table().end()) {
    throw InputError(source + ": architecture \"" + c.architecture +
                     "\" is not supported; supported: " + join(supported_architectures()));
  }
  const ArchitectureInfo& info = it->second;
  c.family = info.family;
  c.head = info.head;
  const std::string model_type = r.string("model_type", info.model_type);
  if (model_type != info.model_type) {
    r.fail("model_type", model_type,
           "\"" + info.model_type + "\" for architecture " + c.architecture);
  }

  if (c.family == ModelFamily::kGpt2) {
    parse_gpt2(r, c);
  } else {
    parse_llama_family(r, model_type, c);
  }
  c.pad_token_id = r.token_id("pad_token_id");

  if (c.head == ModelHead::kSequenceClassification) {
    if (r.has("id2label")) {
      const json& labels = root.at("id2label");
      if (!labels.is_object() || labels.empty()) r.fail("id2label", labels, "a non-empty object");
      c.num_labels = static_cast<int64_t>(labels.size());
    } else {
      c.num_labels = r.integer("num_labels", 2);
    }
  }
  return c;
}

ModelConfig read_model_config(const std::string& folder) {
  const std::string path = (std::filesystem::path(folder) / "config.json").string();
  if (!std::filesystem::exists(path)) {
    throw InputError(folder + ": not a Hugging Face model folder (no config.json)");
  }
  return parse_model_config(read_text(path), path);
}

GenerationConfig read_generation_config(const std::string& folder) {
  GenerationConfig g;
  const std::string path = (std::filesystem::path(folder) / "generation_config.json").string();
  if (!std::filesystem::exists(path)) return g;
  g.json = read_text(path);
  const json root = parse_json_object(g.json, path);
  const Reader r(root, path);
  g.present = true;
  g.eos_token_ids = r.token_ids("eos_token_id");
  g.pad_token_id = r.token_id("pad_token_id");
  g.bos_token_id = r.token_id("bos_token_id");
  if (r.has("do_sample")) g.do_sample = r.boolean("do_sample", false);
  if (r.has("temperature")) g.temperature = r.positive_number("temperature", 1.0);
  if (r.has("top_k")) g.top_k = r.integer("top_k", 0, 0);
  if (r.has("top_p")) {
    g.top_p = r.number("top_p", 1.0);
    if (!(*g.top_p > 0 && *g.top_p <= 1)) r.fail("top_p", root.at("top_p"), "a number in (0, 1]");
  }
  if (r.has("max_new_tokens")) g.max_new_tokens = r.integer("max_new_tokens", 1, 0);
  return g;
}

std::vector<int64_t> stop_token_ids(const ModelConfig& config, const GenerationConfig& generation) {
  return generation.eos_token_ids.empty() ? config.eos_token_ids : generation.eos_token_ids;
}

}  // namespace alignpro
