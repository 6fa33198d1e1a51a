#include "text/normalizer.h"

#include <vector>

#include "text/pieces.h"
#include "text/regex.h"
#include "text/unicode.h"

namespace alignpro::text {
namespace {

class Nfc : public Normalizer {
 public:
  void normalize(std::string& text) const override { text = to_nfc(text); }
};

class Nfd : public Normalizer {
 public:
  void normalize(std::string& text) const override { text = to_nfd(text); }
};

class Prepend : public Normalizer {
 public:
  explicit Prepend(std::string prefix) : prefix_(std::move(prefix)) {}
  void normalize(std::string& text) const override {
    if (!text.empty()) text.insert(0, prefix_);
  }

 private:
  std::string prefix_;
};

class Replace : public Normalizer {
 public:
  Replace(Regex pattern, std::string content)
      : pattern_(std::move(pattern)), content_(std::move(content)) {}
  void normalize(std::string& text) const override {
    std::string out;
    out.reserve(text.size());
    for (const Span& s : match_spans(pattern_, text)) {
      if (s.match) {
        out += content_;
      } else {
        out.append(text, s.begin, s.end - s.begin);
      }
    }
    text = std::move(out);
  }

 private:
  Regex pattern_;
  std::string content_;
};

class Strip : public Normalizer {
 public:
  Strip(bool left, bool right) : left_(left), right_(right) {}
  void normalize(std::string& text) const override {
    size_t begin = 0;
    size_t end = text.size();
    if (left_) {
      while (begin < text.size()) {
        size_t next = begin;
        if (!is_white_space(next_code_point(text, next))) break;
        begin = next;
      }
    }
    if (right_) {
      end = begin;
      for (size_t pos = begin; pos < text.size();) {
        if (!is_white_space(next_code_point(text, pos))) end = pos;
      }
    }
    text = text.substr(begin, end - begin);
  }

 private:
  bool left_;
  bool right_;
};

class Sequence : public Normalizer {
 public:
  explicit Sequence(std::vector<std::unique_ptr<Normalizer>> parts) : parts_(std::move(parts)) {}
  void normalize(std::string& text) const override {
    for (const auto& part : parts_) part->normalize(text);
  }

 private:
  std::vector<std::unique_ptr<Normalizer>> parts_;
};

}  // namespace

Regex make_pattern(const Json& spec, const JsonPath& at) {
  if (!spec.is_object() || spec.size() != 1) {
    at.fail("expected {\"String\": text} or {\"Regex\": pattern}, found " + describe(spec));
  }
  if (spec.contains("String")) {
    return Regex::literal(string_field(spec, "String", at), (at / "String").where());
  }
  if (spec.contains("Regex")) {
    return Regex(string_field(spec, "Regex", at), (at / "Regex").where());
  }
  unsupported(at, describe(spec), "String, Regex");
}

std::unique_ptr<Normalizer> make_normalizer(const Json& spec, const JsonPath& at, int depth) {
  check_nesting(depth, at);
  std::string type = type_field(spec, at);
  if (type == "NFC") return std::make_unique<Nfc>();
  if (type == "NFD") return std::make_unique<Nfd>();
  if (type == "Prepend") return std::make_unique<Prepend>(string_field(spec, "prepend", at));
  if (type == "Replace") {
    return std::make_unique<Replace>(
        make_pattern(require_field(spec, "pattern", at), at / "pattern"),
        string_field(spec, "content", at));
  }
  if (type == "Strip") {
    return std::make_unique<Strip>(bool_field(spec, "strip_left", at, true),
                                   bool_field(spec, "strip_right", at, true));
  }
  if (type == "Sequence") {
    const Json& list = require_field(spec, "normalizers", at);
    if (!list.is_array()) (at / "normalizers").fail("expected an array, found " + describe(list));
    std::vector<std::unique_ptr<Normalizer>> parts;
    for (size_t i = 0; i < list.size(); ++i) {
      parts.push_back(make_normalizer(list[i], (at / "normalizers")[i], depth + 1));
    }
    return std::make_unique<Sequence>(std::move(parts));
  }
  unsupported(at / "type", "\"" + type + "\"", "NFC, NFD, Prepend, Replace, Strip, Sequence");
}

}  // namespace alignpro::text
