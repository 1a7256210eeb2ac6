#include "experiment/expand.h"

namespace moelab::experiment {

size_t product_size(const Spec& spec) {
  size_t n = 1;
  for (const SweepDim& d : spec.dims) n *= d.size();
  return n;
}

std::vector<Point> expand(const Spec& spec) {
  std::vector<Point> out;
  const size_t total = product_size(spec);
  std::vector<size_t> at(spec.dims.size(), 0);  // odometer over the dimensions
  for (size_t n = 0; n < total; ++n) {
    Point p;
    p.values = spec.fixed;
    p.origin = spec.fixed_pointer;
    for (size_t d = 0; d < spec.dims.size(); ++d) {
      const SweepDim& dim = spec.dims[d];
      for (size_t a = 0; a < dim.axes.size(); ++a) {
        p.values[size_t(dim.axes[a])] = dim.values[a][at[d]];
        p.origin[size_t(dim.axes[a])] = dim.pointers[a] + "/" + std::to_string(at[d]);
      }
    }
    bool excluded = false;
    for (const ExcludeRule& rule : spec.excludes) {
      bool all = true;
      for (const auto& [ai, vals] : rule.match) {
        bool any = false;
        for (const auto& v : vals) any = any || p.values[size_t(ai)] == v;
        all = all && any;
      }
      excluded = excluded || all;
    }
    if (!excluded) {
      p.index = int(out.size());
      out.push_back(std::move(p));
    }
    for (size_t d = spec.dims.size(); d-- > 0;) {  // last dimension fastest
      if (++at[d] < spec.dims[d].size()) break;
      at[d] = 0;
    }
  }
  return out;
}

std::vector<int> varying_axes(const std::vector<Point>& points) {
  std::vector<int> out;
  if (points.empty()) return out;
  for (size_t a = 0; a < points[0].values.size(); ++a) {
    for (const Point& p : points)
      if (p.values[a] != points[0].values[a]) {
        out.push_back(int(a));
        break;
      }
  }
  return out;
}

}  // namespace moelab::experiment
