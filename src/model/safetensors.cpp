#include "model/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "common/error.h"

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "safetensors stores little-endian values; this reader copies bytes as they are");

namespace alignpro {

namespace {

namespace fs = std::filesystem;

// The reference implementation refuses headers above 100 MB; so do we, before allocating.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;

struct DtypeInfo {
  const char* name;
  torch::ScalarType type;
  int64_t size;
};

constexpr DtypeInfo kDtypes[] = {
    {"F64", torch::kFloat64, 8},   {"F32", torch::kFloat32, 4}, {"F16", torch::kFloat16, 2},
    {"BF16", torch::kBFloat16, 2}, {"I64", torch::kInt64, 8},   {"I32", torch::kInt32, 4},
    {"I16", torch::kInt16, 2},     {"I8", torch::kInt8, 1},     {"U8", torch::kUInt8, 1},
    {"BOOL", torch::kBool, 1},
};

std::string supported_dtypes() {
  std::string out;
  for (const auto& d : kDtypes) out += std::string(out.empty() ? "" : ", ") + d.name;
  return out;
}

const DtypeInfo* find_dtype(const std::string& name) {
  for (const auto& d : kDtypes) {
    if (name == d.name) return &d;
  }
  return nullptr;
}

// Where a tensor's entry starts in the file, for error messages: the first occurrence of its
// quoted name in the header (8 bytes of length come before the header).
uint64_t entry_position(const std::string& header, const std::string& name) {
  const auto at = header.find(nlohmann::json(name).dump());
  return 8 + (at == std::string::npos ? 0 : at);
}

[[noreturn]] void fail(const std::string& path, uint64_t byte, const std::string& what) {
  throw InputError(path + ": " + what + " (at byte " + std::to_string(byte) + ")");
}

uint64_t checked_u64(const nlohmann::json& value) {
  if (value.is_number_unsigned()) return value.get<uint64_t>();
  if (value.is_number_integer() && value.get<int64_t>() >= 0) return value.get<uint64_t>();
  throw std::invalid_argument("expected a non-negative integer, found " + value.dump());
}

}  // namespace

SafetensorsFile::SafetensorsFile(const std::string& path) : path_(path) {
  fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) {
    throw InputError(path + ": cannot open safetensors file: " + std::strerror(errno));
  }
  struct stat st {};
  if (::fstat(fd_, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd_);
    fd_ = -1;
    throw InputError(path + ": not a regular file");
  }
  file_size_ = static_cast<uint64_t>(st.st_size);
  if (file_size_ > 0) {
    void* mapped = ::mmap(nullptr, file_size_, PROT_READ, MAP_PRIVATE, fd_, 0);
    if (mapped == MAP_FAILED) {
      const std::string reason = std::strerror(errno);
      ::close(fd_);
      fd_ = -1;
      throw RuntimeError(path + ": cannot map the file into memory: " + reason);
    }
    data_ = static_cast<const uint8_t*>(mapped);
  }
  try {
    parse_header();
  } catch (...) {
    release();
    throw;
  }
}

SafetensorsFile::~SafetensorsFile() {
  release();
}

void SafetensorsFile::release() {
  if (data_ != nullptr) ::munmap(const_cast<uint8_t*>(data_), file_size_);
  if (fd_ >= 0) ::close(fd_);
  data_ = nullptr;
  fd_ = -1;
}

