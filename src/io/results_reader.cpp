// Reading results files: the header checks (shared with the writer's resume) and the reader.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>

#include "common/error.h"
#include "io/file_util.h"
#include "io/results_file.h"
#include "io/results_table_io.h"

namespace alignpro {

namespace fs = std::filesystem;
using h5::Handle;

namespace {

// Opens for reading whether or not a writer has the file open (SWMR read), falling back to a
// plain read-only open for HDF5 files of older formats.
Handle open_for_reading(const std::string& path) {
  h5::silence_errors();
  std::error_code ec;
  if (!fs::exists(path, ec)) throw InputError("results file " + path + ": no such file");
  if (fs::is_directory(path, ec)) throw InputError("results file " + path + ": is a folder");
  if (H5Fis_hdf5(path.c_str()) <= 0) {
    H5Eclear2(H5E_DEFAULT);
    throw InputError(path + ": not an HDF5 file, so not an alignpro results file");
  }
  // The writer's close degree, so that this process can also read a file it is writing.
  Handle access = h5::checked(H5Pcreate(H5P_FILE_ACCESS), path, "file-access properties");
  h5::check(H5Pset_fclose_degree(access, H5F_CLOSE_STRONG), path, "file-access properties");
  hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDONLY | H5F_ACC_SWMR_READ, access);
  if (file < 0) {
    const std::string swmr_error = h5::take_error_stack();
    file = H5Fopen(path.c_str(), H5F_ACC_RDONLY, access);
    if (file < 0) {
      throw RuntimeError(path + ": cannot open for reading: " + swmr_error);
    }
  }
  return Handle(file);
}

std::string required_string(hid_t file, const std::string& path, const std::string& name) {
  auto value = h5::read_string_attribute(file, name);
  if (!value) {
    throw InputError(path + ": root attribute '" + name +
                     "' is missing or not a string; the file is damaged or not from alignpro");
  }
  return *value;
}

int64_t required_int(hid_t file, const std::string& path, const std::string& name) {
  auto value = h5::read_int_attribute(file, name);
  if (!value) {
    throw InputError(path + ": root attribute '" + name +
                     "' is missing or not an integer; the file is damaged or not from alignpro");
  }
  return *value;
}

ResultsHeader header_of(hid_t file, const std::string& path) {
  ResultsHeader h;
  h.path = path;
  const auto format = h5::read_string_attribute(file, "format");
  if (!format || *format != kResultsFormatName) {
    throw InputError(path + ": not an alignpro results file (its root attribute 'format' is " +
                     (format ? "'" + *format + "'" : std::string("missing")) + ", expected '" +
                     kResultsFormatName + "')");
  }
  h.format_version = required_int(file, path, "format_version");
  if (h.format_version < 1 || h.format_version > kResultsFormatVersion) {
    throw InputError(path + ": results format version " + std::to_string(h.format_version) +
                     " is unknown; this alignpro reads format versions 1 to " +
                     std::to_string(kResultsFormatVersion));
  }
  h.alignpro_version = required_string(file, path, "alignpro_version");
  h.git_revision = required_string(file, path, "git_revision");
  h.job_name = required_string(file, path, "job_name");
  h.job_text = required_string(file, path, "job_text");
  const std::string hash = required_string(file, path, "job_hash");
  if (hash.size() != 16 || hash.find_first_not_of("0123456789abcdef") != std::string::npos) {
    throw InputError(path + ": root attribute 'job_hash' is '" + hash +
                     "'; expected 16 lowercase hex digits");
  }
  h.job_hash = std::stoull(hash, nullptr, 16);
  h.world_size = required_int(file, path, "world_size");
  h.hosts = h5::read_string_list_attribute(file, "hosts").value_or(std::vector<std::string>{});
  h.start_time = required_string(file, path, "start_time");
  h.last_update = required_string(file, path, "last_update");
  const std::string status = required_string(file, path, "status");
  const auto parsed = parse_status(status);
  if (!parsed) {
    throw InputError(path + ": root attribute 'status' is '" + status +
                     "'; allowed: running, complete, preempted, failed");
  }
  h.status = *parsed;
  h.error_message = required_string(file, path, "error_message");
  h.steps_done = required_int(file, path, "steps_done");
  h.total_steps = required_int(file, path, "total_steps");
  h.checkpoint_step = required_int(file, path, "checkpoint_step");
  h.checkpoint_file = required_string(file, path, "checkpoint_file");
  return h;
}

const char* type_class_name(H5T_class_t type_class) {
  switch (type_class) {
    case H5T_INTEGER:
      return "integer";
    case H5T_FLOAT:
      return "float";
    case H5T_STRING:
      return "string";
    default:
      return "another type";
  }
}

// InputError unless the table's group and every column exist with the expected types.
void check_table(hid_t file, const results::TableInfo& table, const std::string& path) {
  const std::string missing_end = "; the file is not a complete alignpro results file of format " +
                                  std::to_string(kResultsFormatVersion);
  if (H5Lexists(file, table.path.c_str(), H5P_DEFAULT) <= 0) {
    H5Eclear2(H5E_DEFAULT);
    throw InputError(path + ": group /" + table.path + " is missing" + missing_end);
  }
  Handle group = results::open_group(file, table.path, path);
  for (const auto& column : table.columns) {
    const std::string where = "/" + table.path + "/" + column.name;
    if (H5Lexists(group, column.name.c_str(), H5P_DEFAULT) <= 0) {
      H5Eclear2(H5E_DEFAULT);
      throw InputError(path + ": dataset " + where + " is missing" + missing_end);
    }
    Handle dataset = results::open_dataset(group, table.path, column.name, path);
    Handle type = h5::checked(H5Dget_type(dataset), path, "cannot get the type of " + where);
    const H5T_class_t found = H5Tget_class(type);
    const H5T_class_t expected = column.type == h5::ColumnType::kString    ? H5T_STRING
                                 : column.type == h5::ColumnType::kFloat64 ? H5T_FLOAT
                                                                           : H5T_INTEGER;
    if (found != expected || (expected == H5T_STRING && H5Tis_variable_str(type) <= 0)) {
      throw InputError(path + ": dataset " + where + " holds " + type_class_name(found) +
                       " values; expected " + results::type_name(column.type));
    }
  }
}

}  // namespace

