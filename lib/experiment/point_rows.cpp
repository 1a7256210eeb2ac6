#include "experiment/point_rows.h"

#include <cmath>

#include "experiment/axes.h"
#include "metrics/timer.h"

namespace moelab::experiment {

std::map<int, std::vector<size_t>> rows_by_point(const ResultsTable& t) {
  std::map<int, std::vector<size_t>> by_point;
  const int c = t.column("point");
  if (c < 0) return by_point;
  for (size_t r = 0; r < t.n_rows; ++r) by_point[int(t.num[size_t(c)][r])].push_back(r);
  return by_point;
}

std::vector<int> varying_axis_columns(const ResultsTable& t) {
  std::vector<int> vary;
  for (const Axis& a : axes()) {
    const int c = t.column(a.name);
    if (c < 0) continue;
    for (size_t r = 1; r < t.n_rows; ++r)
      if (t.cell(c, r) != t.cell(c, 0)) {
        vary.push_back(c);
        break;
      }
  }
  return vary;
}

double median_over_rows(const ResultsTable& t, int column, const std::vector<size_t>& rows) {
  if (column < 0 || t.is_text[size_t(column)]) return std::nan("");
  std::vector<double> v;
  for (size_t r : rows)
    if (std::isfinite(t.num[size_t(column)][r])) v.push_back(t.num[size_t(column)][r]);
  return v.empty() ? std::nan("") : metrics::median(v);
}

}  // namespace moelab::experiment
