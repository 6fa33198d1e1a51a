// alignpro_bench: prefill and decode throughput of a model folder at a given batch size, and the
// GFLOP/s they reach against this machine's measured matrix-product peak. Not a test: it asserts
// nothing and prints figures (one "key=value" line each with --machine-readable).
//
//   alignpro_bench --model DIR [--batch 32] [--prompt-tokens 64] [--new-tokens 128]
#include <torch/torch.h>
#include <CLI/CLI.hpp>

#include <dlfcn.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <map>
#include <string>

#include "common/error.h"
#include "common/log.h"
#include "common/rng.h"
#include "common/threads.h"
#include "model/device.h"
#include "model/generate.h"
#include "model/transformer.h"

namespace alignpro {
namespace {

struct BenchArgs {
  std::string model;
  int64_t batch = 32;
  int64_t prompt_tokens = 64;
  int64_t new_tokens = 128;
  int repeats = 3;
  int threads = 0;
  int blas_threads = 0;
  bool sample = false;
  std::string device = "auto";
  std::string dtype = "auto";
  bool machine_readable = false;
};

void set_blas_threads(int threads) {
  using SetThreads = void (*)(int);
  if (auto set = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) {
    set(threads);
  }
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// The best of a few timed runs of f, after one untimed warm-up.
template <typename F>
double best_time(int repeats, torch::Device device, F&& f) {
  f();
  synchronize(device);
  double best = 1e300;
  for (int i = 0; i < repeats; ++i) {
    const auto start = std::chrono::steady_clock::now();
    f();
    synchronize(device);
    best = std::min(best, seconds_since(start));
  }
  return best;
}

// GFLOP/s of a large square matrix product: what the BLAS of this machine can reach.
double matmul_peak(torch::Device device, torch::ScalarType dtype, int repeats) {
  const int64_t n = device.is_cuda() ? 8192 : 2048;
  const auto options = torch::TensorOptions().dtype(dtype).device(device);
  const torch::Tensor a = torch::randn({n, n}, options);
  const torch::Tensor b = torch::randn({n, n}, options);
  torch::Tensor c = torch::empty({n, n}, options);
  const double t = best_time(repeats, device, [&] { torch::mm_out(c, a, b); });
  return 2.0 * n * n * n / t / 1e9;
}

// Weights that take part in matrix products per token: every 2-D weight but the embedding
// tables, plus the output matrix (the embedding table again when tied).
int64_t matmul_parameters(const Transformer& model) {
  int64_t count = 0;
  for (const auto& item : model.named_parameters()) {
    const std::string& name = item.key();
    if (item.value().dim() != 2) continue;
    if (name.find("embed_tokens") != std::string::npos || name.find(".wte.") != std::string::npos ||
        name.find(".wpe.") != std::string::npos) {
      continue;
    }
    count += item.value().numel();
  }
  const ModelConfig& c = model.config();
  if (c.tie_word_embeddings && !model.is_classifier()) count += c.vocab_size * c.hidden_size;
  return count;
}

int run(const BenchArgs& args) {
  // libtorch and OpenBLAS threads: the cores of the machine unless asked otherwise.
  const int threads = configure_threads(args.threads, 1);
  if (args.blas_threads > 0) set_blas_threads(args.blas_threads);
  const torch::Device device = choose_device(0, args.device);
  LoadOptions load;
  load.device = device;
  load.dtype = parse_dtype(args.dtype, device);
  const auto model = load_model(args.model, load);
  const ModelConfig& c = model->config();
  const int64_t head_params = c.vocab_size * c.hidden_size;
  const int64_t body_params = matmul_parameters(*model) - head_params;
  int64_t all_params = 0;
  for (const auto& p : model->parameters()) all_params += p.numel();

  // Random prompts of ordinary ids (content does not change the cost).
  std::vector<std::vector<int64_t>> prompts(static_cast<size_t>(args.batch));
  RngStream ids(1, RngPurpose::kEval);
  for (auto& p : prompts) {
    for (int64_t j = 0; j < args.prompt_tokens; ++j) {
      p.push_back(3 + static_cast<int64_t>(ids.below(static_cast<uint64_t>(c.vocab_size - 3))));
    }
  }
  std::vector<int64_t> flat;
  for (const auto& p : prompts) flat.insert(flat.end(), p.begin(), p.end());
  const torch::Tensor prompt_tensor =
      torch::tensor(flat, torch::kInt64).view({args.batch, args.prompt_tokens}).to(device);

  torch::NoGradGuard no_grad;
  const double peak = matmul_peak(device, load.dtype.value(), args.repeats);

  // Prefill alone: the prompt in one pass, the head on the last position.
  const double prefill = best_time(args.repeats, device, [&] {
    KvCache cache = model->new_cache(args.batch, args.prompt_tokens + args.new_tokens);
    const torch::Tensor h = model->hidden_states(prompt_tensor, {}, {}, &cache);
    (void)model->head(h.select(1, args.prompt_tokens - 1));
  });

  GenerateOptions options;
  options.max_new_tokens = args.new_tokens;
  options.greedy = !args.sample;
  std::vector<RngStream> streams;
  const double total = best_time(args.repeats, device, [&] {
    streams.clear();
    for (int64_t i = 0; i < args.batch; ++i) {
      streams.emplace_back(2, RngPurpose::kEval, std::initializer_list<uint64_t>{uint64_t(i)});
    }
    (void)generate(*model, prompts, options, streams);
  });

  const double b = static_cast<double>(args.batch);
  const double p = static_cast<double>(args.prompt_tokens);
  const double n = static_cast<double>(args.new_tokens);
  const double attention_width = static_cast<double>(c.num_heads * c.head_dim * c.num_layers);
  // Prefill: every prompt token through the body, attention over the (computed) square of
  // scores, the head on one position per row.
  const double prefill_flops =
      2.0 * body_params * b * p + 4.0 * attention_width * b * p * p + 2.0 * head_params * b;
  // Decode: n - 1 single-token steps, each with the whole model and attention over the context.
  const double decode_steps = n - 1;
  const double mean_context = p + 1 + (n - 2) / 2.0;
  const double decode_flops =
      decode_steps * b * (2.0 * (body_params + head_params) + 4.0 * attention_width * mean_context);
  const double decode_time = std::max(total - prefill, 1e-9);

  const std::map<std::string, double> figures = {
      {"parameters", static_cast<double>(all_params)},
      {"batch", b},
      {"prompt_tokens", p},
      {"new_tokens", n},
      {"threads", static_cast<double>(threads)},
      {"peak_gflops", peak},
      {"prefill_seconds", prefill},
      {"prefill_tokens_per_second", b * p / prefill},
      {"prefill_gflops", prefill_flops / prefill / 1e9},
      {"generate_seconds", total},
      {"generate_tokens_per_second", b * n / total},
      {"decode_tokens_per_second", b * decode_steps / decode_time},
      {"decode_gflops", decode_flops / decode_time / 1e9},
  };
  if (args.machine_readable) {
    for (const auto& [key, value] : figures) std::printf("%s=%.6g\n", key.c_str(), value);
    return 0;
  }
  std::printf("model %s: %s, %.1fM parameters, %s on %s, %d threads\n", args.model.c_str(),
              c.architecture.c_str(), all_params / 1e6, c10::toString(load.dtype.value()),
              device.str().c_str(), threads);
  std::printf("matrix-product peak (%s mm): %.1f GFLOP/s\n", device.is_cuda() ? "8192" : "2048",
              peak);
  std::printf(
      "prefill  batch %lld x %lld tokens: %.3f s, %.0f tokens/s, %.1f GFLOP/s (%.0f%% of peak)\n",
      static_cast<long long>(args.batch), static_cast<long long>(args.prompt_tokens), prefill,
      b * p / prefill, prefill_flops / prefill / 1e9, 100 * prefill_flops / prefill / 1e9 / peak);
  std::printf(
      "decode   batch %lld, %lld new tokens (%s): %.0f tokens/s, %.1f GFLOP/s (%.0f%% of peak)\n",
      static_cast<long long>(args.batch), static_cast<long long>(args.new_tokens),
      args.sample ? "sampling" : "greedy", b * decode_steps / decode_time,
      decode_flops / decode_time / 1e9, 100 * decode_flops / decode_time / 1e9 / peak);
  std::printf("generate end to end: %.3f s, %.0f new tokens/s\n", total, b * n / total);
  return 0;
}

}  // namespace
}  // namespace alignpro

int main(int argc, char** argv) {
  using namespace alignpro;
  BenchArgs args;
  CLI::App app{"alignpro_bench: prefill and decode throughput of a Hugging Face model folder"};
  app.add_option("--model", args.model, "Model folder (config.json, safetensors)")->required();
  app.add_option("--batch", args.batch, "Rows generated together")->check(CLI::PositiveNumber);
  app.add_option("--prompt-tokens", args.prompt_tokens, "Prompt length")
      ->check(CLI::PositiveNumber);
  app.add_option("--new-tokens", args.new_tokens, "Tokens generated per row")
      ->check(CLI::Range(int64_t{2}, int64_t{1} << 20));
  app.add_option("--repeats", args.repeats, "Timed runs; the best counts")
      ->check(CLI::PositiveNumber);
  app.add_option("--threads", args.threads, "Compute threads (0: one per core)");
  app.add_option("--blas-threads", args.blas_threads, "OpenBLAS threads (0: as --threads)");
  app.add_flag("--sample", args.sample, "Sample (temperature 1) instead of greedy decoding");
  app.add_option("--device", args.device, "auto, cpu or cuda");
  app.add_option("--dtype", args.dtype, "auto, float32, bfloat16 or float16");
  app.add_flag("--machine-readable", args.machine_readable, "Print key=value lines only");
  CLI11_PARSE(app, argc, argv);
  try {
    init_logging(0, 1);
    if (args.machine_readable) spdlog::set_level(spdlog::level::warn);
    return run(args);
  } catch (const InputError& e) {
    std::cerr << "alignpro_bench: error: " << e.what() << "\n";
    return kExitBadInput;
  } catch (const std::exception& e) {
    std::cerr << "alignpro_bench: failed: " << e.what() << "\n";
    return kExitRuntimeFailure;
  }
}
