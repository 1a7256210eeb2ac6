#include "metrics/accuracy.h"

#include <cmath>
#include <string>

#include "core/error.h"

namespace moelab::metrics {

static void check_sizes(std::span<const float> a, std::span<const float> b, const char* what) {
  if (a.size() != b.size())
    throw Error(std::string(what) + ": sizes differ (" + std::to_string(a.size()) + " vs " +
                std::to_string(b.size()) + ")");
}

double cosine(std::span<const float> a, std::span<const float> b) {
  check_sizes(a, b, "cosine");
  double ab = 0, aa = 0, bb = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    ab += double(a[i]) * b[i];
    aa += double(a[i]) * a[i];
    bb += double(b[i]) * b[i];
  }
  if (aa == 0 || bb == 0) return aa == bb ? 1.0 : 0.0;
  return ab / std::sqrt(aa * bb);
}

double rmse(std::span<const float> ref, std::span<const float> approx) {
  check_sizes(ref, approx, "rmse");
  if (ref.empty()) return 0;
  double s = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    const double d = double(ref[i]) - approx[i];
    s += d * d;
  }
  return std::sqrt(s / double(ref.size()));
}

double rms(std::span<const float> x) {
  if (x.empty()) return 0;
  double s = 0;
  for (float v : x) s += double(v) * v;
  return std::sqrt(s / double(x.size()));
}

double relative_rmse(std::span<const float> ref, std::span<const float> approx) {
  const double r = rms(ref);
  return r == 0 ? rmse(ref, approx) : rmse(ref, approx) / r;
}

}  // namespace moelab::metrics
