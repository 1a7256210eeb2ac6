// The engine and mem_cap axes: spec validation names the JSON pointer of a bad
// value; a llama.cpp point runs on the same file as moelab and its logits
// match moelab's (cosine >= 0.999); a memory cap is applied to the child that
// runs the point (limit read back, peak usage within it, an allocation beyond
// it ends the child, not the sweep).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <vector>

#include "../common/sweep_options.h"
#include "experiment/child.h"
#include "experiment/expand.h"
#include "experiment/mem_cap.h"
#include "experiment/model_source.h"
#include "experiment/peer.h"
#include "experiment/results.h"
#include "experiment/sweep.h"
#include "harness_util.h"

namespace moelab::experiment {
namespace {

using ojson = nlohmann::ordered_json;

ojson spec_with(const std::string& patch) {
  ojson j = ojson::parse(R"({"name": "t", "model": )" + test::tiny_model_json() +
                         R"(, "workload": {"prompt": "the quick brown fox jumps over the lazy dog", "prompt_tokens": 8,
                           "decode_tokens": 4, "accuracy_tokens": 16}, "fixed": {"threads": 1}, "repeats": 1,
                           "warmup": 0})");
  j.merge_patch(ojson::parse(patch));
  return j;
}

std::string error_pointer(const ojson& j, std::string* message = nullptr) {
  try {
    const Spec s = parse_spec(j, test::temp_file("peer-spec.json"));
    check_against_model(s, expand(s), model_shape(s));
  } catch (const SpecError& e) {
    if (message) *message = e.what();
    return e.pointer();
  }
  return "(no error)";
}

SweepOptions quiet_options(const std::filesystem::path& out) {
  return test::quiet_options(out, /*disk_probe_mb=*/0, /*plots=*/false);
}

TEST(PeerSpec, EngineAndMemCapValuesAreValidated) {
  std::string msg;
  EXPECT_EQ(error_pointer(spec_with(R"({"sweep": {"engine": ["moelab", "llama.cpp"]}})")), "(no error)");
  EXPECT_EQ(error_pointer(spec_with(R"({"sweep": {"engine": ["moelab", "llama"]}})"), &msg), "/sweep/engine/1");
  EXPECT_NE(msg.find("llama.cpp"), std::string::npos) << "lists the valid engines: " << msg;
  EXPECT_EQ(error_pointer(spec_with(R"({"sweep": {"mem_cap": ["none", "model/4", "1536MiB"]}})")), "(no error)");
  EXPECT_EQ(error_pointer(spec_with(R"({"fixed": {"mem_cap": "lots"}})"), &msg), "/fixed/mem_cap");
  EXPECT_NE(msg.find("model/<D>"), std::string::npos) << msg;
  EXPECT_EQ(error_pointer(spec_with(R"({"sweep": {"mem_cap": ["none", "model/0"]}})")), "/sweep/mem_cap/1");
  EXPECT_EQ(error_pointer(spec_with(R"({"sweep": {"mem_cap": ["8MiB"]}})")), "/sweep/mem_cap/0");
  EXPECT_EQ(error_pointer(spec_with(R"({"fixed": {"mem_cap": 1536}})")), "/fixed/mem_cap");
}

TEST(PeerSpec, LlamaCppPointsRejectMoelabOnlySettings) {
  std::string msg;
  EXPECT_EQ(error_pointer(spec_with(R"({"fixed": {"engine": "llama.cpp", "io": "mmap"}})")), "(no error)");
  EXPECT_EQ(error_pointer(spec_with(R"({"fixed": {"engine": "llama.cpp"}, "sweep": {"io": ["mmap", "direct"]}})"),
                          &msg),
            "/sweep/io/1");
  EXPECT_NE(msg.find("llama.cpp"), std::string::npos) << msg;
  EXPECT_EQ(error_pointer(spec_with(R"({"fixed": {"engine": "llama.cpp", "top_k": 2}})")), "/fixed/top_k");
  // Zipped with the engine, moelab-only settings apply to the moelab points only.
  EXPECT_EQ(error_pointer(spec_with(
                R"({"sweep": {"zip": [{"engine": ["moelab", "llama.cpp"], "io": ["pread", "mmap"], "ram_budget_mb": [1, 0]}]}})")),
            "(no error)");
  EXPECT_EQ(error_pointer(spec_with(R"({"reference": {"engine": "llama.cpp"}})")), "/reference/engine");
  EXPECT_EQ(error_pointer(spec_with(R"({"reference": {"mem_cap": "model/2"}})")), "/reference/mem_cap");
}

