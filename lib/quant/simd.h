// SIMD kernels, declared per instruction set. Each family's kernels live in
// their own translation units named <family>_<isa>.cpp, compiled with that
// ISA's flags only (lib/CMakeLists.txt), and are reached only through the
// codec table after runtime dispatch has checked the CPU (codec.cpp). Every
// kernel has a scalar twin in kernels_ref.h that tests compare it against.
#pragma once

#include <cstdint>

namespace moelab::quant {

// legacy.cpp: the q8_0 / q8_1 activation encoders of active_isa(), each
// byte-identical to ref::encode_q8_*; the codec table's `encode` for them.
void encode_q8_0_dispatch(const float* x, void* dst, int64_t n, const float* importance);
void encode_q8_1_dispatch(const float* x, void* dst, int64_t n, const float* importance);
// legacy.cpp: matmul-input encoders that match llama.cpp's x86 CPU backend
// byte for byte (ref::encode_q8_*_act); Activations::encode uses them.
void encode_q8_0_act_dispatch(const float* x, void* dst, int64_t n, const float* importance);
void encode_q8_1_act_dispatch(const float* x, void* dst, int64_t n, const float* importance);

namespace avx2 {
// legacy_avx2.cpp (f16, bf16, q4_0 .. q8_0)
void encode_q8_0(const float* x, void* dst, int64_t n, const float* importance);
void encode_q8_1(const float* x, void* dst, int64_t n, const float* importance);
void encode_q8_0_act(const float* x, void* dst, int64_t n, const float* importance);
void encode_q8_1_act(const float* x, void* dst, int64_t n, const float* importance);
void decode_f16(const void* src, float* y, int64_t n);
void decode_bf16(const void* src, float* y, int64_t n);
void decode_q4_0(const void* src, float* y, int64_t n);
void decode_q4_1(const void* src, float* y, int64_t n);
void decode_q5_0(const void* src, float* y, int64_t n);
void decode_q5_1(const void* src, float* y, int64_t n);
void decode_q8_0(const void* src, float* y, int64_t n);
void decode_q8_1(const void* src, float* y, int64_t n);
float dot_f32_f32(const void* w, const void* act, int64_t n);
float dot_f16_f32(const void* w, const void* act, int64_t n);
float dot_bf16_f32(const void* w, const void* act, int64_t n);
float dot_q4_0_q8_0(const void* w, const void* act, int64_t n);
float dot_q4_1_q8_1(const void* w, const void* act, int64_t n);
float dot_q5_0_q8_0(const void* w, const void* act, int64_t n);
float dot_q5_1_q8_1(const void* w, const void* act, int64_t n);
float dot_q8_0_q8_0(const void* w, const void* act, int64_t n);

// kquants_avx2.cpp (q2_k .. q6_k with q8_k activations)
float dot_q2_k_q8_k(const void* w, const void* act, int64_t n);
float dot_q3_k_q8_k(const void* w, const void* act, int64_t n);
float dot_q4_k_q8_k(const void* w, const void* act, int64_t n);
float dot_q5_k_q8_k(const void* w, const void* act, int64_t n);
float dot_q6_k_q8_k(const void* w, const void* act, int64_t n);
void decode_q2_k(const void* src, float* y, int64_t n);
void decode_q3_k(const void* src, float* y, int64_t n);
void decode_q4_k(const void* src, float* y, int64_t n);
void decode_q5_k(const void* src, float* y, int64_t n);
void decode_q6_k(const void* src, float* y, int64_t n);

// lowbit_avx2.cpp (affine{2,3,4,5,6,8}_g{32,64,128}, tq3, tq4)
template <int kBits, int kGroup>
void decode_affine(const void* src, float* y, int64_t n);
template <int kBits, int kGroup>
float dot_affine_q8_1(const void* w, const void* act, int64_t n);
void decode_tq3(const void* src, float* y, int64_t n);
void decode_tq4(const void* src, float* y, int64_t n);
float dot_tq3_rot128(const void* w, const void* act, int64_t n);
float dot_tq4_rot128(const void* w, const void* act, int64_t n);
}  // namespace avx2

namespace avx512 {
// legacy_avx512.cpp (same set as avx2; integer dots use VNNI)
void encode_q8_0(const float* x, void* dst, int64_t n, const float* importance);
void encode_q8_1(const float* x, void* dst, int64_t n, const float* importance);
void encode_q8_0_act(const float* x, void* dst, int64_t n, const float* importance);
void encode_q8_1_act(const float* x, void* dst, int64_t n, const float* importance);
void decode_f16(const void* src, float* y, int64_t n);
void decode_bf16(const void* src, float* y, int64_t n);
void decode_q4_0(const void* src, float* y, int64_t n);
void decode_q4_1(const void* src, float* y, int64_t n);
void decode_q5_0(const void* src, float* y, int64_t n);
void decode_q5_1(const void* src, float* y, int64_t n);
void decode_q8_0(const void* src, float* y, int64_t n);
void decode_q8_1(const void* src, float* y, int64_t n);
float dot_f32_f32(const void* w, const void* act, int64_t n);
float dot_f16_f32(const void* w, const void* act, int64_t n);
float dot_bf16_f32(const void* w, const void* act, int64_t n);
float dot_q4_0_q8_0(const void* w, const void* act, int64_t n);
float dot_q5_0_q8_0(const void* w, const void* act, int64_t n);
float dot_q5_1_q8_1(const void* w, const void* act, int64_t n);

// kquants_avx512.cpp (q2_k .. q6_k with q8_k activations)
float dot_q2_k_q8_k(const void* w, const void* act, int64_t n);
float dot_q3_k_q8_k(const void* w, const void* act, int64_t n);
float dot_q4_k_q8_k(const void* w, const void* act, int64_t n);
float dot_q5_k_q8_k(const void* w, const void* act, int64_t n);
float dot_q6_k_q8_k(const void* w, const void* act, int64_t n);
void decode_q2_k(const void* src, float* y, int64_t n);
void decode_q3_k(const void* src, float* y, int64_t n);
void decode_q4_k(const void* src, float* y, int64_t n);
void decode_q5_k(const void* src, float* y, int64_t n);
void decode_q6_k(const void* src, float* y, int64_t n);

// lowbit_avx512.cpp (same set as avx2; integer dots use VNNI)
template <int kBits, int kGroup>
void decode_affine(const void* src, float* y, int64_t n);
template <int kBits, int kGroup>
float dot_affine_q8_1(const void* w, const void* act, int64_t n);
void decode_tq3(const void* src, float* y, int64_t n);
void decode_tq4(const void* src, float* y, int64_t n);
float dot_tq3_rot128(const void* w, const void* act, int64_t n);
float dot_tq4_rot128(const void* w, const void* act, int64_t n);
}  // namespace avx512

}  // namespace moelab::quant
