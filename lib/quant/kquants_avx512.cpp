// AVX-512 kernels of the k-quants (F + BW + VL + DQ + VNNI).
//
// Kernels:
//   dot_qN_k_q8_k   N = 2..6: integer dot of one weight row with q8_k activations
//   decode_qN_k     N = 2..6: bit-identical to ref::decode_qN_k
//
// Same scheme as kquants_avx2.cpp on 64-byte vectors: a super-block unpacks
// to four vectors of 64 unsigned codes in value order; maddubs (u8 x s8 ->
// i16 pairs, no saturation for codes <= 63, |q8| <= 127) then VNNI's
// vpdpwssd multiplies by the i16 group scales and accumulates in one step.
// The bsums term (mins, or the code offset of q3_k/q6_k) is one madd on the
// 16 group sums. Floats enter once per super-block.
// GCC 12 flags the deliberately undefined lanes inside the intrinsics
// themselves (_mm512_undefined_*, GCC PR 105593) once they are inlined.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop

#include <cstring>
#include <string>

#include "core/error.h"
#include "quant/blocks.h"
#include "quant/simd.h"

namespace moelab::quant::avx512 {
namespace {

void check_length(const char* fn, int64_t n) {
  if (n < 0 || n % kQK_K != 0)
    throw Error(std::string(fn) + ": row length " + std::to_string(n) + " is not a multiple of the k-quant block size " +
                std::to_string(kQK_K));
}

inline float half(fp16_t h) { return _cvtsh_ss(h); }  // exact, like fp16_to_f32

inline __m512i bytes(int v) { return _mm512_set1_epi8(char(v)); }
inline __m512i load64(const void* p) { return _mm512_loadu_si512(p); }
inline __m256i load32(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }

// [lo | hi] from two 32-byte halves.
inline __m512i join(__m256i lo, __m256i hi) { return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1); }

// Moves bit `kFrom` of every byte to bit `kTo`, other bits cleared (16-bit
// shifts: the wanted bit never crosses a byte boundary).
template <int kFrom, int kTo>
inline __m512i move_bit(__m512i v) {
  __m512i s;
  if constexpr (kFrom < kTo)
    s = _mm512_slli_epi16(v, kTo - kFrom);
  else if constexpr (kFrom > kTo)
    s = _mm512_srli_epi16(v, kFrom - kTo);
  else
    s = v;
  return _mm512_and_si512(s, bytes(1 << kTo));
}

// One super-block, unpacked.
struct KBlock {
  __m512i q[4];   // codes of values 64 v .. 64 v + 63 (u8)
  __m256i sc;     // i16 scale of 16-value group g, lane g
  __m256i coef;   // i16 coefficient of bsums[g], lane g
  float d_mul;    // weight-side multiplier of the scaled code sums
  float d_sub;    // weight-side multiplier of sum coef * bsums
  int offset;     // code - offset is the signed code (decode only)
};

inline void unpack_scale_min(const uint8_t* packed, uint64_t& sc, uint64_t& m) {
  uint32_t a, b, c;
  std::memcpy(&a, packed, 4);
  std::memcpy(&b, packed + 4, 4);
  std::memcpy(&c, packed + 8, 4);
  const uint32_t sc_lo = a & 0x3f3f3f3fu, m_lo = b & 0x3f3f3f3fu;
  const uint32_t sc_hi = (c & 0x0f0f0f0fu) | (((a >> 6) & 0x03030303u) << 4);
  const uint32_t m_hi = ((c >> 4) & 0x0f0f0f0fu) | (((b >> 6) & 0x03030303u) << 4);
  sc = uint64_t(sc_lo) | (uint64_t(sc_hi) << 32);
  m = uint64_t(m_lo) | (uint64_t(m_hi) << 32);
}

inline __m256i dup_to_groups(uint64_t v8) {
  const __m128i v = _mm_cvtsi64_si128(int64_t(v8));
  return _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(v, v));
}

