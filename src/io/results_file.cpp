// The results writer. Reading (and the header checks shared with resume) is in
// results_reader.cpp.
#include "io/results_file.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <map>
#include <thread>

#include "alignpro/build_info.h"
#include "common/error.h"
#include "common/log.h"
#include "io/file_util.h"
#include "io/results_table_io.h"

namespace alignpro {

namespace fs = std::filesystem;
using h5::Handle;

struct ResultsWriter::State {
  std::string path;
  Handle file;
  int lock_fd = -1;
  int64_t steps_done = 0;
  RunStatus status = RunStatus::kRunning;
  std::map<std::string, int64_t> rows;  // committed rows per table
  std::function<void(CommitStage)> observer;

  // Rows waiting for commit_step, one list per growing table.
  std::vector<StepMetrics> metrics;
  std::vector<TrainingSample> samples;
  std::vector<PhaseTimings> timings;
  std::vector<EvalSummary> eval_summaries;
  std::vector<EvalSample> eval_samples;
  std::vector<results::PoolStepRow> pool_steps;
  std::vector<results::PoolDistributionRow> pool_distribution;

  // Calls f(table, pending rows) for every table that grows by step.
  template <class F>
  void for_each_step_table(F&& f) {
    f(results::metrics_table(), metrics);
    f(results::samples_table(), samples);
    f(results::timings_table(), timings);
    f(results::eval_summary_table(), eval_summaries);
    f(results::eval_samples_table(), eval_samples);
    f(results::pool_steps_table(), pool_steps);
    f(results::pool_distribution_table(), pool_distribution);
  }

  void flush(const std::string& what) {
    h5::check(H5Fflush(file, H5F_SCOPE_GLOBAL), path, "cannot flush " + what);
  }
  // Flush, then push the file's pages to the disk, so a crashed node keeps the commit too.
  void flush_to_disk(const std::string& what) {
    flush(what);
    if (lock_fd >= 0 && fsync(lock_fd) != 0) {
      throw RuntimeError(path + ": cannot write " + what + " to disk: " + std::strerror(errno));
    }
  }
  void require_open() const {
    if (!file.valid()) throw RuntimeError(path + ": the results file is already closed");
  }

