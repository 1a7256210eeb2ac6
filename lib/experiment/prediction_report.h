// `moelab reproduce --results <file.h5>`: measured-here vs predicted-here per
// sweep point (median over repeats), the ratio, the bound, the hit rates and
// the roofline, and the median absolute error |predicted / measured - 1|.
#pragma once

#include <filesystem>
#include <string>

namespace moelab::experiment {

struct PredictionReport {
  std::string markdown;
  int points = 0;                   // points with both a measurement and a prediction
  double median_abs_error = 0;      // median over those points of |predicted / measured - 1|
  int within_15 = 0;                // points with |predicted / measured - 1| <= 0.15
};

// Throws moelab::Error when the file holds no predictions (a sweep without --hardware).
PredictionReport prediction_report(const std::filesystem::path& results);

}  // namespace moelab::experiment
