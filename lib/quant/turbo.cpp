// Scalar reference of the TurboQuant-style weight codecs tq3 / tq4 and of the
// rot128 activation codec.
//
// Per 128-value block: rotate with R = H D / sqrt(128) (hadamard.h), which
// makes the block close to Gaussian whatever the source distribution, then
// store one fp16 scale s and per value a code c from a fixed Lloyd-Max
// codebook for N(0, 1): the rotated value is approximated by s * level[c].
// The scale is the least-squares one for the chosen codes, found by a few
// Lloyd rounds on the scale alone (codes for a scale, scale for the codes),
// starting from the block RMS; each candidate is scored with the fp16 scale it
// would store. Since R is orthonormal, the squared error in the rotated domain
// is the squared error of the decoded weights.
//
// decode: x = R^T (s * level[c]) computed as sign_D * (H level[c] * (s / sqrt(128))):
// the transform runs on the exact codebook values and one multiply follows,
// an order SIMD decoders reproduce bit for bit.
// dot with rot128 activations xr = R x: sum over blocks of s * sum(level[c] * xr).
//
// importance is ignored: a per-value weight does not survive the rotation.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "core/error.h"
#include "core/fp16.h"
#include "quant/hadamard.h"
#include "quant/kernels_ref.h"

#pragma GCC optimize("fp-contract=off")

