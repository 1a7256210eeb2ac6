// Accuracy metrics between a reference and an approximation (f64 sums, so
// they are stable for millions of values).
#pragma once

#include <span>

namespace moelab::metrics {

double cosine(std::span<const float> a, std::span<const float> b);  // 1 for identical directions
double rmse(std::span<const float> ref, std::span<const float> approx);
double rms(std::span<const float> x);
// Relative RMSE: rmse / rms(ref); scale-free, comparable across matrices.
double relative_rmse(std::span<const float> ref, std::span<const float> approx);

}  // namespace moelab::metrics
