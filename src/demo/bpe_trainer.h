// Learning a small byte-level BPE tokenizer from a corpus and writing it as a Hugging Face
// tokenizer.json (GPT-2 layout: ByteLevel pre-tokenizer and decoder, BPE model over the 256 byte
// characters plus learned merges), so that alignpro, transformers and tokenizers all read it.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace alignpro::demo {

struct BpeTrainOptions {
  // Size of the vocabulary: special tokens, the 256 bytes and the merges.
  int64_t vocab_size = 768;
  // A pair must occur at least this often to be merged.
  int64_t min_frequency = 2;
  // Special tokens, given the first ids in this order. The first is the padding token and the
  // second the end-of-sequence token in tokenizer_config_json.
  std::vector<std::string> special_tokens = {"<|pad|>", "<|endoftext|>"};
};

struct BpeVocabulary {
  std::vector<std::string> tokens;                          // by id, in byte-level characters
  std::vector<std::pair<std::string, std::string>> merges;  // in rank order
  std::vector<std::string> special_tokens;
};

// Learns merges from the corpus: texts are cut into words as GPT-2's pre-tokenizer cuts them,
// and the most frequent adjacent pair is merged until the vocabulary is full or no pair occurs
// min_frequency times. Ties go to the pair whose tokens compare lowest, so the result depends
// only on the corpus. Throws InputError for a vocabulary too small for the bytes and specials.
BpeVocabulary train_byte_level_bpe(const std::vector<std::string>& corpus,
                                   const BpeTrainOptions& options);

// The tokenizer.json text of a vocabulary.
nlohmann::ordered_json tokenizer_json(const BpeVocabulary& vocabulary);
// A tokenizer_config.json naming the pad and end-of-sequence tokens (the first two specials),
// without a BOS token.
nlohmann::ordered_json tokenizer_config_json(const BpeVocabulary& vocabulary,
                                             int64_t model_max_length);

// Writes FOLDER/tokenizer.json and FOLDER/tokenizer_config.json.
void write_tokenizer(const BpeVocabulary& vocabulary, const std::string& folder,
                     int64_t model_max_length);

}  // namespace alignpro::demo
