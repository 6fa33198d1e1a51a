#include <gtest/gtest.h>

#include "common/error.h"
#include "common/log.h"

namespace alignpro {
namespace {

TEST(LogLevel, KnownNamesParse) {
  EXPECT_EQ(parse_log_level("debug"), spdlog::level::debug);
  EXPECT_EQ(parse_log_level("warn"), spdlog::level::warn);
  EXPECT_EQ(parse_log_level("off"), spdlog::level::off);
}

TEST(LogLevel, UnknownNameIsAnErrorNamingTheVariable) {
  try {
    parse_log_level("verbose");
    FAIL() << "accepted an unknown level";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("ALIGNPRO_LOG_LEVEL"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("'verbose'"), std::string::npos);
  }
}

}  // namespace
}  // namespace alignpro
