#include "demo/make_demo.h"

#include <nlohmann/json.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/error.h"
#include "common/log.h"
#include "demo/bpe_trainer.h"
#include "demo/model_init.h"
#include "text/tokenizer.h"

namespace alignpro::demo {

namespace {

namespace fs = std::filesystem;
using Json = nlohmann::ordered_json;

void write_json(const fs::path& path, const Json& json) {
  std::error_code error;
  fs::create_directories(path.parent_path(), error);
  if (error)
    throw RuntimeError(path.parent_path().string() + ": cannot create: " + error.message());
  std::ofstream out(path, std::ios::trunc);
  out << json.dump(2) << '\n';
  if (!out) throw RuntimeError(path.string() + ": write failed");
}

// Writes CONFIGS/NAME/config.json for a recipe and returns its path.
std::string write_init_config(const std::string& configs, const std::string& name,
                              const ModelRecipe& recipe, int64_t vocab_size, int64_t max_positions,
                              const Tokenizer& tokenizer) {
  TinyLlamaSpec spec;
  spec.vocab_size = vocab_size;
  spec.hidden_size = recipe.hidden_size;
  spec.intermediate_size = recipe.intermediate_size;
  spec.layers = recipe.layers;
  spec.heads = recipe.heads;
  spec.kv_heads = recipe.kv_heads;
  spec.max_positions = max_positions;
  spec.pad_token_id = tokenizer.pad_id().value_or(0);
  spec.eos_token_id = tokenizer.eos_id().value_or(1);
  const fs::path path = fs::path(configs) / name / "config.json";
  write_json(path, tiny_llama_config(spec));
  return path.string();
}

void apply_recipe(const ModelRecipe& recipe, uint64_t seed, TrainingOptions& options) {
  options.epochs = recipe.epochs;
  options.lr = recipe.lr;
  options.batch = recipe.batch;
  options.warmup_steps = recipe.warmup_steps;
  options.seed = seed;
  options.schedule = "cosine";
  options.weight_decay = 0.01;
  options.log_every = 25;
}

Json stats_json(const WordingStats& stats) {
  return Json{{"wording", wording_name(stats.wording)}, {"responses", stats.responses},
              {"helpful_rate", stats.helpful_rate},     {"vague_rate", stats.vague_rate},
              {"refusal_rate", stats.refusal_rate},     {"off_topic_rate", stats.off_topic_rate},
              {"mean_reward", stats.mean_reward}};
}

Json prompter_json(const PrompterStats& stats) {
  return Json{{"rewrites", stats.rewrites},
              {"copy_rate", stats.copy_rate},
              {"worded_rate", stats.worded_rate},
              {"topic_kept_rate", stats.topic_kept_rate}};
}

Json training_json(const TrainingReport& report) {
  Json json{{"examples", report.examples},
            {"steps", report.steps},
            {"first_loss", report.first_loss},
            {"last_epoch_loss", report.last_epoch_loss}};
  if (report.train_accuracy >= 0) json["train_accuracy"] = report.train_accuracy;
  if (report.eval_accuracy >= 0) json["eval_accuracy"] = report.eval_accuracy;
  return json;
}

}  // namespace

DemoLayout demo_layout(const std::string& output) {
  const fs::path root(output);
  return DemoLayout{(root / "data").string(),
                    (root / "tokenizer").string(),
                    (root / "configs").string(),
                    (root / "models" / "target").string(),
                    (root / "models" / "prompter").string(),
                    (root / "models" / "reward").string(),
                    (root / "world_report.json").string()};
}

MakeDemoReport probe_demo(const std::string& output, const WorldConfig& world) {
  const DemoLayout layout = demo_layout(output);
  LoadOptions load;
  load.dtype = torch::kFloat32;
  auto target = load_model(layout.target, load);
  auto prompter = load_model(layout.prompter, load);
  auto reward = load_model(layout.reward, load);
  const Tokenizer tokenizer = Tokenizer::from_folder(layout.tokenizer);
  const std::vector<UserPrompt> prompts = eval_prompts();

  MakeDemoReport report;
  report.vocab_size = tokenizer.vocab_size();
  ProbeOptions greedy;
  greedy.seed = world.seed;
  report.greedy = probe_target(*target, tokenizer, reward.get(), prompts, greedy);
  report.prompter_greedy = probe_prompter(*prompter, tokenizer, prompts, greedy);
  ProbeOptions sampled = greedy;
  sampled.greedy = false;
  sampled.samples = 4;
  report.sampled = probe_target(*target, tokenizer, reward.get(), prompts, sampled);
  report.prompter_sampled = probe_prompter(*prompter, tokenizer, prompts, sampled);
  report.reward_eval_accuracy = preference_accuracy(
      layout.reward, (fs::path(layout.data) / "reward_pairs_eval.jsonl").string(), kRewardTemplate);
  return report;
}

std::string describe_report(const MakeDemoReport& report) {
  std::ostringstream out;
  out << "| decoding | wording | helpful | vague | refusal | off topic | mean reward |\n"
      << "|---|---|---|---|---|---|---|\n";
  auto rows = [&](const char* decoding, const std::vector<WordingStats>& list) {
    for (const auto& s : list) {
      out << fmt::format("| {} | {} | {:.2f} | {:.2f} | {:.2f} | {:.2f} | {:+.2f} |\n", decoding,
                         wording_name(s.wording), s.helpful_rate, s.vague_rate, s.refusal_rate,
                         s.off_topic_rate, s.mean_reward);
    }
  };
  rows("greedy", report.greedy);
  rows("sampled", report.sampled);
  out << "\n| prompter decoding | copies | helpful wording | topic kept |\n|---|---|---|---|\n";
  for (const auto& [name, s] :
       {std::pair<const char*, PrompterStats>{"greedy", report.prompter_greedy},
        {"sampled", report.prompter_sampled}}) {
    out << fmt::format("| {} | {:.2f} | {:.2f} | {:.2f} |\n", name, s.copy_rate, s.worded_rate,
                       s.topic_kept_rate);
  }
  out << fmt::format("\nReward model accuracy on held-out preference pairs: {:.3f}\n",
                     report.reward_eval_accuracy);
  return out.str();
}

MakeDemoReport make_demo(Communicator& comm, const MakeDemoOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  const DemoLayout layout = demo_layout(options.output);
  const WorldConfig& world = options.world;

  // 1. The world's data, and a tokenizer learned from all of its text.
  if (comm.is_coordinator()) {
    write_world_files(world, layout.data);
    BpeTrainOptions bpe;
    bpe.vocab_size = options.vocab_size;
    const BpeVocabulary vocabulary = train_byte_level_bpe(world_corpus(world), bpe);
    write_tokenizer(vocabulary, layout.tokenizer, options.max_positions);
    spdlog::info("[make-demo] world data in {}; tokenizer of {} tokens ({} merges) in {}",
                 layout.data, vocabulary.tokens.size(), vocabulary.merges.size(), layout.tokenizer);
  }
  comm.barrier("make-demo data");
  const Tokenizer tokenizer = Tokenizer::from_folder(layout.tokenizer);
  const int64_t vocab = tokenizer.vocab_size();
  std::string target_config, prompter_config;
  if (comm.is_coordinator()) {
    target_config = write_init_config(layout.configs, "target", options.target, vocab,
                                      options.max_positions, tokenizer);
    prompter_config = write_init_config(layout.configs, "prompter", options.prompter, vocab,
                                        options.max_positions, tokenizer);
  }
  comm.barrier("make-demo configs");
  target_config = (fs::path(layout.configs) / "target" / "config.json").string();
  prompter_config = (fs::path(layout.configs) / "prompter" / "config.json").string();

  MakeDemoReport report;
  report.vocab_size = vocab;
  const fs::path data(layout.data);

  // 2. The frozen target: answers, trained on the completions only.
  SftOptions target;
  apply_recipe(options.target, world.seed + 1, target);
  target.init_config = target_config;
  target.tokenizer = layout.tokenizer;
  target.data = (data / "target_sft.jsonl").string();
  target.output = layout.target;
  target.completion_only = true;
  report.target = run_sft(comm, target);

  // 3. The reference prompter: rewrites, trained on the completions only.
  SftOptions prompter;
  apply_recipe(options.prompter, world.seed + 2, prompter);
  prompter.init_config = prompter_config;
  prompter.tokenizer = layout.tokenizer;
  prompter.data = (data / "prompter_sft.jsonl").string();
  prompter.output = layout.prompter;
  prompter.completion_only = true;
  report.prompter = run_sft(comm, prompter);

  // 4. The reward model, on the body of the target (as reward models start from an SFT model).
  RewardFitOptions reward;
  apply_recipe(options.reward, world.seed + 3, reward);
  reward.model = layout.target;
  reward.data = (data / "reward_pairs.jsonl").string();
  reward.eval_data = (data / "reward_pairs_eval.jsonl").string();
  reward.output = layout.reward;
  reward.template_text = kRewardTemplate;
  report.reward = run_fit_reward(comm, reward);

  // 5. How the models behave on the held-out prompts.
  if (comm.is_coordinator()) {
    const MakeDemoReport probe = probe_demo(options.output, world);
    report.greedy = probe.greedy;
    report.sampled = probe.sampled;
    report.prompter_greedy = probe.prompter_greedy;
    report.prompter_sampled = probe.prompter_sampled;
    report.reward_eval_accuracy = probe.reward_eval_accuracy;
  }
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (comm.is_coordinator()) {
    Json greedy = Json::array(), sampled = Json::array();
    for (const auto& s : report.greedy) greedy.push_back(stats_json(s));
    for (const auto& s : report.sampled) sampled.push_back(stats_json(s));
    write_json(layout.report, Json{{"seed", world.seed},
                                   {"vocab_size", report.vocab_size},
                                   {"held_out_prompts", eval_prompts().size()},
                                   {"target_greedy", greedy},
                                   {"target_sampled", sampled},
                                   {"prompter_greedy", prompter_json(report.prompter_greedy)},
                                   {"prompter_sampled", prompter_json(report.prompter_sampled)},
                                   {"reward_eval_accuracy", report.reward_eval_accuracy},
                                   {"training",
                                    {{"target", training_json(report.target)},
                                     {"prompter", training_json(report.prompter)},
                                     {"reward", training_json(report.reward)}}}});
    spdlog::info("[make-demo] done in {:.0f}s; measurements in {}:\n{}", report.seconds,
                 layout.report, describe_report(report));
  }
  comm.barrier("make-demo done");
  return report;
}

}  // namespace alignpro::demo
