// Scalar reference kernels of the GGUF k-quants (q2_k .. q6_k) and of their
// activation codec q8_k.
//
// Encoders follow ggml's quantizers step for step, in the same float
// operation order, so that moelab writes the bytes llama.cpp writes:
//   encode_*_ref  ggml's `quantize_row_qN_K_ref` (what llama-quantize uses
//                 without an imatrix)
//   encode_*      with `importance`, ggml's imatrix-aware `quantize_qN_K`
//                 path (the weighted scale search); without it, the _ref one
// Decoders reproduce gguf-py's `dequantize` bit for bit: each value is
// (d * scale) * q - (dmin * min), every product rounded to f32 (no FMA; this
// file is compiled for baseline x86-64, which has none).
// Dots sum integer products per sub-block, scale them by the integer
// sub-block scales, and only then go to float, as ggml's scalar vec_dot does.
//
// Super-block layouts are in blocks.h; the packing of each is described next
// to its encoder.
#include <array>
#include <bit>
#include <cmath>
#include <cstring>
#include <string>

#include "core/error.h"
#include "core/fp16.h"
#include "quant/blocks.h"
#include "quant/kernels_ref.h"

namespace moelab::quant::ref {
namespace {

// Sub-blocks whose largest |x| is below this are treated as all zero.
constexpr float kGroupMaxEps = 1e-15f;

void check_length(const char* fn, int64_t n) {
  if (n < 0 || n % kQK_K != 0)
    throw Error(std::string(fn) + ": row length " + std::to_string(n) + " is not a multiple of the k-quant block size " +
                std::to_string(kQK_K));
}

// ggml's rounding: adding 1.5 * 2^23 leaves round(v) (half to even) in the
// low mantissa bits, for |v| < 2^22. Kept as a bit trick (not nearbyint)
// so out-of-range inputs wrap exactly as ggml's do.
inline int nearest_int(float v) {
  const float shifted = v + 12582912.0f;
  return int(std::bit_cast<uint32_t>(shifted) & 0x007fffffu) - 0x00400000;
}

inline float half(fp16_t h) { return fp16_to_f32(h); }

// ---- Packed 6-bit scales and mins of q4_k / q5_k (12 bytes, 8 sub-blocks):
//   bytes 0..3   low 6 bits: scale j (j < 4);   top 2 bits: scale j+4 bits 4..5
//   bytes 4..7   low 6 bits: min j   (j < 4);   top 2 bits: min j+4 bits 4..5
//   bytes 8..11  low nibble: scale j+4 bits 0..3; high nibble: min j+4 bits 0..3
inline void unpack_scale_min(int j, const uint8_t* q, uint8_t& sc, uint8_t& m) {
  if (j < 4) {
    sc = q[j] & 63;
    m = q[j + 4] & 63;
  } else {
    sc = uint8_t((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
    m = uint8_t((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
  }
}

// `q` must be zeroed first; sc and m are < 64.
inline void pack_scale_min(int j, uint8_t sc, uint8_t m, uint8_t* q) {
  if (j < 4) {
    q[j] |= sc;
    q[j + 4] |= m;
  } else {
    q[j + 4] = uint8_t((sc & 0xF) | ((m & 0xF) << 4));
    q[j - 4] |= uint8_t((sc >> 4) << 6);
    q[j] |= uint8_t((m >> 4) << 6);
  }
}

// ---- Packed 6-bit signed scales of q3_k (12 bytes, 16 sub-blocks of 16):
//   bytes 0..7   low nibble: scale j bits 0..3; high nibble: scale j+8 bits 0..3
//   bytes 8..11  2-bit fields: byte 8 + j%4, bit pair j/4 holds scale j bits 4..5
// Each stored value is scale + 32.
inline int q3_scale(int j, const uint8_t* s) {
  const int low = j < 8 ? (s[j] & 0xF) : (s[j - 8] >> 4);
  const int high = (s[8 + j % 4] >> (2 * (j / 4))) & 3;
  return int(int8_t((low | (high << 4)) - 32));
}

// Pack sub-block codes L (each < 4) of one super-block the way q2_k and q3_k
// store them: byte 32 h + l holds values 128 h + l + 32 k in bits 2k..2k+1.
inline void pack_2bit(const uint8_t* L, uint8_t* qs) {
  for (int h = 0; h < kQK_K / 128; ++h)
    for (int l = 0; l < 32; ++l) {
      const uint8_t* v = L + 128 * h + l;
      qs[32 * h + l] = uint8_t(v[0] | (v[32] << 2) | (v[64] << 4) | (v[96] << 6));
    }
}

// ---- Scale searches (ggml-quants.c). Float expressions keep ggml's
// association order: (w * x) * l, (w * l) * l, scale * L + min - x.

// Symmetric codes in [-nmax, nmax): finds the scale minimising
// sum w (x - scale q)^2 by trying 19 inverse scales around nmax / max.
// Weights: qw, or x^2 when qw is null. L receives q + nmax.
float make_qx_quants(int n, int nmax, const float* x, int8_t* L, const float* qw) {
  float max = 0, amax = 0;
  for (int i = 0; i < n; ++i) {
    const float ax = std::fabs(x[i]);
    if (ax > amax) {
      amax = ax;
      max = x[i];
    }
  }
  if (amax < kGroupMaxEps) {
    for (int i = 0; i < n; ++i) L[i] = 0;
    return 0.0f;
  }
  auto weight = [&](int i) { return qw ? qw[i] : x[i] * x[i]; };
  auto clamp_code = [&](int l) { return l < -nmax ? -nmax : (l > nmax - 1 ? nmax - 1 : l); };
  float iscale = float(-nmax) / max;
  float sumlx = 0, suml2 = 0;
  for (int i = 0; i < n; ++i) {
    const int l = clamp_code(nearest_int(iscale * x[i]));
    L[i] = int8_t(l + nmax);
    const float w = weight(i);
    sumlx += w * x[i] * float(l);
    suml2 += w * float(l) * float(l);
  }
  float scale = suml2 != 0.0f ? sumlx / suml2 : 0.0f;
  float best = scale * sumlx;
  for (int is = -9; is <= 9; ++is) {
    if (is == 0) continue;
    iscale = -(float(nmax) + 0.1f * float(is)) / max;
    sumlx = suml2 = 0;
    for (int i = 0; i < n; ++i) {
      const int l = clamp_code(nearest_int(iscale * x[i]));
      const float w = weight(i);
      sumlx += w * x[i] * float(l);
      suml2 += w * float(l) * float(l);
    }
    if (suml2 > 0 && sumlx * sumlx > best * suml2) {
      for (int i = 0; i < n; ++i) L[i] = int8_t(nmax + clamp_code(nearest_int(iscale * x[i])));
      scale = sumlx / suml2;
      best = scale * sumlx;
    }
  }
  return scale;
}

// q3_k's reference search: symmetric codes in [-nmax, nmax), weights x^2,
// then up to 5 passes of coordinate descent on single codes. L receives q + nmax.
float make_q3_quants(int n, int nmax, const float* x, int8_t* L) {
  float max = 0, amax = 0;
  for (int i = 0; i < n; ++i) {
    const float ax = std::fabs(x[i]);
    if (ax > amax) {
      amax = ax;
      max = x[i];
    }
  }
  if (amax < kGroupMaxEps) {
    for (int i = 0; i < n; ++i) L[i] = 0;
    return 0.0f;
  }
  auto clamp_code = [&](int l) { return l < -nmax ? -nmax : (l > nmax - 1 ? nmax - 1 : l); };
  const float iscale = float(-nmax) / max;
  float sumlx = 0, suml2 = 0;
  for (int i = 0; i < n; ++i) {
    const int l = clamp_code(nearest_int(iscale * x[i]));
    L[i] = int8_t(l);
    const float w = x[i] * x[i];
    sumlx += w * x[i] * float(l);
    suml2 += w * float(l) * float(l);
  }
  for (int itry = 0; itry < 5; ++itry) {
    int n_changed = 0;
    for (int i = 0; i < n; ++i) {
      const float w = x[i] * x[i];
      float slx = sumlx - w * x[i] * float(L[i]);
      if (slx > 0) {
        float sl2 = suml2 - w * float(L[i]) * float(L[i]);
        const int new_l = clamp_code(nearest_int(x[i] * sl2 / slx));
        if (new_l != L[i]) {
          slx += w * x[i] * float(new_l);
          sl2 += w * float(new_l) * float(new_l);
          if (sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2) {
            L[i] = int8_t(new_l);
            sumlx = slx;
            suml2 = sl2;
            ++n_changed;
          }
        }
      }
    }
    if (!n_changed) break;
  }
  for (int i = 0; i < n; ++i) L[i] = int8_t(L[i] + nmax);
  return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
}

// Asymmetric codes in [0, nmax]: x ~ scale * q - the_min. Tries nstep + 1
// inverse scales (rmin + rdelta * is + nmax) / (max - min), fits scale and
// min by weighted least squares for each, keeps the lowest weighted error
// (|diff| when use_mad, else diff^2). `v3` selects ggml's make_qkx3_quants
// (the imatrix path: codes from a clamped v, `max <= min` test) over
// make_qkx2_quants (the _ref path).
template <bool kV3>
float make_qkx_quants(int n, int nmax, const float* x, const float* weights, uint8_t* L, float* the_min,
                      uint8_t* Laux, float rmin, float rdelta, int nstep, bool use_mad) {
  float min = x[0], max = x[0];
  float sum_w = weights[0];
  float sum_x = sum_w * x[0];
  for (int i = 1; i < n; ++i) {
    if (x[i] < min) min = x[i];
    if (x[i] > max) max = x[i];
    const float w = weights[i];
    sum_w += w;
    sum_x += w * x[i];
  }
  if (min > 0) min = 0;
  if (kV3 ? max <= min : max == min) {
    for (int i = 0; i < n; ++i) L[i] = 0;
    *the_min = -min;
    return 0.0f;
  }
  auto err = [&](float diff) { return use_mad ? std::fabs(diff) : diff * diff; };
  float iscale = float(nmax) / (max - min);
  float scale = 1 / iscale;
  float best_error = 0;
  for (int i = 0; i < n; ++i) {
    const int l = nearest_int(iscale * (x[i] - min));
    L[i] = uint8_t(l < 0 ? 0 : (l > nmax ? nmax : l));
    best_error += weights[i] * err(scale * float(L[i]) + min - x[i]);
  }
  if (nstep < 1) {
    *the_min = -min;
    return scale;
  }
  for (int is = 0; is <= nstep; ++is) {
    iscale = (rmin + rdelta * float(is) + float(nmax)) / (max - min);
    float sum_l = 0, sum_l2 = 0, sum_xl = 0;
    for (int i = 0; i < n; ++i) {
      int l;
      if constexpr (kV3) {
        // min can sit at or near max here, so v may be huge or not a number.
        const float v = iscale * (x[i] - min);
        l = v > 0 ? nearest_int(v < float(nmax) ? v : float(nmax)) : 0;
      } else {
        l = nearest_int(iscale * (x[i] - min));
        l = l < 0 ? 0 : (l > nmax ? nmax : l);
      }
      Laux[i] = uint8_t(l);
      const float w = weights[i];
      sum_l += w * float(l);
      sum_l2 += w * float(l) * float(l);
      sum_xl += w * float(l) * x[i];
    }
    const float D = sum_w * sum_l2 - sum_l * sum_l;
    if (D > 0) {
      float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
      float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
      if (this_min > 0) {
        this_min = 0;
        this_scale = sum_xl / sum_l2;
      }
      float cur_error = 0;
      for (int i = 0; i < n; ++i) cur_error += weights[i] * err(this_scale * float(Laux[i]) + this_min - x[i]);
      if (cur_error < best_error) {
        for (int i = 0; i < n; ++i) L[i] = Laux[i];
        best_error = cur_error;
        scale = this_scale;
        min = this_min;
      }
    }
  }
  *the_min = -min;
  return scale;
}

// Quantizes the (non-negative) sub-block scales or mins of one super-block to
// integers in [0, nmax] with one shared f32 step, minimising the
// quant_weights-weighted error; returns the step.
float make_qp_quants(int n, int nmax, const float* x, uint8_t* L, const float* quant_weights) {
  float max = 0;
  for (int i = 0; i < n; ++i) max = max > x[i] ? max : x[i];
  if (max < kGroupMaxEps) {
    for (int i = 0; i < n; ++i) L[i] = 0;
    return 0.0f;
  }
  float iscale = float(nmax) / max;
  for (int i = 0; i < n; ++i) L[i] = uint8_t(nearest_int(iscale * x[i]));
  const float scale = 1 / iscale;
  float best_mse = 0;
  for (int i = 0; i < n; ++i) {
    const float diff = x[i] - scale * float(L[i]);
    best_mse += quant_weights[i] * diff * diff;
  }
  for (int is = -4; is <= 4; ++is) {
    if (is == 0) continue;
    const float iscale_is = (0.1f * float(is) + float(nmax)) / max;
    const float scale_is = 1 / iscale_is;
    float mse = 0;
    for (int i = 0; i < n; ++i) {
      int l = nearest_int(iscale_is * x[i]);
      l = l < nmax ? l : nmax;
      const float diff = x[i] - scale_is * float(l);
      mse += quant_weights[i] * diff * diff;
    }
    if (mse < best_mse) {
      best_mse = mse;
      iscale = iscale_is;
    }
  }
  float sumlx = 0, suml2 = 0;
  for (int i = 0; i < n; ++i) {
    int l = nearest_int(iscale * x[i]);
    l = l < nmax ? l : nmax;
    L[i] = uint8_t(l);
    const float w = quant_weights[i];
    sumlx += w * x[i] * float(l);
    suml2 += w * float(l) * float(l);
  }
  for (int itry = 0; itry < 5; ++itry) {
    int n_changed = 0;
    for (int i = 0; i < n; ++i) {
      const float w = quant_weights[i];
      float slx = sumlx - w * x[i] * float(L[i]);
      float sl2 = suml2 - w * float(L[i]) * float(L[i]);
      if (slx > 0 && sl2 > 0) {
        int new_l = nearest_int(x[i] * sl2 / slx);
        new_l = new_l < nmax ? new_l : nmax;
        if (new_l != L[i]) {
          slx += w * x[i] * float(new_l);
          sl2 += w * float(new_l) * float(new_l);
          if (slx * slx * suml2 > sumlx * sumlx * sl2) {
            L[i] = uint8_t(new_l);
            sumlx = slx;
            suml2 = sl2;
            ++n_changed;
          }
        }
      }
    }
    if (!n_changed) break;
  }
  return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
}

// Largest element of a non-negative array (0 when all are <= 0).
template <size_t kN>
float max_of(const std::array<float, kN>& v) {
  float m = 0;
  for (float e : v)
    if (e > m) m = e;
  return m;
}

// ======================= q2_k: x = d * sc * q - dmin * m, q in [0, 3]
// scales[j]: low nibble sc, high nibble m of sub-block j (16 values).

// Final codes of q2_k given the packed scales (ggml re-derives them from the
// rounded scales so that codes and scales agree).
void q2_k_requantize(const float* x, const BlockQ2_K& b, uint8_t* L) {
  const float d_all = half(b.d), m_all = half(b.dmin);
  for (int j = 0; j < kQK_K / 16; ++j) {
    const float d = d_all * float(b.scales[j] & 0xF);
    if (d == 0.0f) continue;
    const float dm = m_all * float(b.scales[j] >> 4);
    for (int i = 0; i < 16; ++i) {
      const int l = nearest_int((x[16 * j + i] + dm) / d);
      L[16 * j + i] = uint8_t(l < 0 ? 0 : (l > 3 ? 3 : l));
    }
  }
}

void encode_q2_k_block_ref(const float* x, BlockQ2_K& b) {
  std::array<uint8_t, kQK_K> L{};
  std::array<uint8_t, 16> Laux{};
  std::array<float, 16> weights{};
  std::array<float, kQK_K / 16> scales{}, mins{};
  constexpr float kQ4Scale = 15.0f;
  for (int j = 0; j < kQK_K / 16; ++j) {
    for (int l = 0; l < 16; ++l) weights[size_t(l)] = std::fabs(x[16 * j + l]);
    scales[size_t(j)] = make_qkx_quants<false>(16, 3, x + 16 * j, weights.data(), L.data() + 16 * j,
                                               &mins[size_t(j)], Laux.data(), -0.5f, 0.1f, 15, true);
  }
  const float max_scale = max_of(scales), max_min = max_of(mins);
  if (max_scale > 0) {
    const float iscale = kQ4Scale / max_scale;
    for (int j = 0; j < kQK_K / 16; ++j) b.scales[j] = uint8_t(nearest_int(iscale * scales[size_t(j)]));
    b.d = f32_to_fp16(max_scale / kQ4Scale);
  } else {
    for (int j = 0; j < kQK_K / 16; ++j) b.scales[j] = 0;
    b.d = f32_to_fp16(0.0f);
  }
  if (max_min > 0) {
    const float iscale = kQ4Scale / max_min;
    for (int j = 0; j < kQK_K / 16; ++j) b.scales[j] = uint8_t(b.scales[j] | (nearest_int(iscale * mins[size_t(j)]) << 4));
    b.dmin = f32_to_fp16(max_min / kQ4Scale);
  } else {
    b.dmin = f32_to_fp16(0.0f);
  }
  q2_k_requantize(x, b, L.data());
  pack_2bit(L.data(), b.qs);
}

void encode_q2_k_block_imatrix(const float* x, const float* qw, BlockQ2_K& b) {
  std::array<uint8_t, kQK_K> L{};
  std::array<uint8_t, 16> Laux{};
  std::array<float, 16> weight{};
  std::array<float, kQK_K / 16> scales{}, mins{}, sw{};
  std::array<uint8_t, kQK_K / 16> Ls{}, Lm{};
  float sumx2 = 0;
  for (int j = 0; j < kQK_K; ++j) sumx2 += x[j] * x[j];
  const float sigma2 = sumx2 / kQK_K;
  for (int j = 0; j < kQK_K / 16; ++j) {
    for (int l = 0; l < 16; ++l) weight[size_t(l)] = qw[16 * j + l] * std::sqrt(sigma2 + x[16 * j + l] * x[16 * j + l]);
    for (int l = 0; l < 16; ++l) sw[size_t(j)] += weight[size_t(l)];
    scales[size_t(j)] = make_qkx_quants<true>(16, 3, x + 16 * j, weight.data(), L.data() + 16 * j, &mins[size_t(j)],
                                              Laux.data(), -0.9f, 0.05f, 36, false);
  }
  const float dm = make_qp_quants(kQK_K / 16, 15, scales.data(), Ls.data(), sw.data());
  const float mm = make_qp_quants(kQK_K / 16, 15, mins.data(), Lm.data(), sw.data());
  b.d = f32_to_fp16(dm);
  b.dmin = f32_to_fp16(mm);
  for (int j = 0; j < kQK_K / 16; ++j) b.scales[j] = uint8_t(Ls[size_t(j)] | (Lm[size_t(j)] << 4));
  q2_k_requantize(x, b, L.data());
  pack_2bit(L.data(), b.qs);
}

// ======================= q3_k: x = d * sc * q, sc 6-bit signed, q in [-4, 3]
// Low 2 bits of q + 4 packed like q2_k; its bit 2 in hmask: bit j / 32 of
// hmask[j % 32] for value j.

void q3_k_finish(const float* x, BlockQ3_K& b, int8_t* L) {
  const float d_all = half(b.d);
  for (int j = 0; j < kQK_K / 16; ++j) {
    const float d = d_all * float(q3_scale(j, b.scales));
    if (d == 0.0f) continue;
    for (int i = 0; i < 16; ++i) {
      const int l = nearest_int(x[16 * j + i] / d);
      L[16 * j + i] = int8_t((l < -4 ? -4 : (l > 3 ? 3 : l)) + 4);
    }
  }
  std::memset(b.hmask, 0, sizeof b.hmask);
  std::array<uint8_t, kQK_K> low{};
  for (int j = 0; j < kQK_K; ++j) {
    uint8_t l = uint8_t(L[j]);
    if (l > 3) {
      b.hmask[j % 32] = uint8_t(b.hmask[j % 32] | (1 << (j / 32)));
      l = uint8_t(l - 4);
    }
    low[size_t(j)] = l;
  }
  pack_2bit(low.data(), b.qs);
}

void q3_k_pack_scale(int j, int l, uint8_t* s) {  // l = stored value in [0, 63]
  if (j < 8)
    s[j] = uint8_t(l & 0xF);
  else
    s[j - 8] = uint8_t(s[j - 8] | ((l & 0xF) << 4));
  s[j % 4 + 8] = uint8_t(s[j % 4 + 8] | ((l >> 4) << (2 * (j / 4))));
}

void encode_q3_k_block_ref(const float* x, BlockQ3_K& b) {
  std::array<int8_t, kQK_K> L{};
  std::array<float, kQK_K / 16> scales{};
  float max_scale = 0, amax = 0;
  for (int j = 0; j < kQK_K / 16; ++j) {
    scales[size_t(j)] = make_q3_quants(16, 4, x + 16 * j, L.data() + 16 * j);
    const float a = std::fabs(scales[size_t(j)]);
    if (a > amax) {
      amax = a;
      max_scale = scales[size_t(j)];
    }
  }
  std::memset(b.scales, 0, sizeof b.scales);
  if (max_scale != 0.0f) {
    const float iscale = -32.0f / max_scale;
    for (int j = 0; j < kQK_K / 16; ++j) {
      int l = int8_t(nearest_int(iscale * scales[size_t(j)]));  // ggml narrows to int8 before clamping
      l = (l < -32 ? -32 : (l > 31 ? 31 : l)) + 32;
      q3_k_pack_scale(j, l, b.scales);
    }
    b.d = f32_to_fp16(1 / iscale);
  } else {
    b.d = f32_to_fp16(0.0f);
  }
  q3_k_finish(x, b, L.data());
}

void encode_q3_k_block_imatrix(const float* x, const float* qw, BlockQ3_K& b) {
  std::array<int8_t, kQK_K> L{};
  std::array<float, kQK_K / 16> scales{}, sw{};
  std::array<float, 16> weight{};
  std::array<int8_t, kQK_K / 16> Ls{};
  float sumx2 = 0;
  for (int j = 0; j < kQK_K; ++j) sumx2 += x[j] * x[j];
  const float sigma2 = 2 * sumx2 / kQK_K;
  for (int j = 0; j < kQK_K / 16; ++j) {
    for (int l = 0; l < 16; ++l) weight[size_t(l)] = qw[16 * j + l] * std::sqrt(sigma2 + x[16 * j + l] * x[16 * j + l]);
    float sumw = 0;
    for (int l = 0; l < 16; ++l) sumw += weight[size_t(l)];
    sw[size_t(j)] = sumw;
    scales[size_t(j)] = make_qx_quants(16, 4, x + 16 * j, L.data() + 16 * j, weight.data());
  }
  std::memset(b.scales, 0, sizeof b.scales);
  const float d_block = make_qx_quants(kQK_K / 16, 32, scales.data(), Ls.data(), sw.data());
  for (int j = 0; j < kQK_K / 16; ++j) q3_k_pack_scale(j, Ls[size_t(j)], b.scales);
  b.d = f32_to_fp16(d_block);
  q3_k_finish(x, b, L.data());
}

// ======================= q4_k / q5_k: x = d * sc * q - dmin * m
// 8 sub-blocks of 32, 6-bit sc and m (pack_scale_min). q4_k: byte 32 h + l
// holds value 64 h + l (low nibble) and 64 h + 32 + l (high nibble). q5_k adds
// the 5th bit of value 64 h + l in bit 2h of qh[l], of 64 h + 32 + l in bit 2h + 1.

// Shared tail of q4_k / q5_k encoding: codes from the rounded scales.
void kx_requantize(const float* x, fp16_t d_h, fp16_t dmin_h, const uint8_t* packed, int nmax, uint8_t* L) {
  for (int j = 0; j < kQK_K / 32; ++j) {
    uint8_t sc, m;
    unpack_scale_min(j, packed, sc, m);
    const float d = half(d_h) * float(sc);
    if (d == 0.0f) continue;
    const float dm = half(dmin_h) * float(m);
    for (int i = 0; i < 32; ++i) {
      const int l = nearest_int((x[32 * j + i] + dm) / d);
      L[32 * j + i] = uint8_t(l < 0 ? 0 : (l > nmax ? nmax : l));
    }
  }
}

// Sub-block search + scale packing for the _ref path; nmax 15 (q4_k) or 31 (q5_k).
template <int kNmax>
void kx_scales_ref(const float* x, uint8_t* L, uint8_t* packed, fp16_t& d, fp16_t& dmin) {
  std::array<uint8_t, 32> Laux{};
  std::array<float, 32> weights{};
  std::array<float, kQK_K / 32> scales{}, mins{};
  constexpr float kRmin = kNmax == 15 ? -1.0f : -0.5f;
  constexpr int kSteps = kNmax == 15 ? 20 : 15;
  for (int j = 0; j < kQK_K / 32; ++j) {
    float sum_x2 = 0;
    for (int l = 0; l < 32; ++l) sum_x2 += x[32 * j + l] * x[32 * j + l];
    const float av_x = std::sqrt(sum_x2 / 32);
    for (int l = 0; l < 32; ++l) weights[size_t(l)] = av_x + std::fabs(x[32 * j + l]);
    scales[size_t(j)] = make_qkx_quants<false>(32, kNmax, x + 32 * j, weights.data(), L + 32 * j, &mins[size_t(j)],
                                               Laux.data(), kRmin, 0.1f, kSteps, false);
  }
  const float max_scale = max_of(scales), max_min = max_of(mins);
  const float inv_scale = max_scale > 0 ? 63.0f / max_scale : 0.0f;
  const float inv_min = max_min > 0 ? 63.0f / max_min : 0.0f;
  std::memset(packed, 0, kKScaleBytes);
  for (int j = 0; j < kQK_K / 32; ++j) {
    uint8_t ls = uint8_t(nearest_int(inv_scale * scales[size_t(j)]));
    uint8_t lm = uint8_t(nearest_int(inv_min * mins[size_t(j)]));
    pack_scale_min(j, ls < 63 ? ls : 63, lm < 63 ? lm : 63, packed);
  }
  d = f32_to_fp16(max_scale / 63.0f);
  dmin = f32_to_fp16(max_min / 63.0f);
}

template <int kNmax>
void kx_scales_imatrix(const float* x, const float* qw, uint8_t* L, uint8_t* packed, fp16_t& d, fp16_t& dmin) {
  std::array<uint8_t, 32> Laux{};
  std::array<float, 32> weights{};
  std::array<float, kQK_K / 32> scales{}, mins{}, sw{};
  std::array<uint8_t, kQK_K / 32> Ls{}, Lm{};
  float sum_x2 = 0;
  for (int l = 0; l < kQK_K; ++l) sum_x2 += x[l] * x[l];
  const float sigma2 = 2 * sum_x2 / kQK_K;
  for (int j = 0; j < kQK_K / 32; ++j) {
    for (int l = 0; l < 32; ++l) weights[size_t(l)] = qw[32 * j + l] * std::sqrt(sigma2 + x[32 * j + l] * x[32 * j + l]);
    float sumw = 0;
    for (int l = 0; l < 32; ++l) sumw += weights[size_t(l)];
    sw[size_t(j)] = sumw;
    scales[size_t(j)] = make_qkx_quants<true>(32, kNmax, x + 32 * j, weights.data(), L + 32 * j, &mins[size_t(j)],
                                              Laux.data(), -0.9f, 0.05f, 36, false);
  }
  const float d_block = make_qp_quants(kQK_K / 32, 63, scales.data(), Ls.data(), sw.data());
  const float m_block = make_qp_quants(kQK_K / 32, 63, mins.data(), Lm.data(), sw.data());
  std::memset(packed, 0, kKScaleBytes);
  for (int j = 0; j < kQK_K / 32; ++j) {
    const uint8_t ls = Ls[size_t(j)], lm = Lm[size_t(j)];
    pack_scale_min(j, ls < 63 ? ls : 63, lm < 63 ? lm : 63, packed);
  }
  d = f32_to_fp16(d_block);
  dmin = f32_to_fp16(m_block);
}

void q4_k_pack(const uint8_t* L, BlockQ4_K& b) {
  for (int h = 0; h < kQK_K / 64; ++h)
    for (int l = 0; l < 32; ++l) b.qs[32 * h + l] = uint8_t(L[64 * h + l] | (L[64 * h + 32 + l] << 4));
}

void q5_k_pack(const uint8_t* L, BlockQ5_K& b) {
  std::memset(b.qh, 0, sizeof b.qh);
  for (int h = 0; h < kQK_K / 64; ++h)
    for (int l = 0; l < 32; ++l) {
      const int lo = L[64 * h + l], hi = L[64 * h + 32 + l];
      b.qh[l] = uint8_t(b.qh[l] | ((lo >> 4) << (2 * h)) | ((hi >> 4) << (2 * h + 1)));
      b.qs[32 * h + l] = uint8_t((lo & 0xF) | ((hi & 0xF) << 4));
    }
}

// ======================= q6_k: x = d * sc * q, sc int8, q in [-32, 31]
// q + 32 is 6 bits: low nibbles in ql, top 2 bits in qh. Per 128-value half h,
// value 128 h + 32 k + l (k = 0..3, l < 32) has its low nibble in
// ql[64 h + l + 32 (k & 1)] (low nibble for k < 2, high for k >= 2) and its
// top bits in bits 2k..2k+1 of qh[32 h + l].

void encode_q6_k_block(const float* x, const float* qw, BlockQ6_K& b) {
  std::array<int8_t, kQK_K> L{};
  std::array<float, kQK_K / 16> scales{};
  float max_scale = 0, max_abs_scale = 0;
  for (int ib = 0; ib < kQK_K / 16; ++ib) {
    const float scale = make_qx_quants(16, 32, x + 16 * ib, L.data() + 16 * ib, qw ? qw + 16 * ib : nullptr);
    scales[size_t(ib)] = scale;
    const float a = std::fabs(scale);
    if (a > max_abs_scale) {
      max_abs_scale = a;
      max_scale = scale;
    }
  }
  if (max_abs_scale < kGroupMaxEps) {
    std::memset(&b, 0, sizeof b);
    b.d = f32_to_fp16(0.0f);
    return;
  }
  const float iscale = -128.0f / max_scale;
  b.d = f32_to_fp16(1 / iscale);
  for (int ib = 0; ib < kQK_K / 16; ++ib) {
    const int l = nearest_int(iscale * scales[size_t(ib)]);
    b.scales[ib] = int8_t(l < 127 ? l : 127);
  }
  for (int j = 0; j < kQK_K / 16; ++j) {
    const float d = half(b.d) * float(b.scales[j]);
    if (d == 0.0f) continue;
    for (int i = 0; i < 16; ++i) {
      const int l = nearest_int(x[16 * j + i] / d);
      L[16 * j + i] = int8_t((l < -32 ? -32 : (l > 31 ? 31 : l)) + 32);
    }
  }
  for (int h = 0; h < kQK_K / 128; ++h)
    for (int l = 0; l < 32; ++l) {
      const int8_t* v = L.data() + 128 * h + l;
      b.ql[64 * h + l] = uint8_t((v[0] & 0xF) | ((v[64] & 0xF) << 4));
      b.ql[64 * h + 32 + l] = uint8_t((v[32] & 0xF) | ((v[96] & 0xF) << 4));
      b.qh[32 * h + l] = uint8_t((v[0] >> 4) | ((v[32] >> 4) << 2) | ((v[64] >> 4) << 4) | ((v[96] >> 4) << 6));
    }
}

// Row drivers: one block function over n / 256 super-blocks.
template <typename Block, typename Fn>
void for_blocks(const char* fn, const float* x, void* dst, int64_t n, Fn&& encode_block) {
  check_length(fn, n);
  auto* out = static_cast<Block*>(dst);
  for (int64_t i = 0; i < n / kQK_K; ++i) encode_block(x + i * kQK_K, i, out[i]);
}

// 8 scales and 8 mins of a q4_k / q5_k block.
inline void unpack_all_scale_min(const uint8_t* packed, uint8_t* sc, uint8_t* m) {
  for (int j = 0; j < 8; ++j) unpack_scale_min(j, packed, sc[j], m[j]);
}

}  // namespace

// ----------------------------------------------------------------- q2_k
void encode_q2_k_ref(const float* x, void* dst, int64_t n, const float*) {
  for_blocks<BlockQ2_K>("encode_q2_k_ref", x, dst, n, [](const float* xb, int64_t, BlockQ2_K& b) { encode_q2_k_block_ref(xb, b); });
}
void encode_q2_k(const float* x, void* dst, int64_t n, const float* importance) {
  if (!importance) return encode_q2_k_ref(x, dst, n, nullptr);
  for_blocks<BlockQ2_K>("encode_q2_k", x, dst, n, [&](const float* xb, int64_t i, BlockQ2_K& b) {
    encode_q2_k_block_imatrix(xb, importance + i * kQK_K, b);
  });
}
void decode_q2_k(const void* src, float* y, int64_t n) {
  check_length("decode_q2_k", n);
  const auto* blocks = static_cast<const BlockQ2_K*>(src);
  for (int64_t i = 0; i < n / kQK_K; ++i, y += kQK_K) {
    const BlockQ2_K& b = blocks[i];
    const float d = half(b.d), dmin = half(b.dmin);
    for (int g = 0; g < kQK_K / 16; ++g) {
      const float dl = d * float(b.scales[g] & 0xF), ml = dmin * float(b.scales[g] >> 4);
      const int h = g / 8, k = (g % 8) / 2, half_off = 16 * (g % 2);  // value 128h + 32k + half_off + l
      for (int l = 0; l < 16; ++l) {
        const int q = (b.qs[32 * h + half_off + l] >> (2 * k)) & 3;
        y[16 * g + l] = dl * float(q) - ml;
      }
    }
  }
}
float dot_q2_k_q8_k(const void* w, const void* act, int64_t n) {
  check_length("dot_q2_k_q8_k", n);
  const auto* xb = static_cast<const BlockQ2_K*>(w);
  const auto* yb = static_cast<const BlockQ8_K*>(act);
  float sum = 0;
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    const BlockQ2_K& b = xb[i];
    const BlockQ8_K& a = yb[i];
    int32_t isum = 0, msum = 0;
    for (int g = 0; g < kQK_K / 16; ++g) {
      const int h = g / 8, k = (g % 8) / 2, off = 16 * (g % 2);
      int32_t s = 0;
      for (int l = 0; l < 16; ++l) s += ((b.qs[32 * h + off + l] >> (2 * k)) & 3) * a.qs[16 * g + l];
      isum += (b.scales[g] & 0xF) * s;
      msum += (b.scales[g] >> 4) * a.bsums[g];
    }
    sum += a.d * half(b.d) * float(isum) - a.d * half(b.dmin) * float(msum);
  }
  return sum;
}

// ----------------------------------------------------------------- q3_k
void encode_q3_k_ref(const float* x, void* dst, int64_t n, const float*) {
  for_blocks<BlockQ3_K>("encode_q3_k_ref", x, dst, n, [](const float* xb, int64_t, BlockQ3_K& b) { encode_q3_k_block_ref(xb, b); });
}
void encode_q3_k(const float* x, void* dst, int64_t n, const float* importance) {
  if (!importance) return encode_q3_k_ref(x, dst, n, nullptr);
  for_blocks<BlockQ3_K>("encode_q3_k", x, dst, n, [&](const float* xb, int64_t i, BlockQ3_K& b) {
    encode_q3_k_block_imatrix(xb, importance + i * kQK_K, b);
  });
}
void decode_q3_k(const void* src, float* y, int64_t n) {
  check_length("decode_q3_k", n);
  const auto* blocks = static_cast<const BlockQ3_K*>(src);
  for (int64_t i = 0; i < n / kQK_K; ++i, y += kQK_K) {
    const BlockQ3_K& b = blocks[i];
    const float d = half(b.d);
    for (int g = 0; g < kQK_K / 16; ++g) {
      const float dl = d * float(q3_scale(g, b.scales));
      for (int l = 0; l < 16; ++l) {
        const int j = 16 * g + l;  // value index: 128h + 32k + m
        const int h = j / 128, k = (j % 128) / 32, m = j % 32;
        const int low = (b.qs[32 * h + m] >> (2 * k)) & 3;
        const int high = (b.hmask[m] >> (j / 32)) & 1;
        y[j] = dl * float(low - (high ? 0 : 4));
      }
    }
  }
}
float dot_q3_k_q8_k(const void* w, const void* act, int64_t n) {
  check_length("dot_q3_k_q8_k", n);
  const auto* xb = static_cast<const BlockQ3_K*>(w);
  const auto* yb = static_cast<const BlockQ8_K*>(act);
  float sum = 0;
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    const BlockQ3_K& b = xb[i];
    const BlockQ8_K& a = yb[i];
    int32_t isum = 0;
    for (int g = 0; g < kQK_K / 16; ++g) {
      int32_t s = 0;
      for (int l = 0; l < 16; ++l) {
        const int j = 16 * g + l;
        const int h = j / 128, k = (j % 128) / 32, m = j % 32;
        const int q = ((b.qs[32 * h + m] >> (2 * k)) & 3) - (((b.hmask[m] >> (j / 32)) & 1) ? 0 : 4);
        s += q * a.qs[j];
      }
      isum += q3_scale(g, b.scales) * s;
    }
    sum += a.d * half(b.d) * float(isum);
  }
  return sum;
}

// ----------------------------------------------------------------- q4_k
void encode_q4_k_ref(const float* x, void* dst, int64_t n, const float*) {
  for_blocks<BlockQ4_K>("encode_q4_k_ref", x, dst, n, [](const float* xb, int64_t, BlockQ4_K& b) {
    std::array<uint8_t, kQK_K> L{};
    kx_scales_ref<15>(xb, L.data(), b.scales, b.d, b.dmin);
    kx_requantize(xb, b.d, b.dmin, b.scales, 15, L.data());
    q4_k_pack(L.data(), b);
  });
}
void encode_q4_k(const float* x, void* dst, int64_t n, const float* importance) {
  if (!importance) return encode_q4_k_ref(x, dst, n, nullptr);
  for_blocks<BlockQ4_K>("encode_q4_k", x, dst, n, [&](const float* xb, int64_t i, BlockQ4_K& b) {
    std::array<uint8_t, kQK_K> L{};
    kx_scales_imatrix<15>(xb, importance + i * kQK_K, L.data(), b.scales, b.d, b.dmin);
    kx_requantize(xb, b.d, b.dmin, b.scales, 15, L.data());
    q4_k_pack(L.data(), b);
  });
}
void decode_q4_k(const void* src, float* y, int64_t n) {
  check_length("decode_q4_k", n);
  const auto* blocks = static_cast<const BlockQ4_K*>(src);
  for (int64_t i = 0; i < n / kQK_K; ++i, y += kQK_K) {
    const BlockQ4_K& b = blocks[i];
    const float d = half(b.d), dmin = half(b.dmin);
    uint8_t sc[8], m[8];
    unpack_all_scale_min(b.scales, sc, m);
    for (int j = 0; j < 8; ++j) {
      const float dl = d * float(sc[j]), ml = dmin * float(m[j]);
      const uint8_t* q = b.qs + 32 * (j / 2);
      const int shift = 4 * (j % 2);
      for (int l = 0; l < 32; ++l) y[32 * j + l] = dl * float((q[l] >> shift) & 0xF) - ml;
    }
  }
}
float dot_q4_k_q8_k(const void* w, const void* act, int64_t n) {
  check_length("dot_q4_k_q8_k", n);
  const auto* xb = static_cast<const BlockQ4_K*>(w);
  const auto* yb = static_cast<const BlockQ8_K*>(act);
  float sum = 0;
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    const BlockQ4_K& b = xb[i];
    const BlockQ8_K& a = yb[i];
    uint8_t sc[8], m[8];
    unpack_all_scale_min(b.scales, sc, m);
    int32_t isum = 0, msum = 0;
    for (int j = 0; j < 8; ++j) {
      const uint8_t* q = b.qs + 32 * (j / 2);
      const int shift = 4 * (j % 2);
      int32_t s = 0;
      for (int l = 0; l < 32; ++l) s += ((q[l] >> shift) & 0xF) * a.qs[32 * j + l];
      isum += sc[j] * s;
      msum += m[j] * (a.bsums[2 * j] + a.bsums[2 * j + 1]);
    }
    sum += a.d * half(b.d) * float(isum) - a.d * half(b.dmin) * float(msum);
  }
  return sum;
}

// ----------------------------------------------------------------- q5_k
void encode_q5_k_ref(const float* x, void* dst, int64_t n, const float*) {
  for_blocks<BlockQ5_K>("encode_q5_k_ref", x, dst, n, [](const float* xb, int64_t, BlockQ5_K& b) {
    std::array<uint8_t, kQK_K> L{};
    kx_scales_ref<31>(xb, L.data(), b.scales, b.d, b.dmin);
    kx_requantize(xb, b.d, b.dmin, b.scales, 31, L.data());
    q5_k_pack(L.data(), b);
  });
}
void encode_q5_k(const float* x, void* dst, int64_t n, const float* importance) {
  if (!importance) return encode_q5_k_ref(x, dst, n, nullptr);
  for_blocks<BlockQ5_K>("encode_q5_k", x, dst, n, [&](const float* xb, int64_t i, BlockQ5_K& b) {
    std::array<uint8_t, kQK_K> L{};
    kx_scales_imatrix<31>(xb, importance + i * kQK_K, L.data(), b.scales, b.d, b.dmin);
    kx_requantize(xb, b.d, b.dmin, b.scales, 31, L.data());
    q5_k_pack(L.data(), b);
  });
}
void decode_q5_k(const void* src, float* y, int64_t n) {
  check_length("decode_q5_k", n);
  const auto* blocks = static_cast<const BlockQ5_K*>(src);
  for (int64_t i = 0; i < n / kQK_K; ++i, y += kQK_K) {
    const BlockQ5_K& b = blocks[i];
    const float d = half(b.d), dmin = half(b.dmin);
    uint8_t sc[8], m[8];
    unpack_all_scale_min(b.scales, sc, m);
    for (int j = 0; j < 8; ++j) {
      const float dl = d * float(sc[j]), ml = dmin * float(m[j]);
      const uint8_t* q = b.qs + 32 * (j / 2);
      const int shift = 4 * (j % 2);
      for (int l = 0; l < 32; ++l) {
        const int v = ((q[l] >> shift) & 0xF) | (((b.qh[l] >> j) & 1) << 4);
        y[32 * j + l] = dl * float(v) - ml;
      }
    }
  }
}
float dot_q5_k_q8_k(const void* w, const void* act, int64_t n) {
  check_length("dot_q5_k_q8_k", n);
  const auto* xb = static_cast<const BlockQ5_K*>(w);
  const auto* yb = static_cast<const BlockQ8_K*>(act);
  float sum = 0;
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    const BlockQ5_K& b = xb[i];
    const BlockQ8_K& a = yb[i];
    uint8_t sc[8], m[8];
    unpack_all_scale_min(b.scales, sc, m);
    int32_t isum = 0, msum = 0;
    for (int j = 0; j < 8; ++j) {
      const uint8_t* q = b.qs + 32 * (j / 2);
      const int shift = 4 * (j % 2);
      int32_t s = 0;
      for (int l = 0; l < 32; ++l) {
        const int v = ((q[l] >> shift) & 0xF) | (((b.qh[l] >> j) & 1) << 4);
        s += v * a.qs[32 * j + l];
      }
      isum += sc[j] * s;
      msum += m[j] * (a.bsums[2 * j] + a.bsums[2 * j + 1]);
    }
    sum += a.d * half(b.d) * float(isum) - a.d * half(b.dmin) * float(msum);
  }
  return sum;
}

// ----------------------------------------------------------------- q6_k
void encode_q6_k_ref(const float* x, void* dst, int64_t n, const float*) {
  for_blocks<BlockQ6_K>("encode_q6_k_ref", x, dst, n,
                        [](const float* xb, int64_t, BlockQ6_K& b) { encode_q6_k_block(xb, nullptr, b); });
}
void encode_q6_k(const float* x, void* dst, int64_t n, const float* importance) {
  for_blocks<BlockQ6_K>("encode_q6_k", x, dst, n, [&](const float* xb, int64_t i, BlockQ6_K& b) {
    encode_q6_k_block(xb, importance ? importance + i * kQK_K : nullptr, b);
  });
}
namespace {
inline int q6_code(const BlockQ6_K& b, int j) {  // q + 32 of value j
  const int h = j / 128, k = (j % 128) / 32, l = j % 32;
  const int low = (b.ql[64 * h + 32 * (k & 1) + l] >> (4 * (k >> 1))) & 0xF;
  const int top = (b.qh[32 * h + l] >> (2 * k)) & 3;
  return low | (top << 4);
}
}  // namespace
void decode_q6_k(const void* src, float* y, int64_t n) {
  check_length("decode_q6_k", n);
  const auto* blocks = static_cast<const BlockQ6_K*>(src);
  for (int64_t i = 0; i < n / kQK_K; ++i, y += kQK_K) {
    const BlockQ6_K& b = blocks[i];
    const float d = half(b.d);
    for (int g = 0; g < kQK_K / 16; ++g) {
      const float dl = d * float(b.scales[g]);
      for (int l = 0; l < 16; ++l) y[16 * g + l] = dl * float(q6_code(b, 16 * g + l) - 32);
    }
  }
}
float dot_q6_k_q8_k(const void* w, const void* act, int64_t n) {
  check_length("dot_q6_k_q8_k", n);
  const auto* xb = static_cast<const BlockQ6_K*>(w);
  const auto* yb = static_cast<const BlockQ8_K*>(act);
  float sum = 0;
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    const BlockQ6_K& b = xb[i];
    const BlockQ8_K& a = yb[i];
    int32_t isum = 0;
    for (int g = 0; g < kQK_K / 16; ++g) {
      int32_t s = 0;
      for (int l = 0; l < 16; ++l) s += (q6_code(b, 16 * g + l) - 32) * a.qs[16 * g + l];
      isum += b.scales[g] * s;
    }
    sum += a.d * half(b.d) * float(isum);
  }
  return sum;
}

