// The error types of alignpro. Bad input (job files, data, model files, arguments) is an
// InputError and exits with code 2; a failure of the environment or of the run is a
// RuntimeError and exits with code 1. Both are caught once, at the top of the program.
#pragma once

#include <stdexcept>
#include <string>

namespace alignpro {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Something the user gave us is wrong; the message says what, where, and what is allowed.
class InputError : public Error {
 public:
  using Error::Error;
};

// Something failed while running: MPI, the file system, a numerical blow-up.
class RuntimeError : public Error {
 public:
  using Error::Error;
};

// Process exit codes, documented in the README.
inline constexpr int kExitOk = 0;
inline constexpr int kExitRuntimeFailure = 1;
inline constexpr int kExitBadInput = 2;
// The run stopped on SIGTERM/SIGUSR1 after writing a checkpoint; it can be resumed.
inline constexpr int kExitPreempted = 3;

}  // namespace alignpro
