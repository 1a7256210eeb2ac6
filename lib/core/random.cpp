#include "core/random.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

namespace moelab {

std::vector<float> gaussian_matrix(int64_t rows, int64_t cols, uint64_t seed, float sigma) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, sigma);
  std::vector<float> x(size_t(rows * cols));
  for (float& v : x) v = normal(rng);
  return x;
}

std::vector<float> student_t_matrix(int64_t rows, int64_t cols, uint64_t seed, double nu, float sigma,
                                    int n_outlier_cols, float outlier_scale) {
  std::mt19937_64 rng(seed);
  std::student_t_distribution<double> t(nu);
  std::vector<float> x(size_t(rows * cols));
  for (float& v : x) v = float(t(rng)) * sigma;
  std::vector<int64_t> order(static_cast<size_t>(cols));
  std::iota(order.begin(), order.end(), 0);
  std::shuffle(order.begin(), order.end(), rng);
  for (int i = 0; i < std::min<int64_t>(n_outlier_cols, cols); ++i)
    for (int64_t r = 0; r < rows; ++r) x[size_t(r * cols + order[size_t(i)])] *= outlier_scale;
  return x;
}

}  // namespace moelab
