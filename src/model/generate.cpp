#include "model/generate.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <numeric>

#include "common/error.h"

namespace alignpro {

namespace {

void check_inputs(const Transformer& model, const std::vector<std::vector<int64_t>>& prompts,
                  const GenerateOptions& options, const std::vector<RngStream>& streams) {
  const ModelConfig& config = model.config();
  if (model.is_classifier()) {
    throw InputError(config.path + ": " + config.architecture +
                     " is a classifier; generation needs a causal language model");
  }
  if (options.max_new_tokens < 0) {
    throw InputError("max_new_tokens must be >= 0, got " + std::to_string(options.max_new_tokens));
  }
  if (!options.greedy) {
    if (!(options.temperature > 0)) {
      throw InputError("temperature must be > 0 when sampling (use greedy instead), got " +
                       std::to_string(options.temperature));
    }
    if (!(options.top_p > 0 && options.top_p <= 1)) {
      throw InputError("top_p must be in (0, 1], got " + std::to_string(options.top_p));
    }
    if (options.top_k < 0) {
      throw InputError("top_k must be >= 0 (0 keeps all), got " + std::to_string(options.top_k));
    }
    if (streams.size() != prompts.size()) {
      throw InputError(
          "sampling needs one random stream per prompt: " + std::to_string(prompts.size()) +
          " prompts, " + std::to_string(streams.size()) + " streams");
    }
  }
  if (!options.stop_strings.empty() && !options.decode) {
    throw InputError("stop strings need a decode function to turn tokens into text");
  }
  if (options.pad_token_id < 0 || options.pad_token_id >= config.vocab_size) {
    throw InputError("pad_token_id " + std::to_string(options.pad_token_id) +
                     " is outside the vocabulary of " + std::to_string(config.vocab_size));
  }
  for (size_t i = 0; i < prompts.size(); ++i) {
    if (prompts[i].empty()) throw InputError("prompt " + std::to_string(i) + " has no tokens");
    for (int64_t id : prompts[i]) {
      if (id < 0 || id >= config.vocab_size) {
        throw InputError("prompt " + std::to_string(i) + " has token id " + std::to_string(id) +
                         ", outside the vocabulary of " + std::to_string(config.vocab_size));
      }
    }
    // Learned positions end at n_positions; rotary ones extrapolate.
    const auto needed = static_cast<int64_t>(prompts[i].size()) + options.max_new_tokens;
    if (config.family == ModelFamily::kGpt2 && needed > config.max_position_embeddings) {
      throw InputError("prompt " + std::to_string(i) + " has " + std::to_string(prompts[i].size()) +
                       " tokens; with max_new_tokens " + std::to_string(options.max_new_tokens) +
                       " it needs " + std::to_string(needed) + " positions, but " + config.path +
                       " has n_positions " + std::to_string(config.max_position_embeddings));
    }
  }
}

bool contains(const std::vector<int64_t>& ids, int64_t id) {
  return std::find(ids.begin(), ids.end(), id) != ids.end();
}

// The position of the first stop string in text, or npos.
size_t find_stop(const std::string& text, const std::vector<std::string>& stops) {
  size_t first = std::string::npos;
  for (const auto& stop : stops) {
    if (stop.empty()) continue;
    const size_t at = text.find(stop);
    if (at < first) first = at;
  }
  return first;
}

// One step's choices for the rows in the batch: token ids and their log-probabilities.
struct Choices {
  std::vector<int64_t> tokens;
  std::vector<float> logprobs;
};

Choices choose(const torch::Tensor& logits, const GenerateOptions& options,
               std::vector<RngStream>& streams, const std::vector<int64_t>& rows) {
  // logits [batch, vocab] float32
  const int64_t batch = logits.size(0), vocab = logits.size(1);
  Choices out;
  torch::Tensor chosen;
  if (options.greedy) {
    chosen = logits.argmax(-1);  // [batch]
    const torch::Tensor cpu = chosen.to(torch::kCPU);
    out.tokens.assign(cpu.data_ptr<int64_t>(), cpu.data_ptr<int64_t>() + batch);
  } else {
    const torch::Tensor probs =
        torch::softmax(logits / options.temperature, -1).to(torch::kCPU).contiguous();
    const float* base = probs.data_ptr<float>();
    out.tokens.assign(static_cast<size_t>(batch), 0);
    // Rows are independent and each has its own stream, so threads cannot change the result.
    at::parallel_for(0, batch, 1, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        out.tokens[static_cast<size_t>(i)] =
            sample_from_probabilities(base + i * vocab, vocab, options.top_k, options.top_p,
                                      streams[static_cast<size_t>(rows[static_cast<size_t>(i)])]);
      }
    });
    chosen = torch::tensor(out.tokens, torch::kInt64).to(logits.device());
  }
  // log p = logit - logsumexp(logits), without writing out the whole log-softmax.
  const torch::Tensor logprobs =
      (logits.gather(1, chosen.view({batch, 1})).view({batch}) - logits.logsumexp(-1))
          .to(torch::kCPU);
  out.logprobs.assign(logprobs.data_ptr<float>(), logprobs.data_ptr<float>() + batch);
  return out;
}

}  // namespace

