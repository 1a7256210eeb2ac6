// AVX-512 (F/BW/VL/DQ/VNNI) kernels of the floating and legacy block codecs.
//
//   (q4_1 and q8_0 dots: none here; AVX-512 CPUs run legacy_avx2.cpp's, which
//   follow llama.cpp's kernels' order so that logits match llama.cpp's exactly)
//   dot_q4_0, dot_q5_{0,1}       two 32-value blocks per 512-bit vector: codes
//       widened to bytes, one VNNI vpdpbusd (u8 codes x s8 activations) per
//       pair, the zero point (8 or 16) taken off as zero times sum(activations)
//       (a second vpdpbusd), then one FMA with the blocks' scale products.
//       Scales of 8 blocks come from one gather per operand; weights are
//       prefetched ahead (prefetch_ahead). In cache this ran q4_0 at 1.08 ns
//       per block against 1.29 for one block per 256-bit vector and 1.24 with
//       scales picked by vpermt2w instead of gathers (similar ranking on an
//       Emerald Rapids host).
//   dot_{f32,f16,bf16}_f32        8 lanes, 4 accumulators, masked tail.
//   encode_q8_0, encode_q8_1      activation encoders, byte-identical to the
//       reference (blocks with inf / NaN are passed to it).
//   decode_*                      bit-identical to the scalar reference: d * q
//       is exact in f32, so fused or not it rounds the same; f16 undoes
//       vcvtph2ps' quieting of signaling NaNs.
//
// Bad rows are handed to the scalar kernel, which throws the same error; this
// file deliberately uses no library code, whose out-of-line copies could carry
// AVX-512 instructions into callers on other CPUs.
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "quant/blocks.h"
#include "quant/kernels_ref.h"
#include "quant/simd.h"

// GCC 12's AVX-512 intrinsics start from self-initialised "undefined" vectors,
// which -Wuninitialized reports wherever they are inlined. Nothing here reads them.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace moelab::quant::avx512 {
namespace {

bool bad_row(const void* a, const void* b, int64_t n, int block_values) {
  return n < 0 || n % block_values != 0 || (n > 0 && (a == nullptr || b == nullptr));
}

float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

float half_to_float(fp16_t h) { return _cvtsh_ss(h); }  // scales only: NaN payloads do not matter

// The fp16 fields at `first` and the same offset in the next 7 blocks of
// kStride bytes, as f32 [8]. One 4-byte gather per lane: it reads the field
// and the 2 bytes after it, which always lie inside the block.
template <int kStride>
__m256 gather_half8(const fp16_t* first) {
  const __m256i offsets = _mm256_setr_epi32(0, kStride, 2 * kStride, 3 * kStride, 4 * kStride, 5 * kStride,
                                            6 * kStride, 7 * kStride);
  const __m256i g = _mm256_i32gather_epi32(reinterpret_cast<const int*>(first), offsets, 1);
  return _mm256_cvtph_ps(_mm256_cvtepi32_epi16(g));  // vpmovdw keeps the low 16 bits
}

// Software prefetch of the weights, in two steps: into L2 8 KiB ahead, then
// into L1 2 KiB ahead. A GEMV streams rows back to back, so this runs into
// the next rows, which is where the reads go next; the hardware prefetchers
// stop at 4 KiB pages. q4_0 GEMV from DRAM, one core (GB/s): none 5.4, L1 only
// (1 / 2 / 4 KiB) 8.8 / 9.7 / 9.4, both 12.0 on the 2-core dev VM; none 7.4,
// L1 only 8.8-10, both 10.8-11.6 on an Emerald Rapids host.
constexpr int kPrefetchL1Bytes = 2048;
constexpr int kPrefetchL2Bytes = 8192;

// Prefetches the kBytes at p (a multiple of 64 or a little less) at both distances.
template <int kBytes>
void prefetch_ahead(const void* p) {
  const char* l1 = static_cast<const char*>(p) + kPrefetchL1Bytes;
  const char* l2 = static_cast<const char*>(p) + kPrefetchL2Bytes;
  for (int off = 0; off < kBytes; off += 64) {
    _mm_prefetch(l2 + off, _MM_HINT_T1);
    _mm_prefetch(l1 + off, _MM_HINT_T0);
  }
}

// 16 packed nibbles -> 32 bytes in value order: low nibbles (values 0..15)
// then high nibbles (values 16..31). For the decoders.
__m256i unpack_nibbles(const uint8_t* qs) {
  const __m256i v = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(qs)));
  return _mm256_and_si256(_mm256_srlv_epi64(v, _mm256_setr_epi64x(0, 0, 4, 4)), _mm256_set1_epi8(0x0f));
}

