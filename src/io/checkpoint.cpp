#include "io/checkpoint.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <regex>

#include "alignpro/build_info.h"
#include "common/error.h"
#include "common/log.h"
#include "io/file_util.h"
#include "io/hdf5_util.h"
#include "io/results_file.h"

namespace alignpro {

namespace fs = std::filesystem;
using h5::Handle;

namespace {

// Tensors are chunked so that HDF5's Fletcher-32 checksum covers them, in chunks of about this
// many bytes (one checksum per chunk).
constexpr size_t kChunkBytes = 4u << 20;

struct DtypeInfo {
  torch::ScalarType type;
  const char* name;
};

const DtypeInfo kDtypes[] = {
    {torch::kFloat32, "float32"},   {torch::kFloat64, "float64"}, {torch::kFloat16, "float16"},
    {torch::kBFloat16, "bfloat16"}, {torch::kInt64, "int64"},     {torch::kInt32, "int32"},
    {torch::kInt16, "int16"},       {torch::kInt8, "int8"},       {torch::kUInt8, "uint8"},
    {torch::kBool, "bool"},
};

const char* dtype_name(torch::ScalarType type) {
  for (const auto& d : kDtypes) {
    if (d.type == type) return d.name;
  }
  return nullptr;
}

std::optional<torch::ScalarType> dtype_of(const std::string& name) {
  for (const auto& d : kDtypes) {
    if (name == d.name) return d.type;
  }
  return std::nullopt;
}

// A little-endian IEEE-style float of two bytes, with `mantissa` bits and the given bias:
// float16 (10, 15) and bfloat16 (7, 127). h5py reads both as float16 values.
Handle half_type(size_t mantissa, size_t exponent_bias) {
  Handle type(H5Tcopy(H5T_IEEE_F32LE));
  const size_t exponent = 15 - mantissa;
  H5Tset_fields(type, 15, mantissa, exponent, 0, mantissa);
  H5Tset_size(type, 2);
  H5Tset_ebias(type, exponent_bias);
  return type;
}

// The HDF5 type a tensor of this dtype is stored as (and read into: every host is little-endian).
Handle stored_type(torch::ScalarType type) {
  switch (type) {
    case torch::kFloat32:
      return Handle(H5Tcopy(H5T_IEEE_F32LE));
    case torch::kFloat64:
      return Handle(H5Tcopy(H5T_IEEE_F64LE));
    case torch::kFloat16:
      return half_type(10, 15);
    case torch::kBFloat16:
      return half_type(7, 127);
    case torch::kInt64:
      return Handle(H5Tcopy(H5T_STD_I64LE));
    case torch::kInt32:
      return Handle(H5Tcopy(H5T_STD_I32LE));
    case torch::kInt16:
      return Handle(H5Tcopy(H5T_STD_I16LE));
    case torch::kInt8:
      return Handle(H5Tcopy(H5T_STD_I8LE));
    default:  // uint8 and bool
      return Handle(H5Tcopy(H5T_STD_U8LE));
  }
}

void check_tensor_name(const std::string& name, const std::string& path) {
  const bool bad = name.empty() || name.front() == '/' || name.back() == '/' ||
                   name.find("//") != std::string::npos || name == "." ||
                   name.find("/./") != std::string::npos || name.find("..") != std::string::npos;
  if (bad) {
    throw RuntimeError(path + ": tensor name '" + name +
                       "' cannot be stored; names are non-empty parts joined by single '/'");
  }
}

// Chunk shape: whole trailing dimensions first, cut along the leading ones to ~kChunkBytes.
std::vector<hsize_t> chunk_shape(const std::vector<hsize_t>& dims, size_t element_size) {
  std::vector<hsize_t> chunk(dims.size());
  hsize_t room = std::max<size_t>(1, kChunkBytes / element_size);
  for (size_t i = dims.size(); i > 0; --i) {
    chunk[i - 1] = std::max<hsize_t>(1, std::min(dims[i - 1], room));
    room = std::max<hsize_t>(1, room / chunk[i - 1]);
  }
  return chunk;
}

void write_tensor(hid_t tensors, const std::string& name, const torch::Tensor& tensor,
                  const std::string& path) {
  check_tensor_name(name, path);
  const char* dtype = dtype_name(tensor.scalar_type());
  if (!dtype) {
    throw RuntimeError(path + ": tensor '" + name + "' has dtype " +
                       std::string(c10::toString(tensor.scalar_type())) +
                       ", which checkpoints do not store");
  }
  const torch::Tensor data = tensor.detach().to(torch::kCPU).contiguous();
  std::vector<hsize_t> dims(data.sizes().begin(), data.sizes().end());
  Handle space(dims.empty()
                   ? H5Screate(H5S_SCALAR)
                   : H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr));
  Handle create = h5::checked(H5Pcreate(H5P_DATASET_CREATE), path, "dataset properties");
  if (!dims.empty() && data.numel() > 0) {
    const auto chunk = chunk_shape(dims, data.element_size());
    h5::check(H5Pset_chunk(create, static_cast<int>(chunk.size()), chunk.data()), path,
              "cannot chunk tensor '" + name + "'");
    h5::check(H5Pset_fletcher32(create), path, "cannot checksum tensor '" + name + "'");
  }
  Handle links = h5::checked(H5Pcreate(H5P_LINK_CREATE), path, "link properties");
  H5Pset_create_intermediate_group(links, 1);
  Handle type = stored_type(data.scalar_type());
  Handle dataset =
      h5::checked(H5Dcreate2(tensors, name.c_str(), type, space, links, create, H5P_DEFAULT), path,
                  "cannot create tensor '" + name + "'");
  h5::write_attribute(dataset, "dtype", std::string(dtype), path);
  if (data.numel() > 0) {
    h5::check(H5Dwrite(dataset, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data.data_ptr()), path,
              "cannot write tensor '" + name + "'");
  }
}

[[noreturn]] void damaged(const std::string& path, const std::string& why) {
  throw InputError("checkpoint " + path + ": " + why);
}

torch::Tensor read_tensor(hid_t tensors, const std::string& name, const std::string& path) {
  if (H5Lexists(tensors, name.c_str(), H5P_DEFAULT) <= 0) {
    H5Eclear2(H5E_DEFAULT);
    damaged(path, "tensor '" + name + "' is listed but missing");
  }
  Handle dataset(H5Dopen2(tensors, name.c_str(), H5P_DEFAULT));
  if (!dataset.valid()) damaged(path, "tensor '" + name + "' is not a dataset");
  const auto dtype_text = h5::read_string_attribute(dataset, "dtype").value_or("(missing)");
  const auto dtype = dtype_of(dtype_text);
  if (!dtype) damaged(path, "tensor '" + name + "' has unknown dtype '" + dtype_text + "'");
  Handle expected = stored_type(*dtype);
  Handle found(H5Dget_type(dataset));
  if (!found.valid() || H5Tget_class(found) != H5Tget_class(expected) ||
      H5Tget_size(found) != H5Tget_size(expected) ||
      (H5Tget_class(found) == H5T_INTEGER && H5Tget_sign(found) != H5Tget_sign(expected))) {
    damaged(path, "tensor '" + name + "' is stored with another type than its dtype " + dtype_text);
  }
  Handle space(H5Dget_space(dataset));
  const int rank = H5Sget_simple_extent_ndims(space);
  if (rank < 0) damaged(path, "tensor '" + name + "' has no readable shape");
  std::vector<hsize_t> dims(static_cast<size_t>(rank));
  if (rank > 0) H5Sget_simple_extent_dims(space, dims.data(), nullptr);
  std::vector<int64_t> shape(dims.begin(), dims.end());
  torch::Tensor tensor = torch::empty(shape, torch::TensorOptions().dtype(*dtype));
  if (tensor.numel() > 0 &&
      H5Dread(dataset, expected, H5S_ALL, H5S_ALL, H5P_DEFAULT, tensor.data_ptr()) < 0) {
    damaged(path, "tensor '" + name + "' cannot be read (damaged data): " + h5::take_error_stack());
  }
  return tensor;
}

// A column dataset in one go, for the tensor list and the random-stream positions.
void write_list(hid_t parent, const std::string& name, const h5::ColumnData& data,
                h5::ColumnType type, const std::string& path) {
  h5::create_column(parent, name, type, 256, path, name);
  Handle dataset = h5::checked(H5Dopen2(parent, name.c_str(), H5P_DEFAULT), path, name);
  h5::write_column(dataset, 0, data, path, name);
}

h5::ColumnData read_list(hid_t parent, const std::string& name, h5::ColumnType type,
                         const std::string& path) {
  if (H5Lexists(parent, name.c_str(), H5P_DEFAULT) <= 0) {
    H5Eclear2(H5E_DEFAULT);
    damaged(path, "dataset '" + name + "' is missing");
  }
  Handle dataset = h5::checked(H5Dopen2(parent, name.c_str(), H5P_DEFAULT), path, name);
  const hsize_t length = h5::column_length(dataset, path, name);
  return h5::read_column(dataset, type, 0, length, path, name);
}

int64_t required_int(hid_t file, const std::string& path, const std::string& name) {
  const auto value = h5::read_int_attribute(file, name);
  if (!value) damaged(path, "attribute '" + name + "' is missing");
  return *value;
}

std::string required_string(hid_t file, const std::string& path, const std::string& name) {
  const auto value = h5::read_string_attribute(file, name);
  if (!value) damaged(path, "attribute '" + name + "' is missing");
  return *value;
}

// Opens a checkpoint and checks what identifies one: magic, format version, completeness.
Handle open_checkpoint(const std::string& path) {
  h5::silence_errors();
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) damaged(path, "no such file");
  if (H5Fis_hdf5(path.c_str()) <= 0) {
    H5Eclear2(H5E_DEFAULT);
    damaged(path, "not an HDF5 file (cut short or damaged)");
  }
  Handle file(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT));
  if (!file.valid()) damaged(path, "cannot be opened: " + h5::take_error_stack());
  const auto format = h5::read_string_attribute(file, "format");
  if (!format || *format != kCheckpointFormatName) {
    damaged(path, "not an alignpro checkpoint (attribute 'format' is " +
                      (format ? "'" + *format + "'" : std::string("missing")) + ")");
  }
  const int64_t version = required_int(file, path, "format_version");
  if (version < 1 || version > kCheckpointFormatVersion) {
    damaged(path, "format version " + std::to_string(version) +
                      " is unknown; this alignpro reads versions 1 to " +
                      std::to_string(kCheckpointFormatVersion));
  }
  if (h5::read_int_attribute(file, "complete").value_or(0) != 1) {
    damaged(path, "incomplete (its writer stopped before the end)");
  }
  return file;
}

}  // namespace