// q2_k / q3_k: 2-bit fields; vector pair (2p, 2p + 1) of half h = 32 bytes shifted by 4p and 4p + 2.
inline void two_bit_codes(const uint8_t* qs, KBlock& k) {
  for (int h = 0; h < 2; ++h) {
    const __m256i raw = load32(qs + 32 * h);
    const __m512i r = join(raw, _mm256_srli_epi16(raw, 2));
    k.q[2 * h] = _mm512_and_si512(r, bytes(3));
    k.q[2 * h + 1] = _mm512_and_si512(_mm512_srli_epi16(r, 4), bytes(3));
  }
}

inline void load_block(const BlockQ2_K& b, KBlock& k) {
  two_bit_codes(b.qs, k);
  const __m128i packed = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b.scales));
  k.sc = _mm256_cvtepu8_epi16(_mm_and_si128(packed, _mm_set1_epi8(0xF)));
  k.coef = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(packed, 4), _mm_set1_epi8(0xF)));
  k.d_mul = half(b.d);
  k.d_sub = half(b.dmin);
  k.offset = 0;
}

inline void load_block(const BlockQ3_K& b, KBlock& k) {
  two_bit_codes(b.qs, k);
  // High bit of value 32 v + l: bit v of hmask[l]. hh holds bit 2p (low half) / 2p + 1 (high half) at bit 0 after >> 2p.
  const __m256i hm = load32(b.hmask);
  const __m512i hh = join(hm, _mm256_srli_epi16(hm, 1));
  k.q[0] = _mm512_or_si512(k.q[0], move_bit<0, 2>(hh));
  k.q[1] = _mm512_or_si512(k.q[1], move_bit<2, 2>(hh));
  k.q[2] = _mm512_or_si512(k.q[2], move_bit<4, 2>(hh));
  k.q[3] = _mm512_or_si512(k.q[3], move_bit<6, 2>(hh));
  uint32_t a, c, bb;
  std::memcpy(&a, b.scales, 4);
  std::memcpy(&bb, b.scales + 4, 4);
  std::memcpy(&c, b.scales + 8, 4);
  const uint32_t s0 = (a & 0x0f0f0f0fu) | ((c & 0x03030303u) << 4);
  const uint32_t s1 = (bb & 0x0f0f0f0fu) | (((c >> 2) & 0x03030303u) << 4);
  const uint32_t s2 = ((a >> 4) & 0x0f0f0f0fu) | (((c >> 4) & 0x03030303u) << 4);
  const uint32_t s3 = ((bb >> 4) & 0x0f0f0f0fu) | (((c >> 6) & 0x03030303u) << 4);
  const __m128i s = _mm_sub_epi8(_mm_setr_epi32(int(s0), int(s1), int(s2), int(s3)), _mm_set1_epi8(32));
  k.sc = _mm256_cvtepi8_epi16(s);
  k.coef = _mm256_slli_epi16(k.sc, 2);  // codes are stored + 4
  k.d_mul = k.d_sub = half(b.d);
  k.offset = 4;
}

// q4_k / q5_k nibbles: 64 bytes of qs give vectors [2h | 2h + 1] for two h.
inline void nibble_codes(const uint8_t* qs, KBlock& k) {
  for (int t = 0; t < 2; ++t) {
    const __m512i raw = load64(qs + 64 * t);
    const __m512i lo = _mm512_and_si512(raw, bytes(0xF));                         // [v 4t | v 4t+2]
    const __m512i hi = _mm512_and_si512(_mm512_srli_epi16(raw, 4), bytes(0xF));  // [v 4t+1 | v 4t+3]
    k.q[2 * t] = _mm512_shuffle_i64x2(lo, hi, _MM_SHUFFLE(1, 0, 1, 0));
    k.q[2 * t + 1] = _mm512_shuffle_i64x2(lo, hi, _MM_SHUFFLE(3, 2, 3, 2));
  }
}

inline void scale_min_k4(const uint8_t* packed, fp16_t d, fp16_t dmin, KBlock& k) {
  uint64_t sc, m;
  unpack_scale_min(packed, sc, m);
  k.sc = dup_to_groups(sc);
  k.coef = dup_to_groups(m);
  k.d_mul = half(d);
  k.d_sub = half(dmin);
  k.offset = 0;
}

