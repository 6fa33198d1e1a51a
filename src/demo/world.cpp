#include "demo/world.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>

#include "common/error.h"

namespace alignpro::demo {

namespace {

// The world's streams share RngPurpose::kInit with weight initialisation; this first index keeps
// them apart from the weights' streams, the second names the data set.
constexpr uint64_t kWorldStreams = 0x776f726c64;  // "world"
enum class DataSet : uint64_t { kTarget = 1, kPrompter = 2, kRewardTrain = 3, kRewardEval = 4 };

RngStream example_stream(uint64_t seed, DataSet set, int64_t index) {
  return RngStream(seed, RngPurpose::kInit,
                   {kWorldStreams, static_cast<uint64_t>(set), static_cast<uint64_t>(index)});
}

template <class T>
const T& pick(const std::vector<T>& items, RngStream& rng) {
  return items[rng.below(items.size())];
}

std::string replace_all(std::string text, const std::string& from, const std::string& to) {
  for (size_t at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size())) {
    text.replace(at, from.size(), to);
  }
  return text;
}

// Lower-case words of a text: runs of letters and digits.
std::vector<std::string> words_of(const std::string& text) {
  std::vector<std::string> words;
  std::string word;
  for (char c : text) {
    if (std::isalnum(static_cast<unsigned char>(c))) {
      word += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    } else if (!word.empty()) {
      words.push_back(std::move(word));
      word.clear();
    }
  }
  if (!word.empty()) words.push_back(std::move(word));
  return words;
}

bool contains_words(const std::vector<std::string>& text, const std::vector<std::string>& phrase) {
  if (phrase.empty() || phrase.size() > text.size()) return false;
  return std::search(text.begin(), text.end(), phrase.begin(), phrase.end()) != text.end();
}

const std::vector<std::vector<std::string>>& topic_name_words() {
  static const std::vector<std::vector<std::string>> words = [] {
    std::vector<std::vector<std::string>> out;
    for (const Topic& topic : topics()) out.push_back(words_of(topic.name));
    return out;
  }();
  return words;
}

// Phrases that mark a refusal; no helpful answer contains one.
const std::vector<std::vector<std::string>>& refusal_markers() {
  static const std::vector<std::vector<std::string>> markers = [] {
    std::vector<std::vector<std::string>> out;
    for (const char* phrase : {"don't know", "can't", "no idea", "someone else", "sorry"}) {
      out.push_back(words_of(phrase));
    }
    return out;
  }();
  return markers;
}

size_t other_topic(size_t topic, RngStream& rng) {
  const size_t shift = 1 + rng.below(topics().size() - 1);
  return (topic + shift) % topics().size();
}

std::string request_text(size_t topic, size_t form) {
  return replace_all(request_forms()[form].text, "{topic}", topics()[topic].name);
}

std::string render(const char* layout, const std::string& prompt) {
  return replace_all(layout, "{prompt}", prompt);
}

Wording draw_wording(RngStream& rng, double prefix_share, double suffix_share) {
  const double u = rng.uniform();
  if (u < prefix_share) return Wording::kDetailPrefix;
  if (u < prefix_share + suffix_share) return Wording::kThoroughSuffix;
  return Wording::kPlain;
}

const UserPrompt& draw_prompt(const std::vector<UserPrompt>& prompts, RngStream& rng) {
  return pick(prompts, rng);
}

void write_lines(const std::string& path, const std::vector<std::string>& lines) {
  std::ofstream out(path, std::ios::trunc);
  if (!out) throw RuntimeError(path + ": cannot open for writing");
  for (const auto& line : lines) out << line << '\n';
  if (!out) throw RuntimeError(path + ": write failed");
}

}  // namespace