TEST(PeerSpec, CliExitsWithStatus2OnBadValues) {
  const auto bad = test::write_spec("peer-bad.json", spec_with(R"({"sweep": {"mem_cap": ["none", "half"]}})").dump());
  const std::string out = test::temp_file("peer-bad.h5").string();
  EXPECT_EQ(test::run_command(test::moelab_binary().string() + " sweep " + bad.string() + " -o " + out + " 2>/dev/null"),
            2);
}

TEST(PeerSpec, CapBytesFromTheModelSize) {
  EXPECT_EQ(mem_cap_bytes("none", 1 << 30), 0u);
  EXPECT_EQ(mem_cap_bytes("1536MiB", 1 << 30), 1536ull << 20);
  EXPECT_EQ(mem_cap_bytes("model/4", 1ull << 30), 256ull << 20);
  EXPECT_EQ(mem_cap_bytes("model/1", (1ull << 30) + 1) % 4096, 0u);  // whole pages
  EXPECT_THROW(mem_cap_bytes("model/x", 1 << 30), Error);
}

// llama.cpp points and moelab points on the same file; the reference is
// moelab's own default configuration, so the peer's cosine is peer vs moelab.
TEST(PeerLlamaCpp, PointOnTheSameFileMatchesMoelabLogits) {
  const std::string why = llamacpp_unavailable();
  if (!why.empty()) GTEST_SKIP() << "llama.cpp peer not installed here: " << why;
  const auto spec_path = test::write_spec(
      "peer-run.json", spec_with(R"({"name": "peer-run", "fixed": {"ram_budget_mb": 4},
                                     "sweep": {"engine": ["moelab", "llama.cpp"], "io": ["resident", "mmap"]},
                                     "reference": {"dot_path": "quantized", "kv_codec": "f16"}})")
                           .dump());
  const auto out = test::temp_file("peer-run.h5");
  ASSERT_EQ(run_sweep(load_spec(spec_path), quiet_options(out)), 0);
  const ResultsTable t = read_points(out);
  ASSERT_EQ(t.n_rows, 4u);  // llama.cpp with repacking (resident) and without (mmap)
  const int engine = t.column("engine"), cos = t.column("cosine_logits"), top1 = t.column("top1_agree");
  int peers = 0;
  for (size_t r = 0; r < t.n_rows; ++r) {
    const bool peer = t.cell(engine, r) == "llama.cpp";
    peers += peer;
    EXPECT_GE(t.num[size_t(cos)][r], 0.999) << t.cell(engine, r);
    EXPECT_GE(t.num[size_t(top1)][r], 0.9) << t.cell(engine, r);
    EXPECT_GT(t.num[size_t(t.column("decode_tok_s"))][r], 0) << t.cell(engine, r);
    EXPECT_GT(t.num[size_t(t.column("prefill_tok_s"))][r], 0) << t.cell(engine, r);
    EXPECT_GT(t.num[size_t(t.column("peak_rss_mb"))][r], 1) << t.cell(engine, r);
    if (peer) {  // what only moelab's store knows is NaN for the peer
      EXPECT_TRUE(std::isnan(t.num[size_t(t.column("bytes_read"))][r]));
      EXPECT_TRUE(std::isnan(t.num[size_t(t.column("expert_cache_mb"))][r]));
      EXPECT_TRUE(std::isnan(t.num[size_t(t.column("cosine_hidden_last"))][r]));
    }
  }
  EXPECT_EQ(peers, 2);
  EXPECT_EQ(read_raw(out, 2, 0, "token_latency_ms").size(), 4u);  // the peer's per-token latencies
}

