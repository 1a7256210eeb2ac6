// Scalar twins of ggml-cpu's AVX2 arithmetic (see ggml_numerics.h): each lane
// operation written out, fused multiply-adds through std::fma, so the bits
// equal the SIMD ones on any CPU.
#include "model/ggml_numerics.h"

#include <bit>
#include <cmath>
#include <cstring>

#include "quant/codec.h"

namespace moelab::model::ggml {
namespace {

bool use_avx2() { return quant::active_isa() != quant::Isa::scalar; }

// One chunk's f32 sum as ggml folds 8 lanes: (v0+v4 + v2+v6) + (v1+v5 + v3+v7).
float hsum8(const float* v) {
  float t[4];
  for (int l = 0; l < 4; ++l) t[l] = v[l + 4] + v[l];
  return (t[0] + t[2]) + (t[1] + t[3]);
}

// ggml's reduction of 4 x 8 accumulators (GGML_F32x8_REDUCE), lane l of register k at acc[8k + l].
float reduce32(const float* acc, size_t step) {
  float r[8];
  for (int l = 0; l < 8; ++l)
    r[l] = (acc[size_t(l) * step] + acc[size_t(16 + l) * step]) + (acc[size_t(8 + l) * step] + acc[size_t(24 + l) * step]);
  float t[4];
  for (int l = 0; l < 4; ++l) t[l] = r[l] + r[l + 4];
  return (t[0] + t[1]) + (t[2] + t[3]);
}

}  // namespace

// ggml_v_expf, one lane (arm-optimized-routines' expf as ggml adapted it).
float expf(float x) {
  const float r = 0x1.8p23f;
  const float z = std::fma(x, 0x1.715476p+0f, r);
  const float n = z - r;
  const float b = std::fma(-n, 0x1.7f7d1cp-20f, std::fma(-n, 0x1.62e4p-1f, x));
  const uint32_t e = std::bit_cast<uint32_t>(z) << 23;
  const float k = std::bit_cast<float>(e + std::bit_cast<uint32_t>(1.0f));
  const float u = b * b;
  const float j = std::fma(std::fma(std::fma(0x1.0e4020p-7f, b, 0x1.573e2ep-5f), u, std::fma(0x1.555e66p-3f, b, 0x1.fffdb6p-2f)),
                           u, 0x1.ffffecp-1f * b);
  const float an = std::fabs(n);
  if (!(an > 126.0f)) return std::fma(j, k, k);
  const uint32_t g = n <= 0.0f ? 0x82000000u : 0u;
  const float s1 = std::bit_cast<float>(g + 0x7f000000u);
  if (an > 192.0f) return s1 * s1;
  const float s2 = std::bit_cast<float>(e - g);
  return std::fma(s2, j, s2) * s1;
}

namespace scalar {

void softmax(float* x, int64_t n) {
  float max = -INFINITY;
  for (int64_t i = 0; i < n; ++i) max = x[i] > max ? x[i] : max;
  double sum = 0;
  for (int64_t i = 0; i < n; i += 8) {
    float v[8];
    for (int64_t l = 0; l < 8; ++l) v[l] = i + l < n ? ggml::expf(x[i + l] - max) : 0.0f;  // masked lanes: exp(-inf) = 0
    for (int64_t l = 0; l < 8 && i + l < n; ++l) x[i + l] = v[l];
    sum += double(hsum8(v));
  }
  const float inv = float(1.0 / sum);
  for (int64_t i = 0; i < n; ++i) x[i] *= inv;
}

void swiglu(float* g, const float* u, int64_t n) {
  for (int64_t i = 0; i < n; ++i) g[i] = g[i] / (1.0f + ggml::expf(0.0f - g[i])) * u[i];
}

float dot_f16(const fp16_t* x, const fp16_t* y, int64_t n) {
  float acc[32] = {};
  const int64_t np = n & ~int64_t(31);
  for (int64_t i = 0; i < np; i += 32)
    for (int s = 0; s < 32; ++s) acc[s] = std::fma(fp16_to_f32(x[i + s]), fp16_to_f32(y[i + s]), acc[s]);
  double sum = reduce32(acc, 1);
  for (int64_t i = np; i < n; ++i) sum += double(fp16_to_f32(x[i]) * fp16_to_f32(y[i]));
  return float(sum);
}

void mix_f16(const uint8_t* rows, size_t stride, int64_t n, const fp16_t* p, int64_t head_dim, float* scratch,
             float* out) {
  // llama.cpp's n_kv is a multiple of 256 with zero probabilities past the last
  // key, so every position falls in a SIMD lane: position j in slot j % 32.
  std::memset(scratch, 0, size_t(32 * head_dim) * sizeof(float));
  for (int64_t j = 0; j < n; ++j) {
    const auto* v = reinterpret_cast<const fp16_t*>(rows + size_t(j) * stride);
    float* acc = scratch + (j & 31) * head_dim;
    const float pj = fp16_to_f32(p[j]);
    for (int64_t d = 0; d < head_dim; ++d) acc[d] = std::fma(fp16_to_f32(v[d]), pj, acc[d]);
  }
  for (int64_t d = 0; d < head_dim; ++d) out[d] = reduce32(scratch + d, size_t(head_dim));
}

}  // namespace scalar

void softmax(float* x, int64_t n) { use_avx2() ? avx2::softmax(x, n) : scalar::softmax(x, n); }
void swiglu(float* g, const float* u, int64_t n) { use_avx2() ? avx2::swiglu(g, u, n) : scalar::swiglu(g, u, n); }
float dot_f16(const fp16_t* x, const fp16_t* y, int64_t n) {
  return use_avx2() ? avx2::dot_f16(x, y, n) : scalar::dot_f16(x, y, n);
}
void mix_f16(const uint8_t* rows, size_t stride, int64_t n, const fp16_t* p, int64_t head_dim, float* scratch,
             float* out) {
  use_avx2() ? avx2::mix_f16(rows, stride, n, p, head_dim, scratch, out)
             : scalar::mix_f16(rows, stride, n, p, head_dim, scratch, out);
}

}  // namespace moelab::model::ggml
