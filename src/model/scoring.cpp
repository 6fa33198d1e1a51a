#include "model/scoring.h"

#include <algorithm>

#include "common/error.h"

namespace alignpro {

namespace {

void check_ids(const std::vector<int64_t>& ids, int64_t vocab, const std::string& what,
               size_t row) {
  for (int64_t id : ids) {
    if (id < 0 || id >= vocab) {
      throw InputError(what + " " + std::to_string(row) + " has token id " + std::to_string(id) +
                       ", outside the vocabulary of " + std::to_string(vocab));
    }
  }
}

}  // namespace

ContinuationScores score_continuations(Transformer& model,
                                       const std::vector<std::vector<int64_t>>& prompts,
                                       const std::vector<std::vector<int64_t>>& continuations,
                                       int64_t pad_token_id) {
  const ModelConfig& config = model.config();
  if (model.is_classifier()) {
    throw InputError(config.path + ": " + config.architecture +
                     " is a classifier; scoring continuations needs a causal language model");
  }
  if (prompts.size() != continuations.size()) {
    throw InputError("score_continuations: " + std::to_string(prompts.size()) + " prompts but " +
                     std::to_string(continuations.size()) + " continuations");
  }
  const auto batch = static_cast<int64_t>(prompts.size());
  const torch::Device device = model.device();
  int64_t total = 0, longest_continuation = 0;
  for (size_t i = 0; i < prompts.size(); ++i) {
    if (prompts[i].empty()) throw InputError("prompt " + std::to_string(i) + " has no tokens");
    check_ids(prompts[i], config.vocab_size, "prompt", i);
    check_ids(continuations[i], config.vocab_size, "continuation", i);
    total =
        std::max<int64_t>(total, static_cast<int64_t>(prompts[i].size() + continuations[i].size()));
    longest_continuation =
        std::max<int64_t>(longest_continuation, static_cast<int64_t>(continuations[i].size()));
  }
  if (batch == 0 || longest_continuation == 0) {
    const auto options = torch::TensorOptions().dtype(torch::kFloat32).device(device);
    return {torch::zeros({batch, 0}, options), torch::zeros({batch, 0}, options),
            torch::zeros({batch}, options)};
  }

  // Left-padded prompt + continuation, [batch, total]; positions count real tokens only.
  std::vector<int64_t> ids(static_cast<size_t>(batch * total), pad_token_id);
  std::vector<int64_t> valid(static_cast<size_t>(batch * total), 0);
  std::vector<int64_t> positions(static_cast<size_t>(batch * total), 0);
  // For continuation token j of row i: the position whose output predicts it, and the token.
  std::vector<int64_t> source(static_cast<size_t>(batch * longest_continuation), 0);
  std::vector<int64_t> target(static_cast<size_t>(batch * longest_continuation), 0);
  std::vector<float> present(static_cast<size_t>(batch * longest_continuation), 0.0f);
  for (int64_t i = 0; i < batch; ++i) {
    const auto& p = prompts[static_cast<size_t>(i)];
    const auto& c = continuations[static_cast<size_t>(i)];
    const int64_t length = static_cast<int64_t>(p.size() + c.size());
    const int64_t offset = total - length;
    for (int64_t j = 0; j < length; ++j) {
      const size_t at = static_cast<size_t>(i * total + offset + j);
      ids[at] = j < static_cast<int64_t>(p.size()) ? p[static_cast<size_t>(j)]
                                                   : c[static_cast<size_t>(j) - p.size()];
      valid[at] = 1;
      positions[at] = j;
    }
    for (size_t j = 0; j < c.size(); ++j) {
      const size_t at = static_cast<size_t>(i * longest_continuation) + j;
      source[at] = offset + static_cast<int64_t>(p.size() + j) - 1;
      target[at] = c[j];
      present[at] = 1.0f;
    }
  }
  const auto to_device = [&](const std::vector<int64_t>& v, int64_t cols) {
    return torch::tensor(v, torch::kInt64).view({batch, cols}).to(device);
  };
  const torch::Tensor input = to_device(ids, total);
  const torch::Tensor mask = to_device(valid, total);
  const bool padded = std::any_of(valid.begin(), valid.end(), [](int64_t v) { return v == 0; });
  // [batch, total, hidden]
  const torch::Tensor hidden = model.hidden_states(input, padded ? mask : torch::Tensor(),
                                                   to_device(positions, total), nullptr);
  const torch::Tensor index = to_device(source, longest_continuation);  // [batch, cont]
  // Only the positions that predict continuation tokens go through the head: [batch, cont, hidden]
  const torch::Tensor picked =
      hidden.gather(1, index.unsqueeze(-1).expand({batch, longest_continuation, hidden.size(-1)}));
  const torch::Tensor logits = model.head(picked);  // [batch, cont, vocab]
  const torch::Tensor targets = to_device(target, longest_continuation).unsqueeze(-1);
  const torch::Tensor weights =
      torch::tensor(present, torch::kFloat32).view({batch, longest_continuation}).to(device);
  const torch::Tensor token_logprobs =
      torch::log_softmax(logits, -1).gather(-1, targets).squeeze(-1) * weights;
  return {token_logprobs, weights, token_logprobs.sum(-1)};
}

std::vector<std::vector<float>> unpad_rows(const torch::Tensor& values, const torch::Tensor& mask) {
  const torch::Tensor v = values.detach().to(torch::kCPU, torch::kFloat32).contiguous();
  const torch::Tensor m = mask.detach().to(torch::kCPU, torch::kFloat32).contiguous();
  const auto va = v.accessor<float, 2>();
  const auto ma = m.accessor<float, 2>();
  std::vector<std::vector<float>> out(static_cast<size_t>(v.size(0)));
  for (int64_t i = 0; i < v.size(0); ++i) {
    for (int64_t j = 0; j < v.size(1); ++j) {
      if (ma[i][j] != 0) out[static_cast<size_t>(i)].push_back(va[i][j]);
    }
  }
  return out;
}

torch::Tensor last_non_pad_index(const torch::Tensor& input_ids,
                                 std::optional<int64_t> pad_token_id) {
  const int64_t seq = input_ids.size(1);
  if (!pad_token_id) {
    return torch::full({input_ids.size(0)}, seq - 1,
                       torch::TensorOptions().dtype(torch::kInt64).device(input_ids.device()));
  }
  // The reference: argmax of (index * is_not_pad); all-padding rows give 0.
  const torch::Tensor not_pad = input_ids.ne(*pad_token_id).to(torch::kInt64);
  const torch::Tensor index = torch::arange(seq, input_ids.options().dtype(torch::kInt64));
  return (index * not_pad).argmax(-1);
}

torch::Tensor classification_scores(Transformer& model, const torch::Tensor& input_ids,
                                    const torch::Tensor& attention_mask) {
  const ModelConfig& config = model.config();
  if (!model.is_classifier()) {
    throw InputError(
        config.path + ": " + config.architecture +
        " has no classification head; rewards need a *ForSequenceClassification model");
  }
  if (!config.pad_token_id && input_ids.size(0) != 1) {
    throw InputError(config.path +
                     ": has no pad_token_id, so only one sequence at a time can be "
                     "scored (the reference cannot find the last token of a padded row either)");
  }
  const int64_t batch = input_ids.size(0);
  const torch::Tensor hidden = model.hidden_states(input_ids, attention_mask, {}, nullptr);
  const torch::Tensor index = last_non_pad_index(input_ids, config.pad_token_id);
  const torch::Tensor picked =
      hidden.gather(1, index.view({batch, 1, 1}).expand({batch, 1, hidden.size(-1)})).squeeze(1);
  return model.head(picked);  // [batch, labels]
}

torch::Tensor score_sequences(Transformer& model,
                              const std::vector<std::vector<int64_t>>& sequences,
                              int64_t max_batch) {
  const ModelConfig& config = model.config();
  if (!model.is_classifier()) {
    throw InputError(
        config.path + ": " + config.architecture +
        " has no classification head; rewards need a *ForSequenceClassification model");
  }
  torch::NoGradGuard no_grad;
  const torch::Device device = model.device();
  const auto count = static_cast<int64_t>(sequences.size());
  const int64_t step = max_batch > 0 ? max_batch : std::max<int64_t>(count, 1);
  std::vector<torch::Tensor> parts;
  for (int64_t start = 0; start < count; start += step) {
    const int64_t end = std::min(count, start + step);
    const int64_t rows = end - start;
    int64_t longest = 0;
    for (int64_t i = start; i < end; ++i) {
      const auto& s = sequences[static_cast<size_t>(i)];
      if (s.empty()) throw InputError("sequence " + std::to_string(i) + " has no tokens");
      check_ids(s, config.vocab_size, "sequence", static_cast<size_t>(i));
      longest = std::max<int64_t>(longest, static_cast<int64_t>(s.size()));
    }
    // Right padding: real tokens keep positions 0.. and never see the padding (causal attention).
    const int64_t pad = config.pad_token_id.value_or(0);
    std::vector<int64_t> ids(static_cast<size_t>(rows * longest), pad);
    std::vector<int64_t> valid(static_cast<size_t>(rows * longest), 0);
    std::vector<int64_t> last(static_cast<size_t>(rows), 0);
    for (int64_t i = 0; i < rows; ++i) {
      const auto& s = sequences[static_cast<size_t>(start + i)];
      std::copy(s.begin(), s.end(), ids.begin() + i * longest);
      std::fill(valid.begin() + i * longest,
                valid.begin() + i * longest + static_cast<int64_t>(s.size()), 1);
      last[static_cast<size_t>(i)] = static_cast<int64_t>(s.size()) - 1;
    }
    const torch::Tensor input = torch::tensor(ids, torch::kInt64).view({rows, longest}).to(device);
    const torch::Tensor mask = torch::tensor(valid, torch::kInt64).view({rows, longest}).to(device);
    // With a pad id the reference's rule on the padded row; without, each row's own last token.
    const torch::Tensor index = config.pad_token_id ? last_non_pad_index(input, config.pad_token_id)
                                                    : torch::tensor(last, torch::kInt64).to(device);
    const torch::Tensor hidden = model.hidden_states(input, mask, {}, nullptr);
    const torch::Tensor picked =
        hidden.gather(1, index.view({rows, 1, 1}).expand({rows, 1, hidden.size(-1)})).squeeze(1);
    parts.push_back(model.head(picked).to(torch::kCPU));
  }
  if (parts.empty()) return torch::zeros({0, config.num_labels}, torch::kFloat32);
  return torch::cat(parts, 0);
}

}  // namespace alignpro
