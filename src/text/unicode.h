// UTF-8 and Unicode helpers for the tokenizers: decoding and encoding code points, lossy
// repair of byte strings, whitespace classes, and NFC/NFD normalization.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace alignpro::text {

// The byte position of the first malformed UTF-8 sequence in text, or npos if it is valid.
size_t find_invalid_utf8(std::string_view text);

// The code point that starts at pos in valid UTF-8 text; advances pos past it.
char32_t next_code_point(std::string_view text, size_t& pos);

// The byte length of the UTF-8 sequence that starts with lead (1 for a stray byte).
size_t utf8_sequence_length(unsigned char lead);

void append_utf8(std::string& out, char32_t code_point);

// Bytes as UTF-8 text, each maximal ill-formed subsequence replaced by U+FFFD, the way Rust's
// String::from_utf8_lossy and Python's errors="replace" do it.
std::string utf8_lossy(std::string_view bytes);

// The Unicode White_Space property (Rust's char::is_whitespace).
bool is_white_space(char32_t c);
// Python's str.isspace (White_Space plus U+001C..U+001F), used by chat templates' strip().
bool is_python_space(char32_t c);
// text without leading and trailing is_python_space characters, as Python's str.strip().
std::string python_strip(std::string_view text);

// Canonical composition (NFC) and decomposition (NFD) of valid UTF-8 text.
std::string to_nfc(std::string_view text);
std::string to_nfd(std::string_view text);

}  // namespace alignpro::text