  // Runs a write; after one has failed (a full disk), nothing more is written, so that what is
  // on disk stays the last complete commit.
  std::string failure;
  template <class F>
  void write(F&& body) {
    require_open();
    if (!failure.empty()) {
      throw RuntimeError(path + ": an earlier write failed, so nothing more is written to it (" +
                         failure + ")");
    }
    try {
      body();
    } catch (const RuntimeError& e) {
      failure = e.what();
      throw;
    }
  }
};

namespace {

const char* const kStatusNames[] = {"running", "complete", "preempted", "failed"};

// The root attributes that change while the run goes on are fixed-length strings of these sizes
// (see write_fixed_string_attribute for why).
constexpr size_t kStatusBytes = 16;
constexpr size_t kTimeBytes = 20;  // 2025-01-31T12:34:56Z
constexpr size_t kMessageBytes = 4096;
constexpr size_t kFileNameBytes = 4096;

void write_status(hid_t file, RunStatus status, const std::string& message,
                  const std::string& name) {
  h5::write_fixed_string_attribute(file, "status", kStatusNames[static_cast<int>(status)],
                                   kStatusBytes, name);
  h5::write_fixed_string_attribute(file, "error_message", message, kMessageBytes, name);
}

void write_last_update(hid_t file, const std::string& name) {
  h5::write_fixed_string_attribute(file, "last_update", utc_now_iso8601(), kTimeBytes, name);
}

void write_root_attributes(hid_t file, const RunInfo& info, const std::string& name) {
  const std::string now = utc_now_iso8601();
  h5::write_attribute(file, "format", std::string(kResultsFormatName), name);
  h5::write_attribute(file, "format_version", kResultsFormatVersion, name);
  h5::write_attribute(file, "alignpro_version", std::string(kVersion), name);
  h5::write_attribute(file, "git_revision", std::string(kGitRevision), name);
  h5::write_attribute(file, "job_name", info.job_name, name);
  h5::write_attribute(file, "job_text", info.job_text, name);
  h5::write_attribute(file, "job_hash", format_job_hash(info.job_hash), name);
  h5::write_attribute(file, "world_size", info.world_size, name);
  h5::write_attribute(file, "hosts", info.hosts, name);
  h5::write_attribute(file, "start_time", now, name);
  write_last_update(file, name);
  write_status(file, RunStatus::kRunning, "", name);
  h5::write_attribute(file, "steps_done", int64_t{0}, name);
  h5::write_attribute(file, "total_steps", info.total_steps, name);
  h5::write_attribute(file, "checkpoint_step", int64_t{-1}, name);
  h5::write_fixed_string_attribute(file, "checkpoint_file", "", kFileNameBytes, name);
}

SessionRecord session_of(const RunInfo& info, int64_t session, int64_t from_step) {
  SessionRecord record;
  record.session = session;
  record.start_time = utc_now_iso8601();
  record.from_step = from_step;
  record.world_size = info.world_size;
  for (size_t r = 0; r < info.hosts.size(); ++r) {
    record.hosts += (r ? "," : "") + info.hosts[r];
  }
  record.alignpro_version = kVersion;
  record.git_revision = kGitRevision;
  return record;
}

// Appends committed rows to a table that does not grow by step (templates, sessions).
template <class R>
void append_committed(hid_t file, const results::Table<R>& table, const std::vector<R>& rows,
                      const std::string& name) {
  Handle group = results::open_group(file, table.path, name);
  const int64_t first = h5::read_int_attribute(group, results::kRowsAttribute).value_or(0);
  results::write_table_rows(group, table, first, rows, name);
  h5::write_attribute(group, results::kRowsAttribute, first + static_cast<int64_t>(rows.size()),
                      name);
}

Handle writer_access(const std::string& path, bool clear_status_flags) {
  Handle access = h5::latest_format_access(path);
  h5::check(H5Pset_fclose_degree(access, H5F_CLOSE_STRONG), path, "file-access properties");
  if (clear_status_flags) {
    // A writer that was killed leaves the superblock marked "open for writing", which HDF5
    // refuses to open again; this is what the h5clear tool does. Another live writer is still
    // kept out by the file lock (see lock_shared).
    hbool_t clear = 1;
    h5::check(H5Pset(access, "clear_status_flags", &clear), path,
              "cannot ask HDF5 to clear the status flags of a file left open");
  }
  return access;
}

// HDF5 releases its own lock once a writer is in SWMR mode; the writer then holds a shared lock
// on the file, which readers share and which makes another writer's exclusive lock fail.
int lock_shared(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw RuntimeError(path + ": cannot open: " + std::strerror(errno));
  if (flock(fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK) {
    ::close(fd);
    throw RuntimeError(path +
                       ": another process holds this results file; only one alignpro "
                       "run may write it");
  }
  return fd;
}

// H5Fopen for writing. A reader that opens the file with HDF5's own locking holds a shared
// lock for a moment (h5py does by default), and a writer's open fails while it does; the open is
// retried for about two seconds. Another writer holds its lock for good (see lock_shared) and is
// still refused.
hid_t open_for_writing(const std::string& path, unsigned flags, hid_t access) {
  for (int attempt = 0;; ++attempt) {
    const hid_t file = H5Fopen(path.c_str(), flags, access);
    if (file >= 0 || attempt == 20) return file;
    const std::string stack = h5::take_error_stack();
    if (stack.find("unable to lock file") == std::string::npos) {
      return H5Fopen(path.c_str(), flags, access);  // fails again, leaving its error stack
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

[[noreturn]] void fail_open(const std::string& path, const std::string& what) {
  const std::string stack = h5::take_error_stack();
  if (stack.find("unable to lock file") != std::string::npos) {
    throw RuntimeError(path +
                       ": another process is writing this results file (HDF5 could not "
                       "lock it); only one alignpro run may write it");
  }
  throw RuntimeError(path + ": " + what + ": " + stack);
}

}  // namespace

const char* status_name(RunStatus status) {
  return kStatusNames[static_cast<int>(status)];
}

std::optional<RunStatus> parse_status(const std::string& name) {
  for (int s = 0; s < 4; ++s) {
    if (name == kStatusNames[s]) return static_cast<RunStatus>(s);
  }
  return std::nullopt;
}

std::string format_job_hash(uint64_t hash) {
  char text[17];
  std::snprintf(text, sizeof(text), "%016llx", static_cast<unsigned long long>(hash));
  return text;
}

ResultsWriter::ResultsWriter(std::unique_ptr<State> state) : state_(std::move(state)) {}
ResultsWriter::ResultsWriter(ResultsWriter&&) noexcept = default;
ResultsWriter& ResultsWriter::operator=(ResultsWriter&&) noexcept = default;

ResultsWriter::~ResultsWriter() {
  if (!state_ || !state_->file.valid()) return;
  try {
    close();
  } catch (const std::exception& e) {
    spdlog::warn("[results] {}", e.what());
  }
}

std::unique_ptr<ResultsWriter::State> ResultsWriter::open_for_append(const std::string& path) {
  auto state = std::make_unique<ResultsWriter::State>();
  state->path = path;
  Handle access = writer_access(path, false);
  const hid_t file = open_for_writing(path, H5F_ACC_RDWR | H5F_ACC_SWMR_WRITE, access);
  if (file < 0) fail_open(path, "cannot open for writing");
  state->file = Handle(file);
  state->lock_fd = lock_shared(path);
  state->steps_done = h5::read_int_attribute(file, "steps_done").value_or(0);
  state->status = parse_status(h5::read_string_attribute(file, "status").value_or(""))
                      .value_or(RunStatus::kRunning);
  state->for_each_step_table([&](const auto& table, auto&) {
    Handle group = results::open_group(file, table.path, path);
    state->rows[table.path] = h5::read_int_attribute(group, results::kRowsAttribute).value_or(0);
  });
  return state;
}

ResultsWriter ResultsWriter::create(const std::string& path, const RunInfo& info) {
  h5::silence_errors();
  check_output_location(path, "results file");
  if (fs::exists(path)) {
    throw InputError(path +
                     ": a results file is already there; resume its run or choose another "
                     "run.output");
  }
  if (info.pool_templates.size() != info.pool_reference.size()) {
    throw RuntimeError(path + ": " + std::to_string(info.pool_templates.size()) +
                       " pool templates but " + std::to_string(info.pool_reference.size()) +
                       " reference probabilities");
  }
  const fs::path target(path);
  if (target.has_parent_path()) fs::create_directories(target.parent_path());
  // Built under a temporary name and linked into place when whole, so that no reader (and no
  // crash) ever sees a file without its full layout.
  const std::string temporary = temporary_sibling(path, "creating");
  try {
    {
      Handle access = writer_access(temporary, false);
      Handle file = h5::checked(H5Fcreate(temporary.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, access),
                                temporary, "cannot create the results file");
      write_root_attributes(file, info, path);
      auto create = [&](const auto& table) { results::create_table(file, table, path); };
      create(results::metrics_table());
      create(results::samples_table());
      create(results::timings_table());
      create(results::eval_summary_table());
      create(results::eval_samples_table());
      create(results::pool_steps_table());
      create(results::pool_distribution_table());
      create(results::pool_templates_table());
      create(results::sessions_table());
      std::vector<PoolTemplate> templates;
      for (size_t i = 0; i < info.pool_templates.size(); ++i) {
        templates.push_back(
            {static_cast<int64_t>(i), info.pool_templates[i], info.pool_reference[i]});
      }
      append_committed(file, results::pool_templates_table(), templates, path);
      append_committed(file, results::sessions_table(), {session_of(info, 0, 0)}, path);
      if (!file.reset()) h5::fail(path, "cannot close the new results file");
    }
    fsync_path(temporary);
    publish_new_file(temporary, path);
  } catch (...) {
    std::error_code ignored;
    fs::remove(temporary, ignored);
    throw;
  }
  spdlog::info("[results] created {}", path);
  return ResultsWriter(open_for_append(path));
}

ResultsWriter ResultsWriter::resume(const std::string& path, const RunInfo& info) {
  h5::silence_errors();
  check_output_location(path, "results file");
  const ResultsHeader header = read_results_header(path);
  if (header.job_hash != info.job_hash) {
    throw InputError(path + ": this results file belongs to another job: its job hash is " +
                     format_job_hash(header.job_hash) + ", this job's is " +
                     format_job_hash(info.job_hash) + "; choose another run.output");
  }
  {
    // Repairs before appending resumes: rows that a killed writer left beyond the last commit
    // are dropped, and the root attributes describe the new session.
    Handle access = writer_access(path, true);
    const hid_t id = open_for_writing(path, H5F_ACC_RDWR, access);
    if (id < 0) fail_open(path, "cannot open to resume");
    Handle file(id);
    // A writer killed in the middle of a flush can leave data past the end of file recorded in
    // the superblock (SWMR readers do not mind; a writer does); what h5clear --increment does.
    h5::check(H5Fincrement_filesize(file, 0), path, "cannot repair the recorded file size");
    const int64_t steps_done = h5::read_int_attribute(file, "steps_done").value_or(0);
    State scratch;
    scratch.for_each_step_table([&](const auto& table, auto&) {
      Handle group = results::open_group(file, table.path, path);
      const auto committed =
          static_cast<hsize_t>(h5::read_int_attribute(group, results::kRowsAttribute).value_or(0));
      const hsize_t keep = results::rows_through_step(
          group, table.path, std::min(committed, results::table_length(group, table, path)),
          steps_done, path);
      h5::write_attribute(group, results::kRowsAttribute, static_cast<int64_t>(keep), path);
      results::resize_table(group, table, keep, path);
    });
    h5::write_attribute(file, "world_size", info.world_size, path);
    h5::write_attribute(file, "hosts", info.hosts, path);
    write_status(file, RunStatus::kRunning, "", path);
    write_last_update(file, path);
    Handle sessions = results::open_group(file, results::sessions_table().path, path);
    const int64_t session = h5::read_int_attribute(sessions, results::kRowsAttribute).value_or(0);
    sessions.reset();
    append_committed(file, results::sessions_table(), {session_of(info, session, steps_done)},
                     path);
    if (!file.reset()) h5::fail(path, "cannot close the results file after repairing it");
    spdlog::info("[results] resuming {} after step {} (session {})", path, steps_done, session);
  }
  return ResultsWriter(open_for_append(path));
}

const std::string& ResultsWriter::path() const {
  return state_->path;
}
int64_t ResultsWriter::steps_done() const {
  return state_->steps_done;
}
RunStatus ResultsWriter::status() const {
  return state_->status;
}

void ResultsWriter::append(const StepMetrics& metrics) {
  state_->metrics.push_back(metrics);
}
void ResultsWriter::append(const TrainingSample& sample) {
  state_->samples.push_back(sample);
}
void ResultsWriter::append(const std::vector<TrainingSample>& samples) {
  state_->samples.insert(state_->samples.end(), samples.begin(), samples.end());
}
void ResultsWriter::append(const PhaseTimings& timings) {
  state_->timings.push_back(timings);
}
void ResultsWriter::append(const EvalSummary& summary) {
  state_->eval_summaries.push_back(summary);
}
void ResultsWriter::append(const std::vector<EvalSummary>& summaries) {
  state_->eval_summaries.insert(state_->eval_summaries.end(), summaries.begin(), summaries.end());
}
void ResultsWriter::append(const EvalSample& sample) {
  state_->eval_samples.push_back(sample);
}
void ResultsWriter::append(const std::vector<EvalSample>& samples) {
  state_->eval_samples.insert(state_->eval_samples.end(), samples.begin(), samples.end());
}

void ResultsWriter::append(const PoolState& state) {
  if (state.trained.size() != state.rho_star.size()) {
    throw RuntimeError(state_->path + ": pool state of step " + std::to_string(state.step) +
                       " has " + std::to_string(state.trained.size()) + " trained and " +
                       std::to_string(state.rho_star.size()) + " rho* probabilities");
  }
  state_->pool_steps.push_back(
      {state.step, state.total_variation, state.kl_rho_star_reference, state.kl_trained_reference});
  for (size_t i = 0; i < state.trained.size(); ++i) {
    state_->pool_distribution.push_back(
        {state.step, static_cast<int64_t>(i), state.trained[i], state.rho_star[i]});
  }
}

void ResultsWriter::append(const RankRecords& records) {
  append(records.samples);
  append(records.eval_samples);
  append(records.timings);
}

size_t ResultsWriter::pending_rows() const {
  size_t total = 0;
  state_->for_each_step_table([&](const auto&, auto& pending) { total += pending.size(); });
  return total;
}

void ResultsWriter::discard_pending() {
  state_->for_each_step_table([](const auto&, auto& pending) { pending.clear(); });
}

void ResultsWriter::commit_step(int64_t step) {
  State& s = *state_;
  s.require_open();
  if (step < s.steps_done) {
    throw RuntimeError(s.path + ": cannot commit step " + std::to_string(step) + " after step " +
                       std::to_string(s.steps_done));
  }
  s.for_each_step_table([&](const auto& table, auto& pending) {
    for (const auto& row : pending) {
      if (row.step != step) {
        throw RuntimeError(s.path + ": a row for /" + table.path + " has step " +
                           std::to_string(row.step) + " but step " + std::to_string(step) +
                           " is being committed");
      }
    }
  });
  s.write([&] { write_commit(step); });
}

void ResultsWriter::write_commit(int64_t step) {
  State& s = *state_;
  // 1. The rows, beyond every table's committed count, where no reader looks yet.
  std::map<std::string, int64_t> rows = s.rows;
  s.for_each_step_table([&](const auto& table, auto& pending) {
    if (pending.empty()) return;
    Handle group = results::open_group(s.file, table.path, s.path);
    results::write_table_rows(group, table, rows[table.path], pending, s.path);
    rows[table.path] += static_cast<int64_t>(pending.size());
  });
  s.flush("the rows of step " + std::to_string(step));
  if (s.observer) s.observer(CommitStage::kRowsWritten);
  // 2. The tables' row counts.
  s.for_each_step_table([&](const auto& table, auto& pending) {
    if (pending.empty()) return;
    Handle group = results::open_group(s.file, table.path, s.path);
    h5::write_attribute(group, results::kRowsAttribute, rows[table.path], s.path);
  });
  s.flush("the row counts of step " + std::to_string(step));
  if (s.observer) s.observer(CommitStage::kRowsCommitted);
  // 3. The step itself.
  h5::write_attribute(s.file, "steps_done", step, s.path);
  write_last_update(s.file, s.path);
  s.flush_to_disk("step " + std::to_string(step));
  s.rows = rows;
  s.steps_done = step;
  discard_pending();
}

void ResultsWriter::truncate_to(int64_t step) {
  State& s = *state_;
  s.require_open();
  if (step < 0) throw RuntimeError(s.path + ": cannot truncate to step " + std::to_string(step));
  discard_pending();
  s.write([&] { write_truncation(step); });
}

void ResultsWriter::write_truncation(int64_t step) {
  State& s = *state_;
  std::map<std::string, int64_t> keep;
  s.for_each_step_table([&](const auto& table, auto&) {
    Handle group = results::open_group(s.file, table.path, s.path);
    keep[table.path] = static_cast<int64_t>(results::rows_through_step(
        group, table.path, static_cast<hsize_t>(s.rows[table.path]), step, s.path));
    // Readers never look past `rows`, so it comes down before the datasets shrink.
    h5::write_attribute(group, results::kRowsAttribute, keep[table.path], s.path);
  });
  const int64_t steps_done = std::min(s.steps_done, step);
  h5::write_attribute(s.file, "steps_done", steps_done, s.path);
  write_last_update(s.file, s.path);
  s.flush("the truncated row counts");
  s.for_each_step_table([&](const auto& table, auto&) {
    Handle group = results::open_group(s.file, table.path, s.path);
    results::resize_table(group, table, static_cast<hsize_t>(keep[table.path]), s.path);
  });
  s.flush_to_disk("the truncated tables");
  s.rows = keep;
  s.steps_done = steps_done;
}

void ResultsWriter::set_status(RunStatus status, const std::string& error_message) {
  State& s = *state_;
  s.write([&] {
    write_status(s.file, status, status == RunStatus::kFailed ? error_message : "", s.path);
    write_last_update(s.file, s.path);
    s.flush_to_disk(std::string("status ") + status_name(status));
  });
  s.status = status;
}

void ResultsWriter::set_checkpoint(int64_t step, const std::string& file) {
  State& s = *state_;
  s.write([&] {
    h5::write_attribute(s.file, "checkpoint_step", step, s.path);
    h5::write_fixed_string_attribute(s.file, "checkpoint_file", file, kFileNameBytes, s.path);
    s.flush_to_disk("the checkpoint reference");
  });
}

void ResultsWriter::close() {
  State& s = *state_;
  s.require_open();
  std::string problem;
  if (s.failure.empty()) {
    try {
      write_last_update(s.file, s.path);
      s.flush_to_disk("the results file");
    } catch (const std::exception& e) {
      problem = e.what();
    }
  }
  const bool closed = s.file.reset();
  if (s.lock_fd >= 0) {
    ::close(s.lock_fd);
    s.lock_fd = -1;
  }
  if (!problem.empty()) throw RuntimeError(problem);
  // After a failed write the close fails too; that failure was reported already.
  if (!closed && s.failure.empty()) h5::fail(s.path, "cannot close the results file");
}

void ResultsWriter::set_commit_observer(std::function<void(CommitStage)> observer) {
  state_->observer = std::move(observer);
}

}  // namespace alignpro
