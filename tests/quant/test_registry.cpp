// The codec table itself: names unique, sizes consistent with bits, lookups
// and error messages, and every activation codec a weight codec names exists.
#include <gtest/gtest.h>

#include <set>

#include "core/error.h"
#include "quant/codec.h"

namespace moelab::quant {
namespace {

TEST(Registry, NamesAreUniqueAndLookupsRoundTrip) {
  std::set<std::string_view> names;
  for (const Codec& c : all_codecs()) {
    EXPECT_TRUE(names.insert(c.name).second) << "duplicate codec " << c.name;
    EXPECT_EQ(&codec(c.name), &c);
    if (c.ggml_type >= 0) {
      EXPECT_EQ(find_codec_by_ggml_type(c.ggml_type), &c);
    }
  }
  EXPECT_EQ(find_codec("no_such_codec"), nullptr);
}

TEST(Registry, EveryRequiredCodecIsPresent) {
  for (const char* n : {"f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "q5_0", "q5_1", "q2_k", "q3_k", "q4_k", "q5_k",
                        "q6_k", "q8_k", "tq3", "tq4"})
    EXPECT_NE(find_codec(n), nullptr) << n;
  for (int bits : {2, 3, 4, 5, 6, 8})
    for (int group : {32, 64, 128})
      EXPECT_NE(find_codec("affine" + std::to_string(bits) + "_g" + std::to_string(group)), nullptr);
}

TEST(Registry, BlockBytesCoverTheCodes) {
  for (const Codec& c : all_codecs()) {
    EXPECT_GE(double(c.block_bytes) * 8, double(c.block_values) * c.bits) << c.name;
    EXPECT_GE(c.overhead_fraction(), 0.0) << c.name;
    EXPECT_LT(c.overhead_fraction(), 0.5) << c.name;
    if (is_weight_codec(c)) {
      EXPECT_NE(find_codec(c.act), nullptr) << c.name << " names unknown activation codec " << c.act;
      EXPECT_NE(c.encode, nullptr);
      EXPECT_NE(c.encode_ref, nullptr);
    }
    EXPECT_NE(c.decode_by_isa[0], nullptr) << c.name << " has no scalar decode";
  }
}

TEST(Registry, AffineOverheadIsScaleAndBiasPerGroup) {
  // fp16 scale + fp16 bias = 32 bits per group: 4-bit g64 spends 32 / (64 * 4 + 32) = 11.1% on them.
  EXPECT_NEAR(codec("affine4_g64").overhead_fraction(), 32.0 / (64 * 4 + 32), 1e-12);
  EXPECT_NEAR(codec("affine4_g64").bits_per_weight(), 4.5, 1e-12);
  EXPECT_NEAR(codec("q4_k").bits_per_weight(), 4.5, 1e-12);
}

TEST(Registry, UnknownNameErrorListsKnownCodecs) {
  try {
    codec("q4_z");
    FAIL();
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("q4_z"), std::string::npos);
    for (const Codec& c : all_codecs()) EXPECT_NE(msg.find(std::string(c.name)), std::string::npos) << c.name;
  }
}

TEST(Registry, DispatchNeverPicksAnUnsupportedIsa) {
  for (const Codec& c : all_codecs())
    for (int i = 0; i < kIsaCount; ++i) {
      const Isa isa = Isa(i);
      EXPECT_LE(int(c.dot_kernel_isa(isa)), i);
      EXPECT_LE(int(c.decode_kernel_isa(isa)), i);
      EXPECT_NE(c.decode(isa), nullptr);
    }
  EXPECT_TRUE(isa_supported(active_isa()));
  EXPECT_TRUE(isa_supported(Isa::scalar));
}

}  // namespace
}  // namespace moelab::quant
