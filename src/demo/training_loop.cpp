#include "demo/training_loop.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "align/dataset.h"
#include "align/gradient_sync.h"
#include "align/optimizer.h"
#include "common/error.h"
#include "common/log.h"
#include "demo/model_init.h"
#include "model/config.h"
#include "model/device.h"

namespace alignpro::demo {

namespace {

namespace fs = std::filesystem;

std::string read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(path + ": cannot open the file");
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string tokenizer_folder_of(const TrainingOptions& options) {
  if (!options.tokenizer.empty()) return options.tokenizer;
  if (!options.model.empty()) return options.model;
  const fs::path parent = fs::path(options.init_config).parent_path();
  return parent.empty() ? std::string(".") : parent.string();
}

// The pad id a reward model's rows are padded with: the tokenizer's, else the config's.
int64_t reward_pad_id(const Tokenizer& tokenizer, const ModelConfig& config,
                      const std::string& tokenizer_folder) {
  if (tokenizer.pad_id()) return *tokenizer.pad_id();
  if (config.pad_token_id) return *config.pad_token_id;
  throw InputError(tokenizer_folder + ": the tokenizer has no pad token and " + config.path +
                   " no pad_token_id; a reward model needs one to find the last token of each "
                   "padded row (set pad_token in tokenizer_config.json)");
}

// A reward model with the body of `causal` (its weights taken from `weights_folder` when given).
std::shared_ptr<Transformer> reward_model_on(const ModelConfig& causal, int64_t pad_id,
                                             const std::string& weights_folder, uint64_t seed,
                                             torch::Device device) {
  const std::string source = causal.path.empty() ? std::string("config.json") : causal.path;
  const ModelConfig config =
      parse_model_config(reward_config_text(causal.json, pad_id, source), source);
  auto model = make_model(config, device, torch::kFloat32);
  init_weights(*model, seed);
  if (!weights_folder.empty()) {
    const int64_t copied = copy_matching_weights(*model, weights_folder);
    spdlog::info("[fit-reward] reward model on the body of {}: {} tensors copied, a new {} head",
                 weights_folder, copied, config.architecture);
  }
  return model;
}

std::shared_ptr<Transformer> build_model(const TrainingOptions& options, bool reward_head,
                                         const Tokenizer& tokenizer,
                                         const std::string& tokenizer_folder,
                                         torch::Device device) {
  if (!options.model.empty()) {
    const ModelConfig config = read_model_config(options.model);
    const bool classifier = config.head == ModelHead::kSequenceClassification;
    if (!reward_head && classifier) {
      throw InputError(options.model + ": " + config.architecture +
                       " is a sequence classifier; sft trains causal language models");
    }
    if (reward_head && !classifier) {
      return reward_model_on(config, reward_pad_id(tokenizer, config, tokenizer_folder),
                             options.model, options.seed, device);
    }
    LoadOptions load;
    load.device = device;
    load.dtype = torch::kFloat32;
    return load_model(options.model, load);
  }
  const ModelConfig config =
      parse_model_config(read_text_file(options.init_config), options.init_config);
  if (reward_head && config.head != ModelHead::kSequenceClassification) {
    return reward_model_on(config, reward_pad_id(tokenizer, config, tokenizer_folder), "",
                           options.seed, device);
  }
  if (!reward_head && config.head == ModelHead::kSequenceClassification) {
    throw InputError(options.init_config + ": " + config.architecture +
                     " is a sequence classifier; sft trains causal language models");
  }
  auto model = make_model(config, device, torch::kFloat32);
  init_weights(*model, options.seed);
  return model;
}

std::string generation_config_text(const ModelConfig& config, const Tokenizer& tokenizer,
                                   int64_t pad_id) {
  nlohmann::ordered_json json = nlohmann::ordered_json::object();
  if (config.bos_token_id) json["bos_token_id"] = *config.bos_token_id;
  if (!config.eos_token_ids.empty()) {
    if (config.eos_token_ids.size() == 1) {
      json["eos_token_id"] = config.eos_token_ids[0];
    } else {
      json["eos_token_id"] = config.eos_token_ids;
    }
  } else if (tokenizer.eos_id()) {
    json["eos_token_id"] = *tokenizer.eos_id();
  }
  json["pad_token_id"] = config.pad_token_id.value_or(pad_id);
  return json.dump(2) + "\n";
}

void write_file(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc | std::ios::binary);
  out << text;
  if (!out) throw RuntimeError(path.string() + ": write failed");
}

}  // namespace

