// Normalizers of a tokenizer.json ("normalizer"): NFC, NFD, Prepend, Replace, Strip and
// Sequence. They rewrite each piece of text that is not an added token before pre-tokenizing.
#pragma once

#include <memory>
#include <string>

#include "text/json_fields.h"
#include "text/regex.h"

namespace alignpro::text {

class Normalizer {
 public:
  virtual ~Normalizer() = default;
  virtual void normalize(std::string& text) const = 0;
};

// Builds the normalizer that spec (a non-null JSON object found at `at`) describes; anything
// unsupported is an InputError naming the field and listing what is supported.
std::unique_ptr<Normalizer> make_normalizer(const Json& spec, const JsonPath& at, int depth = 0);

// A Split or Replace "pattern" object: {"String": literal} or {"Regex": pattern}.
Regex make_pattern(const Json& spec, const JsonPath& at);

}  // namespace alignpro::text
