// GEMV and gather_gemv throughput of every weight codec at decode shapes,
// beside a memory-read bandwidth case measured in the same binary.
//
// Every case streams a working set of >= kWorkingSetBytes (copies of the
// matrix, visited in turn), so weights come from DRAM as they do when a model
// is larger than the last-level cache. Reported counters:
//   weight_GBps   weight bytes streamed per second (1e9 B/s)
//   vs_memread    weight_GBps / the same-run memory read bandwidth, same threads
//   acc_rel_rmse  the codec's relative RMS round-trip error on the case's
//                 Gaussian rows (reference encoder: deterministic, so the
//                 regression gate compares it tightly)
//
//   bench_codecs --benchmark_filter='q4_k'   one codec
//   bench_codecs --benchmark_format=json     machine context + results
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/random.h"
#include "core/thread_pool.h"
#include "metrics/bandwidth.h"
#include "quant/ops.h"

namespace {

using namespace moelab;

constexpr size_t kWorkingSetBytes = size_t(512) << 20;

struct Shape {
  const char* name;
  int64_t cols, rows;  // in -> out: y[rows] = W[rows, cols] x[cols]
};
// Decode shapes: Qwen3-30B-A3B expert gate/up (2048 -> 768) and down (768 -> 2048),
// Llama-3-8B / Mistral-7B FFN up (4096 -> 14336).
constexpr Shape kShapes[] = {{"2048x768", 2048, 768}, {"768x2048", 768, 2048}, {"4096x14336", 4096, 14336}};
// MoE: 128 experts of 2048 -> 768, 8 used per token (Qwen3-30B-A3B gate/up).
constexpr int64_t kExperts = 128, kExpertsUsed = 8;

ThreadPool& pool(int threads) {
  static std::map<int, std::unique_ptr<ThreadPool>> pools;
  auto& p = pools[threads];
  if (!p) p = std::make_unique<ThreadPool>(threads);
  return *p;
}

double memread_gbs(int threads) {
  static std::map<int, double> cache;
  auto it = cache.find(threads);
  if (it == cache.end()) it = cache.emplace(threads, metrics::read_bandwidth_gbs(kWorkingSetBytes, &pool(threads))).first;
  return it->second;
}

// Copies of one quantized matrix filling the working set; visited round-robin.
struct WorkingSet {
  std::vector<uint8_t> bytes;  // [copies, matrix_bytes]
  size_t matrix_bytes = 0, copies = 0;
  WorkingSet(const std::vector<uint8_t>& one) : matrix_bytes(one.size()) {
    copies = std::max<size_t>(1, (kWorkingSetBytes + matrix_bytes - 1) / matrix_bytes);
    bytes.resize(copies * matrix_bytes);
    for (size_t i = 0; i < copies; ++i) std::memcpy(bytes.data() + i * matrix_bytes, one.data(), matrix_bytes);
  }
  const uint8_t* copy(size_t i) const { return bytes.data() + (i % copies) * matrix_bytes; }
};

// A quantized [rows, cols] matrix. Only the first kUniqueRows rows are drawn
// and encoded; the rest repeat them (throughput does not depend on the
// values, and encoding 200 M values per codec would dominate the run).
std::vector<uint8_t> quantized(const quant::Codec& c, int64_t rows, int64_t cols) {
  constexpr int64_t kUniqueRows = 256;
  const int64_t unique = std::min(rows, kUniqueRows);
  const std::vector<float> w = gaussian_matrix(unique, cols, 7, 0.02f);
  const std::vector<uint8_t> head = quant::quantize(c, w, unique, cols, nullptr, false, &pool(2));
  std::vector<uint8_t> out(size_t(rows) * c.row_bytes(cols));
  for (size_t off = 0; off < out.size(); off += head.size()) std::memcpy(out.data() + off, head.data(), std::min(head.size(), out.size() - off));
  return out;
}

// ||decode(encode_ref(w)) - w|| / ||w|| over 256 Gaussian rows of `cols` values.
double rel_rmse(const quant::Codec& c, int64_t cols) {
  constexpr int64_t rows = 256;
  const std::vector<float> w = gaussian_matrix(rows, cols, 7, 0.02f);
  const std::vector<uint8_t> q = quant::quantize(c, w, rows, cols, nullptr, /*reference=*/true, &pool(2));
  std::vector<float> back(w.size());
  quant::dequantize(quant::make_qmatrix(c, q.data(), q.size(), rows, cols), back, &pool(2));
  double err = 0, norm = 0;
  for (size_t i = 0; i < w.size(); ++i) {
    err += double(back[i] - w[i]) * double(back[i] - w[i]);
    norm += double(w[i]) * double(w[i]);
  }
  return std::sqrt(err / norm);
}

// One working set alive at a time: each case streams 512 MiB, and keeping
// every case's set would need tens of GiB.
const WorkingSet& working_set(const std::string& key, const std::function<std::vector<uint8_t>()>& make) {
  static std::string current_key;
  static std::unique_ptr<WorkingSet> current;
  if (!current || current_key != key) {
    current.reset();
    current = std::make_unique<WorkingSet>(make());
    current_key = key;
  }
  return *current;
}

void report(benchmark::State& state, size_t bytes_per_iter, int threads) {
  const double total = double(bytes_per_iter) * double(state.iterations());
  state.SetBytesProcessed(int64_t(total));
  state.counters["weight_GBps"] = benchmark::Counter(total / 1e9, benchmark::Counter::kIsRate);
  state.counters["memread_GBps"] = memread_gbs(threads);
}

void BM_MemRead(benchmark::State& state) {
  const int threads = int(state.range(0));
  std::unique_ptr<uint8_t, decltype(&std::free)> buf(static_cast<uint8_t*>(std::aligned_alloc(64, kWorkingSetBytes)),
                                                     &std::free);
  std::memset(buf.get(), 1, kWorkingSetBytes);
  for (auto _ : state) benchmark::DoNotOptimize(metrics::read_all(buf.get(), kWorkingSetBytes, &pool(threads)));
  report(state, kWorkingSetBytes, threads);
}

void BM_Gemv(benchmark::State& state, const quant::Codec* c, Shape shape) {
  const int threads = int(state.range(0));
  const WorkingSet* ws = &working_set(std::string(c->name) + "/" + shape.name,
                                      [&] { return quantized(*c, shape.rows, shape.cols); });
  const std::vector<float> x = gaussian_matrix(1, shape.cols, 3);
  std::vector<float> y(size_t(shape.rows));
  quant::Activations act;
  size_t i = 0;
  for (auto _ : state) {
    const quant::QMatrix w = quant::make_qmatrix(*c, ws->copy(i++), ws->matrix_bytes, shape.rows, shape.cols);
    act.encode(*c, x.data(), 1, shape.cols, quant::DotPath::quantized);  // per-token cost included
    quant::gemv(w, act, y.data(), &pool(threads));
    benchmark::DoNotOptimize(y.data());
  }
  report(state, ws->matrix_bytes, threads);
  state.counters["vs_memread"] = state.counters["weight_GBps"];
  state.counters["vs_memread"].flags = benchmark::Counter::kIsRate;
  state.counters["vs_memread"].value /= memread_gbs(threads);
  state.counters["acc_rel_rmse"] = rel_rmse(*c, shape.cols);
}

void BM_GatherGemv(benchmark::State& state, const quant::Codec* c) {
  const int threads = int(state.range(0));
  constexpr int64_t cols = 2048, rows = 768;
  const WorkingSet* ws = &working_set(std::string(c->name) + "/experts",
                                      [&] { return quantized(*c, kExperts * rows, cols); });
  const std::vector<float> x = gaussian_matrix(1, cols, 3);
  std::vector<float> y(size_t(kExpertsUsed * rows));
  quant::Activations act;
  std::vector<int32_t> ids(kExpertsUsed);
  size_t i = 0;
  uint32_t lcg = 12345;
  for (auto _ : state) {
    for (auto& id : ids) id = int32_t((lcg = lcg * 1664525u + 1013904223u) >> 8) % int32_t(kExperts);
    const quant::QMatrix w = quant::make_qmatrix(*c, ws->copy(i++), ws->matrix_bytes, kExperts * rows, cols);
    act.encode(*c, x.data(), 1, cols, quant::DotPath::quantized);
    quant::gather_gemv(w, kExperts, ids, act, y.data(), &pool(threads));
    benchmark::DoNotOptimize(y.data());
  }
  const size_t used_bytes = ws->matrix_bytes / size_t(kExperts) * size_t(kExpertsUsed);
  report(state, used_bytes, threads);
  state.counters["vs_memread"] = benchmark::Counter(
      double(used_bytes) * double(state.iterations()) / 1e9 / memread_gbs(threads), benchmark::Counter::kIsRate);
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  benchmark::AddCustomContext("isa", std::string(quant::isa_name(quant::active_isa())));
  benchmark::AddCustomContext("working_set_bytes", std::to_string(kWorkingSetBytes));
  benchmark::RegisterBenchmark("memread", BM_MemRead)->Arg(1)->Arg(2)->UseRealTime()->ArgName("threads");
  for (const quant::Codec& c : quant::all_codecs()) {
    if (!quant::is_weight_codec(c)) continue;
    for (const Shape& s : kShapes)
      benchmark::RegisterBenchmark(("gemv/" + std::string(c.name) + "/" + s.name).c_str(), BM_Gemv, &c, s)
          ->Arg(1)->Arg(2)->ArgName("threads")->UseRealTime();
    benchmark::RegisterBenchmark(("gather_gemv/" + std::string(c.name) + "/128x8/2048x768").c_str(), BM_GatherGemv, &c)
        ->Arg(1)->Arg(2)->ArgName("threads")->UseRealTime();
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
