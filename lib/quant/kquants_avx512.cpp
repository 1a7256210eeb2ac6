// AVX-512 kernels of the k-quants (F + BW + VL + DQ + VNNI).
//
// Kernels:
//   dot_qN_k_q8_k   N = 2..6: integer dot of one weight row with q8_k activations
//   decode_qN_k     N = 2..6: bit-identical to ref::decode_qN_k
//
// Same scheme as kquants_avx2.cpp on 64-byte vectors: a super-block unpacks
// to four vectors of 64 unsigned codes; VNNI's vpdpbusd forms the code * q8
// sums of 4 bytes, two such vectors pack to i16, and vpdpwssd applies the i16
// group scales (6 multiply uops per super-block where maddubs + madd take 8,
// and half the scale vectors). The bsums term (mins, or the code offset of
// q3_k/q6_k) is one madd on the 16 group sums. Floats enter once per
// super-block.

// GCC 12 flags the deliberately undefined lanes inside the intrinsics
// themselves (_mm512_undefined_*, GCC PR 105593) once they are inlined.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop

#include <cstddef>
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

// One super-block, unpacked. Code vector v holds two 32-value units of the
// super-block, Traits<Block>::kUnits[v] (low and high 256 bits), so each of
// its 128-bit lanes is one 16-value group.
struct KBlock {
  __m512i q[4];  // codes (u8)
  __m128i grp;   // scale of 16-value group g in byte g (signed when Traits::kSigned)
  __m256i coef;  // i16 coefficient of bsums[g], lane g
  __m128 d;      // f32 weight-side multipliers: lane kMulLane of the code sums, kSubLane of sum coef * bsums
  int offset;    // code - offset is the signed code (decode only)
};

template <typename Block>
struct Traits;

// Per codec: the 32-value units of each code vector, whether group scales are
// signed, and where the fp16 multipliers sit: 4 bytes at kHalfOffset read as
// two halves, of which lanes kMulLane / kSubLane are used (q3_k and q6_k have
// one d, read with the 2 bytes before it so the window stays in the block).
template <>
struct Traits<BlockQ2_K> {
  static constexpr int kUnits[4][2] = {{0, 1}, {2, 3}, {4, 5}, {6, 7}};
  static constexpr bool kSigned = false;
  static constexpr int kHalfOffset = offsetof(BlockQ2_K, d), kMulLane = 0, kSubLane = 1;
};
template <>
struct Traits<BlockQ3_K> {
  static constexpr int kUnits[4][2] = {{0, 1}, {2, 3}, {4, 5}, {6, 7}};
  static constexpr bool kSigned = true;
  static constexpr int kHalfOffset = offsetof(BlockQ3_K, d) - 2, kMulLane = 1, kSubLane = 1;
};
template <>
struct Traits<BlockQ4_K> {  // nibbles: low halves of a 64-byte load are units 0, 2; high halves 1, 3
  static constexpr int kUnits[4][2] = {{0, 2}, {1, 3}, {4, 6}, {5, 7}};
  static constexpr bool kSigned = false;
  static constexpr int kHalfOffset = offsetof(BlockQ4_K, d), kMulLane = 0, kSubLane = 1;
};
template <>
struct Traits<BlockQ5_K> : Traits<BlockQ4_K> {
  static constexpr int kHalfOffset = offsetof(BlockQ5_K, d);
};
template <>
struct Traits<BlockQ6_K> {
  static constexpr int kUnits[4][2] = {{0, 1}, {2, 3}, {4, 5}, {6, 7}};
  static constexpr bool kSigned = true;
  static constexpr int kHalfOffset = offsetof(BlockQ6_K, d) - 2, kMulLane = 1, kSubLane = 1;
};
static_assert(offsetof(BlockQ2_K, dmin) == offsetof(BlockQ2_K, d) + 2);
static_assert(offsetof(BlockQ4_K, dmin) == 2 && offsetof(BlockQ5_K, dmin) == 2);

// The integer dot of a super-block: vpdpbusd sums code * q8 over 4 bytes
// into i32 lanes (|lane| <= 4 * 63 * 127 < 2^15), vpackssdw packs two such
// vectors to i16 without saturating, and vpdpwssd multiplies by the group
// scales and adds. Per 128-bit lane k the packed vector holds 4 words of
// code vector 2j and then 4 of 2j + 1; these vpshufb controls place the
// matching group scale under each word, zero-extended (unsigned scales) or
// in the high byte for an arithmetic shift (signed).
template <typename Block>
struct ScaleShuffle {
  alignas(64) uint8_t ctrl[2][64];
  constexpr ScaleShuffle() : ctrl{} {
    for (int j = 0; j < 2; ++j)
      for (int k = 0; k < 4; ++k)
        for (int w = 0; w < 8; ++w) {
          const int v = 2 * j + w / 4;
          const int g = 2 * Traits<Block>::kUnits[v][k / 2] + k % 2;
          ctrl[j][16 * k + 2 * w] = Traits<Block>::kSigned ? 0x80 : uint8_t(g);
          ctrl[j][16 * k + 2 * w + 1] = Traits<Block>::kSigned ? uint8_t(g) : 0x80;
        }
  }
};
template <typename Block>
constexpr ScaleShuffle<Block> kScaleShuffle{};

