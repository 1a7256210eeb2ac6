// The floating (f32, f16, bf16) and legacy block codecs (q4_0 .. q8_1):
//   - encode is byte-identical to gguf-py / ggml's _ref quantizers and decode
//     bit-identical to gguf.quants.dequantize (committed fixtures, made by
//     tests/fixtures/make_codec_fixtures.py);
//   - every SIMD decoder is bit-identical to the scalar one, every SIMD dot is
//     within a stated tolerance of the scalar dot, on fresh random rows of
//     several lengths at unaligned addresses;
//   - the scalar dots agree with ggml's dots and with the f32 dot of the
//     decoded values; bad rows throw moelab::Error.
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/fp16.h"
#include "quant/blocks.h"
#include "quant/codec.h"

namespace moelab::quant {
namespace {

const std::string kDir = std::string(MOELAB_SOURCE_DIR) + "/tests/fixtures/codecs/";

// Every codec this family owns; the weight codecs among them have dots.
const char* const kLegacyCodecs[] = {"f32", "f16", "bf16", "q4_0", "q4_1", "q5_0", "q5_1", "q8_0", "q8_1"};
const char* const kDotCodecs[] = {"f32", "f16", "bf16", "q4_0", "q4_1", "q5_0", "q5_1", "q8_0"};

// Error budgets, relative to sum_i |w_i x_i| of the decoded operands.
// SIMD and scalar dots share the exact integer block sums (float dots: the
// same products) and differ only in f32 summation order: ~n_terms * 2^-24 at
// worst for the lengths below, far less in practice.
constexpr double kSimdDotRel = 2e-5;
// Scalar dot against a double-precision dot of the decoded values.
constexpr double kRefDotRel = 1e-5;
// Against ggml's own dots on the fixture rows (8 blocks each).
constexpr double kGgmlDotRel = 1e-5;

template <class T>
std::vector<T> read_file(const std::string& name) {
  std::ifstream f(kDir + name, std::ios::binary);
  EXPECT_TRUE(f.good()) << "missing fixture " << kDir + name;
  std::vector<char> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  std::vector<T> out(bytes.size() / sizeof(T));
  std::memcpy(out.data(), bytes.data(), out.size() * sizeof(T));
  return out;
}

const nlohmann::json& manifest() {
  static const nlohmann::json m = [] {
    std::ifstream f(kDir + "manifest.json");
    return nlohmann::json::parse(f);
  }();
  return m;
}

std::vector<Isa> supported_isas() {
  std::vector<Isa> out;
  for (int i = 0; i < kIsaCount; ++i)
    if (isa_supported(Isa(i))) out.push_back(Isa(i));
  return out;
}

bool is_min_codec(const Codec& c) { return c.name == "q4_1" || c.name == "q5_1"; }

// A buffer whose data starts `offset` bytes past a 64-byte boundary, so the
// kernels never see better alignment than a codec promises.
struct Buffer {
  std::vector<uint8_t> storage;
  size_t offset;
  Buffer(size_t bytes, size_t offset_bytes) : storage(bytes + 64 + offset_bytes), offset(offset_bytes) {}
  uint8_t* data() {
    const auto base = reinterpret_cast<uintptr_t>(storage.data());
    return storage.data() + ((64 - base % 64) % 64) + offset;
  }
  float* floats() { return reinterpret_cast<float*>(data()); }
};

// Rows shaped like trained weights: Gaussian blocks whose scales span 10
// orders of magnitude, with outliers, all-zero and constant blocks mixed in.
std::vector<float> random_row(int64_t n, std::mt19937& rng) {
  std::normal_distribution<float> normal;
  std::uniform_real_distribution<float> uniform(0.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(n));
  for (int64_t b = 0; b < n; b += kQK) {
    const float scale = std::exp(uniform(rng) * 10.0f - 7.0f);
    const float kind = uniform(rng);
    for (int64_t j = b; j < std::min<int64_t>(n, b + kQK); ++j) {
      x[size_t(j)] = kind < 0.03f ? 0.0f : kind < 0.06f ? scale : scale * normal(rng);
      if (uniform(rng) < 0.01f) x[size_t(j)] *= 30.0f;
    }
  }
  return x;
}

std::vector<uint8_t> encode(const Codec& c, const std::vector<float>& x) {
  std::vector<uint8_t> out(c.row_bytes(int64_t(x.size())));
  c.encode_ref(x.data(), out.data(), int64_t(x.size()), nullptr);
  return out;
}

std::vector<float> decode(const Codec& c, const std::vector<uint8_t>& bytes, int64_t n) {
  std::vector<float> y(static_cast<size_t>(n));
  c.decode_by_isa[0](bytes.data(), y.data(), n);
  return y;
}

// sum |w_i x_i| of the decoded operands (plus |m s| per block for the codecs
// whose dot uses the activation's stored sum): what dot errors are measured against.
double dot_scale(const Codec& w_codec, const std::vector<uint8_t>& w, const Codec& a_codec,
                 const std::vector<uint8_t>& a, int64_t n) {
  const auto wd = decode(w_codec, w, n), ad = decode(a_codec, a, n);
  double s = 0.0;
  for (int64_t i = 0; i < n; ++i) s += std::fabs(double(wd[size_t(i)]) * ad[size_t(i)]);
  if (is_min_codec(w_codec)) {
    const size_t wb = size_t(w_codec.block_bytes);
    for (int64_t b = 0; b < n / kQK; ++b) {
      fp16_t m, sy;
      std::memcpy(&m, w.data() + size_t(b) * wb + 2, 2);
      std::memcpy(&sy, a.data() + size_t(b) * sizeof(BlockQ8_1) + 2, 2);
      s += std::fabs(double(fp16_to_f32(m)) * fp16_to_f32(sy));
    }
  }
  return s;
}

double decoded_dot(const Codec& w_codec, const std::vector<uint8_t>& w, const Codec& a_codec,
                   const std::vector<uint8_t>& a, int64_t n) {
  const auto wd = decode(w_codec, w, n), ad = decode(a_codec, a, n);
  double s = 0.0;
  for (int64_t i = 0; i < n; ++i) s += double(wd[size_t(i)]) * ad[size_t(i)];
  return s;
}

// Index of the first value whose bits differ, or -1.
int64_t first_bit_difference(const float* a, const float* b, int64_t n) {
  for (int64_t i = 0; i < n; ++i)
    if (std::bit_cast<uint32_t>(a[i]) != std::bit_cast<uint32_t>(b[i])) return i;
  return -1;
}

// ---- against the fixtures ------------------------------------------------------

TEST(LegacyCodecs, EncodeMatchesGgufByteForByte) {
  const int64_t rows = manifest()["rows"], cols = manifest()["cols"];
  const auto x = read_file<float>("input.f32");
  ASSERT_EQ(int64_t(x.size()), rows * cols);
  for (const char* name : kLegacyCodecs) {
    SCOPED_TRACE(name);
    const Codec& c = codec(name);
    const auto expected = read_file<uint8_t>(std::string(name) + ".bin");
    const size_t row_bytes = c.row_bytes(cols);
    ASSERT_EQ(manifest()["codecs"][name]["row_bytes"].get<size_t>(), row_bytes);
    ASSERT_EQ(expected.size(), size_t(rows) * row_bytes);
    for (EncodeFn fn : {c.encode_ref, c.encode}) {
      std::vector<uint8_t> got(expected.size(), 0xAA);
      for (int64_t r = 0; r < rows; ++r) fn(x.data() + r * cols, got.data() + size_t(r) * row_bytes, cols, nullptr);
      for (size_t i = 0; i < got.size(); ++i)
        ASSERT_EQ(got[i], expected[i]) << "row " << i / row_bytes << ", byte " << i % row_bytes;
      // The whole matrix as one row: blocks are independent.
      std::vector<uint8_t> all(expected.size(), 0x55);
      fn(x.data(), all.data(), rows * cols, nullptr);
      EXPECT_EQ(all, expected);
    }
  }
}

TEST(LegacyCodecs, DecodeMatchesGgufBitForBit) {
  const int64_t rows = manifest()["rows"], cols = manifest()["cols"];
  for (const char* name : kLegacyCodecs) {
    const Codec& c = codec(name);
    const auto bytes = read_file<uint8_t>(std::string(name) + ".bin");
    const auto expected = read_file<float>(std::string(name) + ".deq.f32");
    ASSERT_EQ(int64_t(expected.size()), rows * cols);
    for (Isa isa : supported_isas()) {
      const DecodeFn fn = c.decode_by_isa[size_t(isa)];
      if (!fn) continue;
      SCOPED_TRACE(std::string(name) + " " + std::string(isa_name(isa)));
      std::vector<float> got(expected.size(), -1.0f);
      fn(bytes.data(), got.data(), rows * cols);
      const int64_t i = first_bit_difference(got.data(), expected.data(), rows * cols);
      EXPECT_EQ(i, -1) << "value " << i << ": got " << (i >= 0 ? got[size_t(i)] : 0) << ", gguf "
                       << (i >= 0 ? expected[size_t(i)] : 0);
    }
  }
}

TEST(LegacyCodecs, DotsMatchGgml) {
  const int64_t cols = manifest()["cols"];
  for (const auto& [name, spec] : manifest()["dots"].items()) {
    const Codec& c = codec(name);
    const Codec& a_codec = codec(spec["act"].get<std::string>());
    ASSERT_EQ(c.act, a_codec.name);
    const auto w_all = read_file<uint8_t>(name + ".bin");
    const auto act = read_file<uint8_t>("act_" + std::string(a_codec.name) + ".bin");
    ASSERT_EQ(act.size(), a_codec.row_bytes(cols));
    const auto act_f32 = read_file<float>("act.f32");
    ASSERT_EQ(encode(a_codec, act_f32), act) << "ggml's " << a_codec.name << " of act.f32";
    const size_t row_bytes = c.row_bytes(cols);
    for (const auto& row : spec["rows"]) {
      const int64_t r = row["row"];
      const std::vector<uint8_t> w(w_all.begin() + r * int64_t(row_bytes), w_all.begin() + (r + 1) * int64_t(row_bytes));
      const double expected = row["dot"], scale = dot_scale(c, w, a_codec, act, cols);
      for (Isa isa : supported_isas()) {
        const DotFn fn = c.dot_by_isa[size_t(isa)];
        if (!fn) continue;
        EXPECT_NEAR(fn(w.data(), act.data(), cols), expected, kGgmlDotRel * scale + 1e-30)
            << name << " row " << r << " " << isa_name(isa);
      }
    }
  }
}

// ---- SIMD against scalar ---------------------------------------------------------

TEST(LegacyCodecs, SimdDecodeIsBitIdenticalToScalar) {
  std::mt19937 rng(1234);
  for (const char* name : kLegacyCodecs) {
    const Codec& c = codec(name);
    const std::vector<int64_t> lengths = c.block_values == 1 ? std::vector<int64_t>{1, 7, 15, 16, 17, 33, 100, 1000}
                                                             : std::vector<int64_t>{32, 64, 96, 256, 288, 4320};
    for (int64_t n : lengths) {
      const auto x = random_row(n, rng);
      const auto bytes = encode(c, x);
      // Arbitrary bytes too: every bit pattern of a block must decode the same.
      std::vector<uint8_t> noise(bytes.size());
      for (auto& v : noise) v = uint8_t(rng());
      for (const std::vector<uint8_t>* src : {&bytes, static_cast<const std::vector<uint8_t>*>(&noise)}) {
        Buffer in(src->size(), 2);
        std::memcpy(in.data(), src->data(), src->size());
        std::vector<float> expected(static_cast<size_t>(n));
        c.decode_by_isa[0](in.data(), expected.data(), n);
        for (Isa isa : supported_isas()) {
          const DecodeFn fn = c.decode_by_isa[size_t(isa)];
          if (!fn || isa == Isa::scalar) continue;
          Buffer out(size_t(n) * sizeof(float) + 64, 4);
          std::memset(out.data(), 0x7f, size_t(n) * sizeof(float) + 64);
          fn(in.data(), out.floats(), n);
          for (int64_t i = 0; i < n; ++i) {
            const float got = out.floats()[i], want = expected[size_t(i)];
            // From random bytes a NaN can meet another NaN in d * q + m, and
            // which payload survives follows operand order; any NaN is right then.
            const bool both_nan = src == &noise && got != got && want != want;
            if (!both_nan) {
              ASSERT_EQ(std::bit_cast<uint32_t>(got), std::bit_cast<uint32_t>(want))
                  << name << " " << isa_name(isa) << " n=" << n << " value " << i;
            }
          }
          for (int k = 0; k < 64; ++k)  // nothing written past the row
            ASSERT_EQ(out.data()[size_t(n) * sizeof(float) + size_t(k)], 0x7f) << name << " " << isa_name(isa);
        }
      }
    }
  }
}

TEST(LegacyCodecs, SimdHalfDecodeKeepsEveryBitPattern) {
  // All 65536 halves (NaN payloads, subnormals, infinities) plus a tail of 5.
  const int64_t n = 65536 + 5;
  std::vector<uint16_t> h(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) h[size_t(i)] = uint16_t(i);
  for (const char* name : {"f16", "bf16"}) {
    const Codec& c = codec(name);
    std::vector<float> expected(static_cast<size_t>(n));
    c.decode_by_isa[0](h.data(), expected.data(), n);
    for (Isa isa : supported_isas()) {
      const DecodeFn fn = c.decode_by_isa[size_t(isa)];
      if (!fn) continue;
      std::vector<float> got(static_cast<size_t>(n));
      fn(h.data(), got.data(), n);
      const int64_t i = first_bit_difference(got.data(), expected.data(), n);
      EXPECT_EQ(i, -1) << name << " " << isa_name(isa) << ": half 0x" << std::hex << (i >= 0 ? h[size_t(i)] : 0);
    }
  }
}

TEST(LegacyCodecs, SimdDotsMatchScalarWithinTolerance) {
  std::mt19937 rng(99);
  for (const char* name : kDotCodecs) {
    const Codec& c = codec(name);
    const Codec& a_codec = codec(c.act);
    const std::vector<int64_t> lengths = c.block_values == 1
                                             ? std::vector<int64_t>{1, 15, 16, 17, 63, 64, 65, 200, 4096 + 23}
                                             : std::vector<int64_t>{32, 64, 224, 256, 288, 1024, 4096 + 96};
    for (int64_t n : lengths) {
      const auto w = encode(c, random_row(n, rng));
      std::vector<float> x(static_cast<size_t>(n));
      std::normal_distribution<float> normal;
      for (auto& v : x) v = normal(rng);
      const auto a = encode(a_codec, x);
      Buffer wb(w.size(), c.alignment() == 4 ? 4 : 2), ab(a.size(), a_codec.alignment() == 4 ? 4 : 2);
      std::memcpy(wb.data(), w.data(), w.size());
      std::memcpy(ab.data(), a.data(), a.size());
      const double expected = c.dot_by_isa[0](wb.data(), ab.data(), n);
      const double scale = dot_scale(c, w, a_codec, a, n);
      for (Isa isa : supported_isas()) {
        const DotFn fn = c.dot_by_isa[size_t(isa)];
        if (!fn || isa == Isa::scalar) continue;
        EXPECT_NEAR(fn(wb.data(), ab.data(), n), expected, kSimdDotRel * scale)
            << name << " " << isa_name(isa) << " n=" << n;
      }
    }
  }
}

TEST(LegacyCodecs, SimdActivationEncodersAreByteIdentical) {
  // q8_0 / q8_1 `encode` dispatches on the active ISA; run it under each one.
  struct RestoreIsa {
    Isa isa = active_isa();
    ~RestoreIsa() { set_active_isa(isa); }
  } restore;
  std::mt19937 rng(42);
  std::uniform_int_distribution<int> code(-127, 126);
  std::vector<std::vector<float>> rows;
  for (int64_t n : {32, 64, 96, 4096 + 160}) rows.push_back(random_row(n, rng));
  std::vector<float> special(32 * 8);
  for (int j = 0; j < 32; ++j) {
    special[size_t(j)] = float(code(rng)) + 0.5f;  // x * id lands exactly on .5 (id = 1)
    special[size_t(32 + j)] = -special[size_t(j)] * 0x1p-20f;
    special[size_t(64 + j)] = float(j) * 1e-40f;                        // subnormal inputs
    special[size_t(96 + j)] = (j % 2 ? -1 : 1) * 3.0e38f / float(j + 1);  // near FLT_MAX
    special[size_t(128 + j)] = j == 5 ? std::nanf("") : float(j);       // NaN: the reference's rules
    special[size_t(160 + j)] = j == 7 ? -INFINITY : float(j);
    special[size_t(192 + j)] = 0.0f;
    special[size_t(224 + j)] = j == 3 ? -2.0f : 1.0f;  // negative maximum
  }
  special[0] = 127.0f;
  rows.push_back(special);
  for (const char* name : {"q8_0", "q8_1"}) {
    const Codec& c = codec(name);
    for (const auto& x : rows) {
      const auto expected = encode(c, x);  // encode_ref
      for (Isa isa : supported_isas()) {
        set_active_isa(isa);
        Buffer out(expected.size(), 2);
        Buffer in(x.size() * sizeof(float), 4);
        std::memcpy(in.data(), x.data(), x.size() * sizeof(float));
        c.encode(in.floats(), out.data(), int64_t(x.size()), nullptr);
        for (size_t i = 0; i < expected.size(); ++i)
          ASSERT_EQ(out.data()[i], expected[i]) << name << " " << isa_name(isa) << " n=" << x.size() << " block "
                                                << i / size_t(c.block_bytes) << " byte " << i % size_t(c.block_bytes);
      }
    }
  }
}

TEST(LegacyCodecs, DispatchUsesTheSimdKernels) {
  // A row wired to scalar only would silently be 5-20x slower: pin the wiring.
  // q4_1 and q8_0 keep their AVX2 dots on AVX-512 CPUs: those follow llama.cpp's
  // x86 kernels' order exactly (as llama.cpp's AVX-512 build does), so SmolLM2's
  // logits equal llama.cpp's on either ISA (tests/model/test_forward_golden.cpp).
  for (const char* name : kDotCodecs)
    for (Isa isa : {Isa::avx2, Isa::avx512}) {
      const bool ggml_order = std::string_view(name) == "q4_1" || std::string_view(name) == "q8_0";
      EXPECT_EQ(codec(name).dot_kernel_isa(isa), ggml_order ? Isa::avx2 : isa) << name;
    }
  for (const char* name : kLegacyCodecs) {
    if (std::string_view(name) == "f32") continue;  // decode is a memcpy
    for (Isa isa : {Isa::avx2, Isa::avx512}) EXPECT_EQ(codec(name).decode_kernel_isa(isa), isa) << name;
  }
}

// ---- scalar dots against the decoded values -------------------------------------

TEST(LegacyCodecs, ScalarDotMatchesDotOfDecodedValues) {
  std::mt19937 rng(5);
  for (const char* name : kDotCodecs) {
    const Codec& c = codec(name);
    const Codec& a_codec = codec(c.act);
    for (int64_t n : {32, 256, 4096}) {
      const auto w = encode(c, random_row(n, rng));
      std::vector<float> x(static_cast<size_t>(n));
      std::normal_distribution<float> normal;
      for (auto& v : x) v = normal(rng);
      const auto a = encode(a_codec, x);
      const double got = c.dot_by_isa[0](w.data(), a.data(), n);
      double budget = kRefDotRel * dot_scale(c, w, a_codec, a, n);
      if (is_min_codec(c)) {
        // These dots use the activation's stored s = fp16(d * sum q) for the
        // min term: d before its own fp16 rounding, and s rounded again, so s
        // is off from the decoded fp16(d) * sum q by up to about 2^-10.
        double ms = 0.0;
        for (int64_t b = 0; b < n / kQK; ++b) {
          fp16_t m, s;
          std::memcpy(&m, w.data() + size_t(b * c.block_bytes) + 2, 2);
          std::memcpy(&s, a.data() + size_t(b) * sizeof(BlockQ8_1) + 2, 2);
          ms += std::fabs(double(fp16_to_f32(m)) * fp16_to_f32(s));
        }
        budget += ms * 0x1p-10;
      }
      EXPECT_NEAR(got, decoded_dot(c, w, a_codec, a, n), budget) << name << " n=" << n;
    }
  }
}

// ---- codec properties ----------------------------------------------------------

TEST(LegacyCodecs, RoundTripErrorWithinBudget) {
  // rms(decode(encode(x)) - x) / rms(x) on N(0, 1) rows; each budget sits
  // ~15% above what the format gives (measured 2.1e-4, 1.7e-3, 5.3e-3, 0.038,
  // 0.043, 0.078, 0.085).
  const struct {
    const char* name;
    double budget;
  } kBudgets[] = {{"f32", 0.0},    {"f16", 2.4e-4}, {"bf16", 1.9e-3}, {"q8_0", 6.2e-3}, {"q8_1", 6.2e-3},
                  {"q5_1", 0.043}, {"q5_0", 0.049}, {"q4_1", 0.089},  {"q4_0", 0.098}};
  std::mt19937 rng(77);
  std::normal_distribution<float> normal;
  const int64_t n = 32 * 1024;
  std::vector<float> x(static_cast<size_t>(n));
  for (auto& v : x) v = normal(rng);
  for (const auto& [name, budget] : kBudgets) {
    const Codec& c = codec(name);
    const auto y = decode(c, encode(c, x), n);
    double err = 0.0, ref = 0.0;
    for (int64_t i = 0; i < n; ++i) {
      err += std::pow(double(y[size_t(i)]) - x[size_t(i)], 2);
      ref += std::pow(double(x[size_t(i)]), 2);
    }
    EXPECT_LE(std::sqrt(err / ref), budget) << name;
    if (budget > 0) {
      EXPECT_GT(std::sqrt(err / ref), budget / 4) << name << ": suspiciously exact";
    }
  }
}

TEST(LegacyCodecs, Q8_1StoresTheScaledSum) {
  std::mt19937 rng(3);
  const int64_t n = 1024;
  const auto x = random_row(n, rng);
  const auto bytes = encode(codec("q8_1"), x);
  const auto* blocks = reinterpret_cast<const BlockQ8_1*>(bytes.data());
  for (int64_t b = 0; b < n / kQK; ++b) {
    int sum = 0;
    for (int8_t q : blocks[b].qs) {
      sum += q;
      ASSERT_GE(q, -127);  // the integer dots rely on -128 never occurring
    }
    float amax = 0.0f;
    for (int j = 0; j < kQK; ++j) amax = std::max(amax, std::fabs(x[size_t(b * kQK + j)]));
    // ggml scales the sum by the f32 d, before d itself is rounded to fp16.
    const float d = amax / 127.0f;
    EXPECT_EQ(blocks[b].d, f32_to_fp16(d)) << "block " << b;
    EXPECT_EQ(blocks[b].s, f32_to_fp16(float(sum) * d)) << "block " << b;
  }
}

TEST(LegacyCodecs, ZeroBlocksStayZero) {
  std::vector<float> x(64, 0.0f);
  for (const char* name : kLegacyCodecs) {
    const Codec& c = codec(name);
    const auto y = decode(c, encode(c, x), 64);
    for (float v : y) EXPECT_EQ(v, 0.0f) << name;  // q4_0 / q5_0 give -0 (d = 0 / -8), as gguf does
  }
}

TEST(LegacyCodecs, BadRowsThrow) {
  std::vector<float> x(128, 1.0f), y(128);
  std::vector<uint8_t> bytes(1024);
  for (const char* name : kLegacyCodecs) {
    const Codec& c = codec(name);
    const std::vector<int64_t> bad_lengths =
        c.block_values == 1 ? std::vector<int64_t>{-1} : std::vector<int64_t>{-32, 1, 33, 31};
    for (int64_t n : bad_lengths) {
      EXPECT_THROW(c.encode_ref(x.data(), bytes.data(), n, nullptr), Error) << name << " n=" << n;
      EXPECT_THROW(c.encode(x.data(), bytes.data(), n, nullptr), Error) << name << " n=" << n;
      for (Isa isa : supported_isas()) {
        if (c.decode_by_isa[size_t(isa)]) {
          EXPECT_THROW(c.decode_by_isa[size_t(isa)](bytes.data(), y.data(), n), Error) << name << " n=" << n;
        }
        if (c.dot_by_isa[size_t(isa)]) {
          EXPECT_THROW(c.dot_by_isa[size_t(isa)](bytes.data(), bytes.data(), n), Error) << name << " n=" << n;
        }
      }
    }
    EXPECT_THROW(c.encode_ref(nullptr, bytes.data(), 32, nullptr), Error) << name;
    EXPECT_THROW(c.encode_ref(x.data(), nullptr, 32, nullptr), Error) << name;
    for (Isa isa : supported_isas()) {
      if (c.decode_by_isa[size_t(isa)]) {
        EXPECT_THROW(c.decode_by_isa[size_t(isa)](nullptr, y.data(), 32), Error) << name;
        EXPECT_NO_THROW(c.decode_by_isa[size_t(isa)](bytes.data(), y.data(), 0)) << name;
      }
      if (c.dot_by_isa[size_t(isa)]) {
        EXPECT_THROW(c.dot_by_isa[size_t(isa)](bytes.data(), nullptr, 32), Error) << name;
        EXPECT_EQ(c.dot_by_isa[size_t(isa)](bytes.data(), bytes.data(), 0), 0.0f) << name;
      }
    }
  }
  try {
    codec("q4_0").decode_by_isa[0](bytes.data(), y.data(), 33);
    FAIL();
  } catch (const Error& e) {  // the message names the kernel and the rule broken
    EXPECT_NE(std::string(e.what()).find("decode_q4_0"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("33"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("multiple of 32"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace moelab::quant