// 5-bit codes: nibbles plus 16 where the matching bit of qh is set.
__m256i unpack_q5(const uint8_t* qs, const uint8_t* qh) {
  uint32_t h;
  std::memcpy(&h, qh, sizeof(h));
  const __m256i lo = unpack_nibbles(qs);
  return _mm256_mask_add_epi8(lo, _cvtu32_mask32(h), lo, _mm256_set1_epi8(16));
}

// ---- the dots work on two blocks per 512-bit vector ----
// Byte layout of a pair: [block 0 values 0..15 | 16..31 | block 1 values 0..15 | 16..31],
// so int32 lanes 0..7 sum block 0 and lanes 8..15 block 1.

// [qs0 | qs0 | qs1 | qs1]: each block's 16 code bytes under both of its halves.
__m512i pair_broadcast(const uint8_t* qs0, const uint8_t* qs1) {
  const __m512i v = _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(qs0)));
  return _mm512_mask_broadcast_i32x4(v, 0xff00, _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs1)));
}

// 4-bit codes with values 16..31 left in the high nibbles, i.e. times 16:
// one AND instead of shift + AND. VNNI sums u8 x s8 into int32 without
// saturation, and the lanes of the high halves are scaled back by 1/16 once,
// after the loop (dot_pairs' kHigh16).
__m512i pair_nibbles_high_times16(const uint8_t* qs0, const uint8_t* qs1) {
  const __m512i keep = _mm512_setr_epi64(0x0f0f0f0f0f0f0f0f, 0x0f0f0f0f0f0f0f0f, int64_t(0xf0f0f0f0f0f0f0f0ull),
                                         int64_t(0xf0f0f0f0f0f0f0f0ull), 0x0f0f0f0f0f0f0f0f, 0x0f0f0f0f0f0f0f0f,
                                         int64_t(0xf0f0f0f0f0f0f0f0ull), int64_t(0xf0f0f0f0f0f0f0f0ull));
  return _mm512_and_si512(pair_broadcast(qs0, qs1), keep);
}

// 5-bit codes in value order: nibbles plus 16 where the block's qh bit is set.
__m512i pair_q5(const uint8_t* qs0, const uint8_t* qh0, const uint8_t* qs1, const uint8_t* qh1) {
  uint32_t h0, h1;
  std::memcpy(&h0, qh0, sizeof(h0));
  std::memcpy(&h1, qh1, sizeof(h1));
  const __m512i shift = _mm512_setr_epi64(0, 0, 4, 4, 0, 0, 4, 4);
  const __m512i nibbles = _mm512_and_si512(_mm512_srlv_epi64(pair_broadcast(qs0, qs1), shift), _mm512_set1_epi8(0x0f));
  return _mm512_mask_add_epi8(nibbles, _cvtu64_mask64(h0 | uint64_t(h1) << 32), nibbles, _mm512_set1_epi8(16));
}

__m512i pair_load(const int8_t* q0, const int8_t* q1) {
  const __m256i lo = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q0));
  return _mm512_inserti64x4(_mm512_castsi256_si512(lo), _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q1)), 1);
}

// Per-lane int32 partial sums of (codes - zero) * y: the zero point comes off
// as zero times sum(y), a second vpdpbusd.
__m512i pair_isum(__m512i codes, __m512i y, __m512i zero_bytes) {
  const __m512i z = _mm512_setzero_si512();
  return _mm512_sub_epi32(_mm512_dpbusd_epi32(z, codes, y), _mm512_dpbusd_epi32(z, zero_bytes, y));
}

// Lanes 0..7 <- scale[k], lanes 8..15 <- scale[k + 1].
__m512 pair_scales(__m512 scale, int k) {
  const __m512i idx = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_set1_epi32(k)), _mm256_set1_epi32(k + 1), 1);
  return _mm512_permutexvar_ps(idx, scale);
}

