#include "align/training_run.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <optional>

#include "align/evaluation.h"
#include "align/job_models.h"
#include "align/optimizer.h"
#include "align/pool_prompter.h"
#include "align/train_step.h"
#include "common/error.h"
#include "common/log.h"
#include "io/checkpoint.h"
#include "io/results_file.h"
#include "model/device.h"

namespace alignpro {

namespace {

std::atomic<int> g_stop_signals{0};

void on_stop_signal(int) {
  if (g_stop_signals.fetch_add(1) >= 1) _exit(kExitPreempted);
}

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

std::string clock_text(double seconds) {
  const auto s = static_cast<long long>(seconds + 0.5);
  char text[32];
  std::snprintf(text, sizeof(text), "%02lld:%02lld:%02lld", s / 3600, s / 60 % 60, s % 60);
  return text;
}

RunInfo run_info(const Job& job, Communicator& comm) {
  RunInfo info;
  info.job_name = job.run.name;
  info.job_text = job.text;
  if (!job.overrides.empty()) {  // so that the file tells the whole job, as it was run
    info.job_text += "\n# --set overrides of this run, applied after the lines above:\n";
    for (const auto& o : job.overrides) info.job_text += "# " + o + "\n";
  }
  info.job_hash = job.results_hash();
  info.world_size = comm.size();
  info.hosts = comm.allgather(comm.host(), "hosts");
  info.total_steps = job.run.steps;
  if (job.prompter.kind == "pool" && job.run.mode != "rlhf") {
    info.pool_templates = job.prompter.pool;
    info.pool_reference = job.prompter.pool_reference;
    if (info.pool_reference.empty()) {  // uniform when the job gives none
      info.pool_reference.assign(info.pool_templates.size(), 1.0 / info.pool_templates.size());
    }
  }
  return info;
}

std::string checkpoint_folder(const Job& job) {
  return job.run.output + ".checkpoints";
}

// Checkpoint names of the pool's reward estimate.
constexpr char kPoolSums[] = "pool_estimate/reward_sums";
constexpr char kPoolCounts[] = "pool_estimate/counts";

// The training state of one rank: models, optimiser, gradient aggregation and the step.
struct Trainer {
  const Job& job;
  Communicator& comm;
  PromptDataset train_set;
  std::optional<PromptDataset> held_out;  // data.eval, when the job names one
  PromptSchedule schedule;
  JobModels models;
  std::unique_ptr<LmResponder> rlhf_target;  // eval.rlhf_target, loaded once, when set
  std::unique_ptr<AdamW> optimizer;          // null on ranks that do not hold it
  std::unique_ptr<GradientSync> sync;
  std::unique_ptr<TrainStep> step;
  LrSchedule lr;
  PoolRewardEstimate pool_rewards{0};

  Trainer(const Job& j, Communicator& c)
      : job(j),
        comm(c),
        train_set(PromptDataset::load(j.data.train, dataset_options(j.data))),
        held_out(j.data.eval.empty()
                     ? std::nullopt
                     : std::optional(PromptDataset::load(j.data.eval, dataset_options(j.data)))),
        schedule(static_cast<uint64_t>(j.run.seed), train_set.size(), j.optim.batch_prompts,
                 j.data.shuffle),
        models(load_job_models(j, c.local_rank())),
        lr(lr_schedule(j.optim, j.run.steps)) {
    std::vector<torch::Tensor> params;
    std::vector<std::string> names;
    for (auto& [name, tensor] : models.named_parameters()) {
      params.push_back(tensor);
      names.push_back(name);
    }
    sync = std::make_unique<GradientSync>(c, params, parse_aggregation(j.optim.aggregation));
    if (sync->holds_optimizer()) {
      optimizer = std::make_unique<AdamW>(params, adamw_options(j.optim), names);
    }
    step = std::make_unique<TrainStep>(c, train_step_options(j), train_set, schedule,
                                       models.prompter(), models.responder(), *models.reward, *sync,
                                       optimizer.get());
    if (models.pool) pool_rewards = PoolRewardEstimate(models.pool->size());
    // An rlhf-mode run evaluates its own policy instead (models.tuned).
    if (held_out && !j.eval.rlhf_target.empty() && j.run.mode != "rlhf") {
      rlhf_target = load_target(j, j.eval.rlhf_target, models.device,
                                parse_dtype(j.runtime.dtype, models.device));
    }
  }