void write_checkpoint(const std::string& path, const Checkpoint& checkpoint) {
  h5::silence_errors();
  check_output_location(path, "checkpoint");
  const fs::path target(path);
  if (target.has_parent_path()) fs::create_directories(target.parent_path());
  const std::string temporary = temporary_sibling(path, "writing");
  try {
    Handle file = h5::checked(H5Fcreate(temporary.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT,
                                        h5::latest_format_access(temporary)),
                              temporary, "cannot create the checkpoint");
    h5::write_attribute(file, "format", std::string(kCheckpointFormatName), path);
    h5::write_attribute(file, "format_version", kCheckpointFormatVersion, path);
    h5::write_attribute(file, "alignpro_version", std::string(kVersion), path);
    h5::write_attribute(file, "git_revision", std::string(kGitRevision), path);
    h5::write_attribute(file, "created", utc_now_iso8601(), path);
    h5::write_attribute(file, "job_hash", format_job_hash(checkpoint.job_hash), path);
    h5::write_attribute(file, "world_size", checkpoint.world_size, path);
    h5::write_attribute(file, "step", checkpoint.step, path);
    h5::write_attribute(file, "epoch", checkpoint.cursor.epoch, path);
    h5::write_attribute(file, "position", checkpoint.cursor.position, path);
    h5::write_attribute(file, "reference_prompter", checkpoint.models.reference_prompter, path);
    h5::write_attribute(file, "target", checkpoint.models.target, path);
    h5::write_attribute(file, "reward_model", checkpoint.models.reward_model, path);

    std::vector<std::string> names;
    Handle tensors = h5::checked(H5Gcreate2(file, "tensors", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
                                 path, "cannot create group /tensors");
    for (const auto& [name, tensor] : checkpoint.tensors) {
      write_tensor(tensors, name, tensor, path);
      names.push_back(name);
    }
    write_list(file, "tensor_names", names, h5::ColumnType::kString, path);
    std::vector<std::string> streams;
    std::vector<uint64_t> positions;
    for (const auto& [name, position] : checkpoint.rng_positions) {
      streams.push_back(name);
      positions.push_back(position);
    }
    write_list(file, "rng_streams", streams, h5::ColumnType::kString, path);
    write_list(file, "rng_positions", positions, h5::ColumnType::kUInt64, path);
    // Last: a file without this attribute was cut short.
    h5::write_attribute(file, "complete", int64_t{1}, path);
    tensors.reset();
    if (!file.reset()) h5::fail(path, "cannot close the checkpoint (is the disk full?)");
    fsync_path(temporary);
    replace_file(temporary, path);
  } catch (...) {
    std::error_code ignored;
    fs::remove(temporary, ignored);
    throw;
  }
}

Checkpoint read_checkpoint(const std::string& path) {
  Handle file = open_checkpoint(path);
  Checkpoint c;
  c.format_version = required_int(file, path, "format_version");
  c.alignpro_version = required_string(file, path, "alignpro_version");
  c.git_revision = required_string(file, path, "git_revision");
  c.created = required_string(file, path, "created");
  const std::string hash = required_string(file, path, "job_hash");
  if (hash.size() != 16 || hash.find_first_not_of("0123456789abcdef") != std::string::npos) {
    damaged(path, "attribute 'job_hash' is '" + hash + "'; expected 16 lowercase hex digits");
  }
  c.job_hash = std::stoull(hash, nullptr, 16);
  c.world_size = required_int(file, path, "world_size");
  c.step = required_int(file, path, "step");
  c.cursor.epoch = required_int(file, path, "epoch");
  c.cursor.position = required_int(file, path, "position");
  c.models.reference_prompter = required_string(file, path, "reference_prompter");
  c.models.target = required_string(file, path, "target");
  c.models.reward_model = required_string(file, path, "reward_model");

  const auto names = std::get<std::vector<std::string>>(
      read_list(file, "tensor_names", h5::ColumnType::kString, path));
  if (H5Lexists(file, "tensors", H5P_DEFAULT) <= 0) damaged(path, "group /tensors is missing");
  Handle tensors(H5Gopen2(file, "tensors", H5P_DEFAULT));
  for (const auto& name : names) c.tensors[name] = read_tensor(tensors, name, path);
  if (c.tensors.size() != names.size()) damaged(path, "tensor names repeat in 'tensor_names'");

  const auto streams = std::get<std::vector<std::string>>(
      read_list(file, "rng_streams", h5::ColumnType::kString, path));
  const auto positions = std::get<std::vector<uint64_t>>(
      read_list(file, "rng_positions", h5::ColumnType::kUInt64, path));
  if (streams.size() != positions.size()) {
    damaged(path, std::to_string(streams.size()) + " random streams but " +
                      std::to_string(positions.size()) + " positions");
  }
  for (size_t i = 0; i < streams.size(); ++i) c.rng_positions[streams[i]] = positions[i];
  return c;
}

std::vector<std::string> resume_conflicts(const Checkpoint& saved, uint64_t job_hash,
                                          const ModelIdentities& models) {
  std::vector<std::string> out;
  if (saved.job_hash != job_hash) {
    out.push_back("the job changed: the checkpoint's job hash is " +
                  format_job_hash(saved.job_hash) + ", this job's is " + format_job_hash(job_hash));
  }
  const auto compare = [&](const char* what, const std::string& before, const std::string& now) {
    if (before != now) {
      out.push_back(std::string("the ") + what + " changed: the checkpoint was made with " +
                    (before.empty() ? "none" : before) + ", this job has " +
                    (now.empty() ? "none" : now));
    }
  };
  compare("reference prompter", saved.models.reference_prompter, models.reference_prompter);
  compare("target", saved.models.target, models.target);
  compare("reward model", saved.models.reward_model, models.reward_model);
  return out;
}

CheckpointStore::CheckpointStore(std::string folder, int64_t keep)
    : folder_(std::move(folder)), keep_(std::max<int64_t>(1, keep)) {}

std::string CheckpointStore::path_for(int64_t step) const {
  char name[48];
  std::snprintf(name, sizeof(name), "step-%08lld.ckpt.h5", static_cast<long long>(step));
  return (fs::path(folder_) / name).string();
}

std::string CheckpointStore::save(const Checkpoint& checkpoint) {
  const std::string path = path_for(checkpoint.step);
  write_checkpoint(path, checkpoint);
  prune();
  return path;
}

std::vector<CheckpointStore::Entry> CheckpointStore::list() const {
  static const std::regex kName(R"(step-(\d+)\.ckpt\.h5)");
  std::vector<Entry> out;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(folder_, ec)) {
    std::smatch match;
    const std::string name = entry.path().filename().string();
    if (entry.is_regular_file(ec) && std::regex_match(name, match, kName)) {
      out.push_back({std::stoll(match[1].str()), entry.path().string()});
    }
  }
  std::sort(out.begin(), out.end(), [](const Entry& a, const Entry& b) { return a.step < b.step; });
  return out;
}

