#include "perfmodel/calibrate.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <memory>
#include <random>
#include <thread>

#include "core/error.h"
#include "core/random.h"
#include "core/thread_pool.h"
#include "metrics/bandwidth.h"
#include "metrics/timer.h"
#include "quant/ops.h"

namespace moelab::perfmodel {

namespace {

// The kernel's read-ahead window of the block device holding `dir` (what one
// mmap page fault reads around), from sysfs; 0 when it cannot be read.
double read_ahead_kib(const std::filesystem::path& dir) {
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) return 0;
  const std::string dev = "/sys/dev/block/" + std::to_string(major(st.st_dev)) + ":" + std::to_string(minor(st.st_dev));
  for (const char* rel : {"/queue/read_ahead_kb", "/../queue/read_ahead_kb"}) {
    std::ifstream f(dev + rel);
    double kib = 0;
    if (f >> kib && kib > 0) return kib;
  }
  return 0;
}

// O_DIRECT needs buffers, offsets and sizes aligned to the logical block size;
// 4 KiB covers every device this runs on.
constexpr size_t kDirectAlign = 4096;

// aligned_alloc wants a size that is a whole number of alignments: rounded up.
struct AlignedBuffer {
  static size_t round_up(size_t bytes) { return (bytes + kDirectAlign - 1) / kDirectAlign * kDirectAlign; }
  explicit AlignedBuffer(size_t bytes)
      : data(static_cast<uint8_t*>(std::aligned_alloc(kDirectAlign, round_up(bytes))), &std::free) {
    if (!data) throw Error("calibrate: cannot allocate " + std::to_string(bytes) + " bytes");
  }
  std::unique_ptr<uint8_t, decltype(&std::free)> data;
};

// The 1-minute load average (other work on the machine skews every rate), or "?".
std::string load_average() {
  std::ifstream in("/proc/loadavg");
  std::string one;
  return (in >> one) ? one : std::string("?");
}

std::string today() {
  const std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d", std::gmtime(&t));
  return buf;
}

void write_scratch(const std::filesystem::path& path, size_t bytes) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd < 0) throw Error(path.string() + ": cannot create scratch file: " + std::strerror(errno));
  const size_t chunk = size_t(8) << 20;
  AlignedBuffer buf(chunk);
  std::mt19937_64 rng(7);
  for (size_t i = 0; i < chunk / 8; ++i) reinterpret_cast<uint64_t*>(buf.data.get())[i] = rng();  // incompressible
  for (size_t done = 0; done < bytes; done += chunk) {
    const ssize_t w = ::write(fd, buf.data.get(), std::min(chunk, bytes - done));
    if (w <= 0) {
      ::close(fd);
      throw Error(path.string() + ": write failed: " + std::strerror(errno));
    }
  }
  ::fsync(fd);
  ::close(fd);
}

}  // namespace

ReadSample measure_direct_reads(const std::filesystem::path& path, size_t file_bytes, size_t request_bytes,
                                int queue_depth, double seconds, bool direct, bool drop_pages) {
  const int fd = ::open(path.c_str(), O_RDONLY | (direct ? O_DIRECT : 0));
  if (fd < 0) throw Error(path.string() + ": cannot open for reading: " + std::strerror(errno));
  const size_t slots = file_bytes / request_bytes;
  if (slots == 0) {
    ::close(fd);
    throw Error(path.string() + ": scratch file smaller than one request");
  }
  std::atomic<int64_t> bytes_total{0}, reads_total{0}, latency_ns_total{0};
  std::atomic<bool> failed{false};
  const int64_t t_end = metrics::now_ns() + int64_t(seconds * 1e9);
  auto worker = [&](int index) {
    AlignedBuffer buf(request_bytes);
    std::mt19937_64 rng(uint64_t(index) * 7919 + request_bytes);
    std::uniform_int_distribution<size_t> slot(0, slots - 1);
    int64_t bytes = 0, reads = 0, lat = 0;
    while (metrics::now_ns() < t_end || reads == 0) {  // at least one read each, however slow the disk is now
      const int64_t t0 = metrics::now_ns();
      const off_t at = off_t(slot(rng) * request_bytes);
      const ssize_t r = ::pread(fd, buf.data.get(), request_bytes, at);
      if (drop_pages && !direct) ::posix_fadvise(fd, at, off_t(request_bytes), POSIX_FADV_DONTNEED);
      const int64_t t1 = metrics::now_ns();
      if (r != ssize_t(request_bytes)) {
        failed = true;
        break;
      }
      bytes += r;
      ++reads;
      lat += t1 - t0;
    }
    bytes_total += bytes;
    reads_total += reads;
    latency_ns_total += lat;
  };
  const int64_t start = metrics::now_ns();
  std::vector<std::thread> threads;
  for (int i = 0; i < queue_depth; ++i) threads.emplace_back(worker, i);
  for (auto& t : threads) t.join();
  const int64_t elapsed = metrics::now_ns() - start;
  ::close(fd);
  if (failed) throw Error(path.string() + ": short read during calibration (O_DIRECT unsupported here?)");
  ReadSample s;
  s.gbs = double(bytes_total.load()) / double(elapsed);
  s.mean_latency_us = reads_total ? double(latency_ns_total.load()) / double(reads_total.load()) / 1e3 : 0;
  return s;
}

