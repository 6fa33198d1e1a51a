#include "text/decoder.h"

#include "text/normalizer.h"
#include "text/pre_tokenizer.h"
#include "text/regex.h"
#include "text/unicode.h"

namespace alignpro::text {
namespace {

void join_into_one(std::vector<std::string>& tokens) {
  std::string joined;
  for (const std::string& t : tokens) joined += t;
  tokens.assign(1, std::move(joined));
}

// Byte-level characters back to bytes; a token with any other character keeps its own bytes.
class ByteLevel : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::string bytes;
    for (const std::string& token : tokens) {
      std::string mapped;
      bool all_mapped = true;
      for (size_t pos = 0; pos < token.size();) {
        int b = byte_level_byte(next_code_point(token, pos));
        if (b < 0) {
          all_mapped = false;
          break;
        }
        mapped.push_back(static_cast<char>(b));
      }
      bytes += all_mapped ? mapped : token;
    }
    tokens.assign(1, utf8_lossy(bytes));
  }
};

class Metaspace : public Decoder {
 public:
  Metaspace(std::string replacement, PrependScheme scheme)
      : replacement_(std::move(replacement)), scheme_(scheme) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (size_t i = 0; i < tokens.size(); ++i) {
      // The first token loses every replacement character, not only a leading one.
      bool drop = i == 0 && scheme_ != PrependScheme::kNever;
      std::string out;
      const std::string& token = tokens[i];
      for (size_t pos = 0; pos < token.size();) {
        if (token.compare(pos, replacement_.size(), replacement_) == 0) {
          if (!drop) out.push_back(' ');
          pos += replacement_.size();
        } else {
          out.push_back(token[pos++]);
        }
      }
      tokens[i] = std::move(out);
    }
  }

 private:
  std::string replacement_;
  PrependScheme scheme_;
};

class Replace : public Decoder {
 public:
  Replace(Regex pattern, std::string content)
      : pattern_(std::move(pattern)), content_(std::move(content)) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (std::string& token : tokens) {
      std::string out;
      for (const Span& s : match_spans(pattern_, token)) {
        if (s.match) {
          out += content_;
        } else {
          out.append(token, s.begin, s.end - s.begin);
        }
      }
      token = std::move(out);
    }
  }

 private:
  Regex pattern_;
  std::string content_;
};

// The byte a "<0xAB>" token stands for, or -1. Like Rust's u8::from_str_radix, a '+' may
// stand in front of a single digit.
int byte_token_value(const std::string& token) {
  if (token.size() != 6 || token.compare(0, 3, "<0x") != 0 || token[5] != '>') return -1;
  auto hex = [](char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  int high = hex(token[3]);
  int low = hex(token[4]);
  if (low < 0) return -1;
  if (token[3] == '+') return low;
  return high < 0 ? -1 : high * 16 + low;
}

// Runs of byte tokens become their UTF-8 text, or one U+FFFD per byte when it is not valid.
class ByteFallback : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::vector<std::string> out;
    std::string pending;
    auto flush = [&] {
      if (pending.empty()) return;
      if (find_invalid_utf8(pending) == std::string::npos) {
        out.push_back(pending);
      } else {
        for (size_t i = 0; i < pending.size(); ++i) out.push_back("\xEF\xBF\xBD");
      }
      pending.clear();
    };
    for (std::string& token : tokens) {
      int b = byte_token_value(token);
      if (b >= 0) {
        pending.push_back(static_cast<char>(b));
        continue;
      }
      flush();
      out.push_back(std::move(token));
    }
    flush();
    tokens = std::move(out);
  }
};

class Fuse : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override { join_into_one(tokens); }
};

// Removes up to `start` leading and `stop` trailing copies of one character from each token.
class Strip : public Decoder {
 public:
  Strip(char32_t content, int64_t start, int64_t stop)
      : content_(content), start_(start), stop_(stop) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (std::string& token : tokens) {
      std::vector<size_t> offsets;  // byte offset of each character, then the end
      std::vector<char32_t> chars;
      for (size_t pos = 0; pos < token.size();) {
        offsets.push_back(pos);
        chars.push_back(next_code_point(token, pos));
      }
      offsets.push_back(token.size());
      size_t begin = 0;
      while (begin < chars.size() && static_cast<int64_t>(begin) < start_ &&
             chars[begin] == content_) {
        ++begin;
      }
      size_t end = chars.size();
      while (end > begin && static_cast<int64_t>(chars.size() - end) < stop_ &&
             chars[end - 1] == content_) {
        --end;
      }
      token = token.substr(offsets[begin], offsets[end] - offsets[begin]);
    }
  }

 private:
  char32_t content_;
  int64_t start_;
  int64_t stop_;
};

class Sequence : public Decoder {
 public:
  explicit Sequence(std::vector<std::unique_ptr<Decoder>> parts) : parts_(std::move(parts)) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (const auto& part : parts_) part->decode_chain(tokens);
  }

 private:
  std::vector<std::unique_ptr<Decoder>> parts_;
};

}  // namespace

std::unique_ptr<Decoder> make_decoder(const Json& spec, const JsonPath& at, int depth) {
  check_nesting(depth, at);
  std::string type = type_field(spec, at);
  if (type == "ByteLevel") return std::make_unique<ByteLevel>();
  if (type == "Metaspace") {
    return std::make_unique<Metaspace>(metaspace_replacement(spec, at),
                                       metaspace_prepend_scheme(spec, at));
  }
  if (type == "Replace") {
    return std::make_unique<Replace>(
        make_pattern(require_field(spec, "pattern", at), at / "pattern"),
        string_field(spec, "content", at));
  }
  if (type == "ByteFallback") return std::make_unique<ByteFallback>();
  if (type == "Fuse") return std::make_unique<Fuse>();
  if (type == "Strip") {
    std::string content = string_field(spec, "content", at);
    size_t pos = 0;
    char32_t c = content.empty() ? 0 : next_code_point(content, pos);
    if (content.empty() || pos != content.size()) {
      (at / "content").fail("expected one character, found \"" + content + "\"");
    }
    int64_t start = int_field(spec, "start", at);
    int64_t stop = int_field(spec, "stop", at);
    if (start < 0) (at / "start").fail("expected a count >= 0, found " + std::to_string(start));
    if (stop < 0) (at / "stop").fail("expected a count >= 0, found " + std::to_string(stop));
    return std::make_unique<Strip>(c, start, stop);
  }
  if (type == "Sequence") {
    const Json& list = require_field(spec, "decoders", at);
    if (!list.is_array()) (at / "decoders").fail("expected an array, found " + describe(list));
    std::vector<std::unique_ptr<Decoder>> parts;
    for (size_t i = 0; i < list.size(); ++i) {
      parts.push_back(make_decoder(list[i], (at / "decoders")[i], depth + 1));
    }
    return std::make_unique<Sequence>(std::move(parts));
  }
  unsupported(at / "type", "\"" + type + "\"",
              "ByteLevel, Metaspace, Replace, ByteFallback, Fuse, Strip, Sequence");
}

}  // namespace alignpro::text
