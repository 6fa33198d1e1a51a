#include "model/config.h"

#include <gtest/gtest.h>

#include <functional>

#include "common/error.h"
#include "fixtures.h"

namespace alignpro {
namespace {

void expect_input_error(const std::function<void()>& f, const std::vector<std::string>& parts) {
  try {
    f();
    ADD_FAILURE() << "no InputError thrown";
  } catch (const InputError& e) {
    const std::string message = e.what();
    for (const auto& part : parts) {
      EXPECT_NE(message.find(part), std::string::npos)
          << "message \"" << message << "\" lacks \"" << part << "\"";
    }
  }
}

ModelConfig parse(const std::string& text) {
  return parse_model_config(text, "test/config.json");
}

TEST(ModelConfig, ReadsGroupedQueryLlama) {
  const ModelConfig c = read_model_config(testing::model_dir("llama_gqa"));
  EXPECT_EQ(c.architecture, "LlamaForCausalLM");
  EXPECT_EQ(c.family, ModelFamily::kLlama);
  EXPECT_EQ(c.head, ModelHead::kCausalLm);
  EXPECT_EQ(c.num_heads, 4);
  EXPECT_EQ(c.num_kv_heads, 2);
  EXPECT_EQ(c.head_dim, 8);
  EXPECT_EQ(c.vocab_size, 300);
  EXPECT_FALSE(c.tie_word_embeddings);
  EXPECT_FALSE(c.qkv_bias);
  EXPECT_DOUBLE_EQ(c.norm_eps, 1e-5);
  EXPECT_EQ(c.rope.type, RopeType::kDefault);
  EXPECT_EQ(c.eos_token_ids, (std::vector<int64_t>{2}));
  EXPECT_EQ(c.pad_token_id, 0);
}

TEST(ModelConfig, ReadsLlama3RopeScalingAndTiedEmbeddings) {
  const ModelConfig c = read_model_config(testing::model_dir("llama3_tied"));
  EXPECT_TRUE(c.tie_word_embeddings);
  EXPECT_EQ(c.rope.type, RopeType::kLlama3);
  EXPECT_DOUBLE_EQ(c.rope.theta, 500000.0);
  EXPECT_DOUBLE_EQ(c.rope.factor, 8.0);
  EXPECT_EQ(c.rope.original_max_position_embeddings, 256);
}

TEST(ModelConfig, ReadsExplicitHeadDimBiasesAndLinearRope) {
  const ModelConfig c = read_model_config(testing::model_dir("llama_linear_headdim"));
  EXPECT_EQ(c.head_dim, 12);
  EXPECT_NE(c.head_dim * c.num_heads, c.hidden_size);
  EXPECT_TRUE(c.qkv_bias);
  EXPECT_TRUE(c.o_bias);
  EXPECT_TRUE(c.mlp_bias);
  EXPECT_EQ(c.rope.type, RopeType::kLinear);
  EXPECT_DOUBLE_EQ(c.rope.factor, 2.0);
  EXPECT_EQ(c.activation, Activation::kGeluTanh);
}

TEST(ModelConfig, ReadsSlidingWindows) {
  const ModelConfig mistral = read_model_config(testing::model_dir("mistral_window"));
  EXPECT_EQ(mistral.layer_window, (std::vector<int64_t>{5, 5}));
  const ModelConfig qwen = read_model_config(testing::model_dir("qwen2_bias"));
  EXPECT_EQ(qwen.layer_window, (std::vector<int64_t>{0, 6}));
  EXPECT_TRUE(qwen.qkv_bias);
  EXPECT_FALSE(qwen.o_bias);
  EXPECT_TRUE(qwen.tie_word_embeddings);
}

TEST(ModelConfig, MistralWithoutSlidingWindowKeyUsesTheReferenceDefault) {
  const ModelConfig c =
      parse(R"({"architectures": ["MistralForCausalLM"], "num_hidden_layers": 1})");
  EXPECT_EQ(c.layer_window, (std::vector<int64_t>{4096}));
  EXPECT_EQ(c.num_kv_heads, 8);
  const ModelConfig none = parse(
      R"({"architectures": ["MistralForCausalLM"], "num_hidden_layers": 1, "sliding_window": null})");
  EXPECT_EQ(none.layer_window, (std::vector<int64_t>{0}));
}

TEST(ModelConfig, ReadsGpt2Names) {
  const ModelConfig c = read_model_config(testing::model_dir("gpt2_untied"));
  EXPECT_EQ(c.family, ModelFamily::kGpt2);
  EXPECT_EQ(c.hidden_size, 32);
  EXPECT_EQ(c.intermediate_size, 128);  // n_inner null: 4 * n_embd
  EXPECT_EQ(c.max_position_embeddings, 64);
  EXPECT_FALSE(c.tie_word_embeddings);
  EXPECT_TRUE(c.scale_attn_by_inverse_layer_idx);
  EXPECT_EQ(c.activation, Activation::kGeluExact);
}

TEST(ModelConfig, ReadsClassifierLabels) {
  EXPECT_EQ(read_model_config(testing::model_dir("llama_reward")).num_labels, 1);
  // num_labels equal to the default (2) is left out of the file.
  const ModelConfig qwen = read_model_config(testing::model_dir("qwen2_reward"));
  EXPECT_EQ(qwen.head, ModelHead::kSequenceClassification);
  EXPECT_EQ(qwen.num_labels, 2);
}

TEST(ModelConfig, OlderRopeScalingSpellingIsRead) {
  const ModelConfig c = parse(R"({"architectures": ["LlamaForCausalLM"], "rope_theta": 1000.0,
      "rope_scaling": {"type": "linear", "factor": 4.0}})");
  EXPECT_EQ(c.rope.type, RopeType::kLinear);
  EXPECT_DOUBLE_EQ(c.rope.theta, 1000.0);
  EXPECT_DOUBLE_EQ(c.rope.factor, 4.0);
}

TEST(ModelConfig, EosMayBeAList) {
  const ModelConfig c = parse(R"({"architectures": ["LlamaForCausalLM"], "eos_token_id": [5, 9]})");
  EXPECT_EQ(c.eos_token_ids, (std::vector<int64_t>{5, 9}));
}

TEST(ModelConfig, UnsupportedArchitectureNamesItAndListsSupported) {
  expect_input_error([] { parse(R"({"architectures": ["FalconForCausalLM"]})"); },
                     {"test/config.json", "\"FalconForCausalLM\"", "LlamaForCausalLM",
                      "GPT2ForSequenceClassification"});
  expect_input_error([] { parse(R"({"model_type": "falcon"})"); }, {"\"falcon\"", "supported"});
}

TEST(ModelConfig, UnsupportedSettingsNameTheKey) {
  expect_input_error(
      [] {
        parse(R"({"architectures": ["LlamaForCausalLM"],
                  "rope_parameters": {"rope_type": "yarn", "factor": 2.0}})");
      },
      {"\"rope_type\"", "\"yarn\"", "default, linear, llama3"});
  expect_input_error(
      [] { parse(R"({"architectures": ["LlamaForCausalLM"], "hidden_act": "mish"})"); },
      {"\"hidden_act\"", "\"mish\"", "silu"});
  expect_input_error(
      [] { parse(R"({"architectures": ["GPT2LMHeadModel"], "add_cross_attention": true})"); },
      {"\"add_cross_attention\""});
  expect_input_error(
      [] { parse(R"({"architectures": ["LlamaForCausalLM"], "partial_rotary_factor": 0.5})"); },
      {"\"partial_rotary_factor\""});
}

