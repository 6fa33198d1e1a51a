// alignpro_results_example: writes a results file through the real ResultsWriter, for the tests
// of analysis/ while no alignpro command trains. It runs a small `pool` prompter experiment in
// one process: four templates, a rule-based keyword reward (the real KeywordReward), a stand-in
// target whose responses mention the keywords with a probability that depends on the template,
// a policy-gradient update of the template logits with the KL to the reference in the reward,
// and evaluations of no optimisation, Align-Pro and (optionally) a stand-in RLHF target with
// bootstrap intervals. Ranks are simulated: the step's units are sharded over --ranks like a real
// run, and each rank's phase times come from a cost model (compute shrinks with the ranks, the
// communication grows like alpha*log2(p) + beta*(p-1)/p), not from a clock.
//
//   alignpro_results_example --out RUN.h5 [--ranks N] [--steps S] [--batch-prompts B]
//       [--candidates K] [--samples M] [--seed SEED] [--kl-coef L] [--lr LR] [--eval-every E]
//       [--eval-prompts N] [--rlhf] [--name NAME]
//       [--stop-after K --stop preempted|killed|killed-uncommitted|failed] [--resume]
//
// --stop-after K ends the run after step K: `preempted` records a checkpoint and the preempted
// status (exit code 3); `killed` exits at once without closing the file, as a killed job does;
// `killed-uncommitted` dies inside the commit of step K+1, after the tables' row counts but
// before steps_done; `failed` records the failed status with an error message (exit code 1).
// --resume continues such a file from its newest checkpoint, as a restarted job does.
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <numeric>
#include <sstream>
#include <string>
#include <vector>

#include "align/rewards.h"
#include "common/error.h"
#include "common/rng.h"
#include "io/records.h"
#include "io/results_file.h"