// ----------------------------------------------------------------- q8_k
// Activations: qs = round(-127 / max * x) where max is the signed value of
// largest magnitude, so qs stays within [-127, 127]; d = max / -127 (f32);
// bsums[g] = sum of the 16 codes of group g, for the min terms of the dots.
void encode_q8_k(const float* x, void* dst, int64_t n, const float*) {
  check_length("encode_q8_k", n);
  auto* blocks = static_cast<BlockQ8_K*>(dst);
  for (int64_t i = 0; i < n / kQK_K; ++i, x += kQK_K) {
    BlockQ8_K& b = blocks[i];
    float max = 0, amax = 0;
    for (int j = 0; j < kQK_K; ++j) {
      const float ax = std::fabs(x[j]);
      if (ax > amax) {
        amax = ax;
        max = x[j];
      }
    }
    if (amax == 0.0f) {
      b.d = 0;
      std::memset(b.qs, 0, sizeof b.qs);
      std::memset(b.bsums, 0, sizeof b.bsums);  // ggml leaves them unset; zero is what they sum to
      continue;
    }
    const float iscale = -127.0f / max;
    for (int j = 0; j < kQK_K; ++j) {
      const int v = nearest_int(iscale * x[j]);
      b.qs[j] = int8_t(v < 127 ? v : 127);
    }
    for (int g = 0; g < kQK_K / 16; ++g) {
      int sum = 0;
      for (int l = 0; l < 16; ++l) sum += b.qs[16 * g + l];
      b.bsums[g] = int16_t(sum);
    }
    b.d = 1 / iscale;
  }
}
void decode_q8_k(const void* src, float* y, int64_t n) {
  check_length("decode_q8_k", n);
  const auto* blocks = static_cast<const BlockQ8_K*>(src);
  for (int64_t i = 0; i < n / kQK_K; ++i, y += kQK_K)
    for (int j = 0; j < kQK_K; ++j) y[j] = blocks[i].d * float(blocks[i].qs[j]);
}

}  // namespace moelab::quant::ref
