// One line per point out of a results table (rows are (point, repeat)):
// which rows each point has, which axes vary between points, and a metric's
// median over a point's repeats. Shared by the sweep's summary table and the
// predicted-vs-measured report.
#pragma once

#include <map>
#include <vector>

#include "experiment/results.h"

namespace moelab::experiment {

// point -> its rows, in point order.
std::map<int, std::vector<size_t>> rows_by_point(const ResultsTable& t);

// Columns of the axes (in axes() order) whose value differs between rows.
std::vector<int> varying_axis_columns(const ResultsTable& t);

// Median of the finite values of numeric column `column` over `rows`; NaN
// when the column is missing (< 0), textual, or has no finite value there.
double median_over_rows(const ResultsTable& t, int column, const std::vector<size_t>& rows);

}  // namespace moelab::experiment
