// UTF-8 checks for text that comes from outside (data files) or from byte-level generation
// (a sampled response may stop in the middle of a multi-byte character).
#pragma once

#include <cstddef>
#include <string>

namespace alignpro {

// The byte offset of the first invalid UTF-8 sequence in text, or std::string::npos.
size_t utf8_error_offset(const std::string& text);

// text with every invalid byte replaced by U+FFFD, so that UTF-8 matchers can read it.
std::string to_valid_utf8(const std::string& text);

}  // namespace alignpro
