// What sft and fit-reward share: the tokenizer and model set-up, the data order, the
// data-parallel optimisation loop and saving the result in Hugging Face layout.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "demo/supervised.h"
#include "model/transformer.h"
#include "text/tokenizer.h"

namespace alignpro::demo {

struct TrainingSetup {
  std::shared_ptr<Transformer> model;
  std::unique_ptr<Tokenizer> tokenizer;
  std::string tokenizer_folder;
  torch::Device device = torch::kCPU;
  int64_t max_length = 0;
  int64_t pad_id = 0;
};

// Checks the options shared by both commands; throws InputError naming the option.
void check_training_options(const TrainingOptions& options);

// Reads the tokenizer and builds the model in float32: loaded from options.model, or from
// options.init_config with weights drawn from options.seed. With reward_head, a causal LM is
// given a one-label sequence-classification head on its body.
TrainingSetup setup_training(Communicator& comm, const TrainingOptions& options, bool reward_head);

// What one rank computes on its slice of a global batch.
struct LocalLoss {
  torch::Tensor loss_sum;  // summed loss with gradients; undefined for an empty slice
  double correct = 0;      // fit-reward: pairs ranked right
};

struct LoopFunctions {
  // The loss of the examples at these indices.
  std::function<LocalLoss(const std::vector<size_t>&)> local_loss;
  // What the summed loss of a global batch is divided by (its tokens or pairs); every rank
  // computes it from the whole batch.
  std::function<double(const std::vector<size_t>&)> global_count;
  // Whether local_loss counts pairs ranked right (shown and reported as accuracy).
  bool counts_correct = false;
};

// Runs options.epochs epochs over `examples` records in batches of options.batch, each epoch in
// the order drawn from RngStream(seed, kShuffle, {epoch}); prints a progress line tagged `tag`
// every options.log_every steps on rank 0. Fills steps, first_loss, last_epoch_loss and (when
// local_loss counts them) train_accuracy of the report.
void run_training_loop(Communicator& comm, TrainingSetup& setup, const TrainingOptions& options,
                       size_t examples, const LoopFunctions& functions, const char* tag,
                       TrainingReport& report);

// Rank 0 writes the model, generation_config.json and the tokenizer's files to `output`; every
// rank waits for it.
void save_trained_model(Communicator& comm, const TrainingSetup& setup, const std::string& output);

// Right-pads token rows with pad_id into one [rows, longest] int64 tensor on `device`.
torch::Tensor pad_rows(const std::vector<std::vector<int64_t>>& rows, int64_t pad_id,
                       torch::Device device);

}  // namespace alignpro::demo
