// Deterministic synthetic data for codec studies, benchmarks and tests.
// Weights of trained LLMs are roughly Gaussian per row with heavy tails and a
// few outlier channels; both shapes are generated here from one seed.
#pragma once

#include <cstdint>
#include <vector>

namespace moelab {

// [rows, cols] i.i.d. N(0, sigma^2).
std::vector<float> gaussian_matrix(int64_t rows, int64_t cols, uint64_t seed, float sigma = 1.0f);

// [rows, cols] Student-t with `nu` degrees of freedom, scaled by `sigma`;
// `n_outlier_cols` columns (chosen from the seed) are multiplied by
// `outlier_scale`, as activation-outlier channels show up in real weights.
std::vector<float> student_t_matrix(int64_t rows, int64_t cols, uint64_t seed, double nu = 4.0, float sigma = 1.0f,
                                    int n_outlier_cols = 8, float outlier_scale = 10.0f);

}  // namespace moelab
