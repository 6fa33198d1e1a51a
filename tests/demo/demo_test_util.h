// Where the tests of src/demo find the demo's assets and put their scratch files.
#pragma once

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace alignpro::testing {

// The demo folder under test: ALIGNPRO_DEMO_DIR when set (to test freshly regenerated assets),
// else the one shipped in the repository.
inline std::string demo_dir() {
  if (const char* dir = std::getenv("ALIGNPRO_DEMO_DIR"); dir != nullptr && *dir != '\0')
    return dir;
  return std::string(ALIGNPRO_SOURCE_DIR) + "/demo";
}

// A fresh folder under the system's temporary folder, unique to this process and `name`.
inline std::string scratch_dir(const std::string& name) {
  const auto folder = std::filesystem::temp_directory_path() /
                      ("alignpro_demo_test_" + std::to_string(getpid())) / name;
  std::filesystem::remove_all(folder);
  std::filesystem::create_directories(folder);
  return folder.string();
}

inline std::string write_file(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
  return path;
}

inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace alignpro::testing
