// Data-parallel supervised training: sft and fit-reward on the MPI world give the weights a
// single process gets on the same data, batches and seed.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <filesystem>

#include "demo/bpe_trainer.h"
#include "demo/model_init.h"
#include "demo/supervised.h"
#include "demo_test_util.h"
#include "dist/communicator.h"
#include "model/transformer.h"
#include "support/mpi_world.h"

namespace alignpro::demo {
namespace {

Communicator& world() {
  return testing::mpi_world();
}

// A folder every rank agrees on (rank 0's scratch folder).
std::string shared_dir(const std::string& name) {
  std::string dir = world().is_coordinator() ? testing::scratch_dir(name) : std::string();
  world().barrier("scratch folder");
  return world().broadcast(dir, 0, "scratch folder");
}

// Rank 0 writes a tokenizer, a random-model config and data; returns the folder.
std::string prepare(const std::string& name) {
  const std::string dir = shared_dir(name);
  if (world().is_coordinator()) {
    std::vector<std::string> corpus;
    std::string sft, pairs;
    const std::vector<std::string> words = {"alpha", "beta",  "gamma", "delta",
                                            "omega", "sigma", "kappa"};
    for (size_t i = 0; i < words.size(); ++i) {
      const std::string& w = words[i];
      const std::string& next = words[(i + 1) % words.size()];
      corpus.push_back("after " + w + " comes " + next);
      sft +=
          nlohmann::json{{"prompt", "after " + w}, {"completion", " comes " + next}}.dump() + "\n";
      pairs +=
          nlohmann::json{{"prompt", "after " + w}, {"chosen", " " + next}, {"rejected", " " + w}}
              .dump() +
          "\n";
    }
    BpeTrainOptions bpe;
    bpe.vocab_size = 2 + 256 + 30;
    const BpeVocabulary vocabulary = train_byte_level_bpe(corpus, bpe);
    write_tokenizer(vocabulary, dir, 64);
    TinyLlamaSpec spec;
    spec.vocab_size = static_cast<int64_t>(vocabulary.tokens.size());
    spec.hidden_size = 32;
    spec.intermediate_size = 64;
    spec.layers = 2;
    spec.heads = 2;
    spec.kv_heads = 2;
    spec.max_positions = 64;
    testing::write_file(dir + "/config.json", tiny_llama_config(spec).dump(2));
    testing::write_file(dir + "/sft.jsonl", sft);
    testing::write_file(dir + "/pairs.jsonl", pairs);
  }
  world().barrier("test data");
  return dir;
}

// The largest difference between two saved models' tensors, relative to the largest value.
double relative_difference(const std::string& a, const std::string& b) {
  auto first = load_model(a);
  auto second = load_model(b);
  const auto other = second->named_parameters();
  double diff = 0, scale = 0;
  for (const auto& item : first->named_parameters()) {
    diff = std::max(diff, (item.value() - other[item.key()]).abs().max().item<double>());
    scale = std::max(scale, item.value().abs().max().item<double>());
  }
  return diff / scale;
}

template <class Options>
void fill(Options& options, const std::string& dir) {
  options.init_config = dir + "/config.json";
  options.epochs = 4;
  options.batch = 5;  // uneven: 7 records make batches of 5 and 2, so some ranks get nothing
  options.lr = 3e-3;
  options.seed = 8;
  options.log_every = 1000;
}

// Float sums in another order differ in the last bits; Adam turns that into relative weight
// differences of about 1e-6 after these few steps.
constexpr double kTolerance = 1e-4;

TEST(SupervisedMpi, SftAcrossRanksEqualsOneProcess) {
  const std::string dir = prepare("sft_mpi");
  SftOptions options;
  fill(options, dir);
  options.data = dir + "/sft.jsonl";
  options.completion_only = true;
  options.output = dir + "/world";
  const TrainingReport report = run_sft(world(), options);
  EXPECT_EQ(report.steps, 8);
  if (world().is_coordinator()) {
    auto local = make_local_communicator();
    options.output = dir + "/single";
    run_sft(*local, options);
    EXPECT_LT(relative_difference(dir + "/world", dir + "/single"), kTolerance);
  }
  world().barrier("sft compared");
}

TEST(SupervisedMpi, FitRewardAcrossRanksEqualsOneProcess) {
  const std::string dir = prepare("reward_mpi");
  RewardFitOptions options;
  fill(options, dir);
  options.data = dir + "/pairs.jsonl";
  options.output = dir + "/world";
  run_fit_reward(world(), options);
  if (world().is_coordinator()) {
    auto local = make_local_communicator();
    options.output = dir + "/single";
    run_fit_reward(*local, options);
    EXPECT_LT(relative_difference(dir + "/world", dir + "/single"), kTolerance);
  }
  world().barrier("fit-reward compared");
}

}  // namespace
}  // namespace alignpro::demo
