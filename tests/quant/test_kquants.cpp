// The k-quants (q2_k .. q6_k) and their activation codec q8_k, against
// llama.cpp as the oracle (fixtures from tests/fixtures/make_kquant_fixtures.py:
// llama_model_quantize output read back with gguf-py):
//   - decoding llama.cpp's bytes equals gguf.quants.dequantize bit for bit
//   - encode_*_ref writes llama.cpp's bytes (no imatrix), encode_* with
//     importance writes llama.cpp's imatrix bytes; q8_k matches ggml's
//   - dots agree with ggml's scalar vec_dot and with f32 dots of decoded rows
//   - importance lowers the importance-weighted error
//   - every SIMD kernel the CPU runs: decode bit-identical, dot within 1e-5
//     of sum |w x| of the scalar reference
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
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

const char* const kKQuants[] = {"q2_k", "q3_k", "q4_k", "q5_k", "q6_k"};

std::string fixture_path(const std::string& name) {
  return std::string(MOELAB_SOURCE_DIR) + "/tests/fixtures/kquants/" + name;
}

template <typename T>
std::vector<T> read_fixture(const std::string& name) {
  std::ifstream f(fixture_path(name), std::ios::binary);
  if (!f) throw Error("missing fixture " + fixture_path(name) + " (run tests/fixtures/make_kquant_fixtures.py)");
  std::vector<char> raw((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  std::vector<T> out(raw.size() / sizeof(T));
  std::memcpy(out.data(), raw.data(), out.size() * sizeof(T));
  return out;
}

const nlohmann::json& manifest() {
  static const nlohmann::json m = [] {
    std::ifstream f(fixture_path("manifest.json"));
    if (!f) throw Error("missing fixture manifest " + fixture_path("manifest.json"));
    return nlohmann::json::parse(f);
  }();
  return m;
}

// One fixture tensor: `rows` f32 rows of `cols` values with llama.cpp's encodings.
struct Group {
  std::string name;
  int64_t rows, cols;
  std::vector<float> input;       // [rows, cols]
  std::vector<float> importance;  // [cols]
  std::vector<float> act;         // [cols]
  std::vector<std::string> kinds;
};

std::vector<Group> groups() {
  std::vector<Group> out;
  for (const auto& [name, g] : manifest()["groups"].items()) {
    Group grp{name, g["rows"].get<int64_t>(), g["cols"].get<int64_t>(), read_fixture<float>(name + ".input.f32"),
              read_fixture<float>(name + ".importance.f32"), read_fixture<float>(name + ".act.f32"),
              g["kinds"].get<std::vector<std::string>>()};
    EXPECT_EQ(grp.input.size(), size_t(grp.rows * grp.cols)) << name;
    out.push_back(std::move(grp));
  }
  return out;
}

std::vector<uint8_t> encode_row(const Codec& c, const float* x, int64_t n, const float* importance, bool reference) {
  std::vector<uint8_t> out(c.row_bytes(n));
  (reference ? c.encode_ref : c.encode)(x, out.data(), n, importance);
  return out;
}

std::vector<float> decode_row(const Codec& c, const uint8_t* bytes, int64_t n, Isa isa = Isa::scalar) {
  std::vector<float> y(static_cast<size_t>(n));
  c.decode_by_isa[size_t(isa)](bytes, y.data(), n);
  return y;
}

// sum w (x - y)^2 (w = 1 when null)
double weighted_sq_error(const float* x, const std::vector<float>& y, const float* w) {
  double e = 0;
  for (size_t i = 0; i < y.size(); ++i) {
    const double d = double(x[i]) - y[i];
    e += (w ? w[i] : 1.0) * d * d;
  }
  return e;
}

// ---------------------------------------------------------------- oracle

TEST(KQuantOracle, DecodeOfLlamaCppBytesEqualsGgufDequantizeBitForBit) {
  for (const Group& g : groups())
    for (const char* name : kKQuants) {
      const Codec& c = codec(name);
      const auto bytes = read_fixture<uint8_t>(g.name + "." + name + ".bin");
      const auto expected = read_fixture<float>(g.name + "." + name + ".deq.f32");
      ASSERT_EQ(bytes.size(), c.row_bytes(g.cols) * size_t(g.rows)) << name;
      ASSERT_EQ(expected.size(), size_t(g.rows * g.cols));
      for (int i = 0; i < kIsaCount; ++i) {
        const Isa isa = Isa(i);
        if (!isa_supported(isa) || !c.decode_by_isa[size_t(i)]) continue;
        for (int64_t r = 0; r < g.rows; ++r) {
          const auto y = decode_row(c, bytes.data() + size_t(r) * c.row_bytes(g.cols), g.cols, isa);
          EXPECT_EQ(0, std::memcmp(y.data(), expected.data() + r * g.cols, y.size() * sizeof(float)))
              << name << " " << isa_name(isa) << " " << g.name << " row " << r << " (" << g.kinds[size_t(r)] << ")";
        }
      }
    }
}

// Compares moelab's encoder with llama.cpp's bytes for one fixture variant.
// Reports identical blocks; requires identity and no worse error.
void expect_encoder_matches_llama_cpp(bool with_importance) {
  for (const char* name : kKQuants) {
    const Codec& c = codec(name);
    int64_t blocks = 0, same_blocks = 0, bytes_total = 0, same_bytes = 0;
    for (const Group& g : groups()) {
      const auto llama = read_fixture<uint8_t>(g.name + "." + name + (with_importance ? ".imatrix.bin" : ".bin"));
      const size_t row_bytes = c.row_bytes(g.cols);
      for (int64_t r = 0; r < g.rows; ++r) {
        const float* x = g.input.data() + r * g.cols;
        const float* imp = with_importance ? g.importance.data() : nullptr;
        const auto ours = with_importance ? encode_row(c, x, g.cols, imp, false) : encode_row(c, x, g.cols, nullptr, true);
        const uint8_t* theirs = llama.data() + size_t(r) * row_bytes;
        for (size_t b = 0; b < row_bytes / size_t(c.block_bytes); ++b) {
          const size_t off = b * size_t(c.block_bytes);
          ++blocks;
          same_blocks += std::memcmp(ours.data() + off, theirs + off, size_t(c.block_bytes)) == 0;
        }
        for (size_t k = 0; k < row_bytes; ++k) same_bytes += ours[k] == theirs[k];
        bytes_total += int64_t(row_bytes);
        // Error of our round trip vs llama.cpp's, on this row (importance-weighted when given).
        const double e_ours = weighted_sq_error(x, decode_row(c, ours.data(), g.cols), imp);
        const double e_llama = weighted_sq_error(x, decode_row(c, theirs, g.cols), imp);
        EXPECT_LE(std::sqrt(e_ours), std::sqrt(e_llama) * 1.01 + 1e-30)
            << name << " " << g.name << " row " << r << " (" << g.kinds[size_t(r)] << ")";
        EXPECT_EQ(0, std::memcmp(ours.data(), theirs, row_bytes))
            << name << " " << g.name << " row " << r << " (" << g.kinds[size_t(r)] << ") differs from llama.cpp";
      }
    }
    std::printf("  %s%s: %lld/%lld blocks, %lld/%lld bytes identical to llama.cpp\n", name,
                with_importance ? " (imatrix)" : "", (long long)same_blocks, (long long)blocks, (long long)same_bytes,
                (long long)bytes_total);
  }
}

TEST(KQuantOracle, EncodeRefWritesLlamaCppBytes) { expect_encoder_matches_llama_cpp(false); }

TEST(KQuantOracle, EncodeWithImportanceWritesLlamaCppImatrixBytes) { expect_encoder_matches_llama_cpp(true); }

TEST(KQuantOracle, EncodeWithoutImportanceEqualsEncodeRef) {
  const auto x = student_t_matrix(1, 1024, 5, 4.0, 0.02f);
  for (const char* name : kKQuants) {
    const Codec& c = codec(name);
    EXPECT_EQ(encode_row(c, x.data(), 1024, nullptr, false), encode_row(c, x.data(), 1024, nullptr, true)) << name;
  }
}

TEST(KQuantOracle, Q8KEncodeEqualsGgmlQuantizeRowQ8KRef) {
  const Codec& q8 = codec("q8_k");
  for (const Group& g : groups()) {
    const auto expected = read_fixture<uint8_t>(g.name + ".act.q8_k.bin");
    const auto ours = encode_row(q8, g.act.data(), g.cols, nullptr, false);
    EXPECT_EQ(ours, expected) << g.name;
    // And the decode is d * q within half a step of the input.
    const auto y = decode_row(q8, ours.data(), g.cols);
    for (int64_t b = 0; b < g.cols / kQK_K; ++b) {
      BlockQ8_K blk;
      std::memcpy(&blk, ours.data() + size_t(b) * sizeof blk, sizeof blk);
      for (int j = 0; j < kQK_K; ++j)
        EXPECT_NEAR(y[size_t(b * kQK_K + j)], g.act[size_t(b * kQK_K + j)], std::abs(blk.d) * 0.5001f);
      for (int s = 0; s < kQK_K / 16; ++s) {
        int sum = 0;
        for (int j = 0; j < 16; ++j) sum += blk.qs[16 * s + j];
        EXPECT_EQ(blk.bsums[s], sum);
      }
    }
  }
}

TEST(KQuantOracle, DotsMatchGgmlScalarVecDot) {
  for (const Group& g : groups()) {
    const auto act = read_fixture<uint8_t>(g.name + ".act.q8_k.bin");
    const auto act_f = decode_row(codec("q8_k"), act.data(), g.cols);
    for (const char* name : kKQuants) {
      const Codec& c = codec(name);
      const auto bytes = read_fixture<uint8_t>(g.name + "." + name + ".bin");
      const auto& expected = manifest()["groups"][g.name]["dots"][name];
      for (int64_t r = 0; r < g.rows; ++r) {
        const uint8_t* w = bytes.data() + size_t(r) * c.row_bytes(g.cols);
        const auto wf = decode_row(c, w, g.cols);
        double scale = 0;
        for (size_t j = 0; j < wf.size(); ++j) scale += std::abs(double(wf[j]) * act_f[j]);
        const double ref = expected[size_t(r)].get<double>();
        for (int i = 0; i < kIsaCount; ++i) {
          if (!isa_supported(Isa(i)) || !c.dot_by_isa[size_t(i)]) continue;
          EXPECT_NEAR(c.dot_by_isa[size_t(i)](w, act.data(), g.cols), ref, 1e-5 * scale + 1e-30)
              << name << " " << isa_name(Isa(i)) << " " << g.name << " row " << r;
        }
      }
    }
  }
}

// ---------------------------------------------------------------- properties

TEST(KQuant, RejectsLengthsThatAreNotWholeSuperBlocks) {
  std::vector<float> x(384, 1.0f);
  std::vector<uint8_t> buf(4096);
  for (const char* name : {"q2_k", "q3_k", "q4_k", "q5_k", "q6_k", "q8_k"}) {
    const Codec& c = codec(name);
    EXPECT_THROW(c.encode(x.data(), buf.data(), 384, nullptr), Error) << name;
    EXPECT_THROW(c.encode_ref(x.data(), buf.data(), 100, nullptr), Error) << name;
    EXPECT_THROW(c.decode_by_isa[0](buf.data(), x.data(), 128), Error) << name;
    try {
      c.encode(x.data(), buf.data(), 384, nullptr);
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("384"), std::string::npos) << e.what();
    }
  }
}

TEST(KQuant, MoreBitsGiveLowerErrorOnGaussianRows) {
  const int64_t n = 4096;
  const auto x = gaussian_matrix(1, n, 77);
  double prev = 1e30;
  for (const char* name : kKQuants) {
    const Codec& c = codec(name);
    const double rmse = std::sqrt(weighted_sq_error(x.data(), decode_row(c, encode_row(c, x.data(), n, nullptr, true).data(), n), nullptr) / n);
    EXPECT_LT(rmse, prev) << name;
    // Uniform-quantizer bound with generous slack: step ~ 6 sigma / 2^bits.
    EXPECT_LT(rmse, 6.0 / std::pow(2.0, c.bits) / std::sqrt(12.0) * 2.0) << name;
    prev = rmse;
  }
}

TEST(KQuant, ImportanceLowersImportanceWeightedError) {
  const int64_t rows = 8, n = 1024;
  const auto x = student_t_matrix(rows, n, 91, 4.0, 0.02f, 8, 10.0f);
  // Skewed importance: a few columns matter a hundred times more, as outlier
  // activation channels make them in an imatrix.
  std::mt19937 rng(3);
  std::vector<float> imp(static_cast<size_t>(n));
  std::lognormal_distribution<float> lognormal(0.0f, 1.0f);
  for (float& v : imp) v = lognormal(rng);
  for (int64_t j = 0; j < n; j += 37) imp[size_t(j)] *= 100.0f;
  for (const char* name : kKQuants) {
    const Codec& c = codec(name);
    double e_plain = 0, e_imp = 0;
    for (int64_t r = 0; r < rows; ++r) {
      const float* xr = x.data() + r * n;
      e_plain += weighted_sq_error(xr, decode_row(c, encode_row(c, xr, n, nullptr, false).data(), n), imp.data());
      e_imp += weighted_sq_error(xr, decode_row(c, encode_row(c, xr, n, imp.data(), false).data(), n), imp.data());
    }
    std::printf("  %s: importance-weighted sq error %.4g without importance, %.4g with (%.1f%% lower)\n", name, e_plain,
                e_imp, 100.0 * (1.0 - e_imp / e_plain));
    EXPECT_LT(e_imp, 0.95 * e_plain) << name;
  }
}

TEST(KQuant, DotEqualsF32DotOfDecodedRows) {
  const Codec& q8 = codec("q8_k");
  for (int64_t n : {256, 768, 2048}) {
    const auto w = student_t_matrix(1, n, uint64_t(n), 4.0, 0.05f);
    const auto a = gaussian_matrix(1, n, uint64_t(n) + 1);
    const auto act = encode_row(q8, a.data(), n, nullptr, false);
    const auto af = decode_row(q8, act.data(), n);
    for (const char* name : kKQuants) {
      const Codec& c = codec(name);
      const auto wb = encode_row(c, w.data(), n, nullptr, true);
      const auto wf = decode_row(c, wb.data(), n);
      double exact = 0, scale = 0;
      for (size_t j = 0; j < size_t(n); ++j) {
        exact += double(wf[j]) * af[j];
        scale += std::abs(double(wf[j]) * af[j]);
      }
      EXPECT_NEAR(c.dot_by_isa[0](wb.data(), act.data(), n), exact, 1e-5 * scale) << name << " n=" << n;
    }
  }
}

// ---------------------------------------------------------------- SIMD twins

// Random blocks: encoded random rows (realistic) followed by raw random bytes
// with finite, modest fp16 scales (every bit pattern of codes and sub-scales).
std::vector<uint8_t> random_weight_row(const Codec& c, int64_t n, uint64_t seed) {
  auto bytes = encode_row(c, student_t_matrix(1, n, seed, 4.0, 0.05f).data(), n, nullptr, true);
  std::mt19937_64 rng(seed);
  const int64_t n_blocks = n / kQK_K;
  for (int64_t b = n_blocks / 2; b < n_blocks; ++b) {
    uint8_t* blk = bytes.data() + size_t(b) * size_t(c.block_bytes);
    for (int k = 0; k < c.block_bytes; ++k) blk[k] = uint8_t(rng());
    std::uniform_real_distribution<float> u(-0.01f, 0.01f);
    const fp16_t d = f32_to_fp16(u(rng)), dmin = f32_to_fp16(u(rng));
    // fp16 fields: at the start (q4_k, q5_k: d, dmin) or at the end (q2_k: d, dmin; q3_k, q6_k: d).
    if (c.name == "q4_k" || c.name == "q5_k") {
      std::memcpy(blk, &d, 2);
      std::memcpy(blk + 2, &dmin, 2);
    } else if (c.name == "q2_k") {
      std::memcpy(blk + c.block_bytes - 4, &d, 2);
      std::memcpy(blk + c.block_bytes - 2, &dmin, 2);
    } else {
      std::memcpy(blk + c.block_bytes - 2, &d, 2);
    }
  }
  return bytes;
}

TEST(KQuantSimd, DecodeKernelsAreBitIdenticalToScalar) {
  int checked = 0;
  for (const char* name : {"q2_k", "q3_k", "q4_k", "q5_k", "q6_k", "q8_k"}) {
    const Codec& c = codec(name);
    for (int i = 1; i < kIsaCount; ++i) {
      if (!isa_supported(Isa(i)) || !c.decode_by_isa[size_t(i)]) continue;
      for (int64_t n : {256, 512, 1280, 4096}) {
        const auto bytes = c.name == "q8_k" ? encode_row(c, gaussian_matrix(1, n, 5).data(), n, nullptr, false)
                                            : random_weight_row(c, n, uint64_t(n) * 7 + uint64_t(i));
        const auto ref = decode_row(c, bytes.data(), n);
        const auto got = decode_row(c, bytes.data(), n, Isa(i));
        EXPECT_EQ(0, std::memcmp(ref.data(), got.data(), ref.size() * sizeof(float)))
            << name << " " << isa_name(Isa(i)) << " n=" << n;
        ++checked;
      }
    }
  }
  if (isa_supported(Isa::avx2)) {
    EXPECT_GT(checked, 0) << "no SIMD decode kernel was exercised";
  }
}

TEST(KQuantSimd, DotKernelsMatchScalarWithin1e5OfSumAbs) {
  const Codec& q8 = codec("q8_k");
  int checked = 0;
  for (const char* name : kKQuants) {
    const Codec& c = codec(name);
    for (int i = 1; i < kIsaCount; ++i) {
      if (!isa_supported(Isa(i)) || !c.dot_by_isa[size_t(i)]) continue;
      for (int64_t n : {256, 512, 1280, 4096, 14336}) {
        const uint64_t seed = uint64_t(n) * 13 + uint64_t(i);
        const auto w = random_weight_row(c, n, seed);
        const auto a = student_t_matrix(1, n, seed + 1, 5.0, 1.0f, 4, 20.0f);
        const auto act = encode_row(q8, a.data(), n, nullptr, false);
        const auto wf = decode_row(c, w.data(), n), af = decode_row(q8, act.data(), n);
        double scale = 0;
        for (size_t j = 0; j < size_t(n); ++j) scale += std::abs(double(wf[j]) * af[j]);
        const float ref = c.dot_by_isa[0](w.data(), act.data(), n);
        const float got = c.dot_by_isa[size_t(i)](w.data(), act.data(), n);
        EXPECT_NEAR(got, ref, 1e-5 * scale) << name << " " << isa_name(Isa(i)) << " n=" << n;
        ++checked;
      }
    }
  }
  if (isa_supported(Isa::avx2)) {
    EXPECT_GT(checked, 0) << "no SIMD dot kernel was exercised";
  }
}

}  // namespace
}  // namespace moelab::quant
