// The sampler: greedy picks the arg-max, a seed reproduces a sequence, and
// the top-k / top-p filters never pick outside their set.
#include <gtest/gtest.h>

#include <set>

#include "core/error.h"
#include "core/random.h"
#include "model/forward.h"

namespace moelab::model {
namespace {

TEST(Sampler, GreedyIsArgMax) {
  const std::vector<float> logits = {0.1f, 3.0f, -2.0f, 2.9f};
  Sampler s({});
  EXPECT_EQ(s.sample(logits), 1);
  EXPECT_THROW(s.sample({}), Error);
}

TEST(Sampler, SameSeedSameSequenceOtherSeedOtherSequence) {
  const std::vector<float> logits = gaussian_matrix(1, 1000, 5);
  auto draw = [&](uint64_t seed) {
    Sampler s({1.0f, 1.0f, 0, seed});
    std::vector<int32_t> out;
    for (int i = 0; i < 64; ++i) out.push_back(s.sample(logits));
    return out;
  };
  EXPECT_EQ(draw(7), draw(7));
  EXPECT_NE(draw(7), draw(8));
}

TEST(Sampler, TopKAndTopPStayInTheirSets) {
  std::vector<float> logits(100);
  for (int i = 0; i < 100; ++i) logits[size_t(i)] = float(i) * 0.05f;  // 99 most likely
  Sampler top3({1.0f, 1.0f, 3, 1});
  for (int i = 0; i < 200; ++i) EXPECT_GE(top3.sample(logits), 97);
  // A dominant token holds > 90% of the mass: top-p 0.5 keeps only it.
  logits[42] = 100.0f;
  Sampler nucleus({1.0f, 0.5f, 0, 1});
  for (int i = 0; i < 50; ++i) EXPECT_EQ(nucleus.sample(logits), 42);
}

TEST(Sampler, HighTemperatureSpreadsChoices) {
  std::vector<float> logits(50, 0.0f);
  Sampler s({10.0f, 1.0f, 0, 3});
  std::set<int32_t> seen;
  for (int i = 0; i < 500; ++i) seen.insert(s.sample(logits));
  EXPECT_GT(seen.size(), 40u);
}

}  // namespace
}  // namespace moelab::model
