// The metrics a sweep point records (definitions in shared/DESIGN.md): one
// table (metric_table.cpp) that gives the HDF5 columns, their units for plot
// labels, the README list and the summary columns.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace moelab::experiment {

struct Metric {
  std::string_view name;
  std::string_view unit;
  std::string_view help;
};

const std::vector<Metric>& metrics();
int metric_index(std::string_view name);  // -1 when unknown
std::string metric_label(const Metric& m);
std::string metrics_markdown();

// The values of one (point, repeat), in table order; NaN where not measured.
class MetricValues {
 public:
  MetricValues();
  void set(std::string_view name, double value);  // throws moelab::Error for a name not in the table
  double get(std::string_view name) const;
  const std::vector<double>& values() const { return values_; }
  std::vector<double>& values() { return values_; }

 private:
  std::vector<double> values_;  // [metrics().size()]
};

}  // namespace moelab::experiment
