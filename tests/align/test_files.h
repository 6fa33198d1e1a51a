// Temporary files for the tests of src/align: each test writes what it reads.
#pragma once

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace alignpro::testing {

// Writes text to a fresh file under the system's temporary folder and returns its path.
inline std::string write_temp_file(const std::string& name, const std::string& text) {
  const auto folder =
      std::filesystem::temp_directory_path() / ("alignpro_align_test_" + std::to_string(getpid()));
  std::filesystem::create_directories(folder);
  const auto path = folder / name;
  std::ofstream(path, std::ios::binary) << text;
  return path.string();
}

}  // namespace alignpro::testing
