#include "io/results_file.h"

#include <gtest/gtest.h>
#include <hdf5.h>
#include <sys/resource.h>
#include <unistd.h>

#include <csignal>
#include <fstream>

#include "alignpro/build_info.h"
#include "common/error.h"
#include "io_test_util.h"

namespace alignpro {
namespace {

using testing::contains;
using testing::make_run_info;
using testing::message_of;
using testing::same;
using testing::TempDir;
using testing::write_step;

TEST(ResultsFile, RoundTripsEveryTable) {
  TempDir dir;
  const std::string path = dir.file("runs/demo.h5");
  const RunInfo info = make_run_info();
  {
    auto writer = ResultsWriter::create(path, info);
    for (int64_t step = 1; step <= 3; ++step) {
      writer.append(testing::make_metrics(step));
      writer.append(testing::make_samples(step, 5));
      writer.append(testing::make_timings(step, 0));
      writer.append(testing::make_timings(step, 1));
      writer.append(testing::make_pool_state(step));
      if (step == 2) {
        writer.append(std::vector<EvalSummary>{testing::make_summary(0, 2, "none"),
                                               testing::make_summary(0, 2, "align-pro")});
        writer.append(std::vector<EvalSample>{testing::make_eval_sample(0, 2, 0),
                                              testing::make_eval_sample(0, 2, 1)});
      }
      writer.commit_step(step);
    }
    writer.set_checkpoint(3, "step-00000003.ckpt.h5");
    writer.set_status(RunStatus::kComplete);
  }
  const ResultsReader reader(path);
  const ResultsHeader& h = reader.header();
  EXPECT_EQ(h.format_version, kResultsFormatVersion);
  EXPECT_EQ(h.alignpro_version, kVersion);
  EXPECT_EQ(h.git_revision, kGitRevision);
  EXPECT_EQ(h.job_name, info.job_name);
  EXPECT_EQ(h.job_text, info.job_text);
  EXPECT_EQ(h.job_hash, info.job_hash);
  EXPECT_EQ(h.world_size, 2);
  EXPECT_EQ(h.hosts, info.hosts);
  EXPECT_EQ(h.status, RunStatus::kComplete);
  EXPECT_EQ(h.steps_done, 3);
  EXPECT_EQ(h.total_steps, 10);
  EXPECT_EQ(h.checkpoint_step, 3);
  EXPECT_EQ(h.checkpoint_file, "step-00000003.ckpt.h5");
  EXPECT_EQ(h.start_time.size(), 20u);  // 2025-01-31T12:34:56Z

  std::vector<StepMetrics> metrics;
  std::vector<TrainingSample> samples;
  std::vector<PhaseTimings> timings;
  std::vector<PoolState> pool;
  for (int64_t step = 1; step <= 3; ++step) {
    metrics.push_back(testing::make_metrics(step));
    for (const auto& s : testing::make_samples(step, 5)) samples.push_back(s);
    timings.push_back(testing::make_timings(step, 0));
    timings.push_back(testing::make_timings(step, 1));
    pool.push_back(testing::make_pool_state(step));
  }
  EXPECT_TRUE(same(reader.metrics(), metrics));
  EXPECT_TRUE(same(reader.samples(), samples));
  EXPECT_TRUE(same(reader.samples(6, 3),
                   std::vector<TrainingSample>(samples.begin() + 6, samples.begin() + 9)));
  EXPECT_TRUE(same(reader.samples_of_step(2), testing::make_samples(2, 5)));
  EXPECT_TRUE(reader.samples_of_step(4).empty());
  EXPECT_TRUE(same(reader.timings(), timings));
  EXPECT_TRUE(same(reader.pool_states(), pool));
  EXPECT_TRUE(same(reader.eval_summaries(),
                   std::vector<EvalSummary>{testing::make_summary(0, 2, "none"),
                                            testing::make_summary(0, 2, "align-pro")}));
  EXPECT_TRUE(
      same(reader.eval_samples(), std::vector<EvalSample>{testing::make_eval_sample(0, 2, 0),
                                                          testing::make_eval_sample(0, 2, 1)}));
  const auto templates = reader.pool_templates();
  ASSERT_EQ(templates.size(), 3u);
  EXPECT_EQ(templates[1].text, info.pool_templates[1]);
  EXPECT_EQ(templates[2].reference, 0.5);
  const auto sessions = reader.sessions();
  ASSERT_EQ(sessions.size(), 1u);
  EXPECT_EQ(sessions[0].hosts, "node-a,node-b");
  EXPECT_EQ(sessions[0].world_size, 2);
}

TEST(ResultsFile, EveryDatasetCarriesItsUnitAndDescription) {
  TempDir dir;
  const std::string path = dir.file("units.h5");
  ResultsWriter::create(path, make_run_info()).close();
  const hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  ASSERT_GE(file, 0);
  for (const auto& table : results::layout()) {
    for (const auto& column : table.columns) {
      const std::string where = "/" + table.path + "/" + column.name;
      const hid_t dataset = H5Dopen2(file, where.c_str(), H5P_DEFAULT);
      ASSERT_GE(dataset, 0) << where;
      EXPECT_EQ(h5::read_string_attribute(dataset, "unit"), column.unit) << where;
      EXPECT_EQ(h5::read_string_attribute(dataset, "description"), column.doc) << where;
      H5Dclose(dataset);
    }
  }
  H5Fclose(file);
}

TEST(ResultsFile, GrowsByStepAndKeepsStepOrder) {
  TempDir dir;
  const std::string path = dir.file("grow.h5");
  auto writer = ResultsWriter::create(path, make_run_info());
  for (int64_t step = 1; step <= 40; ++step) write_step(writer, step, 1 + step % 7);
  writer.close();
  const ResultsReader reader(path);
  EXPECT_EQ(reader.rows("metrics"), 40);
  int64_t expected_samples = 0;
  for (int64_t step = 1; step <= 40; ++step) expected_samples += 1 + step % 7;
  EXPECT_EQ(reader.rows("samples"), expected_samples);
  EXPECT_EQ(reader.rows("timings"), 80);
  EXPECT_EQ(reader.rows("pool/distribution"), 120);
  const auto samples = reader.samples();
  for (size_t i = 1; i < samples.size(); ++i) EXPECT_LE(samples[i - 1].step, samples[i].step);
  EXPECT_TRUE(same(reader.samples_of_step(33), testing::make_samples(33, 1 + 33 % 7)));
}

TEST(ResultsFile, TruncateDropsLaterStepsAndTheyAreRedoneOnce) {
  TempDir dir;
  const std::string path = dir.file("truncate.h5");
  auto writer = ResultsWriter::create(path, make_run_info());
  for (int64_t step = 1; step <= 5; ++step) write_step(writer, step, 3);
  writer.truncate_to(3);
  EXPECT_EQ(writer.steps_done(), 3);
  for (int64_t step = 4; step <= 6; ++step) write_step(writer, step, 2);
  writer.close();
  const ResultsReader reader(path);
  EXPECT_EQ(reader.header().steps_done, 6);
  const auto metrics = reader.metrics();
  ASSERT_EQ(metrics.size(), 6u);
  for (size_t i = 0; i < metrics.size(); ++i) EXPECT_EQ(metrics[i].step, int64_t(i) + 1);
  EXPECT_EQ(reader.rows("samples"), 3 * 3 + 3 * 2);
  EXPECT_TRUE(same(reader.samples_of_step(4), testing::make_samples(4, 2)));
  EXPECT_EQ(reader.rows("pool/steps"), 6);
}

TEST(ResultsFile, ResumeAppendsToTheSameRun) {
  TempDir dir;
  const std::string path = dir.file("resume.h5");
  {
    auto writer = ResultsWriter::create(path, make_run_info());
    write_step(writer, 1, 2);
    write_step(writer, 2, 2);
    writer.set_status(RunStatus::kPreempted);
  }
  EXPECT_EQ(read_results_header(path).status, RunStatus::kPreempted);
  RunInfo info = make_run_info();
  info.world_size = 3;
  info.hosts = {"n1", "n2", "n3"};
  {
    auto writer = ResultsWriter::resume(path, info);
    EXPECT_EQ(writer.steps_done(), 2);
    EXPECT_EQ(writer.status(), RunStatus::kRunning);
    write_step(writer, 3, 2);
    writer.set_status(RunStatus::kComplete);
  }
  const ResultsReader reader(path);
  EXPECT_EQ(reader.header().steps_done, 3);
  EXPECT_EQ(reader.header().status, RunStatus::kComplete);
  EXPECT_EQ(reader.header().world_size, 3);
  EXPECT_EQ(reader.header().hosts, info.hosts);
  EXPECT_EQ(reader.rows("metrics"), 3);
  const auto sessions = reader.sessions();
  ASSERT_EQ(sessions.size(), 2u);
  EXPECT_EQ(sessions[1].session, 1);
  EXPECT_EQ(sessions[1].from_step, 2);
  EXPECT_EQ(sessions[1].hosts, "n1,n2,n3");
}

TEST(ResultsFile, RefusesAFileOfAnotherJob) {
  TempDir dir;
  const std::string path = dir.file("other.h5");
  ResultsWriter::create(path, make_run_info(0x1111222233334444ull)).close();
  const std::string message =
      message_of([&] { ResultsWriter::resume(path, make_run_info(0xaaaabbbbccccddddull)); });
  EXPECT_TRUE(contains(message, path)) << message;
  EXPECT_TRUE(contains(message, "1111222233334444")) << message;
  EXPECT_TRUE(contains(message, "aaaabbbbccccdddd")) << message;
  EXPECT_THROW(ResultsWriter::resume(path, make_run_info(0xaaaabbbbccccddddull)), InputError);
  EXPECT_THROW(check_results_output(path, 0xaaaabbbbccccddddull), InputError);
  const auto header = check_results_output(path, 0x1111222233334444ull);
  ASSERT_TRUE(header.has_value());
  EXPECT_EQ(header->steps_done, 0);
  EXPECT_FALSE(check_results_output(dir.file("absent.h5"), 1).has_value());
}

TEST(ResultsFile, RefusesToCreateOverAnExistingFile) {
  TempDir dir;
  const std::string path = dir.file("exists.h5");
  ResultsWriter::create(path, make_run_info()).close();
  EXPECT_THROW(ResultsWriter::create(path, make_run_info()), InputError);
}

TEST(ResultsFile, UnwritableLocationIsInputErrorBeforeAnythingIsWritten) {
  TempDir dir;
  const std::string not_a_folder = dir.file("plain.txt");
  std::ofstream(not_a_folder) << "x";
  const std::string path = not_a_folder + "/run.h5";
  const std::string message = message_of([&] { check_results_output(path, 1); });
  EXPECT_TRUE(contains(message, path)) << message;
  EXPECT_THROW(check_results_output(path, 1), InputError);
  EXPECT_THROW(ResultsWriter::create(path, make_run_info()), InputError);
  EXPECT_THROW(ResultsWriter::create(dir.path().string(), make_run_info()), InputError);
  // Nothing but the file made above.
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir.path()), {}), 1);
}

