// What the commands that train the demo's kind of models share: `alignpro sft` and
// `alignpro fit-reward` declare the same training options, and they and `alignpro make-demo`
// run on the MPI world the same way.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>

#include "demo/supervised.h"
#include "dist/communicator.h"

namespace alignpro {

// The help texts that differ between the commands.
struct TrainingOptionHelp {
  const char* model;       // --model: what the starting folder may be
  const char* batch;       // --batch: what one step counts
  const char* max_length;  // --max-length: what happens to a longer sequence
};

// Declares the options of demo::TrainingOptions that every supervised command takes (the
// starting point, the optimiser and its schedule, logging, device) and --threads.
void add_training_options(CLI::App& sub, demo::TrainingOptions& options, int& threads,
                          const TrainingOptionHelp& help);

// Starts MPI when under a launcher, sets up logging and `threads` compute threads per rank
// (0: the node's cores shared by its ranks), and runs `body` on the world.
int run_on_mpi_world(int threads, const std::function<int(Communicator&)>& body);

}  // namespace alignpro
