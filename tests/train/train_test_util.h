// Helpers of the end-to-end training tests: a temporary folder, small job files on the model
// fixtures, running `alignpro` (under mpiexec for several ranks), and comparing runs.
#pragma once

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "io/checkpoint.h"
#include "io/results_file.h"
#include "support/command.h"
#include "support/temp_dir.h"

namespace alignpro::testing {

namespace fs = std::filesystem;

inline std::string fixture(const std::string& name) {
  return (fs::path(ALIGNPRO_TEST_DATA) / "fixtures" / "models" / name).string();
}

inline void write_text(const std::string& path, const std::string& text) {
  std::ofstream(path) << text;
}

inline std::string read_text(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

inline const char* kPrompts =
    "tell me about volcanoes\nhow do bees make honey\nexplain the water cycle\n"
    "what is a prime number\nwhy is the sky blue\ndescribe a healthy breakfast\n";

// A job on the random GPT-2 fixture; `extra` is appended (later keys of a section may not
// repeat earlier ones, so callers add only keys not set here).
struct JobText {
  std::string run, prompter, target, reward, optim, eval, runtime;
  std::string text() const {
    return "[run]\n" + run + "\n[data]\ntrain = \"prompts.txt\"\neval = \"prompts.txt\"\n" +
           "\n[prompter]\n" + prompter + "\n[target]\n" + target + "\n[reward]\n" + reward +
           "\n[optim]\n" + optim + "\n[eval]\n" + eval + "\n[runtime]\nthreads = 1\n" + runtime;
  }
};

// An LM prompter and an LM target, both the GPT-2 fixture; the reward is whether the response
// has a vowel, which the random target's outputs often have and often lack.
inline JobText lm_job(int steps) {
  JobText job;
  job.run =
      "name = \"lm\"\nseed = 11\nsteps = " + std::to_string(steps) + "\ncheckpoint_every = 1\n";
  job.prompter = "model = \"" + fixture("gpt2") + "\"\ncandidates = 2\nmax_new_tokens = 6\n";
  job.target = "model = \"" + fixture("gpt2") + "\"\nmax_new_tokens = 6\nsamples = 2\n";
  job.reward = "kind = \"regex\"\nregex = \"[aeiou]\"\n";
  job.optim = "lr = 1e-4\nbatch_prompts = 2\n";
  job.eval = "prompts = 4\nbootstrap = 100\n";
  return job;
}

// A pool prompter over three templates in front of the GPT-2 fixture, with a length reward.
inline JobText pool_job(int steps) {
  JobText job;
  job.run = "name = \"pool\"\nseed = 7\nsteps = " + std::to_string(steps) + "\n";
  job.prompter =
      "kind = \"pool\"\ncandidates = 3\n"
      "pool = [\"{prompt}\", \"Please answer: {prompt}\", \"{prompt} Thanks!\"]\n";
  job.target = "model = \"" + fixture("gpt2") + "\"\nmax_new_tokens = 8\nsamples = 2\n";
  job.reward = "kind = \"length\"\nlength_min = 1\nlength_max = 4\n";
  job.optim = "lr = 0.1\nkl_coef = 0.1\nbatch_prompts = 4\n";
  job.eval = "prompts = 4\nbootstrap = 100\n";
  return job;
}

// Writes the job and its prompts into dir; returns the job file's path.
inline std::string write_job(const TempDir& dir, const std::string& name, const JobText& job) {
  write_text(dir.file("prompts.txt"), kPrompts);
  const std::string path = dir.file(name + ".toml");
  write_text(path, job.text());
  return path;
}

inline std::string mpiexec(int ranks) {
  std::string command = "mpiexec --oversubscribe";
  if (geteuid() == 0) command += " --allow-run-as-root";
  return command + " -n " + std::to_string(ranks) + " ";
}

using Result = CommandResult;

// Runs `alignpro ARGS` on `ranks` ranks (directly for one); standard output and error together.
inline Result run_alignpro(const std::string& arguments, int ranks = 1) {
  return run_command((ranks > 1 ? mpiexec(ranks) : std::string()) + "'" + ALIGNPRO_BINARY + "' " +
                     arguments + " 2>&1");
}

// A one-rank `alignpro train` in a child process, so that a test can signal or kill it.
class TrainProcess {
 public:
  TrainProcess(const std::string& job, const std::string& log) {
    pid_ = fork();
    if (pid_ == 0) {
      const std::string command =
          "exec '" + std::string(ALIGNPRO_BINARY) + "' train '" + job + "' >> '" + log + "' 2>&1";
      execl("/bin/sh", "sh", "-c", command.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
  }
  ~TrainProcess() {
    if (pid_ > 0 && !done_) {
      kill(pid_, SIGKILL);
      wait();
    }
  }
  void signal(int sig) { kill(pid_, sig); }
  // Exit code, or 128 + signal for a killed process.
  int wait() {
    int status = 0;
    waitpid(pid_, &status, 0);
    done_ = true;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
  bool running() {
    int status = 0;
    if (done_) return false;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      done_ = true;
      exit_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    return !done_;
  }
  int exit_code() const { return exit_; }

 private:
  pid_t pid_ = -1;
  bool done_ = false;
  int exit_ = -1;
};

// Steps committed to the results file so far (0 while it does not exist or cannot be read).
inline int64_t steps_done(const std::string& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) return 0;
  try {
    return read_results_header(path).steps_done;
  } catch (const std::exception&) {
    return 0;
  }
}

// Waits until the run has committed `steps` steps (or stopped); true if it got there.
inline bool wait_for_steps(TrainProcess& process, const std::string& path, int64_t steps) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(3);
  while (std::chrono::steady_clock::now() < deadline) {
    if (steps_done(path) >= steps) return true;
    if (!process.running()) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return false;
}

// The prompter tensors of the newest checkpoint of the run at `output`.
inline std::map<std::string, torch::Tensor> final_weights(const std::string& output) {
  CheckpointStore store(output + ".checkpoints", 100);
  const auto latest = store.latest();
  if (!latest) throw std::runtime_error(output + ": no checkpoint");
  std::map<std::string, torch::Tensor> weights;
  for (const auto& [name, tensor] : read_checkpoint(latest->path).tensors) {
    if (name.rfind("optim/", 0) != 0) weights[name] = tensor;
  }
  return weights;
}

// ||a - b|| / ||a|| over all tensors together, as one parameter vector.
//
// A norm, not the largest single difference: some parameters have a gradient that is zero in
// exact arithmetic (an attention key bias shifts every score of a query alike, and softmax
// ignores that), so what reaches them is rounding noise, which differs with the batch
// composition, and Adam scales that noise up to steps of about the learning rate.
inline double relative_difference(const std::map<std::string, torch::Tensor>& a,
                                  const std::map<std::string, torch::Tensor>& b) {
  double diff = 0, scale = 0;
  EXPECT_EQ(a.size(), b.size());
  for (const auto& [name, tensor] : a) {
    auto it = b.find(name);
    if (it == b.end()) {
      ADD_FAILURE() << "tensor " << name << " missing";
      continue;
    }
    const torch::Tensor x = tensor.to(torch::kFloat64);
    diff += (x - it->second.to(torch::kFloat64)).pow(2).sum().item<double>();
    scale += x.pow(2).sum().item<double>();
  }
  return scale > 0 ? std::sqrt(diff / scale) : std::sqrt(diff);
}

// The training samples of a run, ordered by what they are rather than by which rank wrote them.
inline std::vector<TrainingSample> ordered_samples(const std::string& path) {
  auto samples = ResultsReader(path).samples();
  std::sort(samples.begin(), samples.end(), [](const TrainingSample& a, const TrainingSample& b) {
    return std::tie(a.step, a.prompt_index, a.candidate, a.sample) <
           std::tie(b.step, b.prompt_index, b.candidate, b.sample);
  });
  return samples;
}

// Samples equal in everything a run decides (texts, rewards, streams), whichever rank drew them.
inline void expect_same_samples(const std::vector<TrainingSample>& a,
                                const std::vector<TrainingSample>& b, double reward_tolerance) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    SCOPED_TRACE("sample " + std::to_string(i) + " of step " + std::to_string(a[i].step));
    EXPECT_EQ(a[i].step, b[i].step);
    EXPECT_EQ(a[i].prompt_index, b[i].prompt_index);
    EXPECT_EQ(a[i].rewrite_stream, b[i].rewrite_stream);
    EXPECT_EQ(a[i].response_stream, b[i].response_stream);
    EXPECT_EQ(a[i].prompt, b[i].prompt);
    EXPECT_EQ(a[i].rewrite, b[i].rewrite);
    EXPECT_EQ(a[i].response, b[i].response);
    EXPECT_NEAR(a[i].reward, b[i].reward, reward_tolerance);
    EXPECT_NEAR(a[i].advantage, b[i].advantage, 1e-5);
  }
}

}  // namespace alignpro::testing
