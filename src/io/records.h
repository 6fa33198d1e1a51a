// The records that ranks send to the coordinator and that the results file stores: plain structs,
// turned into bytes (Boost.Serialization binary archives inside a checked envelope) so that they
// can travel through the communicator's gather. Every field's unit and meaning is documented
// once, in the results file's column tables (results_tables.cpp).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace alignpro {

// The phases a rank's time is split into, in the order of the phase columns.
enum class Phase : int {
  kPrompterGeneration = 0,
  kTargetGeneration = 1,
  kReward = 2,
  kBackward = 3,
  kCommunication = 4,
  kWaiting = 5,
};
inline constexpr int kPhaseCount = 6;
// "prompter_generation", "target_generation", "reward", "backward", "communication", "waiting".
const char* phase_name(Phase phase);
// Indexed by static_cast<int>(Phase).
using PhaseValues = std::array<double, kPhaseCount>;

// One training step, as the coordinator's progress line shows it.
struct StepMetrics {
  int64_t step = 0;     // steps are counted from 1; step s is the s-th update
  int64_t epoch = 0;    // pass over the training prompts, from 0
  int64_t units = 0;    // work units of the step: prompts x candidates
  int64_t samples = 0;  // scored responses of the step
  double reward_mean = 0;
  double reward_std = 0;
  double kl_mean = 0;  // KL(prompter || reference) per rewrite, nats
  double loss = 0;
  double grad_norm = 0;  // before clipping
  double learning_rate = 0;
  int64_t tokens = 0;  // tokens generated in the step, prompter and target
  double tokens_per_s = 0;
  double step_s = 0;          // wall time of the step, seconds
  double elapsed_s = 0;       // since the run (or the resumed run) started, seconds
  double eta_s = 0;           // estimated time to the last step, seconds
  PhaseValues phase_share{};  // fraction of the step's wall time in each phase
};

// One scored response: a (prompt, candidate rewrite, response sample) of a step.
struct TrainingSample {
  int64_t step = 0;
  int64_t prompt_index = 0;      // index of the prompt in the training set
  int64_t candidate = 0;         // which of the K rewrites of the prompt
  int64_t sample = 0;            // which of the M responses to the rewrite
  int64_t rank = 0;              // the rank that produced it
  uint64_t seed = 0;             // the run seed
  uint64_t rewrite_stream = 0;   // RngStream id of the rewrite
  uint64_t response_stream = 0;  // RngStream id of the response
  std::string prompt;
  std::string rewrite;
  std::string response;
  double reward = 0;
  double advantage = 0;
  double logprob_prompter = 0;   // log-prob of the rewrite under the prompter, nats
  double logprob_reference = 0;  // the same under the reference prompter, nats
  double kl = 0;                 // KL estimate of this rewrite, nats
};

// Where one rank's time went in one step.
struct PhaseTimings {
  int64_t step = 0;
  int64_t rank = 0;
  PhaseValues seconds{};
};

// A statistic with its confidence interval.
struct Estimate {
  double value = 0;
  double ci_low = 0;
  double ci_high = 0;
};

// One row of an evaluation table: a condition under one decoding.
struct EvalSummary {
  int64_t eval_index = 0;    // 0 for the first evaluation of the run, then 1, 2, ...
  int64_t step = 0;          // training steps done when it ran (0: before training)
  std::string condition;     // "none", "align-pro" or "rlhf"
  std::string decoding;      // "greedy" or "sampled"
  int64_t n = 0;             // prompts evaluated
  double confidence = 0.95;  // level of every interval of the row
  Estimate mean;
  Estimate std;
  Estimate win_rate;  // against "none", ties counting half
  Estimate gain;      // paired reward difference against "none"
};

// One evaluated response behind an EvalSummary.
struct EvalSample {
  int64_t eval_index = 0;
  int64_t step = 0;
  std::string condition;
  std::string decoding;
  int64_t prompt_index = 0;  // index in the held-out set
  std::string prompt;
  std::string rewrite;  // the prompt the target saw (equal to prompt for "none" and "rlhf")
  std::string response;
  double reward = 0;
};

// A `pool` prompter's state after a step.
struct PoolState {
  int64_t step = 0;
  std::vector<double> trained;       // the prompter's distribution over the pool's templates
  std::vector<double> rho_star;      // the exact optimum from the estimated rewards
  double total_variation = 0;        // between trained and rho_star
  double kl_rho_star_reference = 0;  // KL(rho* || reference), nats
  double kl_trained_reference = 0;   // KL(trained || reference), nats
};

// Everything one rank sends to the coordinator after a step, in one message.
struct RankRecords {
  int64_t step = 0;
  int64_t rank = 0;
  std::vector<TrainingSample> samples;
  std::vector<EvalSample> eval_samples;
  PhaseTimings timings;
};

// Serialises a record (or a std::vector of records) to bytes and back. The bytes carry a magic
// number, the record kind and a checksum: bytes that were cut, corrupted or made from another
// kind of record throw RuntimeError, never crash.
template <class Record>
std::string to_bytes(const Record& record);
template <class Record>
Record from_bytes(std::string_view bytes);

}  // namespace alignpro
