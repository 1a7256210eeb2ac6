// Scalar reference kernels of the floating codecs (f32, f16, bf16) and the
// legacy 32-value GGUF blocks (q4_0, q4_1, q5_0, q5_1, q8_0, q8_1).
//
// encode_* reproduce ggml's quantize_row_*_ref (and so gguf-py's
// gguf.quants.quantize) byte for byte; decode_* reproduce gguf.quants.dequantize
// bit for bit. That fixes the arithmetic order: every scale is computed in f32
// exactly as ggml writes it. Decode is d * q (+ m): d has 11 significant bits
// and q at most 8, so the product is exact and only the add rounds, which is
// why a fused multiply-add (SIMD kernels, -march builds) gives the same bits.
//
// Dots follow ggml's scalar vec_dot: an exact integer sum per block, scaled by
// the product of the two block scales and accumulated in f32. The float dots
// accumulate in double; they are the yardstick the SIMD kernels are held to.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "core/error.h"
#include "core/fp16.h"
#include "quant/blocks.h"
#include "quant/codec.h"
#include "quant/kernels_ref.h"
#include "quant/simd.h"

namespace moelab::quant::ref {
namespace {

// Rejects a row length that is not a whole number of blocks and missing buffers.
void check_row(const char* fn, const void* a, const void* b, int64_t n, int block_values) {
  if (n < 0 || n % block_values != 0)
    throw Error(std::string(fn) + ": row length " + std::to_string(n) + " is not a multiple of " +
                std::to_string(block_values));
  if (n > 0 && (a == nullptr || b == nullptr)) throw Error(std::string(fn) + ": null buffer");
}

// ggml's `MIN(kMax, (int8_t)v)` for v = x * id + offset, which lies in
// [0, kMax + 1.5] for finite x. Written without the float->int8 cast so a NaN
// or infinite input gives a defined code instead of undefined behaviour.
template <int kMax>
uint8_t trunc_code(float v) {
  if (v >= float(kMax)) return kMax;
  return v > 0.0f ? uint8_t(v) : 0;
}

// ggml's roundf(x * id) into int8, for |x * id| <= 127 (NaN -> 0, clamped).
int8_t round_code(float v) {
  if (!(v == v)) return 0;
  return int8_t(std::clamp(std::round(v), -127.0f, 127.0f));
}

// The value of largest magnitude, sign kept (the first one on ties, like argmax).
float signed_absmax(const float* x) {
  float amax = 0.0f, max = 0.0f;
  for (int j = 0; j < kQK; ++j)
    if (amax < std::fabs(x[j])) {
      amax = std::fabs(x[j]);
      max = x[j];
    }
  return max;
}

void min_max(const float* x, float& min, float& max) {
  min = x[0];
  max = x[0];
  for (int j = 1; j < kQK; ++j) {
    min = std::min(min, x[j]);
    max = std::max(max, x[j]);
  }
}

float inverse_or_zero(float d) { return d != 0.0f ? 1.0f / d : 0.0f; }

// 5-bit codes: low nibbles as in q4 (value j low, j + 16 high), bit 4 of value j in bit j of qh.
void pack5(const uint8_t* q, uint8_t* qs, uint8_t* qh) {
  uint32_t h = 0;
  for (int j = 0; j < kQK / 2; ++j) {
    qs[j] = uint8_t((q[j] & 0x0f) | ((q[j + kQK / 2] & 0x0f) << 4));
    h |= uint32_t(q[j] >> 4) << j;
    h |= uint32_t(q[j + kQK / 2] >> 4) << (j + kQK / 2);
  }
  std::memcpy(qh, &h, sizeof(h));  // little-endian, as ggml stores it
}

void unpack5(const uint8_t* qs, const uint8_t* qh, uint8_t* q) {
  uint32_t h;
  std::memcpy(&h, qh, sizeof(h));
  for (int j = 0; j < kQK / 2; ++j) {
    q[j] = uint8_t((qs[j] & 0x0f) | (((h >> j) & 1u) << 4));
    q[j + kQK / 2] = uint8_t((qs[j] >> 4) | (((h >> (j + kQK / 2)) & 1u) << 4));
  }
}

void unpack4(const uint8_t* qs, uint8_t* q) {
  for (int j = 0; j < kQK / 2; ++j) {
    q[j] = qs[j] & 0x0f;
    q[j + kQK / 2] = qs[j] >> 4;
  }
}

// Integer dot of one block of codes (offset by `zero`) with one q8 block.
int block_isum(const uint8_t* q, int zero, const int8_t* y) {
  int sum = 0;
  for (int j = 0; j < kQK; ++j) sum += (int(q[j]) - zero) * int(y[j]);
  return sum;
}

}  // namespace

// ---- floating formats ------------------------------------------------------

void encode_f32(const float* x, void* dst, int64_t n, const float*) {
  check_row("encode_f32", x, dst, n, 1);
  if (n > 0) std::memcpy(dst, x, size_t(n) * sizeof(float));
}
void decode_f32(const void* src, float* y, int64_t n) {
  check_row("decode_f32", src, y, n, 1);
  if (n > 0) std::memcpy(y, src, size_t(n) * sizeof(float));
}

void encode_f16(const float* x, void* dst, int64_t n, const float*) {
  check_row("encode_f16", x, dst, n, 1);
  auto* h = static_cast<fp16_t*>(dst);
  for (int64_t i = 0; i < n; ++i) h[i] = f32_to_fp16(x[i]);
}
void decode_f16(const void* src, float* y, int64_t n) {
  check_row("decode_f16", src, y, n, 1);
  const auto* h = static_cast<const fp16_t*>(src);
  for (int64_t i = 0; i < n; ++i) y[i] = fp16_to_f32(h[i]);
}

void encode_bf16(const float* x, void* dst, int64_t n, const float*) {
  check_row("encode_bf16", x, dst, n, 1);
  auto* h = static_cast<bf16_t*>(dst);
  for (int64_t i = 0; i < n; ++i) h[i] = f32_to_bf16(x[i]);
}
void decode_bf16(const void* src, float* y, int64_t n) {
  check_row("decode_bf16", src, y, n, 1);
  const auto* h = static_cast<const bf16_t*>(src);
  for (int64_t i = 0; i < n; ++i) y[i] = bf16_to_f32(h[i]);
}

float dot_f32_f32(const void* w, const void* act, int64_t n) {
  check_row("dot_f32_f32", w, act, n, 1);
  const auto* a = static_cast<const float*>(w);
  const auto* x = static_cast<const float*>(act);
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) sum += double(a[i]) * double(x[i]);
  return float(sum);
}