namespace alignpro {
namespace {

const std::vector<std::string> kTrainPrompts = {
    "How do I boil an egg?",
    "What is the best way to learn to swim?",
    "How can I fix a flat bicycle tyre?",
    "How should I store fresh herbs?",
    "What do I need to plant tomatoes?",
    "How do I clean a cast iron pan?",
    "How can I fall asleep faster?",
    "How do I change a light bulb?",
    "What is a good way to start running?",
    "How do I make a cup of tea?",
    "How should I pack for a hiking trip?",
    "How do I back up my photos?",
    "How can I keep a houseplant alive?",
    "How do I sharpen a kitchen knife?",
    "What should I do before a job interview?",
    "How do I paint a wooden chair?",
};

const std::vector<std::string> kEvalPrompts = {
    "How do I cook rice on a stove?",
    "How can I remove a coffee stain?",
    "How do I hang a picture on a wall?",
    "What is the safest way to defrost meat?",
    "How do I tie a tie?",
    "How can I learn a new language?",
    "How do I jump-start a car?",
    "How should I prepare for a long flight?",
    "How do I wash a wool sweater?",
    "How can I save money on groceries?",
    "How do I set up a fish tank?",
    "How do I write a thank-you note?",
};

const std::vector<std::string> kPool = {
    "{prompt}",
    "Answer carefully and completely: {prompt}",
    "You are a helpful, honest assistant. {prompt}",
    "Think step by step, then answer. {prompt}",
};
// How likely the stand-in target is to mention each keyword, per template.
const std::vector<double> kMention = {0.3, 0.45, 0.5, 0.7};
constexpr double kRlhfBonus = 0.2;

const std::vector<std::string> kKeywords = {"first", "then", "because", "check", "safely"};
const std::vector<std::string> kPhrases = {
    "First, get what you need ready.", "Then work through it one part at a time.",
    "Take your time, because rushing causes mistakes.", "Check the result when you are done.",
    "Do it safely and keep the area clear."};

struct Options {
  std::string out;
  std::string name = "example";
  int64_t ranks = 1;
  int64_t steps = 8;
  int64_t batch_prompts = 4;
  int64_t candidates = 4;
  int64_t samples = 2;
  uint64_t seed = 7;
  double kl_coef = 0.1;
  double lr = 4.0;
  int64_t eval_every = 4;
  int64_t eval_prompts = 12;
  bool rlhf = false;
  int64_t stop_after = -1;
  std::string stop;
  bool resume = false;
};

Options parse_options(int argc, char** argv) {
  Options o;
  auto value = [&](int& i) -> std::string {
    if (i + 1 >= argc) throw InputError(std::string(argv[i]) + ": needs a value");
    return argv[++i];
  };
  auto integer = [&](int& i, int64_t min) {
    const std::string flag = argv[i];
    const std::string text = value(i);
    char* end = nullptr;
    const long long v = std::strtoll(text.c_str(), &end, 10);
    if (text.empty() || *end != '\0' || v < min) {
      throw InputError(flag + ": found '" + text +
                       "'; allowed: an integer >= " + std::to_string(min));
    }
    return static_cast<int64_t>(v);
  };
  auto real = [&](int& i) {
    const std::string flag = argv[i];
    const std::string text = value(i);
    char* end = nullptr;
    const double v = std::strtod(text.c_str(), &end);
    if (text.empty() || *end != '\0' || !(v >= 0)) {
      throw InputError(flag + ": found '" + text + "'; allowed: a number >= 0");
    }
    return v;
  };
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "--out") {
      o.out = value(i);
    } else if (flag == "--name") {
      o.name = value(i);
    } else if (flag == "--ranks") {
      o.ranks = integer(i, 1);
    } else if (flag == "--steps") {
      o.steps = integer(i, 1);
    } else if (flag == "--batch-prompts") {
      o.batch_prompts = integer(i, 1);
    } else if (flag == "--candidates") {
      o.candidates = integer(i, 2);
    } else if (flag == "--samples") {
      o.samples = integer(i, 1);
    } else if (flag == "--seed") {
      o.seed = static_cast<uint64_t>(integer(i, 0));
    } else if (flag == "--kl-coef") {
      o.kl_coef = real(i);
    } else if (flag == "--lr") {
      o.lr = real(i);
    } else if (flag == "--eval-every") {
      o.eval_every = integer(i, 0);
    } else if (flag == "--eval-prompts") {
      o.eval_prompts = std::min<int64_t>(integer(i, 1), kEvalPrompts.size());
    } else if (flag == "--rlhf") {
      o.rlhf = true;
    } else if (flag == "--stop-after") {
      o.stop_after = integer(i, 0);
    } else if (flag == "--stop") {
      o.stop = value(i);
    } else if (flag == "--resume") {
      o.resume = true;
    } else {
      throw InputError("unknown argument '" + flag + "'; see the comment at the top of " +
                       "write_results_example.cpp");
    }
  }
  if (o.out.empty()) throw InputError("--out: missing; allowed: the results file to write");
  if (o.kl_coef <= 0) throw InputError("--kl-coef: found 0; allowed: a number > 0");
  const bool known_stop = o.stop == "preempted" || o.stop == "killed" ||
                          o.stop == "killed-uncommitted" || o.stop == "failed";
  if ((o.stop_after >= 0) != known_stop) {
    throw InputError(
        "--stop-after and --stop go together; --stop allowed: preempted, killed, "
        "killed-uncommitted, failed");
  }
  if (o.batch_prompts * o.candidates < o.ranks) {
    throw InputError("--ranks: more ranks than the step's work units");
  }
  return o;
}

