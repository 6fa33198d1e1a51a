// The job reader: defaults, overrides, path resolution, and one test per kind of bad input,
// each asserting the key and the reason named in the message.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>

#include "common/job.h"

namespace alignpro {
namespace {

namespace fs = std::filesystem;

// A folder with the files a minimal valid job names, removed at the end of the test.
class JobFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("alignpro-job-test-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_ / "models" / "prompter");
    fs::create_directories(dir_ / "models" / "target");
    fs::create_directories(dir_ / "models" / "reward");
    std::ofstream(dir_ / "train.jsonl") << "{\"prompt\": \"hello\"}\n";
  }
  void TearDown() override { fs::remove_all(dir_); }

  // A valid job with extra lines, each "section: key = value", placed in their sections (TOML
  // does not allow a section twice).
  std::string valid(const std::vector<std::string>& extra = {}) const {
    std::map<std::string, std::string> sections = {{"data", "train = \"train.jsonl\"\n"},
                                                   {"prompter", "model = \"models/prompter\"\n"},
                                                   {"target", "model = \"models/target\"\n"},
                                                   {"reward", "model = \"models/reward\"\n"}};
    for (const auto& line : extra) {
      const auto colon = line.find(": ");
      sections[line.substr(0, colon)] += line.substr(colon + 2) + "\n";
    }
    std::string text;
    for (const auto& [name, body] : sections) text += "[" + name + "]\n" + body;
    return text;
  }

  Job parse(const std::string& text, JobReadOptions options = {}) const {
    return parse_job(text, (dir_ / "job.toml").string(), options);
  }

  // The problems reported for a job; fails the test when the job is accepted.
  std::vector<std::string> problems(const std::string& text, JobReadOptions options = {}) const {
    try {
      parse(text, options);
    } catch (const JobError& e) {
      return e.problems();
    }
    ADD_FAILURE() << "the job was accepted:\n" << text;
    return {};
  }

  // Asserts that exactly one problem is reported and that it names all the given fragments.
  void expect_problem(const std::string& text, const std::vector<std::string>& fragments,
                      JobReadOptions options = {}) const {
    const auto found = problems(text, options);
    ASSERT_EQ(found.size(), 1u) << ::testing::PrintToString(found);
    for (const auto& fragment : fragments) {
      EXPECT_NE(found[0].find(fragment), std::string::npos)
          << "missing '" << fragment << "' in: " << found[0];
    }
  }

