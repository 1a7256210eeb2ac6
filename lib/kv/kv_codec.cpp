// KV row codecs. The tq3 codec follows TurboQuant's inner-product quantizer:
//   A. Zandieh, M. Daliri, M. Hadian, V. Mirrokni, "TurboQuant: Online Vector
//      Quantization with Near-optimal Distortion Rate", arXiv:2504.19874 (2025):
//      random rotation, then per-coordinate Lloyd-Max codes for the (near
//      Gaussian) rotated coordinates; for inner products, a 1-bit QJL sketch of
//      the residual makes the estimate unbiased.
//   A. Zandieh, M. Daliri, I. Han, "QJL: 1-Bit Quantized JL Transform for KV
//      Cache Quantization with Zero Overhead", arXiv:2406.03482 (2024):
//      for s ~ N(0, I), E[sign(s.r) (s.q)] = sqrt(2/pi) <q, r> / |r|, so
//      <q, r> ~= |r| sqrt(pi/2) / m * sum_j sign(S r)_j (S q)_j is unbiased.
//
// tq3 row of d values (d a power of two in [16, 128], or a multiple of 128 up to 512):
//   keys are centred first (k - c, see centers_keys in kv_codec.h; the
//   channel mean of SmolLM2's keys holds 60-70% of their energy); tq3m and
//   tq4m keys are then weighted per channel: x = w * (k - c), scored with the
//   query q / w, so q . k is unchanged (w: KvCache::calibrate, 1 for values);
//   tq3 codes x = k - c and gives w to its sketch only (u = w * residual)
//   y = R x, R = H D / sqrt(b) on blocks of b = min(d, 128) (quant/hadamard.h's signs)
//   codes c_i (3 bits: sign << 2 | magnitude) and one fp16 scale s, from the tq3
//   weight codec's quantizer (quant/turbo.cpp) applied to the whole row
//   tq3 keys only: u = w * R^T (y - s L(c)) the weighted residual; fp16 |u|;
//   sketch bits sign(S u), S a fixed d x d N(0, 1) matrix; <q, r> = <q / w, u>.
//   Why the weights: the rotation spreads both the codes' error and the
//   residual u evenly over x's channels, so the score error <q / w, e> has
//   variance ~ |q / w|^2 |w * (k - c)|^2 / d (for the QJL estimate too, times
//   pi/2), smallest for w_i^2 ~ rms(q_i) / rms(k_i - c_i). LLM queries put most
//   of their energy in a few channels, centred keys far less so: the weights
//   move the bits to the channels the queries read.
// Layout: codes [3d/8] (8 codes per 3 bytes, code i at bit 3i of the little-endian
// 24-bit group) | fp16 s | keys: fp16 |u| | sketch [d/8] (bit j of byte j/8).
// d = 64: keys 36 bytes, values 26 bytes (f16: 128 each), 4.13x smaller per token.
//
// Scoring never decodes a key: the query is rotated once, and two tables turn
// each key into d/2 + d/8 lookups:
//   T[p][c_2p | c_2p+1 << 3] = L(c_2p) qr_2p + L(c_2p+1) qr_2p+1       (code pairs)
//   U[g][byte] = sum over the byte's 8 bits of (+-1) (S (q / w))_8g+b   (sketch bytes)
//   score = s * sum T + |u| sqrt(pi/2) / d * sum U
// Values are mixed in the rotated space and rotated back once per head.
//
// Scores for softmax (RowCodec::prepare_query's softmax_scale a, attention's
// 1/sqrt(d)). Softmax weighs key j by exp(a s_j); an estimate s_j + e_j with
// score error e_j of variance v_j weighs it on average by exp(a s_j + a^2 v_j / 2).
// Noise averages out over many keys, but this factor does not, and it differs
// between keys (v_j grows with the key's residual), so its pull grows with the
// context. Both corrections are rank-1 (a key factor times a query factor):
// one more score-space coordinate, no extra bytes and no extra loop.
//   tq3: the QJL term t^ estimates t = q . r with variance v = (pi/2) |q / w|^2
//   |u|^2 / d (less (q . r)^2 / d, dropped); r, spread evenly over the channels
//   by the rotation, gives t a spread P = E[t^2] ~ |q|^2 |u|^2 / sum w^2. The
//   posterior of t given t^ (Gaussian) has mean alpha t^ and variance alpha v,
//   alpha = P / (P + v), the same for every key of a query (both ~ |u|^2), so
//   E[exp(a t) | t^] = exp(a alpha t^ + a^2 alpha v / 2): the sketch's term is
//   scaled by alpha and a alpha v / 2 added. (Only subtracting a v / 2 instead,
//   which makes each exp() unbiased over the sketch's randomness, keeps the
//   sketch's full noise: it measured worse on SmolLM2 at 2K, logits cosine
//   0.9911 vs 0.9924 uncorrected vs 0.9954 for the posterior; results/kvbench_smollm2_2k.md.)
//   tq3m, tq4m: the codes are already the posterior mean (Lloyd-Max centroids);
//   the residual's variance P = |q / w|^2 s^2 D (D: the codes' distortion per
//   coordinate in units of the row scale s squared) adds a P / 2.
#include "kv/kv_codec.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <numbers>
#include <vector>