// The shared loop of the weight-times-q8 dots. `isum2(b0, b1)` gives the int32
// lanes of blocks b0 and b1 (see the pair layout); each block is scaled by
// d_w * d_y, and for codecs with a min the m_w * s_y term is added (kMin).
// kHigh16: lanes 4..7 of each block (values 16..31) are 16 times too large.
template <class BlockW, class BlockA, bool kMin, bool kHigh16, class ISum2>
float dot_pairs(const BlockW* x, const BlockA* y, int64_t nb, ISum2 isum2) {
  __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
  __m256 acc_min = _mm256_setzero_ps();
  int64_t b = 0;
  for (; b + 8 <= nb; b += 8) {
    prefetch_ahead<8 * sizeof(BlockW)>(&x[b]);
    const __m512 scale = _mm512_castps256_ps512(
        _mm256_mul_ps(gather_half8<sizeof(BlockW)>(&x[b].d), gather_half8<sizeof(BlockA)>(&y[b].d)));
    if constexpr (kMin)
      acc_min = _mm256_fmadd_ps(gather_half8<sizeof(BlockW)>(&x[b].m), gather_half8<sizeof(BlockA)>(&y[b].s),
                                acc_min);
    acc0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum2(b, b + 1)), pair_scales(scale, 0), acc0);
    acc1 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum2(b + 2, b + 3)), pair_scales(scale, 2), acc1);
    acc0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum2(b + 4, b + 5)), pair_scales(scale, 4), acc0);
    acc1 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum2(b + 6, b + 7)), pair_scales(scale, 6), acc1);
  }
  float tail = 0.0f;
  for (; b < nb; b += 2) {
    // An odd last block pairs with itself and weighs 0 the second time.
    const int64_t b1 = b + 1 < nb ? b + 1 : b;
    const float s0 = half_to_float(x[b].d) * half_to_float(y[b].d);
    const float s1 = b1 != b ? half_to_float(x[b1].d) * half_to_float(y[b1].d) : 0.0f;
    const __m512 s2 = _mm512_insertf32x8(_mm512_set1_ps(s0), _mm256_set1_ps(s1), 1);
    acc0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum2(b, b1)), s2, acc0);
    if constexpr (kMin) {
      tail += half_to_float(x[b].m) * half_to_float(y[b].s);
      if (b1 != b) tail += half_to_float(x[b1].m) * half_to_float(y[b1].s);
    }
  }
  __m512 acc = _mm512_add_ps(acc0, acc1);
  if constexpr (kHigh16)
    acc = _mm512_mul_ps(acc, _mm512_setr_ps(1, 1, 1, 1, 0.0625f, 0.0625f, 0.0625f, 0.0625f,  //
                                            1, 1, 1, 1, 0.0625f, 0.0625f, 0.0625f, 0.0625f));
  return _mm512_reduce_add_ps(acc) + (kMin ? hsum(acc_min) + tail : 0.0f);
}

// f16 -> f32 of 16 values, bit-exact with fp16_to_f32: vcvtph2ps sets the
// quiet bit of signaling NaNs, the reference keeps it clear.
__m512 halves_to_float(__m256i h16) {
  const __m512i h = _mm512_cvtepu16_epi32(h16);
  const __m512i f = _mm512_castps_si512(_mm512_cvtph_ps(h16));
  const __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(h, _mm512_set1_epi32(0x7fff)),
                                                _mm512_set1_epi32(0x7c00));
  const __mmask16 snan = _mm512_mask_testn_epi32_mask(nan, h, _mm512_set1_epi32(0x0200));
  return _mm512_castsi512_ps(_mm512_mask_and_epi32(f, snan, f, _mm512_set1_epi32(~0x00400000)));
}

__mmask16 tail_mask(int64_t left) { return __mmask16((1u << left) - 1u); }

// Stores d * float(codes - zero) (+ m) of one block, codes as 32 bytes in value order.
template <bool kMin>
void store_block(__m256i codes, int zero, float d, float m, float* y) {
  const __m512i off = _mm512_set1_epi32(zero);
  const __m512 vd = _mm512_set1_ps(d), vm = _mm512_set1_ps(m);
  const __m512i lo = _mm512_sub_epi32(_mm512_cvtepu8_epi32(_mm256_castsi256_si128(codes)), off);
  const __m512i hi = _mm512_sub_epi32(_mm512_cvtepu8_epi32(_mm256_extracti128_si256(codes, 1)), off);
  __m512 flo = _mm512_mul_ps(vd, _mm512_cvtepi32_ps(lo)), fhi = _mm512_mul_ps(vd, _mm512_cvtepi32_ps(hi));
  if constexpr (kMin) {
    flo = _mm512_add_ps(flo, vm);
    fhi = _mm512_add_ps(fhi, vm);
  }
  _mm512_storeu_ps(y, flo);
  _mm512_storeu_ps(y + 16, fhi);
}

