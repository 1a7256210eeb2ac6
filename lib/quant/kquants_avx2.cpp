// AVX2 kernels of the k-quants (compiled with -mavx2 -mfma -mf16c -mbmi2).
//
// Kernels:
//   dot_qN_k_q8_k   N = 2..6: integer dot of one weight row with q8_k activations
//   decode_qN_k     N = 2..6: bit-identical to ref::decode_qN_k
//
// Both work one 256-value super-block at a time from the same unpacked form
// (KBlock): the codes as eight 32-byte vectors of unsigned integers in value
// order, an i16 scale per 16-value group, and an i16 coefficient per group for
// the term subtracted through q8_k's bsums (the min for q2_k/q4_k/q5_k; the
// code offset times the scale for q3_k/q6_k, whose codes are stored unsigned).
// Then for a super-block
//   dot = d_a * (d_w * sum_g sc_g * sum_{i in g} code_i q8_i - d_sub * sum_g coef_g * bsums_g)
// where sum code * q8 comes from maddubs (u8 x s8 -> i16 pairs; codes <= 63 and
// |q8| <= 127 cannot saturate) and the scales from madd (i16 x i16 -> i32).
// Floats enter once per super-block, so the result equals the scalar one up
// to the order of float additions.
#include <immintrin.h>

#include <cstring>
#include <string>

#include "core/error.h"
#include "quant/blocks.h"
#include "quant/simd.h"

namespace moelab::quant::avx2 {
namespace {

void check_length(const char* fn, int64_t n) {
  if (n < 0 || n % kQK_K != 0)
    throw Error(std::string(fn) + ": row length " + std::to_string(n) + " is not a multiple of the k-quant block size " +
                std::to_string(kQK_K));
}

inline float half(fp16_t h) { return _cvtsh_ss(h); }  // exact, like fp16_to_f32

inline __m256i bytes(int v) { return _mm256_set1_epi8(char(v)); }
inline __m256i load32(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }

// Moves bit `kFrom` of every byte to bit `kTo` (other bits cleared). 16-bit
// shifts are safe: the wanted bit never crosses a byte boundary.
template <int kFrom, int kTo>
inline __m256i move_bit(__m256i v) {
  __m256i s;
  if constexpr (kFrom < kTo)
    s = _mm256_slli_epi16(v, kTo - kFrom);
  else if constexpr (kFrom > kTo)
    s = _mm256_srli_epi16(v, kFrom - kTo);
  else
    s = v;
  return _mm256_and_si256(s, bytes(1 << kTo));
}

// One super-block, unpacked.
struct KBlock {
  __m256i q[8];    // codes of values 32 v .. 32 v + 31 (u8)
  __m128i sc[2];   // i16 scale of 16-value group g: sc[g / 8] lane g % 8
  __m256i coef;    // i16 coefficient of bsums[g], lane g
  float d_mul;     // weight-side multiplier of the scaled code sums
  float d_sub;     // weight-side multiplier of sum coef * bsums
  int offset;      // code - offset is the signed code (decode only)
};

// The 6-bit scales and mins of q4_k / q5_k as two 8-byte words: sc[0..7], m[0..7].
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

// 8 per-32 values (bytes) -> 16 per-16-group i16 lanes, each value twice.
inline __m256i dup_to_groups(uint64_t v8) {
  const __m128i v = _mm_cvtsi64_si128(int64_t(v8));
  return _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(v, v));
}

inline void set_scales(KBlock& k, __m256i sc16) {
  k.sc[0] = _mm256_castsi256_si128(sc16);
  k.sc[1] = _mm256_extracti128_si256(sc16, 1);
}

inline void load_block(const BlockQ2_K& b, KBlock& k) {
  for (int h = 0; h < 2; ++h) {
    const __m256i raw = load32(b.qs + 32 * h);
    for (int s = 0; s < 4; ++s) k.q[4 * h + s] = _mm256_and_si256(_mm256_srli_epi16(raw, 2 * s), bytes(3));
  }
  const __m128i packed = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b.scales));
  set_scales(k, _mm256_cvtepu8_epi16(_mm_and_si128(packed, _mm_set1_epi8(0xF))));
  k.coef = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(packed, 4), _mm_set1_epi8(0xF)));
  k.d_mul = half(b.d);
  k.d_sub = half(b.dmin);
  k.offset = 0;
}

