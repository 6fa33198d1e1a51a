// The BPE model of a tokenizer.json ("model": {"type": "BPE"}): a vocabulary, ranked merges,
// and the options byte-level and SentencePiece-style tokenizers use (unk token, byte fallback,
// fuse_unk, ignore_merges, subword prefix and suffix).
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "text/json_fields.h"

namespace alignpro::text {

struct BpeOptions {
  std::optional<std::string> unk_token;
  std::optional<std::string> continuing_subword_prefix;
  std::optional<std::string> end_of_word_suffix;
  bool fuse_unk = false;
  bool byte_fallback = false;  // characters outside the vocabulary become <0xAB> byte tokens
  bool ignore_merges = false;  // a word that is itself in the vocabulary is one token
};

class BpeModel {
 public:
  // Reads the "model" object of a tokenizer.json; `at` names it for errors.
  static std::unique_ptr<BpeModel> from_json(const Json& model, const JsonPath& at);
  BpeModel(std::unordered_map<std::string, int32_t> vocab,
           const std::vector<std::pair<std::string, std::string>>& merges, BpeOptions options,
           const JsonPath& at);

  // Appends the ids of one pre-tokenized word.
  void tokenize(const std::string& word, std::vector<int64_t>& ids) const;

  std::optional<int64_t> token_to_id(const std::string& token) const;
  // The token of an id, or nullptr when the vocabulary has no such id.
  const std::string* id_to_token(int64_t id) const;
  std::optional<int64_t> unk_id() const { return unk_id_; }
  // The number of tokens in the vocabulary.
  size_t size() const { return vocab_.size(); }

 private:
  struct Merge {
    int32_t rank;
    int32_t new_id;
  };
  static uint64_t pair_key(int32_t a, int32_t b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
  }
  std::vector<int32_t> merge_word(const std::string& word) const;

  std::unordered_map<std::string, int32_t> vocab_;
  std::unordered_map<int32_t, std::string> tokens_;
  std::unordered_map<uint64_t, Merge> merges_;
  BpeOptions options_;
  std::optional<int32_t> unk_id_;
  std::vector<int32_t> byte_ids_;  // id of <0xAB> for each byte, -1 where absent

  // Words already split, as the reference caches them: short words only, bounded in number.
  mutable std::mutex cache_mutex_;
  mutable std::unordered_map<std::string, std::vector<int32_t>> cache_;
};

}  // namespace alignpro::text