void SafetensorsFile::parse_header() {
  if (file_size_ < 8) {
    fail(path_, 0,
         "file is " + std::to_string(file_size_) +
             " bytes, too short for the 8-byte header length that starts a safetensors file");
  }
  uint64_t header_size = 0;
  std::memcpy(&header_size, data_, 8);
  if (header_size > file_size_ - 8) {
    fail(path_, 0,
         "header length " + std::to_string(header_size) + " runs past the end of the file (" +
             std::to_string(file_size_) + " bytes)");
  }
  if (header_size > kMaxHeaderBytes) {
    fail(path_, 0,
         "header length " + std::to_string(header_size) + " exceeds the limit of " +
             std::to_string(kMaxHeaderBytes) + " bytes");
  }
  data_start_ = 8 + header_size;
  const std::string header(reinterpret_cast<const char*>(data_ + 8), header_size);

  nlohmann::json root;
  try {
    root = nlohmann::json::parse(header);
  } catch (const nlohmann::json::parse_error& e) {
    // nlohmann counts bytes from 1; the header starts after the 8-byte length.
    const uint64_t at = 8 + (e.byte > 0 ? e.byte - 1 : 0);
    fail(path_, at, "header is not valid JSON: " + std::string(e.what()));
  }
  if (!root.is_object()) fail(path_, 8, "header is not a JSON object");

  const uint64_t data_size = file_size_ - data_start_;
  for (const auto& [name, value] : root.items()) {
    const uint64_t at = entry_position(header, name);
    if (name == "__metadata__") {
      if (!value.is_object()) fail(path_, at, "\"__metadata__\" is not an object of strings");
      for (const auto& [key, text] : value.items()) {
        if (!text.is_string()) {
          fail(path_, at, "\"__metadata__\" value of \"" + key + "\" is not a string");
        }
        metadata_[key] = text.get<std::string>();
      }
      continue;
    }
    if (!value.is_object()) fail(path_, at, "entry of tensor \"" + name + "\" is not an object");
    SafetensorsEntry entry;
    entry.name = name;
    try {
      if (!value.contains("dtype") || !value["dtype"].is_string()) {
        throw std::invalid_argument("has no string \"dtype\"");
      }
      entry.dtype = value["dtype"].get<std::string>();
      if (!value.contains("shape") || !value["shape"].is_array()) {
        throw std::invalid_argument("has no \"shape\" array");
      }
      if (!value.contains("data_offsets") || !value["data_offsets"].is_array() ||
          value["data_offsets"].size() != 2) {
        throw std::invalid_argument("has no \"data_offsets\" pair [begin, end]");
      }
      for (const auto& dim : value["shape"]) {
        const uint64_t d = checked_u64(dim);
        if (d > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
          throw std::invalid_argument("has a shape entry too large: " + dim.dump());
        }
        entry.shape.push_back(static_cast<int64_t>(d));
      }
      entry.begin = checked_u64(value["data_offsets"][0]);
      entry.end = checked_u64(value["data_offsets"][1]);
    } catch (const std::invalid_argument& e) {
      fail(path_, at, "entry of tensor \"" + name + "\" " + e.what());
    } catch (const nlohmann::json::exception& e) {
      fail(path_, at, "entry of tensor \"" + name + "\" is malformed: " + e.what());
    }
    const DtypeInfo* dtype = find_dtype(entry.dtype);
    if (dtype == nullptr) {
      fail(path_, at,
           "tensor \"" + name + "\" has dtype \"" + entry.dtype +
               "\", which is not supported; supported: " + supported_dtypes());
    }
    // Element count, refusing overflow: a hostile shape must not wrap around to a small size.
    uint64_t bytes = static_cast<uint64_t>(dtype->size);
    for (int64_t d : entry.shape) {
      if (d != 0 && bytes > std::numeric_limits<uint64_t>::max() / static_cast<uint64_t>(d)) {
        fail(path_, at, "tensor \"" + name + "\" has a shape whose byte count overflows");
      }
      bytes *= static_cast<uint64_t>(d);
    }
    if (entry.begin > entry.end || entry.end > data_size) {
      fail(path_, at,
           "tensor \"" + name + "\" has data_offsets [" + std::to_string(entry.begin) + ", " +
               std::to_string(entry.end) + "] outside the data section of " +
               std::to_string(data_size) + " bytes (file bytes " + std::to_string(data_start_) +
               " to " + std::to_string(file_size_) + ")");
    }
    if (entry.end - entry.begin != bytes) {
      std::ostringstream shape;
      for (size_t i = 0; i < entry.shape.size(); ++i) shape << (i ? ", " : "") << entry.shape[i];
      fail(path_, at,
           "tensor \"" + name + "\" of dtype " + entry.dtype + " and shape [" + shape.str() +
               "] needs " + std::to_string(bytes) + " bytes, but its data_offsets span " +
               std::to_string(entry.end - entry.begin));
    }
    entries_[name] = std::move(entry);
  }

  // Two tensors must not share bytes: writing one would silently change the other.
  std::vector<const SafetensorsEntry*> by_offset;
  for (const auto& [name, entry] : entries_) by_offset.push_back(&entry);
  std::sort(by_offset.begin(), by_offset.end(),
            [](const auto* a, const auto* b) { return a->begin < b->begin; });
  for (size_t i = 1; i < by_offset.size(); ++i) {
    if (by_offset[i]->begin < by_offset[i - 1]->end && by_offset[i]->begin < by_offset[i]->end) {
      fail(path_, data_start_ + by_offset[i]->begin,
           "tensors \"" + by_offset[i - 1]->name + "\" and \"" + by_offset[i]->name + "\" overlap");
    }
  }
}

std::vector<std::string> SafetensorsFile::names() const {
  std::vector<const SafetensorsEntry*> sorted;
  for (const auto& [name, entry] : entries_) sorted.push_back(&entry);
  std::stable_sort(sorted.begin(), sorted.end(),
                   [](const auto* a, const auto* b) { return a->begin < b->begin; });
  std::vector<std::string> out;
  for (const auto* entry : sorted) out.push_back(entry->name);
  return out;
}