float dot_f16_f32(const void* w, const void* act, int64_t n) {
  check_row("dot_f16_f32", w, act, n, 1);
  const auto* h = static_cast<const fp16_t*>(w);
  const auto* x = static_cast<const float*>(act);
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) sum += double(fp16_to_f32(h[i])) * double(x[i]);
  return float(sum);
}

float dot_bf16_f32(const void* w, const void* act, int64_t n) {
  check_row("dot_bf16_f32", w, act, n, 1);
  const auto* h = static_cast<const bf16_t*>(w);
  const auto* x = static_cast<const float*>(act);
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) sum += double(bf16_to_f32(h[i])) * double(x[i]);
  return float(sum);
}

// ---- q4_0: x = d * (q - 8), d = signed absmax / -8 ----------------------------

void encode_q4_0(const float* x, void* dst, int64_t n, const float*) {
  check_row("encode_q4_0", x, dst, n, kQK);
  auto* blocks = static_cast<BlockQ4_0*>(dst);
  for (int64_t b = 0; b < n / kQK; ++b, x += kQK) {
    const float d = signed_absmax(x) / -8.0f;
    const float id = inverse_or_zero(d);
    blocks[b].d = f32_to_fp16(d);
    for (int j = 0; j < kQK / 2; ++j) {
      const uint8_t lo = trunc_code<15>(x[j] * id + 8.5f);
      const uint8_t hi = trunc_code<15>(x[j + kQK / 2] * id + 8.5f);
      blocks[b].qs[j] = uint8_t(lo | (hi << 4));
    }
  }
}

void decode_q4_0(const void* src, float* y, int64_t n) {
  check_row("decode_q4_0", src, y, n, kQK);
  const auto* blocks = static_cast<const BlockQ4_0*>(src);
  uint8_t q[kQK];
  for (int64_t b = 0; b < n / kQK; ++b, y += kQK) {
    const float d = fp16_to_f32(blocks[b].d);
    unpack4(blocks[b].qs, q);
    for (int j = 0; j < kQK; ++j) y[j] = d * float(int(q[j]) - 8);
  }
}

// ---- q4_1: x = d * q + m, d = (max - min) / 15, m = min ----------------------

