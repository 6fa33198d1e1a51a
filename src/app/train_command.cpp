// `alignpro train JOB.toml` and `alignpro eval JOB.toml`: the Align-Pro run on every rank of the
// MPI world (or in one process when started without a launcher).
#include <memory>

#include "align/training_run.h"
#include "app/command.h"
#include "common/job.h"
#include "common/log.h"
#include "common/threads.h"
#include "dist/communicator.h"
#include "dist/job_agreement.h"

namespace alignpro {

namespace {

struct RunArgs {
  std::string job;
  std::vector<std::string> overrides;
};

// Reads the job on every rank, checks that all ranks agree, sets up threads and logging, then
// hands over to `body`.
int run_on_world(const RunArgs& args, int (*body)(const Job&, Communicator&)) {
  int argc = 0;
  char** argv = nullptr;
  MpiSession session(&argc, &argv);
  auto probe = session.world();
  init_logging(probe->rank(), probe->size());
  JobReadOptions options;
  options.overrides = args.overrides;
  options.world_size = probe->size();
  const Job job = read_job(args.job, options);
  auto comm = session.world(job.runtime.watchdog_warn, job.runtime.watchdog_abort);
  probe.reset();
  check_same_job(*comm, job);
  const int threads = configure_threads(static_cast<int>(job.runtime.threads), comm->local_size());
  if (comm->is_coordinator()) {
    spdlog::info("[run] {} on {} rank{}, {} thread{} per rank; resolved job:\n{}", job.run.name,
                 comm->size(), comm->size() == 1 ? "" : "s", threads, threads == 1 ? "" : "s",
                 job.to_toml());
  }
  install_stop_signals();
  return body(job, *comm);
}

Command add_run_command(CLI::App& app, const char* name, const char* help,
                        int (*body)(const Job&, Communicator&)) {
  auto args = std::make_shared<RunArgs>();
  auto* sub = app.add_subcommand(name, help);
  sub->add_option("job", args->job, "Job file (TOML)")->required();
  sub->add_option("--set", args->overrides, "Override a key: section.key=value (repeatable)")
      ->take_all();
  return {sub, [args, body] { return run_on_world(*args, body); }};
}

}  // namespace

Command add_train_command(CLI::App& app) {
  return add_run_command(app, "train",
                         "Train the prompter (resumes an unfinished run found at run.output)",
                         run_training);
}

Command add_eval_command(CLI::App& app) {
  return add_run_command(app, "eval",
                         "Evaluate no optimisation against Align-Pro (and RLHF) on data.eval",
                         run_evaluation);
}

}  // namespace alignpro