double measure_gemv_gbs(const std::string& codec_name, size_t working_set, ThreadPool& pool, int reps) {
  // One matrix of 4096 columns filling the working set (past the LLC, so the
  // weights stream from DRAM as in a large model): a layer of one call.
  constexpr int64_t cols = 4096, tile_rows = 64;
  const size_t row_bytes = quant::codec(codec_name).row_bytes(cols);
  const int64_t rows = std::max<int64_t>(tile_rows, int64_t(working_set / row_bytes) / tile_rows * tile_rows);
  const GemvCall one{codec_name, rows, cols};
  return measure_decode_gemv(std::span(&one, 1), working_set, pool, reps).resident_gbs;
}

DecodeGemvRates measure_decode_gemv(std::span<const GemvCall> layer, size_t working_set, ThreadPool& pool, int reps) {
  // Each call's matrices are tiles of a few properly encoded rows, copied
  // `copies` times so the layers together pass the working set.
  struct Prepared {
    const GemvCall* call;
    const quant::Codec* codec;
    size_t matrix_bytes;
    std::vector<float> x;       // [x_rows, cols]
    std::vector<uint8_t> tile;  // up to 64 encoded rows, repeated to fill each matrix
  };
  std::vector<Prepared> calls;
  DecodeGemvRates out;
  size_t layer_bytes = 0;
  int64_t max_out = 0;
  for (const GemvCall& g : layer) {
    const quant::Codec* c = quant::find_codec(g.codec);
    if (!c) throw Error("calibrate: decode GEMV: unknown codec '" + g.codec + "'");
    if (g.rows < 1 || g.cols < 1 || g.n_mats < 1 || (g.x_rows != 1 && g.x_rows != g.n_mats))
      throw Error("calibrate: decode GEMV: bad call (" + g.codec + " " + std::to_string(g.rows) + " x " +
                  std::to_string(g.cols) + ", " + std::to_string(g.n_mats) + " matrices, " + std::to_string(g.x_rows) +
                  " activation rows)");
    if (g.cols % c->block_values != 0)
      throw Error("calibrate: decode GEMV: " + std::to_string(g.cols) + " columns are not whole " + g.codec +
                  " blocks");
    const size_t bytes = c->row_bytes(g.cols) * size_t(g.rows);
    const int64_t tile_rows = std::min<int64_t>(64, g.rows);
    calls.push_back(
        {&g, c, bytes, gaussian_matrix(g.x_rows, g.cols, 13),
         quant::quantize(*c, gaussian_matrix(tile_rows, g.cols, 5), tile_rows, g.cols, nullptr, false, &pool)});
    layer_bytes += bytes * size_t(g.n_mats);
    (g.expert ? out.expert_bytes : out.resident_bytes) += double(bytes) * g.n_mats;
    max_out = std::max(max_out, g.rows * g.n_mats);
  }
  if (calls.empty()) return out;
  const size_t copies = std::max<size_t>(1, (working_set + layer_bytes - 1) / layer_bytes);
  AlignedBuffer buf(copies * layer_bytes);
  std::vector<quant::QMatrix> mats;  // [copy][call][matrix]
  size_t at = 0;
  for (size_t copy = 0; copy < copies; ++copy) {
    for (const Prepared& p : calls) {
      for (int m = 0; m < p.call->n_mats; ++m) {
        uint8_t* base = buf.data.get() + at;
        for (size_t off = 0; off < p.matrix_bytes; off += p.tile.size())
          std::memcpy(base + off, p.tile.data(), std::min(p.tile.size(), p.matrix_bytes - off));
        mats.push_back(quant::make_qmatrix(*p.codec, base, p.matrix_bytes, p.call->rows, p.call->cols));
        at += p.matrix_bytes;
      }
    }
  }
  std::vector<float> y(static_cast<size_t>(max_out));
  quant::Activations act;
  std::vector<double> resident_gbs, expert_gbs;
  for (int rep = 0; rep <= reps; ++rep) {  // the first pass warms up (page faults, frequency)
    int64_t resident_ns = 0, expert_ns = 0;
    size_t m = 0;
    for (size_t copy = 0; copy < copies; ++copy) {
      for (const Prepared& p : calls) {
        const auto group = std::span<const quant::QMatrix>(mats).subspan(m, size_t(p.call->n_mats));
        m += group.size();
        const int64_t t0 = metrics::now_ns();
        act.encode(*p.codec, p.x.data(), p.call->x_rows, p.call->cols, quant::DotPath::quantized);
        if (group.size() == 1)
          quant::gemv(group[0], act, y.data(), &pool);
        else
          quant::multi_gemv(group, act, y.data(), &pool);
        (p.call->expert ? expert_ns : resident_ns) += metrics::now_ns() - t0;
      }
    }
    if (rep == 0) continue;
    if (resident_ns > 0) resident_gbs.push_back(out.resident_bytes * double(copies) / double(resident_ns));
    if (expert_ns > 0) expert_gbs.push_back(out.expert_bytes * double(copies) / double(expert_ns));
  }
  out.resident_gbs = resident_gbs.empty() ? 0 : metrics::median(resident_gbs);
  out.expert_gbs = expert_gbs.empty() ? 0 : metrics::median(expert_gbs);
  return out;
}

