// Malformed and unsupported tokenizer files: each must fail at load with an InputError that
// names the file, the field and the value, never crash or load something half-working.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <functional>
#include <string>

#include "common/error.h"
#include "text/tokenizer.h"

namespace alignpro {
namespace {

using nlohmann::json;

const std::string kFixtures = std::string(ALIGNPRO_TEST_DATA) + "/fixtures/tokenizers";

json read_json(const std::string& path) {
  std::ifstream in(path);
  return json::parse(in);
}

std::string write_file(const std::string& name, const std::string& content) {
  std::string path = ::testing::TempDir() + "alignpro_text_" + name;
  std::ofstream(path, std::ios::binary) << content;
  return path;
}

// The InputError message of loading tokenizer.json (and config) from these contents.
std::string load_error(const std::string& name, const std::string& tokenizer_json,
                       const std::string& config_json = "") {
  std::string path = write_file(name + ".json", tokenizer_json);
  std::string config = config_json.empty() ? "" : write_file(name + "_config.json", config_json);
  try {
    Tokenizer::from_files(path, config);
  } catch (const InputError& e) {
    return e.what();
  }
  ADD_FAILURE() << name << ": loaded without an error";
  return "";
}

// A fixture's tokenizer.json changed by edit, as a string.
std::string edited(const std::string& family, const std::function<void(json&)>& edit) {
  json data = read_json(kFixtures + "/" + family + "/tokenizer.json");
  edit(data);
  return data.dump();
}

#define EXPECT_MESSAGE_HAS(message, part) \
  EXPECT_NE((message).find(part), std::string::npos) << "message: " << (message)

TEST(TokenizerErrors, MalformedJsonNamesTheFileAndBytePosition) {
  std::string good = edited("gpt2", [](json&) {});
  std::string message = load_error("truncated", good.substr(0, good.size() / 2));
  EXPECT_MESSAGE_HAS(message, "truncated.json");
  EXPECT_MESSAGE_HAS(message, "invalid JSON at byte");
  // The parser stops a character or two into the bad literal, which starts at byte 10.
  std::string garbage = load_error("garbage", "{\"model\": nope}");
  size_t at = garbage.find("invalid JSON at byte ");
  ASSERT_NE(at, std::string::npos) << garbage;
  int byte = std::stoi(garbage.substr(at + 21));
  EXPECT_GE(byte, 10) << garbage;
  EXPECT_LE(byte, 14) << garbage;
}

TEST(TokenizerErrors, MissingFileAndFolderAreNamed) {
  try {
    Tokenizer::from_files(::testing::TempDir() + "no_such_tokenizer.json");
    ADD_FAILURE() << "loaded a missing file";
  } catch (const InputError& e) {
    EXPECT_MESSAGE_HAS(std::string(e.what()), "no_such_tokenizer.json");
  }
  std::string folder = ::testing::TempDir() + "alignpro_empty_model_folder";
  std::filesystem::create_directories(folder);
  try {
    Tokenizer::from_folder(folder);
    ADD_FAILURE() << "loaded an empty folder";
  } catch (const InputError& e) {
    EXPECT_MESSAGE_HAS(std::string(e.what()), "no tokenizer.json");
  }
}

TEST(TokenizerErrors, TopLevelThatIsNotAnObjectIsRejected) {
  EXPECT_MESSAGE_HAS(load_error("array", "[1, 2, 3]"), "expected a JSON object");
}

TEST(TokenizerErrors, MissingModelIsNamed) {
  std::string message = load_error("no_model", edited("gpt2", [](json& d) { d.erase("model"); }));
  EXPECT_MESSAGE_HAS(message, "no_model.json: field model: missing");
}

TEST(TokenizerErrors, UnknownModelTypeListsWhatIsSupported) {
  std::string message =
      load_error("wordpiece", edited("gpt2", [](json& d) { d["model"]["type"] = "WordPiece"; }));
  EXPECT_MESSAGE_HAS(message, "field model.type is \"WordPiece\"");
  EXPECT_MESSAGE_HAS(message, "supported: BPE");
}

TEST(TokenizerErrors, MergeNamingAnUnknownTokenIsNamed) {
  std::string message = load_error("bad_merge", edited("llama2", [](json& d) {
                                     d["model"]["merges"][5] = json::array({"nosuch", "▁"});
                                   }));
  EXPECT_MESSAGE_HAS(message, "field model.merges[5]");
  EXPECT_MESSAGE_HAS(message, "\"nosuch\", which is not in model.vocab");
}

TEST(TokenizerErrors, MalformedMergeLineIsNamed) {
  std::string message = load_error(
      "merge_line", edited("gpt2", [](json& d) { d["model"]["merges"] = json::array({"a b c"}); }));
  EXPECT_MESSAGE_HAS(message, "field model.merges[0]");
  EXPECT_MESSAGE_HAS(message, "\"a b c\"");
}

TEST(TokenizerErrors, BadVocabularyIdsAreNamed) {
  std::string negative =
      load_error("negative_id", edited("gpt2", [](json& d) { d["model"]["vocab"]["zzz"] = -3; }));
  EXPECT_MESSAGE_HAS(negative, "field model.vocab.zzz");
  EXPECT_MESSAGE_HAS(negative, "-3");
  std::string text_id =
      load_error("text_id", edited("gpt2", [](json& d) { d["model"]["vocab"]["zzz"] = "seven"; }));
  EXPECT_MESSAGE_HAS(text_id, "expected a token id");
}

TEST(TokenizerErrors, UnsupportedComponentsListWhatIsSupported) {
  struct Case {
    const char* name;
    std::function<void(json&)> edit;
    const char* field;
    const char* value;
    const char* supported;
  };
  const Case cases[] = {
      {"pre_whitespace",
       [](json& d) {
         d["pre_tokenizer"] = {{"type", "Whitespace"}};
       },
       "field pre_tokenizer.type", "\"Whitespace\"", "ByteLevel, Split, Metaspace"},
      {"norm_nfkc",
       [](json& d) {
         d["normalizer"] = {{"type", "NFKC"}};
       },
       "field normalizer.type", "\"NFKC\"", "NFC, NFD, Prepend"},
      {"dec_wordpiece",
       [](json& d) {
         d["decoder"] = {{"type", "WordPiece"}};
       },
       "field decoder.type", "\"WordPiece\"", "ByteLevel, Metaspace"},
      {"post_unknown",
       [](json& d) {
         d["post_processor"] = {{"type", "Magic"}};
       },
       "field post_processor.type", "\"Magic\"", "TemplateProcessing"},
      {"dropout", [](json& d) { d["model"]["dropout"] = 0.1; }, "field model.dropout", "0.1",
       "null or 0"},
      {"version", [](json& d) { d["version"] = "2.0"; }, "field version", "\"2.0\"", "1.0"},
      {"behavior", [](json& d) { d["pre_tokenizer"]["pretokenizers"][0]["behavior"] = "Sideways"; },
       "field pre_tokenizer.pretokenizers[0].behavior", "\"Sideways\"", "Removed, Isolated"},
      {"sequence_b",
       [](json& d) { d["post_processor"]["processors"][1]["single"][1]["Sequence"]["id"] = "B"; },
       "field post_processor.processors[1].single[1].Sequence.id", "\"B\"", "A"},
  };
  for (const Case& c : cases) {
    std::string family = std::string(c.name) == "behavior" || std::string(c.name) == "sequence_b"
                             ? "llama3"
                             : "gpt2";
    std::string message = load_error(c.name, edited(family, c.edit));
    EXPECT_MESSAGE_HAS(message, std::string(c.name) + ".json");
    EXPECT_MESSAGE_HAS(message, std::string(c.field) + " is " + c.value);
    EXPECT_MESSAGE_HAS(message, std::string("supported: ") + c.supported);
  }
}

TEST(TokenizerErrors, InvalidRegexNamesThePatternAndField) {
  std::string message =
      load_error("bad_regex", edited("llama3", [](json& d) {
                   d["pre_tokenizer"]["pretokenizers"][0]["pattern"] = {{"Regex", "(unclosed[a-"}};
                 }));
  EXPECT_MESSAGE_HAS(message, "field pre_tokenizer.pretokenizers[0].pattern.Regex");
  EXPECT_MESSAGE_HAS(message, "(unclosed[a-");
  EXPECT_MESSAGE_HAS(message, "not a valid regular expression");
}

TEST(TokenizerErrors, WrongFieldTypesAreNamed) {
  std::string message = load_error(
      "flag_type", edited("llama2", [](json& d) { d["model"]["byte_fallback"] = "yes"; }));
  EXPECT_MESSAGE_HAS(message, "field model.byte_fallback: expected true or false");
  std::string merges =
      load_error("merges_type", edited("gpt2", [](json& d) { d["model"]["merges"] = 7; }));
  EXPECT_MESSAGE_HAS(merges, "field model.merges: expected an array");
  std::string metaspace = load_error(
      "metaspace", edited("mistral", [](json& d) { d["pre_tokenizer"]["replacement"] = "__"; }));
  EXPECT_MESSAGE_HAS(metaspace, "field pre_tokenizer.replacement: expected one character");
}

TEST(TokenizerErrors, DeeplyNestedSequencesAreRefused) {
  std::string message = load_error("nested", edited("gpt2", [](json& d) {
                                     json decoder = {{"type", "Fuse"}};
                                     for (int i = 0; i < 40; ++i) {
                                       decoder = {{"type", "Sequence"}, {"decoders", {decoder}}};
                                     }
                                     d["decoder"] = decoder;
                                   }));
  EXPECT_MESSAGE_HAS(message, "nest more than 16 levels deep");
}

TEST(TokenizerErrors, UnknownTokenMissingFromTheVocabularyIsNamed) {
  std::string message =
      load_error("unk", edited("llama2", [](json& d) { d["model"]["unk_token"] = "<missing>"; }));
  EXPECT_MESSAGE_HAS(message, "field model.unk_token");
  EXPECT_MESSAGE_HAS(message, "\"<missing>\"");
}

TEST(TokenizerErrors, AddedTokenWithoutContentIsNamed) {
  std::string message =
      load_error("added", edited("gpt2", [](json& d) { d["added_tokens"][0].erase("content"); }));
  EXPECT_MESSAGE_HAS(message, "field added_tokens[0].content");
}

TEST(TokenizerErrors, TemplateWithAnUndefinedSpecialTokenIsNamed) {
  std::string message = load_error("template", edited("mistral", [](json& d) {
                                     d["post_processor"]["special_tokens"].erase("<s>");
                                   }));
  EXPECT_MESSAGE_HAS(message, "field post_processor.special_tokens.<s>: missing");
}

TEST(TokenizerErrors, ConfigErrorsNameTheConfigFile) {
  std::string tokenizer = edited("llama2", [](json&) {});
  std::string unknown_bos = load_error("cfg_bos", tokenizer, R"({"bos_token": "<nope>"})");
  EXPECT_MESSAGE_HAS(unknown_bos, "cfg_bos_config.json: field bos_token");
  EXPECT_MESSAGE_HAS(unknown_bos, "\"<nope>\" is not in the vocabulary");
  EXPECT_MESSAGE_HAS(load_error("cfg_json", tokenizer, R"({"bos_token": )"),
                     "cfg_json_config.json: invalid JSON at byte");
  EXPECT_MESSAGE_HAS(load_error("cfg_llama", tokenizer, R"({"tokenizer_class": "LlamaTokenizer"})"),
                     "field add_bos_token: true, but bos_token is not set");
  EXPECT_MESSAGE_HAS(load_error("cfg_type", tokenizer, R"({"eos_token": 5})"),
                     "field eos_token: expected a token string");
}

TEST(TokenizerErrors, TextThatIsNotUtf8IsAnInputError) {
  Tokenizer tok = Tokenizer::from_folder(kFixtures + "/gpt2");
  try {
    tok.encode("ok \xC3\x28 bad", true);
    ADD_FAILURE() << "encoded invalid UTF-8";
  } catch (const InputError& e) {
    EXPECT_MESSAGE_HAS(std::string(e.what()), "position 3");
  }
}

}  // namespace
}  // namespace alignpro
