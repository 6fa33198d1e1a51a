// Making every asset of the demo from nothing: the world's data files, a tokenizer learned from
// them, and the three models (reference prompter, frozen target, reward model) trained with
// the sft and fit-reward code; then a measurement of how the models behave, saved beside them.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "demo/supervised.h"
#include "demo/world.h"
#include "demo/world_probe.h"
#include "dist/communicator.h"

namespace alignpro::demo {

// How one model is trained.
struct ModelRecipe {
  int64_t hidden_size = 64;
  int64_t intermediate_size = 192;
  int64_t layers = 2;
  int64_t heads = 4;
  int64_t kv_heads = 2;
  int64_t epochs = 3;
  double lr = 3e-3;
  int64_t batch = 32;
  int64_t warmup_steps = 20;
};

struct MakeDemoOptions {
  std::string output = "demo";
  WorldConfig world;
  int64_t vocab_size = 640;
  int64_t max_positions = 128;
  ModelRecipe target{96, 256, 2, 4, 2, 6, 3e-3, 32, 50};
  ModelRecipe prompter{96, 256, 2, 4, 2, 8, 3e-3, 32, 50};
  ModelRecipe reward{0, 0, 0, 0, 0, 3, 1e-3, 32, 20};  // on the target's body
};

// Folders and files under MakeDemoOptions::output.
struct DemoLayout {
  std::string data;       // the world's JSONL files
  std::string tokenizer;  // tokenizer.json, tokenizer_config.json
  std::string configs;    // the init configs of the target and the prompter
  std::string target;
  std::string prompter;
  std::string reward;
  std::string report;  // world_report.json
};
DemoLayout demo_layout(const std::string& output);

struct MakeDemoReport {
  double seconds = 0;
  TrainingReport target, prompter, reward;
  int64_t vocab_size = 0;
  // On the held-out prompts: greedy and sampled target behaviour, and the prompter's rewrites.
  std::vector<WordingStats> greedy, sampled;
  PrompterStats prompter_greedy, prompter_sampled;
  double reward_eval_accuracy = 0;
};

// Makes everything; rank 0 writes the files. Logs each stage.
MakeDemoReport make_demo(Communicator& comm, const MakeDemoOptions& options);

// The measurements of a finished demo folder, as world_report.json stores them.
MakeDemoReport probe_demo(const std::string& output, const WorldConfig& world);

// A Markdown table of the measurements.
std::string describe_report(const MakeDemoReport& report);

}  // namespace alignpro::demo
