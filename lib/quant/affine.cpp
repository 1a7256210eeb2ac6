// Scalar reference of the MLX-style affine group codecs affine{2,3,4,5,6,8}_g{32,64,128}.
//
// One block per group of kGroup values: [fp16 scale][fp16 bias][codes], codes
// a little-endian bit stream of kBits per value (mx.quantize's packing), and
//   x = scale * q + bias,  q in [0, 2^kBits - 1].
//
// encode_affine_ref is MLX's rule (mlx/backend/cpu/quantized.cpp, `quantize`):
// the edge of larger magnitude (min or max) becomes the bias, the scale is
// (max - min) / (2^kBits - 1) signed so that codes grow away from that edge,
// and the scale is then nudged to edge / round(edge / scale) so that zero
// falls exactly on a code. Codes are round((x - bias) / scale) clamped. Scale
// and bias are computed in f32 and stored as fp16, so for inputs that are
// fp16 values this reproduces mx.quantize on a float16 array.
//
// encode_affine lowers the (importance-)weighted squared error further: it
// tries MLX's parameters, a grid of ranges, and least-squares refits of scale
// and bias for fixed codes, each evaluated with the fp16-rounded parameters
// it would store, and keeps the best. MLX's candidate is among them, so it is
// never worse than encode_affine_ref on the weighted error.
//
// Dot with q8_1 activations (32 int8 per block with fp16 d and s = d * sum):
//   sum over groups of scale * sum_blocks d * sum(q * qa) + bias * sum_blocks s.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "core/error.h"
#include "core/fp16.h"
#include "quant/blocks.h"
#include "quant/kernels_ref.h"

// decode is defined as round(scale * q) then + bias, never a fused multiply-add;
// SIMD decoders do the same and must stay bit-identical.
#pragma GCC optimize("fp-contract=off")
// Lets the clamping selects of the encoder's search loops become min/max
// vector instructions; nothing here reads floating-point exception flags.
#pragma GCC optimize("no-trapping-math")

