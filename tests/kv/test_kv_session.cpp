// KV sessions: a session saved mid-conversation and loaded into a fresh
// forward pass continues with logits bit-identical to the uninterrupted run,
// for every KV codec; files for another model or codec, truncated or
// corrupted files are refused with a clear error and change nothing.
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <random>

#include "common/errors.h"
#include "common/paths.h"
#include "core/error.h"
#include "kv/session.h"
#include "model/forward.h"
#include "model/identity.h"
#include "model/loader.h"
#include "model/preset.h"
#include "model/synth.h"

namespace moelab::kv {
namespace {

using model::Forward;
using model::ForwardOptions;
using model::Model;

struct Loaded {
  std::unique_ptr<Model> model;
  std::string identity;
};

// SmolLM2's attention shape (head_dim 64, 3 KV heads of 9), 2 layers, 512 tokens.
Loaded synthetic(uint64_t seed) {
  static ThreadPool pool(2);
  model::SynthOptions so;
  so.config = model::scaled(model::find_preset("smollm2-135m").config, 2, 0, 512);
  so.codec = "q8_0";
  so.seed = seed;
  const auto path = test::temp_file("kv_session_" + std::to_string(seed) + ".gguf");
  if (!std::filesystem::exists(path)) model::write_synthetic_gguf(so, path, pool);
  Loaded l;
  l.model = Model::load(path);
  l.identity = model::model_identity(l.model->file());
  return l;
}

class KvSession : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    a_ = new Loaded(synthetic(1));
    b_ = new Loaded(synthetic(2));
  }
  static void TearDownTestSuite() {
    delete a_;
    delete b_;
  }
  static Loaded* a_;
  static Loaded* b_;
};
Loaded* KvSession::a_ = nullptr;
Loaded* KvSession::b_ = nullptr;

struct Runner {
  Runner(const Model& m, const std::string& codec, int64_t n_ctx = 64)
      : experts(m.weights(), m.config().n_expert), V(size_t(m.config().n_vocab)) {
    ForwardOptions fo;
    fo.n_ctx = n_ctx;
    fo.n_batch = 16;
    fo.kv_codec = codec;
    fwd = std::make_unique<Forward>(m.config(), m.weights(), experts, pool, fo);
  }
  void prefill(std::span<const int32_t> tokens) {
    std::vector<float> last(V);
    for (size_t i = 0; i < tokens.size(); i += 16) fwd->eval(tokens.subspan(i, std::min<size_t>(16, tokens.size() - i)), last);
  }
  // Logits of every token of a batch, then of single decoded tokens.
  std::vector<float> continue_with(std::span<const int32_t> batch, std::span<const int32_t> singles) {
    std::vector<float> out(batch.size() * V), one(V);
    fwd->eval(batch, out, /*all_logits=*/true);
    for (int32_t t : singles) {
      fwd->eval(std::span<const int32_t>(&t, 1), one);
      out.insert(out.end(), one.begin(), one.end());
    }
    return out;
  }
  ThreadPool pool{2};
  model::ResidentExperts experts;
  size_t V;
  std::unique_ptr<Forward> fwd;
};

std::vector<int32_t> random_tokens(size_t n, int32_t vocab, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<int32_t> t(n);
  for (auto& x : t) x = int32_t(rng() % uint64_t(vocab));
  return t;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// Prefix of n_prefix tokens saved, then a batch of n_batch and n_single single tokens.
void check_continuation(const Loaded& m, const std::string& codec, const std::string& file_name,
                        size_t n_prefix = 24, size_t n_batch = 12, size_t n_single = 8) {
  const auto tokens = random_tokens(n_prefix + n_batch + n_single, int32_t(m.model->config().n_vocab), 3);
  const std::span<const int32_t> all(tokens), prefix = all.first(n_prefix), batch = all.subspan(n_prefix, n_batch),
                                 singles = all.subspan(n_prefix + n_batch);
  Runner straight(*m.model, codec);
  straight.prefill(prefix);
  const auto expect = straight.continue_with(batch, singles);

  const auto file = test::temp_file(file_name);
  {
    Runner first(*m.model, codec);
    first.prefill(prefix);
    save_session(file, first.fwd->kv_cache(), m.identity, prefix);
  }
  Runner resumed(*m.model, codec);
  const auto saved_tokens = load_session(file, resumed.fwd->kv_cache(), m.identity);
  EXPECT_TRUE(std::equal(saved_tokens.begin(), saved_tokens.end(), prefix.begin(), prefix.end())) << codec;
  EXPECT_EQ(resumed.fwd->n_past(), int64_t(n_prefix)) << codec;
  EXPECT_TRUE(same_bits(resumed.continue_with(batch, singles), expect)) << codec << ": logits differ after loading";
}

TEST_F(KvSession, ContinuesBitIdenticalForEveryCodec) {
  for (const char* codec : {"f32", "f16", "q8_0", "q4_0", "tq3", "tq3m", "tq4m", "tq3/q4_0", "q8_0/tq3", "tq4m/tq3"})
    check_continuation(*a_, codec, "cont.kvs");
}

TEST_F(KvSession, CodecsReallyCompressDifferently) {
  // The continuation test would pass trivially if every codec stored the same rows.
  const auto tokens = random_tokens(20, 512, 4);
  std::vector<std::vector<float>> logits;
  for (const char* codec : {"f32", "q4_0", "tq3"}) {
    Runner r(*a_->model, codec);
    r.prefill(std::span<const int32_t>(tokens).first(10));
    logits.push_back(r.continue_with(std::span<const int32_t>(tokens).subspan(10), {}));
  }
  EXPECT_FALSE(same_bits(logits[0], logits[1]));
  EXPECT_FALSE(same_bits(logits[0], logits[2]));
}

TEST_F(KvSession, ModelIdentityTellsModelsApart) {
  EXPECT_EQ(a_->identity.size(), 32u);
  EXPECT_EQ(a_->identity, model::model_identity(a_->model->file()));
  EXPECT_EQ(a_->identity, synthetic(1).identity);  // reopened: same
  EXPECT_NE(a_->identity, b_->identity);  // same metadata and layout, other weights
}

using test::error_of;

std::vector<uint8_t> read_all(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}
void write_all(const std::filesystem::path& p, const std::vector<uint8_t>& bytes) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
}

