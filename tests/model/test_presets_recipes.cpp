// Presets load and describe what they claim; recipes give each tensor the
// codec their description says; the generator writes what the loader reads.
#include <gtest/gtest.h>

#include <filesystem>

#include "common/paths.h"
#include "core/error.h"
#include "model/loader.h"
#include "model/preset.h"
#include "model/recipes.h"
#include "model/synth.h"

namespace moelab::model {
namespace {

TEST(Presets, EveryPresetFileLoadsAndIsNamedAfterItsFile) {
  const auto names = preset_names();
  ASSERT_GE(names.size(), 10u);
  for (const auto& n : names) {
    const Preset p = find_preset(n);
    EXPECT_EQ(p.name, n);
    EXPECT_FALSE(p.source.empty()) << n;
    EXPECT_EQ(p.config.n_head % p.config.n_head_kv, 0) << n;
    if (n.rfind("qwen3.5", 0) == 0) {
      EXPECT_FALSE(p.approximation.empty()) << n << " is hybrid; say how it is approximated";
    }
  }
}

TEST(Presets, Qwen3_30B_A3B_HasItsPublishedShape) {
  const Config c = find_preset("qwen3-30b-a3b").config;
  EXPECT_EQ(c.arch, Arch::qwen3moe);
  EXPECT_EQ(c.n_embd, 2048);
  EXPECT_EQ(c.n_layer, 48);
  EXPECT_EQ(c.n_expert, 128);
  EXPECT_EQ(c.n_expert_used, 8);
  EXPECT_EQ(c.n_ff_exp, 768);
  EXPECT_EQ(c.qk_norm, QkNorm::per_head);
}

TEST(Presets, UnknownPresetAndScalingErrors) {
  try {
    find_preset("no-such-model");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("qwen3-30b-a3b"), std::string::npos) << "lists known presets: " << e.what();
  }
  EXPECT_THROW(scaled(find_preset("smollm2-135m").config, 0, 4), Error);  // experts on a dense model
  const Config s = scaled(find_preset("mixtral-8x7b").config, 2, 1, 512);
  EXPECT_EQ(s.n_layer, 2);
  EXPECT_EQ(s.n_expert_used, 1);  // clamped to the experts kept
  EXPECT_EQ(s.n_vocab, 512);
}

TEST(Recipes, KQuantMixGivesMoreBitsWhereItSays) {
  Config c = find_preset("qwen3-30b-a3b").config;
  const Recipe& r = recipe("q4_k_m");
  EXPECT_EQ(codec_for(r, c, "output.weight", 2048, 2), "q6_k");
  EXPECT_EQ(codec_for(r, c, "blk.0.attn_v.weight", 2048, 2), "q6_k");   // first eighth
  EXPECT_EQ(codec_for(r, c, "blk.10.attn_v.weight", 2048, 2), "q4_k");  // (10 - 6) % 3 != 2
  EXPECT_EQ(codec_for(r, c, "blk.11.ffn_down_exps.weight", 768, 3), "q6_k");  // (11 - 6) % 3 == 2
  EXPECT_EQ(codec_for(r, c, "blk.10.ffn_gate_exps.weight", 2048, 3), "q4_k");
  EXPECT_EQ(codec_for(r, c, "blk.3.ffn_gate_inp.weight", 2048, 2), "");  // the router keeps its codec
  EXPECT_EQ(codec_for(r, c, "blk.3.attn_norm.weight", 2048, 1), "");
}

TEST(Recipes, MoeVariantGivesSharedTensorsOneStepMoreThanRoutedExperts) {
  Config c = find_preset("qwen1.5-moe-a2.7b").config;
  const Recipe& r = recipe("q4_k_m_moe");
  EXPECT_EQ(codec_for(r, c, "blk.10.ffn_up_exps.weight", 2048, 3), "q4_k");
  EXPECT_EQ(codec_for(r, c, "blk.10.ffn_up_shexp.weight", 2048, 2), "q5_k");
  EXPECT_EQ(codec_for(r, c, "blk.10.attn_q.weight", 2048, 2), "q5_k");
}

TEST(Recipes, RowsA256BlockCannotTileFallBackTo32ValueCodecs) {
  Config c = find_preset("smollm2-135m").config;  // n_embd 576 = 2.25 x 256
  EXPECT_EQ(codec_for(recipe("q4_k_m"), c, "blk.20.attn_q.weight", 576, 2), "q5_0");
  EXPECT_EQ(codec_for(recipe("q2_k"), c, "blk.20.attn_q.weight", 576, 2), "q4_0");
  EXPECT_THROW(recipe("q4_k_xxl"), Error);
}

TEST(Synth, GeneratedModelLoadsWithThePresetShapeAndTrueWidths) {
  SynthOptions o;
  o.config = scaled(find_preset("qwen1.5-moe-a2.7b").config, 1, 6, 512);
  o.codec = "q8_0";
  const auto path = test::temp_file("synth_qwen2moe.gguf");
  ThreadPool pool(2);
  write_synthetic_gguf(o, path, pool);
  const auto m = Model::load(path);
  const Config& c = m->config();
  EXPECT_EQ(c.arch, Arch::qwen2moe);
  EXPECT_EQ(c.n_embd, 2048);
  EXPECT_EQ(c.n_ff_exp, 1408);
  EXPECT_EQ(c.n_ff_shexp, 5632);
  EXPECT_EQ(c.n_expert, 6);
  EXPECT_EQ(c.n_vocab, 512);
  EXPECT_NE(m->weights().layers[0].shexp_gate, nullptr);
  const auto fp = m->footprint();
  EXPECT_EQ(fp.expert_bytes, 6 * fp.expert_bytes_each);
  // The byte-level vocabulary tokenizes text to bytes and back.
  const auto ids = m->tokenizer().encode("héllo, wörld", false, false);
  EXPECT_EQ(m->tokenizer().decode(ids), "héllo, wörld");
  std::filesystem::remove(path);
}

TEST(Synth, SameSeedSameBytesOtherSeedOtherBytes) {
  SynthOptions o;
  o.config = scaled(find_preset("olmoe-1b-7b").config, 1, 2, 300);
  o.codec = "q4_0";
  ThreadPool pool(2);
  const auto a = test::temp_file("a.gguf"), b = test::temp_file("b.gguf"), d = test::temp_file("d.gguf");
  write_synthetic_gguf(o, a, pool);
  write_synthetic_gguf(o, b, pool);
  o.seed = 2;
  write_synthetic_gguf(o, d, pool);
  const auto fa = gguf::File::open(a), fb = gguf::File::open(b), fd = gguf::File::open(d);
  EXPECT_TRUE(std::equal(fa.bytes().begin(), fa.bytes().end(), fb.bytes().begin(), fb.bytes().end()));
  EXPECT_FALSE(std::equal(fa.bytes().begin(), fa.bytes().end(), fd.bytes().begin(), fd.bytes().end()));
}

}  // namespace
}  // namespace moelab::model
