// Prompt templates and chat formats: how a prompt, a rewrite or a (prompt, response) pair is
// laid out as the text a model reads. A template is a format string with {prompt}, {rewrite}
// and {response}; a chat format wraps that text as one user turn of a chat model's template.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace alignpro {

// The texts the placeholders stand for.
struct TemplateFields {
  std::string prompt;
  std::string rewrite;
  std::string response;
};

class PromptTemplate {
 public:
  // Parses a format string; {{ and }} stand for literal braces. A placeholder outside
  // `allowed`, an empty one or an unmatched brace is an InputError naming `name` (where the
  // template came from, such as a job key) and the position.
  static PromptTemplate parse(const std::string& text, const std::string& name,
                              const std::vector<std::string>& allowed = {"prompt", "rewrite",
                                                                         "response"});

  bool contains(const std::string& placeholder) const;
  // Throws InputError naming the template unless it contains {placeholder}.
  void require(const std::string& placeholder) const;
  std::string render(const TemplateFields& fields) const;

  const std::string& text() const { return text_; }
  const std::string& name() const { return name_; }

 private:
  enum class Field { kLiteral, kPrompt, kRewrite, kResponse };
  static Field field_of(const std::string& placeholder);
  struct Part {
    Field field;
    std::string literal;
  };
  std::string text_;
  std::string name_;
  std::vector<Part> parts_;
};

enum class ChatFormat { kNone, kChatMl, kLlama3, kLlama2 };

// "none", "chatml", "llama3" or "llama2"; anything else is an InputError naming `key`.
ChatFormat parse_chat_format(const std::string& name, const std::string& key);
std::string chat_format_name(ChatFormat format);

struct ChatOptions {
  // A system turn before the user's, if any.
  std::optional<std::string> system_message;
  // The BOS text llama3 and llama2 begin with; empty: the format's usual one
  // ("<|begin_of_text|>", "<s>"). Pass the tokenizer's when it differs.
  std::string bos_token;
};

// The text the chat templates published with these models give for one user turn followed by
// the assistant's generation prompt:
//   chatml  <|im_start|>user\n{message}<|im_end|>\n<|im_start|>assistant\n (no default system
//           turn, unlike Qwen2's own template, which adds one)
//   llama3  the Llama 3 Instruct template; messages are stripped of surrounding whitespace
//   llama2  <s>[INST] {message, stripped} [/INST], with <<SYS>> for a system message
//   none    the message itself
std::string apply_chat_format(ChatFormat format, const std::string& user_message,
                              const ChatOptions& options = {});

// A template and a chat format together, as a job's [prompter], [target] or [reward] has them.
class PromptFormat {
 public:
  PromptFormat(PromptTemplate prompt_template, ChatFormat chat, ChatOptions options = {});

  // The template filled in, then wrapped by the chat format.
  std::string render(const TemplateFields& fields) const;
  // Whether to encode rendered text with the tokenizer's special tokens. A chat format's text
  // already has them (BOS included), and transformers' apply_chat_template adds none; a plain
  // template gets them as the tokenizer adds them by default.
  bool add_special_tokens() const { return chat_ == ChatFormat::kNone; }

  const PromptTemplate& prompt_template() const { return template_; }
  ChatFormat chat_format() const { return chat_; }

 private:
  PromptTemplate template_;
  ChatFormat chat_;
  ChatOptions options_;
};

}  // namespace alignpro
