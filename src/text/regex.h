// A compiled PCRE2 pattern in UTF mode with Unicode classes (\p{L}, \s and \w follow Unicode),
// used for the tokenizers' split and replace patterns.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace alignpro::text {

class Regex {
 public:
  // Throws InputError naming `where` (the file and field the pattern came from) when PCRE2
  // rejects the pattern.
  Regex(const std::string& pattern, const std::string& where);
  // A pattern that matches `literal` exactly.
  static Regex literal(const std::string& literal, const std::string& where);

  Regex(Regex&& other) noexcept;
  Regex& operator=(Regex&& other) noexcept;
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;
  ~Regex();

  // Byte ranges [begin, end) of the successive non-overlapping matches in valid UTF-8 text,
  // leftmost first; an empty match right where the previous match ended is skipped, as in
  // Rust's regex and Oniguruma iterators.
  std::vector<std::pair<size_t, size_t>> find_all(std::string_view text) const;
  // Whether the pattern matches somewhere in text.
  bool search(std::string_view text) const;

  const std::string& pattern() const { return pattern_; }

 private:
  std::string pattern_;
  void* code_ = nullptr;  // pcre2_code_8*, kept opaque so that users need no PCRE2 headers
};

}  // namespace alignpro::text