  // What answers the prompts of the "rlhf" evaluation condition, if anything.
  LmResponder* rlhf_responder() { return models.tuned ? models.tuned.get() : rlhf_target.get(); }

  EvaluationResult evaluate_held_out(int64_t eval_index, int64_t steps_done) {
    return evaluate(job, comm, models, rlhf_responder(), *held_out, eval_index, steps_done);
  }

  Checkpoint checkpoint(int64_t steps_done) {
    Checkpoint c;
    c.step = steps_done;
    const auto cursor = schedule.cursor_at(steps_done);
    c.cursor.epoch = cursor.epoch;
    c.cursor.position = cursor.position;
    for (auto& [name, tensor] : models.named_parameters()) {
      c.tensors[name] = tensor.detach().to(torch::kCPU).clone();
    }
    if (optimizer) {
      for (const auto& [name, tensor] : optimizer->state()) c.tensors["optim/" + name] = tensor;
    }
    if (models.pool) {  // the estimate rho* is computed from, kept by the coordinator
      c.tensors[kPoolSums] = torch::tensor(pool_rewards.sums(), torch::kFloat64);
      c.tensors[kPoolCounts] = torch::tensor(pool_rewards.counts(), torch::kInt64);
    }
    c.models = models.identities;
    c.job_hash = job.results_hash();
    c.world_size = comm.size();
    return c;
  }

  // Adds the step's rewards to the pool's reward estimate (on the coordinator, which keeps it)
  // and says where the trained distribution stands against rho*.
  PoolState pool_state(const StepOutcome& out) {
    for (size_t u = 0; u < out.unit_choices.size(); ++u) {
      pool_rewards.add(out.unit_choices[u], out.unit_rewards[u]);
    }
    const auto standing = pool_standing(*models.pool, pool_rewards, job.optim.kl_coef);
    PoolState state;
    state.step = out.step + 1;
    state.trained = standing.trained;
    state.rho_star = standing.rho_star;
    state.total_variation = standing.total_variation;
    state.kl_rho_star_reference = standing.kl_rho_star_reference;
    state.kl_trained_reference = standing.kl_trained_reference;
    return state;
  }

