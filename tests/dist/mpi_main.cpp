// Runs the communicator suite on the MPI world; only rank 0 prints gtest's report.
#include <gtest/gtest.h>

#include "dist/communicator_tests.h"

namespace {
std::unique_ptr<alignpro::Communicator> world;
}

alignpro::Communicator& alignpro::testing::comm() {
  return *world;
}

int main(int argc, char** argv) {
  alignpro::MpiSession session(&argc, &argv);
  world = session.world();
  ::testing::InitGoogleTest(&argc, argv);
  if (world->size() == 1) alignpro::testing::exclude_multi_rank_tests();
  if (world->rank() != 0) {
    auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
  }
  const int failed = RUN_ALL_TESTS();
  // Every rank must pass: a failure on any rank fails the run.
  const bool all_passed = world->all(failed == 0, "test result");
  world.reset();
  return all_passed ? 0 : 1;
}
