// TurboQuant-style tq3 / tq4 weights and the rot128 activation codec:
//   - the Lloyd-Max codebooks in turbo.cpp are the fixed point of Lloyd's
//     algorithm on N(0, 1), re-derived here
//   - the rotation is orthonormal (inverse exact within 1e-6, dots preserved)
//     and its sign pattern is pinned
//   - tq3 keeps cosine >= 0.98 on Gaussian rows, tq4 does better, and tq3
//     beats affine3_g64 on a heavy-tailed matrix with outlier columns
//   - each block's scale is the least-squares one for its codes
//   - dot_ref against rot128 activations equals the f32 dot of decoded weights
//   - every SIMD kernel the CPU runs: decode bit-identical, dot within 1e-5 of
//     sum |w x| of the scalar reference
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
#include "quant/codec.h"
#include "quant/hadamard.h"
#include "quant/kernels_ref.h"

namespace moelab::quant {
namespace {

constexpr int kBlock = ref::kTurboBlock;

std::vector<uint8_t> encode(const Codec& c, const std::vector<float>& x) {
  std::vector<uint8_t> out(c.row_bytes(int64_t(x.size())));
  c.encode(x.data(), out.data(), int64_t(x.size()), nullptr);
  return out;
}

std::vector<float> decode(const Codec& c, const std::vector<uint8_t>& bytes, int64_t n) {
  std::vector<float> y(static_cast<size_t>(n));
  c.decode_by_isa[0](bytes.data(), y.data(), n);
  return y;
}

std::vector<float> round_trip(const Codec& c, const std::vector<float>& x) {
  return decode(c, encode(c, x), int64_t(x.size()));
}

double cosine(const std::vector<float>& a, const std::vector<float>& b) {
  double ab = 0, aa = 0, bb = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    ab += double(a[i]) * b[i];
    aa += double(a[i]) * a[i];
    bb += double(b[i]) * b[i];
  }
  return ab / std::sqrt(aa * bb);
}

double rmse(const std::vector<float>& a, const std::vector<float>& b) {
  double e = 0;
  for (size_t i = 0; i < a.size(); ++i) e += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
  return std::sqrt(e / double(a.size()));
}

// Lloyd's algorithm for 2 * half levels on N(0, 1), from uniform levels on [-3, 3].
std::vector<double> lloyd_max_positive_half(int levels) {
  const double inv_sqrt_2pi = 0.3989422804014327;
  auto pdf = [&](double t) { return std::isinf(t) ? 0.0 : inv_sqrt_2pi * std::exp(-0.5 * t * t); };
  auto cdf = [](double t) { return 0.5 * std::erfc(-t / std::sqrt(2.0)); };
  std::vector<double> lv(static_cast<size_t>(levels));
  for (int i = 0; i < levels; ++i) lv[size_t(i)] = -3.0 + 6.0 * (i + 0.5) / levels;
  for (int iter = 0; iter < 100000; ++iter) {
    double moved = 0;
    std::vector<double> next(lv.size());
    for (int i = 0; i < levels; ++i) {
      const double a = i == 0 ? -INFINITY : 0.5 * (lv[size_t(i) - 1] + lv[size_t(i)]);
      const double b = i == levels - 1 ? INFINITY : 0.5 * (lv[size_t(i)] + lv[size_t(i) + 1]);
      next[size_t(i)] = (pdf(a) - pdf(b)) / (cdf(b) - cdf(a));
      moved = std::max(moved, std::abs(next[size_t(i)] - lv[size_t(i)]));
    }
    lv = next;
    if (moved < 1e-13) break;
  }
  return {lv.begin() + levels / 2, lv.end()};
}

TEST(Turbo, CodebooksAreLloydMaxForTheStandardNormal) {
  const auto l8 = lloyd_max_positive_half(8);
  const auto l16 = lloyd_max_positive_half(16);
  for (size_t i = 0; i < 4; ++i) EXPECT_NEAR(ref::kTq3Levels[i], l8[i], 2e-7 * l8[i]) << i;
  for (size_t i = 0; i < 8; ++i) EXPECT_NEAR(ref::kTq4Levels[i], l16[i], 2e-7 * l16[i]) << i;
}

TEST(Turbo, SignPatternIsPinned) {
  // splitmix64 from kSignSeed ("moelab-r"); changing it changes every stored tq file.
  EXPECT_EQ(hadamard::kSignSeed, 0x6d6f656c61622d72ULL);
  uint64_t state = hadamard::kSignSeed;
  EXPECT_EQ(hadamard::kSignBits[0], moelab::splitmix64_next(state));
  EXPECT_EQ(hadamard::kSignBits[1], moelab::splitmix64_next(state));
  int negated = 0;
  for (int i = 0; i < kBlock; ++i) negated += hadamard::negated(i);
  EXPECT_GT(negated, 40);  // a random pattern, not all + or all -
  EXPECT_LT(negated, 88);
}

TEST(Turbo, RotationIsOrthonormal) {
  const Codec& rot = codec("rot128");
  const int64_t n = 4 * kBlock;
  const auto x = student_t_matrix(1, n, 201), z = gaussian_matrix(1, n, 202);
  std::vector<float> rx(static_cast<size_t>(n)), rz(static_cast<size_t>(n)), back(static_cast<size_t>(n));
  rot.encode(x.data(), rx.data(), n, nullptr);
  rot.encode(z.data(), rz.data(), n, nullptr);
  rot.decode_by_isa[0](rx.data(), back.data(), n);
  double max_abs = 0;
  for (float v : x) max_abs = std::max(max_abs, double(std::abs(v)));
  for (int64_t i = 0; i < n; ++i) EXPECT_NEAR(back[size_t(i)], x[size_t(i)], 1e-6 * max_abs) << i;
  for (int64_t b = 0; b < n / kBlock; ++b) {
    double xz = 0, rxz = 0, xx = 0, rxx = 0, zz = 0;
    for (int64_t i = b * kBlock; i < (b + 1) * kBlock; ++i) {
      xz += double(x[size_t(i)]) * z[size_t(i)];
      rxz += double(rx[size_t(i)]) * rz[size_t(i)];
      xx += double(x[size_t(i)]) * x[size_t(i)];
      rxx += double(rx[size_t(i)]) * rx[size_t(i)];
      zz += double(z[size_t(i)]) * z[size_t(i)];
    }
    EXPECT_NEAR(rxx, xx, 1e-6 * xx);
    EXPECT_NEAR(rxz, xz, 1e-6 * std::sqrt(xx * zz));
  }
  // A single spike spreads evenly over the block: |R e_0| = 1/sqrt(128) everywhere.
  std::vector<float> spike(kBlock, 0.0f), rs(kBlock);
  spike[0] = 1.0f;
  rot.encode(spike.data(), rs.data(), kBlock, nullptr);
  for (float v : rs) EXPECT_NEAR(std::abs(v), hadamard::kInvSqrtBlock, 1e-7f);
}

TEST(Turbo, CosineOnGaussianRows) {
  const auto x = gaussian_matrix(64, 1024, 203);
  const double cos3 = cosine(x, round_trip(codec("tq3"), x));
  const double cos4 = cosine(x, round_trip(codec("tq4"), x));
  // Lloyd-Max on N(0,1): MSE 0.0345 (3 bits), 0.0095 (4 bits) -> cosine ~0.983, ~0.995.
  EXPECT_GE(cos3, 0.98);
  EXPECT_GE(cos4, 0.994);
  EXPECT_GT(cos4, cos3);
  std::printf("tq3 cosine %.5f, tq4 cosine %.5f on N(0,1)\n", cos3, cos4);
}

TEST(Turbo, Tq3BeatsAffine3G64OnHeavyTailsWithOutlierColumns) {
  // Student-t (nu = 4) with 8 of 1024 columns scaled x10, as outlier channels do.
  const auto w = student_t_matrix(256, 1024, 204, 4.0, 1.0f, 8, 10.0f);
  const auto tq3 = round_trip(codec("tq3"), w);
  const Codec& a3 = codec("affine3_g64");
  std::vector<uint8_t> bytes(a3.row_bytes(1024) * 256), ref_bytes(bytes.size());
  for (int64_t r = 0; r < 256; ++r) {
    a3.encode(w.data() + r * 1024, bytes.data() + r * int64_t(a3.row_bytes(1024)), 1024, nullptr);
    a3.encode_ref(w.data() + r * 1024, ref_bytes.data() + r * int64_t(a3.row_bytes(1024)), 1024, nullptr);
  }
  const auto aff = decode(a3, bytes, int64_t(w.size()));
  const auto aff_ref = decode(a3, ref_bytes, int64_t(w.size()));
  const double c_tq3 = cosine(w, tq3), c_aff = cosine(w, aff), c_aff_ref = cosine(w, aff_ref);
  const double e_tq3 = rmse(w, tq3), e_aff = rmse(w, aff), e_aff_ref = rmse(w, aff_ref);
  std::printf("heavy tails: tq3 cos %.5f rmse %.5f | affine3_g64 cos %.5f rmse %.5f | mlx rule cos %.5f rmse %.5f\n",
              c_tq3, e_tq3, c_aff, e_aff, c_aff_ref, e_aff_ref);
  EXPECT_GT(c_tq3, c_aff);
  EXPECT_LT(e_tq3, e_aff);
  EXPECT_GT(c_tq3, c_aff_ref);
  EXPECT_LT(e_tq3, e_aff_ref);
  // And with fewer bits: 3.125 against 3.5 per weight.
  EXPECT_LT(codec("tq3").bits_per_weight(), a3.bits_per_weight());
}

TEST(Turbo, BlockScaleIsLeastSquaresForItsCodes) {
  const Codec& rot = codec("rot128");
  for (const char* name : {"tq3", "tq4"}) {
    const Codec& c = codec(name);
    const auto x = student_t_matrix(1, 8 * kBlock, 205);
    const auto bytes = encode(c, x);
    const auto y = decode(c, bytes, int64_t(x.size()));
    std::vector<float> rx(x.size()), ry(x.size());
    rot.encode(x.data(), rx.data(), int64_t(x.size()), nullptr);
    rot.encode(y.data(), ry.data(), int64_t(x.size()), nullptr);
    for (int64_t b = 0; b < 8; ++b) {
      fp16_t h;
      std::memcpy(&h, bytes.data() + size_t(b * c.block_bytes), 2);
      const double s = fp16_to_f32(h);
      // ry = s * levels; the least-squares scale is <rx, levels> / <levels, levels>.
      double xl = 0, ll = 0;
      for (int64_t i = b * kBlock; i < (b + 1) * kBlock; ++i) {
        const double l = ry[size_t(i)] / s;
        xl += rx[size_t(i)] * l;
        ll += l * l;
      }
      EXPECT_NEAR(s, xl / ll, 2e-3 * s) << name << " block " << b;  // fp16 keeps 11 bits
    }
  }
}

std::vector<const Codec*> tq_codecs() { return {&codec("tq3"), &codec("tq4")}; }

TEST(Turbo, EveryRowHasAvx2AndAvx512Kernels) {
  for (const Codec* c : tq_codecs())
    for (int i = 0; i < kIsaCount; ++i) {
      EXPECT_NE(c->decode_by_isa[size_t(i)], nullptr) << c->name << " " << isa_name(Isa(i));
      EXPECT_NE(c->dot_by_isa[size_t(i)], nullptr) << c->name << " " << isa_name(Isa(i));
    }
}

TEST(Turbo, DotRefEqualsF32DotOfDecodedWeights) {
  const Codec& rot = codec("rot128");
  const int64_t n = 6 * kBlock;
  for (const Codec* c : tq_codecs()) {
    const auto w = student_t_matrix(1, n, 206), x = gaussian_matrix(1, n, 207);
    const auto bytes = encode(*c, w);
    const auto wd = decode(*c, bytes, n);
    std::vector<float> xr(static_cast<size_t>(n));
    rot.encode(x.data(), xr.data(), n, nullptr);
    double exact = 0, sum_abs = 0;
    for (int64_t i = 0; i < n; ++i) {
      exact += double(wd[size_t(i)]) * x[size_t(i)];
      sum_abs += std::abs(double(wd[size_t(i)]) * x[size_t(i)]);
    }
    EXPECT_NEAR(c->dot_by_isa[0](bytes.data(), xr.data(), n), exact, 1e-5 * sum_abs) << c->name;
  }
}

TEST(Turbo, SimdDecodeIsBitIdenticalToScalar) {
  std::mt19937 rng(208);
  for (const Codec* c : {&codec("tq3"), &codec("tq4"), &codec("rot128")})
    for (int i = 1; i < kIsaCount; ++i) {
      if (!isa_supported(Isa(i)) || !c->decode_by_isa[size_t(i)]) continue;
      for (int64_t blocks : {1, 2, 5, 16}) {
        const int64_t n = blocks * kBlock;
        const auto x = student_t_matrix(1, n, rng());
        const auto bytes = encode(*c, x);
        std::vector<float> ref(size_t(n), 0.0f), got(size_t(n), 1.0f);
        c->decode_by_isa[0](bytes.data(), ref.data(), n);
        c->decode_by_isa[size_t(i)](bytes.data(), got.data(), n);
        EXPECT_EQ(0, std::memcmp(ref.data(), got.data(), size_t(n) * sizeof(float)))
            << c->name << " " << isa_name(Isa(i)) << " n=" << n;
      }
    }
}

TEST(Turbo, SimdDotWithinToleranceOfScalar) {
  const Codec& rot = codec("rot128");
  std::mt19937 rng(209);
  for (const Codec* c : tq_codecs())
    for (int i = 1; i < kIsaCount; ++i) {
      if (!isa_supported(Isa(i)) || !c->dot_by_isa[size_t(i)]) continue;
      for (int64_t blocks : {1, 2, 3, 7, 32}) {
        const int64_t n = blocks * kBlock;
        const auto w = student_t_matrix(1, n, rng()), x = gaussian_matrix(1, n, rng(), 2.0f);
        const auto bytes = encode(*c, w);
        std::vector<float> xr(static_cast<size_t>(n));
        rot.encode(x.data(), xr.data(), n, nullptr);
        const auto wd = decode(*c, bytes, n);
        double sum_abs = 0;
        for (int64_t j = 0; j < n; ++j) sum_abs += std::abs(double(wd[size_t(j)]) * x[size_t(j)]);
        const float ref = c->dot_by_isa[0](bytes.data(), xr.data(), n);
        const float got = c->dot_by_isa[size_t(i)](bytes.data(), xr.data(), n);
        EXPECT_NEAR(got, ref, 1e-5 * sum_abs) << c->name << " " << isa_name(Isa(i)) << " n=" << n;
      }
    }
}

TEST(Turbo, ZeroBlockDecodesToZero) {
  for (const Codec* c : tq_codecs()) {
    const std::vector<float> x(2 * kBlock, 0.0f);
    for (float v : round_trip(*c, x)) EXPECT_EQ(v, 0.0f) << c->name;
  }
}

TEST(Turbo, BadRowLengthsThrowNamingTheCodec) {
  for (const Codec* c : {&codec("tq3"), &codec("tq4"), &codec("rot128")}) {
    const int64_t n = kBlock + 32;
    std::vector<float> x(static_cast<size_t>(n), 1.0f), y(static_cast<size_t>(n)), act(4 * kBlock);
    std::vector<uint8_t> bytes(size_t(4 * c->block_bytes));
    try {
      c->encode(x.data(), bytes.data(), n, nullptr);
      FAIL() << c->name << " accepted n=" << n;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(std::string(c->name)), std::string::npos) << e.what();
    }
    for (int i = 0; i < kIsaCount; ++i) {
      if (!isa_supported(Isa(i))) continue;
      if (c->decode_by_isa[size_t(i)]) {
        EXPECT_THROW(c->decode_by_isa[size_t(i)](bytes.data(), y.data(), n), Error);
      }
      if (c->dot_by_isa[size_t(i)]) {
        EXPECT_THROW(c->dot_by_isa[size_t(i)](bytes.data(), act.data(), n), Error);
      }
    }
  }
}

}  // namespace
}  // namespace moelab::quant
