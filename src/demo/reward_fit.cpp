// `alignpro fit-reward`: a reward model from preference pairs with the Bradley-Terry loss.
#include <chrono>

#include "common/error.h"
#include "common/log.h"
#include "demo/supervised.h"
#include "demo/supervised_data.h"
#include "demo/training_loop.h"
#include "model/scoring.h"
#include "text/template.h"

namespace alignpro::demo {

namespace {

struct EncodedPair {
  std::vector<int64_t> chosen;
  std::vector<int64_t> rejected;
};

// The reward model reads the end of a long text: the score is taken at the last token.
bool keep_last(std::vector<int64_t>& ids, int64_t max_length) {
  if (static_cast<int64_t>(ids.size()) <= max_length) return false;
  ids.erase(ids.begin(), ids.end() - max_length);
  return true;
}

std::vector<EncodedPair> encode_pairs(const std::vector<PreferenceRecord>& records,
                                      const std::string& path, const Tokenizer& tokenizer,
                                      const PromptTemplate& layout, int64_t max_length,
                                      int64_t& truncated) {
  std::vector<EncodedPair> pairs;
  pairs.reserve(records.size());
  for (const auto& record : records) {
    EncodedPair pair;
    try {
      pair.chosen = tokenizer.encode(layout.render({record.prompt, "", record.chosen}));
      pair.rejected = tokenizer.encode(layout.render({record.prompt, "", record.rejected}));
    } catch (const InputError& e) {
      throw InputError(path + ":" + std::to_string(record.line) + ": " + e.what());
    }
    if (pair.chosen.empty() || pair.rejected.empty()) {
      throw InputError(path + ":" + std::to_string(record.line) +
                       ": a pair renders to no tokens under the template \"" + layout.text() +
                       "\"");
    }
    truncated += keep_last(pair.chosen, max_length) ? 1 : 0;
    truncated += keep_last(pair.rejected, max_length) ? 1 : 0;
    pairs.push_back(std::move(pair));
  }
  return pairs;
}

PromptTemplate reward_layout(const std::string& text) {
  PromptTemplate layout = PromptTemplate::parse(text, "--template", {"prompt", "response"});
  layout.require("prompt");
  layout.require("response");
  return layout;
}

double accuracy_of(Transformer& model, const std::vector<EncodedPair>& pairs) {
  if (pairs.empty()) return 0;
  std::vector<std::vector<int64_t>> rows;
  for (const auto& pair : pairs) {
    rows.push_back(pair.chosen);
    rows.push_back(pair.rejected);
  }
  const torch::Tensor scores = score_sequences(model, rows, 64);  // [2 * pairs, 1]
  const auto values = scores.accessor<float, 2>();
  int64_t right = 0;
  for (size_t i = 0; i < pairs.size(); ++i) right += values[2 * i][0] > values[2 * i + 1][0];
  return static_cast<double>(right) / static_cast<double>(pairs.size());
}

}  // namespace

TrainingReport run_fit_reward(Communicator& comm, const RewardFitOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  check_training_options(options);
  const PromptTemplate layout = reward_layout(options.template_text);
  const std::vector<PreferenceRecord> records = read_preference_data(options.data);
  std::vector<PreferenceRecord> eval_records;
  if (!options.eval_data.empty()) eval_records = read_preference_data(options.eval_data);
  TrainingSetup setup = setup_training(comm, options, /*reward_head=*/true);

  TrainingReport report;
  report.examples = static_cast<int64_t>(records.size());
  const std::vector<EncodedPair> pairs = encode_pairs(records, options.data, *setup.tokenizer,
                                                      layout, setup.max_length, report.truncated);
  int64_t eval_truncated = 0;
  const std::vector<EncodedPair> eval_pairs = encode_pairs(
      eval_records, options.eval_data, *setup.tokenizer, layout, setup.max_length, eval_truncated);
  if (comm.is_coordinator()) {
    spdlog::info(
        "[fit-reward] {} pairs from {}, {} held-out; {} sequences cut to their last {} "
        "tokens",
        pairs.size(), options.data, eval_pairs.size(), report.truncated, setup.max_length);
  }

  LoopFunctions functions;
  functions.counts_correct = true;
  functions.local_loss = [&](const std::vector<size_t>& indices) {
    std::vector<std::vector<int64_t>> rows;
    for (size_t i : indices) rows.push_back(pairs[i].chosen);
    for (size_t i : indices) rows.push_back(pairs[i].rejected);
    const int64_t n = static_cast<int64_t>(indices.size());
    // Right padding with the pad id: the score is read at each row's last other token.
    const torch::Tensor input = pad_rows(rows, setup.pad_id, setup.device);  // [2n, seq]
    const torch::Tensor scores = classification_scores(*setup.model, input).squeeze(-1);  // [2n]
    const torch::Tensor margin = scores.narrow(0, 0, n) - scores.narrow(0, n, n);         // [n]
    LocalLoss loss;
    loss.loss_sum = -torch::log_sigmoid(margin).sum();
    loss.correct = (margin > 0).sum().item<double>();
    return loss;
  };
  functions.global_count = [](const std::vector<size_t>& indices) {
    return static_cast<double>(indices.size());
  };
  run_training_loop(comm, setup, options, pairs.size(), functions, "fit-reward", report);
  if (!eval_pairs.empty()) {
    report.eval_accuracy = accuracy_of(*setup.model, eval_pairs);
    if (comm.is_coordinator()) {
      spdlog::info("[fit-reward] held-out accuracy {:.3f} on {} pairs from {}",
                   report.eval_accuracy, eval_pairs.size(), options.eval_data);
    }
  }
  save_trained_model(comm, setup, options.output);
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return report;
}

double preference_accuracy(const std::string& reward_folder, const std::string& pairs_path,
                           const std::string& template_text) {
  const PromptTemplate layout = reward_layout(template_text);
  LoadOptions load;
  load.dtype = torch::kFloat32;
  auto model = load_model(reward_folder, load);
  const Tokenizer tokenizer = Tokenizer::from_folder(reward_folder);
  int64_t truncated = 0;
  const auto pairs = encode_pairs(read_preference_data(pairs_path), pairs_path, tokenizer, layout,
                                  model->config().max_position_embeddings, truncated);
  return accuracy_of(*model, pairs);
}

}  // namespace alignpro::demo