template <typename Block>
inline __m512i pair_scales(__m512i grp4, int j) {
  const __m512i s = _mm512_shuffle_epi8(grp4, _mm512_load_si512(kScaleShuffle<Block>.ctrl[j]));
  return Traits<Block>::kSigned ? _mm512_srai_epi16(s, 8) : s;
}

template <typename Block>
inline __m128 half_pair(const Block& b) {
  return _mm_cvtph_ps(_mm_loadu_si32(reinterpret_cast<const char*>(&b) + Traits<Block>::kHalfOffset));
}

// q2_k / q3_k: 2-bit fields; byte l of 32-byte half h holds values 128 h + 32 s + l at bits 2s.
inline void two_bit_codes(const uint8_t* qs, KBlock& k) {
  for (int h = 0; h < 2; ++h) {
    const __m256i raw = load32(qs + 32 * h);
    const __m512i r = join(raw, _mm256_srli_epi16(raw, 2));
    k.q[2 * h] = _mm512_and_si512(r, bytes(3));                              // units 4h, 4h+1
    k.q[2 * h + 1] = _mm512_and_si512(_mm512_srli_epi16(r, 4), bytes(3));  // units 4h+2, 4h+3
  }
}

inline void load_block(const BlockQ2_K& b, KBlock& k) {
  two_bit_codes(b.qs, k);
  const __m128i packed = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b.scales));
  k.grp = _mm_and_si128(packed, _mm_set1_epi8(0xF));
  k.coef = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(packed, 4), _mm_set1_epi8(0xF)));
  k.d = half_pair(b);
  k.offset = 0;
}

inline void load_block(const BlockQ3_K& b, KBlock& k) {
  two_bit_codes(b.qs, k);
  // Bit 2 of the code of unit u is bit u of hmask; hh has bit 2p (low half) and 2p+1 (high half) at bit 2p.
  const __m256i hm = load32(b.hmask);
  const __m512i hh = join(hm, _mm256_srli_epi16(hm, 1));
  k.q[0] = _mm512_or_si512(k.q[0], move_bit<0, 2>(hh));
  k.q[1] = _mm512_or_si512(k.q[1], move_bit<2, 2>(hh));
  k.q[2] = _mm512_or_si512(k.q[2], move_bit<4, 2>(hh));
  k.q[3] = _mm512_or_si512(k.q[3], move_bit<6, 2>(hh));
  // 16 6-bit scales: low nibbles in bytes 0..7 (groups j, j + 8), 2-bit tops in bytes 8..11.
  const __m128i raw = _mm_loadu_si64(b.scales);
  const __m128i lows = _mm_and_si128(_mm_unpacklo_epi64(raw, _mm_srli_epi16(raw, 4)), _mm_set1_epi8(0xF));
  uint32_t tops;
  std::memcpy(&tops, b.scales + 8, 4);
  // group 4 q + r: bits 2q..2q+1 of byte r of the tops, i.e. byte r of dword q = tops >> 2q
  const __m128i tsh = _mm_setr_epi32(int(tops), int(tops >> 2), int(tops >> 4), int(tops >> 6));
  const __m128i top = _mm_slli_epi16(_mm_and_si128(tsh, _mm_set1_epi8(3)), 4);
  k.grp = _mm_sub_epi8(_mm_or_si128(lows, top), _mm_set1_epi8(32));
  k.coef = _mm256_slli_epi16(_mm256_cvtepi8_epi16(k.grp), 2);  // codes are stored + 4
  k.d = half_pair(b);
  k.offset = 4;
}

// q4_k / q5_k nibbles: a 64-byte load of qs holds units (0, 2) in its low nibbles, (1, 3) in its high ones.
inline void nibble_codes(const uint8_t* qs, KBlock& k) {
  for (int t = 0; t < 2; ++t) {
    const __m512i raw = load64(qs + 64 * t);
    k.q[2 * t] = _mm512_and_si512(raw, bytes(0xF));
    k.q[2 * t + 1] = _mm512_and_si512(_mm512_srli_epi16(raw, 4), bytes(0xF));
  }
}

