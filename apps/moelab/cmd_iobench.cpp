// `moelab iobench`: how close each io strategy comes to the disk. First the
// raw O_DIRECT bandwidth of the same file at the expert blob size (one reader,
// then N readers), then a short decode per strategy with no expert cache,
// reporting read MB/s, io_efficiency = read MB/s / raw MB/s and peak RSS
// against resident weights + budget + 64 MiB.
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <thread>
#include <vector>

#include "commands.h"
#include "core/error.h"
#include "core/random.h"
#include "engine/engine.h"
#include "metrics/rss.h"
#include "metrics/timer.h"
#include "store/io_backend.h"
#include "store/page_cache.h"
#include "store/streaming_experts.h"

namespace moelab::cli {

namespace {

// MB/s of `readers` threads each issuing blob-size O_DIRECT preads at random
// aligned offsets of [0, file_bytes) for `seconds`.
double raw_direct_mb_s(const std::string& path, uint64_t blob, int readers, double seconds) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_DIRECT | O_CLOEXEC);
  if (fd < 0) throw Error(path + ": cannot open with O_DIRECT: " + std::strerror(errno));
  const uint64_t size = uint64_t(::lseek(fd, 0, SEEK_END));
  if (size < 2 * blob) throw Error(path + ": too small for the raw measurement");
  const uint64_t slots = (size - blob) / store::kIoAlign;
  std::atomic<uint64_t> bytes{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  const int64_t t0 = metrics::now_ns();
  for (int r = 0; r < readers; ++r)
    threads.emplace_back([&, r] {
      void* buf = std::aligned_alloc(store::kIoAlign, blob);
      uint64_t state = 0x9E3779B97F4A7C15ull * uint64_t(r + 1);
      while (!stop.load(std::memory_order_relaxed)) {
        state ^= state << 13, state ^= state >> 7, state ^= state << 17;
        const uint64_t off = (state % slots) * store::kIoAlign;
        const ssize_t n = ::pread(fd, buf, blob, off_t(off));
        if (n <= 0) break;
        bytes += uint64_t(n);
      }
      std::free(buf);
    });
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop = true;
  for (auto& t : threads) t.join();
  const double s = double(metrics::now_ns() - t0) * 1e-9;
  ::close(fd);
  return double(bytes.load()) / 1e6 / s;
}

// Greedy decode of `tokens` tokens after a 4-token prompt (which also warms
// the engine up); counters start after the prompt. Returns the decode seconds.
double timed_greedy_decode(engine::Engine& engine, int64_t tokens) {
  model::Forward& fwd = engine.forward();
  std::vector<float> logits(static_cast<size_t>(engine.model().config().n_vocab));
  const int32_t prompt[4] = {1, 2, 3, 4};
  fwd.eval(std::span<const int32_t>(prompt, 4), logits);
  engine.reset_counters();
  const int64_t t0 = metrics::now_ns();
  for (int64_t i = 0; i < tokens; ++i) {
    const int32_t next = int32_t(std::max_element(logits.begin(), logits.end()) - logits.begin());
    fwd.eval(std::span<const int32_t>(&next, 1), logits);
  }
  return double(metrics::now_ns() - t0) * 1e-9;
}

}  // namespace