TEST(ModelConfig, BadValuesNameKeyAndValue) {
  expect_input_error(
      [] { parse(R"({"architectures": ["LlamaForCausalLM"], "hidden_size": "big"})"); },
      {"test/config.json", "\"hidden_size\"", "\"big\"", "integer"});
  expect_input_error(
      [] {
        parse(R"({"architectures": ["LlamaForCausalLM"], "num_attention_heads": 4,
                  "num_key_value_heads": 3, "hidden_size": 32})");
      },
      {"\"num_key_value_heads\"", "divisor"});
  expect_input_error(
      [] {
        parse(R"({"architectures": ["LlamaForCausalLM"],
                  "rope_parameters": {"rope_type": "llama3", "factor": 8.0}})");
      },
      {"low_freq_factor"});
  expect_input_error([] { parse(R"({"architectures": ["LlamaForCausalLM", "X"]})"); },
                     {"\"architectures\""});
}

TEST(ModelConfig, BadJsonNamesTheFileAndByte) {
  expect_input_error([] { parse(R"({"architectures": )"); },
                     {"test/config.json", "not valid JSON", "at byte"});
  expect_input_error([] { parse("[1]"); }, {"JSON object"});
  expect_input_error([] { read_model_config("/nonexistent-model-folder"); }, {"no config.json"});
}

TEST(GenerationConfig, ReadsStopIdsAndSamplingDefaults) {
  const GenerationConfig g = read_generation_config(testing::model_dir("gpt2"));
  EXPECT_TRUE(g.present);
  EXPECT_EQ(g.eos_token_ids, (std::vector<int64_t>{2}));
  const ModelConfig c = read_model_config(testing::model_dir("gpt2"));
  EXPECT_EQ(stop_token_ids(c, g), (std::vector<int64_t>{2}));
  EXPECT_FALSE(read_generation_config("/nonexistent-model-folder").present);
}

}  // namespace
}  // namespace alignpro