const SafetensorsEntry& SafetensorsFile::entry(const std::string& name) const {
  auto it = entries_.find(name);
  if (it == entries_.end()) throw InputError(path_ + ": has no tensor named \"" + name + "\"");
  return it->second;
}

torch::Tensor SafetensorsFile::load(const std::string& name, torch::ScalarType dtype,
                                    torch::Device device) const {
  const SafetensorsEntry& e = entry(name);
  const DtypeInfo* source = find_dtype(e.dtype);
  const uint8_t* bytes = data_ + data_start_ + e.begin;
  const bool floating = torch::isFloatingType(source->type);
  const torch::ScalarType target = floating && torch::isFloatingType(dtype) ? dtype : source->type;

  torch::Tensor out;
  const auto address = reinterpret_cast<uintptr_t>(bytes);
  if (e.end > e.begin && address % static_cast<uintptr_t>(source->size) == 0) {
    // Aligned: view the mapped bytes and let the conversion make the one copy needed.
    torch::Tensor view = torch::from_blob(const_cast<uint8_t*>(bytes), e.shape,
                                          torch::TensorOptions().dtype(source->type));
    out = view.to(device, target, /*non_blocking=*/false, /*copy=*/true);
  } else {
    out = torch::empty(e.shape, torch::TensorOptions().dtype(source->type));
    if (e.end > e.begin) std::memcpy(out.data_ptr(), bytes, e.end - e.begin);
    out = out.to(device, target);
  }
  return out;
}

WeightFiles::WeightFiles(const std::string& folder) : folder_(folder) {
  const fs::path dir(folder);
  const fs::path index_path = dir / "model.safetensors.index.json";
  const fs::path single_path = dir / "model.safetensors";
  if (fs::exists(index_path)) {
    std::ifstream in(index_path, std::ios::binary);
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    nlohmann::json index;
    try {
      index = nlohmann::json::parse(text);
    } catch (const nlohmann::json::parse_error& e) {
      throw InputError(index_path.string() + ": not valid JSON (at byte " +
                       std::to_string(e.byte > 0 ? e.byte - 1 : 0) + "): " + e.what());
    }
    if (!index.is_object() || !index.contains("weight_map") || !index["weight_map"].is_object()) {
      throw InputError(index_path.string() + ": has no \"weight_map\" object");
    }
    std::map<std::string, size_t> shard_index;
    for (const auto& [name, file] : index["weight_map"].items()) {
      if (!file.is_string()) {
        throw InputError(index_path.string() + ": weight_map entry \"" + name +
                         "\" is not a file name string");
      }
      const std::string shard = file.get<std::string>();
      // The index is untrusted: it may only name files inside the folder.
      if (shard.empty() || shard.find('/') != std::string::npos ||
          shard.find('\\') != std::string::npos || shard == "." || shard == "..") {
        throw InputError(index_path.string() + ": weight_map entry \"" + name +
                         "\" names shard \"" + shard +
                         "\"; a shard must be a plain file name inside the checkpoint folder");
      }
      auto it = shard_index.find(shard);
      if (it == shard_index.end()) {
        files_.push_back(std::make_unique<SafetensorsFile>((dir / shard).string()));
        it = shard_index.emplace(shard, files_.size() - 1).first;
      }
      if (!files_[it->second]->contains(name)) {
        throw InputError(index_path.string() + ": weight_map puts tensor \"" + name + "\" in " +
                         shard + ", which has no such tensor");
      }
      where_[name] = it->second;
    }
  } else if (fs::exists(single_path)) {
    files_.push_back(std::make_unique<SafetensorsFile>(single_path.string()));
    for (const auto& name : files_[0]->names()) where_[name] = 0;
  } else {
    throw InputError(folder +
                     ": has neither model.safetensors nor model.safetensors.index.json (only "
                     "safetensors weights are supported; convert pytorch_model.bin first)");
  }
}

std::vector<std::string> WeightFiles::names() const {
  std::vector<std::string> out;
  for (const auto& [name, file] : where_) out.push_back(name);
  return out;
}

const SafetensorsEntry& WeightFiles::entry(const std::string& name) const {
  auto it = where_.find(name);
  if (it == where_.end()) throw InputError(folder_ + ": checkpoint has no tensor \"" + name + "\"");
  return files_[it->second]->entry(name);
}

torch::Tensor WeightFiles::load(const std::string& name, torch::ScalarType dtype,
                                torch::Device device) const {
  auto it = where_.find(name);
  if (it == where_.end()) throw InputError(folder_ + ": checkpoint has no tensor \"" + name + "\"");
  return files_[it->second]->load(name, dtype, device);
}

