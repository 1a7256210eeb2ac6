// `moelab regress`: the CI regression gate over normalised bench figures.
#include <cstdio>
#include <fstream>

#include "commands.h"
#include "core/error.h"
#include "metrics/regress.h"

namespace moelab::cli {

int run_regress(const RegressOptions& opts) {
  const metrics::FigureSet baseline = metrics::load_figures(opts.baseline);
  const metrics::FigureSet current = metrics::load_figures(opts.current);
  const metrics::Tolerances tolerances =
      opts.tolerances.empty() ? metrics::Tolerances{} : metrics::load_tolerances(opts.tolerances);
  const metrics::RegressReport report = metrics::compare(baseline, current, tolerances);
  const std::string table = report.table();
  std::fputs(table.c_str(), stdout);
  if (!opts.markdown_path.empty()) {
    std::ofstream out(opts.markdown_path);
    if (!(out << table)) throw Error(opts.markdown_path + ": cannot write the comparison table");
  }
  std::fprintf(stderr, "regress: %d figures compared, %d regressed, %d missing from %s: %s\n", report.compared,
               report.regressions, report.missing, opts.current.c_str(), report.ok() ? "PASS" : "FAIL");
  return report.ok() ? 0 : 1;
}

}  // namespace moelab::cli
