// `alignpro generate` end to end, on a fixture model with a tokenizer.
#include <gtest/gtest.h>

#include <string>

#include "fixtures.h"
#include "model/generate.h"
#include "support/command.h"
#include "text/tokenizer.h"

namespace alignpro {
namespace {

using testing::CommandResult;

// `alignpro generate ARGUMENTS`: its standard output, and standard error when asked.
CommandResult run_generate(const std::string& arguments, bool with_stderr = false) {
  return testing::run_command(std::string(ALIGNPRO_BINARY) + " generate " + arguments +
                              (with_stderr ? " 2>&1" : " 2>/dev/null"));
}

TEST(GenerateCommand, GreedyOutputIsTheLibrarysDecodedContinuation) {
  const std::string dir = testing::model_dir("gpt2");
  const CommandResult r =
      run_generate("--model " + dir + " --prompt 'The quick brown' --greedy --max-new-tokens 8");
  ASSERT_EQ(r.exit_code, 0) << r.output;

  const auto model = load_model(dir);
  const Tokenizer tokenizer = Tokenizer::from_folder(dir);
  GenerateOptions options;
  options.greedy = true;
  options.max_new_tokens = 8;
  options.stop_token_ids = model->config().eos_token_ids;
  options.decode = [&](const std::vector<int64_t>& ids) { return tokenizer.decode(ids); };
  std::vector<RngStream> none;
  const auto g = generate(*model, {tokenizer.encode("The quick brown")}, options, none)[0];
  EXPECT_FALSE(g.tokens.empty());
  EXPECT_EQ(r.output, g.text + "\n");
}

TEST(GenerateCommand, SamplingIsReproducibleBySeed) {
  const std::string args = "--model " + testing::model_dir("llama_gqa") +
                           " --prompt 'Write a poem' --max-new-tokens 12 --top-k 20 --top-p 0.9 ";
  const CommandResult a = run_generate(args + "--seed 5");
  const CommandResult b = run_generate(args + "--seed 5");
  ASSERT_EQ(a.exit_code, 0);
  EXPECT_EQ(a.output, b.output);
  const CommandResult summary = run_generate(args + "--seed 5 --show-tokens", /*with_stderr=*/true);
  EXPECT_NE(summary.output.find("new tokens"), std::string::npos) << summary.output;
}

TEST(GenerateCommand, BadInputExitsWithCodeTwoAndAMessage) {
  const CommandResult missing =
      run_generate("--model /nonexistent-model --prompt hi", /*with_stderr=*/true);
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_NE(missing.output.find("config.json"), std::string::npos) << missing.output;
  const CommandResult reward = run_generate(
      "--model " + testing::model_dir("gpt2_reward") + " --prompt hi", /*with_stderr=*/true);
  EXPECT_EQ(reward.exit_code, 2) << reward.output;
  const CommandResult temperature =
      run_generate("--model " + testing::model_dir("gpt2") + " --prompt hi --temperature 0",
                   /*with_stderr=*/true);
  EXPECT_EQ(temperature.exit_code, 2);
  EXPECT_NE(temperature.output.find("temperature"), std::string::npos) << temperature.output;
}

}  // namespace
}  // namespace alignpro
