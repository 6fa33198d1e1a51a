#include "model/safetensors.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>

#include "common/error.h"
#include "fixtures.h"

namespace alignpro {
namespace {

namespace fs = std::filesystem;

class SafetensorsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("alignpro_safetensors_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // A file of the 8-byte length `declared` (or the header's true size), the header, then data.
  std::string write_raw(const std::string& name, const std::string& header, const std::string& data,
                        std::optional<uint64_t> declared = std::nullopt) {
    const std::string path = (dir_ / name).string();
    std::ofstream out(path, std::ios::binary);
    const uint64_t size = declared.value_or(header.size());
    out.write(reinterpret_cast<const char*>(&size), 8);
    out << header << data;
    return path;
  }
  std::string write_bytes(const std::string& name, const std::string& bytes) {
    const std::string path = (dir_ / name).string();
    std::ofstream(path, std::ios::binary) << bytes;
    return path;
  }
  static std::string read_bytes(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  }

  fs::path dir_;
};

// Runs f, which must throw InputError whose message contains every one of `parts`.
void expect_input_error(const std::function<void()>& f, const std::vector<std::string>& parts) {
  try {
    f();
    ADD_FAILURE() << "no InputError thrown";
  } catch (const InputError& e) {
    const std::string message = e.what();
    for (const auto& part : parts) {
      EXPECT_NE(message.find(part), std::string::npos)
          << "message \"" << message << "\" lacks \"" << part << "\"";
    }
  }
}

TEST_F(SafetensorsTest, RoundTripKeepsNamesShapesDtypesAndValues) {
  const torch::Tensor a = torch::randn({3, 5});
  const torch::Tensor b = torch::arange(7, torch::kInt64);
  const torch::Tensor c = torch::randn({2, 2, 2}).to(torch::kBFloat16);
  const torch::Tensor d = torch::randn({4}).to(torch::kFloat16);
  const torch::Tensor scalar = torch::tensor(2.5f).reshape({});
  const std::string path = (dir_ / "t.safetensors").string();
  save_safetensors(path, {{"a", a}, {"b", b}, {"c.weight", c}, {"d", d}, {"scalar", scalar}},
                   {{"note", "kept"}});

  const SafetensorsFile file(path);
  EXPECT_EQ(file.names().size(), 5u);
  EXPECT_EQ(file.metadata().at("note"), "kept");
  EXPECT_EQ(file.metadata().at("format"), "pt");
  EXPECT_EQ(file.entry("c.weight").dtype, "BF16");
  EXPECT_EQ(file.entry("a").shape, (std::vector<int64_t>{3, 5}));
  EXPECT_TRUE(torch::equal(file.load("a", torch::kFloat32), a));
  EXPECT_TRUE(torch::equal(file.load("b", torch::kFloat32), b));  // integers keep their dtype
  EXPECT_EQ(file.load("b", torch::kFloat32).scalar_type(), torch::kInt64);
  EXPECT_TRUE(torch::equal(file.load("c.weight", torch::kFloat32), c.to(torch::kFloat32)));
  EXPECT_TRUE(torch::equal(file.load("d", torch::kFloat32), d.to(torch::kFloat32)));
  EXPECT_EQ(file.load("d", torch::kBFloat16).scalar_type(), torch::kBFloat16);
  EXPECT_EQ(file.load("scalar", torch::kFloat32).dim(), 0);
  EXPECT_FLOAT_EQ(file.load("scalar", torch::kFloat32).item<float>(), 2.5f);
  // Every tensor starts at a multiple of its element size and the data section 8-byte aligned.
  for (const auto& name : file.names()) {
    const auto& e = file.entry(name);
    const int64_t size = e.dtype == "F32" ? 4 : e.dtype == "I64" ? 8 : 2;
    EXPECT_EQ(e.begin % static_cast<uint64_t>(size), 0u) << name;
  }
  uint64_t header_size = 0;
  std::memcpy(&header_size, read_bytes(path).data(), 8);
  EXPECT_EQ(header_size % 8, 0u);
}

TEST_F(SafetensorsTest, LoadedTensorsOwnTheirMemory) {
  const std::string path = (dir_ / "t.safetensors").string();
  save_safetensors(path, {{"x", torch::ones({4})}});
  torch::Tensor x;
  {
    const SafetensorsFile file(path);
    x = file.load("x", torch::kFloat32);
  }
  fs::remove(path);
  EXPECT_FLOAT_EQ(x.sum().item<float>(), 4.0f);  // still readable after unmapping
}

TEST_F(SafetensorsTest, MissingFileFailsNamingIt) {
  const std::string path = (dir_ / "absent.safetensors").string();
  expect_input_error([&] { SafetensorsFile f(path); }, {path, "cannot open"});
}

TEST_F(SafetensorsTest, FileShorterThanLengthFieldFails) {
  const std::string path = write_bytes("short.safetensors", "abcde");
  expect_input_error([&] { SafetensorsFile f(path); }, {path, "at byte 0", "5 bytes"});
}

TEST_F(SafetensorsTest, EmptyFileFails) {
  const std::string path = write_bytes("empty.safetensors", "");
  expect_input_error([&] { SafetensorsFile f(path); }, {path, "at byte 0"});
}

TEST_F(SafetensorsTest, HeaderLongerThanFileFails) {
  const std::string path = write_raw("long.safetensors", "{}", "", uint64_t{1000});
  expect_input_error([&] { SafetensorsFile f(path); },
                     {path, "header length 1000", "runs past the end", "at byte 0"});
}

TEST_F(SafetensorsTest, HugeHeaderLengthFailsWithoutAllocating) {
  const std::string path = write_raw("huge.safetensors", "{}", "", ~uint64_t{0});
  expect_input_error([&] { SafetensorsFile f(path); }, {path, "header length"});
}

TEST_F(SafetensorsTest, BadJsonFailsWithBytePosition) {
  // The syntax error is the 'x' at header offset 10, file byte 18.
  const std::string path = write_raw("bad.safetensors", "{\"a\": {\"dx", "");
  expect_input_error([&] { SafetensorsFile f(path); }, {path, "not valid JSON", "at byte"});
  try {
    SafetensorsFile f(path);
  } catch (const InputError& e) {
    const std::string message = e.what();
    const size_t at = message.rfind("at byte ");
    ASSERT_NE(at, std::string::npos);
    const long byte = std::stol(message.substr(at + 8));
    EXPECT_GE(byte, 8);
    EXPECT_LE(byte, 8 + 11);
  }
}

TEST_F(SafetensorsTest, HeaderThatIsNotAnObjectFails) {
  const std::string path = write_raw("array.safetensors", "[1, 2]", "");
  expect_input_error([&] { SafetensorsFile f(path); }, {path, "not a JSON object"});
}

TEST_F(SafetensorsTest, OffsetsOutOfRangeFail) {
  const std::string header = R"({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}})";
  const std::string path = write_raw("range.safetensors", header, std::string(8, '\0'));
  expect_input_error([&] { SafetensorsFile f(path); }, {path, "\"w\"", "data_offsets [0, 16]",
                                                        "outside the data section of 8 bytes"});
}

TEST_F(SafetensorsTest, ReversedOffsetsFail) {
  const std::string header = R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": [8, 4]}})";
  const std::string path = write_raw("reversed.safetensors", header, std::string(8, '\0'));
  expect_input_error([&] { SafetensorsFile f(path); }, {path, "\"w\"", "data_offsets [8, 4]"});
}

TEST_F(SafetensorsTest, ShapeAndByteCountMismatchFails) {
  const std::string header = R"({"w": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 16]}})";
  const std::string path = write_raw("mismatch.safetensors", header, std::string(16, '\0'));
  expect_input_error([&] { SafetensorsFile f(path); },
                     {path, "\"w\"", "shape [2, 3]", "needs 24 bytes", "span 16"});
}

TEST_F(SafetensorsTest, OverflowingShapeFails) {
  const std::string header =
      R"({"w": {"dtype": "F32", "shape": [4611686018427387904, 8], "data_offsets": [0, 0]}})";
  const std::string path = write_raw("overflow.safetensors", header, "");
  expect_input_error([&] { SafetensorsFile f(path); }, {path, "\"w\"", "overflows"});
}

TEST_F(SafetensorsTest, UnknownDtypeFailsListingSupported) {
  const std::string header = R"({"w": {"dtype": "F8_E9", "shape": [1], "data_offsets": [0, 1]}})";
  const std::string path = write_raw("dtype.safetensors", header, std::string(1, '\0'));
  expect_input_error([&] { SafetensorsFile f(path); },
                     {path, "\"w\"", "\"F8_E9\"", "supported: F64, F32, F16, BF16"});
}

TEST_F(SafetensorsTest, MalformedEntriesFail) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"({"w": 3})", "is not an object"},
      {R"({"w": {"shape": [1], "data_offsets": [0, 4]}})", "no string \"dtype\""},
      {R"({"w": {"dtype": "F32", "data_offsets": [0, 4]}})", "no \"shape\" array"},
      {R"({"w": {"dtype": "F32", "shape": [1]}})", "no \"data_offsets\""},
      {R"({"w": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}})", "non-negative"},
      {R"({"w": {"dtype": "F32", "shape": [1.5], "data_offsets": [0, 4]}})", "non-negative"},
      {R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, "4"]}})", "non-negative"},
      {R"({"__metadata__": {"a": 1}})", "is not a string"},
  };
  int i = 0;
  for (const auto& [header, expected] : cases) {
    const std::string path =
        write_raw("entry" + std::to_string(i++) + ".safetensors", header, std::string(4, '\0'));
    expect_input_error([&] { SafetensorsFile f(path); }, {path, expected, "at byte"});
  }
}

