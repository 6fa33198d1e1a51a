#include "align/train_step.h"

#include <algorithm>
#include <cmath>

#include "align/phase_timer.h"
#include "common/error.h"

namespace alignpro {

namespace {

// Values shared per unit by the reward all-gather: R_hat, KL, rewrite tokens, pool choice.
constexpr size_t kSharedPerUnit = 4;

// The KL estimate of one rewrite from its sampled and reference log-probs.
double rewrite_kl(const Rewrite& rewrite, KlEstimator estimator) {
  if (rewrite.tokens.empty()) return 0.0;
  const torch::Tensor logp = torch::tensor(rewrite.old_logprobs, torch::kFloat64).unsqueeze(0);
  const torch::Tensor ref = torch::tensor(rewrite.ref_logprobs, torch::kFloat64).unsqueeze(0);
  return kl_per_unit(logp, ref, torch::ones_like(logp), estimator).item<double>();
}

// Rows of per-token values, right-padded with zeros to `tokens` columns. [rows, tokens]
torch::Tensor padded_rows(const std::vector<const std::vector<float>*>& rows, int64_t tokens) {
  torch::Tensor out = torch::zeros({static_cast<int64_t>(rows.size()), tokens}, torch::kFloat32);
  auto values = out.accessor<float, 2>();
  for (size_t i = 0; i < rows.size(); ++i) {
    const auto& row = *rows[i];
    if (static_cast<int64_t>(row.size()) > tokens) {
      throw RuntimeError("train step: a rewrite has more log-probs than the prompter scored");
    }
    for (size_t t = 0; t < row.size(); ++t) values[i][t] = row[t];
  }
  return out;
}

std::string describe_unit(int64_t step, const UnitOutcome& unit, int rank) {
  return "step " + std::to_string(step) + ", prompt index " + std::to_string(unit.prompt_index) +
         ", candidate " + std::to_string(unit.candidate) + " on rank " + std::to_string(rank);
}

}  // namespace

TrainStepOptions train_step_options(const Job& job) {
  TrainStepOptions options;
  options.seed = static_cast<uint64_t>(job.run.seed);
  options.candidates = job.prompter.candidates;
  // In run.mode = "rlhf" the policy's output is the response: one per unit.
  options.samples = job.run.mode == "rlhf" ? 1 : job.target.samples;
  options.kl_coef = job.optim.kl_coef;
  options.kl_mode = parse_kl_mode(job.optim.kl_mode);
  options.kl_estimator = parse_kl_estimator(job.optim.kl_estimator);
  options.advantage_std = job.optim.advantage_std;
  options.ppo_epochs = job.optim.ppo_epochs;
  options.minibatches = job.optim.minibatches;
  options.clip = job.optim.clip;
  options.normalize = parse_normalization(job.optim.normalize);
  options.max_grad_norm = job.optim.max_grad_norm;
  return options;
}

TrainStep::TrainStep(Communicator& comm, const TrainStepOptions& options,
                     const PromptDataset& prompts, const PromptSchedule& schedule,
                     PrompterPolicy& prompter, Responder& target, RewardFunction& reward,
                     GradientSync& sync, AdamW* optimizer)
    : comm_(comm),
      options_(options),
      prompts_(prompts),
      schedule_(schedule),
      prompter_(prompter),
      target_(target),
      reward_(reward),
      sync_(sync),
      optimizer_(optimizer),
      sharding_(schedule.batch_prompts() * options.candidates, comm.size()) {
  if (options.minibatches > sharding_.units()) {
    throw InputError("optim.minibatches = " + std::to_string(options.minibatches) +
                     " exceeds the " + std::to_string(sharding_.units()) +
                     " work units of a step (optim.batch_prompts * prompter.candidates)");
  }
  if (options.samples < 1 || options.ppo_epochs < 1) {
    throw InputError("target.samples and optim.ppo_epochs must be at least 1");
  }
}

StepOutcome TrainStep::run(int64_t step, double lr) {
  StepOutcome out;
  out.step = step;
  const std::vector<size_t> batch = schedule_.batch(step);  // 1. the step's prompts
  out.units = sample_rewrites(step, batch, out.seconds);    // 2. rewrite (this shard)
  generate_responses(step, out.units, out.seconds);         // 3. respond
  score_responses(out.units, out.seconds);                  // 4. score against x
  const SharedUnits shared = share_rewards(step, batch, out.units, out.seconds);  // 5. share
  const std::vector<double> advantages = compute_advantages(shared);  // returns, baselines
  for (UnitOutcome& unit : out.units) unit.advantage = advantages[unit.unit];
  learn(out, shared, lr);  // 6-7. loss, backward, aggregate, update
  summarize(out, shared);
  return out;
}

std::vector<UnitOutcome> TrainStep::sample_rewrites(int64_t step, const std::vector<size_t>& batch,
                                                    StepPhaseSeconds& seconds) {
  ScopedSeconds timer(seconds.prompter_generation);
  const UnitRange mine = sharding_.range(comm_.rank());
  std::vector<UnitOutcome> units;
  std::vector<std::string> prompts;
  std::vector<RngStream> streams;
  for (int64_t u = mine.begin; u < mine.end; ++u) {
    const WorkUnit work = work_unit(u, options_.candidates);
    UnitOutcome unit;
    unit.unit = u;
    unit.slot = work.slot;
    unit.candidate = work.candidate;
    unit.prompt_index = static_cast<int64_t>(batch.at(work.slot));
    unit.prompt = prompts_.prompt(unit.prompt_index);
    streams.emplace_back(options_.seed, RngPurpose::kRewrite,
                         std::initializer_list<uint64_t>{static_cast<uint64_t>(step),
                                                         static_cast<uint64_t>(work.slot),
                                                         static_cast<uint64_t>(work.candidate)});
    unit.rewrite_stream = streams.back().stream_id();
    prompts.push_back(unit.prompt);
    units.push_back(std::move(unit));
  }
  std::vector<Rewrite> rewrites = prompter_.sample(prompts, streams);
  for (size_t i = 0; i < units.size(); ++i) {
    units[i].rewrite = std::move(rewrites.at(i));
    units[i].kl = rewrite_kl(units[i].rewrite, options_.kl_estimator);
  }
  return units;
}

void TrainStep::generate_responses(int64_t step, std::vector<UnitOutcome>& units,
                                   StepPhaseSeconds& seconds) {
  ScopedSeconds timer(seconds.target_generation);
  std::vector<std::string> inputs;
  std::vector<RngStream> streams;
  for (UnitOutcome& unit : units) {
    for (int64_t m = 0; m < options_.samples; ++m) {
      inputs.push_back(unit.rewrite.text);
      streams.emplace_back(options_.seed, RngPurpose::kResponse,
                           std::initializer_list<uint64_t>{
                               static_cast<uint64_t>(step), static_cast<uint64_t>(unit.slot),
                               static_cast<uint64_t>(unit.candidate), static_cast<uint64_t>(m)});
      unit.response_streams.push_back(streams.back().stream_id());
    }
  }
  std::vector<std::string> responses = target_.respond(inputs, streams);
  if (responses.size() != inputs.size()) {
    throw RuntimeError("train step: the target returned " + std::to_string(responses.size()) +
                       " responses for " + std::to_string(inputs.size()) + " rewrites");
  }
  size_t next = 0;
  for (UnitOutcome& unit : units) {
    for (int64_t m = 0; m < options_.samples; ++m) unit.responses.push_back(responses[next++]);
  }
}

void TrainStep::score_responses(std::vector<UnitOutcome>& units, StepPhaseSeconds& seconds) {
  ScopedSeconds timer(seconds.reward);
  std::vector<std::string> originals, responses;
  for (const UnitOutcome& unit : units) {
    for (const std::string& response : unit.responses) {
      originals.push_back(unit.prompt);  // the reward judges the ORIGINAL prompt
      responses.push_back(response);
    }
  }
  const std::vector<double> rewards = reward_.score(originals, responses);
  size_t next = 0;
  for (UnitOutcome& unit : units) {
    double sum = 0;
    for (size_t m = 0; m < unit.responses.size(); ++m) {
      unit.rewards.push_back(rewards.at(next++));
      sum += unit.rewards.back();
    }
    unit.reward_mean = sum / static_cast<double>(unit.responses.size());
  }
}

TrainStep::SharedUnits TrainStep::share_rewards(int64_t step, const std::vector<size_t>& batch,
                                                const std::vector<UnitOutcome>& units,
                                                StepPhaseSeconds& seconds) {
  std::vector<float> mine;
  for (const UnitOutcome& unit : units) {
    mine.insert(mine.end(), {static_cast<float>(unit.reward_mean), static_cast<float>(unit.kl),
                             static_cast<float>(unit.rewrite.tokens.size()),
                             static_cast<float>(unit.rewrite.choice)});
  }
  std::vector<std::vector<float>> all;
  {
    ScopedSeconds timer(seconds.waiting);
    all = comm_.allgather(mine, "unit rewards");
  }
  SharedUnits shared;
  for (const auto& part : all) {
    for (size_t i = 0; i + kSharedPerUnit <= part.size(); i += kSharedPerUnit) {
      shared.rewards.push_back(part[i]);
      shared.kl.push_back(part[i + 1]);
      shared.tokens.push_back(part[i + 2]);
      shared.choices.push_back(static_cast<int64_t>(part[i + 3]));
    }
  }
  if (static_cast<int64_t>(shared.rewards.size()) != sharding_.units()) {
    throw RuntimeError("train step: the reward all-gather brought " +
                       std::to_string(shared.rewards.size()) + " units, expected " +
                       std::to_string(sharding_.units()));
  }
  // Every rank sees every unit, so all ranks stop together and name the same unit.
  for (int64_t u = 0; u < sharding_.units(); ++u) {
    if (std::isfinite(shared.rewards[u]) && std::isfinite(shared.kl[u])) continue;
    const WorkUnit work = work_unit(u, options_.candidates);
    throw RuntimeError(
        "non-finite " + std::string(std::isfinite(shared.rewards[u]) ? "KL estimate" : "reward") +
        " at step " + std::to_string(step) + ", prompt index " + std::to_string(batch[work.slot]) +
        ", candidate " + std::to_string(work.candidate) + " (rank " +
        std::to_string(sharding_.owner(u)) + ")");
  }
  return shared;
}

std::vector<double> TrainStep::compute_advantages(const SharedUnits& shared) const {
  const auto f64 = torch::TensorOptions().dtype(torch::kFloat64);
  const torch::Tensor rewards = torch::tensor(shared.rewards, f64);  // [units]
  const torch::Tensor kl = torch::tensor(shared.kl, f64);            // [units]
  const torch::Tensor returns = candidate_returns(rewards, kl, options_.kl_coef, options_.kl_mode);
  const torch::Tensor advantages =
      leave_one_out_advantages(returns.view({-1, options_.candidates}), options_.advantage_std)
          .flatten()
          .contiguous();  // [units]
  return std::vector<double>(advantages.data_ptr<double>(),
                             advantages.data_ptr<double>() + advantages.numel());
}

void TrainStep::learn(StepOutcome& out, const SharedUnits& shared, double lr) {
  // Minibatches are contiguous ranges of the global units, so every rank agrees on them.
  const Sharding minibatches(sharding_.units(), static_cast<int>(options_.minibatches));
  const CommStats before = sync_.stats();
  for (int64_t epoch = 0; epoch < options_.ppo_epochs; ++epoch) {
    for (int mb = 0; mb < minibatches.ranks(); ++mb) {
      out.grad_norm = minibatch_update(out.units, minibatches.range(mb), shared, lr, out);
      ++out.updates;
    }
  }
  const CommStats& after = sync_.stats();
  out.seconds.communication = (after.copy_seconds - before.copy_seconds) +
                              (after.collective_seconds - before.collective_seconds);
}

PolicyLoss TrainStep::local_loss(const std::vector<UnitOutcome*>& local, double normalizer) {
  std::vector<std::string> prompts;
  std::vector<Rewrite> rewrites;
  std::vector<const std::vector<float>*> old_rows, ref_rows;
  std::vector<double> advantages;
  for (const UnitOutcome* unit : local) {
    prompts.push_back(unit->prompt);
    rewrites.push_back(unit->rewrite);
    old_rows.push_back(&unit->rewrite.old_logprobs);
    ref_rows.push_back(&unit->rewrite.ref_logprobs);
    advantages.push_back(unit->advantage);
  }
  const TokenLogProbs now = prompter_.log_probs(prompts, rewrites);  // [local, tokens]
  const auto device = now.logprobs.device();
  const int64_t tokens = now.logprobs.size(1);
  PolicyLossOptions options;
  options.clip = options_.clip;
  options.kl_coef = options_.kl_coef;
  options.kl_mode = options_.kl_mode;
  options.kl_estimator = options_.kl_estimator;
  options.normalizer = normalizer;
  return policy_loss({now.logprobs, padded_rows(old_rows, tokens).to(device),
                      padded_rows(ref_rows, tokens).to(device), now.mask,
                      torch::tensor(advantages, torch::kFloat32).to(device)},
                     options);
}

double TrainStep::minibatch_update(std::vector<UnitOutcome>& units, const UnitRange& global,
                                   const SharedUnits& shared, double lr, StepOutcome& out) {
  double tokens = 0;
  for (int64_t u = global.begin; u < global.end; ++u) tokens += shared.tokens[u];
  const double normalizer = options_.normalize == LossNormalization::kUnits
                                ? static_cast<double>(global.size())
                                : std::max(1.0, tokens);
  std::vector<UnitOutcome*> local;
  for (UnitOutcome& unit : units) {
    if (global.contains(unit.unit)) local.push_back(&unit);
  }
  // A rank without units in this minibatch contributes zero gradients.
  for (torch::Tensor& param : prompter_.parameters()) param.mutable_grad() = torch::Tensor();
  PolicyLoss loss;
  if (!local.empty()) {
    ScopedSeconds timer(out.seconds.backward);
    loss = local_loss(local, normalizer);
  }
  check_finite_loss(loss, local, out.step);
  if (loss.loss.defined()) {
    ScopedSeconds timer(out.seconds.backward);
    loss.loss.backward();
    out.loss += loss.policy_term + loss.kl_term;
    double local_tokens = 0;
    for (const UnitOutcome* unit : local) local_tokens += unit->rewrite.tokens.size();
    out.clipped_fraction += loss.clipped_fraction * local_tokens;
  }
  return sync_.update(optimizer_, lr, options_.max_grad_norm, 1.0);
}

void TrainStep::check_finite_loss(const PolicyLoss& loss, const std::vector<UnitOutcome*>& units,
                                  int64_t step) {
  std::string problem;
  if (loss.loss.defined() && !std::isfinite(loss.policy_term + loss.kl_term)) {
    // Name the first unit whose own loss is not finite: its advantage or its log-probs.
    for (const UnitOutcome* unit : units) {
      const auto& logprobs = unit->rewrite.old_logprobs;
      const bool bad_logprobs =
          std::any_of(logprobs.begin(), logprobs.end(), [](float v) { return !std::isfinite(v); });
      if (bad_logprobs || !std::isfinite(unit->advantage)) {
        problem = "non-finite loss at " + describe_unit(step, *unit, comm_.rank());
        break;
      }
    }
    if (problem.empty()) {
      problem = "non-finite loss on rank " + std::to_string(comm_.rank()) + " at step " +
                std::to_string(step) + " (the prompter's log-probs of its units)";
    }
  }
  const std::vector<std::string> problems = comm_.allgather(problem, "loss check");
  for (const std::string& p : problems) {
    if (!p.empty()) throw RuntimeError(p + "; the step is stopped before any weight changes");
  }
}

void TrainStep::summarize(StepOutcome& out, const SharedUnits& shared) {
  double local_tokens = 0, reward_sum = 0, reward_squares = 0, reward_count = 0;
  for (const UnitOutcome& unit : out.units) {
    local_tokens += unit.rewrite.tokens.size();
    for (double r : unit.rewards) {
      reward_sum += r;
      reward_squares += r * r;
      reward_count += 1;
    }
  }
  // One collective for every metric that sums over ranks.
  double sums[6] = {out.loss,   out.clipped_fraction, local_tokens * options_.ppo_epochs,
                    reward_sum, reward_squares,       reward_count};
  {
    ScopedSeconds timer(out.seconds.waiting);
    comm_.allreduce_sum(sums, 6, "step metrics");
  }
  out.loss = sums[0] / std::max<int64_t>(1, out.updates);
  out.clipped_fraction = sums[2] > 0 ? sums[1] / sums[2] : 0.0;
  out.reward_mean = sums[3] / sums[5];
  out.reward_std = std::sqrt(std::max(0.0, sums[4] / sums[5] - out.reward_mean * out.reward_mean));
  double kl_sum = 0, tokens = 0;
  for (size_t u = 0; u < shared.kl.size(); ++u) {
    kl_sum += shared.kl[u];
    tokens += shared.tokens[u];
  }
  out.kl_mean = kl_sum / static_cast<double>(shared.kl.size());
  out.rewrite_tokens = static_cast<int64_t>(tokens);
  out.unit_rewards = shared.rewards;
  out.unit_kl = shared.kl;
  out.unit_choices = shared.choices;
}

}  // namespace alignpro