#include "core/error.h"
#include "core/fp16.h"
#include "core/random.h"
#include "quant/codec.h"
#include "quant/hadamard.h"
#include "quant/kernels_ref.h"

namespace moelab::kv {
namespace {

constexpr std::string_view kRegistryNames[] = {"f32", "f16", "q8_0", "q4_0"};
constexpr uint64_t kSketchSeed = 0x716a6c2d6b766d6cULL;  // the QJL matrix's seed ("qjl-kvml")
constexpr uint64_t kDistortionSeed = 0x6c6c6f7964ULL;      // rows measuring the codes' distortion
constexpr int64_t kMaxHeadDim = 512;

// Registry codecs: keys dotted with the query in the codec's activation type.
class RegistryRow final : public RowCodec {
 public:
  RegistryRow(const quant::Codec& codec, int64_t head_dim)
      : RowCodec(std::string(codec.name), head_dim), codec_(codec), act_(quant::codec(codec.act)) {
    if (head_dim % codec.block_values != 0 || head_dim % act_.block_values != 0)
      throw Error("kv codec " + name_ + ": head_dim " + std::to_string(head_dim) + " is not a multiple of its " +
                  std::to_string(std::max(codec.block_values, act_.block_values)) + "-value blocks");
    row_bytes_ = codec.row_bytes(head_dim);
    query_floats_ = (act_.row_bytes(head_dim) + sizeof(float) - 1) / sizeof(float);
    mix_floats_ = size_t(head_dim);
    score_dim_ = size_t(head_dim);
    if (head_dim > kMaxHeadDim)
      throw Error("kv codec " + name_ + ": head_dim " + std::to_string(head_dim) + " above " + std::to_string(kMaxHeadDim));
  }
  void encode(const float* x, uint8_t* row, const float*) const override { codec_.encode(x, row, head_dim_, nullptr); }
  void decode(const uint8_t* row, float* y, const float*) const override { codec_.decode()(row, y, head_dim_); }
  void prepare_query(const float* q, float* prepared, const float*, float) const override {
    if (act_.name == "f32") std::memcpy(prepared, q, size_t(head_dim_) * sizeof(float));
    else act_.encode(q, prepared, head_dim_, nullptr);
  }
  void score(const uint8_t* rows, size_t stride, int64_t n, const float* prepared, float* scores) const override {
    const quant::DotFn dot = codec_.dot();
    for (int64_t j = 0; j < n; ++j) scores[j] = dot(rows + size_t(j) * stride, prepared, head_dim_);
  }
  // The query as score() sees it: rounded through the codec's activation type
  // (q8_0 for quantized keys, as llama.cpp does), so the tiled path scores the same values.
  void query_to_score_space(const float* q, float* out, const float*, float) const override {
    if (act_.name == "f32") {
      std::memcpy(out, q, size_t(head_dim_) * sizeof(float));
      return;
    }
    alignas(32) uint8_t act[kMaxHeadDim * sizeof(float)];
    act_.encode(q, act, head_dim_, nullptr);
    act_.decode()(act, out, head_dim_);
  }
  void keys_to_score_space(const uint8_t* rows, size_t stride, int64_t n, float* kt, int64_t ld) const override {
    const quant::DecodeFn decode_row = codec_.decode();
    alignas(32) float y[kMaxHeadDim];
    for (int64_t j = 0; j < n; ++j) {
      decode_row(rows + size_t(j) * stride, y, head_dim_);
      for (int64_t i = 0; i < head_dim_; ++i) kt[i * ld + j] = y[i];
    }
  }
  void values_to_mix_space(const uint8_t* rows, size_t stride, int64_t n, float* out) const override {
    const quant::DecodeFn decode_row = codec_.decode();
    for (int64_t j = 0; j < n; ++j) decode_row(rows + size_t(j) * stride, out + j * head_dim_, head_dim_);
  }
  void finish_mix(float* acc, float* out) const override {
    if (out != acc) std::memcpy(out, acc, size_t(head_dim_) * sizeof(float));
  }

