#include "io/checkpoint.h"

#include <gtest/gtest.h>
#include <hdf5.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <fstream>

#include "common/error.h"
#include "io/hdf5_util.h"
#include "io/model_identity.h"
#include "io_test_util.h"

namespace alignpro {
namespace {

using testing::contains;
using testing::message_of;
using testing::TempDir;

Checkpoint make_checkpoint(int64_t step) {
  Checkpoint c;
  c.step = step;
  c.cursor = {2, 17 + step};
  c.rng_positions = {{"shuffle", 1234 + static_cast<uint64_t>(step)}, {"eval", 0}};
  torch::manual_seed(step);
  c.tensors["prompter/lm_head.weight"] = torch::randn({7, 5});
  c.tensors["prompter/model.embed_tokens.weight"] = torch::randn({11, 5}).to(torch::kBFloat16);
  c.tensors["optimizer/exp_avg/lm_head.weight"] = torch::randn({7, 5}).to(torch::kFloat64);
  c.tensors["optimizer/step"] = torch::tensor(int64_t{step});
  c.tensors["half"] = torch::randn({3}).to(torch::kFloat16);
  c.tensors["ints"] = torch::arange(6, torch::kInt32).reshape({2, 3});
  c.tensors["bytes"] = torch::tensor({1, 255, 0}, torch::kUInt8);
  c.tensors["mask"] = torch::tensor({true, false, true});
  c.tensors["empty"] = torch::zeros({0, 4});
  c.models = {"1111111111111111", "2222222222222222", "3333333333333333"};
  c.job_hash = 0x00ff00ff00ff00ffull;
  c.world_size = 4;
  return c;
}

TEST(Checkpoint, RoundTripsTensorsAndState) {
  TempDir dir;
  const std::string path = dir.file("c.ckpt.h5");
  const Checkpoint saved = make_checkpoint(12);
  write_checkpoint(path, saved);
  const Checkpoint back = read_checkpoint(path);
  EXPECT_EQ(back.step, 12);
  EXPECT_EQ(back.cursor.epoch, 2);
  EXPECT_EQ(back.cursor.position, 29);
  EXPECT_EQ(back.rng_positions, saved.rng_positions);
  EXPECT_EQ(back.models.reference_prompter, saved.models.reference_prompter);
  EXPECT_EQ(back.models.target, saved.models.target);
  EXPECT_EQ(back.models.reward_model, saved.models.reward_model);
  EXPECT_EQ(back.job_hash, saved.job_hash);
  EXPECT_EQ(back.world_size, 4);
  EXPECT_EQ(back.format_version, kCheckpointFormatVersion);
  ASSERT_EQ(back.tensors.size(), saved.tensors.size());
  for (const auto& [name, tensor] : saved.tensors) {
    ASSERT_TRUE(back.tensors.count(name)) << name;
    const torch::Tensor& loaded = back.tensors.at(name);
    EXPECT_EQ(loaded.scalar_type(), tensor.scalar_type()) << name;
    EXPECT_EQ(loaded.sizes(), tensor.sizes()) << name;
    EXPECT_TRUE(torch::equal(loaded, tensor)) << name;  // bit-exact: no conversion on the way
  }
}

TEST(Checkpoint, StoreWritesAtomicallyAndKeepsTheLastN) {
  TempDir dir;
  CheckpointStore store(dir.file("ckpt"), 2);
  for (int64_t step = 1; step <= 5; ++step) store.save(make_checkpoint(step));
  const auto entries = store.list();
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_EQ(entries[0].step, 4);
  EXPECT_EQ(entries[1].step, 5);
  EXPECT_EQ(entries[1].path, store.path_for(5));
  // Nothing but the two checkpoints: no temporary file stays behind.
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(store.folder()), {}), 2);
  const auto latest = store.latest();
  ASSERT_TRUE(latest.has_value());
  EXPECT_EQ(read_checkpoint(latest->path).step, 5);
}

TEST(Checkpoint, PartialTemporaryFileIsIgnoredAndCleanedUp) {
  TempDir dir;
  CheckpointStore store(dir.file("ckpt"), 3);
  store.save(make_checkpoint(5));
  // What a writer killed while writing step 6 leaves: a hidden, cut-short temporary file.
  const std::string partial = dir.file("ckpt/.step-00000006.ckpt.h5.writing-999999");
  {
    std::ifstream in(store.path_for(5), std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), {});
    std::ofstream(partial, std::ios::binary) << bytes.substr(0, bytes.size() / 3);
  }
  ASSERT_EQ(store.list().size(), 1u);
  EXPECT_EQ(store.latest()->step, 5);
  store.save(make_checkpoint(7));
  EXPECT_FALSE(std::filesystem::exists(partial));
  EXPECT_EQ(store.latest()->step, 7);
}