ResultsHeader read_results_header(const std::string& path) {
  Handle file = open_for_reading(path);
  return header_of(file, path);
}

// A write that failed for lack of space (a full disk, a file-size limit) can leave the file
// shorter than the end of file its superblock records, and HDF5 then refuses to open it. The
// bytes missing are those of the failed step, which a resume drops anyway, so the file is
// extended (with a hole) to its recorded size. Only superblocks of version 2 and later (which
// SWMR files have) with 8-byte addresses are read; anything else is left alone.
void restore_recorded_size(const std::string& path) {
  unsigned char block[36];
  {
    std::ifstream in(path, std::ios::binary);
    if (!in.read(reinterpret_cast<char*>(block), sizeof(block))) return;
  }
  static const unsigned char kSignature[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
  if (std::memcmp(block, kSignature, 8) != 0 || block[8] < 2 || block[9] != 8) return;
  uint64_t recorded = 0;  // little-endian, after version, sizes, flags, base and extension
  for (int i = 7; i >= 0; --i) recorded = recorded << 8 | block[28 + i];
  std::error_code ec;
  const uint64_t actual = fs::file_size(path, ec);
  if (ec || actual >= recorded || recorded - actual > (uint64_t{1} << 32)) return;
  fs::resize_file(path, recorded, ec);
  if (ec) throw RuntimeError(path + ": cannot restore its recorded size: " + ec.message());
  spdlog::warn(
      "[results] {}: was {} bytes short of its recorded size after a failed write; "
      "extended, and the unfinished step will be redone",
      path, recorded - actual);
}

std::optional<ResultsHeader> check_results_output(const std::string& path, uint64_t job_hash) {
  check_output_location(path, "results file");
  std::error_code ec;
  if (!fs::exists(path, ec)) return std::nullopt;
  restore_recorded_size(path);
  ResultsHeader header = read_results_header(path);
  if (header.job_hash != job_hash) {
    throw InputError(path + ": this results file belongs to another job: its job hash is " +
                     format_job_hash(header.job_hash) + ", this job's is " +
                     format_job_hash(job_hash) + "; choose another run.output");
  }
  return header;
}

struct ResultsReader::State {
  std::string path;
  Handle file;
  ResultsHeader header;
  std::map<std::string, hsize_t> rows;  // visible rows per table

  template <class R>
  std::vector<R> read(const results::Table<R>& table, int64_t first, int64_t count) const {
    const auto total = static_cast<int64_t>(rows.at(table.path));
    first = std::clamp<int64_t>(first, 0, total);
    const int64_t end = count < 0 ? total : std::min(total, first + count);
    Handle group = results::open_group(file, table.path, path);
    return results::read_table_rows(group, table, static_cast<hsize_t>(first),
                                    static_cast<hsize_t>(end - first), path);
  }
};

ResultsReader::ResultsReader(const std::string& path) : state_(std::make_unique<State>()) {
  State& s = *state_;
  s.path = path;
  s.file = open_for_reading(path);
  s.header = header_of(s.file, path);
  for (const auto& table : results::layout()) {
    check_table(s.file, table, path);
    Handle group = results::open_group(s.file, table.path, path);
    const auto committed = static_cast<hsize_t>(
        std::max<int64_t>(0, h5::read_int_attribute(group, "rows").value_or(0)));
    hsize_t shortest = ~hsize_t{0};
    for (const auto& column : table.columns) {
      Handle dataset = results::open_dataset(group, table.path, column.name, path);
      shortest = std::min(shortest, h5::column_length(dataset, path, "/" + table.path));
    }
    hsize_t visible = std::min(committed, shortest);
    // A writer killed between the row counts and steps_done leaves rows of an uncommitted step.
    if (table.by_step) {
      visible = results::rows_through_step(group, table.path, visible, s.header.steps_done, path);
    }
    s.rows[table.path] = visible;
  }
}

ResultsReader::ResultsReader(ResultsReader&&) noexcept = default;
ResultsReader::~ResultsReader() = default;

const ResultsHeader& ResultsReader::header() const {
  return state_->header;
}

int64_t ResultsReader::rows(const std::string& table) const {
  auto it = state_->rows.find(table);
  if (it == state_->rows.end()) {
    throw RuntimeError(state_->path + ": no table /" + table + " in the results format");
  }
  return static_cast<int64_t>(it->second);
}

std::vector<StepMetrics> ResultsReader::metrics() const {
  return state_->read(results::metrics_table(), 0, -1);
}

std::vector<TrainingSample> ResultsReader::samples(int64_t first, int64_t count) const {
  return state_->read(results::samples_table(), first, count);
}

std::vector<TrainingSample> ResultsReader::samples_of_step(int64_t step) const {
  const State& s = *state_;
  const std::string& table = results::samples_table().path;
  Handle group = results::open_group(s.file, table, s.path);
  Handle dataset = results::open_dataset(group, table, "step", s.path);
  const auto step_at = [&](hsize_t row) {
    const auto data =
        h5::read_column(dataset, h5::ColumnType::kInt64, row, 1, s.path, "/" + table + "/step");
    return std::get<std::vector<int64_t>>(data).front();
  };
  // Rows are in step order: binary searches for the first row of `step` and the first after.
  const auto lower = [&](int64_t value) {
    hsize_t lo = 0, hi = s.rows.at(table);
    while (lo < hi) {
      const hsize_t mid = lo + (hi - lo) / 2;
      if (step_at(mid) < value) {
        lo = mid + 1;
      } else {
        hi = mid;
      }
    }
    return lo;
  };
  const hsize_t begin = lower(step);
  const hsize_t end = lower(step + 1);
  return samples(static_cast<int64_t>(begin), static_cast<int64_t>(end - begin));
}

std::vector<PhaseTimings> ResultsReader::timings() const {
  return state_->read(results::timings_table(), 0, -1);
}

std::vector<EvalSummary> ResultsReader::eval_summaries() const {
  return state_->read(results::eval_summary_table(), 0, -1);
}

std::vector<EvalSample> ResultsReader::eval_samples(int64_t first, int64_t count) const {
  return state_->read(results::eval_samples_table(), first, count);
}

std::vector<PoolState> ResultsReader::pool_states() const {
  const auto steps = state_->read(results::pool_steps_table(), 0, -1);
  const auto distribution = state_->read(results::pool_distribution_table(), 0, -1);
  std::map<int64_t, std::vector<const results::PoolDistributionRow*>> by_step;
  for (const auto& row : distribution) by_step[row.step].push_back(&row);
  std::vector<PoolState> out;
  for (const auto& row : steps) {
    PoolState state;
    state.step = row.step;
    state.total_variation = row.total_variation;
    state.kl_rho_star_reference = row.kl_rho_star_reference;
    state.kl_trained_reference = row.kl_trained_reference;
    auto entries = by_step[row.step];
    std::sort(entries.begin(), entries.end(),
              [](const auto* a, const auto* b) { return a->index < b->index; });
    for (const auto* entry : entries) {
      state.trained.push_back(entry->trained);
      state.rho_star.push_back(entry->rho_star);
    }
    out.push_back(std::move(state));
  }
  return out;
}

std::vector<PoolTemplate> ResultsReader::pool_templates() const {
  return state_->read(results::pool_templates_table(), 0, -1);
}

std::vector<SessionRecord> ResultsReader::sessions() const {
  return state_->read(results::sessions_table(), 0, -1);
}

}  // namespace alignpro