std::string job_text(const Options& o) {
  auto list = [](const std::vector<std::string>& items) {
    std::string out = "[";
    for (size_t i = 0; i < items.size(); ++i) out += (i ? ", \"" : "\"") + items[i] + "\"";
    return out + "]";
  };
  std::ostringstream t;
  t << "# Written by alignpro_results_example: a pool prompter with a stand-in target.\n"
    << "[run]\nname = \"" << o.name << "\"\nseed = " << o.seed << "\nsteps = " << o.steps
    << "\ncheckpoint_every = 2\n\n"
    << "[data]\ntrain = \"prompts.txt\"\neval = \"prompts-heldout.txt\"\n\n"
    << "[prompter]\nkind = \"pool\"\ncandidates = " << o.candidates << "\npool = " << list(kPool)
    << "\n\n[target]\nmodel = \"stand-in\"\nsamples = " << o.samples << "\n\n"
    << "[reward]\nkind = \"keywords\"\nkeywords = " << list(kKeywords) << "\n\n"
    << "[optim]\nlr = " << o.lr << "\nkl_coef = " << o.kl_coef
    << "\nbatch_prompts = " << o.batch_prompts << "\n\n"
    << "[eval]\nevery = " << o.eval_every << "\nprompts = " << o.eval_prompts
    << "\ndecoding = [\"greedy\", \"sampled\"]\n";
  if (o.rlhf) t << "rlhf_target = \"stand-in-rlhf\"\n";
  return t.str();
}

uint64_t hash_text(const std::string& text) {
  uint64_t h = 0x9e3779b97f4a7c15ull;
  for (unsigned char c : text) h = mix64(h ^ c);
  return h;
}

double log2_of(int64_t p) {
  return std::log2(static_cast<double>(p));
}

std::vector<double> softmax(const std::vector<double>& logits) {
  const double top = *std::max_element(logits.begin(), logits.end());
  std::vector<double> p(logits.size());
  double z = 0;
  for (size_t i = 0; i < p.size(); ++i) z += p[i] = std::exp(logits[i] - top);
  for (double& v : p) v /= z;
  return p;
}

int64_t draw(const std::vector<double>& probabilities, RngStream& rng) {
  const double u = rng.uniform();
  double cumulative = 0;
  for (size_t i = 0; i < probabilities.size(); ++i) {
    cumulative += probabilities[i];
    if (u < cumulative) return static_cast<int64_t>(i);
  }
  return static_cast<int64_t>(probabilities.size()) - 1;
}

double kl(const std::vector<double>& p, const std::vector<double>& q) {
  double out = 0;
  for (size_t i = 0; i < p.size(); ++i) {
    if (p[i] > 0) out += p[i] * std::log(p[i] / q[i]);
  }
  return out;
}

double total_variation(const std::vector<double>& p, const std::vector<double>& q) {
  double out = 0;
  for (size_t i = 0; i < p.size(); ++i) out += std::abs(p[i] - q[i]);
  return out / 2;
}

std::string fill(const std::string& templ, const std::string& prompt) {
  const std::string key = "{prompt}";
  const size_t at = templ.find(key);
  return templ.substr(0, at) + prompt + templ.substr(at + key.size());
}

// The stand-in target's answer: each keyword's phrase is mentioned with probability `mention`.
// Sampled decoding draws from `rng`; greedy decoding compares with a number fixed per prompt
// and keyword, so that it is deterministic and the same across conditions. The prompt index
// shifts the probability a little, so that prompts differ in difficulty.
std::string respond(uint64_t seed, const std::string& prompt, int64_t prompt_index, double mention,
                    RngStream* rng) {
  std::string out = "Here is how to go about it (" + prompt + ").";
  const double shift = 0.05 * static_cast<double>(prompt_index % 5) - 0.1;
  for (size_t k = 0; k < kPhrases.size(); ++k) {
    const double p =
        std::clamp(mention + shift + 0.04 * static_cast<double>(k % 3) - 0.04, 0.0, 1.0);
    RngStream fixed(seed, RngPurpose::kEval,
                    {0x6eedu, static_cast<uint64_t>(prompt_index), static_cast<uint64_t>(k)});
    const double u = rng ? rng->uniform() : fixed.uniform();
    if (u < p) out += " " + kPhrases[k];
  }
  return out;
}

int64_t words(const std::string& text) {
  std::istringstream in(text);
  int64_t n = 0;
  for (std::string w; in >> w;) ++n;
  return n;
}