TEST(Checkpoint, DamagedCheckpointsAreNamedErrors) {
  TempDir dir;
  const std::string path = dir.file("good.ckpt.h5");
  write_checkpoint(path, make_checkpoint(3));
  std::ifstream in(path, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), {});

  const std::string cut = dir.file("cut.ckpt.h5");
  std::ofstream(cut, std::ios::binary) << bytes.substr(0, bytes.size() / 2);
  EXPECT_TRUE(contains(message_of([&] { read_checkpoint(cut); }), cut));
  EXPECT_THROW(read_checkpoint(cut), InputError);

  const std::string text = dir.file("text.ckpt.h5");
  std::ofstream(text) << "not a checkpoint";
  EXPECT_TRUE(contains(message_of([&] { read_checkpoint(text); }), "not an HDF5 file"));
  EXPECT_THROW(read_checkpoint(dir.file("missing.ckpt.h5")), InputError);

  // Flipped bits inside a tensor's data: its Fletcher-32 checksum names the tensor.
  const torch::Tensor weight = make_checkpoint(3).tensors.at("prompter/lm_head.weight");
  const std::string needle(static_cast<const char*>(weight.data_ptr()), 16);
  const size_t at = bytes.find(needle);
  ASSERT_NE(at, std::string::npos);
  std::string flipped = bytes;
  flipped[at + 5] = static_cast<char>(flipped[at + 5] ^ 0x10);
  const std::string bad = dir.file("flipped.ckpt.h5");
  std::ofstream(bad, std::ios::binary) << flipped;
  const std::string message = message_of([&] { read_checkpoint(bad); });
  EXPECT_TRUE(contains(message, "prompter/lm_head.weight") && contains(message, bad)) << message;
  EXPECT_THROW(read_checkpoint(bad), InputError);
}

TEST(Checkpoint, IncompleteOrForeignFilesAreRefused) {
  TempDir dir;
  const std::string path = dir.file("incomplete.ckpt.h5");
  write_checkpoint(path, make_checkpoint(1));
  hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  ASSERT_GE(file, 0);
  h5::write_attribute(file, "complete", int64_t{0}, path);
  H5Fclose(file);
  EXPECT_TRUE(contains(message_of([&] { read_checkpoint(path); }), "incomplete"));

  write_checkpoint(path, make_checkpoint(1));
  file = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  h5::write_attribute(file, "format_version", int64_t{7}, path);
  H5Fclose(file);
  EXPECT_TRUE(contains(message_of([&] { read_checkpoint(path); }), "format version 7"));

  const std::string foreign = dir.file("foreign.ckpt.h5");
  H5Fclose(H5Fcreate(foreign.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT));
  EXPECT_TRUE(
      contains(message_of([&] { read_checkpoint(foreign); }), "not an alignpro checkpoint"));
}

TEST(Checkpoint, LatestSkipsADamagedNewerCheckpoint) {
  TempDir dir;
  CheckpointStore store(dir.file("ckpt"), 5);
  store.save(make_checkpoint(1));
  store.save(make_checkpoint(2));
  std::ofstream(store.path_for(3), std::ios::binary) << "garbage";
  ASSERT_EQ(store.list().size(), 3u);
  EXPECT_EQ(store.latest()->step, 2);
}

// The disk fills while a checkpoint is written (a file-size limit in a child process): the
// error names the file, and the previous checkpoint is still there and sound.
TEST(Checkpoint, FullDiskKeepsThePreviousCheckpoint) {
  TempDir dir;
  CheckpointStore store(dir.file("ckpt"), 1);
  store.save(make_checkpoint(1));
  // Made before the fork: the child does no tensor arithmetic (thread pools do not survive fork).
  Checkpoint big = make_checkpoint(2);
  big.tensors["big"] = torch::ones({256, 1024});
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    int code = 3;
    try {
      std::signal(SIGXFSZ, SIG_IGN);
      rlimit limit{64 * 1024, 64 * 1024};
      setrlimit(RLIMIT_FSIZE, &limit);
      store.save(big);
    } catch (const RuntimeError& e) {
      code = std::string(e.what()).find("step-00000002") != std::string::npos ? 0 : 2;
    } catch (...) {
      code = 1;
    }
    _exit(code);
  }
  int status = 0;
  waitpid(child, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "1: another error, 2: file not named, 3: no error";
  const auto entries = store.list();
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(read_checkpoint(entries[0].path).step, 1);
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(store.folder()), {}), 1);
}