  void mix(const uint8_t* rows, size_t stride, int64_t n, const float* weights, float* scratch,
           float* out) const override {
    const quant::DecodeFn decode_row = codec_.decode();
    const int64_t hd = head_dim_;
    std::fill(out, out + hd, 0.0f);
    for (int64_t j = 0; j < n; ++j) {
      decode_row(rows + size_t(j) * stride, scratch, hd);
      const float a = weights[j];
      for (int64_t d = 0; d < hd; ++d) out[d] += a * scratch[d];
    }
  }

 private:
  const quant::Codec& codec_;
  const quant::Codec& act_;
};

// Signed levels by code, as the weight codecs store them: tq3 sign << 2 | magnitude
// index (8 codes), tq4 sign << 3 | magnitude index (16 codes).
struct Levels {
  float v[8], v4[16];
  Levels() {
    for (int c = 0; c < 8; ++c) v[c] = (c & 4 ? -1.0f : 1.0f) * quant::ref::kTq3Levels[c & 3];
    for (int c = 0; c < 16; ++c) v4[c] = (c & 8 ? -1.0f : 1.0f) * quant::ref::kTq4Levels[c & 7];
  }
};
const Levels kLevels;

uint32_t load24(const uint8_t* p) { return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16; }

class Tq3Row final : public RowCodec {
 public:
  // bits 3 (tq3, tq3m) or 4 (tq4m: Lloyd-Max 4-bit codes, no sketch).
  Tq3Row(std::string name, Role role, int64_t head_dim, bool sketch, int bits = 3)
      : RowCodec(std::move(name), head_dim), key_(role == Role::key), sketch_(sketch && bits == 3),
        bits_(bits), block_(int(std::min<int64_t>(head_dim, 128))) {
    const bool pow2 = head_dim >= 16 && head_dim <= 128 && (head_dim & (head_dim - 1)) == 0;
    if (!pow2 && !(head_dim % 128 == 0 && head_dim > 0 && head_dim <= 512))
      throw Error("kv codec " + name_ + ": head_dim " + std::to_string(head_dim) +
                  " unsupported (needs a power of two in [16, 128] or a multiple of 128 up to 512)");
    codes_bytes_ = size_t(head_dim) * size_t(bits) / 8;
    row_bytes_ = codes_bytes_ + sizeof(fp16_t) + (sketch_ ? sizeof(fp16_t) + size_t(head_dim) / 8 : 0);
    // rotated query | pair table T [d/2 * 64] | Sq [d] | byte table U [d/8 * 256] | softmax term's query factor
    query_floats_ = size_t(head_dim) + (bits == 3 ? size_t(head_dim) / 2 * 64 : 0) +
                    (sketch_ ? size_t(head_dim) + size_t(head_dim) / 8 * 256 : 0) + 1;
    mix_floats_ = size_t(head_dim);
    // [R q, S (q / w), softmax term] for tq3; [R (q / w), softmax term] for tq3m, tq4m
    score_dim_ = size_t(sketch_ ? 2 * head_dim : head_dim) + 1;
    if (sketch_) s_ = gaussian_matrix(head_dim, head_dim, kSketchSeed);
    else distortion_ = measure_distortion();
  }

  bool centers_keys() const override { return key_; }