TEST(PeerLlamaCpp, MissingPeerIsAClearError) {
  setenv("MOELAB_PEER_PYTHON", "/nonexistent/venv/bin/python", 1);
  const std::string why = llamacpp_unavailable();
  unsetenv("MOELAB_PEER_PYTHON");
  EXPECT_NE(why.find("MOELAB_PEER=1 scripts/setup.sh"), std::string::npos) << why;
  const auto spec_path =
      test::write_spec("peer-missing.json", spec_with(R"({"sweep": {"engine": ["moelab", "llama.cpp"]}})").dump());
  const std::string cmd = "MOELAB_PEER_PYTHON=/nonexistent/python " + test::moelab_binary().string() + " sweep " +
                          spec_path.string() + " -o " + test::temp_file("peer-missing.h5").string() + " 2>/dev/null";
  EXPECT_EQ(test::run_command(cmd), 2);  // stops before any work: no silent fallback to moelab
}

TEST(PeerMemCap, ChildRunsUnderTheLimit) {
  const std::string why = memory_cgroup_unavailable();
  if (!why.empty()) GTEST_SKIP() << "no writable cgroup v1 memory controller: " << why;
  MemoryCgroup cg(64ull << 20);
  EXPECT_EQ(cg.limit_bytes(), 64ull << 20);
  // The child is in the group, and what it touches is charged there.
  const ChildOutcome c = run_forked(&cg, [] {
    std::vector<char> block(size_t(24) << 20);
    std::memset(block.data(), 1, block.size());
    std::ifstream in("/proc/self/cgroup");
    std::string all, line;
    while (std::getline(in, line)) all += line + "\n";
    return all + std::to_string(int(block[block.size() / 2]));
  });
  ASSERT_EQ(c.failure(), "") << c.output;
  EXPECT_NE(c.output.find(cg.path().filename().string()), std::string::npos) << c.output;
  EXPECT_GE(cg.max_usage_bytes(), 24ull << 20);
  EXPECT_LE(cg.max_usage_bytes(), 64ull << 20);
}

TEST(PeerMemCap, AllocationBeyondTheCapEndsTheChildOnly) {
  const std::string why = memory_cgroup_unavailable();
  if (!why.empty()) GTEST_SKIP() << "no writable cgroup v1 memory controller: " << why;
  MemoryCgroup cg(32ull << 20);
  const ChildOutcome c = run_forked(&cg, [] {
    std::vector<char> block(size_t(256) << 20);
    for (size_t i = 0; i < block.size(); i += 4096) block[i] = 1;
    return std::string("survived");
  });
  EXPECT_NE(c.failure(), "") << "a 256 MiB allocation under a 32 MiB cap must not succeed";
  EXPECT_EQ(c.output.find("survived"), std::string::npos);
}

TEST(PeerMemCap, SweepPointRecordsItsCap) {
  const std::string why = memory_cgroup_unavailable();
  if (!why.empty()) GTEST_SKIP() << "no writable cgroup v1 memory controller: " << why;
  const auto spec_path = test::write_spec(
      "peer-cap.json", spec_with(R"({"name": "peer-cap", "sweep": {"mem_cap": ["none", "256MiB"]}})").dump());
  const auto out = test::temp_file("peer-cap.h5");
  ASSERT_EQ(run_sweep(load_spec(spec_path), quiet_options(out)), 0);
  const ResultsTable t = read_points(out);
  ASSERT_EQ(t.n_rows, 2u);
  const int cap = t.column("mem_cap"), cap_mb = t.column("mem_cap_mb"), peak = t.column("cgroup_peak_mb");
  for (size_t r = 0; r < t.n_rows; ++r) {
    if (t.cell(cap, r) == "none") {
      EXPECT_TRUE(std::isnan(t.num[size_t(cap_mb)][r]));
      continue;
    }
    EXPECT_EQ(t.num[size_t(cap_mb)][r], 256.0);
    EXPECT_GT(t.num[size_t(peak)][r], 0.5);  // the child read the model inside its group
    EXPECT_LE(t.num[size_t(peak)][r], 256.0);
    EXPECT_GT(t.num[size_t(t.column("decode_tok_s"))][r], 0);
    EXPECT_GT(t.num[size_t(t.column("cosine_logits"))][r], 0.99);
  }
}

}  // namespace
}  // namespace moelab::experiment
