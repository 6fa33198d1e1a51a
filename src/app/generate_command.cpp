// `alignpro generate --model DIR --prompt TEXT`: continue a prompt with a Hugging Face model
// folder, for trying a model by hand. The continuation goes to stdout; a summary (tokens, why it
// stopped, speed) goes to stderr.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <iostream>
#include <memory>

#include "app/command.h"
#include "common/error.h"
#include "common/rng.h"
#include "common/threads.h"
#include "model/config.h"
#include "model/device.h"
#include "model/generate.h"
#include "model/transformer.h"
#include "text/tokenizer.h"

namespace alignpro {

namespace {

struct GenerateArgs {
  std::string model;
  std::string prompt;
  int64_t max_new_tokens = 64;
  double temperature = 1.0;
  int64_t top_k = 0;
  double top_p = 1.0;
  bool greedy = false;
  uint64_t seed = 0;
  std::vector<std::string> stop;
  bool no_special_tokens = false;
  bool show_tokens = false;
  std::string device = "auto";
  std::string dtype = "auto";
  int threads = 0;
};

int run_generate(const GenerateArgs& args) {
  configure_threads(args.threads, 1);
  const torch::Device device = choose_device(0, args.device);
  LoadOptions load;
  load.device = device;
  load.dtype = parse_dtype(args.dtype, device);
  const auto model = load_model(args.model, load);
  const Tokenizer tokenizer = Tokenizer::from_folder(args.model);
  const GenerationConfig generation = read_generation_config(args.model);

  const std::vector<int64_t> prompt = tokenizer.encode(args.prompt, !args.no_special_tokens);
  if (prompt.empty()) {
    throw InputError("--prompt gives no tokens; give some text (or drop --no-special-tokens)");
  }
  GenerateOptions options;
  options.max_new_tokens = args.max_new_tokens;
  options.greedy = args.greedy;
  options.temperature = args.temperature;
  options.top_k = args.top_k;
  options.top_p = args.top_p;
  options.stop_token_ids = stop_token_ids(model->config(), generation);
  if (tokenizer.eos_id() && std::find(options.stop_token_ids.begin(), options.stop_token_ids.end(),
                                      *tokenizer.eos_id()) == options.stop_token_ids.end()) {
    options.stop_token_ids.push_back(*tokenizer.eos_id());
  }
  options.stop_strings = args.stop;
  options.decode = [&tokenizer](const std::vector<int64_t>& ids) { return tokenizer.decode(ids); };
  std::vector<RngStream> streams = {RngStream(args.seed, RngPurpose::kEval, {0})};

  const auto start = std::chrono::steady_clock::now();
  const Generation g = generate(*model, {prompt}, options, streams)[0];
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  std::cout << g.text << std::endl;
  double logprob = 0;
  for (float lp : g.logprobs) logprob += lp;
  std::cerr << fmt::format(
      "[generate] {} prompt tokens, {} new tokens, stopped by {}, log-prob {:.3f}, {:.2f} s "
      "({:.1f} tokens/s)\n",
      prompt.size(), g.tokens.size(), finish_reason_name(g.finish), logprob, seconds,
      seconds > 0 ? g.tokens.size() / seconds : 0.0);
  if (args.show_tokens) {
    for (size_t i = 0; i < g.tokens.size(); ++i) {
      std::cerr << fmt::format("  {:5d} {:>8.4f} {}\n", g.tokens[i], g.logprobs[i],
                               tokenizer.id_to_token(g.tokens[i]));
    }
  }
  return 0;
}

}  // namespace

Command add_generate_command(CLI::App& app) {
  auto args = std::make_shared<GenerateArgs>();
  auto* sub = app.add_subcommand(
      "generate",
      "Continue a prompt with a Hugging Face model folder (for trying a model by hand)");
  sub->add_option("--model", args->model, "Model folder: config.json, safetensors, tokenizer.json")
      ->required();
  sub->add_option("--prompt", args->prompt, "Text to continue")->required();
  sub->add_option("--max-new-tokens", args->max_new_tokens, "Most tokens to generate (default 64)")
      ->check(CLI::NonNegativeNumber);
  sub->add_option("--temperature", args->temperature, "Sampling temperature > 0 (default 1)");
  sub->add_option("--top-k", args->top_k, "Keep the k most probable tokens; 0 keeps all (default)")
      ->check(CLI::NonNegativeNumber);
  sub->add_option("--top-p", args->top_p, "Nucleus mass in (0, 1] (default 1)");
  sub->add_flag("--greedy", args->greedy, "Take the most probable token instead of sampling");
  sub->add_option("--seed", args->seed, "Seed of the sampling stream (default 0)");
  sub->add_option("--stop", args->stop, "Stop once the text contains this (repeatable)");
  sub->add_flag("--no-special-tokens", args->no_special_tokens,
                "Encode the prompt without BOS or other special tokens");
  sub->add_flag("--show-tokens", args->show_tokens, "List each new token and its log-prob");
  sub->add_option("--device", args->device, "auto (default), cpu or cuda");
  sub->add_option("--dtype", args->dtype, "auto (default), float32, bfloat16 or float16");
  sub->add_option("--threads", args->threads, "Compute threads (default: one per core)")
      ->check(CLI::NonNegativeNumber);
  return {sub, [args] { return run_generate(*args); }};
}

}  // namespace alignpro
