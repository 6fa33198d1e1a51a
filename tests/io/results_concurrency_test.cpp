// The results file seen from other processes: a reader that watches a running writer, and the
// files that killed writers leave behind.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>

#include "common/error.h"
#include "common/rng.h"
#include "io/results_file.h"
#include "io_test_util.h"

namespace alignpro {
namespace {

using testing::make_run_info;
using testing::TempDir;
using testing::write_step;

constexpr int64_t kSamplesPerStep = 3;

// What every reader must see at any moment: whole steps only, each table agreeing with
// steps_done. Returns steps_done.
int64_t expect_consistent(const ResultsReader& reader) {
  const int64_t steps = reader.header().steps_done;
  const auto metrics = reader.metrics();
  EXPECT_EQ(static_cast<int64_t>(metrics.size()), steps);
  for (size_t i = 0; i < metrics.size(); ++i) EXPECT_EQ(metrics[i].step, int64_t(i) + 1);
  EXPECT_EQ(reader.rows("samples"), steps * kSamplesPerStep);
  EXPECT_EQ(reader.rows("timings"), steps * 2);
  EXPECT_EQ(reader.rows("pool/steps"), steps);
  EXPECT_EQ(reader.rows("pool/distribution"), steps * 3);
  if (steps > 0) {
    EXPECT_TRUE(testing::same(reader.samples_of_step(steps),
                              testing::make_samples(steps, kSamplesPerStep)));
  }
  return steps;
}

void write_byte(int fd) {
  const char c = 1;
  if (write(fd, &c, 1) != 1) _exit(20);
}

bool read_byte(int fd) {
  char c = 0;
  return read(fd, &c, 1) == 1;
}

int wait_exit_code(pid_t child) {
  int status = 0;
  waitpid(child, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
}

// The writer child announces each step on `ready` and, for the first `lockstep` steps, waits
// for the reader's `go` before the next one: the reader provably sees every step while the
// writer still holds the file open. Then it writes freely, marks the run complete and exits.
TEST(ResultsSwmr, ReaderProcessSeesStepsAppearWhileTheWriterAppends) {
  TempDir dir;
  const std::string path = dir.file("live.h5");
  constexpr int64_t kLockstep = 8;
  constexpr int64_t kSteps = 60;
  int ready[2], go[2];
  ASSERT_EQ(pipe(ready), 0);
  ASSERT_EQ(pipe(go), 0);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    close(ready[0]);
    close(go[1]);
    int code = 0;
    try {
      auto writer = ResultsWriter::create(path, make_run_info());
      write_byte(ready[1]);
      for (int64_t step = 1; step <= kSteps; ++step) {
        write_step(writer, step, kSamplesPerStep);
        if (step <= kLockstep) {
          write_byte(ready[1]);
          if (!read_byte(go[0])) _exit(21);
        }
      }
      writer.set_status(RunStatus::kComplete);
    } catch (const std::exception& e) {
      code = 1;
    }
    _exit(code);
  }
  close(ready[1]);
  close(go[0]);
  ASSERT_TRUE(read_byte(ready[0]));  // the file exists
  for (int64_t step = 1; step <= kLockstep; ++step) {
    ASSERT_TRUE(read_byte(ready[0]));
    const ResultsReader reader(path);
    EXPECT_EQ(reader.header().status, RunStatus::kRunning);
    EXPECT_EQ(expect_consistent(reader), step);
    write_byte(go[1]);
  }
  // Free-running: every snapshot is whole, and steps only ever go forward.
  int64_t last = kLockstep;
  while (true) {
    const ResultsReader reader(path);
    const int64_t steps = expect_consistent(reader);
    EXPECT_GE(steps, last);
    last = steps;
    if (reader.header().status == RunStatus::kComplete) break;
    if (::testing::Test::HasFailure()) break;
  }
  EXPECT_EQ(wait_exit_code(child), 0);
  EXPECT_EQ(last, kSteps);
}

// The writer child commits three steps, then dies at a chosen point of the fourth.
enum class DeathPoint { kBeforeCommit, kRowsWritten, kRowsCommitted, kExitWithoutClose };

void die_during_fourth_step(const std::string& path, DeathPoint point) {
  auto writer = ResultsWriter::create(path, make_run_info());
  for (int64_t step = 1; step <= 3; ++step) write_step(writer, step, kSamplesPerStep);
  if (point == DeathPoint::kExitWithoutClose) _exit(0);
  writer.set_commit_observer([point](ResultsWriter::CommitStage stage) {
    if ((point == DeathPoint::kRowsWritten && stage == ResultsWriter::CommitStage::kRowsWritten) ||
        (point == DeathPoint::kRowsCommitted &&
         stage == ResultsWriter::CommitStage::kRowsCommitted)) {
      kill(getpid(), SIGKILL);
    }
  });
  writer.append(testing::make_metrics(4));
  writer.append(testing::make_samples(4, kSamplesPerStep));
  if (point == DeathPoint::kBeforeCommit) kill(getpid(), SIGKILL);
  writer.append(testing::make_timings(4, 0));
  writer.append(testing::make_timings(4, 1));
  writer.append(testing::make_pool_state(4));
  writer.commit_step(4);
  _exit(30);  // not reached
}

TEST(ResultsCrash, KilledWriterLeavesAReadableRunningFileThatResumes) {
  for (auto point : {DeathPoint::kBeforeCommit, DeathPoint::kRowsWritten,
                     DeathPoint::kRowsCommitted, DeathPoint::kExitWithoutClose}) {
    SCOPED_TRACE("death point " + std::to_string(static_cast<int>(point)));
    TempDir dir;
    const std::string path = dir.file("killed.h5");
    const pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      try {
        die_during_fourth_step(path, point);
      } catch (...) {
      }
      _exit(31);
    }
    const int code = wait_exit_code(child);
    EXPECT_EQ(code, point == DeathPoint::kExitWithoutClose ? 0 : -SIGKILL);
    {
      const ResultsReader reader(path);
      EXPECT_EQ(reader.header().status, RunStatus::kRunning);
      EXPECT_EQ(expect_consistent(reader), 3);
    }
    {
      auto writer = ResultsWriter::resume(path, make_run_info());
      EXPECT_EQ(writer.steps_done(), 3);
      write_step(writer, 4, kSamplesPerStep);
      writer.set_status(RunStatus::kComplete);
    }
    const ResultsReader reader(path);
    EXPECT_EQ(expect_consistent(reader), 4);
    EXPECT_EQ(reader.rows("sessions"), 2);
  }
}

// Kills at points chosen by a seeded stream while the writer runs flat out; each file opens,
// is consistent, and resumes.
TEST(ResultsCrash, RandomKillsLeaveConsistentFiles) {
  TempDir dir;
  const std::string path = dir.file("random.h5");
  ResultsWriter::create(path, make_run_info()).close();
  RngStream rng(2024, RngPurpose::kInit, {77});
  int64_t done = 0;
  for (int round = 0; round < 6; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    int ready[2];
    ASSERT_EQ(pipe(ready), 0);
    const pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      close(ready[0]);
      try {
        auto writer = ResultsWriter::resume(path, make_run_info());
        write_byte(ready[1]);
        for (int64_t step = writer.steps_done() + 1;; ++step) {
          write_step(writer, step, kSamplesPerStep);
        }
      } catch (const std::exception& e) {
        std::fprintf(stderr, "writer child: %s\n", e.what());
      }
      _exit(1);
    }
    close(ready[1]);
    ASSERT_TRUE(read_byte(ready[0]));
    close(ready[0]);
    usleep(static_cast<useconds_t>(1000 + rng.below(40000)));
    kill(child, SIGKILL);
    EXPECT_EQ(wait_exit_code(child), -SIGKILL);
    const ResultsReader reader(path);
    EXPECT_EQ(reader.header().status, RunStatus::kRunning);
    const int64_t steps = expect_consistent(reader);
    EXPECT_GE(steps, done);
    done = steps;
  }
  auto writer = ResultsWriter::resume(path, make_run_info());
  write_step(writer, done + 1, kSamplesPerStep);
  writer.close();
  EXPECT_EQ(expect_consistent(ResultsReader(path)), done + 1);
}

