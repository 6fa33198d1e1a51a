#include "align/rewards.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <cmath>
#include <sstream>
#include <utility>

#include "align/utf8.h"
#include "common/error.h"

namespace alignpro {

namespace detail {

// A PCRE2 pattern in UTF mode with Unicode character classes; a match may start anywhere.
class CompiledPattern {
 public:
  CompiledPattern(const std::string& pattern, uint32_t extra_options, const std::string& key) {
    int error = 0;
    PCRE2_SIZE offset = 0;
    code_ = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                          PCRE2_UTF | PCRE2_UCP | extra_options, &error, &offset, nullptr);
    if (code_ == nullptr) {
      throw InputError(key + " = '" + pattern + "' is not a valid PCRE2 pattern: " +
                       message(error) + " at offset " + std::to_string(offset));
    }
    key_ = key;
  }
  ~CompiledPattern() { pcre2_code_free(code_); }
  CompiledPattern(const CompiledPattern&) = delete;
  CompiledPattern& operator=(const CompiledPattern&) = delete;

  // Whether text (which must be valid UTF-8) contains a match.
  bool found_in(const std::string& text) const {
    pcre2_match_data* match = pcre2_match_data_create_from_pattern(code_, nullptr);
    const int rc = pcre2_match(code_, reinterpret_cast<PCRE2_SPTR>(text.data()), text.size(), 0, 0,
                               match, nullptr);
    pcre2_match_data_free(match);
    if (rc >= 0) return true;
    if (rc == PCRE2_ERROR_NOMATCH) return false;
    // Match or depth limits: the pattern backtracks too much for this response.
    throw RuntimeError(key_ + ": matching a response failed: " + message(rc));
  }

 private:
  static std::string message(int code) {
    PCRE2_UCHAR buffer[256] = {};
    pcre2_get_error_message(code, buffer, sizeof(buffer));
    return reinterpret_cast<const char*>(buffer);
  }

  pcre2_code* code_ = nullptr;
  std::string key_;
};

}  // namespace detail

namespace {

void check_pairs(const std::vector<std::string>& prompts,
                 const std::vector<std::string>& responses) {
  if (prompts.size() != responses.size()) {
    throw RuntimeError("a reward was asked to score " + std::to_string(responses.size()) +
                       " responses with " + std::to_string(prompts.size()) + " prompts");
  }
}

std::vector<std::string> split_words(const std::string& text) {
  std::istringstream in(text);
  std::vector<std::string> words;
  for (std::string word; in >> word;) words.push_back(word);
  return words;
}

// A literal inside \Q...\E; a literal "\E" has to leave the quoted run and come back.
std::string quote(const std::string& literal) {
  std::string out = "\\Q";
  for (size_t i = 0; i < literal.size(); ++i) {
    if (literal.compare(i, 2, "\\E") == 0) {
      out += "\\E\\\\E\\Q";
      ++i;
    } else {
      out += literal[i];
    }
  }
  return out + "\\E";
}

// A keyword as a whole-word pattern: its words in order, any whitespace between them.
std::string keyword_pattern(const std::string& keyword, size_t index) {
  const std::string key = "reward.keywords[" + std::to_string(index) + "]";
  if (utf8_error_offset(keyword) != std::string::npos) {
    throw InputError(key + " is not valid UTF-8");
  }
  const auto words = split_words(keyword);
  if (words.empty()) throw InputError(key + " = '" + keyword + "' is blank; give a word");
  std::string pattern = "(?<!\\w)";
  for (size_t i = 0; i < words.size(); ++i) pattern += (i ? "\\s+" : "") + quote(words[i]);
  return pattern + "(?!\\w)";
}

int64_t count_words(const std::string& text) {
  int64_t words = 0;
  bool in_word = false;
  for (unsigned char c : text) {
    const bool space = c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
    if (!space && !in_word) ++words;
    in_word = !space;
  }
  return words;
}

std::string format_weight(double weight) {
  std::ostringstream out;
  out << weight;
  return out.str();
}

}  // namespace

KeywordReward::KeywordReward(std::vector<std::string> keywords) {
  if (keywords.empty()) {
    throw InputError("reward.keywords is empty; reward.kind = keywords needs at least one");
  }
  for (size_t i = 0; i < keywords.size(); ++i) {
    patterns_.push_back(
        std::make_unique<detail::CompiledPattern>(keyword_pattern(keywords[i], i), PCRE2_CASELESS,
                                                  "reward.keywords[" + std::to_string(i) + "]"));
  }
}

KeywordReward::~KeywordReward() = default;