  void encode(const float* x, uint8_t* row, const float* qjl_weight) const override {
    const int64_t d = head_dim_;
    float y[512] = {}, r[512], xw[512];
    uint8_t c[512];
    // Keys are coded as w * x (w: channel weights, default 1) and scored with q / w:
    // the error the codes leave is spread evenly over w * x's channels by the
    // rotation, so channels the queries barely read get less of the bits.
    // tq3 (with the sketch) codes x itself and gives the weights to the sketch only
    // (u = w * r): weighting its codes too measured worse on SmolLM2 (2K logits
    // cosine 0.988 vs 0.993), the sketch's noise then grows where the codes' shrinks.
    const bool weigh_codes = qjl_weight && !sketch_;
    for (int64_t i = 0; i < d; ++i) xw[i] = weigh_codes ? x[i] * qjl_weight[i] : x[i];
    rotate(xw, y);
    fp16_t scale16;
    std::memset(row, 0, row_bytes_);
    if (bits_ == 3) {
      quant::ref::tq3_quantize_rotated(y, d, c, scale16);
      for (int64_t i = 0; i < d; ++i) {
        uint8_t* g = row + 3 * (i / 8);
        const uint32_t bits = uint32_t(c[i]) << (3 * (i % 8));
        g[0] = uint8_t(g[0] | bits);
        g[1] = uint8_t(g[1] | bits >> 8);
        g[2] = uint8_t(g[2] | bits >> 16);
      }
    } else {  // code i in nibble i % 2 of byte i / 2
      quant::ref::tq4_quantize_rotated(y, d, c, scale16);
      for (int64_t i = 0; i < d; ++i) row[i / 2] = uint8_t(row[i / 2] | c[i] << (4 * (i % 2)));
    }
    std::memcpy(row + codes_bytes_, &scale16, sizeof(scale16));
    if (!sketch_) return;
    const float s = fp16_to_f32(scale16);
    for (int64_t i = 0; i < d; ++i) r[i] = y[i] - s * kLevels.v[c[i]];
    // The sketch sees u = w * R^T r, the weighted residual in the channel space.
    float u[512];
    unrotate(r, u);
    double uu = 0;
    for (int64_t i = 0; i < d; ++i) {
      if (qjl_weight) u[i] *= qjl_weight[i];
      uu += double(u[i]) * u[i];
    }
    const fp16_t unorm = f32_to_fp16(float(std::sqrt(uu)));
    std::memcpy(row + codes_bytes_ + 2, &unorm, sizeof(unorm));
    uint8_t* bits = row + codes_bytes_ + 4;
    for (int64_t j = 0; j < d; ++j) {
      const float* sj = &s_[size_t(j * d)];
      float p = 0;
      for (int64_t i = 0; i < d; ++i) p += sj[i] * u[i];
      if (p >= 0.0f) bits[j / 8] = uint8_t(bits[j / 8] | 1u << (j % 8));
    }
  }

  void decode(const uint8_t* row, float* out, const float* qjl_weight) const override {
    const int64_t d = head_dim_;
    float y[512];
    unpack_scaled(row, scale(row), y);
    unrotate(y, out);
    if (sketch_) {  // + (|u| sqrt(pi/2) / m * S^T z) / w in the channel space
      const float k = residual_norm(row) * qjl_factor();
      const uint8_t* bits = row + codes_bytes_ + 4;
      float corr[512] = {};
      for (int64_t j = 0; j < d; ++j) {
        const float z = (bits[j / 8] >> (j % 8)) & 1 ? k : -k;
        const float* sj = &s_[size_t(j * d)];
        for (int64_t i = 0; i < d; ++i) corr[i] += z * sj[i];
      }
      for (int64_t i = 0; i < d; ++i) out[i] += qjl_weight ? corr[i] / qjl_weight[i] : corr[i];
    } else if (qjl_weight) {  // the codes stand for w * x
      for (int64_t i = 0; i < d; ++i) out[i] /= qjl_weight[i];
    }
  }

  void prepare_query(const float* q, float* prepared, const float* qjl_weight, float softmax_scale) const override {
    const int64_t d = head_dim_;
    float* qr = prepared;
    float* t = qr + d;
    float qw[512];
    for (int64_t i = 0; i < d; ++i) qw[i] = qjl_weight ? q[i] / qjl_weight[i] : q[i];
    const SoftmaxTerms st = softmax_terms(q, qw, qjl_weight, softmax_scale);
    prepared[query_floats_ - 1] = st.key_term;
    rotate(sketch_ ? q : qw, qr);
    if (bits_ == 3)
      for (int64_t p = 0; p < d / 2; ++p, t += 64)
        for (int c = 0; c < 64; ++c) t[c] = kLevels.v[c & 7] * qr[2 * p] + kLevels.v[c >> 3] * qr[2 * p + 1];
    if (!sketch_) return;
    float* sq = t;
    float* u = sq + d;
    sketch_query(qw, st.sketch_gain, sq);
    for (int64_t g = 0; g < d / 8; ++g, u += 256) {
      float all_neg = 0;
      for (int b = 0; b < 8; ++b) all_neg -= sq[8 * g + b];
      u[0] = all_neg;
      for (int byte = 1; byte < 256; ++byte) {  // add 2 (S q)_b for the lowest set bit b
        const int low = std::countr_zero(unsigned(byte));
        u[byte] = u[byte & (byte - 1)] + 2.0f * sq[8 * g + low];
      }
    }
  }

