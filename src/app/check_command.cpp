// `alignpro check JOB.toml`: validate a job and print its resolved configuration.
#include <iostream>
#include <memory>

#include "app/command.h"
#include "common/job.h"

namespace alignpro {

namespace {

struct CheckArgs {
  std::string job;
  std::vector<std::string> overrides;
  int ranks = 1;
};

int run_check(const CheckArgs& args) {
  JobReadOptions options;
  options.overrides = args.overrides;
  options.world_size = args.ranks;
  const Job job = read_job(args.job, options);
  std::cout << "# " << job.path << ": valid for " << args.ranks << " rank"
            << (args.ranks == 1 ? "" : "s") << "; resolved configuration:\n"
            << job.to_toml();
  return 0;
}

}  // namespace

Command add_check_command(CLI::App& app) {
  auto args = std::make_shared<CheckArgs>();
  auto* sub = app.add_subcommand(
      "check", "Validate a job file and print its resolved configuration; writes nothing");
  sub->add_option("job", args->job, "Job file (TOML)")->required();
  sub->add_option("--set", args->overrides, "Override a key: section.key=value (repeatable)")
      ->take_all();
  sub->add_option("--ranks", args->ranks, "Check the job for this many MPI ranks")
      ->check(CLI::PositiveNumber);
  return {sub, [args] { return run_check(*args); }};
}

}  // namespace alignpro
