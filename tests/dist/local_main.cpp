// Runs the communicator suite on the single-process communicator.
#include <gtest/gtest.h>

#include "dist/communicator_tests.h"

namespace {
std::unique_ptr<alignpro::Communicator> local = alignpro::make_local_communicator();
}

alignpro::Communicator& alignpro::testing::comm() {
  return *local;
}

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  alignpro::testing::exclude_multi_rank_tests();  // one process cannot disagree with itself
  return RUN_ALL_TESTS();
}
