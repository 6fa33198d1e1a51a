// main() of the MPI tests of src/align: MPI is initialised before the tests and finalised after
// them; under mpirun every rank runs every test, and collectives inside tests meet.
#include <gtest/gtest.h>

#include <memory>

#include "common/error.h"
#include "mpi_world.h"

namespace alignpro::testing {

namespace {
Communicator* g_world = nullptr;
}  // namespace

Communicator& mpi_world() {
  if (g_world == nullptr) throw RuntimeError("the MPI test world is not set up");
  return *g_world;
}

}  // namespace alignpro::testing

int main(int argc, char** argv) {
  alignpro::MpiSession session(&argc, &argv);
  ::testing::InitGoogleTest(&argc, argv);
  std::unique_ptr<alignpro::Communicator> world = session.world();
  alignpro::testing::g_world = world.get();
  const int result = RUN_ALL_TESTS();
  alignpro::testing::g_world = nullptr;
  return result;
}
