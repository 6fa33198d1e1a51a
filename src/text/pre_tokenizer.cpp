#include "text/pre_tokenizer.h"

#include <vector>

#include "text/normalizer.h"
#include "text/regex.h"
#include "text/unicode.h"

namespace alignpro::text {
namespace {

// The pattern GPT-2 splits words with; the ByteLevel pre-tokenizer's use_regex applies it.
constexpr const char* kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

std::array<char32_t, 256> make_byte_table() {
  // Printable Latin-1 bytes stand for themselves; the others are moved to U+0100 and up, in
  // byte order.
  std::array<char32_t, 256> table{};
  char32_t next = 256;
  for (int b = 0; b < 256; ++b) {
    bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
    table[b] = printable ? static_cast<char32_t>(b) : next++;
  }
  return table;
}

const std::array<char32_t, 256>& byte_table() {
  static const std::array<char32_t, 256> table = make_byte_table();
  return table;
}

class ByteLevel : public PreTokenizer {
 public:
  ByteLevel(bool add_prefix_space, bool use_regex, const JsonPath& at)
      : add_prefix_space_(add_prefix_space) {
    if (use_regex) regex_ = std::make_unique<Regex>(kGpt2Pattern, at.where());
  }

  void pre_tokenize(Pieces& pieces) const override {
    split_each(pieces, [&](Piece& piece, Pieces& out) {
      if (add_prefix_space_ && piece.text.rfind(' ', 0) != 0) piece.text.insert(0, " ");
      if (regex_) {
        split_piece(piece, match_spans(*regex_, piece.text), SplitBehavior::kIsolated, out);
      } else {
        out.push_back(std::move(piece));
      }
    });
    const auto& chars = byte_level_chars();
    for (Piece& piece : pieces) {
      if (piece.id >= 0) continue;
      std::string mapped;
      mapped.reserve(piece.text.size() * 2);
      for (unsigned char b : piece.text) mapped += chars[b];
      piece.text = std::move(mapped);
    }
  }

 private:
  bool add_prefix_space_;
  std::unique_ptr<Regex> regex_;
};

class Split : public PreTokenizer {
 public:
  Split(Regex pattern, SplitBehavior behavior, bool invert)
      : pattern_(std::move(pattern)), behavior_(behavior), invert_(invert) {}

  void pre_tokenize(Pieces& pieces) const override {
    split_each(pieces, [&](const Piece& piece, Pieces& out) {
      split_piece(piece, match_spans(pattern_, piece.text, invert_), behavior_, out);
    });
  }

 private:
  Regex pattern_;
  SplitBehavior behavior_;
  bool invert_;
};

class Metaspace : public PreTokenizer {
 public:
  Metaspace(std::string replacement, PrependScheme scheme, bool split, const JsonPath& at)
      : replacement_(std::move(replacement)),
        scheme_(scheme),
        split_(split),
        delimiter_(Regex::literal(replacement_, at.where())) {}

  void pre_tokenize(Pieces& pieces) const override {
    split_each(pieces, [&](Piece& piece, Pieces& out) {
      std::string replaced;
      replaced.reserve(piece.text.size() + replacement_.size());
      for (char c : piece.text) {
        if (c == ' ') {
          replaced += replacement_;
        } else {
          replaced.push_back(c);
        }
      }
      piece.text = std::move(replaced);
      bool starts_with_replacement = piece.text.rfind(replacement_, 0) == 0;
      bool prepend =
          scheme_ == PrependScheme::kAlways || (scheme_ == PrependScheme::kFirst && piece.at_start);
      if (prepend && !starts_with_replacement) piece.text.insert(0, replacement_);
      if (split_) {
        split_piece(piece, match_spans(delimiter_, piece.text), SplitBehavior::kMergedWithNext,
                    out);
      } else {
        out.push_back(std::move(piece));
      }
    });
  }

 private:
  std::string replacement_;
  PrependScheme scheme_;
  bool split_;
  Regex delimiter_;
};

class Digits : public PreTokenizer {
 public:
  Digits(bool individual, const JsonPath& at)
      : behavior_(individual ? SplitBehavior::kIsolated : SplitBehavior::kContiguous),
        numeric_(R"(\p{N})", at.where()) {}

  void pre_tokenize(Pieces& pieces) const override {
    split_each(pieces, [&](const Piece& piece, Pieces& out) {
      split_piece(piece, match_spans(numeric_, piece.text), behavior_, out);
    });
  }