std::optional<CheckpointStore::Entry> CheckpointStore::latest() const {
  const auto entries = list();
  for (auto it = entries.rbegin(); it != entries.rend(); ++it) {
    try {
      open_checkpoint(it->path);
      return *it;
    } catch (const InputError& e) {
      spdlog::warn("[checkpoint] skipping {}", e.what());
    }
  }
  return std::nullopt;
}

void CheckpointStore::prune() const {
  const auto entries = list();
  const size_t keep = static_cast<size_t>(keep_);
  for (size_t i = 0; i + keep < entries.size(); ++i) {
    std::error_code ec;
    fs::remove(entries[i].path, ec);
    if (ec) spdlog::warn("[checkpoint] cannot remove {}: {}", entries[i].path, ec.message());
  }
  // Temporary files of writers that were interrupted (any process but this one).
  static const std::regex kTemporary(R"(\.step-\d+\.ckpt\.h5\.writing-(\d+))");
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(folder_, ec)) {
    std::smatch match;
    const std::string name = entry.path().filename().string();
    if (std::regex_match(name, match, kTemporary) &&
        std::stol(match[1].str()) != static_cast<long>(getpid())) {
      std::error_code ignored;
      fs::remove(entry.path(), ignored);
    }
  }
}

}  // namespace alignpro