  void score(const uint8_t* rows, size_t stride, int64_t n, const float* prepared, float* scores) const override {
    const int64_t d = head_dim_, groups = d / 8;
    const float* t0 = prepared + d;
    const float* u0 = t0 + d / 2 * 64 + d;
    const float k = qjl_factor();
    const float key_term = prepared[query_floats_ - 1];
    if (bits_ == 4) {  // no pair table: decode in the rotated space and dot with R q
      float y[512];
      for (int64_t j = 0; j < n; ++j) {
        const float s = scale(rows + size_t(j) * stride);
        unpack_scaled(rows + size_t(j) * stride, 1.0f, y);
        float acc = 0;
        for (int64_t i = 0; i < d; ++i) acc += y[i] * prepared[i];
        scores[j] = s * acc + key_term * s * s;
      }
      return;
    }
    for (int64_t j = 0; j < n; ++j) {
      const uint8_t* row = rows + size_t(j) * stride;
      float acc = 0;
      const float* t = t0;
      for (int64_t g = 0; g < groups; ++g, t += 256) {
        const uint32_t v = load24(row + 3 * g);
        acc += (t[v & 63] + t[64 + ((v >> 6) & 63)]) + (t[128 + ((v >> 12) & 63)] + t[192 + (v >> 18)]);
      }
      const float s = scale(row);
      float sc = s * acc;
      if (sketch_) {
        const uint8_t* bits = row + codes_bytes_ + 4;
        float z = 0;
        for (int64_t g = 0; g < groups; ++g) z += u0[g * 256 + bits[g]];
        const float un = residual_norm(row);
        sc += un * k * z + key_term * un * un;
      } else {
        sc += key_term * s * s;
      }
      scores[j] = sc;
    }
  }

  // Score space: [R q, alpha S (q / w), softmax term] against [s L(c),
  // +-|u| sqrt(pi/2) / d, |u|^2]: the MSE part in the rotated space plus the
  // QJL term plus the softmax correction, as score() sums them (tq3m, tq4m:
  // [R (q / w), softmax term] against [s L(c), s^2]).
  void query_to_score_space(const float* q, float* out, const float* qjl_weight, float softmax_scale) const override {
    const int64_t d = head_dim_;
    alignas(32) float qw[512];
    for (int64_t i = 0; i < d; ++i) qw[i] = qjl_weight ? q[i] / qjl_weight[i] : q[i];
    const SoftmaxTerms st = softmax_terms(q, qw, qjl_weight, softmax_scale);
    rotate(sketch_ ? q : qw, out);
    if (sketch_) sketch_query(qw, st.sketch_gain, out + d);
    out[score_dim_ - 1] = st.key_term;
  }
  void keys_to_score_space(const uint8_t* rows, size_t stride, int64_t n, float* kt, int64_t ld) const override {
    const int64_t d = head_dim_;
    const float k = qjl_factor();
    for (int64_t j = 0; j < n; ++j) {
      const uint8_t* row = rows + size_t(j) * stride;
      float y[512];
      unpack_scaled(row, scale(row), y);
      for (int64_t i = 0; i < d; ++i) kt[i * ld + j] = y[i];
      const int64_t last = int64_t(score_dim_) - 1;
      if (!sketch_) {
        kt[last * ld + j] = scale(row) * scale(row);
        continue;
      }
      const float un = residual_norm(row);
      const float z = un * k;
      const uint8_t* bits = row + codes_bytes_ + 4;
      for (int64_t i = 0; i < d; ++i) kt[(d + i) * ld + j] = (bits[i / 8] >> (i % 8)) & 1 ? z : -z;
      kt[last * ld + j] = un * un;
    }
  }
  void values_to_mix_space(const uint8_t* rows, size_t stride, int64_t n, float* out) const override {
    const int64_t d = head_dim_;
    for (int64_t j = 0; j < n; ++j, out += d) {
      const uint8_t* row = rows + size_t(j) * stride;
      unpack_scaled(row, scale(row), out);
    }
  }
  void finish_mix(float* acc, float* out) const override { unrotate(acc, out); }

