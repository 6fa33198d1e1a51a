#include "io/file_util.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <filesystem>

#include "common/error.h"

namespace alignpro {

namespace fs = std::filesystem;

void check_output_location(const std::string& path, const std::string& what) {
  const auto refuse = [&](const std::string& why) {
    throw InputError(what + " " + path + ": cannot be written: " + why +
                     "; allowed: a file name in a folder this process can write");
  };
  if (path.empty()) refuse("the path is empty");
  std::error_code ec;
  const fs::path target = fs::absolute(path, ec);
  if (fs::is_directory(target, ec)) refuse("it is a folder");
  if (fs::exists(target, ec)) {
    if (access(target.c_str(), W_OK) != 0) refuse(std::string("the file: ") + std::strerror(errno));
    return;
  }
  fs::path folder = target.parent_path();
  while (!folder.empty() && !fs::exists(folder, ec)) {
    if (folder == folder.root_path()) break;
    folder = folder.parent_path();
  }
  if (!fs::is_directory(folder, ec)) refuse(folder.string() + " is not a folder");
  if (access(folder.c_str(), W_OK | X_OK) != 0) {
    refuse("folder " + folder.string() + ": " + std::strerror(errno));
  }
}

std::string temporary_sibling(const std::string& path, const std::string& tag) {
  const fs::path target(path);
  const std::string name = "." + target.filename().string() + "." + tag + "-" +
                           std::to_string(static_cast<long>(getpid()));
  return (target.parent_path() / name).string();
}

void fsync_path(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw RuntimeError(path + ": cannot open to sync: " + std::strerror(errno));
  const int status = fsync(fd);
  const int error = errno;
  ::close(fd);
  if (status != 0) throw RuntimeError(path + ": cannot sync to disk: " + std::strerror(error));
}

void fsync_parent_folder(const std::string& path) {
  fs::path folder = fs::path(path).parent_path();
  if (folder.empty()) folder = ".";
  const int fd = ::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;  // some file systems do not let folders be opened; the rename still holds
  fsync(fd);
  ::close(fd);
}

void publish_new_file(const std::string& temporary, const std::string& path) {
  // link() fails when the name exists, unlike rename(), so nothing is ever overwritten.
  if (link(temporary.c_str(), path.c_str()) == 0) {
    unlink(temporary.c_str());
  } else if (errno == EEXIST) {
    unlink(temporary.c_str());
    throw InputError(path + ": a file appeared there while it was being created");
  } else if (std::rename(temporary.c_str(), path.c_str()) != 0) {
    // File systems without hard links fall back to rename.
    throw RuntimeError(path + ": cannot move " + temporary +
                       " into place: " + std::strerror(errno));
  }
  fsync_parent_folder(path);
}

void replace_file(const std::string& temporary, const std::string& path) {
  if (std::rename(temporary.c_str(), path.c_str()) != 0) {
    throw RuntimeError(path + ": cannot move " + temporary +
                       " into place: " + std::strerror(errno));
  }
  fsync_parent_folder(path);
}

std::string utc_now_iso8601() {
  const std::time_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm utc{};
  gmtime_r(&now, &utc);
  char text[32];
  std::strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%SZ", &utc);
  return text;
}

}  // namespace alignpro
