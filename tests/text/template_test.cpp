// Prompt templates and chat formats. The chat formats are checked against the chat templates
// published with ChatML, Llama 3 and Llama 2 chat models, rendered by Jinja the way
// transformers renders them (fixtures/tokenizers/chat_formats.json).
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <string>

#include "common/error.h"
#include "text/template.h"

namespace alignpro {
namespace {

using nlohmann::json;

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

TEST(ChatFormat, MatchesTheModelsChatTemplates) {
  std::ifstream in(std::string(ALIGNPRO_TEST_DATA) + "/fixtures/tokenizers/chat_formats.json");
  json fixture = json::parse(in);
  ASSERT_GE(fixture["cases"].size(), 30u);
  for (const json& c : fixture["cases"]) {
    ChatOptions options;
    if (!c["system"].is_null()) options.system_message = c["system"].get<std::string>();
    ChatFormat format = parse_chat_format(c["format"], "test");
    std::string got = apply_chat_format(format, c["prompt"], options);
    EXPECT_EQ(got, c["text"].get<std::string>())
        << c["format"] << " prompt " << c["prompt"] << " system " << c["system"];
  }
}

TEST(ChatFormat, NoneLeavesTheTextAlone) {
  EXPECT_EQ(apply_chat_format(ChatFormat::kNone, "  as is \n"), "  as is \n");
}

TEST(ChatFormat, UsesTheTokenizersBosWhenGiven) {
  ChatOptions options;
  options.bos_token = "<BOS>";
  EXPECT_EQ(apply_chat_format(ChatFormat::kLlama2, "hi", options).rfind("<BOS>[INST] hi", 0), 0u);
  EXPECT_EQ(apply_chat_format(ChatFormat::kLlama3, "hi", options).rfind("<BOS><|start", 0), 0u);
}

TEST(ChatFormat, NamesRoundTripAndUnknownNamesAreErrors) {
  for (ChatFormat f :
       {ChatFormat::kNone, ChatFormat::kChatMl, ChatFormat::kLlama3, ChatFormat::kLlama2}) {
    EXPECT_EQ(parse_chat_format(chat_format_name(f), "k"), f);
  }
  std::string message = error_of([] { parse_chat_format("vicuna", "target.chat_format"); });
  EXPECT_NE(message.find("target.chat_format"), std::string::npos) << message;
  EXPECT_NE(message.find("\"vicuna\""), std::string::npos) << message;
  EXPECT_NE(message.find("none, chatml, llama3, llama2"), std::string::npos) << message;
}

TEST(PromptTemplate, FillsEveryPlaceholder) {
  PromptTemplate t = PromptTemplate::parse("Q: {prompt}\nR: {rewrite}\nA: {response}{prompt}", "t");
  EXPECT_EQ(t.render({"p", "w", "r"}), "Q: p\nR: w\nA: rp");
  EXPECT_TRUE(t.contains("rewrite"));
  EXPECT_FALSE(PromptTemplate::parse("{prompt}", "t").contains("response"));
}

TEST(PromptTemplate, DoubledBracesAreLiteralAndValuesAreNotReparsed) {
  PromptTemplate t = PromptTemplate::parse("{{json}} {{{prompt}}} }}", "t");
  EXPECT_EQ(t.render({"{response}", "", "no"}), "{json} {{response}} }");
}

TEST(PromptTemplate, UnknownPlaceholdersAndStrayBracesNameTheTemplate) {
  const std::pair<const char*, const char*> cases[] = {
      {"Say {promt}", "unknown placeholder {promt} at position 4"},
      {"open { brace", "unmatched { at position 5"},
      {"close } brace", "unmatched } at position 6"},
      {"{prompt", "unmatched { at position 0"},
      {"empty {}", "empty placeholder {} at position 6"},
      {"{a{prompt}}", "unmatched { at position 0"},
  };
  for (const auto& [text, what] : cases) {
    std::string message = error_of([&] { PromptTemplate::parse(text, "prompter.template"); });
    EXPECT_NE(message.find("prompter.template"), std::string::npos) << message;
    EXPECT_NE(message.find(what), std::string::npos) << message;
    EXPECT_NE(message.find("{prompt}, {rewrite}, {response}"), std::string::npos) << message;
  }
}

TEST(PromptTemplate, PlaceholdersOutsideTheAllowedSetAreErrors) {
  std::string message =
      error_of([] { PromptTemplate::parse("{prompt} {response}", "target.template", {"prompt"}); });
  EXPECT_NE(message.find("unknown placeholder {response}"), std::string::npos) << message;
  EXPECT_NE(message.find("allowed placeholders: {prompt} "), std::string::npos) << message;
}

TEST(PromptTemplate, RequireNamesTheMissingPlaceholder) {
  PromptTemplate t = PromptTemplate::parse("{prompt} only", "reward.template");
  EXPECT_NO_THROW(t.require("prompt"));
  std::string message = error_of([&] { t.require("response"); });
  EXPECT_NE(message.find("reward.template"), std::string::npos) << message;
  EXPECT_NE(message.find("must contain {response}"), std::string::npos) << message;
}

TEST(PromptFormat, WrapsTheTemplateInTheChatFormat) {
  PromptTemplate t = PromptTemplate::parse("Rewrite: {prompt}", "t");
  PromptFormat plain(t, ChatFormat::kNone);
  PromptFormat chat(t, ChatFormat::kChatMl);
  EXPECT_EQ(plain.render({"x", "", ""}), "Rewrite: x");
  EXPECT_TRUE(plain.add_special_tokens());
  EXPECT_EQ(chat.render({"x", "", ""}), apply_chat_format(ChatFormat::kChatMl, "Rewrite: x"));
  EXPECT_FALSE(chat.add_special_tokens());
}

}  // namespace
}  // namespace alignpro