// q8 blocks: y = float(q) * d.
template <class Block>
void decode_q8(const Block* x, float* y, int64_t nb) {
  for (int64_t b = 0; b < nb; ++b, y += kQK) {
    const __m512 d = _mm512_set1_ps(half_to_float(x[b].d));
    const __m128i q0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(x[b].qs));
    const __m128i q1 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(x[b].qs + 16));
    _mm512_storeu_ps(y, _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q0)), d));
    _mm512_storeu_ps(y + 16, _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q1)), d));
  }
}

// sum_i w_i x_i for weights stored as T and read 8 at a time as f32 by
// load8(i) (load8_tail(i, mask) for the last < 8); 4 accumulators. 256-bit on
// purpose: streaming bf16 from DRAM this ran at 13.5 GB/s per core against
// 11.4 for 512-bit vectors (64 values per step), and never slower for f16/f32.
template <class T, class Load8, class Load8Tail>
float dot_float_lanes(const T* w, const float* x, int64_t n, Load8 load8, Load8Tail load8_tail) {
  __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    prefetch_ahead<32 * sizeof(T)>(w + i);
    for (int k = 0; k < 4; ++k) acc[k] = _mm256_fmadd_ps(load8(i + 8 * k), _mm256_loadu_ps(x + i + 8 * k), acc[k]);
  }
  for (; i + 8 <= n; i += 8) acc[0] = _mm256_fmadd_ps(load8(i), _mm256_loadu_ps(x + i), acc[0]);
  if (i < n) {
    const __mmask8 m = __mmask8((1u << (n - i)) - 1u);
    acc[1] = _mm256_fmadd_ps(load8_tail(i, m), _mm256_maskz_loadu_ps(m, x + i), acc[1]);
  }
  return hsum(_mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3])));
}

// round(v) half away from zero, as std::round: trunc, plus sign(v) where the
// dropped fraction is >= 0.5 (v - trunc(v) is exact).
__m512 round_half_away(__m512 v) {
  const __m512 t = _mm512_roundscale_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
  const __m512 frac = _mm512_abs_ps(_mm512_sub_ps(v, t));
  const __m512 sign_one = _mm512_or_ps(_mm512_and_ps(v, _mm512_set1_ps(-0.0f)), _mm512_set1_ps(1.0f));
  return _mm512_mask_add_ps(t, _mm512_cmp_ps_mask(frac, _mm512_set1_ps(0.5f), _CMP_GE_OQ), t, sign_one);
}

// q8_0 / q8_1 blocks from f32, byte-identical to ref::encode_q8_* (same f32
// operations: amax / 127, 1 / d, round(x * id), clamp; fp16 by the hardware,
// which rounds like f32_to_fp16 for every non-NaN). Blocks holding an inf or
// NaN, or so tiny that 1 / d overflows, go to the reference, whose NaN rules
// vector max / min would not follow.
template <class Block, bool kSum, class RefEncode>
void encode_q8(const float* x, Block* out, int64_t nb, RefEncode ref_encode) {
  for (int64_t b = 0; b < nb; ++b, x += kQK) {
    const __m512 v0 = _mm512_loadu_ps(x), v1 = _mm512_loadu_ps(x + 16);
    constexpr int kNanOrInf = 0x01 | 0x08 | 0x10 | 0x80;
    if (_mm512_fpclass_ps_mask(v0, kNanOrInf) | _mm512_fpclass_ps_mask(v1, kNanOrInf)) {
      ref_encode(x, &out[b], kQK, nullptr);
      continue;
    }
    const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(v0), _mm512_abs_ps(v1)));
    const float d = amax / 127.0f;
    const float inv = d != 0.0f ? 1.0f / d : 0.0f;
    if (inv > 3.40282347e38f) {  // d subnormal: x * id is inf or NaN, the reference's rules again
      ref_encode(x, &out[b], kQK, nullptr);
      continue;
    }
    const __m512 id = _mm512_set1_ps(inv);
    const __m512 lo = _mm512_set1_ps(-127.0f), hi = _mm512_set1_ps(127.0f);
    const __m512i q0 = _mm512_cvtps_epi32(_mm512_min_ps(_mm512_max_ps(round_half_away(_mm512_mul_ps(v0, id)), lo), hi));
    const __m512i q1 = _mm512_cvtps_epi32(_mm512_min_ps(_mm512_max_ps(round_half_away(_mm512_mul_ps(v1, id)), lo), hi));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out[b].qs), _mm512_cvtsepi32_epi8(q0));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out[b].qs + 16), _mm512_cvtsepi32_epi8(q1));
    out[b].d = _cvtss_sh(d, _MM_FROUND_TO_NEAREST_INT);
    if constexpr (kSum) {
      const int sum = _mm512_reduce_add_epi32(_mm512_add_epi32(q0, q1));
      out[b].s = _cvtss_sh(float(sum) * d, _MM_FROUND_TO_NEAREST_INT);
    }
  }
}

}  // namespace

