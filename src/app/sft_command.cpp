// `alignpro sft`: fine-tune a causal LM on prompt/completion pairs or plain text, on one rank or
// data-parallel under mpirun, and save it in Hugging Face layout.
#include <fmt/format.h>

#include <iostream>
#include <memory>

#include "app/command.h"
#include "common/log.h"
#include "common/threads.h"
#include "demo/supervised.h"
#include "dist/communicator.h"

namespace alignpro {

namespace {

struct SftArgs {
  demo::SftOptions options;
  int threads = 0;
};

int run_sft_command(const SftArgs& args) {
  MpiSession session(nullptr, nullptr);
  const auto comm = session.world();
  init_logging(comm->rank(), comm->size());
  configure_threads(args.threads, comm->local_size());
  const demo::TrainingReport report = demo::run_sft(*comm, args.options);
  if (comm->is_coordinator()) {
    std::cout << fmt::format(
        "sft: {} examples, {} steps on {} rank(s), loss {:.4f} -> {:.4f} (last epoch), {} "
        "truncated; saved {} in {:.1f}s\n",
        report.examples, report.steps, comm->size(), report.first_loss, report.last_epoch_loss,
        report.truncated, args.options.output, report.seconds);
  }
  return 0;
}

}  // namespace

Command add_sft_command(CLI::App& app) {
  auto args = std::make_shared<SftArgs>();
  demo::SftOptions& o = args->options;
  auto* sub = app.add_subcommand(
      "sft",
      "Fine-tune a causal LM on JSONL prompt/completion pairs ({\"prompt\", \"completion\"}), "
      "JSONL texts ({\"text\"}) or plain text (one text per line); data-parallel under mpirun; "
      "saves a Hugging Face folder. Options may also come from a TOML file (--config)");
  sub->set_config("--config", "",
                  "Read the options from this TOML file (keys as the long options)");
  auto* model = sub->add_option("--model", o.model, "Model folder to start from (Hugging Face)");
  auto* init = sub->add_option("--init-config", o.init_config,
                               "config.json to start from weights drawn from --seed instead");
  model->excludes(init);
  sub->add_option("--tokenizer", o.tokenizer,
                  "Folder with tokenizer.json; default: the model folder or the config's folder");
  sub->add_option("--data", o.data, "Training data (.jsonl/.json: JSONL, else plain text)")
      ->required();
  sub->add_option("--format", o.data_format, "Data format")
      ->check(CLI::IsMember({"auto", "jsonl", "text"}));
  sub->add_option("--output", o.output, "Folder to save the trained model in")->required();
  sub->add_option("--epochs", o.epochs, "Passes over the data")->check(CLI::PositiveNumber);
  sub->add_option("--lr", o.lr, "Peak learning rate of AdamW")->check(CLI::Range(0.0, 1.0));
  sub->add_option("--batch", o.batch, "Examples per step, over all ranks")
      ->check(CLI::PositiveNumber);
  sub->add_option("--seed", o.seed, "Seed of the initial weights and of the data order");
  sub->add_flag("--completion-only", o.completion_only,
                "Train on the completion tokens only (and the end-of-sequence token)");
  sub->add_option("--weight-decay", o.weight_decay, "AdamW decoupled weight decay")
      ->check(CLI::NonNegativeNumber);
  sub->add_option("--warmup", o.warmup_steps, "Linear learning-rate warmup, in steps")
      ->check(CLI::NonNegativeNumber);
  sub->add_option("--schedule", o.schedule, "Learning rate after warmup")
      ->check(CLI::IsMember({"constant", "cosine"}));
  sub->add_option("--max-grad-norm", o.max_grad_norm, "Clip the gradient norm; 0: no clipping")
      ->check(CLI::NonNegativeNumber);
  sub->add_option("--max-length", o.max_length,
                  "Longest sequence in tokens (longer ones are cut); 0: the model's positions")
      ->check(CLI::NonNegativeNumber);
  sub->add_option("--log-every", o.log_every, "Steps between progress lines")
      ->check(CLI::PositiveNumber);
  sub->add_option("--device", o.device, "Where to train")
      ->check(CLI::IsMember({"auto", "cpu", "cuda"}));
  sub->add_option("--threads", args->threads, "Compute threads per rank; 0: cores / ranks")
      ->check(CLI::NonNegativeNumber);
  return {sub, [args] { return run_sft_command(*args); }};
}

}  // namespace alignpro
