// top_k override below the model's K: the router weights are renormalised the
// way each architecture does (qwen3moe norm_topk_prob and Mixtral's softmax
// over the chosen K: weights sum to 1; OLMoE and Qwen2-MoE: raw softmax
// probabilities over all experts).
#include <gtest/gtest.h>

#include <numeric>

#include "core/error.h"
#include "store_test_util.h"

namespace moelab {
namespace {

struct Route {
  std::vector<int32_t> ids;
  std::vector<float> w;
};

// Layer 0's routing of the first token (identical input whatever top_k is).
Route first_route(const std::filesystem::path& model, int64_t top_k) {
  engine::EngineConfig ec;
  ec.model = model;
  ec.top_k = top_k;
  engine::Engine e(ec);
  Route r;
  model::ForwardObserver obs;
  obs.on_route = [&](int layer, int64_t token, std::span<const int32_t> ids, std::span<const float> w) {
    if (layer == 0 && token == 0) {
      r.ids.assign(ids.begin(), ids.end());
      r.w.assign(w.begin(), w.end());
    }
  };
  e.forward().set_observer(&obs);
  std::vector<float> logits(static_cast<size_t>(e.model().config().n_vocab));
  const int32_t tok = 42;
  e.forward().eval(std::span<const int32_t>(&tok, 1), logits);
  return r;
}

TEST(StoreTopK, RenormalisesAsTheArchitectureDoes) {
  struct Case {
    const char* preset;
    bool renormalised;
  };
  for (Case c : {Case{"qwen3-30b-a3b", true}, Case{"mixtral-8x7b", true}, Case{"olmoe-1b-7b", false},
                 Case{"qwen1.5-moe-a2.7b", false}}) {
    const auto path = test::write_tiny(test::tiny_moe(c.preset, 1, 8, 4), std::string("topk_") + c.preset + ".gguf");
    const Route full = first_route(path, 0), two = first_route(path, 2);
    ASSERT_EQ(full.ids.size(), 4u) << c.preset;
    ASSERT_EQ(two.ids.size(), 2u) << c.preset;
    EXPECT_EQ(two.ids[0], full.ids[0]) << c.preset;
    EXPECT_EQ(two.ids[1], full.ids[1]) << c.preset;
    const float sum2 = two.w[0] + two.w[1], sum4 = std::accumulate(full.w.begin(), full.w.end(), 0.0f);
    if (c.renormalised) {
      EXPECT_NEAR(sum2, 1.0f, 1e-6f) << c.preset;
      EXPECT_NEAR(sum4, 1.0f, 1e-6f) << c.preset;
      for (int k = 0; k < 2; ++k) EXPECT_NEAR(two.w[size_t(k)], full.w[size_t(k)] / (full.w[0] + full.w[1]), 1e-6f) << c.preset;
    } else {  // softmax over all experts, not renormalised: the same probabilities, summing below 1
      EXPECT_EQ(two.w[0], full.w[0]) << c.preset;
      EXPECT_EQ(two.w[1], full.w[1]) << c.preset;
      EXPECT_LT(sum4, 1.0f - 1e-4f) << c.preset;
      EXPECT_LT(sum2, sum4) << c.preset;
    }
  }
}

TEST(StoreTopK, AboveTheModelsKIsRefused) {
  const auto path = test::write_tiny(test::tiny_moe("qwen3-30b-a3b", 1, 8, 4), "topk_qwen3-30b-a3b.gguf");
  engine::EngineConfig ec;
  ec.model = path;
  ec.top_k = 5;
  try {
    engine::Engine e(ec);
    FAIL() << "top_k 5 > K 4 accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("top_k 5"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace moelab
