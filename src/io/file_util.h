// File-system steps shared by the results file and the checkpoints: checking that an output
// can be written before any work starts, temporary names, fsync and atomic publication.
#pragma once

#include <string>

namespace alignpro {

// InputError naming `what` and `path` unless a file can be written there: the path is not a
// folder, an existing file is writable, and otherwise the nearest existing parent folder is.
void check_output_location(const std::string& path, const std::string& what);

// A hidden name in the same folder: "<folder>/.<name>.<tag>-<pid>".
std::string temporary_sibling(const std::string& path, const std::string& tag);

// fsync of a file, and of the folder holding it (which makes a rename durable).
void fsync_path(const std::string& path);
void fsync_parent_folder(const std::string& path);

// Moves a finished temporary file into place without replacing anything: InputError when
// `path` appeared meanwhile. The folder is synced afterwards.
void publish_new_file(const std::string& temporary, const std::string& path);
// Moves a finished temporary file into place, atomically replacing what was there.
void replace_file(const std::string& temporary, const std::string& path);

// The current time as ISO 8601 in UTC, to the second: "2025-01-31T12:34:56Z".
std::string utc_now_iso8601();

}  // namespace alignpro
