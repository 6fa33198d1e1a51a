#include "model/transformer.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "common/error.h"
#include "fixtures.h"
#include "model/safetensors.h"
#include "model/scoring.h"

namespace alignpro {
namespace {

using testing::masked_max_diff;
using testing::model_dir;
using testing::Reference;

// float32 against the reference's float32: the same operations in a different order (BLAS
// blocking, fused kernels) differ by a few ulps per step; 1e-4 leaves room for that and nothing
// else at these sizes.
constexpr double kTolerance = 1e-4;

class CausalModelTest : public ::testing::TestWithParam<std::string> {};

TEST_P(CausalModelTest, LeftPaddedBatchLogitsMatchReference) {
  const auto model = load_model(model_dir(GetParam()));
  const Reference ref(GetParam());
  torch::NoGradGuard no_grad;
  const torch::Tensor mask = ref.ids("padded_mask");
  const torch::Tensor logits =
      model->forward(ref.ids("padded_ids"), mask, ref.ids("padded_positions"));
  const torch::Tensor expected = ref.tensor("padded_logits");
  ASSERT_EQ(logits.sizes(), expected.sizes());
  // Padding positions are masked noise in both implementations; only real tokens count.
  EXPECT_LT(masked_max_diff(logits, expected, mask), kTolerance);
}

TEST_P(CausalModelTest, UnpaddedLogitsMatchReference) {
  const auto model = load_model(model_dir(GetParam()));
  const Reference ref(GetParam());
  torch::NoGradGuard no_grad;
  const torch::Tensor logits = model->forward(ref.ids("single_ids"));
  EXPECT_LT((logits - ref.tensor("single_logits")).abs().max().item<double>(), kTolerance);
}

TEST_P(CausalModelTest, LongerSequenceLogitsMatchReference) {
  // Prompt plus greedy continuation: longer than the sliding windows of the window fixtures.
  const auto model = load_model(model_dir(GetParam()));
  const Reference ref(GetParam());
  torch::NoGradGuard no_grad;
  const torch::Tensor mask = ref.ids("full_mask");
  const torch::Tensor logits = model->forward(ref.ids("full_ids"), mask, ref.ids("full_positions"));
  EXPECT_LT(masked_max_diff(logits, ref.tensor("full_logits"), mask), kTolerance);
}

TEST_P(CausalModelTest, CachedStepsMatchOnePass) {
  const auto model = load_model(model_dir(GetParam()));
  const Reference ref(GetParam());
  torch::NoGradGuard no_grad;
  const torch::Tensor ids = ref.ids("full_ids");
  const torch::Tensor mask = ref.ids("full_mask");
  const torch::Tensor positions = ref.ids("full_positions");
  const int64_t length = ids.size(1), split = length - 5;
  KvCache cache = model->new_cache(ids.size(0), length);
  std::vector<torch::Tensor> pieces = {model->forward(
      ids.narrow(1, 0, split), mask.narrow(1, 0, split), positions.narrow(1, 0, split), &cache)};
  for (int64_t t = split; t < length; ++t) {
    pieces.push_back(model->forward(ids.narrow(1, t, 1), mask.narrow(1, 0, t + 1),
                                    positions.narrow(1, t, 1), &cache));
  }
  EXPECT_EQ(cache.length(), length);
  const torch::Tensor stepped = torch::cat(pieces, 1);
  EXPECT_LT(masked_max_diff(stepped, ref.tensor("full_logits"), mask), kTolerance);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, CausalModelTest, ::testing::ValuesIn(testing::causal_models()));

class RewardModelTest : public ::testing::TestWithParam<std::string> {};

TEST_P(RewardModelTest, PaddedScoresMatchReference) {
  const auto model = load_model(model_dir(GetParam()));
  const Reference ref(GetParam());
  torch::NoGradGuard no_grad;
  for (const std::string side : {"right", "left"}) {
    const torch::Tensor scores =
        classification_scores(*model, ref.ids(side + "_ids"), ref.ids(side + "_mask"));
    EXPECT_LT((scores - ref.tensor(side + "_scores")).abs().max().item<double>(), kTolerance)
        << side << " padding";
  }
}

TEST_P(RewardModelTest, SequenceScoresMatchScoringEachAlone) {
  const auto model = load_model(model_dir(GetParam()));
  const Reference ref(GetParam());
  const auto sequences = testing::rows_of(ref.info["sequences"]);
  const torch::Tensor expected = ref.tensor("single_scores");
  const torch::Tensor scores = score_sequences(*model, sequences);
  EXPECT_LT((scores - expected).abs().max().item<double>(), kTolerance);
  const torch::Tensor in_pairs = score_sequences(*model, sequences, /*max_batch=*/2);
  EXPECT_LT((in_pairs - expected).abs().max().item<double>(), kTolerance);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, RewardModelTest, ::testing::ValuesIn(testing::reward_models()));

TEST(LastNonPadIndex, TakesTheRightmostNonPadToken) {
  const torch::Tensor ids =
      torch::tensor({5, 6, 0, 0, 0, 0, 7, 8, 3, 0, 4, 0, 0, 0, 0, 0}, torch::kInt64).view({4, 4});
  const torch::Tensor index = last_non_pad_index(ids, 0);
  EXPECT_EQ(index[0].item<int64_t>(), 1);
  EXPECT_EQ(index[1].item<int64_t>(), 3);
  EXPECT_EQ(index[2].item<int64_t>(), 2);  // pad in the middle does not stop it
  EXPECT_EQ(index[3].item<int64_t>(), 0);  // only padding
  EXPECT_EQ(last_non_pad_index(ids, std::nullopt)[2].item<int64_t>(), 3);
}

TEST(Transformer, ParameterNamesMatchTheCheckpointKeys) {
  for (const auto& name : testing::causal_models()) {
    const auto model = load_model(model_dir(name));
    const WeightFiles checkpoint(model_dir(name));
    for (const auto& [key, tensor] : model->checkpoint_tensors()) {
      EXPECT_TRUE(checkpoint.contains(key)) << name << ": " << key;
    }
    EXPECT_EQ(model->checkpoint_tensors().size(), checkpoint.names().size()) << name;
  }
}

TEST(Transformer, SavedModelLoadsBackWithTheSameLogits) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("alignpro_save_" + std::to_string(::getpid()));
  for (const std::string name : {"gpt2_untied", "llama3_tied"}) {
    const auto model = load_model(model_dir(name));
    save_model(*model, dir.string());
    const auto again = load_model(dir.string());
    torch::NoGradGuard no_grad;
    const torch::Tensor ids = Reference(name).ids("single_ids");
    EXPECT_TRUE(torch::equal(model->forward(ids), again->forward(ids))) << name;
    EXPECT_EQ(read_model_config(dir.string()).architecture, model->config().architecture);
  }
  std::filesystem::remove_all(dir);
}

TEST(Transformer, LoadsHalfPrecisionWeightsIntoTheAskedDtype) {
  LoadOptions options;
  options.dtype = torch::kBFloat16;
  const auto model = load_model(model_dir("gpt2"), options);
  EXPECT_EQ(model->dtype(), torch::kBFloat16);
  torch::NoGradGuard no_grad;
  const Reference ref("gpt2");
  const torch::Tensor logits = model->forward(ref.ids("single_ids"));
  EXPECT_EQ(logits.scalar_type(), torch::kFloat32);
  // bfloat16 keeps 8 bits of mantissa: only a loose agreement is expected.
  EXPECT_LT((logits - ref.tensor("single_logits")).abs().max().item<double>(), 0.5);
}

class BrokenCheckpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("alignpro_broken_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    std::filesystem::copy_file(model_dir("gpt2") + "/config.json", dir_ / "config.json");
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::filesystem::path dir_;
};

void expect_load_error(const std::string& dir, const std::vector<std::string>& parts) {
  try {
    load_model(dir);
    ADD_FAILURE() << "no InputError thrown";
  } catch (const InputError& e) {
    const std::string message = e.what();
    for (const auto& part : parts) {
      EXPECT_NE(message.find(part), std::string::npos) << message << " lacks " << part;
    }
  }
}

TEST_F(BrokenCheckpointTest, MissingTensorFailsNamingIt) {
  const auto model = load_model(model_dir("gpt2"));
  auto tensors = model->checkpoint_tensors();
  tensors.erase(tensors.begin() + 3);
  const std::string missing = model->checkpoint_tensors()[3].first;
  save_checkpoint(dir_.string(), tensors);
  expect_load_error(dir_.string(), {missing, "GPT2LMHeadModel"});
}

TEST_F(BrokenCheckpointTest, WrongShapeFailsNamingTensorAndShapes) {
  const auto model = load_model(model_dir("gpt2"));
  auto tensors = model->checkpoint_tensors();
  for (auto& [name, tensor] : tensors) {
    if (name == "transformer.h.0.attn.c_attn.weight") tensor = tensor.t().contiguous();
  }
  save_checkpoint(dir_.string(), tensors);
  expect_load_error(dir_.string(), {"transformer.h.0.attn.c_attn.weight", "[96, 32]", "[32, 96]"});
}

TEST_F(BrokenCheckpointTest, IntegerWeightsFail) {
  const auto model = load_model(model_dir("gpt2"));
  auto tensors = model->checkpoint_tensors();
  tensors[0].second = tensors[0].second.to(torch::kInt32);
  save_checkpoint(dir_.string(), tensors);
  expect_load_error(dir_.string(), {tensors[0].first, "I32"});
}

TEST_F(BrokenCheckpointTest, TruncatedWeightsFileFails) {
  std::ifstream in(model_dir("gpt2") + "/model.safetensors", std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::ofstream(dir_ / "model.safetensors", std::ios::binary) << bytes.substr(0, bytes.size() / 2);
  expect_load_error(dir_.string(), {"model.safetensors", "outside the data section", "at byte"});
}

}  // namespace
}  // namespace alignpro
