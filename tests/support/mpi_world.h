// The MPI world of an MPI test executable built with support/mpi_main.cpp, set up once by its
// main() before the tests run.
#pragma once

#include "dist/communicator.h"

namespace alignpro::testing {

Communicator& mpi_world();

}  // namespace alignpro::testing
