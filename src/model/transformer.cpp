#include "model/transformer.h"

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "common/error.h"
#include "common/log.h"
#include "model/device.h"
#include "model/layers.h"
#include "model/safetensors.h"

namespace alignpro {

namespace {

std::string shape_text(torch::IntArrayRef shape) {
  std::ostringstream out;
  out << "[";
  for (size_t i = 0; i < shape.size(); ++i) out << (i ? ", " : "") << shape[i];
  out << "]";
  return out.str();
}

// The base-model prefix of each family: some checkpoints (the original GPT-2 ones) store the
// base model's tensors without it.
std::string base_prefix(const ModelConfig& config) {
  return config.family == ModelFamily::kGpt2 ? "transformer." : "model.";
}

}  // namespace

torch::Device Transformer::device() const {
  const auto params = parameters();
  return params.empty() ? torch::Device(torch::kCPU) : params.front().device();
}

torch::ScalarType Transformer::dtype() const {
  const auto params = parameters();
  return params.empty() ? torch::kFloat32 : params.front().scalar_type();
}

torch::Tensor Transformer::forward(const torch::Tensor& input_ids,
                                   const torch::Tensor& attention_mask,
                                   const torch::Tensor& position_ids, KvCache* cache) {
  return head(hidden_states(input_ids, attention_mask, position_ids, cache));
}

KvCache Transformer::new_cache(int64_t batch, int64_t capacity) const {
  return KvCache(config_.num_layers, batch, config_.num_kv_heads, capacity, config_.head_dim,
                 torch::TensorOptions().dtype(dtype()).device(device()));
}

std::vector<std::pair<std::string, torch::Tensor>> Transformer::checkpoint_tensors() const {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& item : named_parameters(/*recurse=*/true)) {
    out.emplace_back(item.key(), item.value().detach());
  }
  return out;
}

std::shared_ptr<Transformer> make_model(const ModelConfig& config, torch::Device device,
                                        torch::ScalarType dtype) {
  const auto options = torch::TensorOptions().dtype(dtype).device(device);
  std::shared_ptr<Transformer> model = config.family == ModelFamily::kGpt2
                                           ? make_gpt2(config, options)
                                           : make_llama(config, options);
  model->eval();
  return model;
}

void load_weights(Transformer& model, const std::string& folder) {
  const WeightFiles checkpoint(folder);
  const std::string prefix = base_prefix(model.config());
  std::set<std::string> used;
  torch::NoGradGuard no_grad;
  for (auto& item : model.named_parameters(/*recurse=*/true)) {
    const std::string& name = item.key();
    torch::Tensor& param = item.value();
    std::string stored = name;
    if (!checkpoint.contains(stored) && name.rfind(prefix, 0) == 0) {
      stored = name.substr(prefix.size());
    }
    if (!checkpoint.contains(stored)) {
      throw InputError(folder + ": checkpoint has no tensor \"" + name + "\" (shape " +
                       shape_text(param.sizes()) + ") that " + model.config().architecture +
                       " needs");
    }
    const SafetensorsEntry& entry = checkpoint.entry(stored);
    if (!torch::IntArrayRef(entry.shape).equals(param.sizes())) {
      throw InputError(folder + ": tensor \"" + stored + "\" has shape " + shape_text(entry.shape) +
                       ", but config.json implies " + shape_text(param.sizes()));
    }
    if (entry.dtype != "F32" && entry.dtype != "F16" && entry.dtype != "BF16" &&
        entry.dtype != "F64") {
      throw InputError(folder + ": tensor \"" + stored + "\" has dtype " + entry.dtype +
                       "; weights must be F64, F32, F16 or BF16");
    }
    param.copy_(checkpoint.load(stored, param.scalar_type(), param.device()));
    used.insert(stored);
  }
  std::vector<std::string> unused;
  for (const auto& name : checkpoint.names()) {
    if (!used.count(name) && !model.ignorable_checkpoint_tensor(name)) unused.push_back(name);
  }
  if (!unused.empty()) {
    std::string list;
    for (size_t i = 0; i < unused.size() && i < 5; ++i) list += (i ? ", " : "") + unused[i];
    spdlog::warn("[model] {}: {} tensor(s) in the checkpoint are not used by {}: {}{}", folder,
                 unused.size(), model.config().architecture, list,
                 unused.size() > 5 ? ", ..." : "");
  }
}

std::shared_ptr<Transformer> load_model(const std::string& folder, const LoadOptions& options) {
  const ModelConfig config = read_model_config(folder);
  const torch::ScalarType dtype = options.dtype.value_or(default_dtype(options.device));
  auto model = make_model(config, options.device, dtype);
  load_weights(*model, folder);
  spdlog::info("[model] loaded {} from {}: {} layers, hidden {}, vocab {}, {} on {}",
               config.architecture, folder, config.num_layers, config.hidden_size,
               config.vocab_size, c10::toString(dtype), options.device.str());
  return model;
}

void save_model(const Transformer& model, const std::string& folder) {
  namespace fs = std::filesystem;
  std::error_code error;
  fs::create_directories(folder, error);
  if (error) throw RuntimeError(folder + ": cannot create folder: " + error.message());
  save_checkpoint(folder, model.checkpoint_tensors());
  const fs::path config_path = fs::path(folder) / "config.json";
  const std::string temporary = config_path.string() + ".tmp";
  {
    std::ofstream out(temporary, std::ios::trunc);
    out << model.config().json;
    if (!out) throw RuntimeError(temporary + ": write failed");
  }
  fs::rename(temporary, config_path, error);
  if (error)
    throw RuntimeError(config_path.string() + ": cannot move into place: " + error.message());
}

}  // namespace alignpro
