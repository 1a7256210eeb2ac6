// AVX-512 (F/BW/VL/DQ/VNNI) kernels of the non-GGUF weight codecs: affine
// groups (all bit widths) and tq3/tq4. Scalar twins: affine.cpp, turbo.cpp.
//
//   affine dot, per 32-value q8_1 block: unpack the codes, integer dot with
//     the int8 activations (VNNI vpdpbusd on bytes for 4 and 8 bits, vpdpwssd
//     on 16-bit codes for 2, 3, 5, 6 bits), then acc += float(isum) * scale * d;
//     bias * s is summed on the side. The fp16 scales of 8 blocks are gathered
//     and converted together. 256-bit: 512-bit instructions would shut
//     vector port 1, and these kernels are port-bound, not width-bound --
//     except 4 bits, which like the legacy q4 dots does two blocks per 512-bit
//     vector (one widening, one vpdpbusd, one FMA per pair): with the L2 + L1
//     prefetch, affine4_g64 GEMV from DRAM went from ~0.81 to ~0.94 of q4_0's
//     speed in the same runs (~0.64 -> ~0.80 of the read bandwidth).
//   affine decode: same unpack, then float(q) * scale + bias (two roundings,
//     as the scalar decode) -- bit-identical.
//   tq dot: codebook lookup with a permute whose table is pre-scaled by the
//     block scale, fused multiply-add with the rotated f32 activations.
//     tq4: one 64-byte load holds 16 lanes x 8 nibbles; tq3: magnitudes from
//     a broadcast 32-bit word, signs straight into a mask register.
//   tq decode: codebook values, the same Walsh-Hadamard butterflies as
//     hadamard::fwht in the same order, one multiply, sign flips -- bit-identical.
//
// GCC 12 flags the deliberately undefined lanes inside the intrinsics
// themselves (_mm512_undefined_*, GCC PR 105593) once they are inlined.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop

#include <array>
#include <cstring>
#include <string>

#include "core/error.h"
#include "core/fp16.h"
#include "quant/blocks.h"
#include "quant/hadamard.h"
#include "quant/kernels_ref.h"
#include "quant/simd.h"

#pragma GCC optimize("fp-contract=off")

