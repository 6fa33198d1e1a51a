// The added tokens of a tokenizer.json ("added_tokens"): special and user tokens that are
// split out of a text before the model runs, with the reference's matching rules (longest
// match leftmost; lstrip, rstrip and single_word; normalized tokens matched after the
// normalizer ran, the others on the raw text).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "text/pieces.h"

namespace alignpro::text {

class BpeModel;
class Normalizer;

struct AddedToken {
  std::string content;
  bool single_word = false;  // only where no word character touches it on either side
  bool lstrip = false;       // takes the whitespace before it
  bool rstrip = false;       // takes the whitespace after it
  bool normalized = true;    // matched in the normalized text rather than the raw text
  bool special = false;      // dropped by decode when skipping special tokens
};

class AddedVocabulary {
 public:
  // Adds tokens in order, giving each the id its content already has (as an added token or in
  // the model's vocabulary) or else the next free id, as the reference does. `where` names
  // the field the tokens came from, for errors.
  void add(const std::vector<AddedToken>& tokens, const BpeModel& model,
           const Normalizer* normalizer, const std::string& where);

  // Splits text into pieces: added tokens (with their ids) and the normalized text between.
  Pieces extract_and_normalize(const std::string& text, const Normalizer* normalizer) const;

  std::optional<int64_t> token_to_id(const std::string& content) const;
  // The token string of an added id (its normalized form for normalized tokens), or nullptr.
  const std::string* id_to_token(int64_t id) const;
  bool is_special(const std::string& token) const { return special_.count(token) != 0; }
  // The distinct token strings, which with the model's make the vocabulary.
  const std::unordered_map<std::string, int64_t>& ids() const { return ids_; }

 private:
  // A byte trie over token strings with leftmost-longest search.
  class Trie {
   public:
    void insert(const std::string& pattern, int64_t id);
    bool empty() const { return nodes_.size() <= 1; }
    // The leftmost, then longest, match starting at or after `from`: {begin, end, id}.
    bool find(const std::string& text, size_t from, size_t& begin, size_t& end, int64_t& id) const;

   private:
    struct Node {
      std::map<unsigned char, int32_t> children;
      int64_t id = -1;
    };
    std::vector<Node> nodes_{Node{}};
    bool first_byte_[256] = {};
  };

  void rebuild_tries(const std::string& where);
  void split_on(const Trie& trie, const Piece& piece, Pieces& out) const;

  std::unordered_map<std::string, int64_t> ids_;
  std::map<int64_t, AddedToken> tokens_;
  std::unordered_map<int64_t, std::string> normalized_forms_;
  std::unordered_set<std::string> special_;
  Trie raw_trie_;
  Trie normalized_trie_;
};

}  // namespace alignpro::text
