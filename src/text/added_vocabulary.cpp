#include "text/added_vocabulary.h"

#include <algorithm>

#include "common/error.h"
#include "text/bpe.h"
#include "text/normalizer.h"
#include "text/regex.h"
#include "text/unicode.h"

namespace alignpro::text {
namespace {

bool operator==(const AddedToken& a, const AddedToken& b) {
  return a.content == b.content && a.single_word == b.single_word && a.lstrip == b.lstrip &&
         a.rstrip == b.rstrip && a.normalized == b.normalized && a.special == b.special;
}

// Rust regex's \w, which single_word tests the neighbouring characters with.
bool is_word_char(std::string_view ch) {
  static const Regex word(R"([\p{Alphabetic}\p{M}\p{Nd}\p{Pc}\p{Join_Control}])",
                          "the single_word test");
  return word.search(ch);
}

// The last character of text[0, end) and the first of text[begin, ...).
std::string_view char_before(const std::string& text, size_t end) {
  size_t begin = end;
  while (begin > 0 && (static_cast<unsigned char>(text[begin - 1]) & 0xC0) == 0x80) --begin;
  if (begin > 0) --begin;
  return std::string_view(text).substr(begin, end - begin);
}

std::string_view char_after(const std::string& text, size_t begin) {
  return std::string_view(text).substr(
      begin, utf8_sequence_length(static_cast<unsigned char>(text[begin])));
}

}  // namespace

void AddedVocabulary::Trie::insert(const std::string& pattern, int64_t id) {
  int32_t node = 0;
  for (unsigned char b : pattern) {
    auto it = nodes_[node].children.find(b);
    if (it == nodes_[node].children.end()) {
      int32_t child = static_cast<int32_t>(nodes_.size());
      nodes_[node].children[b] = child;
      nodes_.emplace_back();
      node = child;
    } else {
      node = it->second;
    }
  }
  nodes_[node].id = id;
  first_byte_[static_cast<unsigned char>(pattern[0])] = true;
}

bool AddedVocabulary::Trie::find(const std::string& text, size_t from, size_t& begin, size_t& end,
                                 int64_t& id) const {
  for (size_t start = from; start < text.size(); ++start) {
    if (!first_byte_[static_cast<unsigned char>(text[start])]) continue;
    int32_t node = 0;
    bool found = false;
    for (size_t pos = start; pos < text.size(); ++pos) {
      auto it = nodes_[node].children.find(static_cast<unsigned char>(text[pos]));
      if (it == nodes_[node].children.end()) break;
      node = it->second;
      if (nodes_[node].id >= 0) {
        found = true;
        end = pos + 1;
        id = nodes_[node].id;
      }
    }
    if (found) {
      begin = start;
      return true;
    }
  }
  return false;
}

void AddedVocabulary::add(const std::vector<AddedToken>& tokens, const BpeModel& model,
                          const Normalizer* normalizer, const std::string& where) {
  int64_t next_id = static_cast<int64_t>(model.size());
  if (!tokens_.empty()) next_id = std::max(next_id, tokens_.rbegin()->first + 1);
  for (const AddedToken& token : tokens) {
    if (token.content.empty()) continue;
    auto known = ids_.find(token.content);
    if (known != ids_.end() && tokens_.at(known->second) == token) continue;
    int64_t id;
    if (known != ids_.end()) {
      id = known->second;
    } else if (auto model_id = model.token_to_id(token.content)) {
      id = *model_id;
    } else {
      id = next_id++;
    }
    if (token.normalized && normalizer != nullptr) {
      std::string normalized = token.content;
      normalizer->normalize(normalized);
      if (normalized != token.content) normalized_forms_[id] = normalized;
    }
    ids_[token.content] = id;
    if (token.special) special_.insert(token.content);
    tokens_[id] = token;
  }
  rebuild_tries(where);
}

void AddedVocabulary::rebuild_tries(const std::string& where) {
  raw_trie_ = Trie();
  normalized_trie_ = Trie();
  std::unordered_set<std::string> raw_seen, normalized_seen;
  for (const auto& [id, token] : tokens_) {
    const std::string* pattern = &token.content;
    if (token.normalized) {
      auto it = normalized_forms_.find(id);
      if (it != normalized_forms_.end()) pattern = &it->second;
    }
    auto& seen = token.normalized ? normalized_seen : raw_seen;
    if (pattern->empty() || !seen.insert(*pattern).second) {
      throw InputError(where + ": the added token \"" + token.content + "\" (id " +
                       std::to_string(id) + ") " +
                       (pattern->empty() ? "is empty once normalized"
                                         : "matches the same text as another added token"));
    }
    (token.normalized ? normalized_trie_ : raw_trie_).insert(*pattern, id);
  }
}

void AddedVocabulary::split_on(const Trie& trie, const Piece& piece, Pieces& out) const {
  const std::string& text = piece.text;
  if (text.empty() || trie.empty()) {
    out.push_back(piece);
    return;
  }
  auto push = [&](size_t begin, size_t end, int64_t id) {
    out.push_back({text.substr(begin, end - begin), id, piece.at_start && begin == 0});
  };
  size_t done = 0;  // text before this is in `out`
  size_t search_from = 0;
  size_t match_begin = 0, match_end = 0;
  int64_t id = -1;
  while (trie.find(text, search_from, match_begin, match_end, id)) {
    // The search resumes after the match even when the rules below reject it.
    search_from = match_end;
    const AddedToken& token = tokens_.at(id);
    size_t begin = match_begin;
    size_t end = match_end;
    if (token.single_word) {
      bool space_before = begin == 0 || !is_word_char(char_before(text, begin));
      bool space_after = end == text.size() || !is_word_char(char_after(text, end));
      if (!space_before || !space_after) continue;
    }
    if (token.lstrip) {
      size_t strip = begin;
      while (strip > 0) {
        std::string_view ch = char_before(text, strip);
        size_t pos = 0;
        if (!is_white_space(next_code_point(ch, pos))) break;
        strip -= ch.size();
      }
      begin = std::max(strip, done);
    }
    if (token.rstrip) {
      while (end < text.size()) {
        size_t pos = end;
        if (!is_white_space(next_code_point(text, pos))) break;
        end = pos;
      }
    }
    if (done < begin) push(done, begin, -1);
    push(begin, end, id);
    done = end;
  }
  if (done != text.size()) push(done, text.size(), -1);
}

Pieces AddedVocabulary::extract_and_normalize(const std::string& text,
                                              const Normalizer* normalizer) const {
  Pieces pieces{Piece{text, -1, true}};
  split_each(pieces, [&](const Piece& piece, Pieces& out) { split_on(raw_trie_, piece, out); });
  split_each(pieces, [&](Piece& piece, Pieces& out) {
    if (normalizer != nullptr) normalizer->normalize(piece.text);
    split_on(normalized_trie_, piece, out);
  });
  return pieces;
}

std::optional<int64_t> AddedVocabulary::token_to_id(const std::string& content) const {
  auto it = ids_.find(content);
  if (it == ids_.end()) return std::nullopt;
  return it->second;
}

const std::string* AddedVocabulary::id_to_token(int64_t id) const {
  auto it = tokens_.find(id);
  if (it == tokens_.end()) return nullptr;
  auto normalized = normalized_forms_.find(id);
  return normalized != normalized_forms_.end() ? &normalized->second : &it->second.content;
}

}  // namespace alignpro::text
