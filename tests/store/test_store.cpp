// The expert store: every io strategy, layout, cache policy and speculation
// setting gives the resident logits bit for bit; packs are validated; budgets
// and faults end in clear errors; RSS stays under the budget.
#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <cmath>
#include <cstring>
#include <fstream>

#include "common/errors.h"
#include "core/error.h"
#include "metrics/accuracy.h"
#include "metrics/rss.h"
#include "store/io_backend.h"
#include "store/pack.h"
#include "store/streaming_experts.h"
#include "model/preset.h"
#include "store_test_util.h"

namespace moelab {
namespace {

using engine::Engine;
using engine::EngineConfig;

const int32_t kPrompt[] = {5, 77, 301, 12, 9, 450, 33, 128, 200, 7, 64, 99};
const int32_t kDecode[] = {17, 230, 3, 411, 88, 150};

// 3 layers, 16 experts, K = 4, q4_k; its pack next to it.
struct Tiny {
  std::filesystem::path gguf, pack;
  std::vector<float> reference;  // resident logits
};

const Tiny& tiny() {
  static const Tiny t = [] {
    Tiny x;
    x.gguf = test::write_tiny(test::tiny_moe("qwen3-30b-a3b", 3, 16, 4), "store_tiny.gguf");
    x.pack = x.gguf.string() + ".moepack";
    const auto model = model::Model::load(x.gguf);
    ThreadPool pool(2);
    store::write_pack(*model, x.pack, {}, pool);
    EngineConfig ec;
    ec.model = x.gguf;
    Engine e(ec);
    x.reference = test::run_logits(e, kPrompt, kDecode);
    return x;
  }();
  return t;
}

EngineConfig streaming(const std::string& io, const std::string& layout, const std::string& cache, double budget_mb) {
  EngineConfig ec;
  ec.model = tiny().gguf;
  ec.pack = tiny().pack;
  ec.io = io;
  ec.layout = layout;
  ec.cache = cache;
  ec.ram_budget_mb = budget_mb;
  ec.verify_checksums = true;
  ec.n_ctx = 64;  // small scratch and KV: these tests build many engines
  ec.n_batch = 16;
  return ec;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

using test::error_of;

TEST(StoreLogits, BitIdenticalAcrossIoLayoutCacheAndSpeculation) {
  const Tiny& t = tiny();
  // 6 slots: K = 4 fit, prefill (12 tokens x 4 experts) has to go in chunks and evict.
  const double slot_mb = double(store::ExpertLayout::from_gguf(*model::Model::load(t.gguf)).slot_bytes()) / (1 << 20);
  struct Spec {
    int depth, width;
    bool pre;
  };
  int runs = 0;
  for (const char* io : {"mmap", "pread", "direct", "direct_mt<3>", "uring<4>"})
    for (const char* layout : {"gguf", "packed"})
      for (const char* cache : {"none", "lru", "lfu", "least_stale"})
        for (Spec s : {Spec{0, 0, false}, Spec{2, 1, true}}) {
          EngineConfig ec = streaming(io, layout, cache, 6.5 * slot_mb);
          ec.spec_depth = s.depth;
          ec.spec_width = s.width;
          ec.spec_pre_attention = s.pre;
          Engine e(ec);
          const std::vector<float> got = test::run_logits(e, kPrompt, kDecode);
          EXPECT_TRUE(same_bits(got, t.reference)) << io << " " << layout << " " << cache << " spec " << s.depth;
          const store::StoreCounters c = e.counters();
          EXPECT_GT(c.bytes_read, 0u);
          EXPECT_GT(c.cache_misses, 0u);
          EXPECT_LE(c.cache_budget_bytes, uint64_t(ec.ram_budget_mb * 1024 * 1024));
          if (s.depth > 0) {
            ASSERT_EQ(c.spec.size(), 2u);
            EXPECT_GT(c.spec[0].needed, 0u);  // decode tokens scored the depth-1 predictions
            EXPECT_LE(c.spec[0].correct, c.spec[0].predicted);
            EXPECT_GT(c.spec_pre_attention.needed, 0u);
          }
          ++runs;
        }
  EXPECT_EQ(runs, 80);
}

TEST(StoreLogits, LargeCacheHitsOnSecondPassAndCountsBytes) {
  EngineConfig ec = streaming("direct", "packed", "lru", 64);
  Engine e(ec);
  test::run_logits(e, kPrompt, kDecode);
  const store::StoreCounters first = e.counters();
  e.reset_counters();
  e.forward().reset();
  const std::vector<float> again = test::run_logits(e, kPrompt, kDecode);
  EXPECT_TRUE(same_bits(again, tiny().reference));
  const store::StoreCounters second = e.counters();
  EXPECT_GT(first.bytes_read, 0u);
  EXPECT_EQ(second.bytes_read, 0u);  // everything stayed in the 64 MB cache
  EXPECT_EQ(second.cache_misses, 0u);
  EXPECT_GT(second.cache_hits, 0u);
}

TEST(StoreLogits, SpeculationPrefetchesWhatDecodeThenHits) {
  // Cache none: a decode hit can only be an expert speculation brought in.
  EngineConfig ec = streaming("uring<4>", "gguf", "none", 64);
  ec.spec_depth = 1;
  Engine e(ec);
  const int32_t t0 = kPrompt[0];
  std::vector<float> logits(static_cast<size_t>(e.model().config().n_vocab));
  e.forward().eval(std::span<const int32_t>(&t0, 1), logits);  // one-token eval: decode path
  e.reset_counters();
  // The prefetch thread races the forward pass; on a loaded machine give it a few more tokens.
  for (int i = 0; i < 48 && e.counters().cache_hits == 0; ++i) {
    const int32_t t = kDecode[size_t(i) % std::size(kDecode)];
    e.forward().eval(std::span<const int32_t>(&t, 1), logits);
  }
  const store::StoreCounters c = e.counters();
  EXPECT_GT(c.prefetch_bytes, 0u);
  EXPECT_GT(c.cache_hits, 0u);
  EXPECT_GT(c.spec[0].precision(), 0.0);
}

TEST(StoreDense, FlashStreamingGivesTheResidentLogits) {
  // A dense llama-shaped model: each layer's FFN streamed as one blob under a budget of 2 layers.
  model::Config c = model::scaled(model::find_preset("smollm2-135m").config, 4, 0, 512);
  c.n_embd = 256;
  c.n_head = 4;
  c.n_head_kv = 2;
  c.head_dim = 64;
  c.n_rot = 64;
  c.n_ff = 512;
  const auto path = test::write_tiny(c, "store_dense.gguf");
  EngineConfig ec;
  ec.model = path;
  ec.n_ctx = 64;
  ec.n_batch = 16;
  Engine resident(ec);
  const std::vector<float> want = test::run_logits(resident, kPrompt, kDecode);
  const double ffn_mb = double(store::ExpertLayout::from_gguf(resident.model()).slot_bytes()) / (1 << 20);
  for (const char* io : {"direct", "uring<4>", "pread"})
    for (int depth : {0, 2}) {
      ec.io = io;
      ec.cache = "none";
      ec.ram_budget_mb = 2.5 * ffn_mb;
      ec.spec_depth = depth;
      Engine e(ec);
      EXPECT_TRUE(same_bits(test::run_logits(e, kPrompt, kDecode), want)) << io << " depth " << depth;
      const store::StoreCounters s = e.counters();
      EXPECT_GT(s.bytes_read, 0u);
      EXPECT_LT(e.resident_weight_bytes(), resident.resident_weight_bytes());
      if (depth > 0) {
        EXPECT_DOUBLE_EQ(s.spec[0].precision(), 1.0);  // a dense layer's FFN is always needed
      }
    }
  ec.layout = "packed";
  EXPECT_NE(error_of([&] { Engine e(ec); }).find("dense flash streaming"), std::string::npos);
}

TEST(StoreBudget, TooSmallNamesTheMinimum) {
  const std::string err = error_of([] { Engine e(streaming("direct", "gguf", "lru", 0.2)); });
  EXPECT_NE(err.find("ram_budget_mb 0.2"), std::string::npos) << err;
  EXPECT_NE(err.find("minimum"), std::string::npos) << err;
  EXPECT_NE(err.find("top_k = 4"), std::string::npos) << err;
}

TEST(StorePack, RequantizedPackRunsCloseToSource) {
  const Tiny& t = tiny();
  const auto model = model::Model::load(t.gguf);
  ThreadPool pool(2);
  for (const char* codec : {"q8_0", "affine3_g64"}) {
    const auto pack = test::temp_file(std::string("store_tiny_") + codec + ".moepack");
    store::write_pack(*model, pack, {codec, 4096}, pool);
    EngineConfig ec = streaming("direct", "packed", "lru", 8);
    ec.pack = pack;
    Engine e(ec);
    const std::vector<float> got = test::run_logits(e, kPrompt, kDecode);
    const auto [codec_seen, bytes] = [&] {
      const store::PackIndex idx = store::PackIndex::open(pack, *model);
      return std::pair{idx.parts(0)[0].codec->name, idx.blob(0, 0).bytes};
    }();
    EXPECT_EQ(codec_seen, codec);
    EXPECT_FALSE(same_bits(got, t.reference));
    const double cos = metrics::cosine(got, t.reference);
    EXPECT_GT(cos, std::string(codec) == "q8_0" ? 0.999 : 0.95) << codec;
  }
}

// Copies the tiny pack, lets `edit` damage it, then opens and runs it.
void run_edited_pack(const std::string& name, const std::function<void(std::vector<char>&)>& edit) {
  std::ifstream in(tiny().pack, std::ios::binary);
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  edit(bytes);
  const auto path = test::temp_file(name);
  std::ofstream(path, std::ios::binary).write(bytes.data(), std::streamsize(bytes.size()));
  EngineConfig ec = streaming("direct", "packed", "none", 8);
  ec.pack = path;
  Engine e(ec);
  test::run_logits(e, kPrompt, kDecode);
}

std::string damaged_pack_error(const std::string& name, const std::function<void(std::vector<char>&)>& edit) {
  return error_of([&] { run_edited_pack(name, edit); });
}

TEST(StorePack, DamagedPacksGiveClearErrors) {
  const auto model = model::Model::load(tiny().gguf);
  const store::PackIndex idx = store::PackIndex::open(tiny().pack, *model);
  const uint64_t blob = idx.blob(1, 5).offset;
  std::string err = damaged_pack_error("bad_blob.moepack", [&](auto& b) { b[blob + 100] ^= 0x5A; });
  EXPECT_NE(err.find("layer 1, expert 5"), std::string::npos) << err;
  EXPECT_NE(err.find("checksum"), std::string::npos) << err;
  err = damaged_pack_error("truncated.moepack", [](auto& b) { b.resize(b.size() - 5000); });
  EXPECT_NE(err.find("truncated"), std::string::npos) << err;
  err = damaged_pack_error("short.moepack", [](auto& b) { b.resize(60); });
  EXPECT_NE(err.find("header"), std::string::npos) << err;
  err = damaged_pack_error("magic.moepack", [](auto& b) { b[0] = 'X'; });
  EXPECT_NE(err.find("magic"), std::string::npos) << err;
  err = damaged_pack_error("version.moepack", [](auto& b) { b[8] = 9; });
  EXPECT_NE(err.find("version 9"), std::string::npos) << err;
  err = damaged_pack_error("manifest.moepack", [](auto& b) { b[store::kPackHeaderBytes + 30] ^= 1; });
  EXPECT_NE(err.find("manifest"), std::string::npos) << err;
  EXPECT_NO_THROW(run_edited_pack("intact.moepack", [](auto&) {}));  // the damage, not the procedure, fails
}

TEST(StorePack, PackOfAnotherModelIsRefused) {
  const auto other = test::write_tiny(test::tiny_moe("qwen3-30b-a3b", 3, 16, 4), "store_other.gguf", "q4_k", 2);
  EngineConfig ec = streaming("direct", "packed", "lru", 8);
  ec.model = other;  // tiny().pack was made from tiny().gguf
  const std::string err = error_of([&] { Engine e(ec); });
  EXPECT_NE(err.find("model_identity"), std::string::npos) << err;
  EXPECT_NE(err.find("another model"), std::string::npos) << err;
}

// Fault injection: each read attempt at a new offset fails twice before
// succeeding; or always fails; or returns a third of what was asked.
std::array<std::atomic<uint32_t>, 1 << 16> g_attempts{};  // per 512-byte offset of the small test files
store::testing::Fault flaky(uint64_t offset, uint64_t) {
  return (g_attempts[(offset >> 9) & 0xFFFF]++ % 3) < 2 ? store::testing::Fault{store::testing::Fault::eio}
                                                          : store::testing::Fault{};
}
store::testing::Fault broken(uint64_t, uint64_t) { return {store::testing::Fault::eio}; }
store::testing::Fault stingy(uint64_t, uint64_t bytes) { return {store::testing::Fault::short_read, bytes / 3}; }
store::testing::Fault slow(uint64_t, uint64_t) { return {store::testing::Fault::delay, 0, 50}; }

struct HookGuard {
  explicit HookGuard(store::testing::FaultHook h) { store::testing::set_fault_hook(h); }
  ~HookGuard() { store::testing::set_fault_hook(nullptr); }
};

TEST(StoreFaults, RetriedFaultsGiveTheSameLogits) {
  for (store::testing::FaultHook hook : {&flaky, &stingy, &slow})
    for (const char* io : {"mmap", "pread", "direct", "direct_mt<3>", "uring<4>"}) {
      if (hook == &stingy && std::string(io) == "mmap") continue;  // a mapping has no short reads
      HookGuard guard(hook);
      for (auto& a : g_attempts) a = 0;
      EngineConfig ec = streaming(io, "gguf", "lru", 2);
      ec.spec_depth = 1;
      Engine e(ec);
      EXPECT_TRUE(same_bits(test::run_logits(e, kPrompt, kDecode), tiny().reference)) << io;
    }
}

TEST(StoreFaults, PersistentEioIsAClearError) {
  for (const char* io : {"mmap", "pread", "direct", "direct_mt<3>", "uring<4>"}) {
    HookGuard guard(&broken);
    const std::string err = error_of([&] {
      Engine e(streaming(io, "gguf", "lru", 2));
      test::run_logits(e, kPrompt, kDecode);
    });
    EXPECT_NE(err.find(tiny().gguf.string()), std::string::npos) << io << ": " << err;
    EXPECT_NE(err.find("Input/output error"), std::string::npos) << io << ": " << err;
    EXPECT_NE(err.find("attempts"), std::string::npos) << io << ": " << err;
  }
}

TEST(StoreRss, PeakStaysUnderResidentPlusBudget) {
  // Experts of 3 x 512 x 1024 q8_0 (1.6 MiB), 3 layers x 16: 77 MiB, 9x the 8 MiB budget.
  const auto path = test::write_tiny(test::tiny_moe("qwen3-30b-a3b", 3, 16, 4, 512, 1024), "store_rss.gguf", "q8_0");
  const double budget_mb = 8;
  metrics::reset_peak_rss();
  const double before = metrics::read_rss().rss_mb;
  double resident_mb = 0, expert_mb = 0;
  {
    EngineConfig ec;
    ec.model = path;
    ec.io = "direct";
    ec.cache = "lru";
    ec.ram_budget_mb = budget_mb;
    ec.n_ctx = 64;
    ec.n_batch = 16;
    Engine e(ec);
    resident_mb = double(e.resident_weight_bytes()) / (1 << 20);
    expert_mb = double(e.model().footprint().expert_bytes) / (1 << 20);
    test::run_logits(e, kPrompt, kDecode);
    EXPECT_GT(double(e.counters().bytes_read) / (1 << 20), 2 * budget_mb);  // it really streamed
  }
  const double peak = metrics::read_rss().peak_mb - before;
  EXPECT_GT(expert_mb, budget_mb + 64);  // the bound below would not hold with the experts in RAM
  EXPECT_LE(peak, resident_mb + budget_mb + 64) << "resident " << resident_mb << " MiB";
}

}  // namespace
}  // namespace moelab
