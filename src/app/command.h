// How a command joins the command line: each command file defines one add_*_command function
// that declares its options on a CLI11 subcommand and returns what to run when it is chosen.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>

namespace alignpro {

struct Command {
  CLI::App* app = nullptr;  // the subcommand, to test whether it was chosen
  std::function<int()> run;
};

Command add_check_command(CLI::App& app);
Command add_version_command(CLI::App& app);
Command add_reference_command(CLI::App& app);
Command add_inspect_command(CLI::App& app);
Command add_train_command(CLI::App& app);
Command add_eval_command(CLI::App& app);
Command add_sft_command(CLI::App& app);
Command add_fit_reward_command(CLI::App& app);
Command add_make_demo_command(CLI::App& app);
Command add_generate_command(CLI::App& app);

}  // namespace alignpro