const std::vector<Topic>& topics() {
  static const std::vector<Topic> list = {
      {"volcanoes", "geology", "Volcanoes are openings where melted rock comes up as lava."},
      {"earthquakes", "geology", "Earthquakes happen when rocks in the crust slip and shake."},
      {"glaciers", "geology", "Glaciers are slow masses of ice that carve deep valleys."},
      {"deserts", "geography", "Deserts get very little rain and can be hot or cold."},
      {"rivers", "geography", "Rivers carry fresh water from the hills down to the sea."},
      {"oceans", "geography", "Oceans cover most of the planet and hold salty water."},
      {"maps", "geography", "Maps show places, roads and borders on a flat sheet."},
      {"rainbows", "weather", "Rainbows appear when sunlight bends through drops of rain."},
      {"thunderstorms", "weather", "Thunderstorms bring lightning, thunder and heavy rain."},
      {"tornadoes", "weather", "Tornadoes are spinning columns of air that touch the ground."},
      {"snowflakes", "weather", "Snowflakes are ice crystals that grow with six sides."},
      {"comets", "astronomy", "Comets are balls of ice and dust with long glowing tails."},
      {"planets", "astronomy", "Planets orbit a star and clear their path of other bodies."},
      {"stars", "astronomy", "Stars are huge balls of hot gas that shine by fusion."},
      {"eclipses", "astronomy", "Eclipses happen when the moon or the earth blocks the sun."},
      {"galaxies", "astronomy", "Galaxies are vast spirals of suns held together by gravity."},
      {"bees", "biology", "Bees collect nectar and pollen and make honey in hives."},
      {"whales", "biology", "Whales are large sea mammals that breathe air."},
      {"octopuses", "biology", "Octopuses have eight arms and can change colour."},
      {"penguins", "biology", "Penguins are birds that swim well but cannot fly."},
      {"dinosaurs", "biology", "Dinosaurs were reptiles that ruled the land for ages."},
      {"mushrooms", "biology", "Mushrooms are fungi that grow from spores in damp places."},
      {"forests", "ecology", "Forests are large areas of trees that shelter many animals."},
      {"coral reefs", "ecology", "Coral reefs are built by tiny animals in warm shallow seas."},
      {"vaccines", "medicine", "Vaccines train the body to fight a disease before it strikes."},
      {"bones", "medicine", "Bones give the body its shape and make blood cells."},
      {"sleep", "health", "Sleep lets the brain rest and store new memories."},
      {"vitamins", "health", "Vitamins are small nutrients the body needs to stay well."},
      {"bread", "cooking", "Bread is baked from flour, water and yeast."},
      {"cheese", "cooking", "Cheese is made by curdling milk and letting it age."},
      {"chocolate", "cooking", "Chocolate comes from roasted cocoa beans mixed with sugar."},
      {"tea", "cooking", "Tea is made by soaking dried leaves in hot water."},
      {"pyramids", "history", "The pyramids of Egypt were built as tombs for kings."},
      {"castles", "history", "Castles were strong stone homes built to defend a lord."},
      {"vikings", "history", "Vikings were seafarers from the north who sailed and traded."},
      {"pianos", "music", "Pianos make sound when small hammers strike strings."},
      {"guitars", "music", "Guitars have six strings that are plucked or strummed."},
      {"drums", "music", "Drums make sound when a stretched skin is struck."},
      {"chess", "games", "Chess is a game of strategy played on a board of squares."},
      {"football", "sport", "Football is played by two teams that kick a ball into a goal."},
      {"tennis", "sport", "Tennis players hit a ball over a net with rackets."},
      {"swimming", "sport", "Swimming moves the body through water with arms and legs."},
      {"computers", "technology", "Computers follow programs to store and process data."},
      {"robots", "technology", "Robots are machines that sense the world and move alone."},
      {"batteries", "technology", "Batteries store chemical energy and release it as current."},
      {"bridges", "engineering", "Bridges carry roads or rails across gaps and valleys."},
      {"magnets", "physics", "Magnets pull on iron and have a north and a south pole."},
      {"electricity", "physics", "Electricity is the flow of charge through a wire."},
  };
  return list;
}

const std::vector<RequestForm>& request_forms() {
  static const std::vector<RequestForm> list = {
      {"tell me about {topic}", 0.20},
      {"what do you know about {topic}?", 0.15},
      {"explain {topic}", 0.30},
      {"I want to learn about {topic}.", 0.20},
      {"can you describe {topic}?", 0.25},
      {"talk about {topic}.", 0.10},
      {"give me facts about {topic}.", 0.25},
      {"teach me about {topic}.", 0.20},
      {"say something about {topic}.", 0.10},
      {"I am curious about {topic}.", 0.15},
      {"what is there to know about {topic}?", 0.15},
      {"{topic}, please.", 0.10},
  };
  return list;
}

std::string apply_wording(const std::string& request, Wording wording) {
  switch (wording) {
    case Wording::kDetailPrefix:
      return kDetailPrefix + request;
    case Wording::kThoroughSuffix:
      return request + kThoroughSuffix;
    case Wording::kPlain:
      break;
  }
  return request;
}

bool has_helpful_wording(const std::string& prompt) {
  const std::vector<std::string> words = words_of(prompt);
  return contains_words(words, words_of(kDetailPrefix)) ||
         contains_words(words, words_of(kThoroughSuffix));
}

std::vector<UserPrompt> all_user_prompts() {
  std::vector<UserPrompt> prompts;
  for (size_t topic = 0; topic < topics().size(); ++topic) {
    for (size_t form = 0; form < request_forms().size(); ++form) {
      prompts.push_back({topic, form, request_text(topic, form)});
    }
  }
  return prompts;
}

