#include "io/results_tables.h"

namespace alignpro::results {

namespace {

using h5::ColumnData;
using h5::ColumnType;

template <class T>
constexpr ColumnType column_type_of() {
  static_assert(std::is_same_v<T, int64_t> || std::is_same_v<T, uint64_t> ||
                    std::is_same_v<T, double> || std::is_same_v<T, std::string>,
                "a column holds int64, uint64, double or string values");
  if constexpr (std::is_same_v<T, int64_t>) {
    return ColumnType::kInt64;
  } else if constexpr (std::is_same_v<T, uint64_t>) {
    return ColumnType::kUInt64;
  } else if constexpr (std::is_same_v<T, double>) {
    return ColumnType::kFloat64;
  } else {
    return ColumnType::kString;
  }
}

template <class R, class T>
Column<R> computed(std::string name, std::string unit, std::string doc,
                   std::function<T(const R&)> get, std::function<void(R&, T)> set) {
  Column<R> column{std::move(name), column_type_of<T>(), std::move(unit), std::move(doc), {}, {}};
  column.push = [get](const R& record, ColumnData& data) {
    std::get<std::vector<T>>(data).push_back(get(record));
  };
  column.pull = [set](const ColumnData& data, size_t row, R& record) {
    set(record, std::get<std::vector<T>>(data)[row]);
  };
  return column;
}

template <class R, class T>
Column<R> field(std::string name, std::string unit, std::string doc, T R::*member) {
  return computed<R, T>(
      std::move(name), std::move(unit), std::move(doc),
      [member](const R& record) { return record.*member; },
      [member](R& record, T value) { record.*member = std::move(value); });
}

// One column per phase, named `<prefix><phase><suffix>`.
template <class R>
void phase_columns(std::vector<Column<R>>& columns, PhaseValues R::*member,
                   const std::string& prefix, const std::string& suffix, const std::string& unit,
                   const std::string& doc) {
  for (int p = 0; p < kPhaseCount; ++p) {
    const std::string phase = phase_name(static_cast<Phase>(p));
    std::string spaced = phase;
    for (char& c : spaced) c = c == '_' ? ' ' : c;
    columns.push_back(computed<R, double>(
        prefix + phase + suffix, unit, doc + spaced,
        [member, p](const R& record) { return (record.*member)[p]; },
        [member, p](R& record, double value) { (record.*member)[p] = value; }));
  }
}

// Three columns: `<name>`, `<name>_ci_low`, `<name>_ci_high`.
void estimate_columns(std::vector<Column<EvalSummary>>& columns, const std::string& name,
                      Estimate EvalSummary::*member, const std::string& unit,
                      const std::string& doc) {
  struct Part {
    const char* suffix;
    double Estimate::*value;
    std::string doc;
  };
  const Part parts[] = {
      {"", &Estimate::value, doc},
      {"_ci_low", &Estimate::ci_low, "Lower end of the confidence interval of " + name},
      {"_ci_high", &Estimate::ci_high, "Upper end of the confidence interval of " + name}};
  for (const auto& part : parts) {
    const auto value = part.value;
    columns.push_back(computed<EvalSummary, double>(
        name + part.suffix, unit, part.doc,
        [member, value](const EvalSummary& r) { return (r.*member).*value; },
        [member, value](EvalSummary& r, double v) { (r.*member).*value = v; }));
  }
}

const std::string kStepDoc = "Training step the row belongs to (steps count from 1)";

}  // namespace

const Table<StepMetrics>& metrics_table() {
  static const Table<StepMetrics> table = [] {
    using R = StepMetrics;
    Table<R> t{
        "metrics", "One row per training step: the figures of the progress line.", true, 256, {}};
    auto& c = t.columns;
    c.push_back(field("step", "", kStepDoc, &R::step));
    c.push_back(field("epoch", "", "Pass over the training prompts, from 0", &R::epoch));
    c.push_back(field("units", "", "Work units of the step: prompts times candidates", &R::units));
    c.push_back(field("samples", "", "Responses scored in the step", &R::samples));
    c.push_back(
        field("reward_mean", "reward", "Mean reward of the step's responses", &R::reward_mean));
    c.push_back(
        field("reward_std", "reward", "Standard deviation of the step's rewards", &R::reward_std));
    c.push_back(field("kl_mean", "nats",
                      "Mean KL estimate between the prompter and the reference prompter",
                      &R::kl_mean));
    c.push_back(field("loss", "", "Training loss of the step", &R::loss));
    c.push_back(field("grad_norm", "", "Global gradient norm before clipping", &R::grad_norm));
    c.push_back(
        field("learning_rate", "", "Learning rate used for the step's update", &R::learning_rate));
    c.push_back(field("tokens", "tokens",
                      "Rewrite tokens the prompter sampled in the step (pool: one per unit)",
                      &R::tokens));
    c.push_back(field("tokens_per_s", "tokens/s", "Rewrite tokens per second of wall time",
                      &R::tokens_per_s));
    c.push_back(field("step_s", "s", "Wall time of the step", &R::step_s));
    c.push_back(
        field("elapsed_s", "s", "Wall time since this session of the run started", &R::elapsed_s));
    c.push_back(field("eta_s", "s", "Estimated wall time to the last step", &R::eta_s));
    phase_columns(c, &R::phase_share, "share_", "", "fraction",
                  "Fraction of the step's wall time spent in ");
    return t;
  }();
  return table;
}

const Table<TrainingSample>& samples_table() {
  static const Table<TrainingSample> table = [] {
    using R = TrainingSample;
    Table<R> t{"samples",
               "One row per scored response of every training step: prompt, rewrite, response "
               "and their numbers.",
               true,
               1024,
               {}};
    auto& c = t.columns;
    c.push_back(field("step", "", kStepDoc, &R::step));
    c.push_back(
        field("prompt_index", "", "Index of the prompt in the training set", &R::prompt_index));
    c.push_back(field("candidate", "", "Which of the prompt's K rewrites, from 0", &R::candidate));
    c.push_back(field("sample", "", "Which of the rewrite's M responses, from 0", &R::sample));
    c.push_back(field("rank", "", "MPI rank that produced the row", &R::rank));
    c.push_back(field("seed", "", "Run seed", &R::seed));
    c.push_back(field("rewrite_stream", "", "Id of the random stream the rewrite was drawn from",
                      &R::rewrite_stream));
    c.push_back(field("response_stream", "", "Id of the random stream the response was drawn from",
                      &R::response_stream));
    c.push_back(field("prompt", "", "Original prompt x", &R::prompt));
    c.push_back(field("rewrite", "", "The prompter's rewrite x' that the target saw", &R::rewrite));
    c.push_back(field("response", "", "The target's response y", &R::response));
    c.push_back(field("reward", "reward", "Reward r(x, y), scored against the original prompt",
                      &R::reward));
    c.push_back(field("advantage", "reward",
                      "Advantage used in the policy gradient (after the group baseline)",
                      &R::advantage));
    c.push_back(field("logprob_prompter", "nats",
                      "Log-probability of the rewrite under the prompter", &R::logprob_prompter));
    c.push_back(field("logprob_reference", "nats",
                      "Log-probability of the rewrite under the reference prompter",
                      &R::logprob_reference));
    c.push_back(
        field("kl", "nats", "KL estimate of the rewrite (prompter against reference)", &R::kl));
    return t;
  }();
  return table;
}

const Table<PhaseTimings>& timings_table() {
  static const Table<PhaseTimings> table = [] {
    using R = PhaseTimings;
    Table<R> t{
        "timings", "One row per step and rank: where the rank's wall time went.", true, 1024, {}};
    auto& c = t.columns;
    c.push_back(field("step", "", kStepDoc, &R::step));
    c.push_back(field("rank", "", "MPI rank", &R::rank));
    phase_columns(c, &R::seconds, "", "_s", "s", "Wall time of the rank in ");
    return t;
  }();
  return table;
}

const Table<EvalSummary>& eval_summary_table() {
  static const Table<EvalSummary> table = [] {
    using R = EvalSummary;
    Table<R> t{"eval/summary",
               "One row per evaluation, condition and decoding: the evaluation tables.",
               true,
               256,
               {}};
    auto& c = t.columns;
    c.push_back(field("eval_index", "", "Evaluation of the run, from 0", &R::eval_index));
    c.push_back(field(
        "step", "", "Training steps done when the evaluation ran (0: before training)", &R::step));
    c.push_back(field("condition", "",
                      "none (target on x), align-pro (target on the rewrite), rlhf (tuned target "
                      "on x)",
                      &R::condition));
    c.push_back(field("decoding", "", "greedy or sampled", &R::decoding));
    c.push_back(field("n", "", "Held-out prompts evaluated", &R::n));
    c.push_back(
        field("confidence", "fraction", "Level of the row's confidence intervals", &R::confidence));
    estimate_columns(c, "mean", &R::mean, "reward", "Mean reward");
    estimate_columns(c, "std", &R::std, "reward", "Standard deviation of the rewards");
    estimate_columns(c, "win_rate", &R::win_rate, "fraction",
                     "Fraction of prompts where the condition beats none (ties count half)");
    estimate_columns(c, "gain", &R::gain, "reward", "Mean paired reward difference against none");
    return t;
  }();
  return table;
}

const Table<EvalSample>& eval_samples_table() {
  static const Table<EvalSample> table = [] {
    using R = EvalSample;
    Table<R> t{
        "eval/samples", "One row per evaluated response behind /eval/summary.", true, 1024, {}};
    auto& c = t.columns;
    c.push_back(field("eval_index", "", "Evaluation of the run, from 0", &R::eval_index));
    c.push_back(field("step", "", "Training steps done when the evaluation ran", &R::step));
    c.push_back(field("condition", "", "none, align-pro or rlhf", &R::condition));
    c.push_back(field("decoding", "", "greedy or sampled", &R::decoding));
    c.push_back(
        field("prompt_index", "", "Index of the prompt in the held-out set", &R::prompt_index));
    c.push_back(field("prompt", "", "Original prompt x", &R::prompt));
    c.push_back(field("rewrite", "",
                      "What the target saw: the rewrite for align-pro, x itself otherwise",
                      &R::rewrite));
    c.push_back(field("response", "", "The target's response", &R::response));
    c.push_back(field("reward", "reward", "Reward r(x, y)", &R::reward));
    return t;
  }();
  return table;
}

const Table<PoolStepRow>& pool_steps_table() {
  static const Table<PoolStepRow> table = [] {
    using R = PoolStepRow;
    Table<R> t{"pool/steps",
               "pool prompters only: one row per step comparing the trained distribution with "
               "the exact optimum rho*.",
               true,
               256,
               {}};
    auto& c = t.columns;
    c.push_back(field("step", "", kStepDoc, &R::step));
    c.push_back(field("total_variation", "probability",
                      "Total variation distance between the trained distribution and rho*",
                      &R::total_variation));
    c.push_back(field("kl_rho_star_reference", "nats", "KL(rho* || reference distribution)",
                      &R::kl_rho_star_reference));
    c.push_back(field("kl_trained_reference", "nats",
                      "KL(trained distribution || reference distribution)",
                      &R::kl_trained_reference));
    return t;
  }();
  return table;
}

const Table<PoolDistributionRow>& pool_distribution_table() {
  static const Table<PoolDistributionRow> table = [] {
    using R = PoolDistributionRow;
    Table<R> t{"pool/distribution",
               "pool prompters only: one row per step and template, the two distributions.",
               true,
               1024,
               {}};
    auto& c = t.columns;
    c.push_back(field("step", "", kStepDoc, &R::step));
    c.push_back(field("template", "", "Index of the template in /pool/templates", &R::index));
    c.push_back(
        field("trained", "probability", "Probability under the trained prompter", &R::trained));
    c.push_back(
        field("rho_star", "probability", "Probability under the exact optimum rho*", &R::rho_star));
    return t;
  }();
  return table;
}

const Table<PoolTemplate>& pool_templates_table() {
  static const Table<PoolTemplate> table = [] {
    using R = PoolTemplate;
    Table<R> t{"pool/templates",
               "pool prompters only: the candidate templates, written once when the file is "
               "created.",
               false,
               256,
               {}};
    auto& c = t.columns;
    c.push_back(field("template", "", "Index of the template", &R::index));
    c.push_back(field("text", "", "The template, with its {prompt} placeholder", &R::text));
    c.push_back(field("reference", "probability",
                      "Probability of the template under the reference distribution",
                      &R::reference));
    return t;
  }();
  return table;
}

const Table<SessionRecord>& sessions_table() {
  static const Table<SessionRecord> table = [] {
    using R = SessionRecord;
    Table<R> t{"sessions",
               "One row per start of the run: the first one and every resume after a "
               "preemption or a crash.",
               false,
               64,
               {}};
    auto& c = t.columns;
    c.push_back(field("session", "", "Start of the run, from 0", &R::session));
    c.push_back(field("start_time", "ISO 8601 UTC", "When the session started", &R::start_time));
    c.push_back(field("from_step", "", "Steps done when the session started", &R::from_step));
    c.push_back(field("world_size", "", "MPI ranks of the session", &R::world_size));
    c.push_back(field("hosts", "", "Host of each rank, in rank order, comma-separated", &R::hosts));
    c.push_back(
        field("alignpro_version", "", "alignpro version of the session", &R::alignpro_version));
    c.push_back(
        field("git_revision", "", "git revision alignpro was built from", &R::git_revision));
    return t;
  }();
  return table;
}

namespace {

template <class R>
TableInfo info_of(const Table<R>& table) {
  TableInfo info{table.path, table.doc, table.by_step, {}};
  for (const auto& column : table.columns) {
    info.columns.push_back({column.name, column.type, column.unit, column.doc});
  }
  return info;
}

}  // namespace

std::vector<TableInfo> layout() {
  return {info_of(metrics_table()),           info_of(samples_table()),
          info_of(timings_table()),           info_of(eval_summary_table()),
          info_of(eval_samples_table()),      info_of(pool_steps_table()),
          info_of(pool_distribution_table()), info_of(pool_templates_table()),
          info_of(sessions_table())};
}

const char* type_name(h5::ColumnType type) {
  switch (type) {
    case ColumnType::kInt64:
      return "int64";
    case ColumnType::kUInt64:
      return "uint64";
    case ColumnType::kFloat64:
      return "float64";
    case ColumnType::kString:
      return "string";
  }
  return "?";
}

std::string layout_markdown() {
  std::string out;
  for (const auto& table : layout()) {
    out += "#### `/" + table.path + "`\n\n" + table.doc + "\n\n";
    out += "| column | type | unit | meaning |\n| --- | --- | --- | --- |\n";
    for (const auto& column : table.columns) {
      out += "| `" + column.name + "` | " + type_name(column.type) + " | " +
             (column.unit.empty() ? "" : column.unit) + " | " + column.doc + " |\n";
    }
    out += "\n";
  }
  return out;
}

}  // namespace alignpro::results
