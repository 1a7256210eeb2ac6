// AVX2 (+FMA, F16C) kernels of the floating and legacy block codecs.
//
//   dot_q4_1, dot_q8_0           llama.cpp's ggml_vec_dot_q4_1_q8_1 /
//       _q8_0_q8_0 (x86) operation for operation, for bit-identical logits
//       (also used on AVX-512 CPUs). encode_q8_{0,1}_act likewise reproduce
//       llama.cpp's quantize_row_q8_{0,1} for matmul inputs.
//   dot_q{4,5}_0, dot_q5_1       one 32-value block per 256-bit vector: codes
//       widened to bytes, vpmaddubsw (u8 codes x s8 activations, pairs into
//       int16, no saturation: |pair| <= 2 * 31 * 128) and vpmaddwd into int32
//       lanes; the zero point (8 or 16) comes off as a second vpmaddubsw of
//       the offset with the activations. One FMA per block with the scale
//       product; the scales of 8 blocks come from one gather per operand.
//   dot_{f32,f16,bf16}_f32        8 lanes, 4 accumulators, zero-padded tail.
//   encode_q8_0, encode_q8_1      activation encoders, byte-identical to the
//       reference (blocks with inf / NaN are passed to it).
//   decode_*                      bit-identical to the scalar reference: d * q
//       is exact in f32, so fused or not it rounds the same; f16 undoes
//       vcvtph2ps' quieting of signaling NaNs.
//
// Bad rows are handed to the scalar kernel, which throws the same error; this
// file deliberately uses no library code, whose out-of-line copies could carry
// AVX2 instructions into callers on other CPUs.
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "quant/blocks.h"
#include "quant/kernels_ref.h"
#include "quant/simd.h"

namespace moelab::quant::avx2 {
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
  // Low 16 bits of each lane to the low 8 bytes of its 128-bit half, then the halves together.
  const __m256i low16 = _mm256_setr_epi8(0, 1, 4, 5, 8, 9, 12, 13, -1, -1, -1, -1, -1, -1, -1, -1,  //
                                         0, 1, 4, 5, 8, 9, 12, 13, -1, -1, -1, -1, -1, -1, -1, -1);
  const __m256i packed = _mm256_permute4x64_epi64(_mm256_shuffle_epi8(g, low16), 0x08);
  return _mm256_cvtph_ps(_mm256_castsi256_si128(packed));
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
// then high nibbles (values 16..31).
__m256i unpack_nibbles(const uint8_t* qs) {
  const __m256i v = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(qs)));
  return _mm256_and_si256(_mm256_srlv_epi64(v, _mm256_setr_epi64x(0, 0, 4, 4)), _mm256_set1_epi8(0x0f));
}

// 5-bit codes: nibbles plus 16 where the matching bit of qh is set.
__m256i unpack_q5(const uint8_t* qs, const uint8_t* qh) {
  uint32_t h;
  std::memcpy(&h, qh, sizeof(h));
  // Byte i takes qh byte i / 8, then tests its bit i % 8.
  const __m256i spread = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1,  //
                                          2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
  const __m256i bit = _mm256_set1_epi64x(int64_t(0x8040201008040201));
  const __m256i bytes = _mm256_shuffle_epi8(_mm256_set1_epi32(int(h)), spread);
  const __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(bytes, bit), bit);
  return _mm256_or_si256(unpack_nibbles(qs), _mm256_and_si256(set, _mm256_set1_epi8(16)));
}

__m256i load32(const int8_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }

// Per-lane int32 partial sums of u8 codes times s8 y over one block.
__m256i block_isum_unsigned(__m256i codes, __m256i y) {
  return _mm256_madd_epi16(_mm256_maddubs_epi16(codes, y), _mm256_set1_epi16(1));
}

