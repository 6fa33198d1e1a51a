#include "text/bpe.h"

#include <cstdio>
#include <queue>

#include "text/unicode.h"

namespace alignpro::text {
namespace {

// The reference caches words shorter than 256 bytes, at most 10000 of them.
constexpr size_t kCacheMaxWordBytes = 256;
constexpr size_t kCacheCapacity = 10000;

struct Symbol {
  int32_t id;
  int32_t prev;
  int32_t next;
  int32_t length;  // bytes of the word it covers; 0 once merged into its left neighbour
};

struct Candidate {
  int32_t rank;
  int32_t pos;
  int32_t new_id;
  // The lowest rank first, then the leftmost position.
  bool operator<(const Candidate& other) const {
    return rank != other.rank ? rank > other.rank : pos > other.pos;
  }
};

std::string in_quotes(const std::string& s) {
  return "\"" + s + "\"";
}

std::vector<std::pair<std::string, std::string>> read_merges(const Json& list, const JsonPath& at) {
  if (!list.is_array()) at.fail("expected an array of merges, found " + describe(list));
  std::vector<std::pair<std::string, std::string>> merges;
  merges.reserve(list.size());
  for (size_t i = 0; i < list.size(); ++i) {
    const Json& m = list[i];
    if (m.is_string()) {
      // The older form "a b"; a "#version" line is skipped as the reference does.
      std::string line = m.get<std::string>();
      if (line.rfind("#version", 0) == 0) continue;
      size_t space = line.find(' ');
      if (space == std::string::npos || line.find(' ', space + 1) != std::string::npos) {
        at[i].fail("expected two tokens separated by one space, found " + in_quotes(line));
      }
      merges.emplace_back(line.substr(0, space), line.substr(space + 1));
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      merges.emplace_back(m[0].get<std::string>(), m[1].get<std::string>());
    } else {
      at[i].fail("expected \"a b\" or [\"a\", \"b\"], found " + describe(m));
    }
  }
  return merges;
}

}  // namespace

std::unique_ptr<BpeModel> BpeModel::from_json(const Json& model, const JsonPath& at) {
  const Json* dropout = find_field(model, "dropout", at);
  if (dropout != nullptr && !(dropout->is_number() && dropout->get<double>() == 0.0)) {
    unsupported(at / "dropout", describe(*dropout), "null or 0 (dropout is for training only)");
  }
  BpeOptions options;
  options.unk_token = optional_string_field(model, "unk_token", at);
  options.continuing_subword_prefix = optional_string_field(model, "continuing_subword_prefix", at);
  options.end_of_word_suffix = optional_string_field(model, "end_of_word_suffix", at);
  options.fuse_unk = bool_field(model, "fuse_unk", at, false);
  options.byte_fallback = bool_field(model, "byte_fallback", at, false);
  options.ignore_merges = bool_field(model, "ignore_merges", at, false);

  const Json& vocab_json = require_field(model, "vocab", at);
  if (!vocab_json.is_object()) {
    (at / "vocab").fail("expected an object of token: id, found " + describe(vocab_json));
  }
  std::unordered_map<std::string, int32_t> vocab;
  vocab.reserve(vocab_json.size());
  for (auto it = vocab_json.begin(); it != vocab_json.end(); ++it) {
    vocab[it.key()] = static_cast<int32_t>(token_id_value(it.value(), at / "vocab" / it.key()));
  }
  auto merges = read_merges(require_field(model, "merges", at), at / "merges");
  return std::make_unique<BpeModel>(std::move(vocab), merges, std::move(options), at);
}

BpeModel::BpeModel(std::unordered_map<std::string, int32_t> vocab,
                   const std::vector<std::pair<std::string, std::string>>& merges,
                   BpeOptions options, const JsonPath& at)
    : vocab_(std::move(vocab)), options_(std::move(options)) {
  tokens_.reserve(vocab_.size());
  for (const auto& [token, id] : vocab_) tokens_[id] = token;
  if (options_.unk_token) {
    auto it = vocab_.find(*options_.unk_token);
    if (it == vocab_.end()) {
      (at / "unk_token")
          .fail("the token " + in_quotes(*options_.unk_token) + " is not in model.vocab");
    }
    unk_id_ = it->second;
  }
  byte_ids_.assign(256, -1);
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof(name), "<0x%02X>", b);
    auto it = vocab_.find(name);
    if (it != vocab_.end()) byte_ids_[b] = it->second;
  }

  const size_t prefix_length =
      options_.continuing_subword_prefix ? options_.continuing_subword_prefix->size() : 0;
  merges_.reserve(merges.size());
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const auto& [a, b] = merges[rank];
    auto lookup = [&](const std::string& token) {
      auto it = vocab_.find(token);
      if (it == vocab_.end()) {
        (at / "merges")[rank].fail("the merge " + in_quotes(a + " " + b) + " names the token " +
                                   in_quotes(token) + ", which is not in model.vocab");
      }
      return it->second;
    };
    int32_t a_id = lookup(a);
    int32_t b_id = lookup(b);
    if (b.size() < prefix_length) {
      (at / "merges")[rank].fail("the token " + in_quotes(b) +
                                 " is shorter than continuing_subword_prefix");
    }
    int32_t new_id = lookup(a + b.substr(prefix_length));
    // A pair listed twice keeps its last rank, as in the reference's map.
    merges_[pair_key(a_id, b_id)] = Merge{static_cast<int32_t>(rank), new_id};
  }
}

