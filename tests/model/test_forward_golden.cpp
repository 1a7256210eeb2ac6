// moelab's forward pass against llama.cpp's logits on the same GGUF files
// (tests/fixtures/make_forward_fixtures.py made them with llama-cpp-python):
// synthetic MoE models of four architectures, regenerated here from their
// preset and seed, and the real SmolLM2-135M weights. Teacher-forced: every
// position's logits are compared.
//
// Synthetic thresholds: mean cosine >= 0.999 (the acceptance bar), and top-1
// agreement no more than 5 points below llama.cpp's agreement with itself (its
// token-by-token path vs its batched path, recorded by the fixture script):
// positions whose top two logits are nearly tied flip under any change of
// rounding, including llama.cpp's own change of kernels.
//
// SmolLM2: the reference is llama.cpp's token-by-token path, whose arithmetic
// moelab reproduces op for op on AVX2 CPUs (model/ggml_numerics.h, the q4_1 /
// q8_0 kernels and activation quantizers): top-1 agreement >= 99%, judged on
// the exact f32 logits the fixture keeps for each position's top 64.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "common/paths.h"
#include "core/fp16.h"
#include "metrics/accuracy.h"
#include "model/forward.h"
#include "model/loader.h"
#include "model/preset.h"
#include "model/synth.h"