TEST_F(SafetensorsTest, OverlappingTensorsFail) {
  const std::string header = R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},)"
                             R"( "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}})";
  const std::string path = write_raw("overlap.safetensors", header, std::string(12, '\0'));
  expect_input_error([&] { SafetensorsFile f(path); }, {path, "\"a\"", "\"b\"", "overlap"});
}

TEST_F(SafetensorsTest, EveryTruncationOfAValidFileFailsCleanly) {
  const std::string path = (dir_ / "full.safetensors").string();
  save_safetensors(path,
                   {{"a", torch::randn({3, 4})}, {"b", torch::randn({5}).to(torch::kBFloat16)}});
  const std::string bytes = read_bytes(path);
  for (size_t n = 0; n < bytes.size(); ++n) {
    const std::string cut = write_bytes("cut.safetensors", bytes.substr(0, n));
    EXPECT_THROW(SafetensorsFile f(cut), InputError) << "prefix of " << n << " bytes";
  }
  EXPECT_NO_THROW(SafetensorsFile f(path));
}

TEST_F(SafetensorsTest, CorruptedHeaderBytesNeverCrash) {
  const std::string path = (dir_ / "full.safetensors").string();
  save_safetensors(path, {{"a", torch::randn({3, 4})}, {"b", torch::randn({5})}});
  const std::string bytes = read_bytes(path);
  uint64_t header_size = 0;
  std::memcpy(&header_size, bytes.data(), 8);
  std::mt19937 generator(7);
  std::uniform_int_distribution<size_t> where(0, 8 + header_size - 1);
  std::uniform_int_distribution<int> value(0, 255);
  int failures = 0;
  for (int trial = 0; trial < 300; ++trial) {
    std::string corrupt = bytes;
    corrupt[where(generator)] = static_cast<char>(value(generator));
    const std::string p = write_bytes("corrupt.safetensors", corrupt);
    try {
      const SafetensorsFile file(p);
      for (const auto& name : file.names()) (void)file.load(name, torch::kFloat32);
    } catch (const InputError&) {
      ++failures;
    }
  }
  EXPECT_GT(failures, 0);  // some corruptions must be caught; none may crash or throw otherwise
}

