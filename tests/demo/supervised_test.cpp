// Supervised training: the data readers' errors, sft learning a small task (with the loss on the
// completions only where asked), fit-reward learning a preference, and the Hugging Face folders
// they save.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>

#include "common/error.h"
#include "demo/bpe_trainer.h"
#include "demo/model_init.h"
#include "demo/supervised.h"
#include "demo/supervised_data.h"
#include "demo_test_util.h"
#include "model/config.h"
#include "model/generate.h"
#include "model/scoring.h"
#include "text/tokenizer.h"

namespace alignpro::demo {
namespace {

using ::testing::HasSubstr;

std::string error_of(const std::function<void()>& run) {
  try {
    run();
  } catch (const InputError& e) {
    return e.what();
  }
  return "(no InputError)";
}

TEST(SupervisedData, ReadsPairsTextsAndPlainLines) {
  const std::string dir = testing::scratch_dir("data_ok");
  const std::string jsonl = testing::write_file(
      dir + "/a.jsonl", "{\"prompt\": \"Q\", \"completion\": \"A\"}\n\n{\"text\": \"whole\"}\r\n");
  const auto records = read_sft_data(jsonl);
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(records[0].prompt, "Q");
  EXPECT_EQ(records[0].completion, "A");
  EXPECT_FALSE(records[0].plain_text);
  EXPECT_TRUE(records[1].plain_text);
  EXPECT_EQ(records[1].completion, "whole");
  EXPECT_EQ(records[1].line, 3);
  const std::string text = testing::write_file(dir + "/b.txt", "one line\ntwo {\"x\"}\n");
  const auto lines = read_sft_data(text);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[1].completion, "two {\"x\"}");
}

TEST(SupervisedData, BadLinesNameTheFileAndLine) {
  const std::string dir = testing::scratch_dir("data_bad");
  auto sft_error = [&](const std::string& name, const std::string& text) {
    const std::string path = testing::write_file(dir + "/" + name, text);
    return error_of([&] { read_sft_data(path); });
  };
  const std::string good = "{\"prompt\": \"p\", \"completion\": \"c\"}\n";
  EXPECT_THAT(sft_error("json.jsonl", good + good + "{\"prompt\": \n"),
              HasSubstr("json.jsonl:3: not valid JSON"));
  EXPECT_THAT(sft_error("missing.jsonl", good + "{\"prompt\": \"p\"}\n"),
              HasSubstr("missing.jsonl:2: no \"completion\" field"));
  EXPECT_THAT(sft_error("type.jsonl", "{\"prompt\": 3, \"completion\": \"c\"}\n"),
              HasSubstr("type.jsonl:1: field \"prompt\" must be a string, found 3"));
  EXPECT_THAT(sft_error("array.jsonl", "[1, 2]\n"),
              HasSubstr("array.jsonl:1: expected a JSON object"));
  EXPECT_THAT(sft_error("utf8.txt", "fine\nbad \xff byte\n"),
              HasSubstr("utf8.txt:2: the line is not valid UTF-8 (malformed byte at offset 4)"));
  EXPECT_THAT(sft_error("empty.jsonl", "\n  \n"), HasSubstr("empty.jsonl: holds no training"));
  EXPECT_THAT(error_of([&] { read_sft_data(dir + "/absent.jsonl"); }),
              HasSubstr("absent.jsonl: cannot open"));

  const std::string pairs =
      testing::write_file(dir + "/pairs.jsonl",
                          "{\"prompt\": \"p\", \"chosen\": \"a\", \"rejected\": \"b\"}\n"
                          "{\"prompt\": \"p\", \"chosen\": \"\", \"rejected\": \"b\"}\n");
  EXPECT_THAT(error_of([&] { read_preference_data(pairs); }),
              HasSubstr("pairs.jsonl:2: field \"chosen\" is empty"));
  const std::string no_rejected =
      testing::write_file(dir + "/norej.jsonl", "{\"prompt\": \"p\", \"chosen\": \"a\"}\n");
  EXPECT_THAT(error_of([&] { read_preference_data(no_rejected); }),
              HasSubstr("norej.jsonl:1: no \"rejected\" field"));
}

// A tokenizer and a one-layer model config for a small task, in `dir`.
struct TinySetup {
  std::string dir;
  std::string config;  // config.json of a random model, beside the tokenizer
};

TinySetup tiny_setup(const std::string& name, const std::vector<std::string>& corpus) {
  TinySetup setup;
  setup.dir = testing::scratch_dir(name);
  BpeTrainOptions bpe;
  bpe.vocab_size = 2 + 256 + 40;
  const BpeVocabulary vocabulary = train_byte_level_bpe(corpus, bpe);
  write_tokenizer(vocabulary, setup.dir, 64);
  TinyLlamaSpec spec;
  spec.vocab_size = static_cast<int64_t>(vocabulary.tokens.size());
  spec.hidden_size = 32;
  spec.intermediate_size = 64;
  spec.layers = 1;
  spec.heads = 2;
  spec.kv_heads = 1;
  spec.max_positions = 64;
  setup.config = setup.dir + "/config.json";
  testing::write_file(setup.config, tiny_llama_config(spec).dump(2));
  return setup;
}

const std::vector<std::pair<std::string, std::string>>& qa_pairs() {
  static const std::vector<std::pair<std::string, std::string>> pairs = {
      {"Q: sky\nA:", " blue"},   {"Q: grass\nA:", " green"}, {"Q: snow\nA:", " white"},
      {"Q: coal\nA:", " black"}, {"Q: blood\nA:", " red"},   {"Q: sun\nA:", " yellow"},
  };
  return pairs;
}

std::string qa_jsonl() {
  std::string text;
  for (const auto& [prompt, completion] : qa_pairs()) {
    text += nlohmann::json{{"prompt", prompt}, {"completion", completion}}.dump() + "\n";
  }
  return text;
}

std::vector<std::string> qa_corpus() {
  std::vector<std::string> corpus;
  for (const auto& [prompt, completion] : qa_pairs()) corpus.push_back(prompt + completion);
  return corpus;
}

SftOptions qa_options(const TinySetup& setup, const std::string& output) {
  SftOptions options;
  options.init_config = setup.config;
  options.data = testing::write_file(setup.dir + "/qa.jsonl", qa_jsonl());
  options.output = output;
  options.epochs = 60;
  options.batch = 6;
  options.lr = 1e-2;
  options.seed = 3;
  options.warmup_steps = 5;
  options.log_every = 1000;
  return options;
}

// The mean token log-probability, under a saved model, of the answers given their questions
// (completion) or of the questions' tokens after their first.
double mean_logprob(const std::string& folder, bool completion) {
  auto model = load_model(folder);
  const Tokenizer tokenizer = Tokenizer::from_folder(folder);
  double sum = 0, count = 0;
  for (const auto& [prompt, answer] : qa_pairs()) {
    std::vector<int64_t> ids = tokenizer.encode(prompt);
    std::vector<int64_t> head(ids.begin(), ids.begin() + 1);
    std::vector<int64_t> rest(ids.begin() + 1, ids.end());
    if (completion) {
      head = ids;
      rest = tokenizer.encode(answer, false);
    }
    const auto scores = score_continuations(*model, {head}, {rest});
    sum += scores.sums[0].item<double>();
    count += static_cast<double>(rest.size());
  }
  return sum / count;
}

TEST(Sft, LearnsATinyTaskAndSavesAHuggingFaceFolder) {
  const TinySetup setup = tiny_setup("sft_task", qa_corpus());
  auto comm = make_local_communicator();
  SftOptions options = qa_options(setup, setup.dir + "/trained");
  options.completion_only = true;
  const TrainingReport report = run_sft(*comm, options);
  EXPECT_EQ(report.examples, 6);
  EXPECT_EQ(report.steps, 60);
  EXPECT_LT(report.last_epoch_loss, 0.2 * report.first_loss);

  namespace fs = std::filesystem;
  for (const char* name : {"config.json", "model.safetensors", "generation_config.json",
                           "tokenizer.json", "tokenizer_config.json"}) {
    EXPECT_TRUE(fs::exists(fs::path(options.output) / name)) << name;
  }
  const auto generation =
      nlohmann::json::parse(testing::read_file(options.output + "/generation_config.json"));
  EXPECT_EQ(generation.at("eos_token_id"), 1);
  EXPECT_EQ(generation.at("pad_token_id"), 0);

  // The saved model answers every question, through the real generation code.
  auto model = load_model(options.output);
  const Tokenizer tokenizer = Tokenizer::from_folder(options.output);
  GenerateOptions greedy;
  greedy.greedy = true;
  greedy.max_new_tokens = 8;
  greedy.stop_token_ids = {1};
  greedy.decode = [&](const std::vector<int64_t>& ids) { return tokenizer.decode(ids); };
  std::vector<RngStream> streams;
  for (const auto& [prompt, answer] : qa_pairs()) {
    const auto out = generate(*model, {tokenizer.encode(prompt)}, greedy, streams);
    EXPECT_EQ(out[0].text, answer) << prompt;
    EXPECT_EQ(out[0].finish, FinishReason::kStopToken);
  }
}

TEST(Sft, CompletionOnlyLeavesThePromptUnlearned) {
  const TinySetup setup = tiny_setup("sft_mask", qa_corpus());
  auto comm = make_local_communicator();
  SftOptions masked = qa_options(setup, setup.dir + "/masked");
  masked.completion_only = true;
  run_sft(*comm, masked);
  SftOptions full = qa_options(setup, setup.dir + "/full");
  run_sft(*comm, full);
  // Both learn the answers (a uniform guess over the ~300 tokens scores -5.7); only the full
  // loss learns the questions' own tokens.
  EXPECT_GT(mean_logprob(masked.output, true), -1.5);
  EXPECT_GT(mean_logprob(full.output, true), -1.5);
  const double masked_prompt = mean_logprob(masked.output, false);
  const double full_prompt = mean_logprob(full.output, false);
  EXPECT_GT(full_prompt, masked_prompt + 1.0) << full_prompt << " vs " << masked_prompt;
}

TEST(Sft, RejectsBadOptionsAndBadData) {
  const TinySetup setup = tiny_setup("sft_bad", qa_corpus());
  auto comm = make_local_communicator();
  SftOptions options = qa_options(setup, setup.dir + "/out");
  options.model = setup.dir;  // both a model and an init config
  EXPECT_THAT(error_of([&] { run_sft(*comm, options); }), HasSubstr("exactly one of --model"));
  options.model.clear();
  options.data = testing::write_file(setup.dir + "/bad.jsonl", qa_jsonl() + "{\"prompt\": 1}\n");
  EXPECT_THAT(error_of([&] { run_sft(*comm, options); }), HasSubstr("bad.jsonl:7: field"));
  EXPECT_FALSE(std::filesystem::exists(options.output));
}

TEST(SftCommand, BadDataLineExitsWithCodeTwoAndNamesTheLine) {
  const TinySetup setup = tiny_setup("sft_cli", qa_corpus());
  const std::string data = testing::write_file(setup.dir + "/bad.jsonl", qa_jsonl() + "oops\n");
  const std::string log = setup.dir + "/log.txt";
  const std::string command = std::string(ALIGNPRO_BINARY) + " sft --init-config " + setup.config +
                              " --data " + data + " --output " + setup.dir + "/out > " + log +
                              " 2>&1";
  const int status = std::system(command.c_str());
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 2);
  EXPECT_THAT(testing::read_file(log), HasSubstr("bad.jsonl:7: not valid JSON"));
}

