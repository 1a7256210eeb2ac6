// `moelab sweep`: runs a spec's points (a fresh engine per point), writes
// each (point, repeat) to the results file as it finishes, shows progress
// with ETA on stderr, prints a summary table on stdout and draws the spec's
// plots. Resume skips what the file already holds; shards split the points
// by index modulo n.
#pragma once

#include <filesystem>
#include <string>

#include "experiment/spec.h"

namespace moelab::experiment {

struct SweepOptions {
  std::filesystem::path output;         // default: results/<spec name>.h5
  bool resume = false, overwrite = false, dry_run = false;
  int shard_index = 0, shard_count = 1;
  int disk_probe_mb = 64;               // scratch file for raw_disk_mb_s (0 = skip)
  std::filesystem::path model_cache;    // default: model_cache_dir()
  bool plots = true;                    // draw the spec's plots at the end
  bool quiet = false;                   // no summary table (tests)
  std::string command_line;             // echoed into the run's attributes
  // Hardware profile for the predicted_* and roofline_* metrics: "" = none,
  // "calibrate" = measured at the start of the run, else a profile file or id.
  std::string hardware;
};

// Parses "i/n" (0 <= i < n).
void parse_shard(const std::string& text, int& index, int& count);

// Returns the exit status: 0, or 1 when some points failed (the rest still ran).
// Bad specs, models and output paths throw SpecError before any work.
int run_sweep(const Spec& spec, const SweepOptions& options);

// The summary table of a results file (median over repeats per point).
std::string summary_table(const std::filesystem::path& results);

}  // namespace moelab::experiment
