#include "text/regex.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <cctype>

#include "common/error.h"
#include "text/unicode.h"

namespace alignpro::text {
namespace {

pcre2_code* as_code(void* code) {
  return static_cast<pcre2_code*>(code);
}

std::string pcre2_message(int error_code) {
  PCRE2_UCHAR buffer[256];
  int n = pcre2_get_error_message(error_code, buffer, sizeof(buffer));
  return n < 0 ? "PCRE2 error " + std::to_string(error_code) : reinterpret_cast<char*>(buffer);
}

// Per-thread match state: PCRE2 match data cannot be shared between threads, and the JIT
// needs a larger stack than its 32 KiB default for long runs of one character class.
struct MatchState {
  pcre2_match_data* data = pcre2_match_data_create(1, nullptr);
  pcre2_jit_stack* stack = pcre2_jit_stack_create(32 * 1024, 8 * 1024 * 1024, nullptr);
  pcre2_match_context* context = pcre2_match_context_create(nullptr);
  MatchState() { pcre2_jit_stack_assign(context, nullptr, stack); }
  ~MatchState() {
    pcre2_match_context_free(context);
    pcre2_jit_stack_free(stack);
    pcre2_match_data_free(data);
  }
};

MatchState& match_state() {
  thread_local MatchState state;
  return state;
}

// One match attempt from byte `start`; false when there is none.
bool match_from(const Regex& regex, void* code, std::string_view text, size_t start, size_t& begin,
                size_t& end) {
  MatchState& state = match_state();
  int rc = pcre2_match(as_code(code), reinterpret_cast<PCRE2_SPTR>(text.data()), text.size(), start,
                       PCRE2_NO_UTF_CHECK, state.data, state.context);
  if (rc == PCRE2_ERROR_NOMATCH) return false;
  // rc == 0 only says that the one-pair ovector had no room for the capture groups.
  if (rc < 0) {
    throw InputError("the pattern " + regex.pattern() + " failed on a text of " +
                     std::to_string(text.size()) + " bytes: " + pcre2_message(rc));
  }
  PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(state.data);
  begin = ovector[0];
  end = ovector[1];
  return true;
}

}  // namespace

Regex::Regex(const std::string& pattern, const std::string& where) : pattern_(pattern) {
  int error_code = 0;
  PCRE2_SIZE error_offset = 0;
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                                   PCRE2_UTF | PCRE2_UCP, &error_code, &error_offset, nullptr);
  if (code == nullptr) {
    throw InputError(where + ": the pattern " + pattern + " is not a valid regular expression (" +
                     pcre2_message(error_code) + " at offset " + std::to_string(error_offset) +
                     ")");
  }
  // Without JIT support PCRE2 interprets the pattern; slower, same results.
  pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
  code_ = code;
}

Regex Regex::literal(const std::string& literal, const std::string& where) {
  std::string escaped;
  for (char c : literal) {
    unsigned char u = static_cast<unsigned char>(c);
    // A backslash before ASCII punctuation always means the character itself.
    if (u < 0x80 && !std::isalnum(u) && u > 0x20) escaped.push_back('\\');
    escaped.push_back(c);
  }
  return Regex(escaped, where);
}

Regex::Regex(Regex&& other) noexcept : pattern_(std::move(other.pattern_)), code_(other.code_) {
  other.code_ = nullptr;
}

Regex& Regex::operator=(Regex&& other) noexcept {
  if (this != &other) {
    pcre2_code_free(as_code(code_));
    pattern_ = std::move(other.pattern_);
    code_ = other.code_;
    other.code_ = nullptr;
  }
  return *this;
}

Regex::~Regex() {
  pcre2_code_free(as_code(code_));
}

std::vector<std::pair<size_t, size_t>> Regex::find_all(std::string_view text) const {
  std::vector<std::pair<size_t, size_t>> matches;
  size_t start = 0;
  size_t previous_end = std::string_view::npos;
  while (start <= text.size()) {
    size_t begin = 0, end = 0;
    if (!match_from(*this, code_, text, start, begin, end)) break;
    if (begin == end) {
      if (begin != previous_end) matches.emplace_back(begin, end);
      if (begin >= text.size()) break;
      start = begin + utf8_sequence_length(static_cast<unsigned char>(text[begin]));
      continue;
    }
    matches.emplace_back(begin, end);
    previous_end = end;
    start = end;
  }
  return matches;
}

bool Regex::search(std::string_view text) const {
  size_t begin = 0, end = 0;
  return match_from(*this, code_, text, 0, begin, end);
}

}  // namespace alignpro::text