namespace moelab::quant::avx512 {
namespace {

using ref::BlockAffine;
using ref::BlockTq3;
using ref::BlockTq4;

void check_row(const char* codec, int64_t n, int block) {
  if (n < 0 || n % block != 0)
    throw Error(std::string(codec) + ": row length " + std::to_string(n) + " is not a multiple of " +
                std::to_string(block));
}

template <int kBits, int kGroup>
void check_affine(int64_t n) {
  if (n < 0 || n % kGroup != 0)
    throw Error("affine" + std::to_string(kBits) + "_g" + std::to_string(kGroup) + ": row length " +
                std::to_string(n) + " is not a multiple of the group size " + std::to_string(kGroup));
}

float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// Weights stream from DRAM once per GEMV and the hardware prefetchers stop at
// 4 KiB pages; prefetching ahead (running into the next rows, which a GEMV
// reads next) keeps enough lines in flight to reach DRAM bandwidth. The tq
// dots prefetch into L1 2 KiB ahead; the affine dots also into L2 8 KiB ahead,
// as legacy_avx512.cpp (affine4_g64 GEMV: ~0.81 -> ~0.85 of q4_0's speed).
constexpr int kPrefetchL1Bytes = 2048;
constexpr int kPrefetchL2Bytes = 8192;

template <size_t kBlockBytes>
void prefetch_ahead(const void* block) {
  const char* p = static_cast<const char*>(block) + kPrefetchL1Bytes;
  for (size_t off = 0; off < kBlockBytes; off += 64) _mm_prefetch(p + off, _MM_HINT_T0);
  if constexpr (kBlockBytes % 64 != 0) _mm_prefetch(p + kBlockBytes - 1, _MM_HINT_T0);
}

// Both steps, for the affine dots. The lines at offsets 0, 64, ... already
// cover a kBlockBytes that is not a multiple of 64.
template <size_t kBlockBytes>
void prefetch_ahead_l2_l1(const void* block) {
  const char* l1 = static_cast<const char*>(block) + kPrefetchL1Bytes;
  const char* l2 = static_cast<const char*>(block) + kPrefetchL2Bytes;
  for (size_t off = 0; off < kBlockBytes; off += 64) {
    _mm_prefetch(l2 + off, _MM_HINT_T1);
    _mm_prefetch(l1 + off, _MM_HINT_T0);
  }
}

// Two fp16 values (scale, bias) or (d, s) at p -> lanes 0 and 1.
__m128 load_fp16_pair(const void* p) { return _mm_cvtph_ps(_mm_loadu_si32(p)); }

// ---- affine: codes of one 32-value chunk ------------------------------------------

// 4 bits: 16 bytes -> 32 code bytes in order. Each byte b widens to the word
// b | b << 4 and the mask keeps its low nibble in byte 0, high nibble in byte 1.
__m256i codes4_bytes(const uint8_t* p) {
  const __m256i w = _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  return _mm256_ternarylogic_epi32(w, _mm256_slli_epi16(w, 4), _mm256_set1_epi16(0x0f0f), 0xa8);  // (a | b) & c
}

// 2, 3, 5, 6 bits: half h (codes 16h .. 16h + 15) of a chunk as 16-bit words.
// The 16 loaded bytes start at chunk offset start(h) (2 bits: the chunk's 8
// bytes broadcast as a qword instead); a byte shuffle gathers each code's two
// stream bytes into its word and a variable shift aligns it. Everything stays
// 256-bit: a 512-bit instruction would take vector port 1 away.
template <int kBits>
struct WordUnpack {
  static constexpr int kChunkBytes = 4 * kBits;
  static constexpr int start(int h) {
    if (kBits == 2) return 0;
    if (kBits == 3) return -4;  // 16 bytes ending at the chunk end; the 4 before are header or data
    return h == 0 ? -4 : kChunkBytes - 16;
  }
  static constexpr std::array<int8_t, 32> shuffle(int h) {
    std::array<int8_t, 32> idx{};
    for (int k = 0; k < 16; ++k) {
      const int code = 16 * h + k, byte = code * kBits / 8, bit = code * kBits % 8;
      idx[size_t(2 * (k % 8) + 16 * (k / 8))] = int8_t(byte - start(h));
      idx[size_t(2 * (k % 8) + 16 * (k / 8) + 1)] = bit + kBits > 8 ? int8_t(byte + 1 - start(h)) : int8_t(-128);
    }
    return idx;
  }
  static constexpr std::array<int16_t, 16> shift(int h) {
    std::array<int16_t, 16> s{};
    for (int k = 0; k < 16; ++k) s[size_t(k)] = int16_t((16 * h + k) * kBits % 8);
    return s;
  }
  static constexpr std::array<std::array<int8_t, 32>, 2> kShuffle = {shuffle(0), shuffle(1)};
  static constexpr std::array<std::array<int16_t, 16>, 2> kShift = {shift(0), shift(1)};

  template <int kHalf>
  static __m256i words(const uint8_t* chunk) {
    __m256i src;
    if constexpr (kBits == 2) {
      uint64_t q;
      std::memcpy(&q, chunk, 8);
      src = _mm256_set1_epi64x(int64_t(q));
    } else {
      src = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(chunk + start(kHalf))));
    }
    const __m256i w = _mm256_shuffle_epi8(src, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(kShuffle[kHalf].data())));
    return _mm256_and_si256(_mm256_srlv_epi16(w, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(kShift[kHalf].data()))),
                            _mm256_set1_epi16((1 << kBits) - 1));
  }
};

