#include "text/tokenizer.h"

#include <filesystem>

#include "common/error.h"
#include "text/added_vocabulary.h"
#include "text/bpe.h"
#include "text/decoder.h"
#include "text/json_fields.h"
#include "text/normalizer.h"
#include "text/post_processor.h"
#include "text/pre_tokenizer.h"
#include "text/unicode.h"

namespace alignpro {

using text::Json;
using text::JsonPath;

struct Tokenizer::Impl {
  std::unique_ptr<text::Normalizer> normalizer;
  std::unique_ptr<text::PreTokenizer> pre_tokenizer;
  std::unique_ptr<text::BpeModel> model;
  std::unique_ptr<text::Decoder> decoder;
  text::PostProcessor post_processor;
  text::AddedVocabulary added;
  int64_t vocab_size = 0;
  std::optional<int64_t> bos_id, eos_id, pad_id, unk_id;

  std::optional<int64_t> token_to_id(const std::string& token) const {
    if (auto id = added.token_to_id(token)) return id;
    return model->token_to_id(token);
  }
  const std::string* id_to_token(int64_t id) const {
    if (const std::string* token = added.id_to_token(id)) return token;
    return model->id_to_token(id);
  }
};

namespace {

std::vector<text::AddedToken> read_added_tokens(const Json& root, const JsonPath& root_at) {
  std::vector<text::AddedToken> tokens;
  const Json* list = text::find_field(root, "added_tokens", root_at);
  if (list == nullptr) return tokens;
  const JsonPath at = root_at / "added_tokens";
  if (!list->is_array()) at.fail("expected an array, found " + text::describe(*list));
  for (size_t i = 0; i < list->size(); ++i) {
    const Json& entry = (*list)[i];
    // The id is checked, but as in the reference the token gets the id its content has.
    text::token_id_value(text::require_field(entry, "id", at[i]), at[i] / "id");
    text::AddedToken token;
    token.content = text::string_field(entry, "content", at[i]);
    token.special = text::bool_field(entry, "special", at[i], false);
    token.single_word = text::bool_field(entry, "single_word", at[i], false);
    token.lstrip = text::bool_field(entry, "lstrip", at[i], false);
    token.rstrip = text::bool_field(entry, "rstrip", at[i], false);
    token.normalized = text::bool_field(entry, "normalized", at[i], !token.special);
    tokens.push_back(std::move(token));
  }
  return tokens;
}

std::unique_ptr<text::BpeModel> read_model(const Json& root, const JsonPath& root_at) {
  const JsonPath at = root_at / "model";
  const Json& model = text::require_field(root, "model", root_at);
  // Files without a model type are read as BPE when they have merges, like the reference.
  std::string type = model.is_object() && !model.contains("type") && model.contains("merges")
                         ? "BPE"
                         : text::type_field(model, at);
  if (type != "BPE") {
    text::unsupported(at / "type", "\"" + type + "\"",
                      "BPE (byte-level and SentencePiece-style BPE)");
  }
  return text::BpeModel::from_json(model, at);
}

// A token of tokenizer_config.json: a string, {"content": string, ...} or null.
std::optional<std::string> config_token(const Json& config, const std::string& key,
                                        const JsonPath& at) {
  const Json* value = text::find_field(config, key, at);
  if (value == nullptr) return std::nullopt;
  if (value->is_string()) return value->get<std::string>();
  if (value->is_object()) return text::string_field(*value, "content", at / key);
  (at / key).fail("expected a token string or {\"content\": ...}, found " + text::describe(*value));
}

// Tokenizer classes whose fast tokenizer transformers rebuilds from add_bos_token and
// add_eos_token, whatever post-processor tokenizer.json has.
bool rebuilds_post_processor(const std::string& tokenizer_class) {
  return tokenizer_class == "LlamaTokenizer" || tokenizer_class == "LlamaTokenizerFast" ||
         tokenizer_class == "CodeLlamaTokenizer" || tokenizer_class == "CodeLlamaTokenizerFast";
}

}  // namespace

// Reads BOS, EOS, PAD and UNK, and for Llama tokenizers whether BOS and EOS are added.
void Tokenizer::read_config(const std::string& path, const std::string& tokenizer_json,
                            Impl& impl) {
  Json config = text::read_json_file(path);
  const JsonPath at(path);
  if (!config.is_object()) at.fail("expected a JSON object, found " + text::describe(config));
  auto id_of = [&](const std::string& key) -> std::optional<int64_t> {
    std::optional<std::string> token = config_token(config, key, at);
    if (!token) return std::nullopt;
    std::optional<int64_t> id = impl.token_to_id(*token);
    if (!id) {
      (at / key).fail("the token \"" + *token + "\" is not in the vocabulary of " + tokenizer_json);
    }
    return id;
  };
  impl.bos_id = id_of("bos_token");
  impl.eos_id = id_of("eos_token");
  impl.pad_id = id_of("pad_token");
  if (auto unk = id_of("unk_token")) impl.unk_id = unk;

  std::string tokenizer_class = text::string_field(config, "tokenizer_class", at, "");
  if (rebuilds_post_processor(tokenizer_class)) {
    bool add_bos = text::bool_field(config, "add_bos_token", at, true);
    bool add_eos = text::bool_field(config, "add_eos_token", at, false);
    if (add_bos && !impl.bos_id) (at / "add_bos_token").fail("true, but bos_token is not set");
    if (add_eos && !impl.eos_id) (at / "add_eos_token").fail("true, but eos_token is not set");
    impl.post_processor = text::PostProcessor::bos_eos(add_bos ? impl.bos_id : std::nullopt,
                                                       add_eos ? impl.eos_id : std::nullopt);
  }
}

Tokenizer Tokenizer::from_folder(const std::string& folder) {
  namespace fs = std::filesystem;
  fs::path json = fs::path(folder) / "tokenizer.json";
  if (!fs::is_regular_file(json)) {
    throw InputError(folder +
                     ": no tokenizer.json in this folder (alignpro reads the Hugging "
                     "Face tokenizer.json format)");
  }
  fs::path config = fs::path(folder) / "tokenizer_config.json";
  return from_files(json.string(), fs::is_regular_file(config) ? config.string() : "");
}

Tokenizer Tokenizer::from_files(const std::string& tokenizer_json,
                                const std::string& tokenizer_config_json) {
  auto impl = std::make_unique<Impl>();
  const Json root = text::read_json_file(tokenizer_json);
  const JsonPath at(tokenizer_json);
  if (!root.is_object()) at.fail("expected a JSON object, found " + text::describe(root));
  std::string version = text::string_field(root, "version", at, "1.0");
  if (version != "1.0") text::unsupported(at / "version", "\"" + version + "\"", "1.0");
  // "truncation" and "padding" are left out on purpose: transformers overrides them per call
  // and alignpro pads batches itself.
  if (const Json* spec = text::find_field(root, "normalizer", at)) {
    impl->normalizer = text::make_normalizer(*spec, at / "normalizer");
  }
  if (const Json* spec = text::find_field(root, "pre_tokenizer", at)) {
    impl->pre_tokenizer = text::make_pre_tokenizer(*spec, at / "pre_tokenizer");
  }
  impl->model = read_model(root, at);
  if (const Json* spec = text::find_field(root, "decoder", at)) {
    impl->decoder = text::make_decoder(*spec, at / "decoder");
  }
  impl->post_processor = text::PostProcessor::from_json(
      text::find_field(root, "post_processor", at), at / "post_processor");
  impl->added.add(read_added_tokens(root, at), *impl->model, impl->normalizer.get(),
                  (at / "added_tokens").where());

  impl->vocab_size = static_cast<int64_t>(impl->model->size());
  for (const auto& entry : impl->added.ids()) {
    if (!impl->model->token_to_id(entry.first)) ++impl->vocab_size;
  }
  impl->unk_id = impl->model->unk_id();
  if (!tokenizer_config_json.empty()) read_config(tokenizer_config_json, tokenizer_json, *impl);
  return Tokenizer(std::move(impl));
}

std::vector<int64_t> Tokenizer::encode(const std::string& text, bool add_special_tokens) const {
  size_t bad = text::find_invalid_utf8(text);
  if (bad != std::string::npos) {
    throw InputError("cannot tokenize a text that is not valid UTF-8 (malformed byte at position " +
                     std::to_string(bad) + " of " + std::to_string(text.size()) + ")");
  }
  text::Pieces pieces = impl_->added.extract_and_normalize(text, impl_->normalizer.get());
  if (impl_->pre_tokenizer) impl_->pre_tokenizer->pre_tokenize(pieces);
  std::vector<int64_t> ids;
  ids.reserve(text.size() / 2 + 4);
  for (const text::Piece& piece : pieces) {
    if (piece.id >= 0) {
      ids.push_back(piece.id);
    } else {
      impl_->model->tokenize(piece.text, ids);
    }
  }
  return impl_->post_processor.apply(std::move(ids), add_special_tokens);
}

std::string Tokenizer::decode(const std::vector<int64_t>& ids, bool skip_special_tokens) const {
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (int64_t id : ids) {
    const std::string* token = impl_->id_to_token(id);
    if (token == nullptr) continue;
    if (skip_special_tokens && impl_->added.is_special(*token)) continue;
    tokens.push_back(*token);
  }
  std::string out;
  if (impl_->decoder) {
    impl_->decoder->decode_chain(tokens);
    for (const std::string& t : tokens) out += t;
  } else {
    for (size_t i = 0; i < tokens.size(); ++i) {
      if (i > 0) out.push_back(' ');
      out += tokens[i];
    }
  }
  return out;
}

int64_t Tokenizer::vocab_size() const {
  return impl_->vocab_size;
}
std::optional<int64_t> Tokenizer::bos_id() const {
  return impl_->bos_id;
}
std::optional<int64_t> Tokenizer::eos_id() const {
  return impl_->eos_id;
}
std::optional<int64_t> Tokenizer::pad_id() const {
  return impl_->pad_id;
}
std::optional<int64_t> Tokenizer::unk_id() const {
  return impl_->unk_id;
}

std::optional<int64_t> Tokenizer::token_to_id(const std::string& token) const {
  return impl_->token_to_id(token);
}

std::string Tokenizer::id_to_token(int64_t id) const {
  const std::string* token = impl_->id_to_token(id);
  return token == nullptr ? std::string() : *token;
}

bool Tokenizer::is_special(int64_t id) const {
  const std::string* token = impl_->id_to_token(id);
  return token != nullptr && impl_->added.is_special(*token);
}

Tokenizer::Tokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

}  // namespace alignpro
