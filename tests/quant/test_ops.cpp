// Properties of the ops layer that hold for every weight codec: the quantized
// path agrees with the exact path within the bound set by 8-bit activations,
// gemm and gather_gemv agree with gemv, threading changes nothing, and bad
// shapes or buffers are rejected with clear errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/error.h"
#include "core/random.h"
#include "quant/ops.h"

namespace moelab::quant {
namespace {

std::vector<const Codec*> weight_codecs() {
  std::vector<const Codec*> out;
  for (const Codec& c : all_codecs())
    if (is_weight_codec(c)) out.push_back(&c);
  return out;
}

// Column count that every codec accepts (multiple of 256) and is not a power of two.
constexpr int64_t kCols = 768;

class OpsForCodec : public ::testing::TestWithParam<const Codec*> {};

TEST_P(OpsForCodec, QuantizedGemvWithinActivationQuantizationBoundOfExact) {
  const Codec& c = *GetParam();
  const int64_t rows = 37;
  const auto w = student_t_matrix(rows, kCols, 11);
  const auto x = gaussian_matrix(1, kCols, 12);
  const auto bytes = quantize(c, w, rows, kCols);
  const QMatrix m = make_qmatrix(c, bytes.data(), bytes.size(), rows, kCols);
  std::vector<float> decoded(size_t(rows * kCols)), y_q(static_cast<size_t>(rows)), y_e(static_cast<size_t>(rows));
  dequantize(m, decoded);
  gemv(m, x.data(), y_q.data(), nullptr, DotPath::quantized);
  gemv(m, x.data(), y_e.data(), nullptr, DotPath::exact);
  const float amax = std::abs(*std::max_element(x.begin(), x.end(), [](float a, float b) { return std::abs(a) < std::abs(b); }));
  for (int64_t r = 0; r < rows; ++r) {
    double sum_abs_w = 0, exact = 0;
    for (int64_t j = 0; j < kCols; ++j) {
      sum_abs_w += std::abs(decoded[size_t(r * kCols + j)]);
      exact += double(decoded[size_t(r * kCols + j)]) * x[size_t(j)];
    }
    // 8-bit activations round each x_j by at most amax/254; allow float noise on top.
    const double bound = sum_abs_w * amax / 200.0 + 1e-4 * sum_abs_w;
    EXPECT_NEAR(y_e[size_t(r)], exact, 1e-4 * sum_abs_w + 1e-5) << c.name << " row " << r << " (exact path)";
    EXPECT_NEAR(y_q[size_t(r)], exact, bound) << c.name << " row " << r << " (quantized path)";
  }
}

TEST_P(OpsForCodec, GemmRowsEqualGemvAndThreadsChangeNothing) {
  const Codec& c = *GetParam();
  const int64_t rows = 29, m = 5;
  const auto w = gaussian_matrix(rows, kCols, 21);
  const auto x = gaussian_matrix(m, kCols, 22);
  const auto bytes = quantize(c, w, rows, kCols);
  const QMatrix mat = make_qmatrix(c, bytes.data(), bytes.size(), rows, kCols);
  ThreadPool pool(2);
  for (DotPath path : {DotPath::quantized, DotPath::exact}) {
    std::vector<float> y_gemm(size_t(m * rows)), y_gemm_mt(static_cast<size_t>(m * rows)), y_gemv(static_cast<size_t>(rows));
    gemm(mat, x.data(), m, y_gemm.data(), nullptr, path);
    gemm(mat, x.data(), m, y_gemm_mt.data(), &pool, path);
    EXPECT_EQ(0, std::memcmp(y_gemm.data(), y_gemm_mt.data(), y_gemm.size() * sizeof(float))) << c.name;
    for (int64_t i = 0; i < m; ++i) {
      gemv(mat, x.data() + i * kCols, y_gemv.data(), &pool, path);
      EXPECT_EQ(0, std::memcmp(y_gemv.data(), y_gemm.data() + i * rows, size_t(rows) * sizeof(float)))
          << c.name << " activation row " << i;
    }
  }
}

TEST_P(OpsForCodec, GatherGemvEqualsGemvOnEachExpertSlice) {
  const Codec& c = *GetParam();
  const int64_t n_expert = 6, rows = 10;
  const auto w = gaussian_matrix(n_expert * rows, kCols, 31);
  const auto x = gaussian_matrix(3, kCols, 32);
  const auto bytes = quantize(c, w, n_expert * rows, kCols);
  const QMatrix all = make_qmatrix(c, bytes.data(), bytes.size(), n_expert * rows, kCols);
  const std::vector<int32_t> ids = {4, 0, 4};  // repeats allowed: two tokens may pick one expert
  ThreadPool pool(2);
  Activations shared, per_id;
  shared.encode(c, x.data(), 1, kCols, DotPath::quantized);
  per_id.encode(c, x.data(), 3, kCols, DotPath::quantized);
  std::vector<float> y_shared(ids.size() * size_t(rows)), y_per_id(ids.size() * size_t(rows)), y_ref(static_cast<size_t>(rows));
  gather_gemv(all, n_expert, ids, shared, y_shared.data(), &pool);
  gather_gemv(all, n_expert, ids, per_id, y_per_id.data(), &pool);
  for (size_t i = 0; i < ids.size(); ++i) {
    const QMatrix slice = make_qmatrix(c, all.row(ids[i] * rows), size_t(rows) * all.row_bytes, rows, kCols);
    gemv(slice, x.data(), y_ref.data(), nullptr);
    EXPECT_EQ(0, std::memcmp(y_ref.data(), y_shared.data() + i * size_t(rows), size_t(rows) * sizeof(float)));
    gemv(slice, x.data() + i * kCols, y_ref.data(), nullptr);
    EXPECT_EQ(0, std::memcmp(y_ref.data(), y_per_id.data() + i * size_t(rows), size_t(rows) * sizeof(float)));
  }
  const std::vector<int32_t> bad = {6};
  EXPECT_THROW(gather_gemv(all, n_expert, bad, shared, y_shared.data(), nullptr), Error);
}

TEST_P(OpsForCodec, RejectsRowLengthNotAMultipleOfTheBlock) {
  const Codec& c = *GetParam();
  if (c.block_values == 1) GTEST_SKIP() << c.name << " has no blocks";
  const int64_t cols = c.block_values + c.block_values / 2;
  const std::vector<float> w(size_t(cols), 1.0f);
  try {
    quantize(c, w, 1, cols);
    FAIL() << "no error for " << c.name;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(std::string(c.name)), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("not a multiple"), std::string::npos) << e.what();
  }
}

TEST_P(OpsForCodec, RejectsShortAndMisalignedBuffers) {
  const Codec& c = *GetParam();
  const auto w = gaussian_matrix(4, kCols, 41);
  auto bytes = quantize(c, w, 4, kCols);
  EXPECT_THROW(make_qmatrix(c, bytes.data(), bytes.size() - 1, 4, kCols), Error);
  EXPECT_THROW(make_qmatrix(c, bytes.data(), bytes.size(), 5, kCols), Error);
  std::vector<uint8_t> shifted(bytes.size() + 8);
  EXPECT_THROW(make_qmatrix(c, shifted.data() + 1, bytes.size(), 4, kCols), Error);
  std::vector<float> y(3);
  EXPECT_THROW(dequantize(make_qmatrix(c, bytes.data(), bytes.size(), 4, kCols), y), Error);
}

INSTANTIATE_TEST_SUITE_P(AllWeightCodecs, OpsForCodec, ::testing::ValuesIn(weight_codecs()),
                         [](const auto& p) { return std::string(p.param->name); });

TEST(Ops, ActivationsForAnotherCodecAreRejected) {
  const auto w = gaussian_matrix(2, 256, 1);
  const auto bytes = quantize(codec("q8_0"), w, 2, 256);
  const QMatrix m = make_qmatrix(codec("q8_0"), bytes.data(), bytes.size(), 2, 256);
  Activations act;
  act.encode(codec("q4_k"), w.data(), 1, 256, DotPath::quantized);
  std::vector<float> y(2);
  EXPECT_THROW(gemv(m, act, y.data()), Error);
}

}  // namespace
}  // namespace moelab::quant
