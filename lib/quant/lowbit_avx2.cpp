// AVX2 (+FMA, F16C) kernels of the non-GGUF weight codecs: affine groups (all
// bit widths) and tq3/tq4. Scalar twins: affine.cpp, turbo.cpp.
//
//   affine dot, per 32-value q8_1 block: unpack the codes, integer dot with
//     the int8 activations (vpmaddubsw on code bytes for 4 bits, on nibble
//     halves for 8 bits so nothing saturates; vpmaddwd on 16-bit codes for 2,
//     3, 5, 6 bits), then acc += float(isum) * scale * d; bias * s on the side.
//     The fp16 scales of 8 blocks are gathered and converted together.
//   affine decode: same unpack, then float(q) * scale + bias -- bit-identical.
//   tq dot: magnitudes looked up with vpermilps/vpermps from a table scaled
//     by the block scale, signs moved to bit 31 and xor-ed in, fused
//     multiply-add with the rotated f32 activations.
//   tq decode: codebook values, hadamard::fwht's butterflies in its order,
//     one multiply, sign flips -- bit-identical.
#include <immintrin.h>

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

namespace moelab::quant::avx2 {
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
// 4 KiB pages; prefetching this far ahead (running into the next rows, which
// a GEMV reads next) keeps enough lines in flight to reach DRAM bandwidth.
constexpr int kPrefetchBytes = 2048;

template <size_t kBlockBytes>
void prefetch_ahead(const void* block) {
  const char* p = static_cast<const char*>(block) + kPrefetchBytes;
  for (size_t off = 0; off < kBlockBytes; off += 64) _mm_prefetch(p + off, _MM_HINT_T0);
  if constexpr (kBlockBytes % 64 != 0) _mm_prefetch(p + kBlockBytes - 1, _MM_HINT_T0);
}

__m128 load_fp16_pair(const void* p) { return _mm_cvtph_ps(_mm_loadu_si32(p)); }

__m256i load256(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }
__m128i load128(const void* p) { return _mm_loadu_si128(static_cast<const __m128i*>(p)); }

// ---- affine: codes of one 32-value chunk ------------------------------------------

// 4 bits: 16 bytes -> 32 code bytes in order (byte b widens to b | b << 4,
// the mask keeps the low nibble in byte 0 and the high nibble in byte 1).
__m256i codes4_bytes(const uint8_t* p) {
  const __m256i w = _mm256_cvtepu8_epi16(load128(p));
  return _mm256_and_si256(_mm256_or_si256(w, _mm256_slli_epi16(w, 4)), _mm256_set1_epi16(0x0f0f));
}

// 2, 3, 5, 6 bits: half h (codes 16h .. 16h + 15) of a chunk as 16-bit words.
// The 16 loaded bytes start at chunk offset kStart[h] (2 bits: the chunk's 8
// bytes broadcast as a qword instead); a byte shuffle gathers each code's two
// stream bytes into its word, a multiply by 2^(16 - shift - bits) moves the
// code to the top and a logical shift brings it down clean.
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
  static constexpr std::array<int16_t, 16> multiplier(int h) {
    std::array<int16_t, 16> m{};
    for (int k = 0; k < 16; ++k) m[size_t(k)] = int16_t(1 << (16 - (16 * h + k) * kBits % 8 - kBits));
    return m;
  }
  static constexpr std::array<std::array<int8_t, 32>, 2> kShuffle = {shuffle(0), shuffle(1)};
  static constexpr std::array<std::array<int16_t, 16>, 2> kMultiplier = {multiplier(0), multiplier(1)};

  template <int kHalf>
  static __m256i words(const uint8_t* chunk) {
    __m256i src;
    if constexpr (kBits == 2) {
      uint64_t q;
      std::memcpy(&q, chunk, 8);
      src = _mm256_set1_epi64x(int64_t(q));
    } else {
      src = _mm256_broadcastsi128_si256(load128(chunk + start(kHalf)));
    }
    const __m256i w = _mm256_shuffle_epi8(src, load256(kShuffle[kHalf].data()));
    return _mm256_srli_epi16(_mm256_mullo_epi16(w, load256(kMultiplier[kHalf].data())), 16 - kBits);
  }
};