namespace moelab::model {
namespace {

nlohmann::json manifest() {
  std::ifstream in(test::fixture_dir("forward") / "manifest.json");
  return nlohmann::json::parse(in);
}

template <class T>
std::vector<T> read_raw(const std::filesystem::path& path, size_t count) {
  std::vector<T> v(count);
  std::ifstream in(path, std::ios::binary);
  in.read(reinterpret_cast<char*>(v.data()), std::streamsize(count * sizeof(T)));
  EXPECT_EQ(size_t(in.gcount()), count * sizeof(T)) << path;
  return v;
}

struct Agreement {
  double mean_cosine = 0, top1 = 0;
};

// Teacher-forced logits of `tokens` (one batch): [n, n_vocab].
std::vector<float> moelab_logits(const Model& m, const std::vector<int32_t>& tokens) {
  ThreadPool pool(2);
  ResidentExperts experts(m.weights(), m.config().n_expert);
  ForwardOptions fo;
  fo.n_ctx = 512;
  fo.n_batch = 512;
  Forward fwd(m.config(), m.weights(), experts, pool, fo);
  std::vector<float> logits(tokens.size() * size_t(m.config().n_vocab));
  fwd.eval(tokens, logits, /*all_logits=*/true);
  return logits;
}

// Row-by-row comparison of `logits` with `ref` [n, n_vocab].
Agreement compare(const std::vector<float>& logits, const std::vector<float>& ref, size_t n, size_t V) {
  Agreement a;
  for (size_t i = 0; i < n; ++i) {
    std::span<const float> ours(logits.data() + i * V, V), theirs(ref.data() + i * V, V);
    a.mean_cosine += metrics::cosine(ours, theirs);
    a.top1 += std::max_element(ours.begin(), ours.end()) - ours.begin() ==
              std::max_element(theirs.begin(), theirs.end()) - theirs.begin();
  }
  a.mean_cosine /= double(n);
  a.top1 /= double(n);
  return a;
}

Agreement compare_with(const Model& m, const std::vector<int32_t>& tokens, const std::vector<float>& ref) {
  return compare(moelab_logits(m, tokens), ref, tokens.size(), size_t(m.config().n_vocab));
}

class SyntheticGolden : public ::testing::TestWithParam<std::string> {};

TEST_P(SyntheticGolden, LogitsMatchLlamaCpp) {
  const auto m = manifest();
  const nlohmann::json* c = nullptr;
  for (const auto& e : m["synthetic"])
    if (e["name"] == GetParam()) c = &e;
  ASSERT_NE(c, nullptr) << "no fixture for " << GetParam();
  // Rebuild the exact file the fixture script generated (same preset, flags, seed).
  const auto args = (*c)["gen_args"].get<std::vector<std::string>>();
  auto flag = [&](const std::string& name) -> int64_t {
    for (size_t i = 0; i + 1 < args.size(); ++i)
      if (args[i] == name) return std::stoll(args[i + 1]);
    return 0;
  };
  SynthOptions o;
  const Preset p = find_preset((*c)["preset"].get<std::string>());
  o.config = scaled(p.config, flag("--layers"), flag("--experts"), flag("--vocab"));
  o.name = p.name + "-synthetic";
  o.codec = (*c)["codec"].get<std::string>();
  o.seed = (*c)["seed"].get<uint64_t>();
  o.dist = (*c)["dist"] == "heavy" ? WeightDist::heavy : WeightDist::gaussian;
  o.tied_embeddings = p.tied_embeddings;
  const auto path = test::temp_file(GetParam() + ".gguf");
  ThreadPool pool(2);
  write_synthetic_gguf(o, path, pool);
  const auto model = Model::load(path);
  const auto tokens = (*c)["tokens"].get<std::vector<int32_t>>();
  const auto ref = read_raw<float>(test::fixture_dir("forward") / (*c)["logits"].get<std::string>(),
                                   tokens.size() * size_t(model->config().n_vocab));
  const Agreement a = compare_with(*model, tokens, ref);
  std::printf("%s: mean cosine %.6f, top-1 agreement %.4f over %zu positions\n", GetParam().c_str(), a.mean_cosine,
              a.top1, tokens.size());
  const double self_top1 = (*c)["llama_cpp_self_agreement"]["top1"].get<double>();
  EXPECT_GE(a.mean_cosine, 0.999);
  EXPECT_GE(a.top1, self_top1 - 0.05) << "llama.cpp agrees with itself at " << self_top1;
  std::filesystem::remove(path);
}

INSTANTIATE_TEST_SUITE_P(FourArchitectures, SyntheticGolden,
                         ::testing::Values("qwen3moe", "qwen2moe", "olmoe", "mixtral"));

TEST(SmolLM2Golden, LogitsMatchLlamaCppTeacherForced) {
  const auto path = test::find_smollm2();
  if (path.empty()) GTEST_SKIP() << test::smollm2_skip_message();
  const auto m = manifest();
  ASSERT_TRUE(m.contains("smollm2"));
  const auto& s = m["smollm2"];
  const auto model = Model::load(path);
  const auto tokens = s["tokens"].get<std::vector<int32_t>>();
  ASSERT_GE(tokens.size(), 128u);
  const size_t n = tokens.size(), V = size_t(model->config().n_vocab), K = s["top_k"].get<size_t>();
  const auto dir = test::fixture_dir("forward");
  // Reference: every logit in f16, the top K of each position exactly.
  const auto ref16 = read_raw<uint16_t>(dir / s["logits"].get<std::string>(), n * V);
  std::vector<float> ref(ref16.size());
  for (size_t i = 0; i < ref.size(); ++i) ref[i] = fp16_to_f32(ref16[i]);
  const auto top = read_raw<int32_t>(dir / s["top"].get<std::string>(), 2 * n * K);  // ids, then f32 bits
  for (size_t i = 0; i < n; ++i)
    for (size_t k = 0; k < K; ++k) {
      const int32_t id = top[i * K + k];
      ASSERT_TRUE(id >= 0 && size_t(id) < V);
      ref[i * V + size_t(id)] = std::bit_cast<float>(top[n * K + i * K + k]);
    }
  const std::vector<float> logits = moelab_logits(*model, tokens);
  const Agreement a = compare(logits, ref, n, V);
  // How exact: positions whose top-K logits are bit-identical, and the largest difference there.
  size_t exact_rows = 0;
  double max_diff = 0;
  for (size_t i = 0; i < n; ++i) {
    bool exact = true;
    for (size_t k = 0; k < K; ++k) {
      const size_t id = size_t(top[i * K + k]);
      const double diff = std::fabs(double(logits[i * V + id]) - double(ref[i * V + id]));
      exact &= diff == 0;
      max_diff = std::max(max_diff, diff);
    }
    exact_rows += exact;
  }
  const double self_cos = s["llama_cpp_self_agreement"]["mean_cosine"].get<double>();
  const double self_top1 = s["llama_cpp_self_agreement"]["top1"].get<double>();
  std::printf("SmolLM2: mean cosine %.7f, top-1 agreement %.4f over %zu positions; top-%zu logits bit-identical at "
              "%zu positions, max |difference| %.3g (llama.cpp batched vs token-by-token: cosine %.6f, top-1 %.4f)\n",
              a.mean_cosine, a.top1, n, K, exact_rows, max_diff, self_cos, self_top1);
  EXPECT_GE(a.mean_cosine, 0.999);
  EXPECT_GE(a.top1, 0.99);

  // moelab's decode path (one token per eval, as `moelab run` decodes) gives the
  // same bits as the batch above: every kernel's result is independent of the batch.
  ThreadPool pool(2);
  ResidentExperts experts(model->weights(), model->config().n_expert);
  ForwardOptions fo;
  fo.n_ctx = 512;
  Forward fwd(model->config(), model->weights(), experts, pool, fo);
  std::vector<float> one(V);
  for (size_t i = 0; i < 16; ++i) {
    fwd.eval(std::span<const int32_t>(&tokens[i], 1), one);
    EXPECT_EQ(std::memcmp(one.data(), logits.data() + i * V, V * sizeof(float)), 0) << "position " << i;
  }
}

}  // namespace
}  // namespace moelab::model