// Same for (codes - zero) * y.
__m256i block_isum(__m256i codes, __m256i y, __m256i zero_bytes) {
  const __m256i p = _mm256_sub_epi16(_mm256_maddubs_epi16(codes, y), _mm256_maddubs_epi16(zero_bytes, y));
  return _mm256_madd_epi16(p, _mm256_set1_epi16(1));
}

// The shared loop of the weight-times-q8 dots: `isum(b)` gives block b's
// int32 lanes; every block is scaled by d_w * d_y, and for codecs with a min
// the m_w * s_y term is added (kMin).
template <class BlockW, class BlockA, bool kMin, class ISum>
float dot_blocks(const BlockW* x, const BlockA* y, int64_t nb, ISum isum) {
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps(), acc_min = _mm256_setzero_ps();
  int64_t b = 0;
  for (; b + 8 <= nb; b += 8) {
    prefetch_ahead<8 * sizeof(BlockW)>(&x[b]);
    alignas(32) float scale[8];  // d_w * d_y per block, re-read as broadcasts (load ports are idle)
    _mm256_store_ps(scale, _mm256_mul_ps(gather_half8<sizeof(BlockW)>(&x[b].d),
                                         gather_half8<sizeof(BlockA)>(&y[b].d)));
    if constexpr (kMin)
      acc_min = _mm256_fmadd_ps(gather_half8<sizeof(BlockW)>(&x[b].m), gather_half8<sizeof(BlockA)>(&y[b].s),
                                acc_min);
    for (int k = 0; k < 8; k += 2) {
      acc0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum(b + k)), _mm256_broadcast_ss(&scale[k]), acc0);
      acc1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum(b + k + 1)), _mm256_broadcast_ss(&scale[k + 1]), acc1);
    }
  }
  float tail = 0.0f;
  for (; b < nb; ++b) {
    const float s = half_to_float(x[b].d) * half_to_float(y[b].d);
    acc0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum(b)), _mm256_set1_ps(s), acc0);
    if constexpr (kMin) tail += half_to_float(x[b].m) * half_to_float(y[b].s);
  }
  return hsum(_mm256_add_ps(acc0, acc1)) + (kMin ? hsum(acc_min) + tail : 0.0f);
}

// f16 -> f32 of 8 values, bit-exact with fp16_to_f32: vcvtph2ps sets the
// quiet bit of signaling NaNs, the reference keeps it clear.
__m256 halves_to_float(__m128i h8) {
  const __m256i h = _mm256_cvtepu16_epi32(h8);
  const __m256i f = _mm256_castps_si256(_mm256_cvtph_ps(h8));
  const __m256i nan = _mm256_cmpgt_epi32(_mm256_and_si256(h, _mm256_set1_epi32(0x7fff)), _mm256_set1_epi32(0x7c00));
  const __m256i quiet_clear = _mm256_cmpeq_epi32(_mm256_and_si256(h, _mm256_set1_epi32(0x0200)), _mm256_setzero_si256());
  const __m256i signaling = _mm256_and_si256(nan, quiet_clear);
  return _mm256_castsi256_ps(_mm256_andnot_si256(_mm256_and_si256(signaling, _mm256_set1_epi32(0x00400000)), f));
}

__m256 bf16_to_float(__m128i h8) {
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h8), 16));
}

__m128i load16(const uint16_t* p) { return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p)); }

// Stores d * float(codes - zero) (+ m) of one block, codes as 32 bytes in value order.
template <bool kMin>
void store_block(__m256i codes, int zero, float d, float m, float* y) {
  const __m256i off = _mm256_set1_epi32(zero);
  const __m256 vd = _mm256_set1_ps(d), vm = _mm256_set1_ps(m);
  alignas(32) uint8_t q[kQK];
  _mm256_store_si256(reinterpret_cast<__m256i*>(q), codes);
  for (int k = 0; k < 4; ++k) {
    const __m256i v = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(q + 8 * k)));
    __m256 f = _mm256_mul_ps(vd, _mm256_cvtepi32_ps(_mm256_sub_epi32(v, off)));
    if constexpr (kMin) f = _mm256_add_ps(f, vm);
    _mm256_storeu_ps(y + 8 * k, f);
  }
}