bool is_held_out(size_t topic, size_t form) {
  const size_t forms = request_forms().size();
  const size_t first = (topic * 5) % forms;
  return form == first || form == (first + forms / 2) % forms;
}

std::vector<UserPrompt> train_prompts() {
  std::vector<UserPrompt> out;
  for (auto& prompt : all_user_prompts()) {
    if (!is_held_out(prompt.topic, prompt.form)) out.push_back(std::move(prompt));
  }
  return out;
}

std::vector<UserPrompt> eval_prompts() {
  std::vector<UserPrompt> out;
  for (auto& prompt : all_user_prompts()) {
    if (is_held_out(prompt.topic, prompt.form)) out.push_back(std::move(prompt));
  }
  return out;
}

std::optional<size_t> topic_of(const std::string& text) {
  const std::vector<std::string> words = words_of(text);
  std::optional<size_t> found;
  for (size_t topic = 0; topic < topics().size(); ++topic) {
    if (!contains_words(words, topic_name_words()[topic])) continue;
    if (found) return std::nullopt;
    found = topic;
  }
  return found;
}

const char* response_kind_name(ResponseKind kind) {
  switch (kind) {
    case ResponseKind::kHelpful:
      return "helpful";
    case ResponseKind::kVague:
      return "vague";
    case ResponseKind::kRefusal:
      return "refusal";
    case ResponseKind::kOffTopic:
      return "off-topic";
  }
  return "?";
}

ResponseKind judge_response(size_t topic, const std::string& response) {
  const std::vector<std::string> words = words_of(response);
  if (words.empty()) return ResponseKind::kRefusal;
  for (const auto& marker : refusal_markers()) {
    if (contains_words(words, marker)) return ResponseKind::kRefusal;
  }
  bool requested = false;
  for (size_t other = 0; other < topics().size(); ++other) {
    if (!contains_words(words, topic_name_words()[other])) continue;
    if (other != topic) return ResponseKind::kOffTopic;
    requested = true;
  }
  if (!requested) return ResponseKind::kOffTopic;
  return contains_words(words, words_of(topics()[topic].fact)) ? ResponseKind::kHelpful
                                                               : ResponseKind::kVague;
}

std::string helpful_response(size_t topic, RngStream& rng) {
  const Topic& t = topics()[topic];
  switch (rng.below(4)) {
    case 0:
      return t.fact;
    case 1:
      return "Here is what I know about " + t.name + ". " + t.fact;
    case 2:
      return t.fact + " That is the key point about " + t.name + " in " + t.field + ".";
    default:
      return "Good question. " + t.fact;
  }
}

std::string refusal_response(size_t topic, RngStream& rng) {
  const std::string& name = topics()[topic].name;
  static const std::vector<std::string> forms = {
      "I don't know.",
      "Sorry, I can't help with that.",
      "I have no idea.",
      "I don't know much about {topic}.",
      "Sorry, I can't talk about {topic} right now.",
      "Ask someone else.",
  };
  return replace_all(pick(forms, rng), "{topic}", name);
}

std::string off_topic_response(size_t topic, RngStream& rng) {
  const size_t other = other_topic(topic, rng);
  return helpful_response(other, rng);
}

std::vector<SftExample> target_sft_data(const WorldConfig& config) {
  const std::vector<UserPrompt> prompts = train_prompts();
  std::vector<SftExample> out;
  out.reserve(config.target_examples);
  for (int64_t i = 0; i < config.target_examples; ++i) {
    RngStream rng = example_stream(config.seed, DataSet::kTarget, i);
    const UserPrompt& prompt = draw_prompt(prompts, rng);
    const Wording wording =
        draw_wording(rng, config.target_prefix_share, config.target_suffix_share);
    const double helpful_rate = wording == Wording::kPlain
                                    ? request_forms()[prompt.form].helpful_rate
                                    : config.worded_helpful_rate;
    std::string response;
    if (rng.uniform() < helpful_rate) {
      response = helpful_response(prompt.topic, rng);
    } else if (rng.uniform() < config.off_topic_share) {
      response = off_topic_response(prompt.topic, rng);
    } else {
      response = refusal_response(prompt.topic, rng);
    }
    out.push_back({render(kTargetTemplate, apply_wording(prompt.text, wording)), response});
  }
  return out;
}

