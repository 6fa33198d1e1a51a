// The results file of a run: one HDF5 file, written only by the coordinator, that tells the
// whole story of the run (the README's "Results file format" documents every group, dataset, column
// and unit).
//
// Readable while the run goes on: the writer works in HDF5's single-writer/multiple-reader mode
// (SWMR), and a step becomes visible in one commit: its rows are written and flushed first, then
// each table's `rows` attribute, then the root's `steps_done`. Readers (ResultsReader, or h5py
// with swmr=True) see only committed rows, also in the file a killed writer leaves behind.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "io/records.h"
#include "io/results_tables.h"

namespace alignpro {

inline constexpr const char* kResultsFormatName = "alignpro-results";
inline constexpr int64_t kResultsFormatVersion = 1;

enum class RunStatus { kRunning, kComplete, kPreempted, kFailed };
// "running", "complete", "preempted", "failed".
const char* status_name(RunStatus status);
std::optional<RunStatus> parse_status(const std::string& name);

// A job hash as the file stores it: 16 lowercase hex digits.
std::string format_job_hash(uint64_t hash);

// What the coordinator knows of the run when it creates or resumes the file.
struct RunInfo {
  std::string job_name;
  std::string job_text;  // the job file, verbatim, then its --set overrides as comments
  uint64_t job_hash = 0;
  int64_t world_size = 1;
  std::vector<std::string> hosts;  // one per rank, in rank order
  int64_t total_steps = 0;
  // For `pool` prompters: the templates and their reference probabilities (same length).
  std::vector<std::string> pool_templates;
  std::vector<double> pool_reference;
};

// The root attributes of a results file.
struct ResultsHeader {
  std::string path;
  int64_t format_version = 0;
  std::string alignpro_version;  // of the build that created the file
  std::string git_revision;
  std::string job_name;
  std::string job_text;
  uint64_t job_hash = 0;
  int64_t world_size = 0;  // of the latest session
  std::vector<std::string> hosts;
  std::string start_time;   // ISO 8601 UTC, first session
  std::string last_update;  // ISO 8601 UTC
  RunStatus status = RunStatus::kRunning;
  std::string error_message;  // set when status is failed
  int64_t steps_done = 0;
  int64_t total_steps = 0;
  int64_t checkpoint_step = -1;  // -1: no checkpoint yet
  std::string checkpoint_file;
};

// Reads the root attributes of an existing results file. InputError when the path is missing,
// is not HDF5, is not an alignpro results file, or has a format version this build cannot read.
ResultsHeader read_results_header(const std::string& path);

// The output check to run before any model loads: InputError when `path` cannot be written,
// or when a file is there that is not an alignpro results file or belongs to another job
// (another job hash). Returns the existing file's header, or nullopt when there is none.
std::optional<ResultsHeader> check_results_output(const std::string& path, uint64_t job_hash);

class ResultsWriter {
 public:
  // Creates a new results file (InputError if one exists or the path cannot be written).
  static ResultsWriter create(const std::string& path, const RunInfo& info);
  // Opens an existing file to continue the run: the job hash must match (InputError naming the
  // file and both hashes); rows a killed writer left uncommitted are dropped, status becomes
  // running and a row is added to /sessions. RuntimeError if another process is writing it.
  static ResultsWriter resume(const std::string& path, const RunInfo& info);

  ResultsWriter(ResultsWriter&&) noexcept;
  ResultsWriter& operator=(ResultsWriter&&) noexcept;
  ~ResultsWriter();  // closes the file; the status stays what it was last set to

  const std::string& path() const;
  int64_t steps_done() const;
  RunStatus status() const;

  // Rows wait in memory until commit_step; each must belong to the step being committed.
  void append(const StepMetrics& metrics);
  void append(const TrainingSample& sample);
  void append(const std::vector<TrainingSample>& samples);
  void append(const PhaseTimings& timings);
  void append(const EvalSummary& summary);
  void append(const std::vector<EvalSummary>& summaries);
  void append(const EvalSample& sample);
  void append(const std::vector<EvalSample>& samples);
  void append(const PoolState& state);
  // A rank's samples, evaluation samples and timings.
  void append(const RankRecords& records);
  size_t pending_rows() const;
  // Forgets the rows appended since the last commit (a step that failed writes nothing).
  void discard_pending();

  // Writes the pending rows, all with step == `step`, and makes them visible at once; then
  // steps_done = step. `step` may repeat the last committed step (an evaluation recorded after
  // its step) but not go back. RuntimeError naming the file when a write fails (a full disk).
  void commit_step(int64_t step);

  // Drops every row of a step after `step` and sets steps_done to at most `step`: a resumed
  // run redoes the steps after its checkpoint without recording any of them twice.
  void truncate_to(int64_t step);

  void set_status(RunStatus status, const std::string& error_message = "");
  // Records the newest complete checkpoint (its step and file name).
  void set_checkpoint(int64_t step, const std::string& file);

  // Flushes and closes; further calls throw. Errors while closing throw RuntimeError.
  void close();

  // For crash tests: called inside commit_step after the rows are written and flushed
  // (kRowsWritten) and after the tables' row counts are flushed (kRowsCommitted).
  enum class CommitStage { kRowsWritten, kRowsCommitted };
  void set_commit_observer(std::function<void(CommitStage)> observer);

 private:
  struct State;
  explicit ResultsWriter(std::unique_ptr<State> state);
  static std::unique_ptr<State> open_for_append(const std::string& path);
  void write_commit(int64_t step);
  void write_truncation(int64_t step);
  std::unique_ptr<State> state_;
};

// Reads a results file, finished or still being written (a snapshot taken when it is opened;
// open a new reader to see later steps). Only committed rows are returned.
class ResultsReader {
 public:
  // InputError as read_results_header.
  explicit ResultsReader(const std::string& path);
  ResultsReader(ResultsReader&&) noexcept;
  ~ResultsReader();

  const ResultsHeader& header() const;
  // Committed rows of a table, by its group path ("metrics", "eval/summary", ...).
  int64_t rows(const std::string& table) const;

  std::vector<StepMetrics> metrics() const;
  // Rows [first, first + count) of /samples; count < 0 means to the end.
  std::vector<TrainingSample> samples(int64_t first = 0, int64_t count = -1) const;
  std::vector<TrainingSample> samples_of_step(int64_t step) const;
  std::vector<PhaseTimings> timings() const;
  std::vector<EvalSummary> eval_summaries() const;
  std::vector<EvalSample> eval_samples(int64_t first = 0, int64_t count = -1) const;
  std::vector<PoolState> pool_states() const;
  std::vector<PoolTemplate> pool_templates() const;
  std::vector<SessionRecord> sessions() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace alignpro
