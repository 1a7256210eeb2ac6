// AVX2 + FMA + F16C versions of ggml_numerics.h, written with the intrinsics
// ggml-cpu uses in the same order (vec.h ggml_v_expf / ggml_v_silu,
// vec.cpp ggml_vec_soft_max_f32 / ggml_vec_dot_f16, simd-mappings.h
// GGML_F32x8_REDUCE). Like quant/*_avx2.cpp this file calls no library code.
#include <immintrin.h>

#include "model/ggml_numerics.h"

namespace moelab::model::ggml::avx2 {
namespace {

__m256 v_expf(__m256 x) {
  const __m256 r = _mm256_set1_ps(0x1.8p23f);
  const __m256 z = _mm256_fmadd_ps(x, _mm256_set1_ps(0x1.715476p+0f), r);
  const __m256 n = _mm256_sub_ps(z, r);
  const __m256 b =
      _mm256_fnmadd_ps(n, _mm256_set1_ps(0x1.7f7d1cp-20f), _mm256_fnmadd_ps(n, _mm256_set1_ps(0x1.62e4p-1f), x));
  const __m256i e = _mm256_slli_epi32(_mm256_castps_si256(z), 23);
  const __m256 k = _mm256_castsi256_ps(_mm256_add_epi32(e, _mm256_castps_si256(_mm256_set1_ps(1))));
  const __m256i c =
      _mm256_castps_si256(_mm256_cmp_ps(_mm256_andnot_ps(_mm256_set1_ps(-0.f), n), _mm256_set1_ps(126), _CMP_GT_OQ));
  const __m256 u = _mm256_mul_ps(b, b);
  const __m256 j = _mm256_fmadd_ps(
      _mm256_fmadd_ps(_mm256_fmadd_ps(_mm256_set1_ps(0x1.0e4020p-7f), b, _mm256_set1_ps(0x1.573e2ep-5f)), u,
                      _mm256_fmadd_ps(_mm256_set1_ps(0x1.555e66p-3f), b, _mm256_set1_ps(0x1.fffdb6p-2f))),
      u, _mm256_mul_ps(_mm256_set1_ps(0x1.ffffecp-1f), b));
  if (!_mm256_movemask_ps(_mm256_castsi256_ps(c))) return _mm256_fmadd_ps(j, k, k);
  const __m256i g = _mm256_and_si256(_mm256_castps_si256(_mm256_cmp_ps(n, _mm256_setzero_ps(), _CMP_LE_OQ)),
                                     _mm256_set1_epi32(int(0x82000000u)));
  const __m256 s1 = _mm256_castsi256_ps(_mm256_add_epi32(g, _mm256_set1_epi32(0x7f000000)));
  const __m256 s2 = _mm256_castsi256_ps(_mm256_sub_epi32(e, g));
  const __m256i d =
      _mm256_castps_si256(_mm256_cmp_ps(_mm256_andnot_ps(_mm256_set1_ps(-0.f), n), _mm256_set1_ps(192), _CMP_GT_OQ));
  return _mm256_or_ps(
      _mm256_and_ps(_mm256_castsi256_ps(d), _mm256_mul_ps(s1, s1)),
      _mm256_andnot_ps(_mm256_castsi256_ps(d),
                       _mm256_or_ps(_mm256_and_ps(_mm256_castsi256_ps(c), _mm256_mul_ps(_mm256_fmadd_ps(s2, j, s2), s1)),
                                    _mm256_andnot_ps(_mm256_castsi256_ps(c), _mm256_fmadd_ps(k, j, k)))));
}

__m256 v_silu(__m256 x) {
  const __m256 neg_x = _mm256_sub_ps(_mm256_setzero_ps(), x);
  return _mm256_div_ps(x, _mm256_add_ps(_mm256_set1_ps(1), v_expf(neg_x)));
}

float hsum8(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_extractf128_ps(v, 1), _mm256_castps256_ps128(v));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// GGML_F32x8_REDUCE of 4 accumulators.
float reduce4(__m256 a0, __m256 a1, __m256 a2, __m256 a3) {
  a0 = _mm256_add_ps(a0, a2);
  a1 = _mm256_add_ps(a1, a3);
  a0 = _mm256_add_ps(a0, a1);
  const __m128 t0 = _mm_add_ps(_mm256_castps256_ps128(a0), _mm256_extractf128_ps(a0, 1));
  const __m128 t1 = _mm_hadd_ps(t0, t0);
  return _mm_cvtss_f32(_mm_hadd_ps(t1, t1));
}

__m256 load_f16x8(const fp16_t* p) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }

}  // namespace

