#include "demo/bpe_trainer.h"

#include <filesystem>
#include <fstream>
#include <map>
#include <tuple>

#include "common/error.h"
#include "text/pieces.h"
#include "text/pre_tokenizer.h"

namespace alignpro::demo {

namespace {

using Json = nlohmann::ordered_json;

// The GPT-2 pre-tokenizer: the regex split, then each byte as a printable character.
const Json& byte_level_spec() {
  static const Json spec = {{"type", "ByteLevel"},
                            {"add_prefix_space", false},
                            {"trim_offsets", true},
                            {"use_regex", true}};
  return spec;
}

// The byte-level characters of a pre-tokenized word, one string per byte.
std::vector<std::string> split_characters(const std::string& word) {
  std::vector<std::string> chars;
  for (size_t i = 0; i < word.size();) {
    const unsigned char lead = static_cast<unsigned char>(word[i]);
    const size_t length = lead < 0x80 ? 1 : (lead >> 5) == 0x6 ? 2 : (lead >> 4) == 0xe ? 3 : 4;
    chars.push_back(word.substr(i, length));
    i += length;
  }
  return chars;
}

// Words and how often each occurs, in a fixed order.
std::map<std::string, int64_t> count_words(const std::vector<std::string>& corpus) {
  const auto pre_tokenizer =
      text::make_pre_tokenizer(byte_level_spec(), text::JsonPath("<bpe trainer>"));
  std::map<std::string, int64_t> counts;
  for (const std::string& line : corpus) {
    text::Pieces pieces;
    pieces.push_back(text::Piece{line, -1, true});
    pre_tokenizer->pre_tokenize(pieces);
    for (const auto& piece : pieces) ++counts[piece.text];
  }
  return counts;
}

}  // namespace

BpeVocabulary train_byte_level_bpe(const std::vector<std::string>& corpus,
                                   const BpeTrainOptions& options) {
  BpeVocabulary vocabulary;
  vocabulary.special_tokens = options.special_tokens;
  const int64_t base = static_cast<int64_t>(options.special_tokens.size()) + 256;
  if (options.vocab_size < base) {
    throw InputError("BPE vocabulary size " + std::to_string(options.vocab_size) +
                     " is too small: the special tokens and the 256 bytes need " +
                     std::to_string(base));
  }
  std::map<std::string, int32_t> ids;
  for (const auto& token : options.special_tokens) {
    ids[token] = static_cast<int32_t>(vocabulary.tokens.size());
    vocabulary.tokens.push_back(token);
  }
  for (const std::string& chars : text::byte_level_chars()) {
    ids[chars] = static_cast<int32_t>(vocabulary.tokens.size());
    vocabulary.tokens.push_back(chars);
  }

  std::vector<std::vector<int32_t>> words;
  std::vector<int64_t> counts;
  for (const auto& [word, count] : count_words(corpus)) {
    std::vector<int32_t> symbols;
    for (const auto& c : split_characters(word)) symbols.push_back(ids.at(c));
    words.push_back(std::move(symbols));
    counts.push_back(count);
  }

  while (static_cast<int64_t>(vocabulary.tokens.size()) < options.vocab_size) {
    std::map<std::pair<int32_t, int32_t>, int64_t> pairs;
    for (size_t w = 0; w < words.size(); ++w) {
      for (size_t i = 0; i + 1 < words[w].size(); ++i)
        pairs[{words[w][i], words[w][i + 1]}] += counts[w];
    }
    const std::pair<int32_t, int32_t>* best = nullptr;
    int64_t best_count = 0;
    for (const auto& [pair, count] : pairs) {
      const bool better =
          count > best_count ||
          (count == best_count && best != nullptr &&
           std::tie(vocabulary.tokens[pair.first], vocabulary.tokens[pair.second]) <
               std::tie(vocabulary.tokens[best->first], vocabulary.tokens[best->second]));
      if (better) {
        best = &pair;
        best_count = count;
      }
    }
    if (best == nullptr || best_count < options.min_frequency) break;
    const auto [left, right] = *best;
    const int32_t merged = static_cast<int32_t>(vocabulary.tokens.size());
    vocabulary.tokens.push_back(vocabulary.tokens[left] + vocabulary.tokens[right]);
    vocabulary.merges.emplace_back(vocabulary.tokens[left], vocabulary.tokens[right]);
    for (auto& symbols : words) {
      std::vector<int32_t> next;
      next.reserve(symbols.size());
      for (size_t i = 0; i < symbols.size(); ++i) {
        if (i + 1 < symbols.size() && symbols[i] == left && symbols[i + 1] == right) {
          next.push_back(merged);
          ++i;
        } else {
          next.push_back(symbols[i]);
        }
      }
      symbols = std::move(next);
    }
  }
  return vocabulary;
}

Json tokenizer_json(const BpeVocabulary& vocabulary) {
  Json added = Json::array();
  for (size_t id = 0; id < vocabulary.special_tokens.size(); ++id) {
    added.push_back({{"id", id},
                     {"content", vocabulary.special_tokens[id]},
                     {"single_word", false},
                     {"lstrip", false},
                     {"rstrip", false},
                     {"normalized", false},
                     {"special", true}});
  }
  Json vocab = Json::object();
  for (size_t id = 0; id < vocabulary.tokens.size(); ++id) vocab[vocabulary.tokens[id]] = id;
  Json merges = Json::array();
  for (const auto& [left, right] : vocabulary.merges) merges.push_back({left, right});
  return Json{{"version", "1.0"},
              {"truncation", nullptr},
              {"padding", nullptr},
              {"added_tokens", added},
              {"normalizer", nullptr},
              {"pre_tokenizer", byte_level_spec()},
              {"post_processor",
               {{"type", "ByteLevel"},
                {"add_prefix_space", true},
                {"trim_offsets", false},
                {"use_regex", true}}},
              {"decoder",
               {{"type", "ByteLevel"},
                {"add_prefix_space", true},
                {"trim_offsets", true},
                {"use_regex", true}}},
              {"model",
               {{"type", "BPE"},
                {"dropout", nullptr},
                {"unk_token", nullptr},
                {"continuing_subword_prefix", nullptr},
                {"end_of_word_suffix", nullptr},
                {"fuse_unk", false},
                {"byte_fallback", false},
                {"ignore_merges", false},
                {"vocab", vocab},
                {"merges", merges}}}};
}

Json tokenizer_config_json(const BpeVocabulary& vocabulary, int64_t model_max_length) {
  if (vocabulary.special_tokens.size() < 2) {
    throw InputError(
        "a tokenizer_config.json needs a pad and an end-of-sequence token; the "
        "vocabulary has " +
        std::to_string(vocabulary.special_tokens.size()) + " special tokens");
  }
  return Json{{"tokenizer_class", "PreTrainedTokenizerFast"},
              {"bos_token", nullptr},
              {"eos_token", vocabulary.special_tokens[1]},
              {"pad_token", vocabulary.special_tokens[0]},
              {"unk_token", nullptr},
              {"add_bos_token", false},
              {"add_eos_token", false},
              {"clean_up_tokenization_spaces", false},
              {"model_max_length", model_max_length}};
}

void write_tokenizer(const BpeVocabulary& vocabulary, const std::string& folder,
                     int64_t model_max_length) {
  namespace fs = std::filesystem;
  std::error_code error;
  fs::create_directories(folder, error);
  if (error) throw RuntimeError(folder + ": cannot create folder: " + error.message());
  const auto write = [](const fs::path& path, const Json& json) {
    std::ofstream out(path, std::ios::trunc);
    out << json.dump(1) << '\n';
    if (!out) throw RuntimeError(path.string() + ": write failed");
  };
  write(fs::path(folder) / "tokenizer.json", tokenizer_json(vocabulary));
  write(fs::path(folder) / "tokenizer_config.json",
        tokenizer_config_json(vocabulary, model_max_length));
}

}  // namespace alignpro::demo