const char* finish_reason_name(FinishReason reason) {
  switch (reason) {
    case FinishReason::kLength:
      return "length";
    case FinishReason::kStopToken:
      return "stop_token";
    case FinishReason::kStopString:
      return "stop_string";
  }
  return "unknown";
}

int64_t sample_from_probabilities(const float* probs, int64_t vocab, int64_t top_k, double top_p,
                                  RngStream& stream) {
  const double u = stream.uniform();
  const bool limit_k = top_k > 0 && top_k < vocab;
  const bool nucleus = top_p < 1.0;
  if (!limit_k && !nucleus) {
    // Inverse CDF in id order; the total is summed again so rounding in the softmax cannot push
    // the target past the end.
    double total = 0;
    for (int64_t i = 0; i < vocab; ++i) total += probs[i];
    const double target = u * total;
    double cumulative = 0;
    int64_t last = 0;
    for (int64_t i = 0; i < vocab; ++i) {
      if (probs[i] <= 0) continue;
      cumulative += probs[i];
      last = i;
      if (cumulative > target) return i;
    }
    return last;
  }

  thread_local std::vector<int32_t> order;
  order.resize(static_cast<size_t>(vocab));
  std::iota(order.begin(), order.end(), 0);
  const auto better = [probs](int32_t a, int32_t b) {
    return probs[a] > probs[b] || (probs[a] == probs[b] && a < b);
  };
  int64_t candidates = vocab;
  double total = 0;
  if (limit_k) {
    candidates = top_k;
    std::partial_sort(order.begin(), order.begin() + candidates, order.end(), better);
    for (int64_t r = 0; r < candidates; ++r) total += probs[order[static_cast<size_t>(r)]];
  } else {
    for (int64_t i = 0; i < vocab; ++i) total += probs[i];
    // Sort only as far as the nucleus reaches, growing the sorted prefix as needed.
    int64_t sorted = std::min<int64_t>(vocab, 64);
    while (true) {
      std::partial_sort(order.begin(), order.begin() + sorted, order.end(), better);
      double mass = 0;
      for (int64_t r = 0; r < sorted; ++r) mass += probs[order[static_cast<size_t>(r)]];
      if (mass >= top_p * total || sorted == vocab) break;
      sorted = std::min<int64_t>(vocab, sorted * 4);
    }
  }
  // The nucleus: a token stays while the mass of the more probable ones is below top_p.
  int64_t kept = candidates;
  double kept_mass = total;
  if (nucleus) {
    double before = 0;
    kept = 0;
    while (kept < candidates && before < top_p * total) {
      before += probs[order[static_cast<size_t>(kept)]];
      ++kept;
    }
    kept = std::max<int64_t>(kept, 1);
    kept_mass = before;
  }
  const double target = u * kept_mass;
  double cumulative = 0;
  for (int64_t r = 0; r < kept; ++r) {
    cumulative += probs[order[static_cast<size_t>(r)]];
    if (cumulative > target) return order[static_cast<size_t>(r)];
  }
  return order[static_cast<size_t>(kept - 1)];
}

