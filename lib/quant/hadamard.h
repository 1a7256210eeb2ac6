// The randomised Walsh-Hadamard rotation of 128-value blocks used by the tq
// weight codecs and the rot128 activation codec (kv/ codecs may reuse it).
//
//   R = H D / sqrt(128)
//
// D negates the values whose bit is set in a fixed pseudo-random pattern (two
// splitmix64 outputs from kSignSeed), H is the unnormalised Sylvester-ordered
// Hadamard matrix. R is orthonormal, so <R w, R x> = <w, x>: weights rotated
// once when encoded and activations rotated once per token give the original
// dot product. The random signs spread an outlier over the whole block, which
// makes a rotated block look Gaussian; that is what the Lloyd-Max codebooks of
// tq3/tq4 are designed for.
#pragma once

#include <array>
#include <cstdint>

#include "core/random.h"

namespace moelab::quant::hadamard {

inline constexpr int kBlock = 128;
inline constexpr uint64_t kSignSeed = 0x6d6f656c61622d72ULL;  // ASCII "moelab-r"
inline constexpr float kInvSqrtBlock = 0.0883883476483184405501f;  // 1 / sqrt(128)

// Bit i % 64 of word i / 64 set: value i is negated by D.
inline constexpr std::array<uint64_t, 2> kSignBits = [] {
  uint64_t state = kSignSeed;
  std::array<uint64_t, 2> bits{};
  for (uint64_t& b : bits) b = splitmix64_next(state);
  return bits;
}();

constexpr bool negated(int i) { return (kSignBits[size_t(i / 64)] >> (i % 64)) & 1u; }

// In-place unnormalised transform. Stage order (span 1, 2, ..., 64) and the
// butterfly (a + b, a - b) are part of the format: SIMD twins follow them
// exactly so that decoders stay bit-identical to the scalar ones.
inline void fwht(float* x) {  // x: [kBlock]
  for (int h = 1; h < kBlock; h *= 2)
    for (int i = 0; i < kBlock; i += 2 * h)
      for (int j = i; j < i + h; ++j) {
        const float a = x[j], b = x[j + h];
        x[j] = a + b;
        x[j + h] = a - b;
      }
}

// The same transform on a power-of-two length n <= kBlock (stage order and
// butterfly as above; lib/kv rotates head rows of 64 values with it).
inline void fwht(float* x, int n) {
  for (int h = 1; h < n; h *= 2)
    for (int i = 0; i < n; i += 2 * h)
      for (int j = i; j < i + h; ++j) {
        const float a = x[j], b = x[j + h];
        x[j] = a + b;
        x[j + h] = a - b;
      }
}

// y = R x. x, y: [kBlock], may alias.
inline void rotate(const float* x, float* y) {
  for (int i = 0; i < kBlock; ++i) y[i] = negated(i) ? -x[i] : x[i];
  fwht(y);
  for (int i = 0; i < kBlock; ++i) y[i] *= kInvSqrtBlock;
}

// x = R^T y = D H y / sqrt(128). y, x: [kBlock], may alias.
inline void unrotate(const float* y, float* x) {
  for (int i = 0; i < kBlock; ++i) x[i] = y[i];
  fwht(x);
  for (int i = 0; i < kBlock; ++i) {
    const float v = x[i] * kInvSqrtBlock;
    x[i] = negated(i) ? -v : v;
  }
}

}  // namespace moelab::quant::hadamard