template <int kV>  // high bit of vector v of q3_k lives in bit v of hmask
inline __m256i q3_high(__m256i hm) {
  return move_bit<kV, 2>(hm);
}

inline void load_block(const BlockQ3_K& b, KBlock& k) {
  const __m256i hm = load32(b.hmask);
  for (int h = 0; h < 2; ++h) {
    const __m256i raw = load32(b.qs + 32 * h);
    for (int s = 0; s < 4; ++s) k.q[4 * h + s] = _mm256_and_si256(_mm256_srli_epi16(raw, 2 * s), bytes(3));
  }
  k.q[0] = _mm256_or_si256(k.q[0], q3_high<0>(hm));
  k.q[1] = _mm256_or_si256(k.q[1], q3_high<1>(hm));
  k.q[2] = _mm256_or_si256(k.q[2], q3_high<2>(hm));
  k.q[3] = _mm256_or_si256(k.q[3], q3_high<3>(hm));
  k.q[4] = _mm256_or_si256(k.q[4], q3_high<4>(hm));
  k.q[5] = _mm256_or_si256(k.q[5], q3_high<5>(hm));
  k.q[6] = _mm256_or_si256(k.q[6], q3_high<6>(hm));
  k.q[7] = _mm256_or_si256(k.q[7], q3_high<7>(hm));
  // 16 6-bit scales (see kquants.cpp): low nibbles in bytes 0..7, high pairs in 8..11.
  uint32_t a, c, bb;
  std::memcpy(&a, b.scales, 4);
  std::memcpy(&bb, b.scales + 4, 4);
  std::memcpy(&c, b.scales + 8, 4);
  const uint32_t s0 = (a & 0x0f0f0f0fu) | ((c & 0x03030303u) << 4);
  const uint32_t s1 = (bb & 0x0f0f0f0fu) | (((c >> 2) & 0x03030303u) << 4);
  const uint32_t s2 = ((a >> 4) & 0x0f0f0f0fu) | (((c >> 4) & 0x03030303u) << 4);
  const uint32_t s3 = ((bb >> 4) & 0x0f0f0f0fu) | (((c >> 6) & 0x03030303u) << 4);
  const __m128i s = _mm_sub_epi8(_mm_setr_epi32(int(s0), int(s1), int(s2), int(s3)), _mm_set1_epi8(32));
  const __m256i sc16 = _mm256_cvtepi8_epi16(s);
  set_scales(k, sc16);
  k.coef = _mm256_slli_epi16(sc16, 2);  // codes are stored + 4
  k.d_mul = k.d_sub = half(b.d);
  k.offset = 4;
}

inline void load_block(const BlockQ4_K& b, KBlock& k) {
  for (int h = 0; h < 4; ++h) {
    const __m256i raw = load32(b.qs + 32 * h);
    k.q[2 * h] = _mm256_and_si256(raw, bytes(0xF));
    k.q[2 * h + 1] = _mm256_and_si256(_mm256_srli_epi16(raw, 4), bytes(0xF));
  }
  uint64_t sc, m;
  unpack_scale_min(b.scales, sc, m);
  set_scales(k, dup_to_groups(sc));
  k.coef = dup_to_groups(m);
  k.d_mul = half(b.d);
  k.d_sub = half(b.dmin);
  k.offset = 0;
}

inline void load_block(const BlockQ5_K& b, KBlock& k) {
  const __m256i hb = load32(b.qh);
  for (int h = 0; h < 4; ++h) {
    const __m256i raw = load32(b.qs + 32 * h);
    k.q[2 * h] = _mm256_and_si256(raw, bytes(0xF));
    k.q[2 * h + 1] = _mm256_and_si256(_mm256_srli_epi16(raw, 4), bytes(0xF));
  }
  k.q[0] = _mm256_or_si256(k.q[0], move_bit<0, 4>(hb));
  k.q[1] = _mm256_or_si256(k.q[1], move_bit<1, 4>(hb));
  k.q[2] = _mm256_or_si256(k.q[2], move_bit<2, 4>(hb));
  k.q[3] = _mm256_or_si256(k.q[3], move_bit<3, 4>(hb));
  k.q[4] = _mm256_or_si256(k.q[4], move_bit<4, 4>(hb));
  k.q[5] = _mm256_or_si256(k.q[5], move_bit<5, 4>(hb));
  k.q[6] = _mm256_or_si256(k.q[6], move_bit<6, 4>(hb));
  k.q[7] = _mm256_or_si256(k.q[7], move_bit<7, 4>(hb));
  uint64_t sc, m;
  unpack_scale_min(b.scales, sc, m);
  set_scales(k, dup_to_groups(sc));
  k.coef = dup_to_groups(m);
  k.d_mul = half(b.d);
  k.d_sub = half(b.dmin);
  k.offset = 0;
}