  void mix(const uint8_t* rows, size_t stride, int64_t n, const float* weights, float* scratch,
           float* out) const override {
    const int64_t d = head_dim_;
    float* acc = scratch;  // in the rotated space
    std::fill(acc, acc + d, 0.0f);
    float y[512];
    for (int64_t j = 0; j < n; ++j) {
      const uint8_t* row = rows + size_t(j) * stride;
      unpack_scaled(row, weights[j] * scale(row), y);
      for (int64_t i = 0; i < d; ++i) acc[i] += y[i];
    }
    unrotate(acc, out);
  }

 private:
  // Query factors of the softmax correction (kv_codec.cpp's header): the sketch
  // term's gain (alpha) and the factor of the key term (|u|^2 for tq3, s^2 for
  // tq3m / tq4m). softmax_scale 0: the plain estimate (gain 1, no key term).
  struct SoftmaxTerms {
    float sketch_gain = 1.0f, key_term = 0.0f;
  };
  SoftmaxTerms softmax_terms(const float* q, const float* qw, const float* qjl_weight, float softmax_scale) const {
    SoftmaxTerms st;
    if (softmax_scale == 0.0f) return st;
    const int64_t d = head_dim_;
    double qq = 0, qwqw = 0, ww = 0;
    for (int64_t i = 0; i < d; ++i) {
      qq += double(q[i]) * q[i];
      qwqw += double(qw[i]) * qw[i];
      ww += qjl_weight ? double(qjl_weight[i]) * qjl_weight[i] : 1.0;
    }
    if (!sketch_) {  // + a P / 2, P = |q / w|^2 s^2 D
      st.key_term = float(softmax_scale * qwqw * distortion_ / 2);
      return st;
    }
    // Per unit |u|^2: v (the QJL term's variance) and P (the spread of q . r).
    const double v = std::numbers::pi / 2 * qwqw / double(d), p = qq / ww;
    const double alpha = p + v > 0 ? p / (p + v) : 1.0;
    st.sketch_gain = float(alpha);
    st.key_term = float(softmax_scale * alpha * v / 2);
    return st;
  }
  // out[j] = gain * (S qw)_j, j < d.
  void sketch_query(const float* qw, float gain, float* out) const {
    const int64_t d = head_dim_;
    for (int64_t j = 0; j < d; ++j) {
      const float* sj = &s_[size_t(j * d)];
      float p = 0;
      for (int64_t i = 0; i < d; ++i) p += sj[i] * qw[i];
      out[j] = gain * p;
    }
  }
  // The codes' mean squared error per coordinate in units of the row scale
  // squared, E|y - s L(c)|^2 / (d s^2), over N(0, 1) rows (what the rotation
  // makes of any row): the codec's quantizer decides it, so it is measured
  // once here with a fixed seed rather than assumed.
  float measure_distortion() const {
    const int64_t d = head_dim_, n = 64;
    const std::vector<float> g = gaussian_matrix(n, d, kDistortionSeed);
    double err = 0, norm = 0;
    uint8_t c[512];
    for (int64_t r = 0; r < n; ++r) {
      const float* y = &g[size_t(r * d)];
      fp16_t s16;
      if (bits_ == 3) quant::ref::tq3_quantize_rotated(y, d, c, s16);
      else quant::ref::tq4_quantize_rotated(y, d, c, s16);
      const float s = fp16_to_f32(s16);
      for (int64_t i = 0; i < d; ++i) {
        const float e = y[i] - s * (bits_ == 3 ? kLevels.v[c[i]] : kLevels.v4[c[i]]);
        err += double(e) * e;
      }
      norm += double(s) * s * double(d);
    }
    return float(err / norm);
  }