void check_training_options(const TrainingOptions& options) {
  if (options.model.empty() == options.init_config.empty()) {
    throw InputError(
        "give exactly one of --model (a model folder to start from) and "
        "--init-config (a config.json to start from random weights)");
  }
  if (options.data.empty()) throw InputError("--data: a data file is required");
  if (options.output.empty()) throw InputError("--output: an output folder is required");
  if (options.epochs < 1) {
    throw InputError("--epochs is " + std::to_string(options.epochs) + "; at least 1 is needed");
  }
  if (options.batch < 1) {
    throw InputError("--batch is " + std::to_string(options.batch) + "; at least 1 is needed");
  }
  if (!(options.lr > 0) || options.lr > 1) {
    throw InputError("--lr is " + std::to_string(options.lr) + "; allowed: (0, 1]");
  }
  if (options.schedule != "constant" && options.schedule != "cosine") {
    throw InputError("--schedule is \"" + options.schedule + "\"; allowed: constant, cosine");
  }
  if (options.max_length < 0 || options.warmup_steps < 0 || options.weight_decay < 0 ||
      options.max_grad_norm < 0) {
    throw InputError(
        "--max-length, --warmup, --weight-decay and --max-grad-norm must not be "
        "negative");
  }
}

TrainingSetup setup_training(Communicator& comm, const TrainingOptions& options, bool reward_head) {
  check_training_options(options);
  TrainingSetup setup;
  setup.tokenizer_folder = tokenizer_folder_of(options);
  setup.tokenizer = std::make_unique<Tokenizer>(Tokenizer::from_folder(setup.tokenizer_folder));
  setup.device = choose_device(comm.local_rank(), options.device);
  setup.model =
      build_model(options, reward_head, *setup.tokenizer, setup.tokenizer_folder, setup.device);
  const ModelConfig& config = setup.model->config();
  if (config.vocab_size < setup.tokenizer->vocab_size()) {
    throw InputError(setup.tokenizer_folder + ": the tokenizer has " +
                     std::to_string(setup.tokenizer->vocab_size()) + " tokens but " +
                     (config.path.empty() ? std::string("the model config") : config.path) +
                     " has vocab_size " + std::to_string(config.vocab_size));
  }
  setup.max_length = options.max_length > 0 ? options.max_length
                                            : std::max<int64_t>(config.max_position_embeddings, 16);
  setup.pad_id = reward_head ? config.pad_token_id.value_or(0)
                             : setup.tokenizer->pad_id().value_or(config.pad_token_id.value_or(0));
  setup.model->train();
  return setup;
}

torch::Tensor pad_rows(const std::vector<std::vector<int64_t>>& rows, int64_t pad_id,
                       torch::Device device) {
  size_t longest = 1;
  for (const auto& row : rows) longest = std::max(longest, row.size());
  torch::Tensor out = torch::full(
      {static_cast<int64_t>(rows.size()), static_cast<int64_t>(longest)}, pad_id, torch::kInt64);
  auto access = out.accessor<int64_t, 2>();
  for (size_t i = 0; i < rows.size(); ++i) {
    for (size_t j = 0; j < rows[i].size(); ++j) access[i][j] = rows[i][j];
  }
  return out.to(device);
}

