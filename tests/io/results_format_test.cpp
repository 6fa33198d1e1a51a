// The format reference stays true to the code: every table, column, type, unit and root
// attribute the writer makes is documented.
#include <gtest/gtest.h>
#include <hdf5.h>

#include <filesystem>
#include <fstream>

#include "io/results_file.h"
#include "io_test_util.h"

namespace alignpro {
namespace {

// The reference is the README's "Results file format" section.
std::string reference_text() {
  std::ifstream in(std::string(ALIGNPRO_SOURCE_DIR) + "/README.md");
  return std::string((std::istreambuf_iterator<char>(in)), {});
}

TEST(ResultsFormatReference, DocumentsEveryColumnWithItsTypeAndUnit) {
  const std::string doc = reference_text();
  ASSERT_NE(doc.find("## Results file format"), std::string::npos) << "no results-format reference";
  for (const auto& table : results::layout()) {
    const std::string heading = "#### `/" + table.path + "`";
    const size_t begin = doc.find(heading);
    ASSERT_NE(begin, std::string::npos) << heading;
    const size_t end = doc.find("\n#", begin + heading.size());
    const std::string section = doc.substr(begin, end - begin);
    for (const auto& column : table.columns) {
      const std::string row = "| `" + column.name + "` | " + results::type_name(column.type) +
                              " | " + column.unit + " |";
      EXPECT_NE(section.find(row), std::string::npos) << table.path << ": " << row;
    }
  }
}

herr_t collect_name(hid_t, const char* name, const H5A_info_t*, void* data) {
  static_cast<std::vector<std::string>*>(data)->push_back(name);
  return 0;
}

TEST(ResultsFormatReference, DocumentsEveryRootAttribute) {
  const std::string doc = reference_text();
  ASSERT_FALSE(doc.empty());
  testing::TempDir dir;
  const std::string path = dir.file("attributes.h5");
  ResultsWriter::create(path, testing::make_run_info()).close();
  const hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  ASSERT_GE(file, 0);
  std::vector<std::string> names;
  H5Aiterate2(file, H5_INDEX_NAME, H5_ITER_INC, nullptr, collect_name, &names);
  H5Fclose(file);
  EXPECT_GE(names.size(), 15u);
  for (const auto& name : names) {
    EXPECT_NE(doc.find("| `" + name + "` |"), std::string::npos) << name;
  }
}

}  // namespace
}  // namespace alignpro