// Integer dot of one chunk's 32 codes with a q8_1 block's 32 int8 values, in 8 int32 lanes.
template <int kBits>
__m256i chunk_isum(const uint8_t* codes, const int8_t* qs) {
  const __m256i ones = _mm256_set1_epi16(1);
  if constexpr (kBits == 8) {
    // u8 x s8 pairs would saturate int16; split the codes into nibbles: q = 16 hi + lo.
    const __m256i q = load256(codes), a = load256(qs), nib = _mm256_set1_epi8(0x0f);
    const __m256i lo = _mm256_maddubs_epi16(_mm256_and_si256(q, nib), a);
    const __m256i hi = _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(q, 4), nib), a);
    return _mm256_add_epi32(_mm256_madd_epi16(lo, ones), _mm256_madd_epi16(hi, _mm256_set1_epi16(16)));
  } else if constexpr (kBits == 4) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(codes4_bytes(codes), load256(qs)), ones);
  } else {
    const __m256i a0 = _mm256_cvtepi8_epi16(load128(qs)), a1 = _mm256_cvtepi8_epi16(load128(qs + 16));
    return _mm256_add_epi32(_mm256_madd_epi16(WordUnpack<kBits>::template words<0>(codes), a0),
                            _mm256_madd_epi16(WordUnpack<kBits>::template words<1>(codes), a1));
  }
}

