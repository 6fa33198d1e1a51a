#include "app/supervised_options.h"

#include "common/log.h"
#include "common/threads.h"

namespace alignpro {

void add_training_options(CLI::App& sub, demo::TrainingOptions& o, int& threads,
                          const TrainingOptionHelp& help) {
  auto* model = sub.add_option("--model", o.model, help.model);
  auto* init = sub.add_option("--init-config", o.init_config,
                              "config.json to start from weights drawn from --seed instead");
  model->excludes(init);
  sub.add_option("--tokenizer", o.tokenizer,
                 "Folder with tokenizer.json; default: the model folder or the config's folder");
  sub.add_option("--epochs", o.epochs, "Passes over the data")->check(CLI::PositiveNumber);
  sub.add_option("--lr", o.lr, "Peak learning rate of AdamW")->check(CLI::Range(0.0, 1.0));
  sub.add_option("--batch", o.batch, help.batch)->check(CLI::PositiveNumber);
  sub.add_option("--seed", o.seed, "Seed of the initial weights and of the data order");
  sub.add_option("--weight-decay", o.weight_decay, "AdamW decoupled weight decay")
      ->check(CLI::NonNegativeNumber);
  sub.add_option("--warmup", o.warmup_steps, "Linear learning-rate warmup, in steps")
      ->check(CLI::NonNegativeNumber);
  sub.add_option("--schedule", o.schedule, "Learning rate after warmup")
      ->check(CLI::IsMember({"constant", "cosine"}));
  sub.add_option("--max-grad-norm", o.max_grad_norm, "Clip the gradient norm; 0: no clipping")
      ->check(CLI::NonNegativeNumber);
  sub.add_option("--max-length", o.max_length, help.max_length)->check(CLI::NonNegativeNumber);
  sub.add_option("--log-every", o.log_every, "Steps between progress lines")
      ->check(CLI::PositiveNumber);
  sub.add_option("--device", o.device, "Where to train")
      ->check(CLI::IsMember({"auto", "cpu", "cuda"}));
  sub.add_option("--threads", threads, "Compute threads per rank; 0: cores / ranks")
      ->check(CLI::NonNegativeNumber);
}

int run_on_mpi_world(int threads, const std::function<int(Communicator&)>& body) {
  MpiSession session(nullptr, nullptr);
  const auto comm = session.world();
  init_logging(comm->rank(), comm->size());
  configure_threads(threads, comm->local_size());
  return body(*comm);
}

}  // namespace alignpro