inline void load_block(const BlockQ4_K& b, KBlock& k) {
  nibble_codes(b.qs, k);
  scale_min_k4(b.scales, b.d, b.dmin, k);
}

inline void load_block(const BlockQ5_K& b, KBlock& k) {
  nibble_codes(b.qs, k);
  // 5th bit of value 32 v + l: bit v of qh[l]; hh has bit 2p / 2p + 1 at bit 2p in its low / high half.
  const __m256i qh = load32(b.qh);
  const __m512i hh = join(qh, _mm256_srli_epi16(qh, 1));
  k.q[0] = _mm512_or_si512(k.q[0], move_bit<0, 4>(hh));
  k.q[1] = _mm512_or_si512(k.q[1], move_bit<2, 4>(hh));
  k.q[2] = _mm512_or_si512(k.q[2], move_bit<4, 4>(hh));
  k.q[3] = _mm512_or_si512(k.q[3], move_bit<6, 4>(hh));
  scale_min_k4(b.scales, b.d, b.dmin, k);
}

inline void load_block(const BlockQ6_K& b, KBlock& k) {
  for (int h = 0; h < 2; ++h) {
    const __m512i l = load64(b.ql + 64 * h);  // [low nibbles of v 4h, 4h+1 | high nibbles: v 4h+2, 4h+3]
    const __m256i qh = load32(b.qh + 32 * h);
    const __m512i hh = join(qh, _mm256_srli_epi16(qh, 2));  // top bits of v 4h+s at bits 2s (low) / 2s-2 (high)
    const __m512i top = bytes(0x30);
    k.q[2 * h] = _mm512_or_si512(_mm512_and_si512(l, bytes(0xF)), _mm512_and_si512(_mm512_slli_epi16(hh, 4), top));
    k.q[2 * h + 1] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(l, 4), bytes(0xF)), _mm512_and_si512(hh, top));
  }
  k.sc = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b.scales)));
  k.coef = _mm256_slli_epi16(k.sc, 5);  // codes are stored + 32
  k.d_mul = k.d_sub = half(b.d);
  k.offset = 32;
}

// vpermw indices: i16 lane j of the result takes scale 4 v + j / 8.
alignas(64) constexpr int16_t kPickGroups[4][32] = {
    {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3},
    {4, 4, 4, 4, 4, 4, 4, 4, 5, 5, 5, 5, 5, 5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 6, 7, 7, 7, 7, 7, 7, 7, 7},
    {8, 8, 8, 8, 8, 8, 8, 8, 9, 9, 9, 9, 9, 9, 9, 9, 10, 10, 10, 10, 10, 10, 10, 10, 11, 11, 11, 11, 11, 11, 11, 11},
    {12, 12, 12, 12, 12, 12, 12, 12, 13, 13, 13, 13, 13, 13, 13, 13,
     14, 14, 14, 14, 14, 14, 14, 14, 15, 15, 15, 15, 15, 15, 15, 15}};

inline __m512i group_scales(__m512i sc, int v) {
  return _mm512_permutexvar_epi16(_mm512_load_si512(kPickGroups[v]), sc);
}