// ---- activation encoders -----------------------------------------------------

void encode_q8_0(const float* x, void* dst, int64_t n, const float* importance) {
  if (bad_row(x, dst, n, kQK)) return ref::encode_q8_0(x, dst, n, importance);
  encode_q8<BlockQ8_0, false>(x, static_cast<BlockQ8_0*>(dst), n / kQK, ref::encode_q8_0);
}

void encode_q8_1(const float* x, void* dst, int64_t n, const float* importance) {
  if (bad_row(x, dst, n, kQK)) return ref::encode_q8_1(x, dst, n, importance);
  encode_q8<BlockQ8_1, true>(x, static_cast<BlockQ8_1*>(dst), n / kQK, ref::encode_q8_1);
}

// ---- decode ------------------------------------------------------------------

void decode_f16(const void* src, float* y, int64_t n) {
  if (bad_row(src, y, n, 1)) return ref::decode_f16(src, y, n);
  const auto* h = static_cast<const fp16_t*>(src);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    _mm512_storeu_ps(y + i, halves_to_float(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(h + i))));
  if (i < n) {
    const __mmask16 m = tail_mask(n - i);
    _mm512_mask_storeu_ps(y + i, m, halves_to_float(_mm256_maskz_loadu_epi16(m, h + i)));
  }
}

void decode_bf16(const void* src, float* y, int64_t n) {
  if (bad_row(src, y, n, 1)) return ref::decode_bf16(src, y, n);
  const auto* h = static_cast<const bf16_t*>(src);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512i v = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(h + i)));
    _mm512_storeu_si512(y + i, _mm512_slli_epi32(v, 16));
  }
  if (i < n) {
    const __mmask16 m = tail_mask(n - i);
    const __m512i v = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, h + i));
    _mm512_mask_storeu_epi32(y + i, m, _mm512_slli_epi32(v, 16));
  }
}

void decode_q4_0(const void* src, float* y, int64_t n) {
  if (bad_row(src, y, n, kQK)) return ref::decode_q4_0(src, y, n);
  const auto* x = static_cast<const BlockQ4_0*>(src);
  for (int64_t b = 0; b < n / kQK; ++b, y += kQK)
    store_block<false>(unpack_nibbles(x[b].qs), 8, half_to_float(x[b].d), 0.0f, y);
}

void decode_q4_1(const void* src, float* y, int64_t n) {
  if (bad_row(src, y, n, kQK)) return ref::decode_q4_1(src, y, n);
  const auto* x = static_cast<const BlockQ4_1*>(src);
  for (int64_t b = 0; b < n / kQK; ++b, y += kQK)
    store_block<true>(unpack_nibbles(x[b].qs), 0, half_to_float(x[b].d), half_to_float(x[b].m), y);
}

void decode_q5_0(const void* src, float* y, int64_t n) {
  if (bad_row(src, y, n, kQK)) return ref::decode_q5_0(src, y, n);
  const auto* x = static_cast<const BlockQ5_0*>(src);
  for (int64_t b = 0; b < n / kQK; ++b, y += kQK)
    store_block<false>(unpack_q5(x[b].qs, x[b].qh), 16, half_to_float(x[b].d), 0.0f, y);
}

void decode_q5_1(const void* src, float* y, int64_t n) {
  if (bad_row(src, y, n, kQK)) return ref::decode_q5_1(src, y, n);
  const auto* x = static_cast<const BlockQ5_1*>(src);
  for (int64_t b = 0; b < n / kQK; ++b, y += kQK)
    store_block<true>(unpack_q5(x[b].qs, x[b].qh), 0, half_to_float(x[b].d), half_to_float(x[b].m), y);
}

void decode_q8_0(const void* src, float* y, int64_t n) {
  if (bad_row(src, y, n, kQK)) return ref::decode_q8_0(src, y, n);
  decode_q8(static_cast<const BlockQ8_0*>(src), y, n / kQK);
}

