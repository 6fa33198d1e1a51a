// `alignpro sft`: fine-tune a causal LM on prompt/completion pairs or plain text, on one rank or
// data-parallel under mpirun, and save it in Hugging Face layout.
#include <fmt/format.h>

#include <iostream>
#include <memory>

#include "app/command.h"
#include "app/supervised_options.h"

namespace alignpro {

namespace {

struct SftArgs {
  demo::SftOptions options;
  int threads = 0;
};

int run_sft_command(const SftArgs& args) {
  return run_on_mpi_world(args.threads, [&args](Communicator& comm) {
    const demo::TrainingReport report = demo::run_sft(comm, args.options);
    if (comm.is_coordinator()) {
      std::cout << fmt::format(
          "sft: {} examples, {} steps on {} rank(s), loss {:.4f} -> {:.4f} (last epoch), {} "
          "truncated; saved {} in {:.1f}s\n",
          report.examples, report.steps, comm.size(), report.first_loss, report.last_epoch_loss,
          report.truncated, args.options.output, report.seconds);
    }
    return 0;
  });
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
  sub->add_option("--data", o.data, "Training data (.jsonl/.json: JSONL, else plain text)")
      ->required();
  sub->add_option("--format", o.data_format, "Data format")
      ->check(CLI::IsMember({"auto", "jsonl", "text"}));
  sub->add_option("--output", o.output, "Folder to save the trained model in")->required();
  sub->add_flag("--completion-only", o.completion_only,
                "Train on the completion tokens only (and the end-of-sequence token)");
  add_training_options(
      *sub, o, args->threads,
      {"Model folder to start from (Hugging Face)", "Examples per step, over all ranks",
       "Longest sequence in tokens (longer ones are cut); 0: the model's positions"});
  return {sub, [args] { return run_sft_command(*args); }};
}

}  // namespace alignpro