// The 32 codes of one chunk as int32, 8 per register.
template <int kBits>
void chunk_codes_i32(const uint8_t* codes, __m256i* out) {
  if constexpr (kBits == 8 || kBits == 4) {
    const __m256i b = kBits == 8 ? load256(codes) : codes4_bytes(codes);
    const __m128i lo = _mm256_castsi256_si128(b), hi = _mm256_extracti128_si256(b, 1);
    out[0] = _mm256_cvtepu8_epi32(lo);
    out[1] = _mm256_cvtepu8_epi32(_mm_srli_si128(lo, 8));
    out[2] = _mm256_cvtepu8_epi32(hi);
    out[3] = _mm256_cvtepu8_epi32(_mm_srli_si128(hi, 8));
  } else {
    const __m256i w0 = WordUnpack<kBits>::template words<0>(codes);
    const __m256i w1 = WordUnpack<kBits>::template words<1>(codes);
    out[0] = _mm256_cvtepu16_epi32(_mm256_castsi256_si128(w0));
    out[1] = _mm256_cvtepu16_epi32(_mm256_extracti128_si256(w0, 1));
    out[2] = _mm256_cvtepu16_epi32(_mm256_castsi256_si128(w1));
    out[3] = _mm256_cvtepu16_epi32(_mm256_extracti128_si256(w1, 1));
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
  constexpr int kChunksLog2 = kChunks == 1 ? 0 : kChunks == 2 ? 1 : 2;
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const __m256i act_off = _mm256_mullo_epi32(lane, _mm256_set1_epi32(sizeof(BlockQ8_1)));
  const __m256i grp_off = _mm256_mullo_epi32(_mm256_srli_epi32(lane, kChunksLog2), _mm256_set1_epi32(sizeof(Block)));
  __m256 side = _mm256_setzero_ps();
  alignas(32) float prod[2 * kBatch];
  const int64_t n_blocks = n / kQK;
  int64_t kb = 0;
  for (; kb + kBatch <= n_blocks; kb += kBatch) {
    const Block* g = blk + kb / kChunks;
    prefetch_ahead<kBatch / kChunks * sizeof(Block)>(g);
    const __m256i ds = _mm256_i32gather_epi32(reinterpret_cast<const int*>(a + kb), act_off, 1);
    const __m256i sb = _mm256_i32gather_epi32(reinterpret_cast<const int*>(g), grp_off, 1);
    const __m256 p0 = _mm256_mul_ps(_mm256_cvtph_ps(_mm256_castsi256_si128(ds)), _mm256_cvtph_ps(_mm256_castsi256_si128(sb)));
    const __m256 p1 =
        _mm256_mul_ps(_mm256_cvtph_ps(_mm256_extracti128_si256(ds, 1)), _mm256_cvtph_ps(_mm256_extracti128_si256(sb, 1)));
    side = _mm256_add_ps(side, _mm256_add_ps(p0, p1));
    _mm256_store_ps(prod, p0);
    _mm256_store_ps(prod + kBatch, p1);
    for (int k = 0; k < kBatch; ++k)
      accumulate(chunk_isum<kBits>(g[k / kChunks].codes + k % kChunks * kChunkBytes, a[kb + k].qs), prod[2 * k], k % 2);
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
  return hsum(_mm256_add_ps(acc[0], acc[1])) + hsum(side) + tail;
}

template <int kBits, int kGroup>
void decode_affine(const void* src, float* y, int64_t n) {
  check_affine<kBits, kGroup>(n);
  constexpr int kChunkBytes = kQK * kBits / 8;
  const auto* blk = static_cast<const BlockAffine<kBits, kGroup>*>(src);
  for (int64_t g = 0; g < n / kGroup; ++g) {
    // The scalar fp16 conversion, so that NaN payloads decode as in affine.cpp.
    const __m256 scale = _mm256_set1_ps(fp16_to_f32(blk[g].scale));
    const __m256 bias = _mm256_set1_ps(fp16_to_f32(blk[g].bias));
    for (int c = 0; c < kGroup / kQK; ++c, y += kQK) {
      __m256i q[4];
      chunk_codes_i32<kBits>(blk[g].codes + c * kChunkBytes, q);
      for (int k = 0; k < 4; ++k)
        _mm256_storeu_ps(y + 8 * k, _mm256_add_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(q[k]), scale), bias));
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

// 0x80000000 where the rotation negates value i, else 0.
alignas(32) constexpr std::array<uint32_t, kTq> kRotSign = [] {
  std::array<uint32_t, kTq> s{};
  for (int i = 0; i < kTq; ++i) s[size_t(i)] = hadamard::negated(i) ? 0x80000000u : 0u;
  return s;
}();

__m256 sign_bit() { return _mm256_castsi256_ps(_mm256_set1_epi32(int(0x80000000u))); }

// tq3 values (unscaled by the block scale, i.e. from `table4`) of values 8h .. 8h + 7,
// h = 0..15: magnitudes from the 32-bit word of `mags` holding values 16 (h / 2) ..,
// signs from the 16-bit word of `signs`, moved to bit 31 lane by lane.
template <int kHalf>
__m256 tq3_values(uint32_t mags, uint32_t signs, __m256 table4) {
  const __m256i mshift = _mm256_setr_epi32(16 * kHalf + 0, 16 * kHalf + 2, 16 * kHalf + 4, 16 * kHalf + 6,
                                           16 * kHalf + 8, 16 * kHalf + 10, 16 * kHalf + 12, 16 * kHalf + 14);
  const __m256i sshift = _mm256_setr_epi32(31 - 8 * kHalf, 30 - 8 * kHalf, 29 - 8 * kHalf, 28 - 8 * kHalf,
                                           27 - 8 * kHalf, 26 - 8 * kHalf, 25 - 8 * kHalf, 24 - 8 * kHalf);
  const __m256 m = _mm256_permutevar_ps(table4, _mm256_srlv_epi32(_mm256_set1_epi32(int(mags)), mshift));
  const __m256 s = _mm256_castsi256_ps(_mm256_sllv_epi32(_mm256_set1_epi32(int(signs)), sshift));
  return _mm256_xor_ps(m, _mm256_and_ps(s, sign_bit()));
}

// tq4 values of 8 lanes from `raw` (8 words of nibbles): nibble r of each word.
// vpermps reads the magnitude from bits 2..0; bit 3, the sign, goes to bit 31.
__m256 tq4_values(__m256i raw, int r, __m256 table8) {
  const __m256 m = _mm256_permutevar8x32_ps(table8, _mm256_srlv_epi32(raw, _mm256_set1_epi32(4 * r)));
  const __m256 s = _mm256_castsi256_ps(_mm256_sllv_epi32(raw, _mm256_set1_epi32(28 - 4 * r)));
  return _mm256_xor_ps(m, _mm256_and_ps(s, sign_bit()));
}

uint32_t load_u32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
uint32_t load_u16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}

// hadamard::fwht on 16 registers of 8 floats, same stages and butterflies.
void fwht(__m256* v) {
  for (int r = 0; r < 16; ++r) {
    __m256 x = v[r];
    __m256 t = _mm256_permute_ps(x, 0xb1);  // span 1
    x = _mm256_blend_ps(_mm256_add_ps(x, t), _mm256_sub_ps(t, x), 0xaa);
    t = _mm256_permute_ps(x, 0x4e);  // span 2
    x = _mm256_blend_ps(_mm256_add_ps(x, t), _mm256_sub_ps(t, x), 0xcc);
    t = _mm256_permute2f128_ps(x, x, 0x01);  // span 4
    v[r] = _mm256_blend_ps(_mm256_add_ps(x, t), _mm256_sub_ps(t, x), 0xf0);
  }
  for (int h = 1; h < 16; h *= 2)  // spans 8 .. 64
    for (int i = 0; i < 16; i += 2 * h)
      for (int j = i; j < i + h; ++j) {
        const __m256 a = v[j], b = v[j + h];
        v[j] = _mm256_add_ps(a, b);
        v[j + h] = _mm256_sub_ps(a, b);
      }
}

void finish_decode(__m256* v, float scale, float* y) {
  fwht(v);
  const __m256 k = _mm256_set1_ps(scale * hadamard::kInvSqrtBlock);
  for (int r = 0; r < 16; ++r)
    _mm256_storeu_ps(y + 8 * r, _mm256_xor_ps(_mm256_mul_ps(v[r], k), _mm256_load_ps(reinterpret_cast<const float*>(
                                                                          kRotSign.data() + 8 * r))));
}

__m256 tq3_table(float scale) {
  const __m128 t = _mm_mul_ps(_mm_loadu_ps(ref::kTq3Levels), _mm_set1_ps(scale));
  return _mm256_set_m128(t, t);
}

__m256 tq4_table(float scale) { return _mm256_mul_ps(_mm256_loadu_ps(ref::kTq4Levels), _mm256_set1_ps(scale)); }

}  // namespace

float dot_tq3_rot128(const void* w, const void* act, int64_t n) {
  check_row("tq3", n, kTq);
  const auto* blk = static_cast<const BlockTq3*>(w);
  const auto* x = static_cast<const float*>(act);
  __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
  for (int64_t b = 0; b < n / kTq; ++b, x += kTq) {
    prefetch_ahead<sizeof(BlockTq3)>(&blk[b]);
    const __m256 table = tq3_table(_cvtsh_ss(blk[b].scale));
    for (int r = 0; r < 8; ++r) {
      const uint32_t mags = load_u32(blk[b].mags + 4 * r), signs = load_u16(blk[b].signs + 2 * r);
      acc[(2 * r) % 4] = _mm256_fmadd_ps(tq3_values<0>(mags, signs, table), _mm256_loadu_ps(x + 16 * r), acc[(2 * r) % 4]);
      acc[(2 * r + 1) % 4] =
          _mm256_fmadd_ps(tq3_values<1>(mags, signs, table), _mm256_loadu_ps(x + 16 * r + 8), acc[(2 * r + 1) % 4]);
    }
  }
  return hsum(_mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3])));
}