std::string preference_jsonl() {
  // The chosen answer names the prompt's colour; the rejected one a wrong colour.
  std::string text;
  const std::vector<std::string> colours = {"blue", "green", "white", "black", "red", "yellow"};
  for (size_t i = 0; i < colours.size(); ++i) {
    for (size_t j = 0; j < colours.size(); ++j) {
      if (i == j) continue;
      text += nlohmann::json{{"prompt", "Say " + colours[i] + "."},
                             {"chosen", " " + colours[i]},
                             {"rejected", " " + colours[j]}}
                  .dump() +
              "\n";
    }
  }
  return text;
}

TEST(FitReward, LearnsAPreferenceAndSavesAOneLabelClassifier) {
  std::vector<std::string> corpus;
  for (const char* c : {"blue", "green", "white", "black", "red", "yellow"}) {
    corpus.push_back(std::string("Say ") + c + ". " + c);
  }
  const TinySetup setup = tiny_setup("reward_task", corpus);
  auto comm = make_local_communicator();
  RewardFitOptions options;
  options.init_config = setup.config;
  options.data = testing::write_file(setup.dir + "/pairs.jsonl", preference_jsonl());
  options.eval_data = options.data;
  options.output = setup.dir + "/reward";
  options.epochs = 40;
  options.batch = 10;
  options.lr = 1e-2;
  options.warmup_steps = 5;
  options.log_every = 1000;
  const TrainingReport report = run_fit_reward(*comm, options);
  EXPECT_EQ(report.examples, 30);
  EXPECT_LT(report.last_epoch_loss, 0.3 * report.first_loss);
  EXPECT_GT(report.eval_accuracy, 0.95);

  const ModelConfig config = read_model_config(options.output);
  EXPECT_EQ(config.architecture, "LlamaForSequenceClassification");
  EXPECT_EQ(config.num_labels, 1);
  EXPECT_EQ(config.pad_token_id, std::optional<int64_t>(0));
  EXPECT_DOUBLE_EQ(preference_accuracy(options.output, options.data, "{prompt}{response}"),
                   report.eval_accuracy);
}

