// HDF5 results of one spec (schema in the README, "Results files"):
//   /                 attrs: format, format_version, spec_name, spec_hash, spec_json, created_utc
//   /runs/<k>         one group per invocation (sweep, resume, shard); attrs: context (git, build, host,
//                     raw disk bandwidth, shard, command, started_utc)
//   /points           compound table, one row per (point, repeat): run, point, repeat, every axis, every metric
//   /raw/<point>/<repeat>/token_latency_ms, hidden_cosine, spec_precision, spec_recall   (float64 arrays)
//
// Every change (a run group, a row) is made on a copy of the file that is
// flushed, closed, fsync'ed and renamed over the original: a sweep killed at
// any instant leaves the previous complete file, never a torn one (H5Fflush
// alone does not promise that if the kill lands mid-write). The file stays
// closed between points, so h5py can read it while a sweep runs.
#pragma once

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "experiment/axes.h"
#include "experiment/metric_table.h"
#include "experiment/spec.h"

namespace moelab::experiment {

inline constexpr int kResultsFormatVersion = 1;

struct ResultRow {
  int32_t run = 0, point = 0, repeat = 0;
  AxisValues axes;                          // [axes()]
  MetricValues metrics;
  std::vector<double> token_latency_ms;     // [decode_tokens]
  std::vector<double> hidden_cosine;        // [n_layer] (empty when accuracy is off)
  std::vector<double> spec_precision, spec_recall;  // [spec_depth]
};

// Fails with a SpecError (exit 2) unless `path` can be created or replaced:
// its folder is created if missing and a probe file written and removed.
void check_output_writable(const std::filesystem::path& path);

class ResultsFile {
 public:
  // A new file for `spec` (an existing one is an error unless overwrite).
  static ResultsFile create(const std::filesystem::path& path, const Spec& spec, bool overwrite);
  // An existing file of the same spec (hash checked), or a new one when missing.
  static ResultsFile resume(const std::filesystem::path& path, const Spec& spec);

  // (point, repeat) pairs already in /points.
  std::set<std::pair<int, int>> done() const;
  // Adds /runs/<k> with these attributes; returns k.
  int add_run(const nlohmann::ordered_json& attrs);
  void append(const ResultRow& row);
  const std::filesystem::path& path() const { return path_; }

 private:
  explicit ResultsFile(std::filesystem::path p) : path_(std::move(p)) {}
  std::filesystem::path path_;
};

// The /points table read back: one column per compound member.
struct ResultsTable {
  std::vector<std::string> names;
  std::vector<bool> is_text;
  std::vector<std::vector<double>> num;          // [column][row]; empty for text columns
  std::vector<std::vector<std::string>> text;    // [column][row]; empty for numeric columns
  size_t n_rows = 0;
  int column(std::string_view name) const;       // -1 when absent
  std::string cell(int column, size_t row) const;  // text, or the number printed compactly
};
ResultsTable read_points(const std::filesystem::path& path);
std::string read_root_attr(const std::filesystem::path& path, const std::string& name);
std::vector<double> read_raw(const std::filesystem::path& path, int point, int repeat, const std::string& name);

// Combines results files of one spec (same spec_hash) into `out`: runs are
// renumbered, rows and raw arrays copied. A (point, repeat) present twice is
// an error unless `dedupe`, which keeps the first occurrence (input order).
struct MergeReport {
  size_t rows = 0, duplicates_dropped = 0, runs = 0;
};
MergeReport merge_results(const std::vector<std::filesystem::path>& inputs, const std::filesystem::path& out,
                          bool dedupe);

}  // namespace moelab::experiment