// q8 blocks: y = float(q) * d.
template <class Block>
void decode_q8(const Block* x, float* y, int64_t nb) {
  for (int64_t b = 0; b < nb; ++b, y += kQK) {
    const __m256 d = _mm256_set1_ps(half_to_float(x[b].d));
    for (int k = 0; k < 4; ++k) {
      const __m128i q = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(x[b].qs + 8 * k));
      _mm256_storeu_ps(y + 8 * k, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q)), d));
    }
  }
}

// Runs `convert8` (8 x 16-bit -> 8 x f32) over a row, the tail through a zero-padded copy.
template <class Convert8>
void decode_16bit(const uint16_t* h, float* y, int64_t n, Convert8 convert8) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, convert8(load16(h + i)));
  if (i < n) {
    alignas(16) uint16_t in[8] = {};
    alignas(32) float out[8];
    std::memcpy(in, h + i, size_t(n - i) * sizeof(uint16_t));
    _mm256_store_ps(out, convert8(_mm_load_si128(reinterpret_cast<const __m128i*>(in))));
    std::memcpy(y + i, out, size_t(n - i) * sizeof(float));
  }
}

// sum_i w_i x_i for weights stored as T and read 8 at a time as f32 by
// load8(pointer); the tail goes through a zero-padded copy. 4 accumulators.
template <class T, class Load8>
float dot_float_lanes(const T* w, const float* x, int64_t n, Load8 load8) {
  __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    prefetch_ahead<32 * sizeof(T)>(w + i);
    for (int k = 0; k < 4; ++k) acc[k] = _mm256_fmadd_ps(load8(w + i + 8 * k), _mm256_loadu_ps(x + i + 8 * k), acc[k]);
  }
  for (; i + 8 <= n; i += 8) acc[0] = _mm256_fmadd_ps(load8(w + i), _mm256_loadu_ps(x + i), acc[0]);
  if (i < n) {
    alignas(32) T wt[8] = {};
    alignas(32) float xt[8] = {};
    std::memcpy(wt, w + i, size_t(n - i) * sizeof(T));
    std::memcpy(xt, x + i, size_t(n - i) * sizeof(float));
    acc[1] = _mm256_fmadd_ps(load8(wt), _mm256_load_ps(xt), acc[1]);
  }
  return hsum(_mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3])));
}

// round(v) half away from zero, as std::round: trunc, plus sign(v) where the
// dropped fraction is >= 0.5 (v - trunc(v) is exact).
__m256 round_half_away(__m256 v) {
  const __m256 sign = _mm256_and_ps(v, _mm256_set1_ps(-0.0f));
  const __m256 t = _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
  const __m256 frac = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), _mm256_sub_ps(v, t));
  const __m256 step = _mm256_and_ps(_mm256_cmp_ps(frac, _mm256_set1_ps(0.5f), _CMP_GE_OQ), _mm256_set1_ps(1.0f));
  return _mm256_add_ps(t, _mm256_or_ps(step, sign));  // t + 0 keeps t's sign; t + (+-1)
}