inline void load_block(const BlockQ6_K& b, KBlock& k) {
  for (int h = 0; h < 2; ++h) {
    const __m256i l0 = load32(b.ql + 64 * h), l1 = load32(b.ql + 64 * h + 32);
    const __m256i hb = load32(b.qh + 32 * h);
    // vector 4h + s: low nibble from l0 / l1 (s even / odd), top 2 bits from bits 2s..2s+1 of hb
    const __m256i top = bytes(0x30);
    k.q[4 * h + 0] = _mm256_or_si256(_mm256_and_si256(l0, bytes(0xF)), _mm256_and_si256(_mm256_slli_epi16(hb, 4), top));
    k.q[4 * h + 1] = _mm256_or_si256(_mm256_and_si256(l1, bytes(0xF)), _mm256_and_si256(_mm256_slli_epi16(hb, 2), top));
    k.q[4 * h + 2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), bytes(0xF)), _mm256_and_si256(hb, top));
    k.q[4 * h + 3] =
        _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), bytes(0xF)), _mm256_and_si256(_mm256_srli_epi16(hb, 2), top));
  }
  const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b.scales)));
  set_scales(k, sc16);
  k.coef = _mm256_slli_epi16(sc16, 5);  // codes are stored + 32
  k.d_mul = k.d_sub = half(b.d);
  k.offset = 32;
}

// Byte shuffles that spread i16 lane 2 (v % 4) over the low 128 bits and lane
// 2 (v % 4) + 1 over the high 128 bits (constexpr data: no AVX2 code runs at
// static-initialisation time, before dispatch has checked the CPU).
alignas(32) constexpr uint8_t kPickGroups[4][32] = {
    {0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3},
    {4, 5, 4, 5, 4, 5, 4, 5, 4, 5, 4, 5, 4, 5, 4, 5, 6, 7, 6, 7, 6, 7, 6, 7, 6, 7, 6, 7, 6, 7, 6, 7},
    {8, 9, 8, 9, 8, 9, 8, 9, 8, 9, 8, 9, 8, 9, 8, 9, 10, 11, 10, 11, 10, 11, 10, 11, 10, 11, 10, 11, 10, 11, 10, 11},
    {12, 13, 12, 13, 12, 13, 12, 13, 12, 13, 12, 13, 12, 13, 12, 13,
     14, 15, 14, 15, 14, 15, 14, 15, 14, 15, 14, 15, 14, 15, 14, 15}};

// i16 scale vector for code vector v: groups 2v (low 128 bits) and 2v + 1 (high).
inline __m256i group_scales(const KBlock& k, int v) {
  const __m256i pick = _mm256_load_si256(reinterpret_cast<const __m256i*>(kPickGroups[v % 4]));
  return _mm256_shuffle_epi8(_mm256_broadcastsi128_si256(k.sc[v / 4]), pick);
}

// Weights stream from DRAM once per GEMV: prefetch them into L2 about 50
// q4_k blocks ahead so the loads overlap the integer work (see
// kquants_avx512.cpp). Prefetches past the row's end never fault.
constexpr int kPrefetchBytes = 8192;

template <typename Block>
inline void prefetch_block(const Block* b) {
  const char* p = reinterpret_cast<const char*>(b) + kPrefetchBytes;
  for (size_t off = 0; off < sizeof(Block); off += 64) _mm_prefetch(p + off, _MM_HINT_T1);
  if constexpr (sizeof(Block) % 64 != 0) _mm_prefetch(p + sizeof(Block) - 1, _MM_HINT_T1);
}

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

