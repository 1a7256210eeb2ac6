// On-disk block layouts of the GGUF codecs, byte for byte as ggml stores them.
// Each size is asserted as a formula of its fields, so a wrong layout fails to
// compile rather than silently misreading a file.
#pragma once

#include <cstdint>

#include "core/fp16.h"

namespace moelab::quant {

inline constexpr int kQK = 32;          // values per legacy block (q4_0 .. q8_1)
inline constexpr int kQK_K = 256;       // values per k-quant super-block
inline constexpr int kKScaleBytes = 12; // packed 6-bit scales+mins of q4_k/q5_k

// 4-bit, one scale: x = d * (q - 8)
struct BlockQ4_0 {
  fp16_t d;
  uint8_t qs[kQK / 2];  // low nibble: value j, high nibble: value j + 16
};
static_assert(sizeof(BlockQ4_0) == sizeof(fp16_t) + kQK / 2);  // 18

// 4-bit, scale and min: x = d * q + m
struct BlockQ4_1 {
  fp16_t d, m;
  uint8_t qs[kQK / 2];
};
static_assert(sizeof(BlockQ4_1) == 2 * sizeof(fp16_t) + kQK / 2);  // 20

// 5-bit, one scale: x = d * (q - 16); the 5th bits live in qh
struct BlockQ5_0 {
  fp16_t d;
  uint8_t qh[4];
  uint8_t qs[kQK / 2];
};
static_assert(sizeof(BlockQ5_0) == sizeof(fp16_t) + 4 + kQK / 2);  // 22

struct BlockQ5_1 {
  fp16_t d, m;
  uint8_t qh[4];
  uint8_t qs[kQK / 2];
};
static_assert(sizeof(BlockQ5_1) == 2 * sizeof(fp16_t) + 4 + kQK / 2);  // 24

// 8-bit, one scale: x = d * q
struct BlockQ8_0 {
  fp16_t d;
  int8_t qs[kQK];
};
static_assert(sizeof(BlockQ8_0) == sizeof(fp16_t) + kQK);  // 34

// 8-bit activations for q4_1/q5_1 (and affine) dots: s = d * sum(qs)
struct BlockQ8_1 {
  fp16_t d, s;
  int8_t qs[kQK];
};
static_assert(sizeof(BlockQ8_1) == 2 * sizeof(fp16_t) + kQK);  // 36

// 2-bit k-quant: 16 groups of 16, 4-bit scale and 4-bit min per group
struct BlockQ2_K {
  uint8_t scales[kQK_K / 16];  // low nibble scale, high nibble min
  uint8_t qs[kQK_K / 4];
  fp16_t d, dmin;
};
static_assert(sizeof(BlockQ2_K) == 2 * sizeof(fp16_t) + kQK_K / 16 + kQK_K / 4);  // 84

// 3-bit k-quant: 16 groups of 16, 6-bit signed scales, high bit in hmask
struct BlockQ3_K {
  uint8_t hmask[kQK_K / 8];
  uint8_t qs[kQK_K / 4];
  uint8_t scales[12];
  fp16_t d;
};
static_assert(sizeof(BlockQ3_K) == sizeof(fp16_t) + kQK_K / 4 + kQK_K / 8 + 12);  // 110

// 4-bit k-quant: 8 groups of 32, 6-bit scale and min per group
struct BlockQ4_K {
  fp16_t d, dmin;
  uint8_t scales[kKScaleBytes];
  uint8_t qs[kQK_K / 2];
};
static_assert(sizeof(BlockQ4_K) == 2 * sizeof(fp16_t) + kKScaleBytes + kQK_K / 2);  // 144

struct BlockQ5_K {
  fp16_t d, dmin;
  uint8_t scales[kKScaleBytes];
  uint8_t qh[kQK_K / 8];
  uint8_t qs[kQK_K / 2];
};
static_assert(sizeof(BlockQ5_K) == 2 * sizeof(fp16_t) + kKScaleBytes + kQK_K / 8 + kQK_K / 2);  // 176

// 6-bit k-quant: 16 groups of 16, 8-bit signed scales
struct BlockQ6_K {
  uint8_t ql[kQK_K / 2];
  uint8_t qh[kQK_K / 4];
  int8_t scales[kQK_K / 16];
  fp16_t d;
};
static_assert(sizeof(BlockQ6_K) == sizeof(fp16_t) + kQK_K / 16 + 3 * kQK_K / 4);  // 210

// 8-bit activations for k-quant dots; bsums[i] = sum of qs[16 i .. 16 i + 15]
struct BlockQ8_K {
  float d;
  int8_t qs[kQK_K];
  int16_t bsums[kQK_K / 16];
};
static_assert(sizeof(BlockQ8_K) == sizeof(float) + kQK_K + kQK_K / 16 * sizeof(int16_t));  // 292

}  // namespace moelab::quant
