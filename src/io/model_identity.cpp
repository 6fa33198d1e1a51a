#include "io/model_identity.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <vector>

#include "common/error.h"
#include "common/rng.h"

namespace alignpro {

namespace fs = std::filesystem;

namespace {

// Small files are hashed whole; bigger ones (weights) by samples.
constexpr uintmax_t kWholeFileLimit = 64u << 20;
constexpr size_t kSampleCount = 16;
constexpr size_t kSampleBytes = 4096;
// A safetensors header is JSON of at most this many bytes (as the format's reference reader).
constexpr uint64_t kMaxSafetensorsHeader = 100u << 20;

// FNV-1a over everything fed to it, finished with a 64-bit mix.
class Hasher {
 public:
  void add(std::string_view bytes) {
    for (unsigned char c : bytes) {
      h_ ^= c;
      h_ *= 0x100000001b3ull;
    }
  }
  void add_number(uint64_t value) {
    char raw[8];
    std::memcpy(raw, &value, sizeof(raw));
    add(std::string_view(raw, sizeof(raw)));
  }
  // Length first, so that ("ab", "c") and ("a", "bc") differ.
  void add_field(std::string_view bytes) {
    add_number(bytes.size());
    add(bytes);
  }
  std::string hex() const {
    char text[17];
    std::snprintf(text, sizeof(text), "%016llx", static_cast<unsigned long long>(mix64(h_)));
    return text;
  }

 private:
  uint64_t h_ = 0xcbf29ce484222325ull;
};

std::string read_range(std::ifstream& in, uint64_t offset, size_t size) {
  std::string bytes(size, '\0');
  in.seekg(static_cast<std::streamoff>(offset));
  in.read(bytes.data(), static_cast<std::streamsize>(size));
  bytes.resize(static_cast<size_t>(std::max<std::streamsize>(0, in.gcount())));
  in.clear();
  return bytes;
}

// Evenly spaced samples of [begin, end), the last one ending at `end`.
void add_samples(Hasher& hasher, std::ifstream& in, uint64_t begin, uint64_t end) {
  if (end <= begin) return;
  const uint64_t length = end - begin;
  if (length <= kSampleCount * kSampleBytes) {
    hasher.add(read_range(in, begin, static_cast<size_t>(length)));
    return;
  }
  const uint64_t stride = (length - kSampleBytes) / (kSampleCount - 1);
  for (size_t i = 0; i < kSampleCount; ++i) {
    hasher.add(read_range(in, begin + i * stride, kSampleBytes));
  }
}

void add_file(Hasher& hasher, const fs::path& file, const std::string& folder) {
  std::error_code ec;
  const uintmax_t size = fs::file_size(file, ec);
  if (ec) throw InputError("model folder " + folder + ": cannot read " + file.string());
  std::ifstream in(file, std::ios::binary);
  if (!in) throw InputError("model folder " + folder + ": cannot open " + file.string());
  hasher.add_field(file.filename().string());
  hasher.add_number(size);
  if (file.extension() == ".safetensors") {
    // 8 bytes of little-endian header length, then the JSON header, then the tensor bytes.
    const std::string prefix = read_range(in, 0, 8);
    uint64_t header = 0;
    if (prefix.size() == 8) std::memcpy(&header, prefix.data(), 8);
    if (prefix.size() < 8 || header > kMaxSafetensorsHeader || 8 + header > size) {
      throw InputError(file.string() + ": not a safetensors file (header length " +
                       std::to_string(header) + " at byte 0, file size " + std::to_string(size) +
                       ")");
    }
    hasher.add(read_range(in, 8, static_cast<size_t>(header)));
    add_samples(hasher, in, 8 + header, size);
  } else if (size <= kWholeFileLimit) {
    hasher.add(read_range(in, 0, static_cast<size_t>(size)));
  } else {
    add_samples(hasher, in, 0, size);
  }
}

}  // namespace

std::string model_folder_identity(const std::string& folder) {
  std::error_code ec;
  if (!fs::is_directory(folder, ec)) {
    throw InputError("model folder " + folder + ": no such folder");
  }
  if (!fs::is_regular_file(fs::path(folder) / "config.json", ec)) {
    throw InputError("model folder " + folder + ": no config.json, so not a Hugging Face model");
  }
  // Every regular file but hidden ones and documentation, in name order.
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(folder, ec)) {
    const std::string name = entry.path().filename().string();
    if (!entry.is_regular_file(ec) || name.empty() || name[0] == '.') continue;
    if (entry.path().extension() == ".md") continue;
    files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  Hasher hasher;
  for (const auto& file : files) add_file(hasher, file, folder);
  return hasher.hex();
}

std::string text_identity(std::string_view text) {
  Hasher hasher;
  hasher.add_field(text);
  return hasher.hex();
}

}  // namespace alignpro
