// `alignpro make-demo`: regenerate every asset of the embedded demo from nothing, the world's
// data, the tokenizer and the three models, deterministically from the seed.
#include <fmt/format.h>

#include <iostream>
#include <memory>

#include "app/command.h"
#include "app/supervised_options.h"
#include "demo/make_demo.h"

namespace alignpro {

namespace {

struct MakeDemoArgs {
  demo::MakeDemoOptions options;
  // The demo's models are so small that more threads cost more in synchronisation than they
  // save, and far more when other processes share the cores.
  int threads = 1;
  bool probe_only = false;
};

int run_make_demo_command(const MakeDemoArgs& args) {
  return run_on_mpi_world(args.threads, [&args](Communicator& comm) {
    if (args.probe_only) {
      if (comm.is_coordinator()) {
        std::cout << demo::describe_report(
            demo::probe_demo(args.options.output, args.options.world));
      }
      return 0;
    }
    const demo::MakeDemoReport report = demo::make_demo(comm, args.options);
    if (comm.is_coordinator()) {
      std::cout << demo::describe_report(report)
                << fmt::format("\nmake-demo: all assets in {} in {:.0f}s\n", args.options.output,
                               report.seconds);
    }
    return 0;
  });
}

}  // namespace

Command add_make_demo_command(CLI::App& app) {
  auto args = std::make_shared<MakeDemoArgs>();
  auto* sub = app.add_subcommand(
      "make-demo",
      "Regenerate the demo's assets from scratch: the tiny world's data, its tokenizer, and the "
      "prompter, target and reward models (trained with sft and fit-reward), then measure them");
  sub->add_option("--output", args->options.output, "Folder for the assets")->capture_default_str();
  sub->add_option("--seed", args->options.world.seed, "Seed of the world's data and models")
      ->capture_default_str();
  sub->add_flag("--probe-only", args->probe_only,
                "Only measure the models already in --output and print the table");
  sub->add_option("--threads", args->threads, "Compute threads per rank; 0: cores / ranks")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  return {sub, [args] { return run_make_demo_command(*args); }};
}

}  // namespace alignpro
