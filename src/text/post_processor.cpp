#include "text/post_processor.h"

#include <string>

namespace alignpro::text {
namespace {

// A [token, id] pair of BertProcessing and RobertaProcessing.
int64_t token_pair_id(const Json& spec, const std::string& key, const JsonPath& at) {
  const Json& pair = require_field(spec, key, at);
  if (!pair.is_array() || pair.size() != 2 || !pair[0].is_string()) {
    (at / key).fail("expected [token, id], found " + describe(pair));
  }
  return token_id_value(pair[1], (at / key)[1]);
}

}  // namespace

void PostProcessor::append(const Json& spec, const JsonPath& at, int depth,
                           std::vector<Template>& out) {
  check_nesting(depth, at);
  std::string type = type_field(spec, at);
  if (type == "ByteLevel") return;  // it only trims offsets, which alignpro does not keep
  if (type == "Sequence") {
    const Json& list = require_field(spec, "processors", at);
    if (!list.is_array()) (at / "processors").fail("expected an array, found " + describe(list));
    for (size_t i = 0; i < list.size(); ++i)
      append(list[i], (at / "processors")[i], depth + 1, out);
    return;
  }
  if (type == "BertProcessing" || type == "RobertaProcessing") {
    Template t{{false, {token_pair_id(spec, "cls", at)}},
               {true, {}},
               {false, {token_pair_id(spec, "sep", at)}}};
    out.push_back(std::move(t));
    return;
  }
  if (type != "TemplateProcessing") {
    unsupported(at / "type", "\"" + type + "\"",
                "TemplateProcessing, BertProcessing, RobertaProcessing, ByteLevel, Sequence");
  }
  const Json& specials = require_field(spec, "special_tokens", at);
  if (!specials.is_object()) {
    (at / "special_tokens").fail("expected an object, found " + describe(specials));
  }
  const Json& single = require_field(spec, "single", at);
  const JsonPath single_at = at / "single";
  if (!single.is_array()) single_at.fail("expected an array of pieces, found " + describe(single));
  Template t;
  for (size_t i = 0; i < single.size(); ++i) {
    const Json& piece = single[i];
    const JsonPath piece_at = single_at[i];
    if (piece.is_object() && piece.contains("Sequence")) {
      std::string id = string_field(piece["Sequence"], "id", piece_at / "Sequence");
      if (id != "A") {
        unsupported(piece_at / "Sequence" / "id", "\"" + id + "\"", "A (a single text)");
      }
      t.push_back({true, {}});
    } else if (piece.is_object() && piece.contains("SpecialToken")) {
      std::string name = string_field(piece["SpecialToken"], "id", piece_at / "SpecialToken");
      const JsonPath token_at = at / "special_tokens" / name;
      const Json* token = find_field(specials, name, at / "special_tokens");
      if (token == nullptr) token_at.fail("missing; the single template uses it");
      const Json& ids = require_field(*token, "ids", token_at);
      if (!ids.is_array()) (token_at / "ids").fail("expected an array, found " + describe(ids));
      Part part{false, {}};
      for (size_t k = 0; k < ids.size(); ++k) {
        part.ids.push_back(token_id_value(ids[k], (token_at / "ids")[k]));
      }
      t.push_back(std::move(part));
    } else {
      piece_at.fail("expected {\"Sequence\": ...} or {\"SpecialToken\": ...}, found " +
                    describe(piece));
    }
  }
  out.push_back(std::move(t));
}

PostProcessor PostProcessor::from_json(const Json* spec, const JsonPath& at) {
  PostProcessor processor;
  if (spec != nullptr) append(*spec, at, 0, processor.templates_);
  return processor;
}

PostProcessor PostProcessor::bos_eos(std::optional<int64_t> bos, std::optional<int64_t> eos) {
  Template t;
  if (bos) t.push_back({false, {*bos}});
  t.push_back({true, {}});
  if (eos) t.push_back({false, {*eos}});
  PostProcessor processor;
  processor.templates_.push_back(std::move(t));
  return processor;
}

std::vector<int64_t> PostProcessor::apply(std::vector<int64_t> ids, bool add_special_tokens) const {
  for (const Template& t : templates_) {
    std::vector<int64_t> out;
    for (const Part& part : t) {
      if (part.sequence) {
        out.insert(out.end(), ids.begin(), ids.end());
      } else if (add_special_tokens) {
        out.insert(out.end(), part.ids.begin(), part.ids.end());
      }
    }
    ids = std::move(out);
  }
  return ids;
}

}  // namespace alignpro::text