std::vector<double> KeywordReward::score(const std::vector<std::string>& prompts,
                                         const std::vector<std::string>& responses) {
  check_pairs(prompts, responses);
  std::vector<double> rewards;
  rewards.reserve(responses.size());
  for (const std::string& response : responses) {
    const std::string text = to_valid_utf8(response);
    int64_t found = 0;
    for (const auto& pattern : patterns_) found += pattern->found_in(text) ? 1 : 0;
    rewards.push_back(static_cast<double>(found) / static_cast<double>(patterns_.size()));
  }
  return rewards;
}

LengthReward::LengthReward(int64_t min_words, int64_t max_words)
    : min_words_(min_words), max_words_(max_words) {
  if (min_words < 0 || min_words > max_words) {
    throw InputError("reward.length_min = " + std::to_string(min_words) +
                     " and reward.length_max = " + std::to_string(max_words) +
                     " leave no length; need 0 <= length_min <= length_max");
  }
}

std::vector<double> LengthReward::score(const std::vector<std::string>& prompts,
                                        const std::vector<std::string>& responses) {
  check_pairs(prompts, responses);
  std::vector<double> rewards;
  rewards.reserve(responses.size());
  for (const std::string& response : responses) {
    const int64_t words = count_words(response);
    rewards.push_back(words >= min_words_ && words <= max_words_ ? 1.0 : 0.0);
  }
  return rewards;
}

RegexReward::RegexReward(const std::string& pattern, const std::string& key) {
  if (pattern.empty()) throw InputError(key + " is empty; reward.kind = regex needs a pattern");
  pattern_ = std::make_unique<detail::CompiledPattern>(pattern, 0, key);
}

RegexReward::~RegexReward() = default;

std::vector<double> RegexReward::score(const std::vector<std::string>& prompts,
                                       const std::vector<std::string>& responses) {
  check_pairs(prompts, responses);
  std::vector<double> rewards;
  rewards.reserve(responses.size());
  for (const std::string& response : responses) {
    rewards.push_back(pattern_->found_in(to_valid_utf8(response)) ? 1.0 : 0.0);
  }
  return rewards;
}

void WeightedSumReward::add(std::unique_ptr<RewardFunction> term, double weight) {
  terms_.push_back(std::move(term));
  weights_.push_back(weight);
}

std::vector<double> WeightedSumReward::score(const std::vector<std::string>& prompts,
                                             const std::vector<std::string>& responses) {
  check_pairs(prompts, responses);
  std::vector<double> total(responses.size(), 0.0);
  for (size_t t = 0; t < terms_.size(); ++t) {
    const std::vector<double> part = terms_[t]->score(prompts, responses);
    for (size_t i = 0; i < total.size(); ++i) total[i] += weights_[t] * part.at(i);
  }
  return total;
}

std::string WeightedSumReward::describe() const {
  std::string text;
  for (size_t t = 0; t < terms_.size(); ++t) {
    text += (t ? " + " : "") + format_weight(weights_[t]) + "*" + terms_[t]->describe();
  }
  return text;
}

namespace {

std::unique_ptr<RewardFunction> make_term(const std::string& kind, const std::string& key,
                                          const RewardConfig& config,
                                          const ModelRewardFactory& model_reward) {
  if (kind == "keywords") return std::make_unique<KeywordReward>(config.keywords);
  if (kind == "length") return std::make_unique<LengthReward>(config.length_min, config.length_max);
  if (kind == "regex") return std::make_unique<RegexReward>(config.regex);
  if (kind == "model") {
    if (!model_reward) {
      throw InputError(key + " = 'model' needs a reward model, which this command does not load");
    }
    return model_reward();
  }
  throw InputError(key + " = '" + kind + "' is not a reward kind; allowed: model, keywords, " +
                   "length, regex" + (key == "reward.kind" ? ", sum" : ""));
}

std::unique_ptr<RewardFunction> make_sum(const RewardConfig& config,
                                         const ModelRewardFactory& model_reward) {
  if (config.terms.empty()) {
    throw InputError("reward.terms is empty; reward.kind = sum needs at least one term");
  }
  if (config.weights.size() != config.terms.size()) {
    throw InputError("reward.weights has " + std::to_string(config.weights.size()) +
                     " values but reward.terms has " + std::to_string(config.terms.size()) +
                     " terms; give one weight per term");
  }
  auto sum = std::make_unique<WeightedSumReward>();
  for (size_t t = 0; t < config.terms.size(); ++t) {
    const std::string key = "reward.terms[" + std::to_string(t) + "]";
    if (!std::isfinite(config.weights[t])) {
      throw InputError("reward.weights[" + std::to_string(t) + "] is not a finite number");
    }
    sum->add(make_term(config.terms[t], key, config, model_reward), config.weights[t]);
  }
  return sum;
}

}  // namespace

std::unique_ptr<RewardFunction> make_reward(const RewardConfig& config,
                                            const ModelRewardFactory& model_reward) {
  if (config.kind == "sum") return make_sum(config, model_reward);
  return make_term(config.kind, "reward.kind", config, model_reward);
}

}  // namespace alignpro
