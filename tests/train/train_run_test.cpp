// `alignpro train` and `alignpro eval` end to end: the same run at 1, 2 and 4 ranks, both
// gradient aggregations, the results file's contents, the rlhf mode, and bad input refused
// before any model loads.
#include <cmath>
#include <set>

#include "model/transformer.h"
#include "train_test_util.h"

namespace alignpro::testing {
namespace {

std::string output_of(const TempDir& dir, const std::string& name) {
  return dir.file("runs/" + name + ".h5");
}

TEST(TrainRun, LmRunIsTheSameAtOneTwoAndFourRanks) {
  TempDir dir;
  const std::string job = write_job(dir, "lm", lm_job(4));
  std::vector<std::string> outputs;
  for (int ranks : {1, 2, 4}) {
    const std::string output = output_of(dir, "lm-" + std::to_string(ranks));
    const Result r =
        run_alignpro("train '" + job + "' --set run.output='\"" + output + "\"'", ranks);
    ASSERT_EQ(r.exit_code, 0) << r.output;
    outputs.push_back(output);
  }
  const auto reference = ordered_samples(outputs[0]);
  ASSERT_EQ(reference.size(), 4u * 2 * 2 * 2);  // steps * prompts * candidates * samples
  const auto weights = final_weights(outputs[0]);
  for (size_t i = 1; i < outputs.size(); ++i) {
    SCOPED_TRACE(outputs[i]);
    expect_same_samples(reference, ordered_samples(outputs[i]), 0.0);
    EXPECT_LT(relative_difference(weights, final_weights(outputs[i])), 1e-5);
    const ResultsHeader header = read_results_header(outputs[i]);
    EXPECT_EQ(header.status, RunStatus::kComplete);
    EXPECT_EQ(header.world_size, i == 1 ? 2 : 4);
  }
  // The weights moved far more than the ranks disagree: the comparison above is not between
  // untouched copies.
  LoadOptions load;
  load.dtype = torch::kFloat32;
  std::map<std::string, torch::Tensor> initial;
  for (const auto& item : load_model(fixture("gpt2"), load)->named_parameters()) {
    initial["prompter." + item.key()] = item.value().detach();
  }
  EXPECT_GT(relative_difference(weights, initial), 10 * 1e-5);
}

TEST(TrainRun, ReduceToCoordinatorMakesTheSameUpdatesAsAllreduce) {
  TempDir dir;
  const std::string job = write_job(dir, "lm", lm_job(2));
  for (const char* aggregation : {"allreduce", "reduce"}) {
    const Result r =
        run_alignpro("train '" + job + "' --set optim.aggregation='\"" + aggregation +
                         "\"' --set run.output='\"" + output_of(dir, aggregation) + "\"'",
                     2);
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }
  expect_same_samples(ordered_samples(output_of(dir, "allreduce")),
                      ordered_samples(output_of(dir, "reduce")), 0.0);
  EXPECT_LT(relative_difference(final_weights(output_of(dir, "allreduce")),
                                final_weights(output_of(dir, "reduce"))),
            1e-5);
}

TEST(TrainRun, ResultsFileHoldsTheWholeRun) {
  TempDir dir;
  JobText text = pool_job(6);
  text.eval += "every = 3\n";
  const std::string job = write_job(dir, "pool", text);
  const Result r = run_alignpro("train '" + job + "'", 2);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  // The progress line: one per step, with every field.
  for (const char* field : {"step 6/6", "reward", "KL", "loss", "gnorm", "tok/s", "ETA"}) {
    EXPECT_NE(r.output.find(field), std::string::npos) << field << " missing in:\n" << r.output;
  }
  const std::string output = dir.file("runs/pool.h5");
  ResultsReader reader(output);
  EXPECT_EQ(reader.header().status, RunStatus::kComplete);
  EXPECT_EQ(reader.header().steps_done, 6);
  const auto metrics = reader.metrics();
  ASSERT_EQ(metrics.size(), 6u);
  const auto samples = reader.samples();
  ASSERT_EQ(samples.size(), 6u * 4 * 3 * 2);
  // Each step's reward mean is the mean of that step's sample rewards.
  for (const auto& m : metrics) {
    double sum = 0;
    int count = 0;
    for (const auto& s : samples) {
      if (s.step != m.step) continue;
      sum += s.reward;
      ++count;
    }
    EXPECT_NEAR(m.reward_mean, sum / count, 1e-9) << "step " << m.step;
    EXPECT_GT(m.learning_rate, 0);
  }
  // Timings of every rank and step.
  EXPECT_EQ(reader.timings().size(), 6u * 2);
  // Pool distributions per step; two evaluations (after steps 3 and 6), each with both
  // conditions under both decodings.
  EXPECT_EQ(reader.pool_states().size(), 6u);
  const auto summaries = reader.eval_summaries();
  EXPECT_EQ(summaries.size(), 2u * 2 * 2);
  EXPECT_EQ(reader.eval_samples().size(), 2u * 2 * 2 * 4);
  for (const auto& s : summaries) {
    EXPECT_TRUE(s.condition == "none" || s.condition == "align-pro") << s.condition;
    EXPECT_LE(s.mean.ci_low, s.mean.value);
    EXPECT_GE(s.mean.ci_high, s.mean.value);
  }
  // `alignpro eval` evaluates the last checkpoint and prints the table.
  const Result e = run_alignpro("eval '" + job + "'");
  ASSERT_EQ(e.exit_code, 0) << e.output;
  EXPECT_NE(e.output.find("after 6 training steps"), std::string::npos) << e.output;
  EXPECT_NE(e.output.find("align-pro"), std::string::npos) << e.output;
}

TEST(TrainRun, RlhfModeTunesTheTargetAndSavesIt) {
  TempDir dir;
  JobText text = lm_job(2);
  text.run.replace(text.run.find("\"lm\""), 4, "\"rlhf\"");
  text.run += "mode = \"rlhf\"\n";
  text.prompter = "";
  const std::string job = write_job(dir, "rlhf", text);
  const Result r = run_alignpro("train '" + job + "'", 2);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  ResultsReader reader(dir.file("runs/rlhf.h5"));
  // prompter.candidates (4 by default) responses per prompt, the tuned target's own answers;
  // target.samples does not apply.
  const auto samples = reader.samples();
  EXPECT_EQ(samples.size(), 2u * 2 * 4);
  for (const auto& s : samples) EXPECT_EQ(s.rewrite, s.response);
  bool saw_rlhf = false;
  for (const auto& s : reader.eval_summaries()) {
    EXPECT_NE(s.condition, "align-pro");
    saw_rlhf |= s.condition == "rlhf";
  }
  EXPECT_TRUE(saw_rlhf);
  // The tuned target is a model folder that loads and generates, and is not the original.
  const std::string tuned = dir.file("runs/rlhf-target");
  const Result g =
      run_alignpro("generate --model '" + tuned + "' --prompt 'hello' --max-new-tokens 3");
  EXPECT_EQ(g.exit_code, 0) << g.output;
  // It can serve as the rlhf condition of an Align-Pro evaluation.
  const std::string align = write_job(dir, "align", lm_job(1));
  const Result a = run_alignpro("train '" + align + "' --set eval.rlhf_target='\"" + tuned + "\"'");
  ASSERT_EQ(a.exit_code, 0) << a.output;
  std::set<std::string> conditions;
  for (const auto& s : ResultsReader(dir.file("runs/lm.h5")).eval_summaries()) {
    conditions.insert(s.condition);
  }
  EXPECT_EQ(conditions, (std::set<std::string>{"none", "align-pro", "rlhf"}));
}

TEST(TrainRun, BadOutputIsRefusedBeforeAnyModelLoads) {
  TempDir dir;
  const std::string job = write_job(dir, "pool", pool_job(2));
  // A folder that cannot be made: its parent is a file.
  write_text(dir.file("a-file"), "x");
  const Result r =
      run_alignpro("train '" + job + "' --set run.output='\"" + dir.file("a-file/run.h5") + "\"'");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("run.output"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("not a writable folder"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("loaded"), std::string::npos) << r.output;
}

TEST(TrainRun, ResultsFileOfAnotherJobIsRefusedAndKept) {
  TempDir dir;
  const std::string job = write_job(dir, "pool", pool_job(2));
  ASSERT_EQ(run_alignpro("train '" + job + "'").exit_code, 0);
  const std::string output = dir.file("runs/pool.h5");
  const auto size_before = fs::file_size(output);
  const Result r = run_alignpro("train '" + job + "' --set run.seed=8");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("belongs to another job"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("loaded"), std::string::npos) << r.output;
  EXPECT_EQ(fs::file_size(output), size_before);
  EXPECT_EQ(read_results_header(output).status, RunStatus::kComplete);
}

TEST(TrainRun, FewerUnitsThanRanksIsAnErrorBeforeModelsLoad) {
  TempDir dir;
  JobText text = pool_job(2);
  text.prompter = "kind = \"pool\"\ncandidates = 1\npool = [\"{prompt}\"]\n";
  text.optim = "batch_prompts = 1\n";
  const Result r = run_alignpro("train '" + write_job(dir, "pool", text) + "'", 2);
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_EQ(r.output.find("loaded"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace alignpro::testing