  void restore(const Checkpoint& c, const std::string& path) {
    torch::NoGradGuard no_grad;
    for (auto& [name, tensor] : models.named_parameters()) {
      auto it = c.tensors.find(name);
      if (it == c.tensors.end() || !it->second.sizes().equals(tensor.sizes())) {
        throw InputError(path + ": checkpoint has no tensor '" + name + "' of shape " +
                         c10::str(tensor.sizes()) + "; it was written for another prompter");
      }
      tensor.copy_(it->second.to(tensor.device(), tensor.scalar_type()));
    }
    if (optimizer) {
      std::map<std::string, torch::Tensor> state;
      for (const auto& [name, tensor] : c.tensors) {
        if (name.rfind("optim/", 0) == 0) state[name.substr(6)] = tensor;
      }
      optimizer->load_state(state, path);
    }
    if (models.pool && c.tensors.count(kPoolSums) && c.tensors.count(kPoolCounts)) {
      const torch::Tensor sums = c.tensors.at(kPoolSums).to(torch::kFloat64).contiguous();
      const torch::Tensor counts = c.tensors.at(kPoolCounts).to(torch::kInt64).contiguous();
      pool_rewards = PoolRewardEstimate(
          std::vector<double>(sums.data_ptr<double>(), sums.data_ptr<double>() + sums.numel()),
          std::vector<int64_t>(counts.data_ptr<int64_t>(),
                               counts.data_ptr<int64_t>() + counts.numel()));
    }
    DataCursor saved;
    saved.epoch = c.cursor.epoch;
    saved.position = c.cursor.position;
    schedule.check_resume(c.step, saved);
  }
};

// What rank 0 decides about the output before any model loads, shared with every rank.
struct StartPlan {
  int64_t first_step = 0;       // steps already done
  std::string checkpoint_path;  // empty: start from scratch
};

StartPlan plan_start(const Job& job, Communicator& comm) {
  std::string error, checkpoint;
  int64_t first_step = 0;
  if (comm.is_coordinator()) {
    try {
      const auto existing = check_results_output(job.run.output, job.results_hash());
      if (existing && existing->status == RunStatus::kComplete) {
        throw InputError(job.run.output + ": holds a complete run of this job (" +
                         std::to_string(existing->steps_done) +
                         " steps); choose another run.output or remove the file");
      }
      if (existing && job.run.resume == "never") {
        throw InputError(job.run.output + ": holds an unfinished run (status " +
                         status_name(existing->status) + ") and run.resume = \"never\"");
      }
      if (!existing && job.run.resume == "require") {
        throw InputError(job.run.output + ": no run to resume and run.resume = \"require\"");
      }
      if (existing) {
        CheckpointStore store(checkpoint_folder(job), job.run.keep_checkpoints);
        if (auto latest = store.latest()) {
          checkpoint = latest->path;
          first_step = latest->step;
        }
      }
    } catch (const Error& e) {
      error = e.what();
    }
  }
  error = comm.broadcast(error, 0, "start plan");
  if (!error.empty()) throw InputError(error);
  StartPlan plan;
  plan.checkpoint_path = comm.broadcast(checkpoint, 0, "start plan");
  comm.broadcast(&first_step, sizeof(first_step), 0, "start plan");
  plan.first_step = first_step;
  return plan;
}

std::vector<TrainingSample> step_samples(const Job& job, const StepOutcome& out, int rank) {
  std::vector<TrainingSample> samples;
  for (const auto& unit : out.units) {
    double logprob = 0, ref = 0;
    for (float v : unit.rewrite.old_logprobs) logprob += v;
    for (float v : unit.rewrite.ref_logprobs) ref += v;
    for (size_t m = 0; m < unit.responses.size(); ++m) {
      TrainingSample s;
      s.step = out.step + 1;
      s.prompt_index = unit.prompt_index;
      s.candidate = unit.candidate;
      s.sample = static_cast<int64_t>(m);
      s.rank = rank;
      s.seed = static_cast<uint64_t>(job.run.seed);
      s.rewrite_stream = unit.rewrite_stream;
      s.response_stream = unit.response_streams[m];
      s.prompt = unit.prompt;
      s.rewrite = unit.rewrite.text;
      s.response = unit.responses[m];
      s.reward = unit.rewards[m];
      s.advantage = unit.advantage;
      s.logprob_prompter = logprob;
      s.logprob_reference = ref;
      s.kl = unit.kl;
      samples.push_back(std::move(s));
    }
  }
  return samples;
}

PhaseValues phase_values(const StepPhaseSeconds& s) {
  return {
      s.prompter_generation, s.target_generation, s.reward, s.backward, s.communication, s.waiting};
}

StepMetrics step_metrics(const Job& job, const StepOutcome& out, const PromptSchedule& schedule,
                         double lr, double step_s, double elapsed, int64_t steps_this_session) {
  StepMetrics m;
  m.step = out.step + 1;
  m.epoch = schedule.cursor_at(out.step).epoch;
  m.units = job.units_per_step();
  m.samples = m.units * job.target.samples;
  m.reward_mean = out.reward_mean;
  m.reward_std = out.reward_std;
  m.kl_mean = out.kl_mean;
  m.loss = out.loss;
  m.grad_norm = out.grad_norm;
  m.learning_rate = lr;
  m.tokens = out.rewrite_tokens;
  m.tokens_per_s = step_s > 0 ? static_cast<double>(out.rewrite_tokens) / step_s : 0;
  m.step_s = step_s;
  m.elapsed_s = elapsed;
  m.eta_s = elapsed / std::max<int64_t>(1, steps_this_session) * (job.run.steps - m.step);
  const auto seconds = phase_values(out.seconds);
  for (int i = 0; i < kPhaseCount; ++i) m.phase_share[i] = step_s > 0 ? seconds[i] / step_s : 0;
  return m;
}

void print_progress(const StepMetrics& m, int64_t total) {
  const auto& p = m.phase_share;
  spdlog::info(
      "[train] step {}/{} | reward {:.4f} ± {:.4f} | KL {:.4f} | loss {:+.4f} | gnorm {:.3f} | "
      "{:.0f} tok/s | rewrite {:.0f}% target {:.0f}% reward {:.0f}% backward {:.0f}% comm {:.0f}% "
      "wait {:.0f}% | elapsed {} ETA {}",
      m.step, total, m.reward_mean, m.reward_std, m.kl_mean, m.loss, m.grad_norm, m.tokens_per_s,
      100 * p[0], 100 * p[1], 100 * p[2], 100 * p[3], 100 * p[4], 100 * p[5],
      clock_text(m.elapsed_s), clock_text(m.eta_s));
}

// The coordinator's results file; other ranks hold none.
std::optional<ResultsWriter> open_results(const Job& job, Communicator& comm, const StartPlan& plan,
                                          const RunInfo& info) {
  if (!comm.is_coordinator()) return std::nullopt;
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(job.run.output).parent_path(), ec);
  if (!std::filesystem::exists(job.run.output)) return ResultsWriter::create(job.run.output, info);
  auto writer = ResultsWriter::resume(job.run.output, info);
  writer.truncate_to(plan.first_step);
  return writer;
}

void record_evaluation(Trainer& trainer, std::optional<ResultsWriter>& writer, int64_t eval_index,
                       int64_t step) {
  if (!trainer.held_out) return;
  const auto result = trainer.evaluate_held_out(eval_index, step);
  if (!writer) return;
  writer->append(result.summaries);
  writer->append(result.samples);
  writer->commit_step(step);  // an evaluation belongs to the step it follows
  spdlog::info("[eval] after step {}:\n{}", step, format_eval_table(result.summaries));
}

}  // namespace