TEST(Checkpoint, ResumeConflictsNameWhatChanged) {
  const Checkpoint saved = make_checkpoint(1);
  EXPECT_TRUE(resume_conflicts(saved, saved.job_hash, saved.models).empty());
  ModelIdentities other = saved.models;
  other.target = "9999999999999999";
  const auto conflicts = resume_conflicts(saved, saved.job_hash, other);
  ASSERT_EQ(conflicts.size(), 1u);
  EXPECT_TRUE(contains(conflicts[0], "target") && contains(conflicts[0], "9999999999999999"))
      << conflicts[0];
  other = saved.models;
  other.reward_model = "";
  other.reference_prompter = "8888888888888888";
  EXPECT_EQ(resume_conflicts(saved, 1, other).size(), 3u);
}

TEST(Checkpoint, RefusesTensorsItCannotStore) {
  TempDir dir;
  Checkpoint c = make_checkpoint(1);
  c.tensors["bad//name"] = torch::zeros({1});
  EXPECT_THROW(write_checkpoint(dir.file("x.ckpt.h5"), c), RuntimeError);
  c = make_checkpoint(1);
  c.tensors["complex"] = torch::zeros({2}, torch::kComplexFloat);
  EXPECT_THROW(write_checkpoint(dir.file("y.ckpt.h5"), c), RuntimeError);
  EXPECT_FALSE(std::filesystem::exists(dir.file("x.ckpt.h5")));
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir.path()), {}), 0);
}

// A tiny model folder: config, tokenizer, and a safetensors file with 8 KiB of weights.
void make_model(const std::filesystem::path& folder) {
  std::filesystem::create_directories(folder);
  std::ofstream(folder / "config.json") << R"({"model_type": "llama", "hidden_size": 64})";
  std::ofstream(folder / "tokenizer.json") << R"({"model": {"type": "BPE"}})";
  std::ofstream(folder / "README.md") << "a model card";
  const std::string header = R"({"w":{"dtype":"F32","shape":[2048],"data_offsets":[0,8192]}})";
  const uint64_t length = header.size();
  std::ofstream out(folder / "model.safetensors", std::ios::binary);
  out.write(reinterpret_cast<const char*>(&length), 8);
  out << header << std::string(8192, '\x01');
}

void poke(const std::filesystem::path& file, std::streamoff offset, char value) {
  std::fstream f(file, std::ios::binary | std::ios::in | std::ios::out);
  f.seekp(offset);
  f.put(value);
}

TEST(ModelIdentity, IsStableAndFollowsConfigAndWeights) {
  TempDir dir;
  const auto folder = dir.path() / "model";
  make_model(folder);
  const std::string id = model_folder_identity(folder.string());
  EXPECT_EQ(id.size(), 16u);
  EXPECT_EQ(model_folder_identity(folder.string()), id);
  std::ofstream(folder / "README.md") << "another model card";
  EXPECT_EQ(model_folder_identity(folder.string()), id);  // documentation does not count

  const auto weights = folder / "model.safetensors";
  const auto size = static_cast<std::streamoff>(std::filesystem::file_size(weights));
  poke(weights, size - 1, '\x02');  // a fine-tune changes the weights, shapes stay
  const std::string tuned = model_folder_identity(folder.string());
  EXPECT_NE(tuned, id);
  std::ofstream(folder / "config.json") << R"({"model_type": "llama", "hidden_size": 65})";
  EXPECT_NE(model_folder_identity(folder.string()), tuned);
  EXPECT_NE(text_identity("Be brief: {prompt}"), text_identity("Be kind: {prompt}"));
}

TEST(ModelIdentity, BadFoldersAreInputErrors) {
  TempDir dir;
  EXPECT_THROW(model_folder_identity(dir.file("none")), InputError);
  EXPECT_TRUE(
      contains(message_of([&] { model_folder_identity(dir.path().string()); }), "config.json"));
  const auto folder = dir.path() / "model";
  make_model(folder);
  poke(folder / "model.safetensors", 7, '\x40');  // header length far past the end
  const std::string message = message_of([&] { model_folder_identity(folder.string()); });
  EXPECT_TRUE(contains(message, "model.safetensors") && contains(message, "byte 0")) << message;
}

}  // namespace
}  // namespace alignpro
