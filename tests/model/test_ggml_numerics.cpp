// llama.cpp's CPU arithmetic as moelab reproduces it (model/ggml_numerics.h,
// the q4_1 / q8_0 dots and the matmul-input quantizers):
//   - the AVX2 versions equal their scalar twins bit for bit (so the result
//     does not depend on which one dispatch picked);
//   - ggml_v_expf stays within 2 ulp of libm's expf, with exp(-inf) = 0;
//   - activations round ties to even with id = 127 / amax, where the reference
//     quantizer rounds them away from zero;
//   - the q4_1 / q8_0 dots accumulate in ggml's order: equal, bit for bit, to a
//     scalar transcription of ggml_vec_dot_q4_1_q8_1 / _q8_0_q8_0.
// The end-to-end consequence (SmolLM2 logits bit-identical to llama.cpp's) is
// SmolLM2Golden in test_forward_golden.cpp.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "core/fp16.h"
#include "model/ggml_numerics.h"
#include "quant/blocks.h"
#include "quant/codec.h"
#include "quant/kernels_ref.h"
#include "quant/simd.h"

namespace moelab::model {
namespace {

using quant::BlockQ4_1;
using quant::BlockQ8_0;
using quant::BlockQ8_1;

std::vector<float> normal(size_t n, uint32_t seed, float sigma = 1.0f) {
  std::mt19937 g(seed);
  std::normal_distribution<float> d(0.0f, sigma);
  std::vector<float> v(n);
  for (auto& x : v) x = d(g);
  return v;
}

std::vector<fp16_t> to_f16(const std::vector<float>& v) {
  std::vector<fp16_t> h(v.size());
  for (size_t i = 0; i < v.size(); ++i) h[i] = f32_to_fp16(v[i]);
  return h;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

TEST(GgmlNumerics, Avx2AndScalarAreBitIdentical) {
  if (!quant::isa_supported(quant::Isa::avx2)) GTEST_SKIP() << "no AVX2 on this CPU";
  for (int64_t n : {1, 7, 8, 31, 32, 33, 140, 257}) {
    auto scores = normal(size_t(n), uint32_t(n), 4.0f);
    auto a = scores, b = scores;
    ggml::scalar::softmax(a.data(), n);
    ggml::avx2::softmax(b.data(), n);
    EXPECT_TRUE(same_bits(a, b)) << "softmax n=" << n;
    double sum = 0;
    for (float p : a) sum += p;
    EXPECT_NEAR(sum, 1.0, 1e-5) << "softmax n=" << n;

    auto g = normal(size_t(n), uint32_t(100 + n), 3.0f), u = normal(size_t(n), uint32_t(200 + n));
    auto ga = g, gb = g;
    ggml::scalar::swiglu(ga.data(), u.data(), n);
    ggml::avx2::swiglu(gb.data(), u.data(), n);
    EXPECT_TRUE(same_bits(ga, gb)) << "swiglu n=" << n;
    for (int64_t i = 0; i < n; ++i)
      EXPECT_NEAR(ga[size_t(i)], g[size_t(i)] / (1 + std::exp(-g[size_t(i)])) * u[size_t(i)], 1e-5 * (1 + std::fabs(ga[size_t(i)])));

    const auto x = to_f16(normal(size_t(n), uint32_t(300 + n))), y = to_f16(normal(size_t(n), uint32_t(400 + n)));
    const float ds = ggml::scalar::dot_f16(x.data(), y.data(), n), dv = ggml::avx2::dot_f16(x.data(), y.data(), n);
    EXPECT_EQ(std::bit_cast<uint32_t>(ds), std::bit_cast<uint32_t>(dv)) << "dot_f16 n=" << n;
    double exact = 0;
    for (int64_t i = 0; i < n; ++i) exact += double(fp16_to_f32(x[size_t(i)])) * fp16_to_f32(y[size_t(i)]);
    EXPECT_NEAR(ds, exact, 1e-5 * (1 + std::fabs(exact)));

    // Value mix of n positions, head_dim 64, rows 3 heads apart (as in the KV cache).
    const int64_t hd = 64, stride_heads = 3;
    const auto v = to_f16(normal(size_t(n * hd * stride_heads), uint32_t(500 + n)));
    const auto p = to_f16(a);
    std::vector<float> scratch(static_cast<size_t>(32 * hd)), ms(static_cast<size_t>(hd)), mv(static_cast<size_t>(hd));
    const auto* rows = reinterpret_cast<const uint8_t*>(v.data());
    const size_t stride = size_t(hd * stride_heads) * sizeof(fp16_t);
    ggml::scalar::mix_f16(rows, stride, n, p.data(), hd, scratch.data(), ms.data());
    ggml::avx2::mix_f16(rows, stride, n, p.data(), hd, scratch.data(), mv.data());
    EXPECT_TRUE(same_bits(ms, mv)) << "mix_f16 n=" << n;
    for (int64_t d = 0; d < hd; ++d) {
      double e = 0;
      for (int64_t j = 0; j < n; ++j) e += double(fp16_to_f32(p[size_t(j)])) * fp16_to_f32(v[size_t(j * hd * stride_heads + d)]);
      EXPECT_NEAR(ms[size_t(d)], e, 1e-5 * (1 + std::fabs(e))) << "mix_f16 n=" << n << " d=" << d;
    }
  }
}

TEST(GgmlNumerics, ExpfIsWithinTwoUlpOfLibm) {
  for (float x = -103.0f; x <= 88.0f; x += 0.0137f) {
    const float got = ggml::expf(x), want = std::exp(x);
    if (want < 1e-37f) continue;  // subnormal results: ulps are coarse there
    const int64_t ulps = std::abs(int64_t(std::bit_cast<int32_t>(got)) - int64_t(std::bit_cast<int32_t>(want)));
    EXPECT_LE(ulps, 2) << "x=" << x;
  }
  EXPECT_EQ(ggml::expf(-INFINITY), 0.0f);
  EXPECT_EQ(ggml::expf(0.0f), 1.0f);
  EXPECT_TRUE(std::isinf(ggml::expf(100.0f)));
}

TEST(GgmlNumerics, ActivationsRoundTiesToEvenLikeLlamaCpp) {
  // amax 127 makes id exactly 1, so 2.5 and -4.5 are ties: llama.cpp's x86
  // quantizer rounds them to even (2, -4), the reference quantizer away from zero (3, -5).
  std::vector<float> x(32, 0.0f);
  x[0] = 127.0f;
  x[1] = 2.5f;
  x[2] = -4.5f;
  BlockQ8_1 act{}, ref{};
  quant::ref::encode_q8_1_act(x.data(), &act, 32, nullptr);
  quant::ref::encode_q8_1(x.data(), &ref, 32, nullptr);
  EXPECT_EQ(act.qs[1], 2);
  EXPECT_EQ(act.qs[2], -4);
  EXPECT_EQ(ref.qs[1], 3);
  EXPECT_EQ(ref.qs[2], -5);
  EXPECT_EQ(fp16_to_f32(act.s), 125.0f);  // d * sum(q) = 1 * (127 + 2 - 4)

  if (!quant::isa_supported(quant::Isa::avx2)) return;
  BlockQ8_1 simd{};
  quant::avx2::encode_q8_1_act(x.data(), &simd, 32, nullptr);
  EXPECT_EQ(std::memcmp(&simd, &act, sizeof(act)), 0);
  // Random rows, both block types: AVX2 and scalar byte-identical.
  for (uint32_t seed = 1; seed <= 20; ++seed) {
    const auto row = normal(256, seed, float(seed));
    std::vector<BlockQ8_1> s1(8), v1(8);
    std::vector<BlockQ8_0> s0(8), v0(8);
    quant::ref::encode_q8_1_act(row.data(), s1.data(), 256, nullptr);
    quant::avx2::encode_q8_1_act(row.data(), v1.data(), 256, nullptr);
    quant::ref::encode_q8_0_act(row.data(), s0.data(), 256, nullptr);
    quant::avx2::encode_q8_0_act(row.data(), v0.data(), 256, nullptr);
    EXPECT_EQ(std::memcmp(s1.data(), v1.data(), sizeof(BlockQ8_1) * 8), 0) << seed;
    EXPECT_EQ(std::memcmp(s0.data(), v0.data(), sizeof(BlockQ8_0) * 8), 0) << seed;
  }
}

// ggml_vec_dot_q4_1_q8_1 / _q8_0_q8_0 (x86 AVX2) transcribed lane by lane:
// per block, 8 int32 lanes of 4 products each, one FMA per lane into a running
// accumulator; the q4_1 min term fused into a scalar running sum; lanes folded
// as hsum_float_8 does.
float hsum8(const float* a) {
  float t[4];
  for (int l = 0; l < 4; ++l) t[l] = a[l + 4] + a[l];
  return (t[0] + t[2]) + (t[1] + t[3]);
}

float ggml_dot_q4_1(const BlockQ4_1* x, const BlockQ8_1* y, int64_t nb) {
  float acc[8] = {}, summs = 0;
  for (int64_t b = 0; b < nb; ++b) {
    summs = std::fma(fp16_to_f32(x[b].m), fp16_to_f32(y[b].s), summs);
    const float d = fp16_to_f32(x[b].d) * fp16_to_f32(y[b].d);
    for (int l = 0; l < 8; ++l) {
      int isum = 0;
      for (int k = 0; k < 4; ++k) {
        const int j = 4 * l + k;  // value j: low nibbles are values 0..15, high 16..31
        const int q = j < 16 ? x[b].qs[j] & 0x0f : x[b].qs[j - 16] >> 4;
        isum += q * y[b].qs[j];
      }
      acc[l] = std::fma(d, float(isum), acc[l]);
    }
  }
  return hsum8(acc) + summs;
}

float ggml_dot_q8_0(const BlockQ8_0* x, const BlockQ8_0* y, int64_t nb) {
  float acc[8] = {};
  for (int64_t b = 0; b < nb; ++b) {
    const float d = fp16_to_f32(x[b].d) * fp16_to_f32(y[b].d);
    for (int l = 0; l < 8; ++l) {
      int isum = 0;
      for (int k = 0; k < 4; ++k) isum += x[b].qs[4 * l + k] * y[b].qs[4 * l + k];
      acc[l] = std::fma(d, float(isum), acc[l]);
    }
  }
  return hsum8(acc);
}

TEST(GgmlNumerics, Q4_1AndQ8_0DotsFollowLlamaCppOrder) {
  if (!quant::isa_supported(quant::Isa::avx2)) GTEST_SKIP() << "no AVX2 on this CPU";
  for (int64_t n : {32, 256, 576, 1536}) {
    const auto w = normal(size_t(n), uint32_t(n)), a = normal(size_t(n), uint32_t(n + 1), 2.0f);
    const int64_t nb = n / 32;
    std::vector<BlockQ4_1> w41(static_cast<size_t>(nb));
    std::vector<BlockQ8_0> w80(static_cast<size_t>(nb)), a80(static_cast<size_t>(nb));
    std::vector<BlockQ8_1> a81(static_cast<size_t>(nb));
    quant::ref::encode_q4_1(w.data(), w41.data(), n, nullptr);
    quant::ref::encode_q8_0(w.data(), w80.data(), n, nullptr);
    quant::avx2::encode_q8_1_act(a.data(), a81.data(), n, nullptr);
    quant::avx2::encode_q8_0_act(a.data(), a80.data(), n, nullptr);
    const float q41 = quant::codec("q4_1").dot(quant::Isa::avx2)(w41.data(), a81.data(), n);
    const float q80 = quant::codec("q8_0").dot(quant::Isa::avx2)(w80.data(), a80.data(), n);
    EXPECT_EQ(std::bit_cast<uint32_t>(q41), std::bit_cast<uint32_t>(ggml_dot_q4_1(w41.data(), a81.data(), nb))) << n;
    EXPECT_EQ(std::bit_cast<uint32_t>(q80), std::bit_cast<uint32_t>(ggml_dot_q8_0(w80.data(), a80.data(), nb))) << n;
  }
}

}  // namespace
}  // namespace moelab::model
