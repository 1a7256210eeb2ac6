// Sweep options for tests: no summary table, replace the output, and the
// few settings a test chooses (the raw disk probe's size, plots, a hardware
// profile for the predicted_* metrics).
#pragma once

#include <filesystem>
#include <string>

#include "experiment/sweep.h"

namespace moelab::test {

inline experiment::SweepOptions quiet_options(const std::filesystem::path& out, int disk_probe_mb = 1,
                                              bool plots = true, const std::string& hardware = "") {
  experiment::SweepOptions o;
  o.output = out;
  o.quiet = true;
  o.overwrite = true;
  o.disk_probe_mb = disk_probe_mb;
  o.plots = plots;
  o.hardware = hardware;
  return o;
}

}  // namespace moelab::test