// Integer dot of one chunk's 32 codes with one q8_1 block's 32 int8 values, in 8 int32 lanes.
template <int kBits>
__m256i chunk_isum(const uint8_t* codes, const int8_t* qs) {
  if constexpr (kBits == 8) {
    return _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_loadu_si256(reinterpret_cast<const __m256i*>(codes)),
                               _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qs)));
  } else if constexpr (kBits == 4) {
    return _mm256_dpbusd_epi32(_mm256_setzero_si256(), codes4_bytes(codes),
                               _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qs)));
  } else {
    const __m256i a0 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(qs)));
    const __m256i a1 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(qs + 16)));
    const __m256i w0 = WordUnpack<kBits>::template words<0>(codes), w1 = WordUnpack<kBits>::template words<1>(codes);
    return _mm256_dpwssd_epi32(_mm256_dpwssd_epi32(_mm256_setzero_si256(), w0, a0), w1, a1);
  }
}

// 4 bits, two chunks (16 code bytes each) against two q8_1 blocks: int32
// lanes 0..7 sum the first pair, lanes 8..15 the second. Codes widen as in
// codes4_bytes, 512 bits at once.
__m512i pair_isum4(const uint8_t* c0, const uint8_t* c1, const int8_t* q0, const int8_t* q1) {
  // Adjacent chunks of one group: one load.
  const __m256i b =
      c1 == c0 + 16 ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(c0))
                    : _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(c0))),
                                              _mm_loadu_si128(reinterpret_cast<const __m128i*>(c1)), 1);
  const __m512i w = _mm512_cvtepu8_epi16(b);
  const __m512i codes = _mm512_ternarylogic_epi32(w, _mm512_slli_epi16(w, 4), _mm512_set1_epi16(0x0f0f), 0xa8);
  const __m512i y = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(q0))),
                                       _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q1)), 1);
  return _mm512_dpbusd_epi32(_mm512_setzero_si512(), codes, y);
}

// The 32 codes of one chunk as 32 int32 lanes in two zmm (for decode).
template <int kBits>
void chunk_codes_i32(const uint8_t* codes, __m512i& lo, __m512i& hi) {
  if constexpr (kBits == 8 || kBits == 4) {
    const __m256i b = kBits == 8 ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(codes)) : codes4_bytes(codes);
    lo = _mm512_cvtepu8_epi32(_mm256_castsi256_si128(b));
    hi = _mm512_cvtepu8_epi32(_mm256_extracti128_si256(b, 1));
  } else {
    lo = _mm512_cvtepu16_epi32(WordUnpack<kBits>::template words<0>(codes));
    hi = _mm512_cvtepu16_epi32(WordUnpack<kBits>::template words<1>(codes));
  }
}

}  // namespace

