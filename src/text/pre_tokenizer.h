// Pre-tokenizers of a tokenizer.json ("pre_tokenizer"): ByteLevel, Split, Metaspace, Digits and
// Sequence. They cut the pieces left after the added tokens into the words the model sees.
#pragma once

#include <array>
#include <memory>
#include <string>

#include "text/json_fields.h"
#include "text/pieces.h"

namespace alignpro::text {

class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  virtual void pre_tokenize(Pieces& pieces) const = 0;
};

// Builds the pre-tokenizer that spec (a non-null JSON object found at `at`) describes.
std::unique_ptr<PreTokenizer> make_pre_tokenizer(const Json& spec, const JsonPath& at,
                                                 int depth = 0);

// When Metaspace puts its replacement character in front of a piece.
enum class PrependScheme { kAlways, kNever, kFirst };

// Metaspace's "replacement" (one character) and its prepend scheme ("prepend_scheme", or the
// older "add_prefix_space"), shared by the pre-tokenizer and the decoder.
std::string metaspace_replacement(const Json& spec, const JsonPath& at);
PrependScheme metaspace_prepend_scheme(const Json& spec, const JsonPath& at);

// GPT-2's reversible map from bytes to printable characters (UTF-8 encoded), and back.
const std::array<std::string, 256>& byte_level_chars();
// The byte a byte-level character stands for, or -1 when c is not one of them.
int byte_level_byte(char32_t c);

}  // namespace alignpro::text