 private:
  SplitBehavior behavior_;
  Regex numeric_;  // one numeric character per match, as Rust's char::is_numeric
};

class Sequence : public PreTokenizer {
 public:
  explicit Sequence(std::vector<std::unique_ptr<PreTokenizer>> parts) : parts_(std::move(parts)) {}
  void pre_tokenize(Pieces& pieces) const override {
    for (const auto& part : parts_) part->pre_tokenize(pieces);
  }

 private:
  std::vector<std::unique_ptr<PreTokenizer>> parts_;
};

SplitBehavior parse_behavior(const Json& spec, const JsonPath& at) {
  std::string name = string_field(spec, "behavior", at);
  if (name == "Removed") return SplitBehavior::kRemoved;
  if (name == "Isolated") return SplitBehavior::kIsolated;
  if (name == "MergedWithPrevious") return SplitBehavior::kMergedWithPrevious;
  if (name == "MergedWithNext") return SplitBehavior::kMergedWithNext;
  if (name == "Contiguous") return SplitBehavior::kContiguous;
  unsupported(at / "behavior", "\"" + name + "\"",
              "Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous");
}

}  // namespace

std::string metaspace_replacement(const Json& spec, const JsonPath& at) {
  std::string replacement = string_field(spec, "replacement", at);
  size_t pos = 0;
  if (replacement.empty() || (next_code_point(replacement, pos), pos != replacement.size())) {
    (at / "replacement").fail("expected one character, found \"" + replacement + "\"");
  }
  return replacement;
}

PrependScheme metaspace_prepend_scheme(const Json& spec, const JsonPath& at) {
  std::string name = string_field(spec, "prepend_scheme", at, "always");
  PrependScheme scheme;
  if (name == "always") {
    scheme = PrependScheme::kAlways;
  } else if (name == "never") {
    scheme = PrependScheme::kNever;
  } else if (name == "first") {
    scheme = PrependScheme::kFirst;
  } else {
    unsupported(at / "prepend_scheme", "\"" + name + "\"", "always, never, first");
  }
  // Older files say add_prefix_space instead; false must agree with the scheme.
  const Json* legacy = find_field(spec, "add_prefix_space", at);
  if (legacy != nullptr && legacy->is_boolean() && !legacy->get<bool>()) {
    if (scheme != PrependScheme::kNever && spec.contains("prepend_scheme")) {
      (at / "add_prefix_space").fail("false does not match prepend_scheme \"" + name + "\"");
    }
    scheme = PrependScheme::kNever;
  }
  return scheme;
}

std::unique_ptr<PreTokenizer> make_pre_tokenizer(const Json& spec, const JsonPath& at, int depth) {
  check_nesting(depth, at);
  std::string type = type_field(spec, at);
  if (type == "ByteLevel") {
    return std::make_unique<ByteLevel>(bool_field(spec, "add_prefix_space", at, true),
                                       bool_field(spec, "use_regex", at, true), at);
  }
  if (type == "Split") {
    return std::make_unique<Split>(make_pattern(require_field(spec, "pattern", at), at / "pattern"),
                                   parse_behavior(spec, at), bool_field(spec, "invert", at, false));
  }
  if (type == "Metaspace") {
    return std::make_unique<Metaspace>(metaspace_replacement(spec, at),
                                       metaspace_prepend_scheme(spec, at),
                                       bool_field(spec, "split", at, true), at);
  }
  if (type == "Digits") {
    return std::make_unique<Digits>(bool_field(spec, "individual_digits", at, false), at);
  }
  if (type == "Sequence") {
    const Json& list = require_field(spec, "pretokenizers", at);
    if (!list.is_array()) (at / "pretokenizers").fail("expected an array, found " + describe(list));
    std::vector<std::unique_ptr<PreTokenizer>> parts;
    for (size_t i = 0; i < list.size(); ++i) {
      parts.push_back(make_pre_tokenizer(list[i], (at / "pretokenizers")[i], depth + 1));
    }
    return std::make_unique<Sequence>(std::move(parts));
  }
  unsupported(at / "type", "\"" + type + "\"", "ByteLevel, Split, Metaspace, Digits, Sequence");
}

const std::array<std::string, 256>& byte_level_chars() {
  static const std::array<std::string, 256> chars = [] {
    std::array<std::string, 256> out;
    for (int b = 0; b < 256; ++b) append_utf8(out[b], byte_table()[b]);
    return out;
  }();
  return chars;
}

int byte_level_byte(char32_t c) {
  // Printable bytes map to themselves; the rest sit in order from U+0100.
  static const std::array<int, 324> reverse = [] {
    std::array<int, 324> out;
    out.fill(-1);
    for (int b = 0; b < 256; ++b) out[byte_table()[b]] = b;
    return out;
  }();
  return c < reverse.size() ? reverse[c] : -1;
}

}  // namespace alignpro::text
