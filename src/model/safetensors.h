// Reading and writing safetensors files, the weight format of Hugging Face checkpoints, and of
// sharded checkpoints (model.safetensors.index.json). Files are untrusted: the header length, the
// JSON header and every tensor's dtype, shape and byte range are checked against the file before
// any byte is used, and a bad file fails with an InputError naming the path and the byte position.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace alignpro {

// One tensor's entry in a safetensors header.
struct SafetensorsEntry {
  std::string name;
  std::string dtype;           // as written in the file: "F32", "BF16", ...
  std::vector<int64_t> shape;  // empty for a scalar
  uint64_t begin = 0;          // byte range in the data section: [begin, end)
  uint64_t end = 0;
};

// A validated, memory-mapped safetensors file. Tensors are copied out on request, converted to the
// dtype and device asked for; the mapping stays alive while the object does.
class SafetensorsFile {
 public:
  // Maps the file and checks its header completely; throws InputError on any inconsistency.
  explicit SafetensorsFile(const std::string& path);
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::string& path() const { return path_; }
  // Tensor names in the order of their byte offsets.
  std::vector<std::string> names() const;
  bool contains(const std::string& name) const { return entries_.count(name) > 0; }
  // Throws InputError when the file has no tensor of that name.
  const SafetensorsEntry& entry(const std::string& name) const;
  // The header's optional "__metadata__" string map.
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

  // A fresh tensor (owning its memory) with the named tensor's values. Floating tensors (F64, F32,
  // F16, BF16) are converted to `dtype` when it is floating; integer and bool tensors keep theirs.
  torch::Tensor load(const std::string& name, torch::ScalarType dtype,
                     torch::Device device = torch::kCPU) const;

 private:
  void parse_header();
  void release();

  std::string path_;
  int fd_ = -1;
  const uint8_t* data_ = nullptr;  // the whole file, mapped read-only
  uint64_t file_size_ = 0;
  uint64_t data_start_ = 0;  // 8 + header length
  std::map<std::string, SafetensorsEntry> entries_;
  std::map<std::string, std::string> metadata_;
};

// The weights of a model folder: model.safetensors, or the shards listed by
// model.safetensors.index.json. Shard names are checked to stay inside the folder.
class WeightFiles {
 public:
  // Throws InputError when the folder has neither file or when an index or shard is malformed.
  explicit WeightFiles(const std::string& folder);

  const std::string& folder() const { return folder_; }
  std::vector<std::string> names() const;
  bool contains(const std::string& name) const { return where_.count(name) > 0; }
  const SafetensorsEntry& entry(const std::string& name) const;
  torch::Tensor load(const std::string& name, torch::ScalarType dtype,
                     torch::Device device = torch::kCPU) const;

 private:
  std::string folder_;
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::map<std::string, size_t> where_;  // tensor name -> index into files_
};

// The safetensors name of a torch dtype ("F32", ...); throws InputError for one it cannot store.
std::string safetensors_dtype_name(torch::ScalarType dtype);

// Writes tensors (moved to the CPU, made contiguous) as one safetensors file, atomically: to a
// temporary file beside `path`, then renamed. Names must be unique. The metadata gets
// "format": "pt" when it has no "format", as the Hugging Face loaders expect.
void save_safetensors(const std::string& path,
                      const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                      std::map<std::string, std::string> metadata = {});

// Writes tensors into `folder` as model.safetensors, or, when they exceed max_shard_bytes, as
// model-0000i-of-0000n.safetensors shards with a model.safetensors.index.json.
void save_checkpoint(const std::string& folder,
                     const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                     uint64_t max_shard_bytes = uint64_t{5} << 30);

}  // namespace alignpro