  // y[i] = s * level(code i).
  void unpack_scaled(const uint8_t* row, float s, float* y) const {
    const int64_t d = head_dim_;
    if (bits_ == 3) {
      for (int64_t g = 0; g < d / 8; ++g) {
        const uint32_t v = load24(row + 3 * g);
        for (int i = 0; i < 8; ++i) y[8 * g + i] = s * kLevels.v[(v >> (3 * i)) & 7];
      }
    } else {
      for (int64_t i = 0; i < d; ++i) y[i] = s * kLevels.v4[(row[i / 2] >> (4 * (i % 2))) & 15];
    }
  }
  float scale(const uint8_t* row) const {
    fp16_t h;
    std::memcpy(&h, row + codes_bytes_, sizeof(h));
    return fp16_to_f32(h);
  }
  float residual_norm(const uint8_t* row) const {
    fp16_t h;
    std::memcpy(&h, row + codes_bytes_ + 2, sizeof(h));
    return fp16_to_f32(h);
  }
  float qjl_factor() const { return float(std::sqrt(std::numbers::pi / 2.0) / double(head_dim_)); }

  // y = R x blockwise; x, y: [head_dim], may not alias.
  void rotate(const float* x, float* y) const {
    const float norm = 1.0f / std::sqrt(float(block_));
    for (int64_t b = 0; b < head_dim_; b += block_) {
      for (int i = 0; i < block_; ++i) y[b + i] = quant::hadamard::negated(i) ? -x[b + i] : x[b + i];
      quant::hadamard::fwht(y + b, block_);
      for (int i = 0; i < block_; ++i) y[b + i] *= norm;
    }
  }
  // x = R^T y blockwise; y is overwritten.
  void unrotate(float* y, float* x) const {
    const float norm = 1.0f / std::sqrt(float(block_));
    for (int64_t b = 0; b < head_dim_; b += block_) {
      quant::hadamard::fwht(y + b, block_);
      for (int i = 0; i < block_; ++i) {
        const float v = y[b + i] * norm;
        x[b + i] = quant::hadamard::negated(i) ? -v : v;
      }
    }
  }

  bool key_, sketch_;
  int bits_;
  int block_;
  size_t codes_bytes_;
  float distortion_ = 0;  // tq3m, tq4m: measure_distortion()
  std::vector<float> s_;  // [d, d] QJL matrix, row j = s_j
};

bool known(std::string_view name) {
  for (std::string_view n : kRegistryNames)
    if (n == name) return true;
  return name == "tq3" || name == "tq3m" || name == "tq4m";
}

}  // namespace

std::string known_kv_codec_names() { return "f32, f16, q8_0, q4_0, tq3, tq3m, tq4m"; }

std::unique_ptr<RowCodec> make_row_codec(std::string_view name, Role role, int64_t head_dim) {
  if (head_dim <= 0) throw Error("kv codec " + std::string(name) + ": head_dim " + std::to_string(head_dim));
  if (name == "tq3" || name == "tq3m")
    return std::make_unique<Tq3Row>(std::string(name), role, head_dim, role == Role::key && name == "tq3");
  if (name == "tq4m") return std::make_unique<Tq3Row>(std::string(name), role, head_dim, false, 4);
  for (std::string_view n : kRegistryNames)
    if (n == name) return std::make_unique<RegistryRow>(quant::codec(n), head_dim);
  throw Error("kv codec \"" + std::string(name) + "\" unknown (known: " + known_kv_codec_names() + ")");
}

KvCodecSpec parse_kv_codec(std::string_view spec) {
  const std::string syntax = " (expected NAME for keys and values, or K/V, e.g. \"q8_0\" or \"tq3/q4_0\"; names: " +
                             known_kv_codec_names() + ")";
  const size_t slash = spec.find('/');
  KvCodecSpec out;
  if (slash == std::string_view::npos) {
    out.k = out.v = std::string(spec);
  } else {
    if (spec.find('/', slash + 1) != std::string_view::npos)
      throw Error("kv_codec \"" + std::string(spec) + "\": more than one '/'" + syntax);
    out.k = std::string(spec.substr(0, slash));
    out.v = std::string(spec.substr(slash + 1));
  }
  if (out.k.empty() || out.v.empty()) throw Error("kv_codec \"" + std::string(spec) + "\": empty codec name" + syntax);
  for (const std::string* n : {&out.k, &out.v})
    if (!known(*n)) throw Error("kv_codec \"" + std::string(spec) + "\": unknown codec \"" + *n + "\"" + syntax);
  return out;
}

}  // namespace moelab::kv