void encode_q4_1(const float* x, void* dst, int64_t n, const float*) {
  check_row("encode_q4_1", x, dst, n, kQK);
  auto* blocks = static_cast<BlockQ4_1*>(dst);
  for (int64_t b = 0; b < n / kQK; ++b, x += kQK) {
    float min, max;
    min_max(x, min, max);
    const float d = (max - min) / 15.0f;
    const float id = inverse_or_zero(d);
    blocks[b].d = f32_to_fp16(d);
    blocks[b].m = f32_to_fp16(min);
    for (int j = 0; j < kQK / 2; ++j) {
      const uint8_t lo = trunc_code<15>((x[j] - min) * id + 0.5f);
      const uint8_t hi = trunc_code<15>((x[j + kQK / 2] - min) * id + 0.5f);
      blocks[b].qs[j] = uint8_t(lo | (hi << 4));
    }
  }
}

void decode_q4_1(const void* src, float* y, int64_t n) {
  check_row("decode_q4_1", src, y, n, kQK);
  const auto* blocks = static_cast<const BlockQ4_1*>(src);
  uint8_t q[kQK];
  for (int64_t b = 0; b < n / kQK; ++b, y += kQK) {
    const float d = fp16_to_f32(blocks[b].d), m = fp16_to_f32(blocks[b].m);
    unpack4(blocks[b].qs, q);
    for (int j = 0; j < kQK; ++j) y[j] = d * float(q[j]) + m;
  }
}

// ---- q5_0: x = d * (q - 16), d = signed absmax / -16 -------------------------

void encode_q5_0(const float* x, void* dst, int64_t n, const float*) {
  check_row("encode_q5_0", x, dst, n, kQK);
  auto* blocks = static_cast<BlockQ5_0*>(dst);
  uint8_t q[kQK];
  for (int64_t b = 0; b < n / kQK; ++b, x += kQK) {
    const float d = signed_absmax(x) / -16.0f;
    const float id = inverse_or_zero(d);
    blocks[b].d = f32_to_fp16(d);
    for (int j = 0; j < kQK; ++j) q[j] = trunc_code<31>(x[j] * id + 16.5f);
    pack5(q, blocks[b].qs, blocks[b].qh);
  }
}

void decode_q5_0(const void* src, float* y, int64_t n) {
  check_row("decode_q5_0", src, y, n, kQK);
  const auto* blocks = static_cast<const BlockQ5_0*>(src);
  uint8_t q[kQK];
  for (int64_t b = 0; b < n / kQK; ++b, y += kQK) {
    const float d = fp16_to_f32(blocks[b].d);
    unpack5(blocks[b].qs, blocks[b].qh, q);
    for (int j = 0; j < kQK; ++j) y[j] = d * float(int(q[j]) - 16);
  }
}

// ---- q5_1: x = d * q + m, d = (max - min) / 31, m = min ----------------------

void encode_q5_1(const float* x, void* dst, int64_t n, const float*) {
  check_row("encode_q5_1", x, dst, n, kQK);
  auto* blocks = static_cast<BlockQ5_1*>(dst);
  uint8_t q[kQK];
  for (int64_t b = 0; b < n / kQK; ++b, x += kQK) {
    float min, max;
    min_max(x, min, max);
    const float d = (max - min) / 31.0f;
    const float id = inverse_or_zero(d);
    blocks[b].d = f32_to_fp16(d);
    blocks[b].m = f32_to_fp16(min);
    for (int j = 0; j < kQK; ++j) q[j] = trunc_code<31>((x[j] - min) * id + 0.5f);
    pack5(q, blocks[b].qs, blocks[b].qh);
  }
}

void decode_q5_1(const void* src, float* y, int64_t n) {
  check_row("decode_q5_1", src, y, n, kQK);
  const auto* blocks = static_cast<const BlockQ5_1*>(src);
  uint8_t q[kQK];
  for (int64_t b = 0; b < n / kQK; ++b, y += kQK) {
    const float d = fp16_to_f32(blocks[b].d), m = fp16_to_f32(blocks[b].m);
    unpack5(blocks[b].qs, blocks[b].qh, q);
    for (int j = 0; j < kQK; ++j) y[j] = d * float(q[j]) + m;
  }
}

// ---- q8_0: x = d * q, d = absmax / 127, q = round half away from zero --------

void encode_q8_0(const float* x, void* dst, int64_t n, const float*) {
  check_row("encode_q8_0", x, dst, n, kQK);
  auto* blocks = static_cast<BlockQ8_0*>(dst);
  for (int64_t b = 0; b < n / kQK; ++b, x += kQK) {
    float amax = 0.0f;
    for (int j = 0; j < kQK; ++j) amax = std::max(amax, std::fabs(x[j]));
    const float d = amax / 127.0f;
    const float id = inverse_or_zero(d);
    blocks[b].d = f32_to_fp16(d);
    for (int j = 0; j < kQK; ++j) blocks[b].qs[j] = round_code(x[j] * id);
  }
}

