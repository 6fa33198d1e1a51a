// Reading and writing the column tables of results_tables.h; shared by the results writer and
// reader, not used elsewhere.
#pragma once

#include <string>
#include <vector>

#include "common/error.h"
#include "io/hdf5_util.h"
#include "io/results_tables.h"

namespace alignpro::results {

// Names of the attributes on table groups and on column datasets.
inline constexpr const char* kRowsAttribute = "rows";
inline constexpr const char* kDescriptionAttribute = "description";
inline constexpr const char* kUnitAttribute = "unit";

// Creates the table's group (and parents) with its columns, descriptions and units; rows = 0.
template <class R>
void create_table(hid_t file, const Table<R>& table, const std::string& file_name) {
  h5::Handle links = h5::checked(H5Pcreate(H5P_LINK_CREATE), file_name, "link properties");
  h5::check(H5Pset_create_intermediate_group(links, 1), file_name, "link properties");
  // Columns keep their order of creation, which h5py and pandas then show.
  h5::Handle order = h5::checked(H5Pcreate(H5P_GROUP_CREATE), file_name, "group properties");
  h5::check(H5Pset_link_creation_order(order, H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED),
            file_name, "group properties");
  h5::Handle group = h5::checked(H5Gcreate2(file, table.path.c_str(), links, order, H5P_DEFAULT),
                                 file_name, "cannot create group /" + table.path);
  h5::write_attribute(group, kDescriptionAttribute, table.doc, file_name);
  h5::write_attribute(group, kRowsAttribute, int64_t{0}, file_name);
  for (const auto& column : table.columns) {
    const std::string where = "/" + table.path + "/" + column.name;
    h5::create_column(group, column.name, column.type, table.chunk_rows, file_name, where);
    h5::Handle dataset = h5::checked(H5Dopen2(group, column.name.c_str(), H5P_DEFAULT), file_name,
                                     "cannot open " + where);
    h5::write_attribute(dataset, kDescriptionAttribute, column.doc, file_name);
    h5::write_attribute(dataset, kUnitAttribute, column.unit, file_name);
  }
}

inline h5::Handle open_group(hid_t file, const std::string& path, const std::string& file_name) {
  return h5::checked(H5Gopen2(file, path.c_str(), H5P_DEFAULT), file_name,
                     "cannot open group /" + path);
}

inline h5::Handle open_dataset(hid_t group, const std::string& table, const std::string& name,
                               const std::string& file_name) {
  return h5::checked(H5Dopen2(group, name.c_str(), H5P_DEFAULT), file_name,
                     "cannot open dataset /" + table + "/" + name);
}

// Writes `rows` at row `first` of every column; each column ends up exactly first + size long.
template <class R>
void write_table_rows(hid_t group, const Table<R>& table, hsize_t first, const std::vector<R>& rows,
                      const std::string& file_name) {
  for (const auto& column : table.columns) {
    h5::ColumnData data = h5::empty_column(column.type);
    for (const auto& row : rows) column.push(row, data);
    const std::string where = "/" + table.path + "/" + column.name;
    h5::Handle dataset = open_dataset(group, table.path, column.name, file_name);
    h5::write_column(dataset, first, data, file_name, where);
    if (h5::column_length(dataset, file_name, where) != first + rows.size()) {
      h5::resize_column(dataset, first + rows.size(), file_name, where);
    }
  }
}

// Reads rows [first, first + count) of every column into records.
template <class R>
std::vector<R> read_table_rows(hid_t group, const Table<R>& table, hsize_t first, hsize_t count,
                               const std::string& file_name) {
  std::vector<R> rows(count);
  if (count == 0) return rows;
  for (const auto& column : table.columns) {
    const std::string where = "/" + table.path + "/" + column.name;
    h5::Handle dataset = open_dataset(group, table.path, column.name, file_name);
    const h5::ColumnData data =
        h5::read_column(dataset, column.type, first, count, file_name, where);
    for (hsize_t i = 0; i < count; ++i) column.pull(data, i, rows[i]);
  }
  return rows;
}

// Sets every column of the table to exactly `rows` rows.
template <class R>
void resize_table(hid_t group, const Table<R>& table, hsize_t rows, const std::string& file_name) {
  for (const auto& column : table.columns) {
    const std::string where = "/" + table.path + "/" + column.name;
    h5::Handle dataset = open_dataset(group, table.path, column.name, file_name);
    if (h5::column_length(dataset, file_name, where) != rows) {
      h5::resize_column(dataset, rows, file_name, where);
    }
  }
}

// The table's shortest column length: rows that exist in every column.
template <class R>
hsize_t table_length(hid_t group, const Table<R>& table, const std::string& file_name) {
  hsize_t shortest = ~hsize_t{0};
  for (const auto& column : table.columns) {
    h5::Handle dataset = open_dataset(group, table.path, column.name, file_name);
    shortest = std::min(
        shortest, h5::column_length(dataset, file_name, "/" + table.path + "/" + column.name));
  }
  return table.columns.empty() ? 0 : shortest;
}

// How many of the first `rows` rows have step <= last_step (rows are in step order).
inline hsize_t rows_through_step(hid_t group, const std::string& table, hsize_t rows,
                                 int64_t last_step, const std::string& file_name) {
  h5::Handle dataset = open_dataset(group, table, "step", file_name);
  // Scan backwards in blocks: usually only the last step, if any, is beyond last_step.
  constexpr hsize_t kBlock = 4096;
  hsize_t end = rows;
  while (end > 0) {
    const hsize_t begin = end > kBlock ? end - kBlock : 0;
    const auto data = h5::read_column(dataset, h5::ColumnType::kInt64, begin, end - begin,
                                      file_name, "/" + table + "/step");
    const auto& steps = std::get<std::vector<int64_t>>(data);
    for (hsize_t i = steps.size(); i > 0; --i) {
      if (steps[i - 1] <= last_step) return begin + i;
    }
    end = begin;
  }
  return 0;
}

}  // namespace alignpro::results
