// `moelab plot`: one metric of a results file against an axis, as PNG or SVG.
#include <cstdio>

#include "commands.h"
#include "experiment/plot.h"

namespace moelab::cli {

int run_plot(const PlotOptions& opts) {
  experiment::PlotSpec p;
  p.x = opts.x;
  p.y = opts.y;
  p.by = opts.by;
  p.kind = opts.kind;
  p.file = opts.output;
  p.title = opts.title;
  for (const std::string& w : opts.where) p.where.push_back(experiment::parse_where(w));
  experiment::validate_plot(p, "plot", "");
  const experiment::PlotOutcome o = experiment::draw_plot(opts.results, p, opts.output);
  std::fprintf(stderr, "plot: wrote %s (%zu series, %zu points%s%s)\n", opts.output.c_str(), o.series, o.points,
               o.note.empty() ? "" : "; ", o.note.c_str());
  return 0;
}

}  // namespace moelab::cli