// The state that training carries from step to step.
struct Trainer {
  std::vector<double> logits;
  std::vector<double> reference;
  std::vector<double> reward_sum;
  std::vector<int64_t> reward_count;
};

struct StepRecords {
  StepMetrics metrics;
  std::vector<TrainingSample> samples;
  std::vector<PhaseTimings> timings;
  bool has_pool = false;
  PoolState pool;
};

// Phase times of every rank for a step whose units are split as `units_of_rank`.
std::vector<PhaseTimings> simulate_timings(const Options& o, int64_t step,
                                           const std::vector<int64_t>& units_of_rank) {
  std::vector<PhaseTimings> out;
  std::vector<double> compute;
  for (int64_t r = 0; r < o.ranks; ++r) {
    RngStream noise(o.seed, RngPurpose::kInit,
                    {0x7157u, static_cast<uint64_t>(step), static_cast<uint64_t>(r)});
    const double jitter = 1.0 + 0.05 * noise.normal();
    const auto units = static_cast<double>(units_of_rank[r]);
    PhaseTimings t;
    t.step = step;
    t.rank = r;
    auto& s = t.seconds;
    s[static_cast<int>(Phase::kPrompterGeneration)] = 0.004 * units * jitter;
    s[static_cast<int>(Phase::kTargetGeneration)] =
        0.03 * units * static_cast<double>(o.samples) * jitter;
    s[static_cast<int>(Phase::kReward)] = 0.005 * units * static_cast<double>(o.samples);
    s[static_cast<int>(Phase::kBackward)] = 0.002 + 0.006 * units * jitter;
    const double latency = 0.004, transfer = 0.02;
    s[static_cast<int>(Phase::kCommunication)] =
        o.ranks == 1
            ? 0.0
            : (latency * log2_of(o.ranks) + transfer * static_cast<double>(o.ranks - 1) / o.ranks) *
                  (1.0 + 0.03 * noise.normal());
    compute.push_back(s[0] + s[1] + s[2] + s[3]);
    out.push_back(t);
  }
  const double slowest = *std::max_element(compute.begin(), compute.end());
  for (int64_t r = 0; r < o.ranks; ++r) {
    out[r].seconds[static_cast<int>(Phase::kWaiting)] = slowest - compute[r];
  }
  return out;
}

