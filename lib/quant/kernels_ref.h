// Scalar reference kernels, one set per codec. These define the formats: every
// SIMD kernel must reproduce `decode_*` bit for bit and `dot_*` within the
// tolerance named in tests/quant. Implemented per family in legacy.cpp,
// kquants.cpp, affine.cpp and turbo.cpp.
#pragma once

#include <cstdint>

#include "core/fp16.h"

namespace moelab::quant::ref {

#define MOELAB_DECLARE_CODEC(name)                                                   \
  void encode_##name(const float* x, void* dst, int64_t n, const float* importance); \
  void decode_##name(const void* src, float* y, int64_t n)

// Floating formats; their dot takes f32 activations.
MOELAB_DECLARE_CODEC(f32);
MOELAB_DECLARE_CODEC(f16);
MOELAB_DECLARE_CODEC(bf16);
float dot_f32_f32(const void* w, const void* act, int64_t n);
float dot_f16_f32(const void* w, const void* act, int64_t n);
float dot_bf16_f32(const void* w, const void* act, int64_t n);

// Legacy 32-value blocks (legacy.cpp). encode_* are ggml's `_ref` quantizers.
MOELAB_DECLARE_CODEC(q4_0);
MOELAB_DECLARE_CODEC(q4_1);
MOELAB_DECLARE_CODEC(q5_0);
MOELAB_DECLARE_CODEC(q5_1);
MOELAB_DECLARE_CODEC(q8_0);
MOELAB_DECLARE_CODEC(q8_1);  // activation codec for q4_1, q5_1 and affine
// Activation encoders as llama.cpp's x86 CPU backend quantizes matmul inputs
// (id = 127 / amax, round half to even); blocks as q8_0 / q8_1.
void encode_q8_0_act(const float* x, void* dst, int64_t n, const float* importance);
void encode_q8_1_act(const float* x, void* dst, int64_t n, const float* importance);
float dot_q4_0_q8_0(const void* w, const void* act, int64_t n);
float dot_q4_1_q8_1(const void* w, const void* act, int64_t n);
float dot_q5_0_q8_0(const void* w, const void* act, int64_t n);
float dot_q5_1_q8_1(const void* w, const void* act, int64_t n);
float dot_q8_0_q8_0(const void* w, const void* act, int64_t n);

// K-quants (kquants.cpp). encode_*_ref ignores importance and follows ggml's
// reference quantizer; encode_* honours importance when given.
MOELAB_DECLARE_CODEC(q2_k);
MOELAB_DECLARE_CODEC(q3_k);
MOELAB_DECLARE_CODEC(q4_k);
MOELAB_DECLARE_CODEC(q5_k);
MOELAB_DECLARE_CODEC(q6_k);
MOELAB_DECLARE_CODEC(q8_k);  // activation codec for k-quant dots
void encode_q2_k_ref(const float* x, void* dst, int64_t n, const float* importance);
void encode_q3_k_ref(const float* x, void* dst, int64_t n, const float* importance);
void encode_q4_k_ref(const float* x, void* dst, int64_t n, const float* importance);
void encode_q5_k_ref(const float* x, void* dst, int64_t n, const float* importance);
void encode_q6_k_ref(const float* x, void* dst, int64_t n, const float* importance);
float dot_q2_k_q8_k(const void* w, const void* act, int64_t n);
float dot_q3_k_q8_k(const void* w, const void* act, int64_t n);
float dot_q4_k_q8_k(const void* w, const void* act, int64_t n);
float dot_q5_k_q8_k(const void* w, const void* act, int64_t n);
float dot_q6_k_q8_k(const void* w, const void* act, int64_t n);

// MLX-style affine groups (affine.cpp): block = one group of kGroup values,
// x = scale * q + bias, q in [0, 2^kBits), codes a little-endian bit stream
// (value j at bit kBits * j), as mx.quantize packs them. Dot takes q8_1
// activations. encode_affine_ref is MLX's min/max rule; encode_affine refines
// scale and bias by (importance-)weighted least squares and never does worse.
template <int kBits, int kGroup>
struct BlockAffine {
  fp16_t scale, bias;
  uint8_t codes[kGroup * kBits / 8];
};
static_assert(sizeof(BlockAffine<4, 64>) == 2 * sizeof(fp16_t) + 64 * 4 / 8);  // 36
static_assert(sizeof(BlockAffine<3, 32>) == 2 * sizeof(fp16_t) + 32 * 3 / 8);  // 16
template <int kBits, int kGroup>
void encode_affine_ref(const float* x, void* dst, int64_t n, const float* importance);
template <int kBits, int kGroup>
void encode_affine(const float* x, void* dst, int64_t n, const float* importance);
template <int kBits, int kGroup>
void decode_affine(const void* src, float* y, int64_t n);
template <int kBits, int kGroup>
float dot_affine_q8_1(const void* w, const void* act, int64_t n);

// TurboQuant-style weights (turbo.cpp): per 128-value block, the random-sign
// Walsh-Hadamard rotation of hadamard.h, then a symmetric Lloyd-Max codebook
// for N(0, 1) (2^kBits levels +-kTqNLevels[m]) times one fp16 scale per block,
// the least-squares scale for the chosen codes. Dot takes activations in
// `rot128` (the same rotation, f32): <R^T c, x> = <c, R x>.
inline constexpr int kTurboBlock = 128;
// Positive halves of the codebooks, ascending (values in turbo.cpp).
extern const float kTq3Levels[4];
extern const float kTq4Levels[8];
// tq3's quantizer on one already-rotated row of n <= 512 values (lib/kv's tq3
// KV codec): codes[i] = sign << 2 | magnitude index, and the fp16 scale.
void tq3_quantize_rotated(const float* y, int64_t n, uint8_t* codes, fp16_t& scale);
// The same for tq4 (lib/kv's tq4m): codes[i] = sign << 3 | magnitude index.
void tq4_quantize_rotated(const float* y, int64_t n, uint8_t* codes, fp16_t& scale);
// Codes are sign + magnitude index, stored so that SIMD kernels unpack 16
// lanes with one shift each:
// tq3: value i's sign is bit i of `signs` (a little-endian bit stream) and
//      its magnitude index bits 2i..2i+1 of `mags`.
struct BlockTq3 {
  fp16_t scale;
  uint8_t signs[kTurboBlock / 8];
  uint8_t mags[kTurboBlock * 2 / 8];
};
static_assert(sizeof(BlockTq3) == sizeof(fp16_t) + kTurboBlock * 3 / 8);  // 50
// tq4: value i's 4-bit code (sign << 3 | magnitude index) is nibble i / 16
//      of little-endian 32-bit word i % 16.
struct BlockTq4 {
  fp16_t scale;
  uint8_t codes[kTurboBlock * 4 / 8];
};
static_assert(sizeof(BlockTq4) == sizeof(fp16_t) + kTurboBlock * 4 / 8);  // 66
MOELAB_DECLARE_CODEC(tq3);
MOELAB_DECLARE_CODEC(tq4);
MOELAB_DECLARE_CODEC(rot128);  // activation codec: rotated f32 blocks
float dot_tq3_rot128(const void* w, const void* act, int64_t n);
float dot_tq4_rot128(const void* w, const void* act, int64_t n);

#undef MOELAB_DECLARE_CODEC

}  // namespace moelab::quant::ref
