// One engine decode step under every I/O strategy, beside two same-run
// references: raw O_DIRECT read bandwidth of a scratch file on the same disk
// and memory read bandwidth. Normalised counters make runs on different
// machines (or a noisy one) comparable for `moelab regress`:
//   vs_raw      expert MB/s read during decode / raw O_DIRECT MB/s (streaming io)
//   vs_memread  weight bytes touched per second / memory read GB/s (resident)
// The model (a 2-layer Qwen3-30B-A3B slice, 16 experts, q4_k) is generated once
// into $MOELAB_BENCH_DIR (default: the system temp dir; must allow O_DIRECT).
//
//   build/bin/bench_engine --benchmark_out=x.json --benchmark_out_format=json
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <string>

#include "engine/engine.h"
#include "experiment/host.h"
#include "metrics/bandwidth.h"
#include "model/preset.h"
#include "model/synth.h"
#include "store/page_cache.h"

namespace {

using namespace moelab;
namespace fs = std::filesystem;

fs::path bench_dir() {
  const char* env = std::getenv("MOELAB_BENCH_DIR");
  const fs::path dir = env && *env ? fs::path(env) : fs::temp_directory_path() / "moelab-bench-engine";
  fs::create_directories(dir);
  return dir;
}

const fs::path& model_path() {
  static const fs::path path = [] {
    const fs::path p = bench_dir() / "qwen3-30b-a3b-2l-16e-q4_k.gguf";
    if (!fs::exists(p)) {
      model::SynthOptions o;
      o.config = model::scaled(model::find_preset("qwen3-30b-a3b").config, 2, 16, 4096);
      o.codec = "q4_k";
      ThreadPool pool(2);
      model::write_synthetic_gguf(o, p, pool);
    }
    // Buffered strategies must read the disk, not the pages the generator just wrote.
    store::drop_file_pages(p);
    return p;
  }();
  return path;
}

double raw_direct_mb_s() {
  static const double mb_s = experiment::measure_raw_disk(bench_dir(), 256).mb_s;
  return mb_s;
}

double memread_gbs() {
  static const double gbs = [] {
    ThreadPool pool(2);
    return metrics::read_bandwidth_gbs(size_t(512) << 20, &pool);
  }();
  return gbs;
}

void BM_RawDirectRead(benchmark::State& state) {
  for (auto _ : state) state.SetIterationTime(1.0);  // the figure is measured once, below
  state.counters["raw_MBps"] = raw_direct_mb_s();
}

void BM_DecodeStep(benchmark::State& state, std::string io) {
  engine::EngineConfig c;
  c.model = model_path();
  c.io = io;
  c.threads = 2;
  c.n_ctx = 4096;
  if (io != "resident") {
    c.cache = "none";          // every token reads its experts: the I/O path is what is measured
    c.ram_budget_mb = 24;      // 8 experts of 2.5 MiB, plus room
  }
  engine::Engine e(c);
  model::Forward& fwd = e.forward();
  std::vector<float> logits(size_t(e.model().config().n_vocab));
  int32_t token = 1;
  fwd.eval(std::span<const int32_t>(&token, 1), logits);  // warm: KV, scratch, thread pool
  e.reset_counters();
  for (auto _ : state) {
    if (fwd.n_past() + 1 >= c.n_ctx) fwd.reset();
    token = (token * 1103 + 7) % 4000 + 1;
    fwd.eval(std::span<const int32_t>(&token, 1), logits);
    benchmark::DoNotOptimize(logits.data());
  }
  state.counters["tok_s"] = benchmark::Counter(double(state.iterations()), benchmark::Counter::kIsRate);
  if (io == "resident") {
    const auto fp = e.model().footprint();
    const double bytes = double(fp.active_bytes_per_token(e.model().config().n_layer, e.forward().top_k()));
    state.counters["vs_memread"] =
        benchmark::Counter(bytes * double(state.iterations()) / 1e9 / memread_gbs(), benchmark::Counter::kIsRate);
  } else {
    const store::StoreCounters s = e.counters();
    state.counters["read_MBps"] = benchmark::Counter(double(s.bytes_read) / double(1 << 20), benchmark::Counter::kIsRate);
    state.counters["vs_raw"] =
        benchmark::Counter(double(s.bytes_read) / double(1 << 20) / raw_direct_mb_s(), benchmark::Counter::kIsRate);
    state.counters["raw_MBps"] = raw_direct_mb_s();
  }
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  benchmark::AddCustomContext("bench_dir", bench_dir().string());
  benchmark::RegisterBenchmark("raw_direct_read_1MiB", BM_RawDirectRead)->Iterations(1)->UseManualTime();
  for (const char* io : {"resident", "mmap", "pread", "direct", "direct_mt<4>", "uring<8>"})
    benchmark::RegisterBenchmark((std::string("decode_step/") + io).c_str(), BM_DecodeStep, std::string(io))
        ->UseRealTime()
        ->MinTime(2.0);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