// q8_0 / q8_1 blocks from f32, byte-identical to ref::encode_q8_* (same f32
// operations: amax / 127, 1 / d, round(x * id), clamp; fp16 by the hardware,
// which rounds like f32_to_fp16 for every non-NaN). Blocks holding an inf or
// NaN, or so tiny that 1 / d overflows, go to the reference, whose NaN rules
// vector max / min would not follow.
template <class Block, bool kSum, class RefEncode>
void encode_q8(const float* x, Block* out, int64_t nb, RefEncode ref_encode) {
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  for (int64_t b = 0; b < nb; ++b, x += kQK) {
    __m256 v[4], amax = _mm256_setzero_ps();
    int non_finite = 0;
    for (int k = 0; k < 4; ++k) {
      v[k] = _mm256_loadu_ps(x + 8 * k);
      const __m256 a = _mm256_and_ps(v[k], abs_mask);
      non_finite |= _mm256_movemask_ps(_mm256_cmp_ps(a, _mm256_set1_ps(3.40282347e38f), _CMP_NLE_UQ));
      amax = _mm256_max_ps(amax, a);
    }
    if (non_finite) {
      ref_encode(x, &out[b], kQK, nullptr);
      continue;
    }
    __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(amax), _mm256_extractf128_ps(amax, 1));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
    const float d = _mm_cvtss_f32(m4) / 127.0f;
    const float inv = d != 0.0f ? 1.0f / d : 0.0f;
    if (inv > 3.40282347e38f) {  // d subnormal: x * id is inf or NaN, the reference's rules again
      ref_encode(x, &out[b], kQK, nullptr);
      continue;
    }
    const __m256 id = _mm256_set1_ps(inv);
    __m256i q[4];
    for (int k = 0; k < 4; ++k) {
      const __m256 r = round_half_away(_mm256_mul_ps(v[k], id));
      q[k] = _mm256_cvtps_epi32(_mm256_min_ps(_mm256_max_ps(r, _mm256_set1_ps(-127.0f)), _mm256_set1_ps(127.0f)));
    }
    // Saturating packs interleave 128-bit lanes; the final permute restores value order.
    const __m256i bytes = _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out[b].qs),
                        _mm256_permutevar8x32_epi32(bytes, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));
    out[b].d = _cvtss_sh(d, _MM_FROUND_TO_NEAREST_INT);
    if constexpr (kSum) {
      const __m256i s8 = _mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3]));
      __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(s8), _mm256_extracti128_si256(s8, 1));
      s4 = _mm_add_epi32(s4, _mm_unpackhi_epi64(s4, s4));
      s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 1));
      out[b].s = _cvtss_sh(float(_mm_cvtsi128_si32(s4)) * d, _MM_FROUND_TO_NEAREST_INT);
    }
  }
}

// llama.cpp's x86 activation quantizer (quantize_row_q8_0 / _q8_1 in
// ggml-cpu/arch/x86/quants.c), instruction for instruction: id = 127 / amax
// (not 1 / d), round half to even, saturating packs, s = d * sum(q) in fp16.
// Matmul inputs go through this one so that moelab's int8 activations equal
// llama.cpp's byte for byte; the reference encoder above stays the codec's
// `encode` (byte-identical with gguf's python quantizer).
template <class Block, bool kSum>
void encode_q8_as_ggml(const float* x, Block* out, int64_t nb) {
  const __m256 sign_bit = _mm256_set1_ps(-0.0f);
  for (int64_t b = 0; b < nb; ++b, x += kQK) {
    __m256 v0 = _mm256_loadu_ps(x), v1 = _mm256_loadu_ps(x + 8), v2 = _mm256_loadu_ps(x + 16),
           v3 = _mm256_loadu_ps(x + 24);
    __m256 max_abs = _mm256_andnot_ps(sign_bit, v0);
    max_abs = _mm256_max_ps(max_abs, _mm256_andnot_ps(sign_bit, v1));
    max_abs = _mm256_max_ps(max_abs, _mm256_andnot_ps(sign_bit, v2));
    max_abs = _mm256_max_ps(max_abs, _mm256_andnot_ps(sign_bit, v3));
    __m128 max4 = _mm_max_ps(_mm256_extractf128_ps(max_abs, 1), _mm256_castps256_ps128(max_abs));
    max4 = _mm_max_ps(max4, _mm_movehl_ps(max4, max4));
    max4 = _mm_max_ss(max4, _mm_movehdup_ps(max4));
    const float max_scalar = _mm_cvtss_f32(max4);
    const float d = max_scalar / 127.f;
    out[b].d = _cvtss_sh(d, _MM_FROUND_TO_NEAREST_INT);
    const __m256 mul = _mm256_set1_ps(max_scalar != 0.0f ? 127.f / max_scalar : 0.0f);
    const __m256i i0 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v0, mul), _MM_FROUND_TO_NEAREST_INT));
    const __m256i i1 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v1, mul), _MM_FROUND_TO_NEAREST_INT));
    const __m256i i2 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v2, mul), _MM_FROUND_TO_NEAREST_INT));
    const __m256i i3 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v3, mul), _MM_FROUND_TO_NEAREST_INT));
    if constexpr (kSum) {
      const __m256i s8 = _mm256_add_epi32(_mm256_add_epi32(i0, i1), _mm256_add_epi32(i2, i3));
      __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(s8), _mm256_extracti128_si256(s8, 1));
      s4 = _mm_add_epi32(s4, _mm_unpackhi_epi64(s4, s4));
      s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 1));
      out[b].s = _cvtss_sh(d * float(_mm_cvtsi128_si32(s4)), _MM_FROUND_TO_NEAREST_INT);
    }
    const __m256i bytes = _mm256_packs_epi16(_mm256_packs_epi32(i0, i1), _mm256_packs_epi32(i2, i3));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out[b].qs),
                        _mm256_permutevar8x32_epi32(bytes, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));
  }
}

}  // namespace