TEST_F(KvSession, BadFilesAreRefusedAndChangeNothing) {
  const auto tokens = random_tokens(40, 512, 5);
  const std::span<const int32_t> all(tokens);
  const auto good = test::temp_file("good.kvs"), other_model = test::temp_file("other_model.kvs"),
             other_codec = test::temp_file("other_codec.kvs"), bad = test::temp_file("bad.kvs");
  {
    Runner r(*a_->model, "q8_0");
    r.prefill(all.first(24));
    save_session(good, r.fwd->kv_cache(), a_->identity, all.first(24));
    Runner o(*b_->model, "q8_0");
    o.prefill(all.first(24));
    save_session(other_model, o.fwd->kv_cache(), b_->identity, all.first(24));
    Runner c(*a_->model, "q4_0");
    c.prefill(all.first(24));
    save_session(other_codec, c.fwd->kv_cache(), a_->identity, all.first(24));
  }
  // The reference: 10 tokens, then 8 more, never interrupted.
  Runner ref(*a_->model, "q8_0");
  ref.prefill(all.first(10));
  const auto expect = ref.continue_with(all.subspan(10, 8), all.subspan(18, 2));

  Runner victim(*a_->model, "q8_0");
  victim.prefill(all.first(10));
  auto refused = [&](const std::filesystem::path& file, const std::string& why) {
    const std::string e = error_of([&] { load_session(file, victim.fwd->kv_cache(), a_->identity); });
    EXPECT_NE(e.find(why), std::string::npos) << "expected \"" << why << "\", got: " << e;
    EXPECT_NE(e.find(file.string()), std::string::npos) << e;  // names the file
    EXPECT_EQ(victim.fwd->n_past(), 10);
  };
  refused(other_model, "another model");
  refused(other_codec, "KV codec is \"q4_0\"");
  refused(test::temp_file("missing.kvs"), "load session");

  const std::vector<uint8_t> bytes = read_all(good);
  for (size_t keep : {size_t(0), size_t(7), size_t(60), bytes.size() / 2, bytes.size() - 1}) {
    write_all(bad, std::vector<uint8_t>(bytes.begin(), bytes.begin() + std::ptrdiff_t(keep)));
    refused(bad, "truncated");
  }
  auto flipped = [&](size_t at) {
    auto b = bytes;
    b[at] ^= 0x10;
    write_all(bad, b);
  };
  flipped(0);
  refused(bad, "bad magic");
  flipped(8);
  refused(bad, "version");
  const size_t header = 8 + 4 + 4 + 32 + 4 + 4 + 6 * 8;  // "q8_0" is 4 bytes
  flipped(header - 8);  // n_past
  refused(bad, "truncated or corrupted");
  for (size_t at : {header + 5 /* a token */, bytes.size() / 2 /* a KV row */, bytes.size() - 1 /* the checksum */}) {
    flipped(at);
    refused(bad, "checksum mismatch");
  }
  {
    Runner small(*a_->model, "q8_0", 16);
    const std::string e = error_of([&] { load_session(good, small.fwd->kv_cache(), a_->identity); });
    EXPECT_NE(e.find("raise --ctx"), std::string::npos) << e;
    EXPECT_EQ(small.fwd->n_past(), 0);
  }
  // After all of that the victim continues exactly like the reference.
  EXPECT_TRUE(same_bits(victim.continue_with(all.subspan(10, 8), all.subspan(18, 2)), expect));
}

// The real SmolLM2-135M weights (head_dim 64, 30 layers).
TEST(KvSessionSmolLM2, ContinuesBitIdentical) {
  const auto path = test::find_smollm2();
  if (path.empty()) GTEST_SKIP() << test::smollm2_skip_message();
  Loaded m;
  m.model = Model::load(path);
  m.identity = model::model_identity(m.model->file());
  for (const char* codec : {"f16", "q4_0", "tq3"}) check_continuation(m, codec, "smollm2.kvs", 10, 5, 2);
}

}  // namespace
}  // namespace moelab::kv