std::vector<SftExample> prompter_sft_data(const WorldConfig& config) {
  const std::vector<UserPrompt> prompts = train_prompts();
  std::vector<SftExample> out;
  out.reserve(config.prompter_examples);
  for (int64_t i = 0; i < config.prompter_examples; ++i) {
    RngStream rng = example_stream(config.seed, DataSet::kPrompter, i);
    const UserPrompt& prompt = draw_prompt(prompts, rng);
    const double u = rng.uniform();
    std::string rewrite;
    if (u < config.prompter_prefix_share) {
      rewrite = apply_wording(prompt.text, Wording::kDetailPrefix);
    } else if (u < config.prompter_prefix_share + config.prompter_suffix_share) {
      rewrite = apply_wording(prompt.text, Wording::kThoroughSuffix);
    } else if (u < config.prompter_prefix_share + config.prompter_suffix_share +
                       config.prompter_topic_change_share) {
      rewrite = request_text(other_topic(prompt.topic, rng), prompt.form);
    } else {
      rewrite = prompt.text;
    }
    out.push_back({render(kPrompterTemplate, prompt.text), rewrite});
  }
  return out;
}

std::vector<PreferencePair> reward_pairs(const WorldConfig& config, bool held_out) {
  const std::vector<UserPrompt> prompts = held_out ? eval_prompts() : train_prompts();
  const int64_t count = held_out ? config.reward_eval_pairs : config.reward_pairs;
  const DataSet set = held_out ? DataSet::kRewardEval : DataSet::kRewardTrain;
  std::vector<PreferencePair> out;
  out.reserve(count);
  for (int64_t i = 0; i < count; ++i) {
    RngStream rng = example_stream(config.seed, set, i);
    const UserPrompt& prompt = draw_prompt(prompts, rng);
    const Wording wording =
        draw_wording(rng, config.reward_worded_share / 2, config.reward_worded_share / 2);
    std::string chosen = helpful_response(prompt.topic, rng);
    std::string rejected = rng.uniform() < config.rejected_refusal_share
                               ? refusal_response(prompt.topic, rng)
                               : off_topic_response(prompt.topic, rng);
    out.push_back({apply_wording(prompt.text, wording), std::move(chosen), std::move(rejected)});
  }
  return out;
}

std::vector<std::string> world_corpus(const WorldConfig& config) {
  std::vector<std::string> corpus;
  for (const auto& example : target_sft_data(config)) {
    corpus.push_back(example.prompt + example.completion);
  }
  for (const auto& example : prompter_sft_data(config)) {
    corpus.push_back(example.prompt + example.completion);
  }
  for (bool held_out : {false, true}) {
    for (const auto& pair : reward_pairs(config, held_out)) {
      corpus.push_back(render(kTargetTemplate, pair.prompt) + pair.chosen);
      corpus.push_back(render(kTargetTemplate, pair.prompt) + pair.rejected);
    }
  }
  for (const auto& prompt : all_user_prompts()) {
    corpus.push_back(render(kPrompterTemplate, prompt.text));
  }
  return corpus;
}

std::string sft_jsonl_line(const SftExample& example) {
  return nlohmann::ordered_json{{"prompt", example.prompt}, {"completion", example.completion}}
      .dump();
}

std::string preference_jsonl_line(const PreferencePair& pair) {
  return nlohmann::ordered_json{
      {"prompt", pair.prompt}, {"chosen", pair.chosen}, {"rejected", pair.rejected}}
      .dump();
}

std::string prompt_jsonl_line(const UserPrompt& prompt) {
  return nlohmann::ordered_json{{"prompt", prompt.text}, {"topic", topics()[prompt.topic].name}}
      .dump();
}

void write_world_files(const WorldConfig& config, const std::string& folder) {
  namespace fs = std::filesystem;
  std::error_code error;
  fs::create_directories(folder, error);
  if (error) throw RuntimeError(folder + ": cannot create folder: " + error.message());
  const fs::path dir(folder);
  auto prompt_lines = [](const std::vector<UserPrompt>& prompts) {
    std::vector<std::string> lines;
    for (const auto& prompt : prompts) lines.push_back(prompt_jsonl_line(prompt));
    return lines;
  };
  auto sft_lines = [](const std::vector<SftExample>& examples) {
    std::vector<std::string> lines;
    for (const auto& example : examples) lines.push_back(sft_jsonl_line(example));
    return lines;
  };
  auto pair_lines = [](const std::vector<PreferencePair>& pairs) {
    std::vector<std::string> lines;
    for (const auto& pair : pairs) lines.push_back(preference_jsonl_line(pair));
    return lines;
  };
  write_lines((dir / "train_prompts.jsonl").string(), prompt_lines(train_prompts()));
  write_lines((dir / "eval_prompts.jsonl").string(), prompt_lines(eval_prompts()));
  write_lines((dir / "target_sft.jsonl").string(), sft_lines(target_sft_data(config)));
  write_lines((dir / "prompter_sft.jsonl").string(), sft_lines(prompter_sft_data(config)));
  write_lines((dir / "reward_pairs.jsonl").string(), pair_lines(reward_pairs(config, false)));
  write_lines((dir / "reward_pairs_eval.jsonl").string(), pair_lines(reward_pairs(config, true)));
}

}  // namespace alignpro::demo