// ---- activation encoders -----------------------------------------------------

void encode_q8_0_act(const float* x, void* dst, int64_t n, const float* importance) {
  if (bad_row(x, dst, n, kQK)) return ref::encode_q8_0_act(x, dst, n, importance);
  encode_q8_as_ggml<BlockQ8_0, false>(x, static_cast<BlockQ8_0*>(dst), n / kQK);
}

void encode_q8_1_act(const float* x, void* dst, int64_t n, const float* importance) {
  if (bad_row(x, dst, n, kQK)) return ref::encode_q8_1_act(x, dst, n, importance);
  encode_q8_as_ggml<BlockQ8_1, true>(x, static_cast<BlockQ8_1*>(dst), n / kQK);
}

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
  decode_16bit(static_cast<const fp16_t*>(src), y, n, halves_to_float);
}

void decode_bf16(const void* src, float* y, int64_t n) {
  if (bad_row(src, y, n, 1)) return ref::decode_bf16(src, y, n);
  decode_16bit(static_cast<const bf16_t*>(src), y, n, bf16_to_float);
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
  return dot_float_lanes(static_cast<const float*>(w), static_cast<const float*>(act), n,
                         [](const float* p) { return _mm256_loadu_ps(p); });
}

float dot_f16_f32(const void* w, const void* act, int64_t n) {
  if (bad_row(w, act, n, 1)) return ref::dot_f16_f32(w, act, n);
  return dot_float_lanes(static_cast<const fp16_t*>(w), static_cast<const float*>(act), n,
                         [](const fp16_t* p) { return _mm256_cvtph_ps(load16(p)); });
}

float dot_bf16_f32(const void* w, const void* act, int64_t n) {
  if (bad_row(w, act, n, 1)) return ref::dot_bf16_f32(w, act, n);
  return dot_float_lanes(static_cast<const bf16_t*>(w), static_cast<const float*>(act), n,
                         [](const bf16_t* p) { return bf16_to_float(load16(p)); });
}

float dot_q4_0_q8_0(const void* w, const void* act, int64_t n) {
  if (bad_row(w, act, n, kQK)) return ref::dot_q4_0_q8_0(w, act, n);
  const auto* x = static_cast<const BlockQ4_0*>(w);
  const auto* y = static_cast<const BlockQ8_0*>(act);
  const __m256i eight = _mm256_set1_epi8(8);
  return dot_blocks<BlockQ4_0, BlockQ8_0, false>(
      x, y, n / kQK, [&](int64_t b) { return block_isum(unpack_nibbles(x[b].qs), load32(y[b].qs), eight); });
}