void run_training_loop(Communicator& comm, TrainingSetup& setup, const TrainingOptions& options,
                       size_t examples, const LoopFunctions& functions, const char* tag,
                       TrainingReport& report) {
  std::vector<torch::Tensor> params;
  std::vector<std::string> names;
  for (auto& item : setup.model->named_parameters(/*recurse=*/true)) {
    names.push_back(item.key());
    params.push_back(item.value());
  }
  AdamWOptions adam;
  adam.weight_decay = options.weight_decay;
  AdamW optimizer(params, adam, names);
  GradientSync sync(comm, params, Aggregation::kAllreduce);
  sync.broadcast_parameters();

  const int64_t batch = options.batch;
  const int64_t per_epoch = (static_cast<int64_t>(examples) + batch - 1) / batch;
  const int64_t total = per_epoch * options.epochs;
  const LrSchedule schedule(options.lr, options.warmup_steps, options.schedule, total);
  const PromptSchedule order(options.seed, examples, batch, /*shuffle=*/true);
  const auto start = std::chrono::steady_clock::now();
  const int rank = comm.rank(), ranks = comm.size();

  int64_t step = 0;
  for (int64_t epoch = 0; epoch < options.epochs; ++epoch) {
    const std::vector<size_t> visit = order.epoch_order(epoch);
    double epoch_loss = 0, epoch_count = 0, epoch_correct = 0, epoch_items = 0;
    for (int64_t b = 0; b < per_epoch; ++b, ++step) {
      const size_t begin = static_cast<size_t>(b * batch);
      const size_t end = std::min(examples, begin + static_cast<size_t>(batch));
      const std::vector<size_t> global(visit.begin() + begin, visit.begin() + end);
      const size_t n = global.size();
      const std::vector<size_t> local(global.begin() + n * rank / ranks,
                                      global.begin() + n * (rank + 1) / ranks);
      optimizer.zero_grad();
      LocalLoss loss;
      if (!local.empty()) {
        loss = functions.local_loss(local);
        loss.loss_sum.backward();
      }
      const double count = std::max(1.0, functions.global_count(global));
      const double lr = schedule.at(step);
      const double norm = sync.update(&optimizer, lr, options.max_grad_norm, count);
      double stats[2] = {loss.loss_sum.defined() ? loss.loss_sum.item<double>() : 0.0,
                         loss.correct};
      comm.allreduce_sum(stats, 2, "supervised loss");
      const double mean = stats[0] / count;
      if (step == 0) report.first_loss = mean;
      epoch_loss += stats[0];
      epoch_count += count;
      epoch_correct += stats[1];
      epoch_items += static_cast<double>(n);
      if (rank == 0 && (step % options.log_every == 0 || step + 1 == total)) {
        const double elapsed =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        spdlog::info(
            "[{}] step {:>5}/{} epoch {}/{} loss {:.4f} lr {:.2e} grad-norm {:.3f}{} "
            "elapsed {:.1f}s",
            tag, step + 1, total, epoch + 1, options.epochs, mean, lr, norm,
            functions.counts_correct ? fmt::format(" acc {:.3f}", stats[1] / n) : "", elapsed);
      }
    }
    report.last_epoch_loss = epoch_loss / std::max(1.0, epoch_count);
    if (functions.counts_correct)
      report.train_accuracy = epoch_correct / std::max(1.0, epoch_items);
  }
  report.steps = total;
  sync.check_replicas(step);
  setup.model->eval();
}

void save_trained_model(Communicator& comm, const TrainingSetup& setup, const std::string& output) {
  if (comm.is_coordinator()) {
    save_model(*setup.model, output);
    write_file(fs::path(output) / "generation_config.json",
               generation_config_text(setup.model->config(), *setup.tokenizer, setup.pad_id));
    for (const char* name : {"tokenizer.json", "tokenizer_config.json"}) {
      const fs::path from = fs::path(setup.tokenizer_folder) / name;
      const fs::path to = fs::path(output) / name;
      if (!fs::exists(from)) continue;
      std::error_code same;
      if (fs::exists(to) && fs::equivalent(from, to, same)) continue;
      fs::copy_file(from, to, fs::copy_options::overwrite_existing);
    }
    spdlog::info("[model] saved {} to {}", setup.model->config().architecture, output);
  }
  comm.barrier("save model");
}

}  // namespace alignpro::demo