// The first writer runs in a child (a forked process must not inherit open HDF5 files); this
// process, with no file open, is the second.
TEST(ResultsCrash, SecondWriterIsRefusedWhileTheFirstRuns) {
  TempDir dir;
  const std::string path = dir.file("busy.h5");
  int ready[2], go[2];
  ASSERT_EQ(pipe(ready), 0);
  ASSERT_EQ(pipe(go), 0);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    close(ready[0]);
    close(go[1]);
    int code = 0;
    try {
      auto writer = ResultsWriter::create(path, make_run_info());
      write_step(writer, 1, kSamplesPerStep);
      write_byte(ready[1]);
      if (!read_byte(go[0])) _exit(21);
      write_step(writer, 2, kSamplesPerStep);
    } catch (...) {
      code = 1;
    }
    _exit(code);
  }
  close(ready[1]);
  close(go[0]);
  ASSERT_TRUE(read_byte(ready[0]));
  std::string message;
  try {
    ResultsWriter::resume(path, make_run_info());
  } catch (const RuntimeError& e) {
    message = e.what();
  }
  EXPECT_NE(message.find("another process"), std::string::npos) << message;
  EXPECT_NE(message.find(path), std::string::npos) << message;
  write_byte(go[1]);
  EXPECT_EQ(wait_exit_code(child), 0);
  EXPECT_EQ(expect_consistent(ResultsReader(path)), 2);
}

}  // namespace
}  // namespace alignpro
