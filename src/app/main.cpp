// alignpro's command line: parses the arguments and hands over to one entry point per command.
// Exit codes: 0 success, 1 failure at run time, 2 bad input, 3 preempted (see common/error.h).
#include <hdf5.h>

#include <iostream>
#include <vector>

#include "app/command.h"
#include "common/error.h"
#include "common/log.h"

int main(int argc, char** argv) {
  using namespace alignpro;
  // Every HDF5 object is closed by its owner before main returns. Without this, the library's
  // exit handler would try again to close a results file whose writes failed (a full disk) and
  // can crash doing so, after the error was already reported.
  H5dont_atexit();
  CLI::App app{"alignpro: Align-Pro prompt optimisation for frozen LLMs, as an MPI batch job"};
  app.require_subcommand(1);

  // One line per command; each lives in its own *_command.cpp.
  const std::vector<Command> commands = {
      add_check_command(app),    add_version_command(app),    add_reference_command(app),
      add_inspect_command(app),  add_train_command(app),      add_eval_command(app),
      add_sft_command(app),      add_fit_reward_command(app), add_make_demo_command(app),
      add_generate_command(app),
  };

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? kExitOk : kExitBadInput;
  }

  try {
    init_logging(0, 1);
    for (const auto& command : commands) {
      if (command.app->parsed()) return command.run();
    }
  } catch (const InputError& e) {
    std::cerr << "alignpro: error: " << e.what() << "\n";
    return kExitBadInput;
  } catch (const std::exception& e) {
    std::cerr << "alignpro: failed: " << e.what() << "\n";
    return kExitRuntimeFailure;
  }
  return kExitOk;
}