void install_stop_signals() {
  struct sigaction action {};
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGTERM, &action, nullptr);
  sigaction(SIGUSR1, &action, nullptr);
}

int run_training(const Job& job, Communicator& comm) {
  const StartPlan plan = plan_start(job, comm);
  const RunInfo info = run_info(job, comm);
  Trainer trainer(job, comm);
  CheckpointStore store(checkpoint_folder(job), job.run.keep_checkpoints);
  if (!plan.checkpoint_path.empty()) {
    const Checkpoint saved = read_checkpoint(plan.checkpoint_path);
    const auto conflicts = resume_conflicts(saved, job.results_hash(), trainer.models.identities);
    if (!conflicts.empty()) {
      std::string text;
      for (const auto& c : conflicts) text += "\n  " + c;
      throw InputError(plan.checkpoint_path + ": cannot resume:" + text);
    }
    trainer.restore(saved, plan.checkpoint_path);
    if (comm.is_coordinator()) {
      spdlog::info("[train] resuming {} from step {} ({})", job.run.name, plan.first_step,
                   plan.checkpoint_path);
    }
  }
  auto writer = open_results(job, comm, plan, info);
  auto save_checkpoint = [&](int64_t steps_done) {
    std::string path;
    if (comm.is_coordinator()) {
      path = store.save(trainer.checkpoint(steps_done));
      writer->set_checkpoint(steps_done, path);
    }
    comm.barrier("checkpoint");
  };

  try {
    const auto start = Clock::now();
    // Evaluations already done (after every eval.every steps but the last), so that a resumed
    // run numbers, and so draws, its evaluations as an uninterrupted one does.
    const int64_t every = job.eval.every;
    int64_t eval_index = every > 0 ? std::min(plan.first_step, job.run.steps - 1) / every : 0;
    for (int64_t s = plan.first_step; s < job.run.steps; ++s) {
      const auto step_start = Clock::now();
      const double lr = trainer.lr.at(s);
      const StepOutcome out = trainer.step->run(s, lr);
      const double step_s = seconds_since(step_start);
      RankRecords records;
      records.step = s + 1;
      records.rank = comm.rank();
      records.samples = step_samples(job, out, comm.rank());
      records.timings.step = s + 1;
      records.timings.rank = comm.rank();
      records.timings.seconds = phase_values(out.seconds);
      const auto gathered = comm.gather(to_bytes(records), 0, "records");
      if (job.optim.checksum_every > 0 && (s + 1) % job.optim.checksum_every == 0) {
        trainer.sync->check_replicas(s + 1);
      }
      if (writer) {
        for (const auto& bytes : gathered) writer->append(from_bytes<RankRecords>(bytes));
        const auto metrics = step_metrics(job, out, trainer.schedule, lr, step_s,
                                          seconds_since(start), s + 1 - plan.first_step);
        writer->append(metrics);
        if (trainer.models.pool) writer->append(trainer.pool_state(out));
        writer->commit_step(s + 1);
        if ((s + 1) % job.run.log_every == 0 || s + 1 == job.run.steps) {
          print_progress(metrics, job.run.steps);
        }
      }
      const bool last = s + 1 == job.run.steps;
      if (every > 0 && (s + 1) % every == 0 && !last) {
        record_evaluation(trainer, writer, eval_index++, s + 1);
      }
      const bool stop = comm.any(g_stop_signals.load() > 0, "stop signal");
      if (stop || last ||
          (job.run.checkpoint_every > 0 && (s + 1) % job.run.checkpoint_every == 0)) {
        save_checkpoint(s + 1);
      }
      if (stop && !last) {
        if (writer) {
          writer->set_status(RunStatus::kPreempted);
          spdlog::warn(
              "[train] stopped by a signal after step {}; resume by running the same "
              "job again",
              s + 1);
        }
        return kExitPreempted;
      }
    }
    record_evaluation(trainer, writer, eval_index, job.run.steps);
    if (job.run.mode == "rlhf") {
      const std::string folder = tuned_target_folder(job);
      if (comm.is_coordinator()) {
        save_tuned_target(job, trainer.models, folder);
        spdlog::info("[train] saved the tuned target to {} (use it as eval.rlhf_target)", folder);
      }
      comm.barrier("tuned target");
    }
    if (writer) {
      writer->set_status(RunStatus::kComplete);
      spdlog::info("[train] complete: {}", job.run.output);
    }
  } catch (const std::exception& e) {
    if (writer) writer->set_status(RunStatus::kFailed, e.what());
    throw;
  }
  return kExitOk;
}

