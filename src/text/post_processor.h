// The post-processor of a tokenizer.json ("post_processor"): the special tokens placed around
// an encoded text (TemplateProcessing, BertProcessing, RobertaProcessing; ByteLevel and
// Sequence), for a single text.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "text/json_fields.h"

namespace alignpro::text {

class PostProcessor {
 public:
  // spec is the "post_processor" value, or nullptr when it is null (nothing is added).
  static PostProcessor from_json(const Json* spec, const JsonPath& at);
  // BOS before and EOS after the text, each where given (how transformers rebuilds Llama's).
  static PostProcessor bos_eos(std::optional<int64_t> bos, std::optional<int64_t> eos);

  // ids with the special tokens around them (unchanged without add_special_tokens).
  std::vector<int64_t> apply(std::vector<int64_t> ids, bool add_special_tokens) const;

 private:
  // One template: the text itself (sequence) or a run of special token ids.
  struct Part {
    bool sequence = false;
    std::vector<int64_t> ids;
  };
  using Template = std::vector<Part>;
  static void append(const Json& spec, const JsonPath& at, int depth, std::vector<Template>& out);

  // Applied in turn, as a Sequence of processors is.
  std::vector<Template> templates_;
};

}  // namespace alignpro::text
