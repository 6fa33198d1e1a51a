// Logging: one format for every rank, "[time] [rank r/N] [level] [tag] message".
// The level comes from ALIGNPRO_LOG_LEVEL (trace, debug, info, warn, error, off); an unknown
// value is an InputError, never a silent default.
#pragma once

#include <spdlog/spdlog.h>

#include <string>

namespace alignpro {

// Installs the default logger for this process. Call again once the rank is known.
void init_logging(int rank, int world_size);

// Parses a level name as ALIGNPRO_LOG_LEVEL accepts it; throws InputError for anything else.
spdlog::level::level_enum parse_log_level(const std::string& name);

}  // namespace alignpro