int run_iobench(const IobenchOptions& opts) {
  std::vector<std::string> strategies = opts.strategies;
  if (strategies.empty()) strategies = {"mmap", "pread", "direct", "direct_mt<4>", "direct_mt<8>", "uring<8>", "uring<32>"};
  engine::EngineConfig base;
  base.model = opts.model;
  base.layout = opts.pack.empty() ? "gguf" : "packed";
  base.pack = opts.pack;
  base.cache = "none";
  base.ram_budget_mb = opts.budget_mb;
  base.threads = opts.threads;
  base.n_ctx = 256;
  base.n_batch = 16;

  std::string table =
      "| io | layout | decode tok/s | read MiB/token | read MB/s (while reading) | MB/s over decode | io_efficiency vs QD1 | "
      "io_efficiency vs raw N | io wait % | peak RSS MiB | bound MiB |\n|---|---|---|---|---|---|---|---|---|---|---|\n";
  double raw_qd1 = 0, raw_n = 0;
  uint64_t blob = 0;
  for (const std::string& io : strategies) {
    engine::EngineConfig ec = base;
    ec.io = io;
    store::drop_file_pages(opts.model);
    if (!opts.pack.empty()) store::drop_file_pages(opts.pack);
    metrics::reset_peak_rss();
    engine::Engine engine(ec);
    const store::StreamingExperts* s = engine.streaming();
    if (!s) throw Error("iobench: io '" + io + "' does not stream experts");
    if (blob == 0) {  // raw bandwidth of the file the experts are read from, at the blob size
      blob = s->layout().slot_bytes();
      const std::string file = s->layout().path().string();
      raw_qd1 = raw_direct_mb_s(file, blob, 1, opts.raw_seconds);
      raw_n = raw_direct_mb_s(file, blob, opts.raw_threads, opts.raw_seconds);
      std::fprintf(stderr, "iobench: %s, expert slot %.2f MiB: raw O_DIRECT %.0f MB/s at QD1, %.0f MB/s with %d readers\n",
                   file.c_str(), double(blob) / 1048576.0, raw_qd1, raw_n, opts.raw_threads);
    }
    const double decode_s = timed_greedy_decode(engine, opts.tokens);
    const store::StoreCounters c = engine.counters();
    const metrics::RssSample rss = metrics::read_rss();
    const double read_mb_s = c.read_ns > 0 ? double(c.bytes_read) * 1e3 / double(c.read_ns) : 0.0;
    const double bound = double(engine.resident_weight_bytes()) / 1048576.0 + opts.budget_mb + 64.0;
    char row[512];
    std::snprintf(row, sizeof row, "| %s | %s | %.2f | %.1f | %.0f | %.0f | %.2f | %.2f | %.0f | %.0f | %.0f |\n", io.c_str(),
                  ec.layout.c_str(), double(opts.tokens) / decode_s, double(c.bytes_read) / 1048576.0 / double(opts.tokens),
                  read_mb_s, double(c.bytes_read) / 1e6 / decode_s, read_mb_s / raw_qd1, read_mb_s / raw_n,
                  100.0 * double(c.io_wait_ns) * 1e-9 / decode_s, rss.peak_mb, bound);
    std::fputs(row, stderr);
    table += row;
  }
  // Speculation: the same decode with an LRU cache and prefetching d layers ahead.
  std::string spec_table =
      "\n| io | cache | spec | decode tok/s | ms/token | I/O ms/token | compute ms/token | ms/token / max(I/O, compute) | "
      "io wait ms/token | read MiB/token | prefetched MiB/token | hit rate | precision | recall |\n"
      "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n";
  for (int depth : opts.spec_depths)
    for (bool pre : {false, true}) {
      engine::EngineConfig ec = base;
      ec.io = opts.spec_io;
      ec.cache = "lru";
      ec.spec_depth = depth;
      ec.spec_pre_attention = pre;
      store::drop_file_pages(opts.model);
      engine::Engine engine(ec);
      const double decode_s = timed_greedy_decode(engine, opts.tokens);
      const store::StoreCounters c = engine.counters();
      const store::SpecCounters& sc = c.spec.empty() ? c.spec_pre_attention : c.spec[0];
      char row[512];
      // I/O time: both readers' busy time (they rarely overlap each other); compute: decode minus waiting on I/O.
      const double ms_tok = decode_s * 1e3 / double(opts.tokens);
      const double io_ms = double(c.read_ns + c.prefetch_read_ns) * 1e-6 / double(opts.tokens);
      const double compute_ms = ms_tok - double(c.io_wait_ns) * 1e-6 / double(opts.tokens);
      std::snprintf(row, sizeof row, "| %s | lru | depth %d%s | %.2f | %.1f | %.1f | %.1f | %.2f | %.1f | %.1f | %.1f | %.3f | %.3f | %.3f |\n",
                    ec.io.c_str(), depth, pre ? " + pre-attention" : "", double(opts.tokens) / decode_s, ms_tok, io_ms,
                    compute_ms, ms_tok / std::max(io_ms, compute_ms), double(c.io_wait_ns) * 1e-6 / double(opts.tokens), double(c.bytes_read) / 1048576.0 / double(opts.tokens),
                    double(c.prefetch_bytes) / 1048576.0 / double(opts.tokens), c.hit_rate(), sc.precision(), sc.recall());
      std::fputs(row, stderr);
      spec_table += row;
      for (size_t d = 1; d < c.spec.size(); ++d)
        std::fprintf(stderr, "   depth %zu: precision %.3f recall %.3f\n", d + 1, c.spec[d].precision(), c.spec[d].recall());
      if (pre)
        std::fprintf(stderr, "   pre-attention: precision %.3f recall %.3f\n", c.spec_pre_attention.precision(),
                     c.spec_pre_attention.recall());
    }
  table += spec_table;
  char head[256];
  std::snprintf(head, sizeof head, "raw O_DIRECT at %.2f MiB reads: %.0f MB/s QD1, %.0f MB/s with %d readers\n\n",
                double(blob) / 1048576.0, raw_qd1, raw_n, opts.raw_threads);
  std::printf("%s%s", head, table.c_str());
  if (!opts.markdown_path.empty()) {
    std::ofstream out(opts.markdown_path);
    out << head << table;
    if (!out) throw Error(opts.markdown_path + ": cannot write");
  }
  return 0;
}

}  // namespace moelab::cli
