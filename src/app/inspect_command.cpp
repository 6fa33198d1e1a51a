// `alignpro inspect RUN.h5`: what a results file says, for a person at a terminal: the run's
// status, its progress, the latest metrics, the evaluation table and a few example rewrites.
// Works on files of running, finished, failed and preempted runs.
#include <fmt/format.h>

#include <algorithm>
#include <iostream>
#include <memory>

#include "app/command.h"
#include "io/results_file.h"

namespace alignpro {

namespace {

struct InspectArgs {
  std::string file;
  int examples = 3;
  int text_chars = 160;
};

// One line of at most `limit` characters (UTF-8 aware), newlines shown as "\n".
std::string one_line(const std::string& text, size_t limit) {
  std::string out;
  size_t characters = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    if ((c & 0xC0) != 0x80) {
      if (characters == limit) return out + "...";
      ++characters;
    }
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\r' || c == '\t') {
      out += ' ';
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

std::string clock(double seconds) {
  if (!(seconds >= 0)) return "-";
  const auto total = static_cast<long long>(seconds + 0.5);
  return fmt::format("{:02d}:{:02d}:{:02d}", total / 3600, total / 60 % 60, total % 60);
}

std::string with_ci(const Estimate& e) {
  return fmt::format("{:.3f} [{:.3f}, {:.3f}]", e.value, e.ci_low, e.ci_high);
}

void print_header(const ResultsReader& reader) {
  const ResultsHeader& h = reader.header();
  std::cout << h.path << "\n";
  std::cout << fmt::format(
      "  format      alignpro results, version {} (created by alignpro {}, "
      "git {})\n",
      h.format_version, h.alignpro_version, h.git_revision);
  std::cout << fmt::format("  job         {} (hash {})\n", h.job_name, format_job_hash(h.job_hash));
  std::cout << fmt::format("  status      {}\n", status_name(h.status));
  if (h.status == RunStatus::kFailed) std::cout << "  error       " << h.error_message << "\n";
  std::cout << fmt::format("  steps       {} of {} done\n", h.steps_done, h.total_steps);
  if (h.checkpoint_step >= 0) {
    std::cout << fmt::format("  checkpoint  step {} ({})\n", h.checkpoint_step, h.checkpoint_file);
  } else {
    std::cout << "  checkpoint  none yet\n";
  }
  std::cout << fmt::format("  time        started {}, last update {}\n", h.start_time,
                           h.last_update);
  std::string hosts;
  for (size_t r = 0; r < h.hosts.size(); ++r) hosts += (r ? ", " : "") + h.hosts[r];
  std::cout << fmt::format("  ranks       {} ({}); {} session{}\n", h.world_size, hosts,
                           reader.rows("sessions"), reader.rows("sessions") == 1 ? "" : "s");
}

void print_metrics(const ResultsReader& reader) {
  const auto metrics = reader.metrics();
  if (metrics.empty()) {
    std::cout << "\nNo training step recorded yet.\n";
    return;
  }
  const StepMetrics& m = metrics.back();
  std::cout << fmt::format("\nLatest metrics (step {}, epoch {})\n", m.step, m.epoch);
  std::cout << fmt::format("  reward      {:.4f} +- {:.4f} over {} responses\n", m.reward_mean,
                           m.reward_std, m.samples);
  std::cout << fmt::format("  kl          {:.5f} nats\n", m.kl_mean);
  std::cout << fmt::format("  loss        {:.5f}   grad norm {:.4f}   learning rate {:.3g}\n",
                           m.loss, m.grad_norm, m.learning_rate);
  std::cout << fmt::format("  speed       {:.1f} tokens/s, {:.2f} s per step\n", m.tokens_per_s,
                           m.step_s);
  std::cout << fmt::format("  elapsed     {}   eta {}\n", clock(m.elapsed_s), clock(m.eta_s));
  std::string shares;
  for (int p = 0; p < kPhaseCount; ++p) {
    std::string name = phase_name(static_cast<Phase>(p));
    std::replace(name.begin(), name.end(), '_', ' ');
    shares += fmt::format("{}{} {:.1f}%", p ? ", " : "", name, 100 * m.phase_share[p]);
  }
  std::cout << "  time spent  " << shares << "\n";
}

void print_evaluation(const ResultsReader& reader) {
  const auto summaries = reader.eval_summaries();
  if (summaries.empty()) {
    std::cout << "\nNo evaluation recorded yet.\n";
    return;
  }
  const int64_t latest = summaries.back().eval_index;
  const auto first = std::find_if(summaries.begin(), summaries.end(),
                                  [&](const EvalSummary& s) { return s.eval_index == latest; });
  std::cout << fmt::format(
      "\nEvaluation {} (after step {}; {:.0f}% intervals; {} evaluation{} "
      "in the file)\n",
      latest, first->step, 100 * first->confidence, latest + 1, latest == 0 ? "" : "s");
  std::cout << fmt::format("  {:<10} {:<8} {:>5}  {:<26} {:<26} {}\n", "condition", "decoding", "n",
                           "mean reward", "win rate vs none", "gain vs none");
  for (auto it = first; it != summaries.end(); ++it) {
    std::cout << fmt::format("  {:<10} {:<8} {:>5}  {:<26} {:<26} {}\n", it->condition,
                             it->decoding, it->n, with_ci(it->mean), with_ci(it->win_rate),
                             with_ci(it->gain));
  }
}

void print_pool(const ResultsReader& reader, size_t text_chars) {
  const auto states = reader.pool_states();
  if (states.empty()) return;
  const auto templates = reader.pool_templates();
  const PoolState& s = states.back();
  std::cout << fmt::format(
      "\nPool prompter (step {}): total variation to rho* {:.4f}, "
      "KL(rho* || reference) {:.4f} nats\n",
      s.step, s.total_variation, s.kl_rho_star_reference);
  for (size_t i = 0; i < s.trained.size(); ++i) {
    const std::string text = i < templates.size() ? templates[i].text : "";
    std::cout << fmt::format("  {:>3}  trained {:.3f}  rho* {:.3f}  {}\n", i, s.trained[i],
                             s.rho_star[i], one_line(text, text_chars));
  }
}

void print_examples(const ResultsReader& reader, int count, size_t text_chars) {
  const int64_t step = reader.header().steps_done;
  if (count <= 0 || step <= 0 || reader.rows("samples") == 0) return;
  auto samples = reader.samples_of_step(step);
  if (samples.empty()) return;
  // The best, the worst and evenly spaced ones between them, by reward.
  std::stable_sort(samples.begin(), samples.end(),
                   [](const auto& a, const auto& b) { return a.reward > b.reward; });
  const size_t shown = std::min<size_t>(count, samples.size());
  std::cout << fmt::format("\nExample rewrites (step {}, {} of {} responses, best first)\n", step,
                           shown, samples.size());
  for (size_t i = 0; i < shown; ++i) {
    const size_t index = shown == 1 ? 0 : i * (samples.size() - 1) / (shown - 1);
    const TrainingSample& s = samples[index];
    std::cout << fmt::format("  [prompt {}, candidate {}, sample {}, rank {}] reward {:.4f}\n",
                             s.prompt_index, s.candidate, s.sample, s.rank, s.reward);
    std::cout << "    prompt    " << one_line(s.prompt, text_chars) << "\n";
    std::cout << "    rewrite   " << one_line(s.rewrite, text_chars) << "\n";
    std::cout << "    response  " << one_line(s.response, text_chars) << "\n";
  }
}

int run_inspect(const InspectArgs& args) {
  const ResultsReader reader(args.file);
  const auto chars = static_cast<size_t>(args.text_chars);
  print_header(reader);
  print_metrics(reader);
  print_evaluation(reader);
  print_pool(reader, chars);
  print_examples(reader, args.examples, chars);
  return 0;
}

}  // namespace

Command add_inspect_command(CLI::App& app) {
  auto args = std::make_shared<InspectArgs>();
  auto* sub =
      app.add_subcommand("inspect",
                         "Summarise a results file: status, progress, latest metrics, evaluation, "
                         "example rewrites (also while the run is going)");
  sub->add_option("file", args->file, "Results file (HDF5) of a run")->required();
  sub->add_option("--examples", args->examples, "How many example rewrites to show (default 3)")
      ->check(CLI::NonNegativeNumber);
  sub->add_option("--width", args->text_chars,
                  "Characters of each text to show before cutting it (default 160)")
      ->check(CLI::PositiveNumber);
  return {sub, [args] { return run_inspect(*args); }};
}

}  // namespace alignpro