template <typename Block>
float dot_rows(const char* fn, const void* w, const void* act, int64_t n) {
  check_length(fn, n);
  const auto* wb = static_cast<const Block*>(w);
  const auto* ab = static_cast<const BlockQ8_K*>(act);
  __m512 acc = _mm512_setzero_ps();
  __m256 acc_sub = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    KBlock k;
    load_block(wb[i], k);
    const BlockQ8_K& a = ab[i];
    const __m512i sc = _mm512_castsi256_si512(k.sc);
    __m512i isum = _mm512_setzero_si512();
    for (int v = 0; v < 4; ++v) {
      const __m512i p = _mm512_maddubs_epi16(k.q[v], load64(a.qs + 64 * v));
      isum = _mm512_dpwssd_epi32(isum, p, group_scales(sc, v));
    }
    const __m256i msum = _mm256_madd_epi16(load32(a.bsums), k.coef);
    acc = _mm512_fmadd_ps(_mm512_set1_ps(a.d * k.d_mul), _mm512_cvtepi32_ps(isum), acc);
    acc_sub = _mm256_fmadd_ps(_mm256_set1_ps(a.d * k.d_sub), _mm256_cvtepi32_ps(msum), acc_sub);
  }
  const __m256 total = _mm256_sub_ps(
      _mm256_add_ps(_mm512_castps512_ps256(acc), _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(acc), 1))),
      acc_sub);
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(total), _mm256_extractf128_ps(total, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// Decode: y = (d * sc_g) * (code - offset) - (dmin * m_g), mul then sub (no FMA),
// exactly the roundings of the scalar decoder.
template <typename Block>
void decode_rows(const char* fn, const void* src, float* y, int64_t n, bool has_min) {
  check_length(fn, n);
  const auto* wb = static_cast<const Block*>(src);
  alignas(64) int8_t codes[kQK_K];
  alignas(32) int16_t sc[16], coef[16];
  for (int64_t i = 0; i < n / kQK_K; ++i, y += kQK_K) {
    KBlock k;
    load_block(wb[i], k);
    for (int v = 0; v < 4; ++v) _mm512_store_si512(codes + 64 * v, _mm512_sub_epi8(k.q[v], bytes(k.offset)));
    _mm256_store_si256(reinterpret_cast<__m256i*>(sc), k.sc);
    _mm256_store_si256(reinterpret_cast<__m256i*>(coef), k.coef);
    for (int g = 0; g < 16; ++g) {
      const __m512 dl = _mm512_set1_ps(k.d_mul * float(sc[g]));
      const __m512 ml = _mm512_set1_ps(has_min ? k.d_sub * float(coef[g]) : 0.0f);  // x - (+0) == x exactly
      const __m128i c16 = _mm_load_si128(reinterpret_cast<const __m128i*>(codes + 16 * g));
      const __m512 q = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(c16));
      _mm512_storeu_ps(y + 16 * g, _mm512_sub_ps(_mm512_mul_ps(dl, q), ml));
    }
  }
}

}  // namespace

float dot_q2_k_q8_k(const void* w, const void* act, int64_t n) { return dot_rows<BlockQ2_K>("avx512::dot_q2_k_q8_k", w, act, n); }
float dot_q3_k_q8_k(const void* w, const void* act, int64_t n) { return dot_rows<BlockQ3_K>("avx512::dot_q3_k_q8_k", w, act, n); }
float dot_q4_k_q8_k(const void* w, const void* act, int64_t n) { return dot_rows<BlockQ4_K>("avx512::dot_q4_k_q8_k", w, act, n); }
float dot_q5_k_q8_k(const void* w, const void* act, int64_t n) { return dot_rows<BlockQ5_K>("avx512::dot_q5_k_q8_k", w, act, n); }
float dot_q6_k_q8_k(const void* w, const void* act, int64_t n) { return dot_rows<BlockQ6_K>("avx512::dot_q6_k_q8_k", w, act, n); }

void decode_q2_k(const void* src, float* y, int64_t n) { decode_rows<BlockQ2_K>("avx512::decode_q2_k", src, y, n, true); }
void decode_q3_k(const void* src, float* y, int64_t n) { decode_rows<BlockQ3_K>("avx512::decode_q3_k", src, y, n, false); }
void decode_q4_k(const void* src, float* y, int64_t n) { decode_rows<BlockQ4_K>("avx512::decode_q4_k", src, y, n, true); }
void decode_q5_k(const void* src, float* y, int64_t n) { decode_rows<BlockQ5_K>("avx512::decode_q5_k", src, y, n, true); }
void decode_q6_k(const void* src, float* y, int64_t n) { decode_rows<BlockQ6_K>("avx512::decode_q6_k", src, y, n, false); }

}  // namespace moelab::quant::avx512
