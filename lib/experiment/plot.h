// Plots of a results file through gnuplot (gnuplot-iostream): one series per
// value of `by`, the median over repeats at each x with a min..max error bar,
// axes labelled with the units from the axis and metric tables. PNG or SVG by
// the output's extension.
#pragma once

#include <filesystem>
#include <string>

#include "experiment/spec.h"

namespace moelab::experiment {

struct PlotOutcome {
  size_t series = 0, points = 0;  // drawn
  std::string note;               // e.g. axes that vary but were pooled
};

PlotOutcome draw_plot(const std::filesystem::path& results, const PlotSpec& plot, const std::filesystem::path& out);

}  // namespace moelab::experiment
