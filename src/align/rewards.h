// Rewards r(x, y): a score for a response y to the ORIGINAL user prompt x (never to the
// rewrite x' the target saw; a prompter that changes the question must not be paid for it).
// Rule-based rewards live here; a reward-model reward implements the same interface elsewhere
// and is plugged in through make_reward's factory.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/job.h"

namespace alignpro {

namespace detail {
class CompiledPattern;  // a PCRE2 pattern, compiled once
}  // namespace detail

class RewardFunction {
 public:
  virtual ~RewardFunction() = default;
  // One reward per (prompt, response) pair; prompts[i] is the original prompt of responses[i].
  virtual std::vector<double> score(const std::vector<std::string>& prompts,
                                    const std::vector<std::string>& responses) = 0;
  // What the reward is, for logs: "keywords", "0.5*length + 1*regex".
  virtual std::string describe() const = 0;
};

// The fraction of the keywords found in the response as whole words, ignoring case (Unicode
// case folding; a word boundary is any change between a letter/digit/underscore and anything
// else). A keyword may hold several words ("thank you").
class KeywordReward final : public RewardFunction {
 public:
  explicit KeywordReward(std::vector<std::string> keywords);
  ~KeywordReward() override;
  std::vector<double> score(const std::vector<std::string>& prompts,
                            const std::vector<std::string>& responses) override;
  std::string describe() const override { return "keywords"; }

 private:
  std::vector<std::unique_ptr<detail::CompiledPattern>> patterns_;
};

// 1 when the response has between min_words and max_words words (inclusive), else 0. A word is
// a maximal run of non-whitespace characters.
class LengthReward final : public RewardFunction {
 public:
  LengthReward(int64_t min_words, int64_t max_words);
  std::vector<double> score(const std::vector<std::string>& prompts,
                            const std::vector<std::string>& responses) override;
  std::string describe() const override { return "length"; }

 private:
  int64_t min_words_;
  int64_t max_words_;
};

// 1 when the response contains a match of a PCRE2 pattern (UTF mode), else 0. The pattern is
// compiled once; key names the job-file key in the error for a bad pattern.
class RegexReward final : public RewardFunction {
 public:
  explicit RegexReward(const std::string& pattern, const std::string& key = "reward.regex");
  ~RegexReward() override;
  std::vector<double> score(const std::vector<std::string>& prompts,
                            const std::vector<std::string>& responses) override;
  std::string describe() const override { return "regex"; }

 private:
  std::unique_ptr<detail::CompiledPattern> pattern_;
};

// sum_i weight_i * term_i(x, y).
class WeightedSumReward final : public RewardFunction {
 public:
  void add(std::unique_ptr<RewardFunction> term, double weight);
  std::vector<double> score(const std::vector<std::string>& prompts,
                            const std::vector<std::string>& responses) override;
  std::string describe() const override;

 private:
  std::vector<std::unique_ptr<RewardFunction>> terms_;
  std::vector<double> weights_;
};

// Builds the model-backed reward (a reward model loaded by the model runtime).
using ModelRewardFactory = std::function<std::unique_ptr<RewardFunction>()>;

// The reward of a job's [reward] section. model_reward is called when reward.kind, or a term
// of reward.terms, is "model"; without one, such a job is an InputError. Checks every key the
// chosen kind uses (empty keyword list or pattern, length_min > length_max, terms and weights
// of different lengths) and names it.
std::unique_ptr<RewardFunction> make_reward(const RewardConfig& config,
                                            const ModelRewardFactory& model_reward = nullptr);

}  // namespace alignpro