float dot_tq4_rot128(const void* w, const void* act, int64_t n) {
  check_row("tq4", n, kTq);
  const auto* blk = static_cast<const BlockTq4*>(w);
  const auto* x = static_cast<const float*>(act);
  __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
  for (int64_t b = 0; b < n / kTq; ++b, x += kTq) {
    prefetch_ahead<sizeof(BlockTq4)>(&blk[b]);
    const __m256 table = tq4_table(_cvtsh_ss(blk[b].scale));
    const __m256i raw_lo = load256(blk[b].codes), raw_hi = load256(blk[b].codes + 32);  // words 0..7, 8..15
    for (int r = 0; r < 8; ++r) {
      acc[(2 * r) % 4] = _mm256_fmadd_ps(tq4_values(raw_lo, r, table), _mm256_loadu_ps(x + 16 * r), acc[(2 * r) % 4]);
      acc[(2 * r + 1) % 4] =
          _mm256_fmadd_ps(tq4_values(raw_hi, r, table), _mm256_loadu_ps(x + 16 * r + 8), acc[(2 * r + 1) % 4]);
    }
  }
  return hsum(_mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3])));
}

void decode_tq3(const void* src, float* y, int64_t n) {
  check_row("tq3", n, kTq);
  const auto* blk = static_cast<const BlockTq3*>(src);
  const __m256 table = tq3_table(1.0f);
  __m256 v[16];
  for (int64_t b = 0; b < n / kTq; ++b, y += kTq) {
    for (int r = 0; r < 8; ++r) {
      const uint32_t mags = load_u32(blk[b].mags + 4 * r), signs = load_u16(blk[b].signs + 2 * r);
      v[2 * r] = tq3_values<0>(mags, signs, table);
      v[2 * r + 1] = tq3_values<1>(mags, signs, table);
    }
    finish_decode(v, fp16_to_f32(blk[b].scale), y);
  }
}

void decode_tq4(const void* src, float* y, int64_t n) {
  check_row("tq4", n, kTq);
  const auto* blk = static_cast<const BlockTq4*>(src);
  const __m256 table = tq4_table(1.0f);
  __m256 v[16];
  for (int64_t b = 0; b < n / kTq; ++b, y += kTq) {
    const __m256i raw_lo = load256(blk[b].codes), raw_hi = load256(blk[b].codes + 32);
    for (int r = 0; r < 8; ++r) {
      v[2 * r] = tq4_values(raw_lo, r, table);
      v[2 * r + 1] = tq4_values(raw_hi, r, table);
    }
    finish_decode(v, fp16_to_f32(blk[b].scale), y);
  }
}

}  // namespace moelab::quant::avx2