std::vector<int32_t> BpeModel::merge_word(const std::string& word) const {
  std::vector<Symbol> symbols;
  symbols.reserve(word.size());
  auto add = [&](int32_t id, size_t length) {
    int32_t index = static_cast<int32_t>(symbols.size());
    if (!symbols.empty()) symbols.back().next = index;
    symbols.push_back({id, index - 1, -1, static_cast<int32_t>(length)});
  };

  // One symbol per character (or per byte with byte fallback); unknown characters become the
  // unk token, consecutive ones fused into one when fuse_unk is set.
  size_t unk_length = 0;  // bytes of the pending unk token; 0: none pending
  auto flush_unk = [&] {
    if (unk_length > 0) add(*unk_id_, unk_length);
    unk_length = 0;
  };
  std::string key;
  for (size_t pos = 0; pos < word.size();) {
    size_t begin = pos;
    next_code_point(word, pos);
    size_t length = pos - begin;
    key.assign(word, begin, length);
    if (begin != 0 && options_.continuing_subword_prefix) {
      key.insert(0, *options_.continuing_subword_prefix);
    }
    if (pos == word.size() && options_.end_of_word_suffix) key += *options_.end_of_word_suffix;

    auto it = vocab_.find(key);
    if (it != vocab_.end()) {
      flush_unk();
      add(it->second, length);
      continue;
    }
    if (options_.byte_fallback) {
      bool all_bytes = true;
      for (unsigned char b : key) all_bytes = all_bytes && byte_ids_[b] >= 0;
      if (all_bytes) {
        // As in the reference, a pending unk is not flushed before the byte tokens.
        for (unsigned char b : key) add(byte_ids_[b], 1);
        continue;
      }
    }
    if (unk_id_) {
      if (!options_.fuse_unk) flush_unk();
      unk_length += length;
    }
  }
  flush_unk();

  std::priority_queue<Candidate> queue;
  for (size_t i = 0; i + 1 < symbols.size(); ++i) {
    auto it = merges_.find(pair_key(symbols[i].id, symbols[i + 1].id));
    if (it != merges_.end()) {
      queue.push({it->second.rank, static_cast<int32_t>(i), it->second.new_id});
    }
  }
  while (!queue.empty()) {
    Candidate top = queue.top();
    queue.pop();
    Symbol& left = symbols[top.pos];
    if (left.length == 0 || left.next == -1) continue;
    const Symbol right = symbols[left.next];
    // The candidate is stale when either side changed since it was queued.
    auto it = merges_.find(pair_key(left.id, right.id));
    if (it == merges_.end() || it->second.new_id != top.new_id) continue;

    symbols[left.next].length = 0;
    left.id = top.new_id;
    left.length += right.length;
    left.next = right.next;
    if (right.next != -1) symbols[right.next].prev = top.pos;

    if (left.prev >= 0) {
      auto p = merges_.find(pair_key(symbols[left.prev].id, left.id));
      if (p != merges_.end()) queue.push({p->second.rank, left.prev, p->second.new_id});
    }
    if (left.next != -1) {
      auto n = merges_.find(pair_key(left.id, symbols[left.next].id));
      if (n != merges_.end()) queue.push({n->second.rank, top.pos, n->second.new_id});
    }
  }

  std::vector<int32_t> ids;
  for (const Symbol& s : symbols) {
    if (s.length != 0) ids.push_back(s.id);
  }
  return ids;
}

void BpeModel::tokenize(const std::string& word, std::vector<int64_t>& ids) const {
  if (word.empty()) return;
  if (options_.ignore_merges) {
    auto it = vocab_.find(word);
    if (it != vocab_.end()) {
      ids.push_back(it->second);
      return;
    }
  }
  bool cacheable = word.size() < kCacheMaxWordBytes;
  if (cacheable) {
    std::lock_guard<std::mutex> lock(cache_mutex_);
    auto it = cache_.find(word);
    if (it != cache_.end()) {
      ids.insert(ids.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  std::vector<int32_t> merged = merge_word(word);
  ids.insert(ids.end(), merged.begin(), merged.end());
  if (cacheable) {
    std::lock_guard<std::mutex> lock(cache_mutex_);
    if (cache_.size() < kCacheCapacity) cache_.emplace(word, std::move(merged));
  }
}

std::optional<int64_t> BpeModel::token_to_id(const std::string& token) const {
  auto it = vocab_.find(token);
  if (it == vocab_.end()) return std::nullopt;
  return it->second;
}

const std::string* BpeModel::id_to_token(int64_t id) const {
  if (id < 0 || id > INT32_MAX) return nullptr;
  auto it = tokens_.find(static_cast<int32_t>(id));
  return it == tokens_.end() ? nullptr : &it->second;
}

}  // namespace alignpro::text