template <int kBits, int kGroup>
float dot_affine_q8_1(const void* w, const void* act, int64_t n) {
  check_affine<kBits, kGroup>(n);
  using Block = BlockAffine<kBits, kGroup>;
  constexpr int kChunks = kGroup / kQK;  // q8_1 blocks per group
  constexpr int kChunkBytes = kQK * kBits / 8;
  const auto* blk = static_cast<const Block*>(w);
  const auto* a = static_cast<const BlockQ8_1*>(act);
  __m256 acc[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
  auto accumulate = [&](__m256i isum, float factor, int k) {
    acc[k] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_set1_ps(factor), acc[k]);
  };
  // Batches of 8 q8_1 blocks: their [d, s] pairs and their groups' [scale, bias]
  // pairs are gathered and multiplied at once: even lanes scale * d (re-read
  // per block as memory broadcasts, the load ports being idle), odd lanes bias * s.
  constexpr int kBatch = 8;
  static_assert(kBatch % kChunks == 0);
  const __m256i act_off = _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32(sizeof(BlockQ8_1)));
  constexpr int kChunksLog2 = kChunks == 1 ? 0 : kChunks == 2 ? 1 : 2;
  const __m256i grp_off = _mm256_mullo_epi32(_mm256_srli_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), kChunksLog2),
                                             _mm256_set1_epi32(sizeof(Block)));
  __m256 side = _mm256_setzero_ps();
  alignas(32) float prod[2 * kBatch];
  __m512 acc512[2] = {_mm512_setzero_ps(), _mm512_setzero_ps()};
  const int64_t n_blocks = n / kQK;
  int64_t kb = 0;
  for (; kb + kBatch <= n_blocks; kb += kBatch) {
    const Block* g = blk + kb / kChunks;
    prefetch_ahead_l2_l1<kBatch / kChunks * sizeof(Block)>(g);
    // 256-bit on purpose, as everything in the affine dots (see WordUnpack).
    const __m256i ds = _mm256_i32gather_epi32(reinterpret_cast<const int*>(a + kb), act_off, 1);
    const __m256i sb = _mm256_i32gather_epi32(reinterpret_cast<const int*>(g), grp_off, 1);
    const __m256 p0 = _mm256_mul_ps(_mm256_cvtph_ps(_mm256_castsi256_si128(ds)), _mm256_cvtph_ps(_mm256_castsi256_si128(sb)));
    const __m256 p1 =
        _mm256_mul_ps(_mm256_cvtph_ps(_mm256_extracti128_si256(ds, 1)), _mm256_cvtph_ps(_mm256_extracti128_si256(sb, 1)));
    side = _mm256_add_ps(side, _mm256_add_ps(p0, p1));
    if constexpr (kBits == 4) {
      // Two chunks per 512-bit vector, as the legacy dots: int32 lanes 0..7
      // sum chunk k, lanes 8..15 chunk k + 1. Lane 2k of [p0 | p1] is chunk k's scale * d.
      const __m512 prods = _mm512_insertf32x8(_mm512_castps256_ps512(p0), p1, 1);
      for (int k = 0; k < kBatch; k += 2) {
        const __m512 s2 = _mm512_permutexvar_ps(
            _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_set1_epi32(2 * k)), _mm256_set1_epi32(2 * k + 2), 1), prods);
        acc512[k / 2 % 2] = _mm512_fmadd_ps(
            _mm512_cvtepi32_ps(pair_isum4(g[k / kChunks].codes + k % kChunks * kChunkBytes,
                                          g[(k + 1) / kChunks].codes + (k + 1) % kChunks * kChunkBytes, a[kb + k].qs,
                                          a[kb + k + 1].qs)),
            s2, acc512[k / 2 % 2]);
      }
    } else {
      _mm256_store_ps(prod, p0);
      _mm256_store_ps(prod + kBatch, p1);
      for (int k = 0; k < kBatch; ++k)
        accumulate(chunk_isum<kBits>(g[k / kChunks].codes + k % kChunks * kChunkBytes, a[kb + k].qs), prod[2 * k],
                   k % 2);
    }
  }
  float tail = 0.0f;
  for (; kb < n_blocks; ++kb) {
    const Block& g = blk[kb / kChunks];
    const __m128 p = _mm_mul_ps(load_fp16_pair(&a[kb]), load_fp16_pair(&g));
    tail += _mm_cvtss_f32(_mm_shuffle_ps(p, p, 1));
    accumulate(chunk_isum<kBits>(g.codes + kb % kChunks * kChunkBytes, a[kb].qs), _mm_cvtss_f32(p), 0);
  }
  // Odd lanes of side: bias * s.
  side = _mm256_blend_ps(_mm256_setzero_ps(), side, 0xaa);
  const __m512 acc_w = _mm512_add_ps(acc512[0], acc512[1]);
  acc[0] = _mm256_add_ps(acc[0], _mm256_add_ps(_mm512_castps512_ps256(acc_w), _mm512_extractf32x8_ps(acc_w, 1)));
  return hsum(_mm256_add_ps(acc[0], acc[1])) + hsum(side) + tail;
}

