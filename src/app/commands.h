// One entry point per command of the command line; main() only parses and dispatches.
#pragma once

#include <string>
#include <vector>

namespace alignpro {

struct CheckArgs {
  std::string job;
  std::vector<std::string> overrides;
  int ranks = 1;
};

int run_check(const CheckArgs& args);
int run_version();
int run_reference();

}  // namespace alignpro
