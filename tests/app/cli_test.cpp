// The command line as a user meets it: exit codes, messages, and `check` on the shipped jobs.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "support/command.h"

namespace {

namespace fs = std::filesystem;
using Result = alignpro::testing::CommandResult;

// `alignpro ARGUMENTS` run in cwd; standard output and error together.
Result run(const std::string& arguments, const fs::path& cwd = fs::current_path()) {
  return alignpro::testing::run_command("cd '" + cwd.string() + "' && '" +
                                        std::string(ALIGNPRO_BINARY) + "' " + arguments + " 2>&1");
}

std::vector<fs::path> files_below(const fs::path& dir) {
  std::vector<fs::path> files;
  for (const auto& entry : fs::recursive_directory_iterator(dir)) files.push_back(entry.path());
  std::sort(files.begin(), files.end());
  return files;
}

TEST(Cli, VersionNamesTheLibraries) {
  const Result r = run("version");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  for (const char* name : {"alignpro", "libtorch", "MPI", "HDF5", "CUDA"}) {
    EXPECT_NE(r.output.find(name), std::string::npos) << name << " missing in:\n" << r.output;
  }
}

TEST(Cli, UnknownCommandIsBadInput) {
  const Result r = run("frobnicate");
  EXPECT_EQ(r.exit_code, 2) << r.output;
}

TEST(Cli, CheckAcceptsEveryShippedJob) {
  // Jobs in jobs/ run as they are; templates in jobs/templates/ name models the user brings,
  // so they are checked with those paths pointed at a stand-in folder.
  const fs::path jobs = fs::path(ALIGNPRO_SOURCE_DIR) / "jobs";
  const fs::path dir = fs::temp_directory_path() / ("alignpro-cli-" + std::to_string(getpid()));
  fs::create_directories(dir / "model");
  std::ofstream(dir / "prompts.jsonl") << "{\"prompt\": \"hi\"}\n";
  const std::string stand_ins =
      " --set prompter.model=model --set target.model=model --set reward.model=model"
      " --set data.train=prompts.jsonl --set data.eval=prompts.jsonl --set run.output=out.h5";
  int checked = 0;
  for (const auto& entry : fs::recursive_directory_iterator(jobs)) {
    if (entry.path().extension() != ".toml") continue;
    const bool is_template = entry.path().parent_path().filename() == "templates";
    const Result r =
        run("check '" + entry.path().string() + "'" + (is_template ? stand_ins : ""), dir);
    EXPECT_EQ(r.exit_code, 0) << entry.path() << ":\n" << r.output;
    EXPECT_NE(r.output.find("[optim]"), std::string::npos) << r.output;
    ++checked;
  }
  EXPECT_GT(checked, 0) << "no job files in " << jobs;
  fs::remove_all(dir);
}

TEST(Cli, CheckRejectsABadJobWithExitCodeTwoAndWritesNothing) {
  const fs::path dir = fs::temp_directory_path() / ("alignpro-cli-bad-" + std::to_string(getpid()));
  fs::create_directories(dir);
  std::ofstream(dir / "bad.toml") << "[run]\nsteps = -3\nouput = \"x.h5\"\n";
  const auto before = files_below(dir);
  const Result r = run("check bad.toml", dir);
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("bad.toml:2: run.steps: found -3"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("did you mean run.output?"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("terminate"), std::string::npos) << "no stack dump expected";
  EXPECT_EQ(files_below(dir), before);
  fs::remove_all(dir);
}

TEST(Cli, UnknownLogLevelIsBadInput) {
  const Result r = run("version", fs::current_path());
  ASSERT_EQ(r.exit_code, 0);
  const Result loud = alignpro::testing::run_command(
      "ALIGNPRO_LOG_LEVEL=loud '" + std::string(ALIGNPRO_BINARY) + "' version 2>&1");
  EXPECT_EQ(loud.exit_code, 2) << loud.output;
  EXPECT_NE(loud.output.find("ALIGNPRO_LOG_LEVEL: found 'loud'"), std::string::npos) << loud.output;
}

}  // namespace