StepRecords train_step(const Options& o, int64_t step, Trainer& trainer, KeywordReward& reward) {
  StepRecords records;
  const int64_t n_pool = static_cast<int64_t>(kPool.size());
  const std::vector<double> rho = softmax(trainer.logits);
  const int64_t units = o.batch_prompts * o.candidates;
  const int64_t first_prompt = (step - 1) * o.batch_prompts;
  std::vector<int64_t> units_of_rank(o.ranks, 0);
  std::vector<int64_t> choice(units);
  std::vector<double> value(units, 0);
  std::vector<int64_t> unit_of_sample;
  int64_t tokens = 0;

  for (int64_t u = 0; u < units; ++u) {
    const int64_t b = u / o.candidates, k = u % o.candidates;
    const int64_t prompt_index = (first_prompt + b) % static_cast<int64_t>(kTrainPrompts.size());
    const std::string& prompt = kTrainPrompts[prompt_index];
    // Contiguous, balanced shards of the step's units, as the real sharding makes them.
    const int64_t rank = (u * o.ranks) / units;
    ++units_of_rank[rank];
    RngStream rewrite_rng(o.seed, RngPurpose::kRewrite,
                          {static_cast<uint64_t>(step), static_cast<uint64_t>(prompt_index),
                           static_cast<uint64_t>(k)});
    choice[u] = draw(rho, rewrite_rng);
    const std::string rewrite = fill(kPool[choice[u]], prompt);
    std::vector<std::string> responses, prompts;
    std::vector<uint64_t> streams;
    for (int64_t m = 0; m < o.samples; ++m) {
      RngStream response_rng(o.seed, RngPurpose::kResponse,
                             {static_cast<uint64_t>(step), static_cast<uint64_t>(prompt_index),
                              static_cast<uint64_t>(k), static_cast<uint64_t>(m)});
      streams.push_back(response_rng.stream_id());
      responses.push_back(
          respond(o.seed, prompt, prompt_index, kMention[choice[u]], &response_rng));
      prompts.push_back(prompt);
    }
    const std::vector<double> rewards = reward.score(prompts, responses);
    for (int64_t m = 0; m < o.samples; ++m) {
      TrainingSample s;
      s.step = step;
      s.prompt_index = prompt_index;
      s.candidate = k;
      s.sample = m;
      s.rank = rank;
      s.seed = o.seed;
      s.rewrite_stream = rewrite_rng.stream_id();
      s.response_stream = streams[m];
      s.prompt = prompt;
      s.rewrite = rewrite;
      s.response = responses[m];
      s.reward = rewards[m];
      s.logprob_prompter = std::log(rho[choice[u]]);
      s.logprob_reference = std::log(trainer.reference[choice[u]]);
      s.kl = s.logprob_prompter - s.logprob_reference;
      value[u] += rewards[m] / static_cast<double>(o.samples);
      trainer.reward_sum[choice[u]] += rewards[m];
      ++trainer.reward_count[choice[u]];
      tokens += (words(responses[m]) * 4 + 2) / 3;
      records.samples.push_back(s);
      unit_of_sample.push_back(u);
    }
    tokens += (words(rewrite) * 4 + 2) / 3;
  }

  // KL-shaped returns, leave-one-out baselines within each prompt, and the policy gradient of
  // the template logits: d log rho(c) / d logits = onehot(c) - rho.
  std::vector<double> advantage(units);
  std::vector<double> grad(n_pool, 0);
  double loss = 0, kl_sum = 0;
  for (int64_t b = 0; b < o.batch_prompts; ++b) {
    std::vector<double> returns(o.candidates);
    for (int64_t k = 0; k < o.candidates; ++k) {
      const int64_t u = b * o.candidates + k;
      const double kl_u = std::log(rho[choice[u]] / trainer.reference[choice[u]]);
      kl_sum += kl_u;
      returns[k] = value[u] - o.kl_coef * kl_u;
    }
    const double total = std::accumulate(returns.begin(), returns.end(), 0.0);
    for (int64_t k = 0; k < o.candidates; ++k) {
      const int64_t u = b * o.candidates + k;
      advantage[u] = returns[k] - (total - returns[k]) / static_cast<double>(o.candidates - 1);
      loss -= advantage[u] * std::log(rho[choice[u]]) / static_cast<double>(units);
      for (int64_t i = 0; i < n_pool; ++i) {
        grad[i] -= advantage[u] * ((i == choice[u]) - rho[i]) / static_cast<double>(units);
      }
    }
  }
  for (size_t i = 0; i < records.samples.size(); ++i) {
    records.samples[i].advantage = advantage[unit_of_sample[i]];
  }
  double grad_norm = 0;
  for (double g : grad) grad_norm += g * g;
  grad_norm = std::sqrt(grad_norm);
  for (int64_t i = 0; i < n_pool; ++i) trainer.logits[i] -= o.lr * grad[i];

  records.timings = simulate_timings(o, step, units_of_rank);
  double step_s = 0;
  for (const auto& t : records.timings) {
    step_s = std::max(step_s, std::accumulate(t.seconds.begin(), t.seconds.end(), 0.0));
  }

  double mean = 0, square = 0;
  for (const auto& s : records.samples) mean += s.reward;
  mean /= static_cast<double>(records.samples.size());
  for (const auto& s : records.samples) square += (s.reward - mean) * (s.reward - mean);
  StepMetrics& m = records.metrics;
  m.step = step;
  m.epoch = first_prompt / static_cast<int64_t>(kTrainPrompts.size());
  m.units = units;
  m.samples = static_cast<int64_t>(records.samples.size());
  m.reward_mean = mean;
  m.reward_std = std::sqrt(square / static_cast<double>(records.samples.size()));
  m.kl_mean = kl_sum / static_cast<double>(units);
  m.loss = loss;
  m.grad_norm = grad_norm;
  m.learning_rate = o.lr;
  m.tokens = tokens;
  m.step_s = step_s;
  m.tokens_per_s = static_cast<double>(tokens) / step_s;
  for (int p = 0; p < kPhaseCount; ++p) m.phase_share[p] = records.timings[0].seconds[p] / step_s;

  const bool observed_all = std::all_of(trainer.reward_count.begin(), trainer.reward_count.end(),
                                        [](int64_t c) { return c > 0; });
  if (observed_all) {
    std::vector<double> scaled(n_pool);
    for (int64_t i = 0; i < n_pool; ++i) {
      const double mean_reward =
          trainer.reward_sum[i] / static_cast<double>(trainer.reward_count[i]);
      scaled[i] = std::log(trainer.reference[i]) + mean_reward / o.kl_coef;
    }
    records.has_pool = true;
    records.pool.step = step;
    records.pool.trained = softmax(trainer.logits);
    records.pool.rho_star = softmax(scaled);
    records.pool.total_variation = total_variation(records.pool.trained, records.pool.rho_star);
    records.pool.kl_rho_star_reference = kl(records.pool.rho_star, trainer.reference);
    records.pool.kl_trained_reference = kl(records.pool.trained, trainer.reference);
  }
  return records;
}