TEST(ResultsFile, NonResultsFilesAreInputErrors) {
  TempDir dir;
  const std::string text = dir.file("notes.txt");
  std::ofstream(text) << "hello";
  EXPECT_TRUE(contains(message_of([&] { ResultsReader reader(text); }), "not an HDF5 file"));
  EXPECT_THROW(ResultsReader reader(text), InputError);
  EXPECT_THROW(ResultsReader reader(dir.file("missing.h5")), InputError);

  const std::string foreign = dir.file("foreign.h5");
  H5Fclose(H5Fcreate(foreign.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT));
  EXPECT_TRUE(
      contains(message_of([&] { ResultsReader reader(foreign); }), "not an alignpro results file"));
  EXPECT_THROW(ResultsWriter::resume(foreign, make_run_info()), InputError);

  const std::string future = dir.file("future.h5");
  ResultsWriter::create(future, make_run_info()).close();
  const hid_t file = H5Fopen(future.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  ASSERT_GE(file, 0);
  h5::write_attribute(file, "format_version", int64_t{99}, future);
  H5Fclose(file);
  const std::string message = message_of([&] { ResultsReader reader(future); });
  EXPECT_TRUE(contains(message, "99") && contains(message, "unknown")) << message;
  EXPECT_THROW(ResultsReader reader(future), InputError);
}

TEST(ResultsFile, MissingDatasetIsNamed) {
  TempDir dir;
  const std::string path = dir.file("partial.h5");
  ResultsWriter::create(path, make_run_info()).close();
  const hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  ASSERT_GE(file, 0);
  H5Ldelete(file, "/samples/reward", H5P_DEFAULT);
  H5Fclose(file);
  const std::string message = message_of([&] { ResultsReader reader(path); });
  EXPECT_TRUE(contains(message, "/samples/reward")) << message;
  EXPECT_THROW(ResultsReader reader(path), InputError);
}

TEST(ResultsFile, StatusTransitionsAreRecorded) {
  TempDir dir;
  const std::string path = dir.file("status.h5");
  auto writer = ResultsWriter::create(path, make_run_info());
  EXPECT_EQ(writer.status(), RunStatus::kRunning);
  write_step(writer, 1, 1);
  writer.set_status(RunStatus::kPreempted);
  writer.close();
  EXPECT_EQ(read_results_header(path).status, RunStatus::kPreempted);

  auto resumed = ResultsWriter::resume(path, make_run_info());
  EXPECT_EQ(read_results_header(path).status, RunStatus::kRunning);
  resumed.set_status(RunStatus::kFailed, "reward is NaN at prompt 3, candidate 1, rank 0");
  auto header = read_results_header(path);
  EXPECT_EQ(header.status, RunStatus::kFailed);
  EXPECT_EQ(header.error_message, "reward is NaN at prompt 3, candidate 1, rank 0");
  resumed.set_status(RunStatus::kComplete);
  header = read_results_header(path);
  EXPECT_EQ(header.status, RunStatus::kComplete);
  EXPECT_EQ(header.error_message, "");
  resumed.close();
  EXPECT_THROW(resumed.commit_step(2), RuntimeError);
  for (auto status :
       {RunStatus::kRunning, RunStatus::kComplete, RunStatus::kPreempted, RunStatus::kFailed}) {
    EXPECT_EQ(parse_status(status_name(status)), status);
  }
  EXPECT_FALSE(parse_status("finished").has_value());
}

TEST(ResultsFile, CommitChecksTheStepOfEveryRow) {
  TempDir dir;
  auto writer = ResultsWriter::create(dir.file("steps.h5"), make_run_info());
  write_step(writer, 1, 1);
  writer.append(testing::make_metrics(3));
  const std::string message = message_of([&] { writer.commit_step(2); });
  EXPECT_TRUE(contains(message, "/metrics") && contains(message, "step 3")) << message;
  writer.discard_pending();
  EXPECT_EQ(writer.pending_rows(), 0u);
  EXPECT_THROW(writer.commit_step(0), RuntimeError);  // going back
  // An evaluation recorded after its step's commit joins the same step.
  writer.append(testing::make_summary(0, 1, "none"));
  writer.commit_step(1);
  writer.close();
  const ResultsReader reader(dir.file("steps.h5"));
  EXPECT_EQ(reader.rows("metrics"), 1);
  EXPECT_EQ(reader.rows("eval/summary"), 1);
}

TEST(ResultsFile, DiscardedRowsAreNeverWritten) {
  TempDir dir;
  const std::string path = dir.file("discard.h5");
  auto writer = ResultsWriter::create(path, make_run_info());
  write_step(writer, 1, 2);
  writer.append(testing::make_metrics(2));
  writer.append(testing::make_samples(2, 4));
  EXPECT_EQ(writer.pending_rows(), 5u);
  writer.discard_pending();
  writer.append(testing::make_metrics(2));
  writer.commit_step(2);
  writer.close();
  const ResultsReader reader(path);
  EXPECT_EQ(reader.rows("metrics"), 2);
  EXPECT_EQ(reader.rows("samples"), 2);
}

TEST(ResultsFile, InvalidUtf8IsStoredAsReplacementCharacters) {
  TempDir dir;
  const std::string path = dir.file("utf8.h5");
  auto writer = ResultsWriter::create(path, make_run_info());
  TrainingSample sample = testing::make_sample(1, 0);
  sample.response = std::string("cut \xE2\x9C") + " end" + std::string(1, '\0') + "!";
  writer.append(sample);
  writer.commit_step(1);
  writer.close();
  const auto back = ResultsReader(path).samples();
  ASSERT_EQ(back.size(), 1u);
  EXPECT_EQ(back[0].response, "cut \xEF\xBF\xBD\xEF\xBF\xBD end\xEF\xBF\xBD!");
  EXPECT_EQ(h5::sanitize_utf8("caf\xC3\xA9 \xF0\x9F\x99\x82"), "caf\xC3\xA9 \xF0\x9F\x99\x82");
  EXPECT_EQ(h5::sanitize_utf8("\xC0\xAF"), "\xEF\xBF\xBD\xEF\xBF\xBD");  // overlong '/'
}

// A full disk, simulated with a file-size limit in a child process: the failing write is a
// RuntimeError naming the file, and the file stays readable at its last commit.
TEST(ResultsFile, FullDiskIsRuntimeErrorNamingTheFile) {
  TempDir dir;
  const std::string path = dir.file("full.h5");
  const std::string report = dir.file("report.txt");
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    int code = 3;
    try {
      auto writer = ResultsWriter::create(path, make_run_info());
      write_step(writer, 1, 2);
      std::signal(SIGXFSZ, SIG_IGN);
      const auto size = std::filesystem::file_size(path);
      rlimit limit{static_cast<rlim_t>(size + 200000), static_cast<rlim_t>(size + 200000)};
      setrlimit(RLIMIT_FSIZE, &limit);
      for (int64_t step = 2; step < 1000; ++step) {
        std::vector<TrainingSample> samples = testing::make_samples(step, 50);
        for (auto& s : samples) s.response = std::string(4000, 'z');
        writer.append(testing::make_metrics(step));
        writer.append(samples);
        writer.commit_step(step);
      }
    } catch (const RuntimeError& e) {
      std::ofstream(report) << e.what();
      code = 0;
    } catch (...) {
      code = 1;
    }
    _exit(code);
  }
  int status = 0;
  waitpid(child, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  ASSERT_EQ(WEXITSTATUS(status), 0) << "1: another error, 3: no error";
  std::ifstream in(report);
  const std::string message((std::istreambuf_iterator<char>(in)), {});
  EXPECT_TRUE(contains(message, path)) << message;
  const ResultsReader reader(path);
  EXPECT_GE(reader.header().steps_done, 1);
  EXPECT_EQ(reader.rows("metrics"), reader.header().steps_done);
  EXPECT_EQ(reader.rows("samples"), 2 + 50 * (reader.header().steps_done - 1));
}

}  // namespace
}  // namespace alignpro