void decode_q8_0(const void* src, float* y, int64_t n) {
  check_row("decode_q8_0", src, y, n, kQK);
  const auto* blocks = static_cast<const BlockQ8_0*>(src);
  for (int64_t b = 0; b < n / kQK; ++b, y += kQK) {
    const float d = fp16_to_f32(blocks[b].d);
    for (int j = 0; j < kQK; ++j) y[j] = float(blocks[b].qs[j]) * d;
  }
}

// ---- q8_1: q8_0 plus s = d * sum(q), for the min term of q4_1 / q5_1 dots ----

void encode_q8_1(const float* x, void* dst, int64_t n, const float*) {
  check_row("encode_q8_1", x, dst, n, kQK);
  auto* blocks = static_cast<BlockQ8_1*>(dst);
  for (int64_t b = 0; b < n / kQK; ++b, x += kQK) {
    float amax = 0.0f;
    for (int j = 0; j < kQK; ++j) amax = std::max(amax, std::fabs(x[j]));
    const float d = amax / 127.0f;
    const float id = inverse_or_zero(d);
    int sum = 0;
    for (int j = 0; j < kQK; ++j) {
      blocks[b].qs[j] = round_code(x[j] * id);
      sum += blocks[b].qs[j];
    }
    blocks[b].d = f32_to_fp16(d);
    blocks[b].s = f32_to_fp16(float(sum) * d);
  }
}

// ---- activations as llama.cpp's x86 kernels quantize them ----------------------
// quantize_row_q8_{0,1} (ggml-cpu/arch/x86/quants.c) differ from the reference
// in two places: the inverse scale is 127 / amax rather than 1 / (amax / 127),
// and ties round to even. Saturating like the packs there (NaN -> -128).
static int8_t round_even_code(float v) {
  if (!(v >= -128.0f)) return -128;  // NaN and below
  return int8_t(std::min(std::nearbyint(v), 127.0f));
}

template <class Block, bool kSum>
static void encode_q8_act(const char* fn, const float* x, void* dst, int64_t n) {
  check_row(fn, x, dst, n, kQK);
  auto* blocks = static_cast<Block*>(dst);
  for (int64_t b = 0; b < n / kQK; ++b, x += kQK) {
    float amax = 0.0f;
    for (int j = 0; j < kQK; ++j) amax = std::max(amax, std::fabs(x[j]));
    const float d = amax / 127.0f;
    const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
    int sum = 0;
    for (int j = 0; j < kQK; ++j) {
      blocks[b].qs[j] = round_even_code(x[j] * id);
      sum += blocks[b].qs[j];
    }
    blocks[b].d = f32_to_fp16(d);
    if constexpr (kSum) blocks[b].s = f32_to_fp16(d * float(sum));
  }
}

void encode_q8_0_act(const float* x, void* dst, int64_t n, const float*) {
  encode_q8_act<BlockQ8_0, false>("encode_q8_0_act", x, dst, n);
}
void encode_q8_1_act(const float* x, void* dst, int64_t n, const float*) {
  encode_q8_act<BlockQ8_1, true>("encode_q8_1_act", x, dst, n);
}

void decode_q8_1(const void* src, float* y, int64_t n) {
  check_row("decode_q8_1", src, y, n, kQK);
  const auto* blocks = static_cast<const BlockQ8_1*>(src);
  for (int64_t b = 0; b < n / kQK; ++b, y += kQK) {
    const float d = fp16_to_f32(blocks[b].d);
    for (int j = 0; j < kQK; ++j) y[j] = float(blocks[b].qs[j]) * d;
  }
}

// ---- dots: integer sum per block times the block scales ----------------------

float dot_q4_0_q8_0(const void* w, const void* act, int64_t n) {
  check_row("dot_q4_0_q8_0", w, act, n, kQK);
  const auto* x = static_cast<const BlockQ4_0*>(w);
  const auto* y = static_cast<const BlockQ8_0*>(act);
  uint8_t q[kQK];
  float sum = 0.0f;
  for (int64_t b = 0; b < n / kQK; ++b) {
    unpack4(x[b].qs, q);
    sum += float(block_isum(q, 8, y[b].qs)) * (fp16_to_f32(x[b].d) * fp16_to_f32(y[b].d));
  }
  return sum;
}

