// Supervised training, data-parallel across MPI ranks with the same gradient aggregation as
// Align-Pro training (align/gradient_sync.h): causal-LM fine-tuning (`alignpro sft`) and
// Bradley-Terry reward modelling (`alignpro fit-reward`). Both make the demo's models and serve
// real models alike, and both save a Hugging Face folder (config.json, model.safetensors,
// generation_config.json and the tokenizer's files) that transformers and alignpro load.
//
// Every rank reads the whole data set and derives the same batches from the seed; rank r takes
// a contiguous slice of each global batch, and the summed gradients are divided by the global
// count (tokens for sft, pairs for fit-reward), so the update equals a single-process one.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "dist/communicator.h"

namespace alignpro::demo {

struct TrainingOptions {
  std::string model;        // a Hugging Face model folder to start from, or
  std::string init_config;  // a config.json to start from weights drawn from the seed
  // Folder with tokenizer.json (and tokenizer_config.json); empty: the model folder, or the
  // folder of init_config.
  std::string tokenizer;
  std::string data;
  std::string data_format = "auto";  // auto, jsonl, text (sft only)
  std::string output;                // folder to save the trained model in
  int64_t epochs = 1;
  double lr = 1e-3;    // peak learning rate of AdamW
  int64_t batch = 32;  // examples (sft) or pairs (fit-reward) per step, over all ranks
  uint64_t seed = 0;   // initial weights, data order
  double weight_decay = 0.0;
  int64_t warmup_steps = 0;
  std::string schedule = "cosine";  // constant or cosine after warmup
  double max_grad_norm = 1.0;       // 0: no clipping
  int64_t max_length = 0;           // tokens per sequence; 0: the model's max positions
  int64_t log_every = 10;           // steps between progress lines
  std::string device = "cpu";       // auto, cpu or cuda; training is always in float32
};

struct SftOptions : TrainingOptions {
  // The loss covers only the completion tokens (and the end-of-sequence token after them);
  // otherwise every token of prompt and completion after the first.
  bool completion_only = false;
};

struct RewardFitOptions : TrainingOptions {
  // How the reward model reads a (prompt, response) pair, as a job's reward.template.
  std::string template_text = "{prompt}{response}";
  // Held-out preference pairs whose accuracy is reported after training; empty: none.
  std::string eval_data;
};

struct TrainingReport {
  int64_t examples = 0;  // records (sft) or pairs (fit-reward) in the data
  int64_t steps = 0;
  int64_t truncated = 0;       // sequences cut to max_length
  double first_loss = 0;       // mean loss of the first step
  double last_epoch_loss = 0;  // mean loss over the last epoch
  double train_accuracy = -1;  // fit-reward: share of last-epoch pairs ranked right
  double eval_accuracy = -1;   // fit-reward with eval_data: share of held-out pairs ranked right
  double seconds = 0;
};

// Fine-tunes a causal LM on options.data and saves it to options.output (on rank 0).
TrainingReport run_sft(Communicator& comm, const SftOptions& options);

// Trains a reward model (a *ForSequenceClassification checkpoint with one label) on preference
// pairs with the loss -log sigmoid(r_chosen - r_rejected) and saves it to options.output. A
// causal-LM starting point gets a new one-label head on its body.
TrainingReport run_fit_reward(Communicator& comm, const RewardFitOptions& options);

// Accuracy of a saved reward model on preference pairs: the share with r_chosen > r_rejected.
double preference_accuracy(const std::string& reward_folder, const std::string& pairs_path,
                           const std::string& template_text);

}  // namespace alignpro::demo
