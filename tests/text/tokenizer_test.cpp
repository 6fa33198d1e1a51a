// Tokenizers against the reference: each fixture under fixtures/tokenizers/<name>/ holds a
// tokenizer trained by the Hugging Face tokenizers package and its ids and decodes of a few
// hundred strings (made by fixtures/make_tokenizer_fixtures.py).
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "text/tokenizer.h"

namespace alignpro {
namespace {

using nlohmann::json;

const std::string kFixtures = std::string(ALIGNPRO_TEST_DATA) + "/fixtures/tokenizers";

json read_json(const std::string& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << "cannot open " << path;
  return json::parse(in);
}

// A string as a C++ literal would show it, so that whitespace and control bytes are visible.
std::string shown(const std::string& s) {
  constexpr size_t kMax = 160;
  std::ostringstream out;
  out << '"';
  for (size_t i = 0; i < s.size() && i < kMax; ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c == '\n') {
      out << "\\n";
    } else if (c == '\t') {
      out << "\\t";
    } else if (c == '\r') {
      out << "\\r";
    } else if (c == '"' || c == '\\') {
      out << '\\' << s[i];
    } else if (c < 0x20 || c == 0x7F) {
      static const char* hex = "0123456789abcdef";
      out << "\\x" << hex[c >> 4] << hex[c & 15];
    } else {
      out << s[i];
    }
  }
  out << (s.size() > kMax ? "\"..." : "\"");
  return out.str();
}

std::string shown(const std::vector<int64_t>& ids, size_t from, size_t count) {
  std::ostringstream out;
  out << "[";
  for (size_t i = from; i < ids.size() && i < from + count; ++i)
    out << (i > from ? " " : "") << ids[i];
  out << (from + count < ids.size() ? " ...]" : "]");
  return out.str();
}

// Empty when equal, else where the id lists first differ and what each has from there.
std::string id_difference(const std::vector<int64_t>& got, const std::vector<int64_t>& want) {
  if (got == want) return "";
  size_t i = 0;
  while (i < got.size() && i < want.size() && got[i] == want[i]) ++i;
  size_t from = i < 3 ? 0 : i - 3;
  return "first difference at id index " + std::to_string(i) + " (got " +
         std::to_string(got.size()) + " ids, reference " + std::to_string(want.size()) +
         "); from index " + std::to_string(from) + ": got " + shown(got, from, 8) + ", reference " +
         shown(want, from, 8);
}

std::string text_difference(const std::string& got, const std::string& want) {
  if (got == want) return "";
  size_t i = 0;
  while (i < got.size() && i < want.size() && got[i] == want[i]) ++i;
  return "first difference at byte " + std::to_string(i) + ": got " + shown(got) + ", reference " +
         shown(want);
}

// Collects mismatches over all cases and reports the first few in full.
class Mismatches {
 public:
  // Counts a mismatch when difference is not empty; label says what was compared.
  void add(const std::string& text, const std::string& difference, const std::string& label = "") {
    if (difference.empty()) return;
    std::string what = label.empty() ? difference : label + ": " + difference;
    if (++count_ <= kShown) ADD_FAILURE() << "text " << shown(text) << ": " << what;
  }
  ~Mismatches() {
    if (count_ > kShown)
      ADD_FAILURE() << count_ << " mismatches in all (first " << kShown << " shown)";
  }

 private:
  static constexpr int kShown = 8;
  int count_ = 0;
};

class TokenizerFixtureTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    folder_ = kFixtures + "/" + GetParam();
    reference_ = read_json(folder_ + "/reference.json");
    ASSERT_GE(reference_["cases"].size(), 200u);
  }
  Tokenizer load() const { return Tokenizer::from_folder(folder_); }
  static std::vector<int64_t> ids(const json& c, const char* key) {
    return c[key].get<std::vector<int64_t>>();
  }
  static std::string decoded(const json& c, const char* key) {
    return c.contains(key) ? c[key].get<std::string>() : c["text"].get<std::string>();
  }

  std::string folder_;
  json reference_;
};

TEST_P(TokenizerFixtureTest, EncodesEveryStringWithSpecialTokensLikeTheReference) {
  Tokenizer tok = load();
  Mismatches mismatches;
  for (const json& c : reference_["cases"]) {
    std::string text = c["text"];
    mismatches.add(text, id_difference(tok.encode(text, true), ids(c, "ids")));
  }
}

TEST_P(TokenizerFixtureTest, EncodesEveryStringWithoutSpecialTokensLikeTheReference) {
  Tokenizer tok = load();
  Mismatches mismatches;
  for (const json& c : reference_["cases"]) {
    std::string text = c["text"];
    mismatches.add(text, id_difference(tok.encode(text, false), ids(c, "ids_plain")));
  }
}

TEST_P(TokenizerFixtureTest, DecodesLikeTheReferenceWithAndWithoutSpecialTokens) {
  Tokenizer tok = load();
  Mismatches mismatches;
  for (const json& c : reference_["cases"]) {
    std::string text = c["text"];
    mismatches.add(text, text_difference(tok.decode(ids(c, "ids"), false), decoded(c, "decoded")),
                   "keeping special tokens");
    mismatches.add(
        text, text_difference(tok.decode(ids(c, "ids"), true), decoded(c, "decoded_skip_special")),
        "skipping special tokens");
  }
}