int run_evaluation(const Job& job, Communicator& comm) {
  if (job.data.eval.empty()) {
    throw InputError(job.path + ": data.eval: empty; `alignpro eval` needs held-out prompts");
  }
  Trainer trainer(job, comm);
  int64_t step = 0;
  std::string latest;
  if (comm.is_coordinator()) {
    CheckpointStore store(checkpoint_folder(job), job.run.keep_checkpoints);
    if (auto entry = store.latest()) latest = entry->path;
  }
  latest = comm.broadcast(latest, 0, "eval checkpoint");
  if (!latest.empty()) {
    const Checkpoint saved = read_checkpoint(latest);
    trainer.restore(saved, latest);
    step = saved.step;
  }
  const auto result = trainer.evaluate_held_out(0, step);
  if (comm.is_coordinator()) {
    std::printf("evaluation of %s after %lld training steps:\n%s", job.run.name.c_str(),
                static_cast<long long>(step), format_eval_table(result.summaries).c_str());
    int shown = 0;
    for (const auto& s : result.samples) {
      if (s.condition != "align-pro" || s.decoding != result.samples.front().decoding) continue;
      if (shown++ == 3) break;
      std::printf("\nprompt:   %s\nrewrite:  %s\nresponse: %s\nreward:   %.3f\n", s.prompt.c_str(),
                  s.rewrite.c_str(), s.response.c_str(), s.reward);
    }
  }
  return kExitOk;
}

}  // namespace alignpro
