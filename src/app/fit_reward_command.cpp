// `alignpro fit-reward`: train a reward model (a sequence classifier with one label) on
// preference pairs with the Bradley-Terry loss, on one rank or data-parallel under mpirun, and
// save it in Hugging Face layout.
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

struct FitRewardArgs {
  demo::RewardFitOptions options;
  int threads = 0;
};

int run_fit_reward_command(const FitRewardArgs& args) {
  MpiSession session(nullptr, nullptr);
  const auto comm = session.world();
  init_logging(comm->rank(), comm->size());
  configure_threads(args.threads, comm->local_size());
  const demo::TrainingReport report = demo::run_fit_reward(*comm, args.options);
  if (comm->is_coordinator()) {
    std::cout << fmt::format(
        "fit-reward: {} pairs, {} steps on {} rank(s), loss {:.4f} -> {:.4f} (last epoch), "
        "training accuracy {:.3f}{}; saved {} in {:.1f}s\n",
        report.examples, report.steps, comm->size(), report.first_loss, report.last_epoch_loss,
        report.train_accuracy,
        report.eval_accuracy >= 0 ? fmt::format(", held-out accuracy {:.3f}", report.eval_accuracy)
                                  : "",
        args.options.output, report.seconds);
  }
  return 0;
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
  auto* model = sub->add_option(
      "--model", o.model,
      "Model folder to start from: a causal LM gets a new one-label head on its body");
  auto* init = sub->add_option("--init-config", o.init_config,
                               "config.json to start from weights drawn from --seed instead");
  model->excludes(init);
  sub->add_option("--tokenizer", o.tokenizer,
                  "Folder with tokenizer.json; default: the model folder or the config's folder");
  sub->add_option("--data", o.data, "Preference pairs (JSONL)")->required();
  sub->add_option("--eval-data", o.eval_data,
                  "Held-out preference pairs whose accuracy is reported after training");
  sub->add_option("--template", o.template_text,
                  "How the model reads a pair, with {prompt} and {response} (as the job's "
                  "reward.template)");
  sub->add_option("--output", o.output, "Folder to save the reward model in")->required();
  sub->add_option("--epochs", o.epochs, "Passes over the data")->check(CLI::PositiveNumber);
  sub->add_option("--lr", o.lr, "Peak learning rate of AdamW")->check(CLI::Range(0.0, 1.0));
  sub->add_option("--batch", o.batch, "Pairs per step, over all ranks")->check(CLI::PositiveNumber);
  sub->add_option("--seed", o.seed, "Seed of the initial weights and of the data order");
  sub->add_option("--weight-decay", o.weight_decay, "AdamW decoupled weight decay")
      ->check(CLI::NonNegativeNumber);
  sub->add_option("--warmup", o.warmup_steps, "Linear learning-rate warmup, in steps")
      ->check(CLI::NonNegativeNumber);
  sub->add_option("--schedule", o.schedule, "Learning rate after warmup")
      ->check(CLI::IsMember({"constant", "cosine"}));
  sub->add_option("--max-grad-norm", o.max_grad_norm, "Clip the gradient norm; 0: no clipping")
      ->check(CLI::NonNegativeNumber);
  sub->add_option("--max-length", o.max_length,
                  "Longest sequence in tokens (longer ones keep their end); 0: the model's "
                  "positions")
      ->check(CLI::NonNegativeNumber);
  sub->add_option("--log-every", o.log_every, "Steps between progress lines")
      ->check(CLI::PositiveNumber);
  sub->add_option("--device", o.device, "Where to train")
      ->check(CLI::IsMember({"auto", "cpu", "cuda"}));
  sub->add_option("--threads", args->threads, "Compute threads per rank; 0: cores / ranks")
      ->check(CLI::NonNegativeNumber);
  return {sub, [args] { return run_fit_reward_command(*args); }};
}

}  // namespace alignpro
