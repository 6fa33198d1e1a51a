// Stopping and resuming `alignpro train`: a run stopped by SIGTERM or killed with SIGKILL, then
// resumed, ends exactly where an uninterrupted run ends; a resume at another world size agrees;
// a resume with a changed model is refused naming it.
#include <cstdlib>
#include <random>

#include "train_test_util.h"

namespace alignpro::testing {
namespace {

constexpr int kSteps = 80;

// The pool job with a checkpoint every few steps, slowed by longer responses so that signals
// land mid-run. The target decodes greedily: across world sizes its batches differ, and with
// them the rounding of its logits, which may flip a sampled token of the nearly flat
// distributions of a random model; the prompter's choices are still sampled.
JobText restart_job() {
  JobText job = pool_job(kSteps);
  job.run += "checkpoint_every = 4\n";
  job.target = "model = \"" + fixture("gpt2") + "\"\nmax_new_tokens = 24\nsamples = 2\ntop_k = 1\n";
  job.eval = "prompts = 4\nbootstrap = 100\nevery = 20\n";
  return job;
}

// Everything a run decides, compared field by field; timings and timestamps are left out.
void expect_same_runs(const std::string& a, const std::string& b, double tolerance) {
  ResultsReader ra(a), rb(b);
  EXPECT_EQ(ra.header().status, RunStatus::kComplete);
  EXPECT_EQ(rb.header().status, RunStatus::kComplete);
  expect_same_samples(ordered_samples(a), ordered_samples(b), tolerance);
  const auto ma = ra.metrics(), mb = rb.metrics();
  ASSERT_EQ(ma.size(), mb.size());
  for (size_t i = 0; i < ma.size(); ++i) {
    EXPECT_EQ(ma[i].step, mb[i].step);
    EXPECT_NEAR(ma[i].reward_mean, mb[i].reward_mean, 1e-9 + tolerance);
    EXPECT_NEAR(ma[i].kl_mean, mb[i].kl_mean, 1e-6 + tolerance);
    EXPECT_NEAR(ma[i].loss, mb[i].loss, 1e-6 + tolerance);
    EXPECT_NEAR(ma[i].learning_rate, mb[i].learning_rate, 1e-12);
  }
  const auto pa = ra.pool_states(), pb = rb.pool_states();
  ASSERT_EQ(pa.size(), pb.size());
  for (size_t i = 0; i < pa.size(); ++i) {
    for (size_t t = 0; t < pa[i].trained.size(); ++t) {
      EXPECT_NEAR(pa[i].trained[t], pb[i].trained[t], 1e-6 + tolerance);
    }
  }
  const auto ea = ra.eval_samples(), eb = rb.eval_samples();
  ASSERT_EQ(ea.size(), eb.size());
  for (size_t i = 0; i < ea.size(); ++i) {
    EXPECT_EQ(ea[i].response, eb[i].response);
    EXPECT_EQ(ea[i].reward, eb[i].reward);
  }
  EXPECT_EQ(ra.eval_summaries().size(), rb.eval_summaries().size());
  EXPECT_LE(relative_difference(final_weights(a), final_weights(b)), 1e-6 + tolerance);
}

struct Runs {
  TempDir dir;
  std::string job = write_job(dir, "pool", restart_job());
  std::string reference = dir.file("reference.h5");
  std::string output = dir.file("runs/pool.h5");
  std::string log = dir.file("train.log");