HardwareProfile calibrate(const CalibrateOptions& opts) {
  auto say = [&](const std::string& line) {
    if (opts.progress) opts.progress(line);
  };
  const std::string measured = "measured by moelab calibrate on " + today();
  const int n_threads = opts.threads > 0 ? opts.threads : int(std::max(1u, std::thread::hardware_concurrency()));
  HardwareProfile hw;
  hw.id = opts.id;
  hw.name = "this machine (" + std::to_string(n_threads) + " threads)";
  hw.notes = "Measured by moelab calibrate on " + today() + " with " + std::to_string(n_threads) +
             " threads; scratch file in " + opts.scratch_dir.string() + "; 1-minute load average at the start " +
             load_average() + " on " + std::to_string(std::thread::hardware_concurrency()) + " hardware threads. " +
             opts.note;
  const double ram_bytes = double(::sysconf(_SC_PHYS_PAGES)) * double(::sysconf(_SC_PAGESIZE));
  hw.ram_gb = {ram_bytes / 1e9, "sysconf(_SC_PHYS_PAGES) x page size, " + measured};
  hw.cpu.cores = {double(n_threads), "std::thread::hardware_concurrency, " + measured};

  // Memory read bandwidth over a buffer well past any last-level cache.
  const size_t mem_bytes = opts.memory_bytes;
  const std::string mem_mib = std::to_string(mem_bytes >> 20) + " MiB";
  ThreadPool pool(n_threads);
  const double mem1 = metrics::read_bandwidth_gbs(mem_bytes, nullptr, 5);
  const double mem_all = metrics::read_bandwidth_gbs(mem_bytes, &pool, 5);
  hw.cpu.memory_read_gbs = {mem_all, "metrics::read_bandwidth_gbs over " + mem_mib + ", " +
                                         std::to_string(n_threads) + " threads, median of 5, " + measured};
  hw.cpu.memory_read_gbs_1thread =
      Sourced{mem1, "metrics::read_bandwidth_gbs over " + mem_mib + ", 1 thread, median of 5, " + measured};
  say("memory read: " + std::to_string(mem1) + " GB/s (1 thread), " + std::to_string(mem_all) + " GB/s (all)");

  // Quantized GEMV per codec: a few properly encoded rows tiled over a working
  // set past the LLC, so the weights stream from DRAM as in a large model.
  const size_t working_set = opts.gemv_bytes;
  const std::string ws_mib = std::to_string(working_set >> 20) + " MiB";
  for (const auto& name : opts.codecs) {
    const double rate = measure_gemv_gbs(name, working_set, pool);
    hw.cpu.gemv_gbs[name] = {rate, "quant::gemv over a " + ws_mib + " working set, " + std::to_string(n_threads) +
                                       " threads, median of 3, " + measured};
    say("gemv " + name + ": " + std::to_string(rate) + " GB/s");
  }

  // Prefill: q4_k GEMM with a 64-row activation batch.
  {
    const quant::Codec& c = quant::codec("q4_k");
    const int64_t rows = 2048, batch = 64, cols = 4096;
    const std::vector<float> w = gaussian_matrix(rows, cols, 9);
    const std::vector<uint8_t> q = quant::quantize(c, w, rows, cols, nullptr, false, &pool);
    const quant::QMatrix m = quant::make_qmatrix(c, q.data(), q.size(), rows, cols);
    const std::vector<float> xb = gaussian_matrix(batch, cols, 11);
    std::vector<float> y(static_cast<size_t>(rows * batch));
    std::vector<double> gflops;
    for (int rep = 0; rep < 4; ++rep) {
      const int64_t t0 = metrics::now_ns();
      quant::gemm(m, xb.data(), batch, y.data(), &pool);
      const int64_t t1 = metrics::now_ns();
      if (rep > 0) gflops.push_back(2.0 * double(rows) * double(cols) * double(batch) / double(t1 - t0));
    }
    hw.cpu.gflops = Sourced{metrics::median(gflops), "quant::gemm q4_k 2048x4096 x 64 rows, " +
                                                         std::to_string(n_threads) + " threads, " + measured};
    say("gemm q4_k: " + std::to_string(hw.cpu.gflops->value) + " GFLOP/s");
  }

  // SSD: O_DIRECT random reads on a scratch file.
  std::filesystem::create_directories(opts.scratch_dir);
  const auto scratch = opts.scratch_dir / ("moelab-calibrate-" + std::to_string(::getpid()) + ".bin");
  say("writing scratch file " + scratch.string() + " (" + std::to_string(opts.file_bytes >> 20) + " MiB)");
  write_scratch(scratch, opts.file_bytes);
  try {
    for (double kib : opts.request_kib) {
      for (int qd : opts.queue_depths) {
        const size_t req = size_t(kib * 1024);
        const ReadSample s = measure_direct_reads(scratch, opts.file_bytes, req, qd, opts.seconds_per_point);
        hw.ssd.read.push_back({kib, double(qd), s.gbs,
                               "O_DIRECT random pread, " + std::to_string(qd) + " threads, " + measured});
        if (kib == opts.request_kib.front() && qd == 1)
          hw.ssd.latency_us = Sourced{s.mean_latency_us, "mean of O_DIRECT 4 KiB random preads at QD1, " + measured};
        say("read " + std::to_string(int(kib)) + " KiB QD" + std::to_string(qd) + ": " + std::to_string(s.gbs) +
            " GB/s, " + std::to_string(s.mean_latency_us) + " us");
      }
    }
    // Page-cache hits: buffered 1 MiB reads of the file once it is cached.
    {
      const int fd = ::open(scratch.c_str(), O_RDONLY);
      if (fd >= 0) {
        std::vector<uint8_t> buf(size_t(1) << 20);
        for (size_t off = 0; off < opts.file_bytes; off += buf.size())
          if (::pread(fd, buf.data(), buf.size(), off_t(off)) <= 0) break;  // warm the cache
        ::close(fd);
      }
      const ReadSample s = measure_direct_reads(scratch, opts.file_bytes, size_t(1) << 20, n_threads,
                                                opts.seconds_per_point, /*direct=*/false);
      hw.ssd.page_cache_hit_gbs = Sourced{s.gbs, "buffered 1 MiB preads of a cached file, " +
                                                     std::to_string(n_threads) + " threads, " + measured};
      say("page-cache hit: " + std::to_string(s.gbs) + " GB/s");
    }
  } catch (...) {
    std::filesystem::remove(scratch);
    throw;
  }
  std::filesystem::remove(scratch);
  if (const double ra = read_ahead_kib(opts.scratch_dir); ra > 0)
    hw.ssd.mmap_fault_kib = Sourced{ra, "read_ahead_kb of the scratch file's block device (a page fault reads "
                                        "around it that much), " + measured};
  else
    hw.ssd.mmap_fault_kib = Sourced{4, "x86-64 base page (the device's read-ahead was not readable)"};
  hw.io_overlaps_compute = Sourced{1, "assumption: disk DMA does not share the compute path here (not measured)"};
  return hw;
}

}  // namespace moelab::perfmodel