double mean_of(const std::vector<double>& v) {
  return std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
}

double std_of(const std::vector<double>& v) {
  if (v.size() < 2) return 0;
  const double m = mean_of(v);
  double s = 0;
  for (double x : v) s += (x - m) * (x - m);
  return std::sqrt(s / static_cast<double>(v.size() - 1));
}

double win_rate_of(const std::vector<double>& a, const std::vector<double>& b) {
  double wins = 0;
  for (size_t i = 0; i < a.size(); ++i) wins += a[i] > b[i] ? 1.0 : (a[i] == b[i] ? 0.5 : 0.0);
  return wins / static_cast<double>(a.size());
}

double gain_of(const std::vector<double>& a, const std::vector<double>& b) {
  double sum = 0;
  for (size_t i = 0; i < a.size(); ++i) sum += a[i] - b[i];
  return sum / static_cast<double>(a.size());
}

// Percentile bootstrap over prompts; the same resamples for every condition and statistic.
std::vector<EvalSummary> summarise(const Options& o, int64_t eval_index, int64_t step,
                                   const std::string& decoding,
                                   const std::vector<std::string>& conditions,
                                   const std::vector<std::vector<double>>& rewards) {
  const size_t n = rewards[0].size();
  constexpr int kResamples = 400;
  constexpr double kConfidence = 0.95;
  std::vector<std::vector<std::array<double, 4>>> boot(conditions.size());
  for (int r = 0; r < kResamples; ++r) {
    RngStream rng(o.seed, RngPurpose::kBootstrap,
                  {static_cast<uint64_t>(eval_index), decoding == "greedy" ? 0u : 1u,
                   static_cast<uint64_t>(r)});
    std::vector<size_t> pick(n);
    for (auto& i : pick) i = rng.below(n);
    std::vector<double> base(n);
    for (size_t i = 0; i < n; ++i) base[i] = rewards[0][pick[i]];
    for (size_t c = 0; c < conditions.size(); ++c) {
      std::vector<double> x(n);
      for (size_t i = 0; i < n; ++i) x[i] = rewards[c][pick[i]];
      boot[c].push_back({mean_of(x), std_of(x), win_rate_of(x, base), gain_of(x, base)});
    }
  }
  auto quantile = [](std::vector<double> v, double q) {
    std::sort(v.begin(), v.end());
    const double at = q * static_cast<double>(v.size() - 1);
    const size_t lo = static_cast<size_t>(std::floor(at));
    const size_t hi = std::min(lo + 1, v.size() - 1);
    return v[lo] + (at - static_cast<double>(lo)) * (v[hi] - v[lo]);
  };
  std::vector<EvalSummary> out;
  for (size_t c = 0; c < conditions.size(); ++c) {
    EvalSummary s;
    s.eval_index = eval_index;
    s.step = step;
    s.condition = conditions[c];
    s.decoding = decoding;
    s.n = static_cast<int64_t>(n);
    s.confidence = kConfidence;
    const double values[4] = {mean_of(rewards[c]), std_of(rewards[c]),
                              win_rate_of(rewards[c], rewards[0]), gain_of(rewards[c], rewards[0])};
    Estimate* estimates[4] = {&s.mean, &s.std, &s.win_rate, &s.gain};
    for (int j = 0; j < 4; ++j) {
      std::vector<double> column;
      for (const auto& b : boot[c]) column.push_back(b[j]);
      estimates[j]->value = values[j];
      estimates[j]->ci_low = quantile(column, (1 - kConfidence) / 2);
      estimates[j]->ci_high = quantile(column, (1 + kConfidence) / 2);
    }
    out.push_back(s);
  }
  return out;
}

