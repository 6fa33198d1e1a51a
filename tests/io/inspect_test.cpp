// `alignpro inspect`, run as a subprocess on results files of every status.
#include <gtest/gtest.h>
#include <hdf5.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <fstream>

#include "io/hdf5_util.h"
#include "io/results_file.h"
#include "io_test_util.h"

namespace alignpro {
namespace {

using testing::contains;
using testing::make_run_info;
using testing::quoted;
using testing::run_command;
using testing::TempDir;

testing::CommandResult inspect(const std::string& path) {
  return run_command(quoted(ALIGNPRO_BINARY) + " inspect " + quoted(path) + " 2>&1");
}

// Two steps with samples, and an evaluation after the second.
void write_two_steps(ResultsWriter& writer) {
  for (int64_t step = 1; step <= 2; ++step) {
    writer.append(testing::make_metrics(step));
    writer.append(testing::make_samples(step, 4));
    writer.append(testing::make_timings(step, 0));
    if (step == 2) {
      writer.append(std::vector<EvalSummary>{testing::make_summary(0, 2, "none"),
                                             testing::make_summary(0, 2, "align-pro")});
    }
    writer.commit_step(step);
  }
}

void expect_two_steps_shown(const std::string& output) {
  EXPECT_TRUE(contains(output, "2 of 10 done")) << output;
  EXPECT_TRUE(contains(output, "Latest metrics (step 2")) << output;
  EXPECT_TRUE(contains(output, "0.2700")) << output;  // make_metrics(2).reward_mean
  EXPECT_TRUE(contains(output, "align-pro")) << output;
  EXPECT_TRUE(contains(output, "0.620 [0.550, 0.650]")) << output;  // its mean with interval
  EXPECT_TRUE(contains(output, "prompt 2/")) << output;             // an example from step 2
  EXPECT_TRUE(contains(output, "rewrite   Please answer politely.\\nprompt")) << output;
}

TEST(Inspect, ShowsEveryStatus) {
  for (auto status : {RunStatus::kComplete, RunStatus::kPreempted, RunStatus::kFailed}) {
    SCOPED_TRACE(status_name(status));
    TempDir dir;
    const std::string path = dir.file("run.h5");
    {
      auto writer = ResultsWriter::create(path, make_run_info());
      write_two_steps(writer);
      writer.set_status(status, "loss is NaN at step 3 (prompt 4, candidate 1, rank 0)");
    }
    const auto result = inspect(path);
    EXPECT_EQ(result.exit_code, 0) << result.output;
    EXPECT_TRUE(contains(result.output, std::string("status      ") + status_name(status)))
        << result.output;
    EXPECT_EQ(contains(result.output, "loss is NaN at step 3"), status == RunStatus::kFailed)
        << result.output;
    expect_two_steps_shown(result.output);
  }
}

TEST(Inspect, ReadsARunThatIsStillWriting) {
  TempDir dir;
  const std::string path = dir.file("live.h5");
  auto writer = ResultsWriter::create(path, make_run_info());
  write_two_steps(writer);
  const auto result = inspect(path);  // the writer holds the file open meanwhile
  EXPECT_EQ(result.exit_code, 0) << result.output;
  EXPECT_TRUE(contains(result.output, "status      running")) << result.output;
  expect_two_steps_shown(result.output);
  writer.close();
}

TEST(Inspect, ReadsTheFileOfAKilledRun) {
  TempDir dir;
  const std::string path = dir.file("killed.h5");
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    try {
      auto writer = ResultsWriter::create(path, make_run_info());
      write_two_steps(writer);
      writer.append(testing::make_metrics(3));
      writer.append(testing::make_samples(3, 4));
      writer.set_commit_observer([](ResultsWriter::CommitStage) { kill(getpid(), SIGKILL); });
      writer.commit_step(3);
    } catch (...) {
    }
    _exit(1);
  }
  int status = 0;
  waitpid(child, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status));
  const auto result = inspect(path);
  EXPECT_EQ(result.exit_code, 0) << result.output;
  EXPECT_TRUE(contains(result.output, "status      running")) << result.output;
  expect_two_steps_shown(result.output);
}

TEST(Inspect, NewRunSaysNothingIsRecordedYet) {
  TempDir dir;
  const std::string path = dir.file("new.h5");
  ResultsWriter::create(path, make_run_info()).close();
  const auto result = inspect(path);
  EXPECT_EQ(result.exit_code, 0) << result.output;
  EXPECT_TRUE(contains(result.output, "0 of 10 done")) << result.output;
  EXPECT_TRUE(contains(result.output, "No training step recorded yet")) << result.output;
  EXPECT_TRUE(contains(result.output, "No evaluation recorded yet")) << result.output;
}

TEST(Inspect, RefusesWhatIsNotAResultsFileWithExitCodeTwo) {
  TempDir dir;
  const std::string text = dir.file("notes.txt");
  std::ofstream(text) << "hello";
  auto result = inspect(text);
  EXPECT_EQ(result.exit_code, 2) << result.output;
  EXPECT_TRUE(contains(result.output, "not an HDF5 file")) << result.output;

  const std::string foreign = dir.file("foreign.h5");
  H5Fclose(H5Fcreate(foreign.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT));
  result = inspect(foreign);
  EXPECT_EQ(result.exit_code, 2) << result.output;
  EXPECT_TRUE(contains(result.output, "not an alignpro results file")) << result.output;

  const std::string future = dir.file("future.h5");
  ResultsWriter::create(future, make_run_info()).close();
  const hid_t file = H5Fopen(future.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  ASSERT_GE(file, 0);
  h5::write_attribute(file, "format_version", int64_t{2}, future);
  H5Fclose(file);
  result = inspect(future);
  EXPECT_EQ(result.exit_code, 2) << result.output;
  EXPECT_TRUE(contains(result.output, "format version 2 is unknown")) << result.output;

  result = inspect(dir.file("missing.h5"));
  EXPECT_EQ(result.exit_code, 2) << result.output;
  EXPECT_TRUE(contains(result.output, "no such file")) << result.output;
}

}  // namespace
}  // namespace alignpro
