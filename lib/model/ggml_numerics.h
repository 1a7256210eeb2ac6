// The elementwise and attention arithmetic of llama.cpp's CPU backend (ggml-cpu
// built for x86 with AVX2 + FMA + F16C), reproduced bit for bit so that
// moelab's forward pass gives the same logits as llama.cpp's token-by-token
// (n_batch = 1) path, not just close ones. SmolLM2-135M quantizes every
// matmul input to 8 bits, so one differing ulp anywhere flips an int8 rounding
// and the difference grows to the quantization-noise floor (cosine ~2e-4),
// enough to change the top-1 token at near-tied positions.
//
//   expf      ggml_v_expf: a degree-5 polynomial after range reduction, not libm
//   softmax   ggml_compute_forward_soft_max_f32: exps in 8-lane chunks, each
//             chunk summed in f32 then added in double; scaled by (float)(1 / sum)
//   swiglu    ggml_vec_swiglu_f32: x / (1 + expf(0 - x)) * g
//   dot_f16   ggml_vec_dot_f16: f16 x f16 in 4 x 8 f32 lanes (FMA), reduced
//             pairwise ((0 + 2) + (1 + 3), halves, hadd, hadd)
//   mix_f16   the KQV product: for each output channel d, dot_f16 of the
//             channel's values over positions with the probabilities (f16)
//
// Scalar versions (std::fma for every fused op) give the same bits as the AVX2
// ones; the AVX2 ones run whenever the CPU has AVX2 (quant::active_isa()).
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/fp16.h"

namespace moelab::model::ggml {

float expf(float x);
// x[i] <- exp(x[i] - max) / sum, over n values (already scaled).
void softmax(float* x, int64_t n);
// g[i] <- silu(g[i]) * u[i].
void swiglu(float* g, const float* u, int64_t n);
// sum_i x_i y_i with ggml_vec_dot_f16's lanes; n a multiple of 32 or not (tail in double, as ggml).
float dot_f16(const fp16_t* x, const fp16_t* y, int64_t n);
// out[d] = sum_j p_j v_j[d], j < n, v_j the f16 row at rows + j * stride (head_dim values),
// p the probabilities in f16. scratch: 32 * head_dim floats.
void mix_f16(const uint8_t* rows, size_t stride, int64_t n, const fp16_t* p, int64_t head_dim, float* scratch,
             float* out);

namespace avx2 {
void softmax(float* x, int64_t n);
void swiglu(float* g, const float* u, int64_t n);
float dot_f16(const fp16_t* x, const fp16_t* y, int64_t n);
void mix_f16(const uint8_t* rows, size_t stride, int64_t n, const fp16_t* p, int64_t head_dim, float* scratch,
             float* out);
}  // namespace avx2

namespace scalar {
void softmax(float* x, int64_t n);
void swiglu(float* g, const float* u, int64_t n);
float dot_f16(const fp16_t* x, const fp16_t* y, int64_t n);
void mix_f16(const uint8_t* rows, size_t stride, int64_t n, const fp16_t* p, int64_t head_dim, float* scratch,
             float* out);
}  // namespace scalar

}  // namespace moelab::model::ggml