void evaluate(const Options& o, int64_t eval_index, int64_t step, const Trainer& trainer,
              KeywordReward& reward, ResultsWriter& writer) {
  const std::vector<double> rho = softmax(trainer.logits);
  const int64_t best = std::max_element(rho.begin(), rho.end()) - rho.begin();
  std::vector<std::string> conditions = {"none", "align-pro"};
  if (o.rlhf) conditions.push_back("rlhf");
  for (const std::string decoding : {"greedy", "sampled"}) {
    const bool sampled = decoding == "sampled";
    std::vector<std::vector<double>> rewards(conditions.size());
    for (size_t c = 0; c < conditions.size(); ++c) {
      for (int64_t i = 0; i < o.eval_prompts; ++i) {
        const std::string& prompt = kEvalPrompts[i];
        RngStream rng(o.seed, RngPurpose::kEval,
                      {static_cast<uint64_t>(eval_index), sampled ? 1u : 0u,
                       static_cast<uint64_t>(c), static_cast<uint64_t>(i)});
        int64_t choice = 0;
        double mention = kMention[0];
        if (conditions[c] == "align-pro") {
          choice = sampled ? draw(rho, rng) : best;
          mention = kMention[choice];
        } else if (conditions[c] == "rlhf") {
          mention = std::min(0.8, kMention[0] + kRlhfBonus + 0.01 * static_cast<double>(step));
        }
        EvalSample s;
        s.eval_index = eval_index;
        s.step = step;
        s.condition = conditions[c];
        s.decoding = decoding;
        s.prompt_index = i;
        s.prompt = prompt;
        s.rewrite = conditions[c] == "align-pro" ? fill(kPool[choice], prompt) : prompt;
        s.response = respond(o.seed, prompt, i, mention, sampled ? &rng : nullptr);
        s.reward = reward.score({prompt}, {s.response})[0];
        rewards[c].push_back(s.reward);
        writer.append(s);
      }
    }
    writer.append(summarise(o, eval_index, step, decoding, conditions, rewards));
  }
}

std::string checkpoint_name(int64_t step) {
  char name[64];
  std::snprintf(name, sizeof name, "step-%08lld.ckpt.h5", static_cast<long long>(step));
  return name;
}