void decode_q8_1(const void* src, float* y, int64_t n) {
  if (bad_row(src, y, n, kQK)) return ref::decode_q8_1(src, y, n);
  decode_q8(static_cast<const BlockQ8_1*>(src), y, n / kQK);
}

// ---- dots --------------------------------------------------------------------

float dot_f32_f32(const void* w, const void* act, int64_t n) {
  if (bad_row(w, act, n, 1)) return ref::dot_f32_f32(w, act, n);
  const auto* v = static_cast<const float*>(w);
  return dot_float_lanes<float>(
      v, static_cast<const float*>(act), n, [&](int64_t i) { return _mm256_loadu_ps(v + i); },
      [&](int64_t i, __mmask8 m) { return _mm256_maskz_loadu_ps(m, v + i); });
}

float dot_f16_f32(const void* w, const void* act, int64_t n) {
  if (bad_row(w, act, n, 1)) return ref::dot_f16_f32(w, act, n);
  const auto* h = static_cast<const fp16_t*>(w);
  return dot_float_lanes<fp16_t>(
      h, static_cast<const float*>(act), n,
      [&](int64_t i) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(h + i))); },
      [&](int64_t i, __mmask8 m) { return _mm256_cvtph_ps(_mm_maskz_loadu_epi16(m, h + i)); });
}

float dot_bf16_f32(const void* w, const void* act, int64_t n) {
  if (bad_row(w, act, n, 1)) return ref::dot_bf16_f32(w, act, n);
  const auto* h = static_cast<const bf16_t*>(w);
  auto widen = [](__m128i v) { return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(v), 16)); };
  return dot_float_lanes<bf16_t>(
      h, static_cast<const float*>(act), n,
      [&](int64_t i) { return widen(_mm_loadu_si128(reinterpret_cast<const __m128i*>(h + i))); },
      [&](int64_t i, __mmask8 m) { return widen(_mm_maskz_loadu_epi16(m, h + i)); });
}

float dot_q4_0_q8_0(const void* w, const void* act, int64_t n) {
  if (bad_row(w, act, n, kQK)) return ref::dot_q4_0_q8_0(w, act, n);
  const auto* x = static_cast<const BlockQ4_0*>(w);
  const auto* y = static_cast<const BlockQ8_0*>(act);
  // The zero point of values 16..31 is 8 * 16, as their codes are (pair_nibbles_high_times16).
  const __m512i zero = _mm512_setr_epi64(0x0808080808080808, 0x0808080808080808, int64_t(0x8080808080808080ull),
                                         int64_t(0x8080808080808080ull), 0x0808080808080808, 0x0808080808080808,
                                         int64_t(0x8080808080808080ull), int64_t(0x8080808080808080ull));
  return dot_pairs<BlockQ4_0, BlockQ8_0, false, true>(x, y, n / kQK, [&](int64_t b0, int64_t b1) {
    return pair_isum(pair_nibbles_high_times16(x[b0].qs, x[b1].qs), pair_load(y[b0].qs, y[b1].qs), zero);
  });
}

float dot_q5_0_q8_0(const void* w, const void* act, int64_t n) {
  if (bad_row(w, act, n, kQK)) return ref::dot_q5_0_q8_0(w, act, n);
  const auto* x = static_cast<const BlockQ5_0*>(w);
  const auto* y = static_cast<const BlockQ8_0*>(act);
  const __m512i sixteen = _mm512_set1_epi8(16);
  return dot_pairs<BlockQ5_0, BlockQ8_0, false, false>(x, y, n / kQK, [&](int64_t b0, int64_t b1) {
    return pair_isum(pair_q5(x[b0].qs, x[b0].qh, x[b1].qs, x[b1].qh), pair_load(y[b0].qs, y[b1].qs), sixteen);
  });
}

float dot_q5_1_q8_1(const void* w, const void* act, int64_t n) {
  if (bad_row(w, act, n, kQK)) return ref::dot_q5_1_q8_1(w, act, n);
  const auto* x = static_cast<const BlockQ5_1*>(w);
  const auto* y = static_cast<const BlockQ8_1*>(act);
  return dot_pairs<BlockQ5_1, BlockQ8_1, true, false>(x, y, n / kQK, [&](int64_t b0, int64_t b1) {
    return _mm512_dpbusd_epi32(_mm512_setzero_si512(), pair_q5(x[b0].qs, x[b0].qh, x[b1].qs, x[b1].qh),
                               pair_load(y[b0].qs, y[b1].qs));
  });
}

}  // namespace moelab::quant::avx512
