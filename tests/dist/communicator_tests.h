// The communicator suite runs twice: under mpiexec at 1, 2 and 4 ranks with the MPI
// communicator, and in one process with the single-process communicator.
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "dist/communicator.h"

namespace alignpro::testing {

// The communicator under test, set by the suite's main().
Communicator& comm();

// Adds the suites that need two or more ranks to gtest's negative filter.
inline void exclude_multi_rank_tests() {
  std::string filter = ::testing::GTEST_FLAG(filter);
  filter += filter.find('-') == std::string::npos ? "-" : ":";
  ::testing::GTEST_FLAG(filter) = filter + "JobAgreementAcrossRanks.*";
}

}  // namespace alignpro::testing