int run(const Options& o) {
  RunInfo info;
  info.job_name = o.name;
  info.job_text = job_text(o);
  info.job_hash = hash_text(info.job_text);
  info.world_size = o.ranks;
  char host[256] = "localhost";
  gethostname(host, sizeof host - 1);
  info.hosts.assign(o.ranks, host);
  info.total_steps = o.steps;
  info.pool_templates = kPool;
  info.pool_reference.assign(kPool.size(), 1.0 / static_cast<double>(kPool.size()));

  Trainer trainer;
  trainer.reference = info.pool_reference;
  for (double p : trainer.reference) trainer.logits.push_back(std::log(p));
  trainer.reward_sum.assign(kPool.size(), 0);
  trainer.reward_count.assign(kPool.size(), 0);
  KeywordReward reward(kKeywords);

  int64_t first_step = 1;
  ResultsWriter writer = [&] {
    if (!o.resume) return ResultsWriter::create(o.out, info);
    const int64_t checkpoint = read_results_header(o.out).checkpoint_step;
    ResultsWriter w = ResultsWriter::resume(o.out, info);
    w.truncate_to(std::max<int64_t>(checkpoint, 0));
    first_step = std::max<int64_t>(checkpoint, 0) + 1;
    return w;
  }();
  // A resumed run restores the state of its checkpoint; here that is replaying the steps, which
  // draw the same numbers from the same named streams.
  for (int64_t step = 1; step < first_step; ++step) train_step(o, step, trainer, reward);
  auto eval_due = [&](int64_t step) {
    return o.eval_every > 0 && (step % o.eval_every == 0 || step == o.steps);
  };
  int64_t eval_index = 0;
  if (o.eval_every > 0) {
    eval_index = 1 + (first_step - 1) / o.eval_every;
    if (first_step == 1) {
      evaluate(o, 0, 0, trainer, reward, writer);
      writer.commit_step(0);
    }
  }

  // A job killed before its first step ends: only the evaluation before training is there.
  if (o.stop_after == 0 && o.stop == "killed") std::_Exit(9);

  double elapsed = 0;
  for (int64_t step = first_step; step <= o.steps; ++step) {
    const bool stopping_now = o.stop_after >= 0 && step == o.stop_after + 1;
    StepRecords records = train_step(o, step, trainer, reward);
    elapsed += records.metrics.step_s;
    records.metrics.elapsed_s = elapsed;
    records.metrics.eta_s =
        elapsed / static_cast<double>(step - first_step + 1) * static_cast<double>(o.steps - step);
    if (stopping_now && o.stop == "failed") {
      writer.discard_pending();
      writer.set_status(RunStatus::kFailed,
                        "step " + std::to_string(step) +
                            ": the reward of prompt 3, candidate 1 is NaN (reward.kind = "
                            "keywords); nothing of this step was recorded");
      writer.close();
      return kExitRuntimeFailure;
    }
    writer.append(records.metrics);
    writer.append(records.samples);
    for (const auto& t : records.timings) writer.append(t);
    if (records.has_pool) writer.append(records.pool);
    if (stopping_now && o.stop == "killed-uncommitted") {
      writer.set_commit_observer([](ResultsWriter::CommitStage stage) {
        if (stage == ResultsWriter::CommitStage::kRowsCommitted) std::_Exit(9);
      });
    }
    writer.commit_step(step);
    if (eval_due(step)) {
      evaluate(o, eval_index++, step, trainer, reward, writer);
      writer.commit_step(step);
    }
    if (step % 2 == 0) writer.set_checkpoint(step, checkpoint_name(step));
    if (o.stop_after >= 0 && step == o.stop_after) {
      if (o.stop == "killed") std::_Exit(9);
      if (o.stop == "preempted") {
        writer.set_checkpoint(step, checkpoint_name(step));
        writer.set_status(RunStatus::kPreempted);
        writer.close();
        return kExitPreempted;
      }
    }
  }
  writer.set_status(RunStatus::kComplete);
  writer.close();
  return kExitOk;
}

}  // namespace
}  // namespace alignpro

int main(int argc, char** argv) {
  try {
    return alignpro::run(alignpro::parse_options(argc, argv));
  } catch (const alignpro::InputError& e) {
    std::cerr << "alignpro_results_example: error: " << e.what() << "\n";
    return alignpro::kExitBadInput;
  } catch (const std::exception& e) {
    std::cerr << "alignpro_results_example: failed: " << e.what() << "\n";
    return alignpro::kExitRuntimeFailure;
  }
}