template <int kBits, int kGroup>
void decode_affine(const void* src, float* y, int64_t n) {
  check_affine<kBits, kGroup>(n);
  constexpr int kChunkBytes = kQK * kBits / 8;
  const auto* blk = static_cast<const BlockAffine<kBits, kGroup>*>(src);
  for (int64_t g = 0; g < n / kGroup; ++g) {
    // The scalar fp16 conversion, so that NaN payloads decode as in affine.cpp.
    const __m512 scale = _mm512_set1_ps(fp16_to_f32(blk[g].scale));
    const __m512 bias = _mm512_set1_ps(fp16_to_f32(blk[g].bias));
    for (int c = 0; c < kGroup / kQK; ++c, y += kQK) {
      __m512i lo, hi;
      chunk_codes_i32<kBits>(blk[g].codes + c * kChunkBytes, lo, hi);
      _mm512_storeu_ps(y, _mm512_add_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(lo), scale), bias));
      _mm512_storeu_ps(y + 16, _mm512_add_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(hi), scale), bias));
    }
  }
}

#define MOELAB_INSTANTIATE_AFFINE(B, G)                                   \
  template float dot_affine_q8_1<B, G>(const void*, const void*, int64_t); \
  template void decode_affine<B, G>(const void*, float*, int64_t);
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

// ---- tq3 / tq4 ------------------------------------------------------------------

namespace {

constexpr int kTq = ref::kTurboBlock;

// Value v of 16-lane group `r` is negated by the rotation when bit v of kRotMask[r] is set.
constexpr std::array<__mmask16, 8> kRotMask = [] {
  std::array<__mmask16, 8> m{};
  for (int r = 0; r < 8; ++r) m[size_t(r)] = __mmask16(hadamard::kSignBits[size_t(r / 4)] >> (16 * (r % 4)));
  return m;
}();

__m512 flip_sign(__m512 v, __mmask16 k) {
  return _mm512_mask_xor_ps(v, k, v, _mm512_castsi512_ps(_mm512_set1_epi32(int(0x80000000u))));
}

// tq3 codebook values (unscaled) of the 16-lane group r: magnitudes from a
// broadcast 32-bit word of `mags` shifted per lane, permuted from the 4-level
// table of every 128-bit lane; signs from 16 bits of `signs` as a mask.
__m512 tq3_values(const BlockTq3& b, int r, __m512 table4) {
  const __m512i kShift = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  uint32_t m;
  std::memcpy(&m, b.mags + 4 * r, 4);
  uint16_t s;
  std::memcpy(&s, b.signs + 2 * r, 2);
  const __m512i idx = _mm512_srlv_epi32(_mm512_set1_epi32(int(m)), kShift);
  return flip_sign(_mm512_permutevar_ps(table4, idx), __mmask16(s));
}

__m512 tq3_table(float scale) {
  const __m128 t = _mm_mul_ps(_mm_loadu_ps(ref::kTq3Levels), _mm_set1_ps(scale));
  return _mm512_broadcast_f32x4(t);
}

// tq4: codes sign << 3 | magnitude index into a 16-entry table [+m0..+m7, -m0..-m7].
__m512 tq4_table(float scale) {
  const __m256 pos = _mm256_mul_ps(_mm256_loadu_ps(ref::kTq4Levels), _mm256_set1_ps(scale));
  const __m256 neg = _mm256_xor_ps(pos, _mm256_set1_ps(-0.0f));
  return _mm512_insertf32x8(_mm512_castps256_ps512(pos), neg, 1);
}

// hadamard::fwht on 8 registers of 16 floats, same stages and butterflies.
void fwht(__m512* v) {
  for (int r = 0; r < 8; ++r) {
    __m512 x = v[r];
    __m512 t = _mm512_permute_ps(x, 0xb1);  // span 1
    x = _mm512_mask_blend_ps(0xaaaa, _mm512_add_ps(x, t), _mm512_sub_ps(t, x));
    t = _mm512_permute_ps(x, 0x4e);  // span 2
    x = _mm512_mask_blend_ps(0xcccc, _mm512_add_ps(x, t), _mm512_sub_ps(t, x));
    t = _mm512_shuffle_f32x4(x, x, 0xb1);  // span 4: swap adjacent 128-bit lanes
    x = _mm512_mask_blend_ps(0xf0f0, _mm512_add_ps(x, t), _mm512_sub_ps(t, x));
    t = _mm512_shuffle_f32x4(x, x, 0x4e);  // span 8: swap 256-bit halves
    v[r] = _mm512_mask_blend_ps(0xff00, _mm512_add_ps(x, t), _mm512_sub_ps(t, x));
  }
  for (int h = 1; h < 8; h *= 2)  // spans 16, 32, 64
    for (int i = 0; i < 8; i += 2 * h)
      for (int j = i; j < i + h; ++j) {
        const __m512 a = v[j], b = v[j + h];
        v[j] = _mm512_add_ps(a, b);
        v[j + h] = _mm512_sub_ps(a, b);
      }
}

// y = sign_D * (H c * k), the tail of every tq decode.
void finish_decode(__m512* v, float scale, float* y) {
  fwht(v);
  const __m512 k = _mm512_set1_ps(scale * hadamard::kInvSqrtBlock);
  for (int r = 0; r < 8; ++r) _mm512_storeu_ps(y + 16 * r, flip_sign(_mm512_mul_ps(v[r], k), kRotMask[size_t(r)]));
}

}  // namespace

