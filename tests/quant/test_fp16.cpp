// lib/core/fp16.h against numpy (the conversions gguf-py uses) and against the
// CPU's own F16C instructions. Fixtures: tests/fixtures/make_codec_fixtures.py.
#include <gtest/gtest.h>

#include <bit>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <immintrin.h>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "core/fp16.h"

namespace moelab {
namespace {

const std::string kDir = std::string(MOELAB_SOURCE_DIR) + "/tests/fixtures/codecs/";

template <class T>
std::vector<T> read_file(const std::string& name) {
  std::ifstream f(kDir + name, std::ios::binary);
  EXPECT_TRUE(f.good()) << "missing fixture " << kDir + name;
  std::vector<char> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  std::vector<T> out(bytes.size() / sizeof(T));
  std::memcpy(out.data(), bytes.data(), out.size() * sizeof(T));
  return out;
}

nlohmann::json manifest() {
  std::ifstream f(kDir + "manifest.json");
  return nlohmann::json::parse(f);
}

bool is_nan_half(uint16_t h) { return (h & 0x7fffu) > 0x7c00u; }

TEST(Fp16, AllHalvesDecodeLikeNumpy) {
  // FNV-1a 64 over the little-endian f32 bytes of halves 0x0000 .. 0xffff,
  // the same hash the fixture script took of numpy's astype(np.float32).
  uint64_t h = 0xcbf29ce484222325ull;
  for (uint32_t i = 0; i < 65536; ++i) {
    const uint32_t bits = std::bit_cast<uint32_t>(fp16_to_f32(uint16_t(i)));
    for (int k = 0; k < 4; ++k) h = (h ^ ((bits >> (8 * k)) & 0xffu)) * 0x100000001b3ull;
  }
  char hex[17];
  std::snprintf(hex, sizeof(hex), "%016llx", static_cast<unsigned long long>(h));
  EXPECT_EQ(std::string(hex), manifest()["fp16"]["all_halves_f32_fnv1a64"].get<std::string>());
}

TEST(Fp16, EveryHalfRoundTrips) {
  // Exactness on the way up means f32 -> f16 must return the same bits, NaN payloads included.
  for (uint32_t i = 0; i < 65536; ++i) ASSERT_EQ(f32_to_fp16(fp16_to_f32(uint16_t(i))), uint16_t(i)) << std::hex << i;
}

TEST(Fp16, CasesEncodeLikeNumpyAndGguf) {
  const auto x = read_file<float>("fp16_cases.f32");
  const auto f16 = read_file<uint16_t>("fp16_cases.f16");
  const auto bf16 = read_file<uint16_t>("fp16_cases.bf16");
  ASSERT_EQ(int64_t(x.size()), manifest()["fp16"]["cases"].get<int64_t>());
  ASSERT_EQ(f16.size(), x.size());
  ASSERT_EQ(bf16.size(), x.size());
  int mismatches = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const uint32_t bits = std::bit_cast<uint32_t>(x[i]);
    if (f32_to_fp16(x[i]) != f16[i] && ++mismatches < 10)
      ADD_FAILURE() << "f16 of 0x" << std::hex << bits << ": got 0x" << f32_to_fp16(x[i]) << ", numpy 0x" << f16[i];
    if (f32_to_bf16(x[i]) != bf16[i] && ++mismatches < 10)
      ADD_FAILURE() << "bf16 of 0x" << std::hex << bits << ": got 0x" << f32_to_bf16(x[i]) << ", gguf 0x" << bf16[i];
  }
  EXPECT_EQ(mismatches, 0);
}

TEST(Fp16, RoundsHalfwayCasesToEven) {
  // 1 + 2^-11 lies halfway between 1 and the next half (1 + 2^-10): even is 1.
  EXPECT_EQ(f32_to_fp16(1.0f + 0x1p-11f), 0x3c00);
  // 1 + 3 * 2^-11 lies halfway between 1 + 2^-10 (odd) and 1 + 2^-9: up.
  EXPECT_EQ(f32_to_fp16(1.0f + 3 * 0x1p-11f), 0x3c02);
  EXPECT_EQ(f32_to_fp16(0x1p-25f), 0x0000);          // halfway to the smallest subnormal: even is 0
  EXPECT_EQ(f32_to_fp16(0x1.000002p-25f), 0x0001);   // just above: rounds up
  EXPECT_EQ(f32_to_fp16(65519.0f), 0x7bff);          // below the midpoint to 2^16: 65504
  EXPECT_EQ(f32_to_fp16(65520.0f), 0x7c00);          // the midpoint rounds to even, which is inf
  EXPECT_EQ(f32_to_fp16(-1e9f), 0xfc00);
  // bf16: 1 + 2^-8 is halfway between 1 and 1 + 2^-7.
  EXPECT_EQ(f32_to_bf16(1.0f + 0x1p-8f), 0x3f80);
  EXPECT_EQ(f32_to_bf16(1.0f + 3 * 0x1p-8f), 0x3f82);
  EXPECT_EQ(bf16_to_f32(0xbf80), -1.0f);
}

__attribute__((target("f16c"))) float hw_half_to_float(uint16_t h) { return _cvtsh_ss(h); }
__attribute__((target("f16c"))) uint16_t hw_float_to_half(float f) { return _cvtss_sh(f, 0); }

TEST(Fp16, AgreesWithF16cHardware) {
  // F16C ships with AVX2 on every x86 CPU (clang 14 cannot test "f16c" by name).
  if (!__builtin_cpu_supports("avx2")) GTEST_SKIP() << "no AVX2/F16C";
  // Up: identical except that vcvtph2ps quiets signaling NaNs (the reference keeps numpy's bits).
  for (uint32_t i = 0; i < 65536; ++i) {
    const uint32_t ref = std::bit_cast<uint32_t>(fp16_to_f32(uint16_t(i)));
    const uint32_t hw = std::bit_cast<uint32_t>(hw_half_to_float(uint16_t(i)));
    if (is_nan_half(uint16_t(i)))
      ASSERT_EQ(ref | 0x00400000u, hw) << std::hex << i;
    else
      ASSERT_EQ(ref, hw) << std::hex << i;
  }
  // Down: random bit patterns and values near the half range, NaNs left out (payload rules differ).
  std::mt19937 rng(7);
  std::uniform_int_distribution<uint32_t> any;
  std::uniform_int_distribution<uint32_t> exponent(100, 145);
  for (int i = 0; i < 200000; ++i) {
    uint32_t bits = any(rng);
    if (i % 2) bits = (bits & 0x807fffffu) | (exponent(rng) << 23);
    const float f = std::bit_cast<float>(bits);
    if (f != f) continue;
    ASSERT_EQ(f32_to_fp16(f), hw_float_to_half(f)) << std::hex << bits;
  }
}

}  // namespace
}  // namespace moelab