float dot_q4_1_q8_1(const void* w, const void* act, int64_t n) {
  check_row("dot_q4_1_q8_1", w, act, n, kQK);
  const auto* x = static_cast<const BlockQ4_1*>(w);
  const auto* y = static_cast<const BlockQ8_1*>(act);
  uint8_t q[kQK];
  float sum = 0.0f;
  for (int64_t b = 0; b < n / kQK; ++b) {
    unpack4(x[b].qs, q);
    // sum_j (d q_j + m) d_y y_j = d d_y sum_j q_j y_j + m s_y
    sum += float(block_isum(q, 0, y[b].qs)) * (fp16_to_f32(x[b].d) * fp16_to_f32(y[b].d)) +
           fp16_to_f32(x[b].m) * fp16_to_f32(y[b].s);
  }
  return sum;
}

float dot_q5_0_q8_0(const void* w, const void* act, int64_t n) {
  check_row("dot_q5_0_q8_0", w, act, n, kQK);
  const auto* x = static_cast<const BlockQ5_0*>(w);
  const auto* y = static_cast<const BlockQ8_0*>(act);
  uint8_t q[kQK];
  float sum = 0.0f;
  for (int64_t b = 0; b < n / kQK; ++b) {
    unpack5(x[b].qs, x[b].qh, q);
    sum += float(block_isum(q, 16, y[b].qs)) * (fp16_to_f32(x[b].d) * fp16_to_f32(y[b].d));
  }
  return sum;
}

float dot_q5_1_q8_1(const void* w, const void* act, int64_t n) {
  check_row("dot_q5_1_q8_1", w, act, n, kQK);
  const auto* x = static_cast<const BlockQ5_1*>(w);
  const auto* y = static_cast<const BlockQ8_1*>(act);
  uint8_t q[kQK];
  float sum = 0.0f;
  for (int64_t b = 0; b < n / kQK; ++b) {
    unpack5(x[b].qs, x[b].qh, q);
    sum += float(block_isum(q, 0, y[b].qs)) * (fp16_to_f32(x[b].d) * fp16_to_f32(y[b].d)) +
           fp16_to_f32(x[b].m) * fp16_to_f32(y[b].s);
  }
  return sum;
}

float dot_q8_0_q8_0(const void* w, const void* act, int64_t n) {
  check_row("dot_q8_0_q8_0", w, act, n, kQK);
  const auto* x = static_cast<const BlockQ8_0*>(w);
  const auto* y = static_cast<const BlockQ8_0*>(act);
  float sum = 0.0f;
  for (int64_t b = 0; b < n / kQK; ++b) {
    int isum = 0;
    for (int j = 0; j < kQK; ++j) isum += int(x[b].qs[j]) * int(y[b].qs[j]);
    sum += float(isum) * (fp16_to_f32(x[b].d) * fp16_to_f32(y[b].d));
  }
  return sum;
}

}  // namespace moelab::quant::ref

namespace moelab::quant {

void encode_q8_0_dispatch(const float* x, void* dst, int64_t n, const float* importance) {
  switch (active_isa()) {
    case Isa::avx512: return avx512::encode_q8_0(x, dst, n, importance);
    case Isa::avx2: return avx2::encode_q8_0(x, dst, n, importance);
    case Isa::scalar: break;
  }
  ref::encode_q8_0(x, dst, n, importance);
}

void encode_q8_1_dispatch(const float* x, void* dst, int64_t n, const float* importance) {
  switch (active_isa()) {
    case Isa::avx512: return avx512::encode_q8_1(x, dst, n, importance);
    case Isa::avx2: return avx2::encode_q8_1(x, dst, n, importance);
    case Isa::scalar: break;
  }
  ref::encode_q8_1(x, dst, n, importance);
}

// AVX-512 CPUs run the AVX2 encoders: llama.cpp's AVX-512 build quantizes with the same code.
void encode_q8_0_act_dispatch(const float* x, void* dst, int64_t n, const float* importance) {
  if (active_isa() != Isa::scalar) return avx2::encode_q8_0_act(x, dst, n, importance);
  ref::encode_q8_0_act(x, dst, n, importance);
}

void encode_q8_1_act_dispatch(const float* x, void* dst, int64_t n, const float* importance) {
  if (active_isa() != Isa::scalar) return avx2::encode_q8_1_act(x, dst, n, importance);
  ref::encode_q8_1_act(x, dst, n, importance);
}

}  // namespace moelab::quant
