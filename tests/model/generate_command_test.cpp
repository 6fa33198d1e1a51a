// `alignpro generate` end to end, on a fixture model with a tokenizer.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <string>

#include "fixtures.h"
#include "model/generate.h"
#include "text/tokenizer.h"

namespace alignpro {
namespace {

struct CommandResult {
  int exit_code = -1;
  std::string out;  // stdout and stderr, as the command's user sees them
};

CommandResult run_generate(const std::string& arguments, bool with_stderr = false) {
  const std::string command = std::string(ALIGNPRO_BINARY) + " generate " + arguments +
                              (with_stderr ? " 2>&1" : " 2>/dev/null");
  CommandResult result;
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return result;
  std::array<char, 4096> buffer{};
  size_t n = 0;
  while ((n = fread(buffer.data(), 1, buffer.size(), pipe)) > 0)
    result.out.append(buffer.data(), n);
  const int status = pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

TEST(GenerateCommand, GreedyOutputIsTheLibrarysDecodedContinuation) {
  const std::string dir = testing::model_dir("gpt2");
  const CommandResult r =
      run_generate("--model " + dir + " --prompt 'The quick brown' --greedy --max-new-tokens 8");
  ASSERT_EQ(r.exit_code, 0) << r.out;

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
  EXPECT_EQ(r.out, g.text + "\n");
}

TEST(GenerateCommand, SamplingIsReproducibleBySeed) {
  const std::string args = "--model " + testing::model_dir("llama_gqa") +
                           " --prompt 'Write a poem' --max-new-tokens 12 --top-k 20 --top-p 0.9 ";
  const CommandResult a = run_generate(args + "--seed 5");
  const CommandResult b = run_generate(args + "--seed 5");
  ASSERT_EQ(a.exit_code, 0);
  EXPECT_EQ(a.out, b.out);
  const CommandResult summary = run_generate(args + "--seed 5 --show-tokens", /*with_stderr=*/true);
  EXPECT_NE(summary.out.find("new tokens"), std::string::npos) << summary.out;
}

TEST(GenerateCommand, BadInputExitsWithCodeTwoAndAMessage) {
  const CommandResult missing =
      run_generate("--model /nonexistent-model --prompt hi", /*with_stderr=*/true);
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_NE(missing.out.find("config.json"), std::string::npos) << missing.out;
  const CommandResult reward = run_generate(
      "--model " + testing::model_dir("gpt2_reward") + " --prompt hi", /*with_stderr=*/true);
  EXPECT_EQ(reward.exit_code, 2) << reward.out;
  const CommandResult temperature =
      run_generate("--model " + testing::model_dir("gpt2") + " --prompt hi --temperature 0",
                   /*with_stderr=*/true);
  EXPECT_EQ(temperature.exit_code, 2);
  EXPECT_NE(temperature.out.find("temperature"), std::string::npos) << temperature.out;
}

}  // namespace
}  // namespace alignpro