// ggml_vec_dot_q4_1_q8_1 (x86 AVX2) operation for operation: one vector
// accumulator, blocks in order, and the min term m_w * s_y fused into one
// scalar running sum (GCC contracts ggml's `summs += m * s`), added after the
// horizontal sum. Same bits as llama.cpp, hence the same logits downstream.
float dot_q4_1_q8_1(const void* w, const void* act, int64_t n) {
  if (bad_row(w, act, n, kQK)) return ref::dot_q4_1_q8_1(w, act, n);
  const auto* x = static_cast<const BlockQ4_1*>(w);
  const auto* y = static_cast<const BlockQ8_1*>(act);
  __m256 acc = _mm256_setzero_ps();
  __m128 summs = _mm_setzero_ps();
  for (int64_t b = 0; b < n / kQK; ++b) {
    if ((b & 7) == 0) prefetch_ahead<8 * sizeof(BlockQ4_1)>(&x[b]);
    summs = _mm_fmadd_ss(_mm_set_ss(half_to_float(x[b].m)), _mm_set_ss(half_to_float(y[b].s)), summs);
    const __m256 d = _mm256_set1_ps(half_to_float(x[b].d) * half_to_float(y[b].d));
    const __m256i isum = block_isum_unsigned(unpack_nibbles(x[b].qs), load32(y[b].qs));
    acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(isum), acc);
  }
  return hsum(acc) + _mm_cvtss_f32(summs);
}

float dot_q5_0_q8_0(const void* w, const void* act, int64_t n) {
  if (bad_row(w, act, n, kQK)) return ref::dot_q5_0_q8_0(w, act, n);
  const auto* x = static_cast<const BlockQ5_0*>(w);
  const auto* y = static_cast<const BlockQ8_0*>(act);
  const __m256i sixteen = _mm256_set1_epi8(16);
  return dot_blocks<BlockQ5_0, BlockQ8_0, false>(x, y, n / kQK, [&](int64_t b) {
    return block_isum(unpack_q5(x[b].qs, x[b].qh), load32(y[b].qs), sixteen);
  });
}

float dot_q5_1_q8_1(const void* w, const void* act, int64_t n) {
  if (bad_row(w, act, n, kQK)) return ref::dot_q5_1_q8_1(w, act, n);
  const auto* x = static_cast<const BlockQ5_1*>(w);
  const auto* y = static_cast<const BlockQ8_1*>(act);
  return dot_blocks<BlockQ5_1, BlockQ8_1, true>(x, y, n / kQK, [&](int64_t b) {
    return block_isum_unsigned(unpack_q5(x[b].qs, x[b].qh), load32(y[b].qs));
  });
}

// ggml_vec_dot_q8_0_q8_0 (x86 AVX2) operation for operation: one vector
// accumulator, blocks in order. s8 x s8 goes through u8 x s8: |w| times y with
// w's sign moved onto y (q8 codes lie in [-127, 127], so a pair of products
// stays inside int16).
float dot_q8_0_q8_0(const void* w, const void* act, int64_t n) {
  if (bad_row(w, act, n, kQK)) return ref::dot_q8_0_q8_0(w, act, n);
  const auto* x = static_cast<const BlockQ8_0*>(w);
  const auto* y = static_cast<const BlockQ8_0*>(act);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t b = 0; b < n / kQK; ++b) {
    if ((b & 7) == 0) prefetch_ahead<8 * sizeof(BlockQ8_0)>(&x[b]);
    const __m256 d = _mm256_set1_ps(half_to_float(x[b].d) * half_to_float(y[b].d));
    const __m256i vw = load32(x[b].qs);
    const __m256i isum = block_isum_unsigned(_mm256_sign_epi8(vw, vw), _mm256_sign_epi8(load32(y[b].qs), vw));
    acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(isum), acc);
  }
  return hsum(acc);
}

}  // namespace moelab::quant::avx2