template <typename Block>
float dot_rows(const char* fn, const void* w, const void* act, int64_t n) {
  check_length(fn, n);
  const auto* wb = static_cast<const Block*>(w);
  const auto* ab = static_cast<const BlockQ8_K*>(act);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    prefetch_block(wb + i);
    KBlock k;
    load_block(wb[i], k);
    const BlockQ8_K& a = ab[i];
    __m256i isum = _mm256_setzero_si256();
    for (int v = 0; v < 8; ++v) {
      const __m256i p = _mm256_maddubs_epi16(k.q[v], load32(a.qs + 32 * v));
      isum = _mm256_add_epi32(isum, _mm256_madd_epi16(p, group_scales(k, v)));
    }
    const __m256i msum = _mm256_madd_epi16(load32(a.bsums), k.coef);
    acc = _mm256_fmadd_ps(_mm256_set1_ps(a.d * k.d_mul), _mm256_cvtepi32_ps(isum), acc);
    acc = _mm256_fnmadd_ps(_mm256_set1_ps(a.d * k.d_sub), _mm256_cvtepi32_ps(msum), acc);
  }
  return hsum(acc);
}

// Decode: y = (d * sc_g) * (code - offset) - (dmin * m_g), each product
// rounded to f32 exactly as the scalar decoder rounds it (mul, then sub; no FMA).
template <typename Block>
void decode_rows(const char* fn, const void* src, float* y, int64_t n, bool has_min) {
  check_length(fn, n);
  const auto* wb = static_cast<const Block*>(src);
  alignas(32) int8_t codes[kQK_K];
  alignas(32) int16_t sc[16], coef[16];
  for (int64_t i = 0; i < n / kQK_K; ++i, y += kQK_K) {
    KBlock k;
    load_block(wb[i], k);
    for (int v = 0; v < 8; ++v)
      _mm256_store_si256(reinterpret_cast<__m256i*>(codes + 32 * v), _mm256_sub_epi8(k.q[v], bytes(k.offset)));
    _mm_store_si128(reinterpret_cast<__m128i*>(sc), k.sc[0]);
    _mm_store_si128(reinterpret_cast<__m128i*>(sc + 8), k.sc[1]);
    _mm256_store_si256(reinterpret_cast<__m256i*>(coef), k.coef);
    for (int g = 0; g < 16; ++g) {
      const __m256 dl = _mm256_set1_ps(k.d_mul * float(sc[g]));
      const __m256 ml = _mm256_set1_ps(has_min ? k.d_sub * float(coef[g]) : 0.0f);  // x - (+0) == x exactly
      for (int h = 0; h < 2; ++h) {
        const __m128i c8 = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(codes + 16 * g + 8 * h));
        const __m256 q = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(c8));
        _mm256_storeu_ps(y + 16 * g + 8 * h, _mm256_sub_ps(_mm256_mul_ps(dl, q), ml));
      }
    }
  }
}

}  // namespace

float dot_q2_k_q8_k(const void* w, const void* act, int64_t n) { return dot_rows<BlockQ2_K>("avx2::dot_q2_k_q8_k", w, act, n); }
float dot_q3_k_q8_k(const void* w, const void* act, int64_t n) { return dot_rows<BlockQ3_K>("avx2::dot_q3_k_q8_k", w, act, n); }
float dot_q4_k_q8_k(const void* w, const void* act, int64_t n) { return dot_rows<BlockQ4_K>("avx2::dot_q4_k_q8_k", w, act, n); }
float dot_q5_k_q8_k(const void* w, const void* act, int64_t n) { return dot_rows<BlockQ5_K>("avx2::dot_q5_k_q8_k", w, act, n); }
float dot_q6_k_q8_k(const void* w, const void* act, int64_t n) { return dot_rows<BlockQ6_K>("avx2::dot_q6_k_q8_k", w, act, n); }

void decode_q2_k(const void* src, float* y, int64_t n) { decode_rows<BlockQ2_K>("avx2::decode_q2_k", src, y, n, true); }
void decode_q3_k(const void* src, float* y, int64_t n) { decode_rows<BlockQ3_K>("avx2::decode_q3_k", src, y, n, false); }
void decode_q4_k(const void* src, float* y, int64_t n) { decode_rows<BlockQ4_K>("avx2::decode_q4_k", src, y, n, true); }
void decode_q5_k(const void* src, float* y, int64_t n) { decode_rows<BlockQ5_K>("avx2::decode_q5_k", src, y, n, true); }
void decode_q6_k(const void* src, float* y, int64_t n) { decode_rows<BlockQ6_K>("avx2::decode_q6_k", src, y, n, false); }

}  // namespace moelab::quant::avx2