namespace moelab::quant::ref {
namespace {

template <int kBits, int kGroup>
std::string codec_name() {
  return "affine" + std::to_string(kBits) + "_g" + std::to_string(kGroup);
}

template <int kBits, int kGroup>
void check_row(const char* fn, const void* a, const void* b, int64_t n) {
  if (n < 0 || n % kGroup != 0)
    throw Error(codec_name<kBits, kGroup>() + " " + fn + ": row length " + std::to_string(n) +
                " is not a multiple of the group size " + std::to_string(kGroup));
  if (n > 0 && (a == nullptr || b == nullptr)) throw Error(codec_name<kBits, kGroup>() + " " + fn + ": null buffer");
}

// 8 codes occupy exactly kBits bytes of the little-endian stream.
template <int kBits>
void pack8(const uint8_t* q, uint8_t* out) {
  uint64_t v = 0;
  for (int k = 0; k < 8; ++k) v |= uint64_t(q[k]) << (kBits * k);
  for (int b = 0; b < kBits; ++b) out[b] = uint8_t(v >> (8 * b));
}

template <int kBits>
void unpack8(const uint8_t* in, uint8_t* q) {
  uint64_t v = 0;
  for (int b = 0; b < kBits; ++b) v |= uint64_t(in[b]) << (8 * b);
  for (int k = 0; k < 8; ++k) q[k] = uint8_t((v >> (kBits * k)) & ((1u << kBits) - 1));
}

template <int kBits, int kGroup>
void pack(const uint8_t* q, uint8_t* codes) {  // q: [kGroup]
  for (int i = 0; i < kGroup; i += 8) pack8<kBits>(q + i, codes + i / 8 * kBits);
}

template <int kBits, int kGroup>
void unpack(const uint8_t* codes, uint8_t* q) {  // q: [kGroup]
  for (int i = 0; i < kGroup; i += 8) unpack8<kBits>(codes + i / 8 * kBits, q + i);
}

// MLX's scale and bias for one group (f32, before fp16 storage).
template <int kBits>
void mlx_params(const float* x, int count, float& scale, float& bias) {
  constexpr float kBins = float((1 << kBits) - 1);
  constexpr float kEps = 1e-7f;
  float lo = x[0], hi = x[0];
  for (int i = 1; i < count; ++i) {
    lo = std::min(lo, x[i]);
    hi = std::max(hi, x[i]);
  }
  const bool min_is_edge = std::fabs(lo) > std::fabs(hi);
  scale = std::max((hi - lo) / kBins, kEps);
  if (!min_is_edge) scale = -scale;
  const float edge = min_is_edge ? lo : hi;
  const float q0 = std::rint(edge / scale);
  bias = 0.0f;
  if (q0 != 0.0f) {
    scale = edge / q0;
    bias = edge;
  }
}

template <int kBits>
uint8_t code_of(float x, float scale, float bias) {
  constexpr float kMax = float((1 << kBits) - 1);
  const float q = std::rint((x - bias) / scale);
  if (!(q > 0.0f)) return 0;  // also NaN
  return uint8_t(std::min(q, kMax));
}

// round(v) clamped to [0, 2^kBits - 1], ties to even like std::rint, without
// a libm call so the search loops below vectorise (NaN gives 0).
template <int kBits>
float round_code(float v) {
  constexpr float kMax = float((1 << kBits) - 1);
  constexpr float kMagic = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
  v = v > -1.0f ? v : -1.0f;  // each select is one maxps/minps
  v = v < kMax + 1.0f ? v : kMax + 1.0f;
  float r = (v + kMagic) - kMagic;
  r = r > 0.0f ? r : 0.0f;
  return r < kMax ? r : kMax;
}

// Lanes of partial sums, so the compiler may vectorise the reductions.
constexpr int kLanes = 8;
float lane_sum(const float* a) {
  float s = 0.0f;
  for (int k = 0; k < kLanes; ++k) s += a[k];
  return s;
}

bool usable(float scale, float bias) { return scale != 0.0f && std::isfinite(scale) && std::isfinite(bias); }

// Best codes (as floats) for the stored scale and bias.
template <int kBits, int kGroup>
void assign(const float* x, float scale, float bias, float* q) {
  if (!usable(scale, bias)) {
    std::fill(q, q + kGroup, 0.0f);
    return;
  }
  const float inv = 1.0f / scale;
  for (int i = 0; i < kGroup; ++i) q[i] = round_code<kBits>((x[i] - bias) * inv);
}

// Weighted squared error of those codes.
template <int kBits, int kGroup>
float sq_error(const float* x, const float* w, float scale, float bias) {
  float err[kLanes] = {};
  if (!usable(scale, bias)) {
    for (int i = 0; i < kGroup; i += kLanes)
      for (int k = 0; k < kLanes; ++k) err[k] += w[i + k] * (x[i + k] - bias) * (x[i + k] - bias);
  } else {
    const float inv = 1.0f / scale;
    for (int i = 0; i < kGroup; i += kLanes)
      for (int k = 0; k < kLanes; ++k) {
        const float e = x[i + k] - (scale * round_code<kBits>((x[i + k] - bias) * inv) + bias);
        err[k] += w[i + k] * e * e;
      }
  }
  const float total = lane_sum(err);
  return std::isfinite(total) ? total : HUGE_VALF;
}

// Weighted least-squares scale and bias for codes with the sums
// sw = sum w, sx = sum w x, sq = sum w q, sqq = sum w q^2, sqx = sum w q x;
// false when the codes are all equal (the fit is then undetermined).
bool solve(double sw, double sx, double sq, double sqq, double sqx, float& scale, float& bias) {
  const double det = sw * sqq - sq * sq;
  if (!(det > 1e-9 * sw * sqq)) return false;
  scale = float((sw * sqx - sq * sx) / det);
  bias = float((sqq * sx - sq * sqx) / det);
  return std::isfinite(scale) && std::isfinite(bias);
}

template <int kGroup>
bool refit(const float* x, const float* w, const float* q, double sw, double sx, float& scale, float& bias) {
  float sq[kLanes] = {}, sqq[kLanes] = {}, sqx[kLanes] = {};
  for (int i = 0; i < kGroup; i += kLanes)
    for (int k = 0; k < kLanes; ++k) {
      const float wq = w[i + k] * q[i + k];
      sq[k] += wq;
      sqq[k] += wq * q[i + k];
      sqx[k] += wq * x[i + k];
    }
  return solve(sw, sx, lane_sum(sq), lane_sum(sqq), lane_sum(sqx), scale, bias);
}

float to_stored(float v) { return fp16_to_f32(f32_to_fp16(v)); }

template <int kBits, int kGroup>
void encode_group_mlx(const float* x, BlockAffine<kBits, kGroup>& blk) {
  float scale, bias;
  mlx_params<kBits>(x, kGroup, scale, bias);
  uint8_t q[kGroup];
  for (int i = 0; i < kGroup; ++i) q[i] = code_of<kBits>(x[i], scale, bias);
  blk.scale = f32_to_fp16(scale);
  blk.bias = f32_to_fp16(bias);
  pack<kBits, kGroup>(q, blk.codes);
}

// Candidates: MLX's rule, then for a grid of code ranges n_bins + delta over
// [min, max] the least-squares fit of those codes, then a few rounds of
// (reassign codes for the stored parameters, refit) from the best one. Every
// candidate is scored with the fp16 parameters it would store.
template <int kBits, int kGroup>
void encode_group_weighted(const float* x, const float* w, BlockAffine<kBits, kGroup>& blk) {
  constexpr int kBins = (1 << kBits) - 1;
  constexpr int kGridSteps = 12;  // deltas -0.6 .. +0.5 bins
  constexpr int kRefineRounds = 3;
  float best_scale, best_bias;
  mlx_params<kBits>(x, kGroup, best_scale, best_bias);
  best_scale = to_stored(best_scale);
  best_bias = to_stored(best_bias);
  float best = sq_error<kBits, kGroup>(x, w, best_scale, best_bias);

  auto consider = [&](float scale, float bias) {
    scale = to_stored(scale);
    bias = to_stored(bias);
    const float err = sq_error<kBits, kGroup>(x, w, scale, bias);
    if (err < best) {
      best = err;
      best_scale = scale;
      best_bias = bias;
    }
  };

  double sw = 0.0, sx = 0.0;
  for (int i = 0; i < kGroup; ++i) {
    sw += w[i];
    sx += double(w[i]) * x[i];
  }
  const float lo = *std::min_element(x, x + kGroup), hi = *std::max_element(x, x + kGroup);
  if (hi > lo) {
    for (int step = 0; step < kGridSteps; ++step) {
      const float iscale = (float(kBins) + 0.1f * float(step - 6)) / (hi - lo);
      float sq[kLanes] = {}, sqq[kLanes] = {}, sqx[kLanes] = {};
      for (int i = 0; i < kGroup; i += kLanes)
        for (int k = 0; k < kLanes; ++k) {
          const float c = round_code<kBits>((x[i + k] - lo) * iscale), wq = w[i + k] * c;
          sq[k] += wq;
          sqq[k] += wq * c;
          sqx[k] += wq * x[i + k];
        }
      float scale, bias;
      if (solve(sw, sx, lane_sum(sq), lane_sum(sqq), lane_sum(sqx), scale, bias)) consider(scale, bias);
    }
    for (int round = 0; round < kRefineRounds; ++round) {
      float q[kGroup], scale, bias;
      assign<kBits, kGroup>(x, best_scale, best_bias, q);
      if (!refit<kGroup>(x, w, q, sw, sx, scale, bias)) break;
      const float before = best;
      consider(scale, bias);
      if (!(best < before)) break;
    }
  }
  float q[kGroup];
  assign<kBits, kGroup>(x, best_scale, best_bias, q);
  uint8_t codes[kGroup];
  for (int i = 0; i < kGroup; ++i) codes[i] = uint8_t(q[i]);
  blk.scale = f32_to_fp16(best_scale);
  blk.bias = f32_to_fp16(best_bias);
  pack<kBits, kGroup>(codes, blk.codes);
}

}  // namespace

template <int kBits, int kGroup>
void encode_affine_ref(const float* x, void* dst, int64_t n, const float*) {
  check_row<kBits, kGroup>("encode_ref", x, dst, n);
  auto* blocks = static_cast<BlockAffine<kBits, kGroup>*>(dst);
  for (int64_t g = 0; g < n / kGroup; ++g) encode_group_mlx<kBits, kGroup>(x + g * kGroup, blocks[g]);
}

template <int kBits, int kGroup>
void encode_affine(const float* x, void* dst, int64_t n, const float* importance) {
  check_row<kBits, kGroup>("encode", x, dst, n);
  auto* blocks = static_cast<BlockAffine<kBits, kGroup>*>(dst);
  float w[kGroup];
  for (int64_t g = 0; g < n / kGroup; ++g) {
    // Weights: the importance row (negative or non-finite entries count as 0);
    // a group whose weights are all zero falls back to plain squared error.
    double sum = 0.0;
    for (int i = 0; i < kGroup; ++i) {
      const float v = importance ? importance[g * kGroup + i] : 1.0f;
      w[i] = std::isfinite(v) && v > 0.0f ? v : 0.0f;
      sum += w[i];
    }
    if (!(sum > 0.0)) std::fill(w, w + kGroup, 1.0f);
    encode_group_weighted<kBits, kGroup>(x + g * kGroup, w, blocks[g]);
  }
}

template <int kBits, int kGroup>
void decode_affine(const void* src, float* y, int64_t n) {
  check_row<kBits, kGroup>("decode", src, y, n);
  const auto* blocks = static_cast<const BlockAffine<kBits, kGroup>*>(src);
  uint8_t q[kGroup];
  for (int64_t g = 0; g < n / kGroup; ++g, y += kGroup) {
    const float scale = fp16_to_f32(blocks[g].scale), bias = fp16_to_f32(blocks[g].bias);
    unpack<kBits, kGroup>(blocks[g].codes, q);
    for (int i = 0; i < kGroup; ++i) y[i] = scale * float(q[i]) + bias;
  }
}

template <int kBits, int kGroup>
float dot_affine_q8_1(const void* w, const void* act, int64_t n) {
  check_row<kBits, kGroup>("dot", w, act, n);
  static_assert(kGroup % kQK == 0, "a group spans whole q8_1 blocks");
  const auto* blocks = static_cast<const BlockAffine<kBits, kGroup>*>(w);
  const auto* a = static_cast<const BlockQ8_1*>(act);
  uint8_t q[kGroup];
  float sum = 0.0f;
  for (int64_t g = 0; g < n / kGroup; ++g) {
    unpack<kBits, kGroup>(blocks[g].codes, q);
    float scaled = 0.0f, act_sums = 0.0f;
    for (int b = 0; b < kGroup / kQK; ++b, ++a) {
      int32_t isum = 0;
      for (int j = 0; j < kQK; ++j) isum += int32_t(q[b * kQK + j]) * a->qs[j];
      scaled += fp16_to_f32(a->d) * float(isum);
      act_sums += fp16_to_f32(a->s);
    }
    sum += fp16_to_f32(blocks[g].scale) * scaled + fp16_to_f32(blocks[g].bias) * act_sums;
  }
  return sum;
}

#define MOELAB_INSTANTIATE_AFFINE(B, G)                                                   \
  template void encode_affine_ref<B, G>(const float*, void*, int64_t, const float*);    \
  template void encode_affine<B, G>(const float*, void*, int64_t, const float*);        \
  template void decode_affine<B, G>(const void*, float*, int64_t);                      \
  template float dot_affine_q8_1<B, G>(const void*, const void*, int64_t);
#define MOELAB_INSTANTIATE_AFFINE_BITS(B) \
  MOELAB_INSTANTIATE_AFFINE(B, 32) MOELAB_INSTANTIATE_AFFINE(B, 64) MOELAB_INSTANTIATE_AFFINE(B, 128)
MOELAB_INSTANTIATE_AFFINE_BITS(2)
MOELAB_INSTANTIATE_AFFINE_BITS(3)
MOELAB_INSTANTIATE_AFFINE_BITS(4)
MOELAB_INSTANTIATE_AFFINE_BITS(5)
MOELAB_INSTANTIATE_AFFINE_BITS(6)
MOELAB_INSTANTIATE_AFFINE_BITS(8)
#undef MOELAB_INSTANTIATE_AFFINE_BITS
#undef MOELAB_INSTANTIATE_AFFINE

}  // namespace moelab::quant::ref
