// The MLX-style affine group codecs affine{2,3,4,5,6,8}_g{32,64,128}:
//   - encode_ref follows mx.quantize's rule (edge of larger magnitude as the
//     bias, zero on a code, signed scale) and its little-endian bit packing
//   - round-trip error falls as bits rise and as groups shrink
//   - encode (weighted least-squares refinement) is never worse than the MLX
//     rule, and importance lowers the importance-weighted error
//   - dot_ref agrees with an f32 dot of the decoded weights and activations
//   - every SIMD kernel the CPU runs: decode bit-identical to scalar, dot
//     within 1e-5 of sum |w x| of the scalar reference
//   - bad row lengths throw moelab::Error naming the codec
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/fp16.h"
#include "core/random.h"
#include "quant/blocks.h"
#include "quant/codec.h"

namespace moelab::quant {
namespace {

constexpr int kBitsList[] = {2, 3, 4, 5, 6, 8};
constexpr int kGroups[] = {32, 64, 128};

std::string affine_name(int bits, int group) {
  return "affine" + std::to_string(bits) + "_g" + std::to_string(group);
}

std::vector<const Codec*> affine_codecs() {
  std::vector<const Codec*> out;
  for (const Codec& c : all_codecs())
    if (c.family == Family::affine) out.push_back(&c);
  return out;
}

// [fp16 scale][fp16 bias][codes] of group g.
float stored_scale(const Codec& c, const std::vector<uint8_t>& bytes, int64_t g) {
  fp16_t h;
  std::memcpy(&h, bytes.data() + size_t(g) * size_t(c.block_bytes), 2);
  return fp16_to_f32(h);
}
float stored_bias(const Codec& c, const std::vector<uint8_t>& bytes, int64_t g) {
  fp16_t h;
  std::memcpy(&h, bytes.data() + size_t(g) * size_t(c.block_bytes) + 2, 2);
  return fp16_to_f32(h);
}

std::vector<uint8_t> encode(const Codec& c, const std::vector<float>& x, const float* importance = nullptr,
                            bool reference = false) {
  std::vector<uint8_t> out(c.row_bytes(int64_t(x.size())));
  (reference ? c.encode_ref : c.encode)(x.data(), out.data(), int64_t(x.size()), importance);
  return out;
}

std::vector<float> decode(const Codec& c, const std::vector<uint8_t>& bytes, int64_t n) {
  std::vector<float> y(static_cast<size_t>(n));
  c.decode_by_isa[0](bytes.data(), y.data(), n);
  return y;
}

double weighted_sq_error(const std::vector<float>& x, const std::vector<float>& y, const float* w, size_t begin,
                         size_t end) {
  double e = 0.0;
  for (size_t i = begin; i < end; ++i) e += (w ? w[i] : 1.0) * (double(x[i]) - y[i]) * (double(x[i]) - y[i]);
  return e;
}

double rmse(const std::vector<float>& x, const std::vector<float>& y) {
  return std::sqrt(weighted_sq_error(x, y, nullptr, 0, x.size()) / double(x.size()));
}

// Codes written as a little-endian bit stream by an independent writer.
std::vector<uint8_t> pack_stream(const std::vector<int>& q, int bits) {
  std::vector<uint8_t> out(q.size() * size_t(bits) / 8, 0);
  for (size_t i = 0; i < q.size(); ++i)
    for (int b = 0; b < bits; ++b)
      if ((q[i] >> b) & 1) {
        const size_t bit = i * size_t(bits) + size_t(b);
        out[bit / 8] = uint8_t(out[bit / 8] | 1 << (bit % 8));
      }
  return out;
}

TEST(Affine, MlxRuleMaxEdgeGivesNegativeScaleAndLittleEndianCodes) {
  // Values 0..7 in 3 bits: |max| > |min|, so MLX takes bias = max = 7 and
  // scale = -(7 - 0) / 7 = -1; codes are 7 - x.
  for (int group : kGroups) {
    const Codec& c = codec(affine_name(3, group));
    std::vector<float> x(static_cast<size_t>(group));
    std::vector<int> expect(static_cast<size_t>(group));
    for (int i = 0; i < group; ++i) {
      x[size_t(i)] = float((i * 5) % 8);
      expect[size_t(i)] = 7 - (i * 5) % 8;
    }
    const auto bytes = encode(c, x, nullptr, true);
    EXPECT_EQ(stored_scale(c, bytes, 0), -1.0f);
    EXPECT_EQ(stored_bias(c, bytes, 0), 7.0f);
    const auto codes = pack_stream(expect, 3);
    EXPECT_EQ(0, std::memcmp(bytes.data() + 4, codes.data(), codes.size())) << c.name;
    EXPECT_EQ(decode(c, bytes, group), x) << c.name;
  }
}

TEST(Affine, MlxRuleMinEdgePutsZeroOnACode) {
  // x in [-1, 0.5] at 4 bits: the min is the edge, scale = 1.5 / 15 = 0.1,
  // round(-1 / 0.1) = -10 so scale = -1 / -10 = 0.1 and bias = -1; zero is code 10.
  const Codec& c = codec("affine4_g64");
  std::vector<float> x(64);
  for (int i = 0; i < 64; ++i) x[size_t(i)] = -1.0f + 1.5f * float(i) / 63.0f;
  x[20] = 0.0f;
  const auto bytes = encode(c, x, nullptr, true);
  EXPECT_EQ(stored_scale(c, bytes, 0), fp16_to_f32(f32_to_fp16(0.1f)));
  EXPECT_EQ(stored_bias(c, bytes, 0), -1.0f);
  const auto y = decode(c, bytes, 64);
  EXPECT_NEAR(y[20], 0.0f, 1e-3f);  // exact in f32 parameters; fp16 rounding of 0.1 leaves 1e-4
  EXPECT_EQ(y[0], -1.0f);
  for (int i = 0; i < 64; ++i) EXPECT_NEAR(y[size_t(i)], x[size_t(i)], 0.05f + 1e-3f) << i;  // half a step
}

TEST(Affine, RoundTripErrorFallsAsBitsRise) {
  const int64_t n = 4096;
  const auto x = gaussian_matrix(1, n, 101);
  for (bool reference : {true, false})
    for (int group : kGroups) {
      double prev = HUGE_VAL;
      for (int bits : kBitsList) {
        const Codec& c = codec(affine_name(bits, group));
        const double e = rmse(x, decode(c, encode(c, x, nullptr, reference), n));
        // One more bit halves the step; allow for the coarse end (2 -> 3 bits) and fp16 parameters.
        EXPECT_LT(e, prev / 1.6) << c.name << (reference ? " (ref)" : "");
        prev = e;
      }
    }
}

TEST(Affine, RoundTripErrorFallsAsGroupsShrink) {
  const int64_t n = 4096;
  const auto x = student_t_matrix(1, n, 102);
  for (bool reference : {true, false})
    for (int bits : kBitsList) {
      double prev = 0.0;
      for (int group : {128, 64, 32}) {
        const Codec& c = codec(affine_name(bits, group));
        const double e = rmse(x, decode(c, encode(c, x, nullptr, reference), n));
        if (prev > 0.0) {
          EXPECT_LT(e, prev) << c.name << (reference ? " (ref)" : "");
        }
        prev = e;
      }
    }
}

TEST(Affine, RefinedEncodeIsNeverWorseThanTheMlxRule) {
  const int64_t n = 2048;
  const auto x = student_t_matrix(1, n, 103);
  std::vector<float> imp(static_cast<size_t>(n));
  std::mt19937 rng(7);
  std::lognormal_distribution<float> lognormal(0.0f, 1.5f);
  for (float& v : imp) v = lognormal(rng);
  for (const Codec* c : affine_codecs()) {
    for (const float* w : {static_cast<const float*>(nullptr), static_cast<const float*>(imp.data())}) {
      const auto y_ref = decode(*c, encode(*c, x, w, true), n);
      const auto y = decode(*c, encode(*c, x, w, false), n);
      double total_ref = 0.0, total = 0.0;
      for (int64_t g = 0; g < n / c->group; ++g) {
        const size_t b = size_t(g * c->group), e = b + size_t(c->group);
        const double err_ref = weighted_sq_error(x, y_ref, w, b, e), err = weighted_sq_error(x, y, w, b, e);
        EXPECT_LE(err, err_ref * (1 + 1e-6) + 1e-12) << c->name << " group " << g;
        total_ref += err_ref;
        total += err;
      }
      // The refinement is worth having: at least 5% less squared error overall.
      EXPECT_LT(total, 0.95 * total_ref) << c->name << (w ? " (importance)" : "");
    }
  }
}

TEST(Affine, ImportanceLowersTheWeightedError) {
  const int64_t n = 2048;
  const auto x = gaussian_matrix(1, n, 104);
  std::vector<float> imp(static_cast<size_t>(n));
  std::mt19937 rng(8);
  std::lognormal_distribution<float> lognormal(0.0f, 2.0f);
  for (float& v : imp) v = lognormal(rng);
  for (int bits : {2, 3, 4}) {
    for (int group : kGroups) {
      const Codec& c = codec(affine_name(bits, group));
      ASSERT_TRUE(c.weight_only_importance);
      const double plain = weighted_sq_error(x, decode(c, encode(c, x), n), imp.data(), 0, size_t(n));
      const double weighted = weighted_sq_error(x, decode(c, encode(c, x, imp.data()), n), imp.data(), 0, size_t(n));
      EXPECT_LT(weighted, 0.9 * plain) << c.name;
    }
  }
}

TEST(Affine, EveryRowHasAvx2AndAvx512Kernels) {
  for (const Codec* c : affine_codecs())
    for (int i = 0; i < kIsaCount; ++i) {
      EXPECT_NE(c->decode_by_isa[size_t(i)], nullptr) << c->name << " " << isa_name(Isa(i));
      EXPECT_NE(c->dot_by_isa[size_t(i)], nullptr) << c->name << " " << isa_name(Isa(i));
    }
}

TEST(Affine, RegistryReportsBitsAndOverhead) {
  for (int bits : kBitsList)
    for (int group : kGroups) {
      const Codec& c = codec(affine_name(bits, group));
      EXPECT_EQ(c.block_values, group);
      EXPECT_EQ(c.block_bytes, 4 + group * bits / 8);
      EXPECT_DOUBLE_EQ(c.bits_per_weight(), bits + 32.0 / group);
      EXPECT_DOUBLE_EQ(c.overhead_fraction(), 32.0 / (group * bits + 32.0));
      EXPECT_EQ(c.act, "q8_1");
    }
}

// Activations in q8_1, decoded back to f32.
struct Act {
  std::vector<uint8_t> bytes;
  std::vector<float> decoded;
};
Act make_act(const std::vector<float>& x) {
  const Codec& q8_1 = codec("q8_1");
  Act a;
  a.bytes.resize(q8_1.row_bytes(int64_t(x.size())));
  q8_1.encode(x.data(), a.bytes.data(), int64_t(x.size()), nullptr);
  a.decoded.resize(x.size());
  q8_1.decode_by_isa[0](a.bytes.data(), a.decoded.data(), int64_t(x.size()));
  return a;
}

TEST(Affine, DotRefEqualsF32DotOfDecodedValues) {
  const int64_t n = 1024;
  for (const Codec* c : affine_codecs()) {
    const auto w = student_t_matrix(3, n, 105);
    const auto x = gaussian_matrix(3, n, 106);
    for (int r = 0; r < 3; ++r) {
      const std::vector<float> wr(w.begin() + r * n, w.begin() + (r + 1) * n), xr(x.begin() + r * n, x.begin() + (r + 1) * n);
      const auto bytes = encode(*c, wr);
      const auto wd = decode(*c, bytes, n);
      const Act a = make_act(xr);
      double exact = 0.0, sum_abs = 0.0, bias_s = 0.0;
      for (int64_t i = 0; i < n; ++i) {
        exact += double(wd[size_t(i)]) * a.decoded[size_t(i)];
        sum_abs += std::abs(double(wd[size_t(i)]) * a.decoded[size_t(i)]);
      }
      // The bias term uses q8_1's fp16 s = d * sum(qs), rounded to 11 bits.
      for (int64_t g = 0; g < n / c->group; ++g)
        for (int64_t b = g * c->group / kQK; b < (g + 1) * c->group / kQK; ++b) {
          BlockQ8_1 blk;
          std::memcpy(&blk, a.bytes.data() + size_t(b) * sizeof(BlockQ8_1), sizeof(blk));
          bias_s += std::abs(double(stored_bias(*c, bytes, g)) * fp16_to_f32(blk.s));
        }
      const float got = c->dot_by_isa[0](bytes.data(), a.bytes.data(), n);
      EXPECT_NEAR(got, exact, 1e-5 * sum_abs + bias_s / 1024.0 + 1e-6) << c->name << " row " << r;
    }
  }
}

TEST(Affine, SimdDecodeIsBitIdenticalToScalar) {
  std::mt19937 rng(109);
  for (const Codec* c : affine_codecs())
    for (int i = 1; i < kIsaCount; ++i) {
      const Isa isa = Isa(i);
      if (!isa_supported(isa) || !c->decode_by_isa[size_t(i)]) continue;
      for (int64_t groups : {1, 2, 3, 7, 24}) {
        const int64_t n = groups * c->group;
        const auto x = student_t_matrix(1, n, rng());
        const auto bytes = encode(*c, x);
        std::vector<float> ref(size_t(n), 0.0f), got(size_t(n), 1.0f);
        c->decode_by_isa[0](bytes.data(), ref.data(), n);
        c->decode_by_isa[size_t(i)](bytes.data(), got.data(), n);
        EXPECT_EQ(0, std::memcmp(ref.data(), got.data(), size_t(n) * sizeof(float)))
            << c->name << " " << isa_name(isa) << " n=" << n;
      }
    }
}

TEST(Affine, SimdDotWithinToleranceOfScalar) {
  std::mt19937 rng(110);
  for (const Codec* c : affine_codecs())
    for (int i = 1; i < kIsaCount; ++i) {
      const Isa isa = Isa(i);
      if (!isa_supported(isa) || !c->dot_by_isa[size_t(i)]) continue;
      for (int64_t groups : {1, 2, 3, 5, 8, 33}) {
        const int64_t n = groups * c->group;
        const auto w = student_t_matrix(1, n, rng());
        const auto x = gaussian_matrix(1, n, rng(), 3.0f);
        // Buffers are exactly one row long, so a kernel reading past its end shows under ASan.
        const auto bytes = encode(*c, w);
        const Act a = make_act(x);
        const auto wd = decode(*c, bytes, n);
        double sum_abs = 0.0;
        for (int64_t j = 0; j < n; ++j) sum_abs += std::abs(double(wd[size_t(j)]) * a.decoded[size_t(j)]);
        const float ref = c->dot_by_isa[0](bytes.data(), a.bytes.data(), n);
        const float got = c->dot_by_isa[size_t(i)](bytes.data(), a.bytes.data(), n);
        EXPECT_NEAR(got, ref, 1e-5 * sum_abs + 1e-6) << c->name << " " << isa_name(isa) << " n=" << n;
      }
    }
}

TEST(Affine, BadRowLengthsThrowNamingTheCodec) {
  for (const Codec* c : affine_codecs()) {
    const int64_t n = c->group + 16;
    std::vector<float> x(static_cast<size_t>(n), 1.0f), y(static_cast<size_t>(n));
    std::vector<uint8_t> bytes(size_t(4 * c->block_bytes)), act(4096);
    for (EncodeFn f : {c->encode, c->encode_ref}) {
      try {
        f(x.data(), bytes.data(), n, nullptr);
        FAIL() << c->name << " accepted n=" << n;
      } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find(std::string(c->name)), std::string::npos) << e.what();
      }
    }
    for (int i = 0; i < kIsaCount; ++i) {
      if (!isa_supported(Isa(i))) continue;
      if (c->decode_by_isa[size_t(i)]) {
        EXPECT_THROW(c->decode_by_isa[size_t(i)](bytes.data(), y.data(), n), Error);
      }
      if (c->dot_by_isa[size_t(i)]) {
        EXPECT_THROW(c->dot_by_isa[size_t(i)](bytes.data(), act.data(), n), Error);
      }
      if (c->dot_by_isa[size_t(i)]) {
        EXPECT_THROW(c->dot_by_isa[size_t(i)](bytes.data(), act.data(), -c->group), Error);
      }
    }
  }
}

}  // namespace
}  // namespace moelab::quant