std::string safetensors_dtype_name(torch::ScalarType dtype) {
  for (const auto& d : kDtypes) {
    if (d.type == dtype) return d.name;
  }
  throw InputError(std::string("cannot store dtype ") + c10::toString(dtype) +
                   " in safetensors; supported: " + supported_dtypes());
}

void save_safetensors(const std::string& path,
                      const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                      std::map<std::string, std::string> metadata) {
  if (!metadata.count("format")) metadata["format"] = "pt";
  std::vector<std::pair<std::string, torch::Tensor>> ordered;
  std::set<std::string> seen;
  for (const auto& [name, tensor] : tensors) {
    if (name == "__metadata__" || !seen.insert(name).second) {
      throw InputError(path + ": tensor name \"" + name + "\" is reserved or used twice");
    }
    ordered.emplace_back(name, tensor.detach().to(torch::kCPU).contiguous());
  }
  // Larger elements first, so every tensor starts at a multiple of its element size.
  std::stable_sort(ordered.begin(), ordered.end(), [](const auto& a, const auto& b) {
    if (a.second.element_size() != b.second.element_size()) {
      return a.second.element_size() > b.second.element_size();
    }
    return a.first < b.first;
  });

  nlohmann::json header = nlohmann::json::object();
  header["__metadata__"] = metadata;
  uint64_t offset = 0;
  for (const auto& [name, tensor] : ordered) {
    const uint64_t bytes = static_cast<uint64_t>(tensor.numel()) * tensor.element_size();
    header[name] = {{"dtype", safetensors_dtype_name(tensor.scalar_type())},
                    {"shape", tensor.sizes().vec()},
                    {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string text = header.dump();
  // Pad with spaces so the data section starts 8-byte aligned, as the reference writer does.
  text.append((8 - text.size() % 8) % 8, ' ');

  const std::string temporary = path + ".tmp." + std::to_string(::getpid());
  {
    std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
    if (!out) throw RuntimeError(temporary + ": cannot create file for writing");
    const uint64_t header_size = text.size();
    out.write(reinterpret_cast<const char*>(&header_size), 8);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    for (const auto& [name, tensor] : ordered) {
      out.write(static_cast<const char*>(tensor.data_ptr()),
                static_cast<std::streamsize>(tensor.numel() * tensor.element_size()));
    }
    out.flush();
    if (!out) throw RuntimeError(temporary + ": write failed (disk full?)");
  }
  std::error_code error;
  fs::rename(temporary, path, error);
  if (error) {
    fs::remove(temporary);
    throw RuntimeError(path + ": cannot move the written file into place: " + error.message());
  }
}

void save_checkpoint(const std::string& folder,
                     const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                     uint64_t max_shard_bytes) {
  const fs::path dir(folder);
  std::error_code error;
  fs::create_directories(dir, error);
  if (error) throw RuntimeError(folder + ": cannot create folder: " + error.message());

  std::vector<std::vector<std::pair<std::string, torch::Tensor>>> shards(1);
  uint64_t shard_bytes = 0;
  uint64_t total = 0;
  for (const auto& item : tensors) {
    const uint64_t bytes = static_cast<uint64_t>(item.second.numel()) * item.second.element_size();
    if (shard_bytes > 0 && shard_bytes + bytes > max_shard_bytes) {
      shards.emplace_back();
      shard_bytes = 0;
    }
    shards.back().push_back(item);
    shard_bytes += bytes;
    total += bytes;
  }
  if (shards.size() == 1) {
    save_safetensors((dir / "model.safetensors").string(), tensors);
    fs::remove(dir / "model.safetensors.index.json", error);
    return;
  }
  nlohmann::json weight_map = nlohmann::json::object();
  const size_t n = shards.size();
  for (size_t i = 0; i < n; ++i) {
    char name[64];
    std::snprintf(name, sizeof(name), "model-%05zu-of-%05zu.safetensors", i + 1, n);
    save_safetensors((dir / name).string(), shards[i]);
    for (const auto& item : shards[i]) weight_map[item.first] = name;
  }
  const nlohmann::json index = {{"metadata", {{"total_size", total}}}, {"weight_map", weight_map}};
  const fs::path index_path = dir / "model.safetensors.index.json";
  const std::string temporary = index_path.string() + ".tmp." + std::to_string(::getpid());
  {
    std::ofstream out(temporary, std::ios::trunc);
    out << index.dump(2) << "\n";
    if (!out) throw RuntimeError(temporary + ": write failed");
  }
  fs::rename(temporary, index_path, error);
  if (error)
    throw RuntimeError(index_path.string() + ": cannot move into place: " + error.message());
  fs::remove(dir / "model.safetensors", error);
}

}  // namespace alignpro
