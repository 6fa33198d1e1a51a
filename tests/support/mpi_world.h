// The MPI world of the test_align_mpi executable, set up once by its main().
#pragma once

#include "dist/communicator.h"

namespace alignpro::testing {

Communicator& mpi_world();

}  // namespace alignpro::testing
