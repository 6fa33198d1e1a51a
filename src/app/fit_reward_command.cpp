// `alignpro fit-reward`: train a reward model (a sequence classifier with one label) on
// preference pairs with the Bradley-Terry loss, on one rank or data-parallel under mpirun, and
// save it in Hugging Face layout.
#include <fmt/format.h>

#include <iostream>
#include <memory>

#include "app/command.h"
#include "app/supervised_options.h"

namespace alignpro {

namespace {

struct FitRewardArgs {
  demo::RewardFitOptions options;
  int threads = 0;
};

int run_fit_reward_command(const FitRewardArgs& args) {
  return run_on_mpi_world(args.threads, [&args](Communicator& comm) {
    const demo::TrainingReport report = demo::run_fit_reward(comm, args.options);
    if (comm.is_coordinator()) {
      std::cout << fmt::format(
          "fit-reward: {} pairs, {} steps on {} rank(s), loss {:.4f} -> {:.4f} (last epoch), "
          "training accuracy {:.3f}{}; saved {} in {:.1f}s\n",
          report.examples, report.steps, comm.size(), report.first_loss, report.last_epoch_loss,
          report.train_accuracy,
          report.eval_accuracy >= 0
              ? fmt::format(", held-out accuracy {:.3f}", report.eval_accuracy)
              : "",
          args.options.output, report.seconds);
    }
    return 0;
  });
}

}  // namespace

Command add_fit_reward_command(CLI::App& app) {
  auto args = std::make_shared<FitRewardArgs>();
  demo::RewardFitOptions& o = args->options;
  auto* sub = app.add_subcommand(
      "fit-reward",
      "Train a reward model on JSONL preference pairs ({\"prompt\", \"chosen\", \"rejected\"}) "
      "with the loss -log sigmoid(r_chosen - r_rejected); data-parallel under mpirun; saves a "
      "Hugging Face *ForSequenceClassification folder. Options may also come from a TOML file");
  sub->set_config("--config", "",
                  "Read the options from this TOML file (keys as the long options)");
  sub->add_option("--data", o.data, "Preference pairs (JSONL)")->required();
  sub->add_option("--eval-data", o.eval_data,
                  "Held-out preference pairs whose accuracy is reported after training");
  sub->add_option("--template", o.template_text,
                  "How the model reads a pair, with {prompt} and {response} (as the job's "
                  "reward.template)");
  sub->add_option("--output", o.output, "Folder to save the reward model in")->required();
  add_training_options(
      *sub, o, args->threads,
      {"Model folder to start from: a causal LM gets a new one-label head on its body",
       "Pairs per step, over all ranks",
       "Longest sequence in tokens (longer ones keep their end); 0: the model's positions"});
  return {sub, [args] { return run_fit_reward_command(*args); }};
}

}  // namespace alignpro
