#include "text/template.h"

#include <algorithm>

#include "common/error.h"
#include "text/unicode.h"

namespace alignpro {
namespace {

std::string join_placeholders(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& n : names) out += (out.empty() ? "{" : ", {") + n + "}";
  return out;
}

}  // namespace

PromptTemplate PromptTemplate::parse(const std::string& text, const std::string& name,
                                     const std::vector<std::string>& allowed) {
  PromptTemplate t;
  t.text_ = text;
  t.name_ = name;
  auto fail = [&](size_t pos, const std::string& what) {
    throw InputError(name + ": the template \"" + text + "\" " + what + " at position " +
                     std::to_string(pos) + "; allowed placeholders: " + join_placeholders(allowed) +
                     " (write {{ and }} for literal braces)");
  };
  std::string literal;
  for (size_t pos = 0; pos < text.size(); ++pos) {
    char c = text[pos];
    if (c == '}') {
      if (pos + 1 < text.size() && text[pos + 1] == '}') {
        literal.push_back('}');
        ++pos;
        continue;
      }
      fail(pos, "has an unmatched }");
    }
    if (c != '{') {
      literal.push_back(c);
      continue;
    }
    if (pos + 1 < text.size() && text[pos + 1] == '{') {
      literal.push_back('{');
      ++pos;
      continue;
    }
    size_t close = text.find_first_of("{}", pos + 1);
    if (close == std::string::npos || text[close] != '}') fail(pos, "has an unmatched {");
    std::string placeholder = text.substr(pos + 1, close - pos - 1);
    Field field = field_of(placeholder);
    if (field == Field::kLiteral ||
        std::find(allowed.begin(), allowed.end(), placeholder) == allowed.end()) {
      fail(pos, placeholder.empty() ? "has an empty placeholder {}"
                                    : "has the unknown placeholder {" + placeholder + "}");
    }
    if (!literal.empty()) t.parts_.push_back({Field::kLiteral, std::move(literal)});
    literal.clear();
    t.parts_.push_back({field, ""});
    pos = close;
  }
  if (!literal.empty()) t.parts_.push_back({Field::kLiteral, std::move(literal)});
  return t;
}

PromptTemplate::Field PromptTemplate::field_of(const std::string& placeholder) {
  if (placeholder == "prompt") return Field::kPrompt;
  if (placeholder == "rewrite") return Field::kRewrite;
  if (placeholder == "response") return Field::kResponse;
  return Field::kLiteral;  // not a placeholder
}

bool PromptTemplate::contains(const std::string& placeholder) const {
  Field field = field_of(placeholder);
  if (field == Field::kLiteral) return false;
  return std::any_of(parts_.begin(), parts_.end(), [&](const Part& p) { return p.field == field; });
}

void PromptTemplate::require(const std::string& placeholder) const {
  if (!contains(placeholder)) {
    throw InputError(name_ + ": the template \"" + text_ + "\" must contain {" + placeholder + "}");
  }
}

std::string PromptTemplate::render(const TemplateFields& fields) const {
  std::string out;
  for (const Part& part : parts_) {
    switch (part.field) {
      case Field::kLiteral:
        out += part.literal;
        break;
      case Field::kPrompt:
        out += fields.prompt;
        break;
      case Field::kRewrite:
        out += fields.rewrite;
        break;
      case Field::kResponse:
        out += fields.response;
        break;
    }
  }
  return out;
}

ChatFormat parse_chat_format(const std::string& name, const std::string& key) {
  if (name == "none") return ChatFormat::kNone;
  if (name == "chatml") return ChatFormat::kChatMl;
  if (name == "llama3") return ChatFormat::kLlama3;
  if (name == "llama2") return ChatFormat::kLlama2;
  throw InputError(key + ": unknown chat format \"" + name +
                   "\"; allowed: none, chatml, llama3, llama2");
}

std::string chat_format_name(ChatFormat format) {
  switch (format) {
    case ChatFormat::kNone:
      return "none";
    case ChatFormat::kChatMl:
      return "chatml";
    case ChatFormat::kLlama3:
      return "llama3";
    case ChatFormat::kLlama2:
      return "llama2";
  }
  return "none";
}

std::string apply_chat_format(ChatFormat format, const std::string& user_message,
                              const ChatOptions& options) {
  const std::optional<std::string>& system = options.system_message;
  switch (format) {
    case ChatFormat::kNone:
      return user_message;
    case ChatFormat::kChatMl: {
      std::string out;
      if (system) out += "<|im_start|>system\n" + *system + "<|im_end|>\n";
      return out + "<|im_start|>user\n" + user_message + "<|im_end|>\n<|im_start|>assistant\n";
    }
    case ChatFormat::kLlama3: {
      std::string out = options.bos_token.empty() ? "<|begin_of_text|>" : options.bos_token;
      auto turn = [](const std::string& role, const std::string& content) {
        return "<|start_header_id|>" + role + "<|end_header_id|>\n\n" +
               text::python_strip(content) + "<|eot_id|>";
      };
      if (system) out += turn("system", *system);
      return out + turn("user", user_message) + "<|start_header_id|>assistant<|end_header_id|>\n\n";
    }
    case ChatFormat::kLlama2: {
      // The system message goes inside the first [INST], and the whole content is stripped.
      std::string content =
          system ? "<<SYS>>\n" + *system + "\n<</SYS>>\n\n" + user_message : user_message;
      std::string bos = options.bos_token.empty() ? "<s>" : options.bos_token;
      return bos + "[INST] " + text::python_strip(content) + " [/INST]";
    }
  }
  return user_message;
}

PromptFormat::PromptFormat(PromptTemplate prompt_template, ChatFormat chat, ChatOptions options)
    : template_(std::move(prompt_template)), chat_(chat), options_(std::move(options)) {}

std::string PromptFormat::render(const TemplateFields& fields) const {
  return apply_chat_format(chat_, template_.render(fields), options_);
}

}  // namespace alignpro