std::vector<Generation> generate(Transformer& model,
                                 const std::vector<std::vector<int64_t>>& prompts,
                                 const GenerateOptions& options, std::vector<RngStream>& streams) {
  check_inputs(model, prompts, options, streams);
  std::vector<Generation> results(prompts.size());
  if (prompts.empty() || options.max_new_tokens == 0) return results;
  torch::NoGradGuard no_grad;
  const torch::Device device = model.device();
  const auto batch = static_cast<int64_t>(prompts.size());
  int64_t longest = 0;
  for (const auto& p : prompts)
    longest = std::max<int64_t>(longest, static_cast<int64_t>(p.size()));
  const int64_t capacity = longest + options.max_new_tokens;

  // Left padding: [batch, longest] ids, the mask over the whole cache, positions counting only
  // real tokens (padding gets position 0, as the reference's generate gives it).
  std::vector<int64_t> ids(static_cast<size_t>(batch * longest), options.pad_token_id);
  std::vector<int64_t> positions(static_cast<size_t>(batch * longest), 0);
  torch::Tensor mask = torch::zeros({batch, capacity}, torch::kInt64);
  bool padded = false;
  std::vector<int64_t> next_position(static_cast<size_t>(batch));
  for (int64_t i = 0; i < batch; ++i) {
    const auto& p = prompts[static_cast<size_t>(i)];
    const int64_t offset = longest - static_cast<int64_t>(p.size());
    padded = padded || offset > 0;
    for (size_t j = 0; j < p.size(); ++j) {
      ids[static_cast<size_t>(i * longest + offset) + j] = p[j];
      positions[static_cast<size_t>(i * longest + offset) + j] = static_cast<int64_t>(j);
    }
    mask[i].narrow(0, offset, static_cast<int64_t>(p.size())).fill_(1);
    next_position[static_cast<size_t>(i)] = static_cast<int64_t>(p.size());
  }
  mask = mask.to(device);

  KvCache cache = model.new_cache(batch, capacity);
  torch::Tensor input = torch::tensor(ids, torch::kInt64).view({batch, longest}).to(device);
  torch::Tensor input_positions =
      torch::tensor(positions, torch::kInt64).view({batch, longest}).to(device);
  // Prefill: the whole prompt in one pass; only the last position goes through the head.
  torch::Tensor hidden = model.hidden_states(
      input, padded ? mask.narrow(1, 0, longest) : torch::Tensor(), input_positions, &cache);
  torch::Tensor logits = model.head(hidden.select(1, longest - 1));  // [batch, vocab]

  std::vector<int64_t> rows(static_cast<size_t>(batch));  // original index of each batch row
  std::iota(rows.begin(), rows.end(), 0);
  for (int64_t step = 0; step < options.max_new_tokens; ++step) {
    const Choices choices = choose(logits, options, streams, rows);
    std::vector<int64_t> keep;  // batch rows that go on
    for (size_t r = 0; r < rows.size(); ++r) {
      Generation& g = results[static_cast<size_t>(rows[r])];
      g.tokens.push_back(choices.tokens[r]);
      g.logprobs.push_back(choices.logprobs[r]);
      bool done = false;
      if (contains(options.stop_token_ids, choices.tokens[r])) {
        g.finish = FinishReason::kStopToken;
        done = true;
      } else if (!options.stop_strings.empty()) {
        std::string text = options.decode(g.tokens);
        const size_t at = find_stop(text, options.stop_strings);
        if (at != std::string::npos) {
          g.text = text.substr(0, at);
          g.finish = FinishReason::kStopString;
          done = true;
        }
      }
      if (!done) keep.push_back(static_cast<int64_t>(r));
    }
    if (keep.empty() || step + 1 == options.max_new_tokens) break;

    std::vector<int64_t> next_tokens;
    std::vector<int64_t> next_positions;
    for (int64_t r : keep) {
      next_tokens.push_back(choices.tokens[static_cast<size_t>(r)]);
      next_positions.push_back(next_position[static_cast<size_t>(rows[static_cast<size_t>(r)])]++);
    }
    if (keep.size() < rows.size()) {
      // Finished rows leave the batch: the cache moves the survivors forward in place.
      cache.keep_rows(keep);
      mask = mask.index_select(0, torch::tensor(keep, torch::kInt64).to(device));
      std::vector<int64_t> survivors;
      for (int64_t r : keep) survivors.push_back(rows[static_cast<size_t>(r)]);
      rows = std::move(survivors);
    }
    const auto active = static_cast<int64_t>(rows.size());
    const int64_t length = cache.length();
    mask.select(1, length).fill_(1);
    input = torch::tensor(next_tokens, torch::kInt64).view({active, 1}).to(device);
    input_positions = torch::tensor(next_positions, torch::kInt64).view({active, 1}).to(device);
    hidden = model.hidden_states(input, padded ? mask.narrow(1, 0, length + 1) : torch::Tensor(),
                                 input_positions, &cache);
    logits = model.head(hidden.select(1, 0));
  }

  if (options.decode) {
    for (auto& g : results) {
      if (g.finish == FinishReason::kStopString) continue;
      std::vector<int64_t> text_tokens = g.tokens;
      if (g.finish == FinishReason::kStopToken) text_tokens.pop_back();
      g.text = options.decode(text_tokens);
    }
  }
  return results;
}

}  // namespace alignpro