TEST(FitReward, ACausalModelGivesItsBodyToTheRewardModel) {
  const TinySetup setup = tiny_setup("reward_body", qa_corpus());
  auto comm = make_local_communicator();
  SftOptions sft = qa_options(setup, setup.dir + "/lm");
  sft.epochs = 2;
  run_sft(*comm, sft);
  auto lm = load_model(sft.output);
  const ModelConfig config = parse_model_config(
      reward_config_text(lm->config().json, 0, "lm/config.json"), "reward config");
  auto reward = make_model(config, torch::kCPU, torch::kFloat32);
  init_weights(*reward, 1);
  const int64_t copied = copy_matching_weights(*reward, sft.output);
  // Every tensor but the new head comes from the LM.
  EXPECT_EQ(copied, static_cast<int64_t>(reward->named_parameters().size()) - 1);
  const auto lm_params = lm->named_parameters();
  for (const auto& item : reward->named_parameters()) {
    if (item.key() == "score.weight") continue;
    EXPECT_TRUE(torch::equal(item.value(), lm_params[item.key()])) << item.key();
  }
  EXPECT_THAT(error_of([&] { reward_config_text("{\"architectures\": [\"Bert\"]}", 0, "c.json"); }),
              HasSubstr("c.json: key \"architectures\" must name one causal LM"));
}

}  // namespace
}  // namespace alignpro::demo