  Runs() {
    const Result r = run_alignpro("train '" + job + "' --set run.output='\"" + reference + "\"'");
    EXPECT_EQ(r.exit_code, 0) << r.output;
  }
  std::string log_text() const { return read_text(log); }
};

TEST(Restart, SigtermStopsAtAStepBoundaryAndTheResumeEndsLikeAnUninterruptedRun) {
  Runs runs;
  {
    TrainProcess train(runs.job, runs.log);
    ASSERT_TRUE(wait_for_steps(train, runs.output, 6)) << runs.log_text();
    train.signal(SIGTERM);
    ASSERT_EQ(train.wait(), 3) << runs.log_text();  // the documented "preempted" exit code
  }
  const ResultsHeader stopped = read_results_header(runs.output);
  EXPECT_EQ(stopped.status, RunStatus::kPreempted);
  EXPECT_LT(stopped.steps_done, kSteps);
  // The checkpoint is that of the last step recorded: nothing is redone.
  EXPECT_EQ(stopped.checkpoint_step, stopped.steps_done);
  const Result resumed = run_alignpro("train '" + runs.job + "'");
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("resuming"), std::string::npos) << resumed.output;
  expect_same_runs(runs.reference, runs.output, 0.0);
}

TEST(Restart, SecondSignalExitsAtOnceAndTheResumeStillEndsLikeAnUninterruptedRun) {
  Runs runs;
  {
    TrainProcess train(runs.job, runs.log);
    ASSERT_TRUE(wait_for_steps(train, runs.output, 6)) << runs.log_text();
    train.signal(SIGTERM);
    train.signal(SIGTERM);
    ASSERT_EQ(train.wait(), 3) << runs.log_text();
  }
  EXPECT_LT(read_results_header(runs.output).steps_done, kSteps);
  const Result resumed = run_alignpro("train '" + runs.job + "'");
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  expect_same_runs(runs.reference, runs.output, 0.0);
}

TEST(Restart, KilledRunsLeaveReadableFilesAndTheResumeEndsLikeAnUninterruptedRun) {
  Runs runs;
  std::mt19937 random(20261203);
  // Ten kills at random points: each leaves a file h5py opens, still "running".
  for (int kill = 0; kill < 10; ++kill) {
    SCOPED_TRACE("kill " + std::to_string(kill));
    const int64_t before = steps_done(runs.output);
    TrainProcess train(runs.job, runs.log);
    ASSERT_TRUE(wait_for_steps(train, runs.output, before + 1)) << runs.log_text();
    std::this_thread::sleep_for(
        std::chrono::milliseconds(std::uniform_int_distribution<int>(0, 100)(random)));
    ASSERT_TRUE(train.running()) << "the run ended before kill " << kill << "; give it more steps";
    train.signal(SIGKILL);
    train.wait();
    const Result h5py = run_command("python3 -c \"import h5py; f = h5py.File('" + runs.output +
                                    "', 'r', swmr=True); print(f.attrs['status'])\" 2>&1");
    EXPECT_EQ(h5py.exit_code, 0) << h5py.output;
    EXPECT_NE(h5py.output.find("running"), std::string::npos) << h5py.output;
  }
  const Result resumed = run_alignpro("train '" + runs.job + "'");
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output << runs.log_text();
  expect_same_runs(runs.reference, runs.output, 0.0);
}

TEST(Restart, ResumeAtAnotherWorldSizeAgrees) {
  Runs runs;
  {
    TrainProcess train(runs.job, runs.log);
    ASSERT_TRUE(wait_for_steps(train, runs.output, 5)) << runs.log_text();
    train.signal(SIGUSR1);
    ASSERT_EQ(train.wait(), 3) << runs.log_text();
  }
  const Result resumed = run_alignpro("train '" + runs.job + "'", 2);
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_EQ(read_results_header(runs.output).world_size, 2);
  expect_same_runs(runs.reference, runs.output, 1e-5);
}

TEST(Restart, FullDiskFailsClearlyKeepsTheLastCheckpointAndTheResumeCompletes) {
  Runs runs;
  // A file size limit stands in for a full disk: the results file cannot grow past half its
  // final size (bash's ulimit -f counts KiB), while the small checkpoints still fit.
  const auto limit_kib = fs::file_size(runs.reference) / 2048;
  const std::string command = "bash -c \"trap '' XFSZ; ulimit -f " + std::to_string(limit_kib) +
                              "; exec '" + ALIGNPRO_BINARY + "' train '" + runs.job + "'\" > '" +
                              runs.log + "' 2>&1";
  const int status = std::system(command.c_str());
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 1) << runs.log_text();
  const std::string log = runs.log_text();
  EXPECT_NE(log.find(runs.output), std::string::npos) << log;
  EXPECT_NE(log.find("File too large"), std::string::npos) << log;
  // The last checkpoint is complete, and running the job again (with room on the disk)
  // repairs the file, resumes from that checkpoint and ends like an uninterrupted run.
  const auto latest = CheckpointStore(runs.output + ".checkpoints", 100).latest();
  ASSERT_TRUE(latest.has_value());
  EXPECT_GT(latest->step, 0);
  EXPECT_LT(latest->step, kSteps);
  EXPECT_EQ(read_checkpoint(latest->path).step, latest->step);
  const Result resumed = run_alignpro("train '" + runs.job + "'");
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("resuming"), std::string::npos) << resumed.output;
  expect_same_runs(runs.reference, runs.output, 0.0);
}

TEST(Restart, RefusesToResumeWithAChangedTargetNamingIt) {
  TempDir dir;
  fs::copy(fixture("gpt2"), dir.file("target"), fs::copy_options::recursive);
  JobText text = restart_job();
  text.target = "model = \"" + dir.file("target") + "\"\nmax_new_tokens = 24\n";
  const std::string job = write_job(dir, "pool", text);
  const std::string output = dir.file("runs/pool.h5");
  const std::string log = dir.file("train.log");
  {
    TrainProcess train(job, log);
    ASSERT_TRUE(wait_for_steps(train, output, 5)) << read_text(log);
    train.signal(SIGTERM);
    ASSERT_EQ(train.wait(), 3) << read_text(log);
  }
  // Other weights under the same folder name.
  fs::copy(fixture("gpt2_untied") + "/model.safetensors", dir.file("target/model.safetensors"),
           fs::copy_options::overwrite_existing);
  fs::copy(fixture("gpt2_untied") + "/config.json", dir.file("target/config.json"),
           fs::copy_options::overwrite_existing);
  const Result r = run_alignpro("train '" + job + "'");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("target"), std::string::npos) << r.output;
  EXPECT_EQ(read_results_header(output).status, RunStatus::kPreempted);
  // Told never to resume, the same run is refused with the reason.
  const Result never = run_alignpro("train '" + job + "' --set run.resume='\"never\"'");
  EXPECT_EQ(never.exit_code, 2) << never.output;
  EXPECT_NE(never.output.find("unfinished run"), std::string::npos) << never.output;
}

}  // namespace
}  // namespace alignpro::testing