namespace moelab::quant::ref {

// Lloyd-Max quantizers of N(0, 1), positive halves (the negative half mirrors
// them). Computed offline in double precision by Lloyd's algorithm: start from
// 2^bits levels spread uniformly over [-3, 3], then alternate thresholds =
// midpoints of adjacent levels and levels = conditional means
// E[X | a < X < b] = (phi(a) - phi(b)) / (Phi(b) - Phi(a)) until no level moves
// by 1e-15. Their mean squared errors are 0.0345478 (8 levels) and 0.0095010
// (16 levels). tests/quant/test_turbo.cpp re-derives them.
const float kTq3Levels[4] = {0.245094179f, 0.756005281f, 1.34390928f, 2.1519457f};
const float kTq4Levels[8] = {0.12839503f, 0.388048299f, 0.656759119f, 0.942340456f,
                             1.2562312f,  1.61804639f,  2.06901723f,  2.73258957f};

namespace {

constexpr int kBlock = kTurboBlock;
static_assert(kBlock == hadamard::kBlock);

void check_row(const char* codec, const char* fn, const void* a, const void* b, int64_t n) {
  if (n < 0 || n % kBlock != 0)
    throw Error(std::string(codec) + " " + fn + ": row length " + std::to_string(n) +
                " is not a multiple of the block size " + std::to_string(kBlock));
  if (n > 0 && (a == nullptr || b == nullptr)) throw Error(std::string(codec) + " " + fn + ": null buffer");
}

// Sign-magnitude code: bit kMagBits is the sign, the low bits index `levels`.
template <int kLevels>
uint8_t nearest_code(float v, const float* levels) {
  const float a = std::fabs(v);
  int m = 0;
  while (m + 1 < kLevels && a > 0.5f * (levels[m] + levels[m + 1])) ++m;
  constexpr int kMagBits = kLevels == 4 ? 2 : 3;
  return uint8_t(m | (v < 0.0f ? 1 << kMagBits : 0));
}

template <int kLevels>
float code_value(uint8_t c, const float* levels) {
  constexpr int kMagBits = kLevels == 4 ? 2 : 3;
  const float m = levels[c & ((1 << kMagBits) - 1)];
  return (c >> kMagBits) & 1 ? -m : m;
}

// Codes and the fp16 scale for one rotated block y of n <= kMaxRotated values
// (kBlock for the weight codecs; a KV head row for lib/kv).
constexpr int kMaxRotated = 512;
template <int kLevels>
void quantize_rotated(const float* y, int n, const float* levels, uint8_t* codes, fp16_t& scale_out) {
  constexpr int kRounds = 8;
  double energy = 0.0;
  for (int i = 0; i < n; ++i) energy += double(y[i]) * y[i];
  if (!(energy > 0.0) || !std::isfinite(energy)) {
    std::fill(codes, codes + n, uint8_t(0));
    scale_out = f32_to_fp16(0.0f);
    return;
  }
  uint8_t q[kMaxRotated];
  double best = HUGE_VAL;
  float s = float(std::sqrt(energy / n));  // N(0, 1) codebook: start at the RMS
  for (int round = 0; round < kRounds; ++round) {
    const fp16_t s16 = f32_to_fp16(s);
    const float stored = fp16_to_f32(s16);
    if (!(stored > 0.0f) || !std::isfinite(stored)) break;
    const float inv = 1.0f / stored;
    double err = 0.0, cy = 0.0, cc = 0.0;
    for (int i = 0; i < n; ++i) {
      q[i] = nearest_code<kLevels>(y[i] * inv, levels);
      const double c = code_value<kLevels>(q[i], levels);
      const double e = double(y[i]) - double(stored) * c;
      err += e * e;
      cy += c * y[i];
      cc += c * c;
    }
    if (err < best) {
      best = err;
      scale_out = s16;
      std::memcpy(codes, q, size_t(n));
    }
    const float next = float(cy / cc);  // least-squares scale for these codes
    if (f32_to_fp16(next) == s16) break;  // fixed point
    s = next;
  }
  if (best == HUGE_VAL) {  // scale out of fp16 range: keep the codes of the RMS start, saturate
    for (int i = 0; i < n; ++i) codes[i] = nearest_code<kLevels>(y[i] / s, levels);
    scale_out = f32_to_fp16(s);
    return;
  }
  // The rounds may stop short of the fixed point; for the codes kept, the
  // least-squares scale is never worse, so store that.
  double cy = 0.0, cc = 0.0;
  for (int i = 0; i < n; ++i) {
    const double c = code_value<kLevels>(codes[i], levels);
    cy += c * y[i];
    cc += c * c;
  }
  const fp16_t s16 = f32_to_fp16(float(cy / cc));
  const double stored = fp16_to_f32(s16);
  double err = 0.0;
  for (int i = 0; i < n; ++i) {
    const double e = double(y[i]) - stored * code_value<kLevels>(codes[i], levels);
    err += e * e;
  }
  if (err <= best) scale_out = s16;
}

// x = R^T (s * level[c]) as described at the top; c: [kBlock] codes.
template <int kLevels>
void decode_block(const uint8_t* c, float scale, const float* levels, float* y) {
  for (int i = 0; i < kBlock; ++i) y[i] = code_value<kLevels>(c[i], levels);
  hadamard::fwht(y);
  const float k = scale * hadamard::kInvSqrtBlock;
  for (int i = 0; i < kBlock; ++i) {
    const float v = y[i] * k;
    y[i] = hadamard::negated(i) ? -v : v;
  }
}

// ---- block layouts (see kernels_ref.h) ----------------------------------------

void pack_tq3(const uint8_t* q, BlockTq3& b) {
  std::memset(b.signs, 0, sizeof(b.signs));
  std::memset(b.mags, 0, sizeof(b.mags));
  for (int i = 0; i < kBlock; ++i) {
    b.signs[i / 8] = uint8_t(b.signs[i / 8] | ((q[i] >> 2) & 1) << (i % 8));
    b.mags[i / 4] = uint8_t(b.mags[i / 4] | (q[i] & 3) << (2 * (i % 4)));
  }
}

void unpack_tq3(const BlockTq3& b, uint8_t* q) {
  for (int i = 0; i < kBlock; ++i)
    q[i] = uint8_t(((b.mags[i / 4] >> (2 * (i % 4))) & 3) | ((b.signs[i / 8] >> (i % 8)) & 1) << 2);
}

// Value i: word i % 16, nibble i / 16.
int tq4_byte(int i) { return 4 * (i % 16) + (i / 16) / 2; }
int tq4_shift(int i) { return 4 * ((i / 16) % 2); }

void pack_tq4(const uint8_t* q, BlockTq4& b) {
  std::memset(b.codes, 0, sizeof(b.codes));
  for (int i = 0; i < kBlock; ++i) b.codes[tq4_byte(i)] = uint8_t(b.codes[tq4_byte(i)] | q[i] << tq4_shift(i));
}

void unpack_tq4(const BlockTq4& b, uint8_t* q) {
  for (int i = 0; i < kBlock; ++i) q[i] = (b.codes[tq4_byte(i)] >> tq4_shift(i)) & 0xf;
}

template <typename Block, int kLevels>
void encode_tq(const char* codec, const float* x, void* dst, int64_t n, const float* levels,
               void (*pack)(const uint8_t*, Block&)) {
  check_row(codec, "encode", x, dst, n);
  auto* blocks = static_cast<Block*>(dst);
  float y[kBlock];
  uint8_t q[kBlock];
  for (int64_t b = 0; b < n / kBlock; ++b) {
    hadamard::rotate(x + b * kBlock, y);
    quantize_rotated<kLevels>(y, kBlock, levels, q, blocks[b].scale);
    pack(q, blocks[b]);
  }
}

template <typename Block, int kLevels>
void decode_tq(const char* codec, const void* src, float* y, int64_t n, const float* levels,
               void (*unpack)(const Block&, uint8_t*)) {
  check_row(codec, "decode", src, y, n);
  const auto* blocks = static_cast<const Block*>(src);
  uint8_t q[kBlock];
  for (int64_t b = 0; b < n / kBlock; ++b) {
    unpack(blocks[b], q);
    decode_block<kLevels>(q, fp16_to_f32(blocks[b].scale), levels, y + b * kBlock);
  }
}

template <typename Block, int kLevels>
float dot_tq(const char* codec, const void* w, const void* act, int64_t n, const float* levels,
             void (*unpack)(const Block&, uint8_t*)) {
  check_row(codec, "dot", w, act, n);
  const auto* blocks = static_cast<const Block*>(w);
  const auto* xr = static_cast<const float*>(act);
  uint8_t q[kBlock];
  float sum = 0.0f;
  for (int64_t b = 0; b < n / kBlock; ++b, xr += kBlock) {
    unpack(blocks[b], q);
    float s = 0.0f;
    for (int i = 0; i < kBlock; ++i) s += code_value<kLevels>(q[i], levels) * xr[i];
    sum += fp16_to_f32(blocks[b].scale) * s;
  }
  return sum;
}

}  // namespace

void tq3_quantize_rotated(const float* y, int64_t n, uint8_t* codes, fp16_t& scale) {
  if (n <= 0 || n > kMaxRotated) throw Error("tq3: rotated row of " + std::to_string(n) + " values (1 .. 512 supported)");
  quantize_rotated<4>(y, int(n), kTq3Levels, codes, scale);
}

void tq4_quantize_rotated(const float* y, int64_t n, uint8_t* codes, fp16_t& scale) {
  if (n <= 0 || n > kMaxRotated) throw Error("tq4: rotated row of " + std::to_string(n) + " values (1 .. 512 supported)");
  quantize_rotated<8>(y, int(n), kTq4Levels, codes, scale);
}

void encode_tq3(const float* x, void* dst, int64_t n, const float*) {
  encode_tq<BlockTq3, 4>("tq3", x, dst, n, kTq3Levels, pack_tq3);
}
void decode_tq3(const void* src, float* y, int64_t n) {
  decode_tq<BlockTq3, 4>("tq3", src, y, n, kTq3Levels, unpack_tq3);
}
float dot_tq3_rot128(const void* w, const void* act, int64_t n) {
  return dot_tq<BlockTq3, 4>("tq3", w, act, n, kTq3Levels, unpack_tq3);
}

void encode_tq4(const float* x, void* dst, int64_t n, const float*) {
  encode_tq<BlockTq4, 8>("tq4", x, dst, n, kTq4Levels, pack_tq4);
}
void decode_tq4(const void* src, float* y, int64_t n) {
  decode_tq<BlockTq4, 8>("tq4", src, y, n, kTq4Levels, unpack_tq4);
}
float dot_tq4_rot128(const void* w, const void* act, int64_t n) {
  return dot_tq<BlockTq4, 8>("tq4", w, act, n, kTq4Levels, unpack_tq4);
}

void encode_rot128(const float* x, void* dst, int64_t n, const float*) {
  check_row("rot128", "encode", x, dst, n);
  auto* y = static_cast<float*>(dst);
  for (int64_t b = 0; b < n; b += kBlock) hadamard::rotate(x + b, y + b);
}

void decode_rot128(const void* src, float* y, int64_t n) {
  check_row("rot128", "decode", src, y, n);
  const auto* x = static_cast<const float*>(src);
  for (int64_t b = 0; b < n; b += kBlock) hadamard::unrotate(x + b, y + b);
}

}  // namespace moelab::quant::ref
