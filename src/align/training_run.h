// A whole training run: validate the output, load the models, resume from the last checkpoint
// when the output holds an unfinished run, run the steps, record everything in the results
// file, checkpoint, evaluate, and stop cleanly on SIGTERM/SIGUSR1.
#pragma once

#include "common/job.h"
#include "dist/communicator.h"

namespace alignpro {

// Installs the handlers for SIGTERM and SIGUSR1: the first asks the run to stop at the next
// step boundary (checkpoint, status "preempted", exit code 3); a second exits at once.
void install_stop_signals();

// Runs `alignpro train` on this rank; returns the process exit code.
int run_training(const Job& job, Communicator& comm);

// Runs `alignpro eval`: one evaluation of the job's prompter (its last checkpoint when the
// output holds one) on the held-out prompts, printed and appended to the results file.
int run_evaluation(const Job& job, Communicator& comm);

}  // namespace alignpro
