// The tables of the results file, declared once: each table is an HDF5 group holding one
// dataset per column; each column names its record field, type, unit and meaning. The writer,
// the reader, the attributes on every dataset and the format reference are all made from here.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "io/hdf5_util.h"
#include "io/records.h"

namespace alignpro {

// One row of /pool/templates: a candidate of a `pool` prompter.
struct PoolTemplate {
  int64_t index = 0;
  std::string text;
  double reference = 0;  // its probability under the reference distribution
};

// One row of /sessions: one start or resume of the run.
struct SessionRecord {
  int64_t session = 0;     // 0 for the first start, then 1, 2, ... per resume
  std::string start_time;  // ISO 8601, UTC
  int64_t from_step = 0;   // steps done when it started
  int64_t world_size = 0;
  std::string hosts;  // comma-separated, one per rank
  std::string alignpro_version;
  std::string git_revision;
};

namespace results {

// Rows of /pool/steps and /pool/distribution, the two halves of a PoolState.
struct PoolStepRow {
  int64_t step = 0;
  double total_variation = 0;
  double kl_rho_star_reference = 0;
  double kl_trained_reference = 0;
};
struct PoolDistributionRow {
  int64_t step = 0;
  int64_t index = 0;
  double trained = 0;
  double rho_star = 0;
};

template <class Record>
struct Column {
  std::string name;
  h5::ColumnType type;
  std::string unit;  // "" when the value has no unit (an index, a text)
  std::string doc;
  std::function<void(const Record&, h5::ColumnData&)> push;          // append the field
  std::function<void(const h5::ColumnData&, size_t, Record&)> pull;  // set the field from row i
};

template <class Record>
struct Table {
  std::string path;  // HDF5 group, from the root, without the leading '/'
  std::string doc;
  bool by_step = true;  // has a `step` column and grows by step
  hsize_t chunk_rows = 1024;
  std::vector<Column<Record>> columns;
};

const Table<StepMetrics>& metrics_table();
const Table<TrainingSample>& samples_table();
const Table<PhaseTimings>& timings_table();
const Table<EvalSummary>& eval_summary_table();
const Table<EvalSample>& eval_samples_table();
const Table<PoolStepRow>& pool_steps_table();
const Table<PoolDistributionRow>& pool_distribution_table();
const Table<PoolTemplate>& pool_templates_table();
const Table<SessionRecord>& sessions_table();

// The layout without record types, for checks and documentation.
struct ColumnInfo {
  std::string name;
  h5::ColumnType type;
  std::string unit;
  std::string doc;
};
struct TableInfo {
  std::string path;
  std::string doc;
  bool by_step;
  std::vector<ColumnInfo> columns;
};
std::vector<TableInfo> layout();

// "int64", "uint64", "float64", "string (UTF-8)".
const char* type_name(h5::ColumnType type);

// The reference of every table and column, in Markdown (one table per group).
std::string layout_markdown();

}  // namespace results
}  // namespace alignpro
