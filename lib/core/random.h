// Deterministic synthetic data for codec studies, benchmarks and tests.
// Weights of trained LLMs are roughly Gaussian per row with heavy tails and a
// few outlier channels; both shapes are generated here from one seed.
#pragma once

#include <cstdint>
#include <vector>

namespace moelab {

// SplitMix64 (Steele, Lea, Flood 2014): the output for state `z`. Used as a
// counter-based hash (same input, same output, whatever the thread or order)
// and, through splitmix64_next, as a sequential generator.
constexpr uint64_t splitmix64(uint64_t z) {
  z += 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// The next output of the sequence whose state is `state`, advancing it.
constexpr uint64_t splitmix64_next(uint64_t& state) {
  const uint64_t out = splitmix64(state);
  state += 0x9e3779b97f4a7c15ULL;
  return out;
}

// [rows, cols] i.i.d. N(0, sigma^2).
std::vector<float> gaussian_matrix(int64_t rows, int64_t cols, uint64_t seed, float sigma = 1.0f);

// [rows, cols] Student-t with `nu` degrees of freedom, scaled by `sigma`;
// `n_outlier_cols` columns (chosen from the seed) are multiplied by
// `outlier_scale`, as activation-outlier channels show up in real weights.
std::vector<float> student_t_matrix(int64_t rows, int64_t cols, uint64_t seed, double nu = 4.0, float sigma = 1.0f,
                                    int n_outlier_cols = 8, float outlier_scale = 10.0f);

}  // namespace moelab
