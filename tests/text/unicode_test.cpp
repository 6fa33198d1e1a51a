// NFC/NFD and lossy UTF-8 decoding against Python's unicodedata and bytes.decode, stored in
// fixtures/tokenizers/unicode.json by fixtures/make_tokenizer_fixtures.py.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <string>

#include "text/unicode.h"

namespace alignpro::text {
namespace {

using nlohmann::json;

json unicode_fixture() {
  std::ifstream in(std::string(ALIGNPRO_TEST_DATA) + "/fixtures/tokenizers/unicode.json");
  return json::parse(in);
}

std::string escaped(const std::string& s) {
  std::string out;
  for (size_t pos = 0; pos < s.size();) {
    char32_t c = next_code_point(s, pos);
    char buffer[16];
    std::snprintf(buffer, sizeof(buffer), c < 0x80 ? "%c" : "\\u%04X", static_cast<unsigned>(c));
    out += buffer;
  }
  return out;
}

std::string from_hex(const std::string& hex) {
  std::string bytes;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    bytes.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  }
  return bytes;
}

TEST(Unicode, NfcAndNfdMatchPython) {
  json fixture = unicode_fixture();
  ASSERT_GE(fixture["normalization"].size(), 300u);
  for (const json& c : fixture["normalization"]) {
    std::string text = c["text"];
    EXPECT_EQ(escaped(to_nfc(text)), escaped(c["nfc"].get<std::string>())) << escaped(text);
    EXPECT_EQ(escaped(to_nfd(text)), escaped(c["nfd"].get<std::string>())) << escaped(text);
  }
}

TEST(Unicode, LossyDecodingReplacesEachMaximalBadSequenceLikePython) {
  json fixture = unicode_fixture();
  ASSERT_GE(fixture["lossy_utf8"].size(), 100u);
  for (const json& c : fixture["lossy_utf8"]) {
    std::string bytes = from_hex(c["bytes"]);
    std::string want = c["text"];
    EXPECT_EQ(escaped(utf8_lossy(bytes)), escaped(want)) << "bytes " << c["bytes"];
    // Valid exactly when nothing had to be replaced.
    bool valid = find_invalid_utf8(bytes) == std::string::npos;
    EXPECT_EQ(valid, want == bytes) << "bytes " << c["bytes"];
  }
}

TEST(Unicode, CodePointsSurviveEncodingAndDecoding) {
  for (char32_t c :
       {0x0u, 0x7Fu, 0x80u, 0x7FFu, 0x800u, 0xD7FFu, 0xE000u, 0xFFFFu, 0x10000u, 0x10FFFFu}) {
    std::string s;
    append_utf8(s, c);
    size_t pos = 0;
    EXPECT_EQ(next_code_point(s, pos), c);
    EXPECT_EQ(pos, s.size());
    EXPECT_EQ(find_invalid_utf8(s), std::string::npos);
  }
}

TEST(Unicode, PythonStripRemovesOnlyOuterWhitespace) {
  // U+001F counts as space for Python's str.strip; U+200B (zero width space) does not.
  EXPECT_EQ(python_strip("\x1f \t\n a b \xE3\x80\x80"), "a b");
  EXPECT_EQ(python_strip("\xE2\x80\x8B x"), "\xE2\x80\x8B x");
  EXPECT_EQ(python_strip("   "), "");
  EXPECT_TRUE(is_white_space(0x85));
  EXPECT_FALSE(is_white_space(0x1F));
}

}  // namespace
}  // namespace alignpro::text
