// Tokenizers read from a Hugging Face tokenizer.json (and tokenizer_config.json): byte-level BPE
// (GPT-2, Llama 3, Qwen2, SmolLM) and SentencePiece-style BPE (Llama 2, Mistral, TinyLlama),
// with added and special tokens. Encoding and decoding match the reference implementation.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace alignpro {

class Tokenizer {
 public:
  // Reads tokenizer.json and, when present beside it, tokenizer_config.json (BOS/EOS/PAD and
  // whether BOS is added). Throws InputError naming the file and what is wrong.
  static Tokenizer from_folder(const std::string& folder);
  static Tokenizer from_files(const std::string& tokenizer_json,
                              const std::string& tokenizer_config_json = "");

  // Token ids of text; with add_special_tokens, the model's BOS (and any post-processor
  // tokens) are added as the reference does. Text that is not valid UTF-8 is an InputError.
  // Safe to call from several threads at once.
  std::vector<int64_t> encode(const std::string& text, bool add_special_tokens = true) const;
  // The text of ids; ids the tokenizer does not know are skipped, as the reference does.
  std::string decode(const std::vector<int64_t>& ids, bool skip_special_tokens = true) const;

  // The number of distinct tokens: the model's vocabulary and the added tokens not in it.
  int64_t vocab_size() const;
  std::optional<int64_t> bos_id() const;
  std::optional<int64_t> eos_id() const;
  std::optional<int64_t> pad_id() const;
  std::optional<int64_t> unk_id() const;
  // The id of a token string (vocabulary or added token), if there is one.
  std::optional<int64_t> token_to_id(const std::string& token) const;
  // The token string of an id ("" for an id the tokenizer does not know).
  std::string id_to_token(int64_t id) const;
  // Whether id is a special added token (the ones decode skips).
  bool is_special(int64_t id) const;

  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  ~Tokenizer();

 private:
  struct Impl;
  explicit Tokenizer(std::unique_ptr<Impl> impl);
  static void read_config(const std::string& path, const std::string& tokenizer_json, Impl& impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace alignpro
