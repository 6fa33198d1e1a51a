// alignpro's command line: parses the arguments and hands over to one entry point per command.
// Exit codes: 0 success, 1 failure at run time, 2 bad input (see common/error.h).
#include <CLI/CLI.hpp>

#include <iostream>

#include "app/commands.h"
#include "common/error.h"
#include "common/log.h"

int main(int argc, char** argv) {
  using namespace alignpro;
  CLI::App app{"alignpro: Align-Pro prompt optimisation for frozen LLMs, as an MPI batch job"};
  app.require_subcommand(1);
  app.set_version_flag("--version", [] { return std::string("see: alignpro version"); });

  CheckArgs check;
  auto* check_cmd = app.add_subcommand("check", "Validate a job file and print its resolved "
                                                "configuration; writes nothing");
  check_cmd->add_option("job", check.job, "Job file (TOML)")->required();
  check_cmd->add_option("--set", check.overrides, "Override a key: section.key=value")
      ->take_all();
  check_cmd->add_option("--ranks", check.ranks, "Check the job for this many MPI ranks")
      ->check(CLI::PositiveNumber);

  auto* version_cmd = app.add_subcommand("version", "Print versions of alignpro and its libraries");
  auto* reference_cmd =
      app.add_subcommand("reference", "Print the job-file reference (Markdown)");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? kExitOk : kExitBadInput;
  }

  try {
    init_logging(0, 1);
    if (*check_cmd) return run_check(check);
    if (*version_cmd) return run_version();
    if (*reference_cmd) return run_reference();
  } catch (const InputError& e) {
    std::cerr << "alignpro: error: " << e.what() << "\n";
    return kExitBadInput;
  } catch (const std::exception& e) {
    std::cerr << "alignpro: failed: " << e.what() << "\n";
    return kExitRuntimeFailure;
  }
  return kExitOk;
}
