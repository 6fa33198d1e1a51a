// Access to the reference fixtures under tests/fixtures/models/, made by
// tests/fixtures/make_model_fixtures.py with the reference implementation.
#pragma once

#include <torch/torch.h>

#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "model/safetensors.h"

namespace alignpro::testing {

inline std::string model_dir(const std::string& name) {
  return std::string(ALIGNPRO_TEST_DATA) + "/fixtures/models/" + name;
}

inline const std::vector<std::string>& causal_models() {
  static const std::vector<std::string> names = {
      "llama_gqa",  "llama3_tied", "llama_linear_headdim", "mistral_window",
      "qwen2_bias", "gpt2",        "gpt2_untied"};
  return names;
}

inline const std::vector<std::string>& reward_models() {
  static const std::vector<std::string> names = {"llama_reward", "qwen2_reward", "gpt2_reward"};
  return names;
}

// The reference outputs stored beside a fixture model.
struct Reference {
  explicit Reference(const std::string& name)
      : tensors(std::make_unique<SafetensorsFile>(model_dir(name) + "/reference.safetensors")) {
    std::ifstream in(model_dir(name) + "/reference.json");
    info = nlohmann::json::parse(in);
  }
  torch::Tensor tensor(const std::string& key) const { return tensors->load(key, torch::kFloat32); }
  torch::Tensor ids(const std::string& key) const { return tensors->load(key, torch::kInt64); }

  std::unique_ptr<SafetensorsFile> tensors;
  nlohmann::json info;
};

inline std::vector<std::vector<int64_t>> rows_of(const nlohmann::json& value) {
  return value.get<std::vector<std::vector<int64_t>>>();
}

// Largest absolute difference of a and b over the positions where mask [batch, seq] is nonzero;
// a and b are [batch, seq, n].
inline double masked_max_diff(const torch::Tensor& a, const torch::Tensor& b,
                              const torch::Tensor& mask) {
  const torch::Tensor keep = mask.to(torch::kBool).unsqueeze(-1).expand_as(a);
  return (a - b).abs().masked_select(keep).max().item<double>();
}

}  // namespace alignpro::testing
