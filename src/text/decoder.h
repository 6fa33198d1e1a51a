// Decoders of a tokenizer.json ("decoder"): ByteLevel, Metaspace, Replace, ByteFallback, Fuse,
// Strip and Sequence. Each rewrites the list of token strings; the result is joined.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "text/json_fields.h"

namespace alignpro::text {

class Decoder {
 public:
  virtual ~Decoder() = default;
  virtual void decode_chain(std::vector<std::string>& tokens) const = 0;
};

// Builds the decoder that spec (a non-null JSON object found at `at`) describes.
std::unique_ptr<Decoder> make_decoder(const Json& spec, const JsonPath& at, int depth = 0);

}  // namespace alignpro::text