// The 12 packed bytes of q4_k / q5_k -> group scales (each 32-value scale
// twice) and the i16 min of each group as bsums coefficient.
inline void scale_min_k4(const uint8_t* packed, KBlock& k) {
  // With Q = the 12 bytes: sc 0..3 = Q0..3 & 63, m 0..3 = Q4..7 & 63,
  // sc 4..7 = (Q8..11 & 15) | (Q0..3 >> 6) << 4, m 4..7 = (Q8..11 >> 4) | (Q4..7 >> 6) << 4.
  const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(packed));  // 4 bytes past the scales: qs
  const __m128i a = _mm_shuffle_epi8(q, _mm_setr_epi8(0, 1, 2, 3, 8, 9, 10, 11, 4, 5, 6, 7, 8, 9, 10, 11));
  const __m128i tops = _mm_shuffle_epi8(q, _mm_setr_epi8(-1, -1, -1, -1, 0, 1, 2, 3, -1, -1, -1, -1, 4, 5, 6, 7));
  const __m128i low = _mm_and_si128(a, _mm_setr_epi8(63, 63, 63, 63, 15, 15, 15, 15, 63, 63, 63, 63, 0, 0, 0, 0));
  const __m128i high_nib = _mm_and_si128(_mm_srli_epi16(a, 4), _mm_setr_epi32(0, 0, 0, 0x0f0f0f0f));
  const __m128i top = _mm_and_si128(_mm_srli_epi16(tops, 2), _mm_set1_epi8(0x30));
  const __m128i v = _mm_or_si128(_mm_or_si128(low, high_nib), top);  // [sc 0..7 | m 0..7]
  k.grp = _mm_shuffle_epi8(v, _mm_setr_epi8(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7));
  k.coef = _mm256_cvtepu8_epi16(_mm_shuffle_epi8(v, _mm_setr_epi8(8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13, 14, 14, 15, 15)));
  k.offset = 0;
}

inline void load_block(const BlockQ4_K& b, KBlock& k) {
  nibble_codes(b.qs, k);
  scale_min_k4(b.scales, k);
  k.d = half_pair(b);
}

inline void load_block(const BlockQ5_K& b, KBlock& k) {
  nibble_codes(b.qs, k);
  // 5th bit of unit u is bit u of qh. Vector 2t + s holds units (4t + s, 4t + s + 2): bits 4t + s and 4t + s + 2.
  const __m256i qh = load32(b.qh);
  const __m512i hh = join(qh, _mm256_srli_epi16(qh, 2));  // those bits, for both halves, at 4t + s
  k.q[0] = _mm512_or_si512(k.q[0], move_bit<0, 4>(hh));
  k.q[1] = _mm512_or_si512(k.q[1], move_bit<1, 4>(hh));
  k.q[2] = _mm512_or_si512(k.q[2], move_bit<4, 4>(hh));
  k.q[3] = _mm512_or_si512(k.q[3], move_bit<5, 4>(hh));
  scale_min_k4(b.scales, k);
  k.d = half_pair(b);
}

inline void load_block(const BlockQ6_K& b, KBlock& k) {
  for (int h = 0; h < 2; ++h) {
    const __m512i l = load64(b.ql + 64 * h);  // units 4h, 4h+1 in low nibbles; 4h+2, 4h+3 in high nibbles
    const __m256i qh = load32(b.qh + 32 * h);
    const __m512i hh = join(qh, _mm256_srli_epi16(qh, 2));  // top bits of unit 4h+s at bits 2s (low) / 2s-2 (high)
    const __m512i top = bytes(0x30);
    k.q[2 * h] = _mm512_or_si512(_mm512_and_si512(l, bytes(0xF)), _mm512_and_si512(_mm512_slli_epi16(hh, 4), top));
    k.q[2 * h + 1] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(l, 4), bytes(0xF)), _mm512_and_si512(hh, top));
  }
  k.grp = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b.scales));
  k.coef = _mm256_slli_epi16(_mm256_cvtepi8_epi16(k.grp), 5);  // codes are stored + 32
  k.d = half_pair(b);
  k.offset = 32;
}

// q8 operand of code vector v: the activation codes of its two units.
template <typename Block>
inline __m512i q8_operand(const int8_t* qs, int v) {
  constexpr auto& u = Traits<Block>::kUnits;
  if (u[v][1] == u[v][0] + 1) return load64(qs + 32 * u[v][0]);
  return _mm512_inserti64x4(_mm512_castsi256_si512(load32(qs + 32 * u[v][0])), load32(qs + 32 * u[v][1]), 1);
}

// Weights stream from DRAM once per GEMV. Prefetching them into L2 this far
// ahead (about 50 q4_k blocks) keeps enough lines in flight that the loads
// overlap the integer work: measured 8 -> 11 GB/s per thread on DRAM-resident
// q4_k rows here (T0 hints or shorter distances did worse). Past the row's
// end it reaches into the next row, which a GEMV reads next; prefetches
// never fault.
constexpr int kPrefetchBytes = 8192;