TEST_F(SafetensorsTest, ShardedCheckpointRoundTrip) {
  const torch::Tensor a = torch::randn({64, 16});
  const torch::Tensor b = torch::randn({64, 16});
  const torch::Tensor c = torch::randn({10});
  save_checkpoint(dir_.string(), {{"a", a}, {"b", b}, {"c", c}}, /*max_shard_bytes=*/5000);
  EXPECT_TRUE(fs::exists(dir_ / "model.safetensors.index.json"));
  EXPECT_FALSE(fs::exists(dir_ / "model.safetensors"));
  const WeightFiles checkpoint(dir_.string());
  EXPECT_EQ(checkpoint.names(), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_TRUE(torch::equal(checkpoint.load("b", torch::kFloat32), b));
  EXPECT_TRUE(torch::equal(checkpoint.load("c", torch::kFloat32), c));

  // Saving again unsharded replaces the index.
  save_checkpoint(dir_.string(), {{"a", a}});
  EXPECT_FALSE(fs::exists(dir_ / "model.safetensors.index.json"));
  EXPECT_EQ(WeightFiles(dir_.string()).names(), (std::vector<std::string>{"a"}));
}

TEST_F(SafetensorsTest, ReadsTheReferenceShardedFixture) {
  const WeightFiles checkpoint(testing::model_dir("llama_gqa"));
  EXPECT_TRUE(checkpoint.contains("model.embed_tokens.weight"));
  EXPECT_TRUE(checkpoint.contains("lm_head.weight"));
  EXPECT_EQ(checkpoint.entry("model.layers.1.self_attn.k_proj.weight").shape,
            (std::vector<int64_t>{16, 32}));
}

TEST_F(SafetensorsTest, IndexNamingAFileOutsideTheFolderFails) {
  save_safetensors((dir_ / "shard.safetensors").string(), {{"a", torch::ones({2})}});
  std::ofstream(dir_ / "model.safetensors.index.json")
      << R"({"weight_map": {"a": "../shard.safetensors"}})";
  expect_input_error(
      [&] { WeightFiles c(dir_.string()); },
      {"model.safetensors.index.json", "\"../shard.safetensors\"", "plain file name"});
}

TEST_F(SafetensorsTest, IndexNamingATensorAbsentFromItsShardFails) {
  save_safetensors((dir_ / "shard.safetensors").string(), {{"a", torch::ones({2})}});
  std::ofstream(dir_ / "model.safetensors.index.json")
      << R"({"weight_map": {"a": "shard.safetensors", "b": "shard.safetensors"}})";
  expect_input_error([&] { WeightFiles c(dir_.string()); },
                     {"\"b\"", "shard.safetensors", "no such"});
}

TEST_F(SafetensorsTest, MalformedIndexFails) {
  std::ofstream(dir_ / "model.safetensors.index.json") << R"({"weight_map": {"a": )";
  expect_input_error([&] { WeightFiles c(dir_.string()); },
                     {"model.safetensors.index.json", "not valid JSON", "at byte"});
  std::ofstream(dir_ / "model.safetensors.index.json") << R"({"weights": {}})";
  expect_input_error([&] { WeightFiles c(dir_.string()); }, {"\"weight_map\""});
}

TEST_F(SafetensorsTest, FolderWithoutWeightsFails) {
  expect_input_error([&] { WeightFiles c(dir_.string()); }, {dir_.string(), "model.safetensors"});
}

}  // namespace
}  // namespace alignpro