float dot_tq3_rot128(const void* w, const void* act, int64_t n) {
  check_row("tq3", n, kTq);
  const auto* blk = static_cast<const BlockTq3*>(w);
  const auto* x = static_cast<const float*>(act);
  __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
  for (int64_t b = 0; b < n / kTq; ++b, x += kTq) {
    prefetch_ahead<sizeof(BlockTq3)>(&blk[b]);
    const __m512 table = tq3_table(_cvtsh_ss(blk[b].scale));
    for (int r = 0; r < 8; ++r)
      acc[r % 4] = _mm512_fmadd_ps(tq3_values(blk[b], r, table), _mm512_loadu_ps(x + 16 * r), acc[r % 4]);
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3])));
}

float dot_tq4_rot128(const void* w, const void* act, int64_t n) {
  check_row("tq4", n, kTq);
  const auto* blk = static_cast<const BlockTq4*>(w);
  const auto* x = static_cast<const float*>(act);
  __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
  for (int64_t b = 0; b < n / kTq; ++b, x += kTq) {
    prefetch_ahead<sizeof(BlockTq4)>(&blk[b]);
    const __m512 table = tq4_table(_cvtsh_ss(blk[b].scale));
    const __m512i raw = _mm512_loadu_si512(blk[b].codes);  // lane j: the 8 nibbles of values j, j + 16, ...
    for (int r = 0; r < 8; ++r) {
      const __m512i idx = _mm512_srlv_epi32(raw, _mm512_set1_epi32(4 * r));
      acc[r % 4] = _mm512_fmadd_ps(_mm512_permutexvar_ps(idx, table), _mm512_loadu_ps(x + 16 * r), acc[r % 4]);
    }
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3])));
}

void decode_tq3(const void* src, float* y, int64_t n) {
  check_row("tq3", n, kTq);
  const auto* blk = static_cast<const BlockTq3*>(src);
  const __m512 table = tq3_table(1.0f);
  __m512 v[8];
  for (int64_t b = 0; b < n / kTq; ++b, y += kTq) {
    for (int r = 0; r < 8; ++r) v[r] = tq3_values(blk[b], r, table);
    finish_decode(v, fp16_to_f32(blk[b].scale), y);
  }
}

void decode_tq4(const void* src, float* y, int64_t n) {
  check_row("tq4", n, kTq);
  const auto* blk = static_cast<const BlockTq4*>(src);
  const __m512 table = tq4_table(1.0f);
  __m512 v[8];
  for (int64_t b = 0; b < n / kTq; ++b, y += kTq) {
    const __m512i raw = _mm512_loadu_si512(blk[b].codes);
    for (int r = 0; r < 8; ++r) v[r] = _mm512_permutexvar_ps(_mm512_srlv_epi32(raw, _mm512_set1_epi32(4 * r)), table);
    finish_decode(v, fp16_to_f32(blk[b].scale), y);
  }
}

}  // namespace moelab::quant::avx512