template <typename Block>
inline void prefetch_block(const Block* b) {
  const char* p = reinterpret_cast<const char*>(b) + kPrefetchBytes;
  for (size_t off = 0; off < sizeof(Block); off += 64) _mm_prefetch(p + off, _MM_HINT_T1);
  if constexpr (sizeof(Block) % 64 != 0) _mm_prefetch(p + sizeof(Block) - 1, _MM_HINT_T1);
}

template <int kLane>
inline __m512 broadcast_lane(__m128 v) {
  if constexpr (kLane == 0) return _mm512_broadcastss_ps(v);
  else return _mm512_broadcastss_ps(_mm_movehdup_ps(v));
}

template <typename Block>
float dot_rows(const char* fn, const void* w, const void* act, int64_t n) {
  check_length(fn, n);
  using T = Traits<Block>;
  const auto* wb = static_cast<const Block*>(w);
  const auto* ab = static_cast<const BlockQ8_K*>(act);
  __m512 acc = _mm512_setzero_ps();
  __m256 acc_sub = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    prefetch_block(wb + i);
    KBlock k;
    load_block(wb[i], k);
    const BlockQ8_K& a = ab[i];
    const __m512i grp4 = _mm512_broadcast_i32x4(k.grp);
    const __m512i zero = _mm512_setzero_si512();
    const __m512i p0 = _mm512_packs_epi32(_mm512_dpbusd_epi32(zero, k.q[0], q8_operand<Block>(a.qs, 0)),
                                          _mm512_dpbusd_epi32(zero, k.q[1], q8_operand<Block>(a.qs, 1)));
    const __m512i p1 = _mm512_packs_epi32(_mm512_dpbusd_epi32(zero, k.q[2], q8_operand<Block>(a.qs, 2)),
                                          _mm512_dpbusd_epi32(zero, k.q[3], q8_operand<Block>(a.qs, 3)));
    const __m512i isum = _mm512_dpwssd_epi32(_mm512_dpwssd_epi32(zero, p0, pair_scales<Block>(grp4, 0)), p1,
                                             pair_scales<Block>(grp4, 1));
    const __m256i msum = _mm256_madd_epi16(load32(a.bsums), k.coef);
    const __m128 d = _mm_mul_ps(k.d, _mm_broadcast_ss(&a.d));
    if constexpr (T::kMulLane == T::kSubLane) {
      // q3_k / q6_k: one multiplier, so subtract the offset term in integers.
      const __m512i net = _mm512_sub_epi32(isum, _mm512_zextsi256_si512(msum));
      acc = _mm512_fmadd_ps(broadcast_lane<T::kMulLane>(d), _mm512_cvtepi32_ps(net), acc);
    } else {
      acc = _mm512_fmadd_ps(broadcast_lane<T::kMulLane>(d), _mm512_cvtepi32_ps(isum), acc);
      acc_sub = _mm256_fmadd_ps(_mm512_castps512_ps256(broadcast_lane<T::kSubLane>(d)), _mm256_cvtepi32_ps(msum), acc_sub);
    }
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
  using T = Traits<Block>;
  const auto* wb = static_cast<const Block*>(src);
  alignas(64) float dl[16], ml[16];  // per 16-value group: d * sc, dmin * m
  for (int64_t i = 0; i < n / kQK_K; ++i, y += kQK_K) {
    KBlock k;
    load_block(wb[i], k);
    // The same f32 products the scalar decoder forms, 16 groups at once.
    const __m512i sc = T::kSigned ? _mm512_cvtepi8_epi32(k.grp) : _mm512_cvtepu8_epi32(k.grp);
    _mm512_store_ps(dl, _mm512_mul_ps(broadcast_lane<T::kMulLane>(k.d), _mm512_cvtepi32_ps(sc)));
    const __m512 m = _mm512_mul_ps(broadcast_lane<T::kSubLane>(k.d), _mm512_cvtepi32_ps(_mm512_cvtepi16_epi32(k.coef)));
    _mm512_store_ps(ml, has_min ? m : _mm512_setzero_ps());  // x - (+0) == x exactly
    auto group = [&](__m128i codes, int g) {
      const __m512 q = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(codes));
      _mm512_storeu_ps(y + 16 * g, _mm512_sub_ps(_mm512_mul_ps(_mm512_set1_ps(dl[g]), q), _mm512_set1_ps(ml[g])));
    };
    for (int v = 0; v < 4; ++v) {
      const __m512i c = _mm512_sub_epi8(k.q[v], bytes(k.offset));
      const int g0 = 2 * T::kUnits[v][0], g1 = 2 * T::kUnits[v][1];
      group(_mm512_castsi512_si128(c), g0);
      group(_mm512_extracti32x4_epi32(c, 1), g0 + 1);
      group(_mm512_extracti32x4_epi32(c, 2), g1);
      group(_mm512_extracti32x4_epi32(c, 3), g1 + 1);
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
