// main() of the MPI test executables: MPI is initialised before the tests and finalised after
// them; under mpirun every rank runs every test, so collectives inside tests meet. Only rank 0
// prints gtest's report, and the run passes only if it passed on every rank.
#include <gtest/gtest.h>

#include <memory>

#include "common/error.h"
#include "support/mpi_world.h"

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
  if (world->rank() != 0) {
    auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
  }
  const int failed = RUN_ALL_TESTS();
  const bool all_passed = world->all(failed == 0, "test result");
  alignpro::testing::g_world = nullptr;
  world.reset();
  return all_passed ? 0 : 1;
}
