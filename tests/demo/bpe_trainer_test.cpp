// The BPE trainer and the demo's tokenizer: learned merges follow the pair counts, the written
// tokenizer.json reads back through src/text, and the shipped tokenizer round-trips the world's
// text and is what the trainer makes today.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "demo/bpe_trainer.h"
#include "demo/world.h"
#include "demo_test_util.h"
#include "text/tokenizer.h"

namespace alignpro::demo {
namespace {

TEST(BpeTrainer, MergesTheMostFrequentPairFirst) {
  BpeTrainOptions options;
  options.vocab_size = 2 + 256 + 3;
  // "ab" occurs 5 times as a pair, "cd" 2 times.
  const BpeVocabulary vocabulary = train_byte_level_bpe({"ab ab ab ab ab cd cd"}, options);
  ASSERT_EQ(vocabulary.tokens.size(), 261u);
  // The first merge joins the most frequent pair; ties go to the lower pair.
  EXPECT_EQ(vocabulary.merges[0], std::make_pair(std::string("a"), std::string("b")));
  EXPECT_EQ(vocabulary.tokens[0], "<|pad|>");
  EXPECT_EQ(vocabulary.tokens[1], "<|endoftext|>");
}

TEST(BpeTrainer, StopsWhenNoPairIsFrequentEnough) {
  BpeTrainOptions options;
  options.vocab_size = 1000;
  options.min_frequency = 3;
  const BpeVocabulary vocabulary = train_byte_level_bpe({"xy xy zw"}, options);
  EXPECT_TRUE(vocabulary.merges.empty());
  EXPECT_EQ(vocabulary.tokens.size(), 258u);
}

TEST(BpeTrainer, TooSmallVocabularyIsAnInputError) {
  BpeTrainOptions options;
  options.vocab_size = 100;
  EXPECT_THROW(train_byte_level_bpe({"abc"}, options), InputError);
}

TEST(BpeTrainer, WrittenTokenizerEncodesWithItsMerges) {
  BpeTrainOptions options;
  options.vocab_size = 2 + 256 + 20;
  const std::vector<std::string> corpus = {"the cat sat on the mat", "the hat", "a cat"};
  const BpeVocabulary vocabulary = train_byte_level_bpe(corpus, options);
  const std::string folder = testing::scratch_dir("bpe_small");
  write_tokenizer(vocabulary, folder, 64);
  const Tokenizer tokenizer = Tokenizer::from_folder(folder);
  EXPECT_EQ(tokenizer.vocab_size(), static_cast<int64_t>(vocabulary.tokens.size()));
  EXPECT_EQ(tokenizer.pad_id(), std::optional<int64_t>(0));
  EXPECT_EQ(tokenizer.eos_id(), std::optional<int64_t>(1));
  EXPECT_EQ(tokenizer.bos_id(), std::nullopt);
  for (const auto& text : corpus) {
    const auto ids = tokenizer.encode(text);
    EXPECT_LT(ids.size(), text.size());  // the merges shorten it
    EXPECT_EQ(tokenizer.decode(ids), text);
  }
  // Text the corpus never had still round-trips through the byte tokens.
  const std::string unseen = "Zebra \xc3\xa9t\xc3\xa9 {42}\n\ttab";
  EXPECT_EQ(tokenizer.decode(tokenizer.encode(unseen)), unseen);
}

TEST(DemoTokenizer, RoundTripsTheWorldsText) {
  const Tokenizer tokenizer = Tokenizer::from_folder(testing::demo_dir() + "/tokenizer");
  EXPECT_GE(tokenizer.vocab_size(), 500);
  EXPECT_LE(tokenizer.vocab_size(), 1000);
  WorldConfig config;
  config.target_examples = 300;
  config.prompter_examples = 300;
  config.reward_pairs = 300;
  double bytes = 0, tokens = 0;
  for (const auto& text : world_corpus(config)) {
    const auto ids = tokenizer.encode(text);
    ASSERT_EQ(tokenizer.decode(ids), text);
    bytes += static_cast<double>(text.size());
    tokens += static_cast<double>(ids.size());
  }
  // A vocabulary learned on this text packs several bytes into each token.
  EXPECT_GT(bytes / tokens, 3.0);
}

TEST(DemoTokenizer, RetrainingReproducesTheShippedTokenizer) {
  const std::string shipped = testing::demo_dir() + "/tokenizer/tokenizer.json";
  const auto json = nlohmann::ordered_json::parse(testing::read_file(shipped));
  BpeTrainOptions options;
  options.vocab_size = static_cast<int64_t>(json.at("model").at("vocab").size());
  const BpeVocabulary vocabulary = train_byte_level_bpe(world_corpus(WorldConfig{}), options);
  EXPECT_TRUE(tokenizer_json(vocabulary) == json) << shipped << " differs from a fresh training";
}

}  // namespace
}  // namespace alignpro::demo