  fs::path dir_;
};

TEST_F(JobFiles, ValidJobGetsDefaultsAndResolvedPaths) {
  const Job job = parse(valid());
  EXPECT_EQ(job.run.name, "job");
  EXPECT_EQ(job.run.mode, "align-pro");
  EXPECT_EQ(job.prompter.candidates, 4);
  EXPECT_DOUBLE_EQ(job.optim.kl_coef, 0.05);
  EXPECT_EQ(job.data.train, (dir_ / "train.jsonl").string());
  EXPECT_EQ(job.run.output, (dir_ / "runs" / "job.h5").string());
  EXPECT_EQ(job.eval.decoding, (std::vector<std::string>{"greedy", "sampled"}));
}

TEST_F(JobFiles, OverridesWinOverTheFileAndResolveAgainstTheWorkingDirectory) {
  JobReadOptions options;
  options.overrides = {"optim.lr=0.001", "run.name=sweep", "prompter.candidates=8",
                       "run.output=out/x.h5"};
  const Job job = parse(valid({"optim: lr = 0.5"}), options);
  EXPECT_DOUBLE_EQ(job.optim.lr, 0.001);
  EXPECT_EQ(job.run.name, "sweep");
  EXPECT_EQ(job.prompter.candidates, 8);
  EXPECT_EQ(job.run.output, (fs::current_path() / "out" / "x.h5").string());
}

TEST_F(JobFiles, HashChangesWithAnyKeyAndIsStable) {
  const Job a = parse(valid());
  const Job b = parse(valid());
  JobReadOptions options;
  options.overrides = {"run.seed=1"};
  const Job c = parse(valid(), options);
  EXPECT_EQ(a.hash(), b.hash());
  EXPECT_NE(a.hash(), c.hash());
}

TEST_F(JobFiles, ResolvedConfigurationReadsBackAsTheSameJob) {
  const Job job = parse(valid({"optim: kl_coef = 0.25", "target: stop = [\"\\n\", \"END\"]"}));
  // The printed configuration is a job file of its own; reading it gives the same job.
  const Job again = parse_job(job.to_toml(), (dir_ / "job.toml").string());
  EXPECT_EQ(job.canonical(), again.canonical());
}

TEST_F(JobFiles, SyntaxErrorNamesLineAndColumn) {
  expect_problem("[run]\nseed = 1\nsteps = = 3\n", {"job.toml:3:", "TOML syntax error"});
}

TEST_F(JobFiles, UnknownKeySuggestsTheNearestName) {
  expect_problem(valid({"optim: kl_coeff = 0.1"}),
                 {"job.toml:4", "optim.kl_coeff", "unknown key", "did you mean optim.kl_coef?"});
}

TEST_F(JobFiles, UnknownSectionIsNamedWithTheAllowedOnes) {
  expect_problem(valid({"optimizer: lr = 0.1"}),
                 {"[optimizer]", "unknown section", "did you mean [optim]?", "allowed: run"});
}

TEST_F(JobFiles, WrongTypeNamesValueAndType) {
  expect_problem(valid({"optim: lr = \"fast\""}),
                 {"optim.lr", "found \"fast\"", "allowed: a number in (0, 1]"});
}

TEST_F(JobFiles, IntegerKeyRejectsAFloat) {
  expect_problem(valid({"run: steps = 2.5"}),
                 {"run.steps", "found 2.5", "allowed: an integer in [1, 1000000000]"});
}

TEST_F(JobFiles, ValueBelowRange) {
  expect_problem(valid({"run: steps = 0"}), {"run.steps", "found 0", "[1, 1000000000]"});
}

TEST_F(JobFiles, ValueAboveRange) {
  expect_problem(valid({"prompter: top_p = 1.5"}),
                 {"prompter.top_p", "found 1.5", "a number in (0, 1]"});
}

TEST_F(JobFiles, OpenLowerBoundRejectsTheBound) {
  expect_problem(valid({"target: temperature = 0.0"}),
                 {"target.temperature", "found 0.0", "(0, 100]"});
}

TEST_F(JobFiles, ChoiceListsTheAllowedValues) {
  expect_problem(valid({"run: mode = \"rlfh\""}),
                 {"run.mode", "found \"rlfh\"", "one of: align-pro, rlhf"});
}

TEST_F(JobFiles, ListOfStringsRejectsANumberInside) {
  expect_problem(valid({"target: stop = [\"a\", 3]"}),
                 {"target.stop", "found [", "allowed: a list of strings"});
}

TEST_F(JobFiles, MissingDataFileIsNamedWithItsResolvedPath) {
  expect_problem(valid({"data: eval = \"held-out.jsonl\""}),
                 {"data.eval", "found \"held-out.jsonl\"", "held-out.jsonl)", "no such file"});
}

TEST_F(JobFiles, ModelPathThatIsAFileIsRejected) {
  expect_problem(
      "[data]\ntrain = \"train.jsonl\"\n[prompter]\nmodel = \"train.jsonl\"\n"
      "[target]\nmodel = \"models/target\"\n[reward]\nmodel = \"models/reward\"\n",
      {"prompter.model", "an existing model folder", "a file there"});
}

TEST_F(JobFiles, MissingRequiredModelIsNamed) {
  expect_problem(
      "[data]\ntrain = \"train.jsonl\"\n[prompter]\nmodel = \"models/prompter\"\n"
      "[reward]\nmodel = \"models/reward\"\n",
      {"target.model", "missing"});
}

TEST_F(JobFiles, TemplateWithoutPromptPlaceholder) {
  expect_problem(valid({"prompter: template = \"Rewrite this:\""}),
                 {"prompter.template", "found \"Rewrite this:\"", "contains {prompt}"});
}

TEST_F(JobFiles, RewardTemplateNeedsPromptAndResponse) {
  expect_problem(valid({"reward: template = \"{response}\""}),
                 {"reward.template", "{prompt} and {response}"});
}

TEST_F(JobFiles, MoreRanksThanWorkUnits) {
  JobReadOptions options;
  options.world_size = 64;
  expect_problem(valid({"optim: batch_prompts = 4", "prompter: candidates = 2"}),
                 {"optim.batch_prompts", "8 work units per step", "fewer than the 64 ranks"},
                 options);
}

TEST_F(JobFiles, PoolReferenceMustMatchThePool) {
  const auto found = problems(
      "[data]\ntrain = \"train.jsonl\"\n[target]\nmodel = \"models/target\"\n"
      "[reward]\nkind = \"keywords\"\nkeywords = [\"x\"]\n"
      "[prompter]\nkind = \"pool\"\npool = [\"{prompt}\", \"Please: {prompt}\"]\n"
      "pool_reference = [0.5, 0.25, 0.25]\n");
  ASSERT_EQ(found.size(), 1u) << ::testing::PrintToString(found);
  EXPECT_NE(found[0].find("prompter.pool_reference"), std::string::npos);
  EXPECT_NE(found[0].find("3 probabilities for 2 templates"), std::string::npos);
}

TEST_F(JobFiles, SumRewardNeedsOneWeightPerTerm) {
  expect_problem(valid({"reward: kind = \"sum\"", "reward: terms = [\"model\", \"length\"]",
                        "reward: weights = [1.0]"}),
                 {"reward.weights", "1 weights for 2 terms"});
}

TEST_F(JobFiles, KeywordRewardNeedsKeywords) {
  expect_problem(
      "[data]\ntrain = \"train.jsonl\"\n[prompter]\nmodel = \"models/prompter\"\n"
      "[target]\nmodel = \"models/target\"\n[reward]\nkind = \"keywords\"\n",
      {"reward.keywords", "at least one word"});
}

TEST_F(JobFiles, WarmupLongerThanTheRun) {
  expect_problem(valid({"run: steps = 10", "optim: warmup_steps = 20"}),
                 {"optim.warmup_steps", "found 20", "more than run.steps = 10"});
}

TEST_F(JobFiles, WatchdogWarnMustComeBeforeAbort) {
  expect_problem(valid({"runtime: watchdog_warn = 100.0", "runtime: watchdog_abort = 50.0"}),
                 {"runtime.watchdog_warn", "not below runtime.watchdog_abort"});
}

TEST_F(JobFiles, UnknownDecodingIsNamed) {
  expect_problem(valid({"eval: decoding = [\"beam\"]"}),
                 {"eval.decoding", "found \"beam\"", "allowed: greedy, sampled"});
}

TEST_F(JobFiles, SectionGivenAsAValue) {
  expect_problem("optim = 3\n" + valid(), {"optim", "allowed: a section [optim]"});
}

TEST_F(JobFiles, BadOverrideIsNamedWithItsArgument) {
  JobReadOptions options;
  options.overrides = {"optim.lr=-2"};
  expect_problem(valid(), {"--set optim.lr=-2", "optim.lr", "found -2"}, options);
}

TEST_F(JobFiles, OverrideWithoutEqualsSign) {
  JobReadOptions options;
  options.overrides = {"optim.lr"};
  expect_problem(valid(), {"--set optim.lr", "expected section.key=value"}, options);
}

TEST_F(JobFiles, UnwritableOutputLocation) {
  std::ofstream(dir_ / "blocker") << "a file, not a folder";
  expect_problem(valid({"run: output = \"blocker/run.h5\""}),
                 {"run.output", "a writable location", "blocker is not a writable folder"});
}

TEST_F(JobFiles, EveryProblemIsReportedAtOnce) {
  const auto found = problems(valid({"run: steps = 0", "run: seed = -1", "optim: lr = 2.0"}));
  EXPECT_EQ(found.size(), 3u) << ::testing::PrintToString(found);
}

TEST(JobSchema, EveryKeyIsDocumentedAndItsDefaultIsAllowed) {
  for (const auto& spec : job_schema()) {
    EXPECT_FALSE(spec.doc.empty()) << spec.full_name();
    EXPECT_TRUE(spec.store && spec.load) << spec.full_name();
    if (spec.type == KeyType::kChoice) {
      const auto& value = std::get<std::string>(spec.default_value);
      EXPECT_NE(std::find(spec.choices.begin(), spec.choices.end(), value), spec.choices.end())
          << spec.full_name();
    }
  }
}

TEST(JobSchema, ReadmeReferenceIsTheGeneratedOne) {
  // The README's job-file reference is generated from the schema (`alignpro reference`); this
  // fails when the two drift apart.
  std::ifstream in(std::string(ALIGNPRO_SOURCE_DIR) + "/README.md");
  ASSERT_TRUE(in) << "README.md not found";
  const std::string readme((std::istreambuf_iterator<char>(in)), {});
  const std::string begin = "<!-- job-reference:begin -->\n";
  const std::string end = "<!-- job-reference:end -->";
  const auto a = readme.find(begin);
  const auto b = readme.find(end);
  ASSERT_NE(a, std::string::npos);
  ASSERT_NE(b, std::string::npos);
  EXPECT_EQ(readme.substr(a + begin.size(), b - a - begin.size()), job_reference_markdown())
      << "regenerate with: alignpro reference";
}

TEST(EditDistance, CountsInsertionsDeletionsAndSubstitutions) {
  EXPECT_EQ(edit_distance("kl_coef", "kl_coeff"), 1u);
  EXPECT_EQ(edit_distance("", "abc"), 3u);
  EXPECT_EQ(edit_distance("seed", "steps"), 3u);
}

}  // namespace
}  // namespace alignpro
