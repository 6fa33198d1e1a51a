// Training on the demo's tiny world, where the frozen target's reward depends on how a request is
// worded: short runs of jobs/demo.toml (the LM prompter) and of a pool prompter over wordings
// raise the held-out reward over no optimisation. Set ALIGNPRO_DEMO_DIR to test regenerated
// assets.
#include <cmath>
#include <cstdlib>

#include "train_test_util.h"

namespace alignpro::testing {
namespace {

std::string demo_dir() {
  if (const char* dir = std::getenv("ALIGNPRO_DEMO_DIR"); dir != nullptr && *dir != '\0') {
    return dir;
  }
  return std::string(ALIGNPRO_SOURCE_DIR) + "/demo";
}

// --set overrides pointing jobs/demo.toml at the demo folder under test and at `output`.
std::string demo_overrides(const std::string& output) {
  const std::string d = demo_dir();
  std::string s;
  for (const auto& [key, value] : std::vector<std::pair<std::string, std::string>>{
           {"prompter.model", d + "/models/prompter"},
           {"target.model", d + "/models/target"},
           {"reward.model", d + "/models/reward"},
           {"data.train", d + "/data/train_prompts.jsonl"},
           {"data.eval", d + "/data/eval_prompts.jsonl"},
           {"run.output", output}}) {
    s += " --set " + key + "='\"" + value + "\"'";
  }
  return s;
}

const EvalSummary& find_summary(const std::vector<EvalSummary>& rows, const std::string& condition,
                                const std::string& decoding) {
  for (const auto& r : rows) {
    if (r.condition == condition && r.decoding == decoding) return r;
  }
  throw std::runtime_error("no evaluation row for " + condition + " / " + decoding);
}

TEST(DemoRun, ShortAlignProRunRaisesTheHeldOutReward) {
  TempDir dir;
  const std::string output = dir.file("demo.h5");
  const std::string job = std::string(ALIGNPRO_SOURCE_DIR) + "/jobs/demo.toml";
  const Result r = run_alignpro(
      "train '" + job + "' --set run.steps=30 --set eval.bootstrap=500" + demo_overrides(output),
      2);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto rows = ResultsReader(output).eval_summaries();
  for (const char* decoding : {"greedy", "sampled"}) {
    SCOPED_TRACE(decoding);
    const EvalSummary& none = find_summary(rows, "none", decoding);
    const EvalSummary& align = find_summary(rows, "align-pro", decoding);
    EXPECT_GT(align.mean.value, none.mean.value);
    EXPECT_GT(align.gain.ci_low, 0.0);  // the 95% interval of the paired gain is above zero
    EXPECT_GT(align.win_rate.value, 0.6);
  }
}

TEST(DemoRun, PoolOfWordingsConvergesToTheExactOptimumAndHelps) {
  TempDir dir;
  const std::string d = demo_dir();
  JobText job;
  job.run = "name = \"pool-demo\"\nseed = 3\nsteps = 100\n";
  job.prompter =
      "kind = \"pool\"\ncandidates = 3\n"
      "pool = [\"{prompt}\", \"Please explain in detail: {prompt}\", "
      "\"{prompt} Give a thorough answer.\"]\n";
  job.target = "model = \"" + d +
               "/models/target\"\ntemplate = \"User: {prompt}\\nAssistant:\\n\"\n" +
               "max_new_tokens = 40\nsamples = 2\nbatch_size = 64\n";
  job.reward = "kind = \"model\"\nmodel = \"" + d + "/models/reward\"\n" +
               "template = \"User: {prompt}\\nAssistant:\\n{response}\"\n";
  // A large KL coefficient keeps rho* away from a point mass, so the test sees a real target;
  // the cosine schedule lets the prompter settle between the two equally good wordings.
  job.optim = "lr = 0.5\nkl_coef = 2.0\nbatch_prompts = 8\nschedule = \"cosine\"\n";
  job.eval = "prompts = 48\nbootstrap = 500\n";
  const std::string path = write_job(dir, "pool-demo", job);
  const Result r = run_alignpro("train '" + path + "' --set data.train='\"" + d +
                                    "/data/train_prompts.jsonl\"' --set data.eval='\"" + d +
                                    "/data/eval_prompts.jsonl\"'",
                                2);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  ResultsReader reader(dir.file("runs/pool-demo.h5"));
  const auto states = reader.pool_states();
  ASSERT_EQ(states.size(), 100u);
  const PoolState& last = states.back();
  EXPECT_LT(last.total_variation, 0.05);
  // The plain request is the worst template, and rho* moves mass away from it.
  EXPECT_LT(last.rho_star[0], 0.2);
  EXPECT_LT(last.trained[0], 0.2);
  const EvalSummary& align = find_summary(reader.eval_summaries(), "align-pro", "sampled");
  EXPECT_GT(align.gain.ci_low, 0.0);
}

}  // namespace
}  // namespace alignpro::testing