TEST_P(TokenizerFixtureTest, DecodeOfEncodeGivesTheTextWhereTheReferenceRoundTrips) {
  Tokenizer tok = load();
  Mismatches mismatches;
  int round_trips = 0;
  for (const json& c : reference_["cases"]) {
    if (!c["round_trips"].get<bool>()) continue;
    ++round_trips;
    std::string text = c["text"];
    mismatches.add(text, text_difference(tok.decode(tok.encode(text, false), false), text));
  }
  EXPECT_GT(round_trips, 0);
}

TEST_P(TokenizerFixtureTest, SpecialIdsAndVocabularySizeMatchTheConfigs) {
  Tokenizer tok = load();
  auto expected = [&](const char* key) -> std::optional<int64_t> {
    if (reference_[key].is_null()) return std::nullopt;
    return reference_[key].get<int64_t>();
  };
  EXPECT_EQ(tok.bos_id(), expected("bos_id"));
  EXPECT_EQ(tok.eos_id(), expected("eos_id"));
  EXPECT_EQ(tok.pad_id(), expected("pad_id"));
  EXPECT_EQ(tok.vocab_size(), reference_["vocab_size"].get<int64_t>());
}

TEST_P(TokenizerFixtureTest, TokenToIdInvertsIdToTokenForEveryId) {
  Tokenizer tok = load();
  int64_t known = 0;
  for (int64_t id = 0; id < tok.vocab_size() + 8; ++id) {
    std::string token = tok.id_to_token(id);
    if (token.empty()) continue;
    ++known;
    // A normalized added token shows its normalized form, which need not be a token itself.
    std::optional<int64_t> back = tok.token_to_id(token);
    EXPECT_TRUE(!back || *back == id)
        << "id " << id << " token " << shown(token) << " maps back to " << *back;
  }
  EXPECT_EQ(known, tok.vocab_size());
}

TEST_P(TokenizerFixtureTest, DecodeSkipsIdsOutsideTheVocabulary) {
  Tokenizer tok = load();
  const json& c = reference_["cases"][20];
  std::vector<int64_t> with_unknown = ids(c, "ids");
  with_unknown.insert(with_unknown.begin(), 1'000'000'000);
  with_unknown.push_back(-5);
  EXPECT_EQ(tok.decode(with_unknown, false), decoded(c, "decoded"));
}

TEST_P(TokenizerFixtureTest, EncodesTheSameFromSeveralThreadsAtOnce) {
  Tokenizer tok = load();
  const json& cases = reference_["cases"];
  std::vector<int> wrong(4, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      // Each thread walks the cases from a different place, so that the word cache is shared.
      for (size_t k = 0; k < cases.size(); ++k) {
        const json& c = cases[(k + t * cases.size() / 4) % cases.size()];
        if (tok.encode(c["text"].get<std::string>(), true) != ids(c, "ids")) ++wrong[t];
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(wrong, std::vector<int>(4, 0));
}

INSTANTIATE_TEST_SUITE_P(Families, TokenizerFixtureTest,
                         ::testing::Values("gpt2", "llama3", "qwen2", "smollm", "bytelevel_prefix",
                                           "llama2", "mistral"));

TEST(Tokenizer, SpecialTokensAreSplitOutOfTheText) {
  Tokenizer tok = Tokenizer::from_folder(kFixtures + "/qwen2");
  const int64_t im_start = *tok.token_to_id("<|im_start|>");
  std::vector<int64_t> ids = tok.encode("<|im_start|>user", false);
  ASSERT_FALSE(ids.empty());
  EXPECT_EQ(ids.front(), im_start);
  EXPECT_TRUE(tok.is_special(im_start));
  EXPECT_EQ(tok.decode(ids, true), "user");
}

TEST(Tokenizer, LlamaConfigDecidesWhetherBosAndEosAreAdded) {
  // transformers rebuilds a Llama tokenizer's post-processor from add_bos_token and
  // add_eos_token; here a copy of the llama2 fixture asks for EOS as well.
  const std::string folder = kFixtures + "/llama2";
  json config = read_json(folder + "/tokenizer_config.json");
  config["add_eos_token"] = true;
  config["add_bos_token"] = false;
  std::string path = ::testing::TempDir() + "llama2_eos_tokenizer_config.json";
  std::ofstream(path) << config.dump();
  Tokenizer tok = Tokenizer::from_files(folder + "/tokenizer.json", path);
  json reference = read_json(folder + "/reference.json");
  for (const json& c : reference["cases"]) {
    std::vector<int64_t> want = c["ids_plain"].get<std::vector<int64_t>>();
    want.push_back(*tok.eos_id());
    std::string text = c["text"];
    ASSERT_EQ(id_difference(tok.encode(text, true), want), "") << "text " << shown(text);
  }
}

}  // namespace
}  // namespace alignpro
