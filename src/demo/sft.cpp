// `alignpro sft`: causal-LM fine-tuning on prompt/completion pairs or plain texts.
#include <chrono>

#include "common/error.h"
#include "common/log.h"
#include "demo/supervised.h"
#include "demo/supervised_data.h"
#include "demo/training_loop.h"

namespace alignpro::demo {

namespace {

// A record as token ids, with 1 where the loss counts the token.
struct EncodedText {
  std::vector<int64_t> ids;
  std::vector<float> loss_mask;
  double counted = 0;  // tokens the loss predicts (the first token is never predicted)
};

EncodedText encode_record(const SftRecord& record, const Tokenizer& tokenizer, bool completion_only,
                          int64_t max_length, bool& truncated) {
  EncodedText out;
  std::vector<int64_t> prompt;
  std::vector<int64_t> completion;
  if (record.plain_text) {
    completion = tokenizer.encode(record.completion, /*add_special_tokens=*/true);
  } else {
    prompt = tokenizer.encode(record.prompt, /*add_special_tokens=*/true);
    completion = tokenizer.encode(record.completion, /*add_special_tokens=*/false);
  }
  if (tokenizer.eos_id()) completion.push_back(*tokenizer.eos_id());
  out.ids = prompt;
  out.ids.insert(out.ids.end(), completion.begin(), completion.end());
  out.loss_mask.assign(prompt.size(), completion_only ? 0.0f : 1.0f);
  out.loss_mask.insert(out.loss_mask.end(), completion.size(), 1.0f);
  truncated = static_cast<int64_t>(out.ids.size()) > max_length;
  if (truncated) {
    out.ids.resize(max_length);
    out.loss_mask.resize(max_length);
  }
  for (size_t i = 1; i < out.loss_mask.size(); ++i) out.counted += out.loss_mask[i];
  return out;
}

}  // namespace

TrainingReport run_sft(Communicator& comm, const SftOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  check_training_options(options);
  const std::vector<SftRecord> records = read_sft_data(options.data, options.data_format);
  TrainingSetup setup = setup_training(comm, options, /*reward_head=*/false);

  TrainingReport report;
  report.examples = static_cast<int64_t>(records.size());
  std::vector<EncodedText> texts;
  texts.reserve(records.size());
  double tokens = 0;
  for (const auto& record : records) {
    bool truncated = false;
    try {
      texts.push_back(encode_record(record, *setup.tokenizer, options.completion_only,
                                    setup.max_length, truncated));
    } catch (const InputError& e) {
      throw InputError(options.data + ":" + std::to_string(record.line) + ": " + e.what());
    }
    report.truncated += truncated ? 1 : 0;
    tokens += texts.back().counted;
  }
  if (comm.is_coordinator()) {
    spdlog::info("[sft] {} examples from {}, {} tokens in the loss{}; {} truncated to {} tokens",
                 records.size(), options.data, static_cast<int64_t>(tokens),
                 options.completion_only ? " (completions only)" : "", report.truncated,
                 setup.max_length);
  }

  LoopFunctions functions;
  functions.local_loss = [&](const std::vector<size_t>& indices) {
    std::vector<std::vector<int64_t>> rows;
    std::vector<std::vector<int64_t>> masks;
    for (size_t i : indices) {
      rows.push_back(texts[i].ids);
      masks.emplace_back(texts[i].loss_mask.begin(), texts[i].loss_mask.end());
    }
    // Right padding needs no attention mask: causal attention never looks ahead to the pads.
    const torch::Tensor input = pad_rows(rows, setup.pad_id, setup.device);  // [batch, seq]
    const torch::Tensor weight = pad_rows(masks, 0, setup.device).to(torch::kFloat32);
    const torch::Tensor logits = setup.model->forward(input);  // [batch, seq, vocab]
    const int64_t seq = input.size(1);
    const torch::Tensor logprobs =
        torch::log_softmax(logits.narrow(1, 0, seq - 1), -1);  // [batch, seq - 1, vocab]
    const torch::Tensor targets = input.narrow(1, 1, seq - 1).unsqueeze(-1);
    const torch::Tensor nll = -logprobs.gather(2, targets).squeeze(-1);  // [batch, seq - 1]
    LocalLoss loss;
    loss.loss_sum = (nll * weight.narrow(1, 1, seq - 1)).sum();
    return loss;
  };
  functions.global_count = [&](const std::vector<size_t>& indices) {
    double count = 0;
    for (size_t i : indices) count += texts[i].counted;
    return count;
  };
  run_training_loop(comm, setup, options, texts.size(), functions, "sft", report);
  save_trained_model(comm, setup, options.output);
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return report;
}

}  // namespace alignpro::demo
