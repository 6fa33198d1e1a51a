#include "common/log.h"

#include <spdlog/sinks/stdout_color_sinks.h>

#include <cstdlib>

#include "common/error.h"

namespace alignpro {

spdlog::level::level_enum parse_log_level(const std::string& name) {
  static const std::pair<const char*, spdlog::level::level_enum> kLevels[] = {
      {"trace", spdlog::level::trace}, {"debug", spdlog::level::debug},
      {"info", spdlog::level::info},   {"warn", spdlog::level::warn},
      {"error", spdlog::level::err},   {"off", spdlog::level::off}};
  for (const auto& [level_name, level] : kLevels) {
    if (name == level_name) return level;
  }
  throw InputError("ALIGNPRO_LOG_LEVEL: found '" + name +
                   "'; allowed: trace, debug, info, warn, error, off");
}

void init_logging(int rank, int world_size) {
  auto logger = spdlog::get("alignpro");
  if (!logger) {
    logger = spdlog::stderr_color_mt("alignpro");
    spdlog::set_default_logger(logger);
  }
  const std::string rank_field =
      "[rank " + std::to_string(rank) + "/" + std::to_string(world_size) + "]";
  logger->set_pattern("[%Y-%m-%d %H:%M:%S.%e] " + rank_field + " [%l] %v");
  const char* level = std::getenv("ALIGNPRO_LOG_LEVEL");
  logger->set_level(level && *level ? parse_log_level(level) : spdlog::level::info);
  logger->flush_on(spdlog::level::warn);
}

}  // namespace alignpro