void softmax(float* x, int64_t n) {
  float max = -__builtin_inff();
  for (int64_t i = 0; i < n; ++i) max = x[i] > max ? x[i] : max;
  const __m256 vmax = _mm256_set1_ps(max);
  double sum = 0;
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 v = v_expf(_mm256_sub_ps(_mm256_loadu_ps(x + i), vmax));
    _mm256_storeu_ps(x + i, v);
    sum += double(hsum8(v));
  }
  if (i < n) {  // llama.cpp's row goes on with masked (-inf) scores, whose exps are 0
    alignas(32) float tail[8];
    for (int l = 0; l < 8; ++l) tail[l] = i + l < n ? x[i + l] : -__builtin_inff();
    const __m256 v = v_expf(_mm256_sub_ps(_mm256_load_ps(tail), vmax));
    _mm256_store_ps(tail, v);
    for (int l = 0; i + l < n; ++l) x[i + l] = tail[l];
    sum += double(hsum8(v));
  }
  const __m256 inv = _mm256_set1_ps(float(1.0 / sum));
  i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), inv));
  for (; i < n; ++i) x[i] *= float(1.0 / sum);
}

void swiglu(float* g, const float* u, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(g + i, _mm256_mul_ps(v_silu(_mm256_loadu_ps(g + i)), _mm256_loadu_ps(u + i)));
  if (i < n) {
    alignas(32) float tg[8] = {}, tu[8] = {};
    for (int l = 0; i + l < n; ++l) {
      tg[l] = g[i + l];
      tu[l] = u[i + l];
    }
    _mm256_store_ps(tg, _mm256_mul_ps(v_silu(_mm256_load_ps(tg)), _mm256_load_ps(tu)));
    for (int l = 0; i + l < n; ++l) g[i + l] = tg[l];
  }
}

float dot_f16(const fp16_t* x, const fp16_t* y, int64_t n) {
  __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
  const int64_t np = n & ~int64_t(31);
  for (int64_t i = 0; i < np; i += 32)
    for (int j = 0; j < 4; ++j) acc[j] = _mm256_fmadd_ps(load_f16x8(x + i + 8 * j), load_f16x8(y + i + 8 * j), acc[j]);
  double sum = reduce4(acc[0], acc[1], acc[2], acc[3]);
  for (int64_t i = np; i < n; ++i)
    sum += double(_cvtsh_ss(x[i]) * _cvtsh_ss(y[i]));
  return float(sum);
}

void mix_f16(const uint8_t* rows, size_t stride, int64_t n, const fp16_t* p, int64_t head_dim, float* scratch,
             float* out) {
  if (head_dim % 8 != 0) return scalar::mix_f16(rows, stride, n, p, head_dim, scratch, out);
  for (int64_t i = 0; i < 32 * head_dim; i += 8) _mm256_storeu_ps(scratch + i, _mm256_setzero_ps());
  // Position j accumulates into lane slot j % 32, as in ggml_vec_dot_f16 over positions.
  for (int64_t j = 0; j < n; ++j) {
    const auto* v = reinterpret_cast<const fp16_t*>(rows + size_t(j) * stride);
    float* acc = scratch + (j & 31) * head_dim;
    const __m256 pj = _mm256_set1_ps(_cvtsh_ss(p[j]));
    for (int64_t d = 0; d < head_dim; d += 8)
      _mm256_storeu_ps(acc + d, _mm256_fmadd_ps(load_f16x8(v + d), pj, _mm256_loadu_ps(acc + d)));
  }
  // GGML_F32x8_REDUCE per channel, 8 channels at a time: slot 8k + l is lane l of register k.
  for (int64_t d = 0; d < head_dim; d += 8) {
    auto slot = [&](int s) { return _mm256_loadu_ps(scratch + s * head_dim + d); };
    __m256 r[8];
    for (int l = 0; l < 8; ++l)
      r[l] = _mm256_add_ps(_mm256_add_ps(slot(l), slot(16 + l)), _mm256_add_ps(slot(8 + l), slot(24 + l)));
    __m256 t[4];
    for (int l = 0; l < 4; ++l) t[l] = _mm256_add_ps(r[l], r[l + 4]);
    _mm256_storeu_ps(out + d, _mm256_add_ps(_mm256_add_ps(t[0], t[1]), _mm256_add_ps(t[2], t[3])));
  }
}

}  // namespace moelab::model::ggml::avx2
