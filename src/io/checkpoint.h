// Checkpoints: everything a run needs to continue as if it had never stopped (named tensors for
// the prompter's weights and the optimiser's state, the step, the data cursor, the positions of
// the random streams) and the identities of the models it depends on. One HDF5 file per
// checkpoint, written under a temporary name, synced and renamed into place, so that a file
// with a checkpoint's name is always complete.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/data_cursor.h"

namespace alignpro {

inline constexpr const char* kCheckpointFormatName = "alignpro-checkpoint";
inline constexpr int64_t kCheckpointFormatVersion = 1;

// Identities of the frozen models (see model_identity.h); a resume with other models is refused.
struct ModelIdentities {
  std::string reference_prompter;
  std::string target;
  std::string reward_model;  // empty for rule-based rewards
};

struct Checkpoint {
  int64_t step = 0;  // steps done
  DataCursor cursor;
  std::map<std::string, uint64_t> rng_positions;  // stream name -> RngStream::position()
  // Tensors by name; '/' in a name makes HDF5 subgroups ("optimizer/exp_avg/lm_head.weight").
  // float32, float64, float16, bfloat16, int64, int32, int16, int8, uint8 and bool.
  std::map<std::string, torch::Tensor> tensors;
  ModelIdentities models;
  uint64_t job_hash = 0;
  int64_t world_size = 1;

  // Filled in by read_checkpoint.
  int64_t format_version = 0;
  std::string alignpro_version;
  std::string git_revision;
  std::string created;  // ISO 8601 UTC
};

// Writes atomically: a temporary file in the same folder, fsync, rename over `path`.
// RuntimeError naming the file when the disk is full or the folder cannot be written.
void write_checkpoint(const std::string& path, const Checkpoint& checkpoint);

// Reads and verifies (magic, format version, completeness, every tensor's type and checksum).
// InputError naming the file and what is wrong for anything that is not a sound checkpoint.
Checkpoint read_checkpoint(const std::string& path);

// Why `saved` cannot be resumed by a job with this hash and these models, one sentence per
// difference naming what changed; empty when it can. The world size may differ.
std::vector<std::string> resume_conflicts(const Checkpoint& saved, uint64_t job_hash,
                                          const ModelIdentities& models);

// A folder of checkpoints named step-<step>.ckpt.h5 that keeps the newest `keep` of them.
class CheckpointStore {
 public:
  struct Entry {
    int64_t step = 0;
    std::string path;
  };

  CheckpointStore(std::string folder, int64_t keep);

  const std::string& folder() const { return folder_; }
  std::string path_for(int64_t step) const;

  // Writes the checkpoint of checkpoint.step, then removes the older ones beyond `keep` and
  // temporary files that an interrupted writer left. Returns the new file's path.
  std::string save(const Checkpoint& checkpoint);
  // Checkpoint files by step, oldest first; temporary files are never listed.
  std::vector<Entry> list() const;
  // The newest checkpoint whose header verifies; damaged newer ones are skipped with a warning.
  std::optional<Entry> latest() const;

 private:
  void prune() const;

  std::string folder_;
  int64_t keep_;
};

}  // namespace alignpro
