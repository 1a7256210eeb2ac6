// `moelab calibrate`: measures this machine's hardware profile (the numbers a
// datasets/hardware/*.json file holds) in about a minute:
//   - O_DIRECT random reads of a scratch file, 4 KiB..4 MiB x queue depth 1..8
//     (queue depth = threads each keeping one pread in flight), and the 4 KiB
//     QD1 latency
//   - buffered reads of the same, now cached, file (page-cache hit delivery)
//   - memory read bandwidth, one thread and all threads (metrics/bandwidth.h)
//   - quantized GEMV GB/s per codec over a 256 MiB working set (> LLC), all threads
//   - q4_k GEMM GFLOP/s at a 64-row batch (prefill)
#pragma once

#include <filesystem>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "perfmodel/hardware.h"

namespace moelab::perfmodel {

struct CalibrateOptions {
  std::filesystem::path scratch_dir = "/tmp";
  size_t file_bytes = size_t(1) << 30;          // scratch file (>= 16 x the largest request)
  double seconds_per_point = 0.25;              // each SSD point runs about this long
  std::vector<double> request_kib{4, 16, 64, 256, 1024, 4096};
  std::vector<int> queue_depths{1, 2, 4, 8};
  std::vector<std::string> codecs{"f16", "q8_0", "q6_k", "q5_k", "q4_k", "q4_0", "q3_k", "q2_k",
                                  "affine4_g64", "affine3_g64", "tq3"};
  size_t memory_bytes = size_t(512) << 20;      // memory read buffer (>> LLC)
  size_t gemv_bytes = size_t(256) << 20;        // GEMV working set (>> LLC)
  int threads = 0;                              // 0 = all hardware threads
  std::string id = "this-machine";
  std::string note;                             // appended to the profile's notes
  std::function<void(const std::string&)> progress;  // one line per measurement
};

HardwareProfile calibrate(const CalibrateOptions& opts);

// GB/s of weights one quantized GEMV of `codec` streams over `working_set`
// bytes on `pool` (median of `reps` after a warm-up pass).
double measure_gemv_gbs(const std::string& codec, size_t working_set, ThreadPool& pool, int reps = 3);

// One parallel GEMV call of a decode step at a model's own shapes: `n_mats`
// matrices of rows x cols in `codec` in one pass (one matrix: a plain GEMV;
// several: multi_gemv, as the forward pass runs a token's experts), on
// `x_rows` activation rows (1, shared; or one per matrix).
struct GemvCall {
  std::string codec;
  int64_t rows = 0, cols = 0;
  int n_mats = 1, x_rows = 1;
  bool expert = false;  // routed experts: their bytes and time make the expert rate
};

// GB/s one decode layer's calls deliver, run in order as the forward pass
// dispatches them (activations encoded per call, as it does), over copies of
// the layer's weights past `working_set` bytes so they stream from DRAM.
// Small matrices pay their dispatch, barrier and row-split imbalance here,
// which one large GEMV (measure_gemv_gbs) does not show. A kind without calls
// reports 0.
struct DecodeGemvRates {
  double resident_gbs = 0, expert_gbs = 0;
  double resident_bytes = 0, expert_bytes = 0;  // one layer's
};
DecodeGemvRates measure_decode_gemv(std::span<const GemvCall> layer, size_t working_set, ThreadPool& pool,
                                    int reps = 3);

// One measurement of O_DIRECT reads: GB/s of random `request_bytes` reads kept
// `queue_depth` deep on `path` for about `seconds`; also the mean latency of
// one read (queue_depth 1 gives the device latency).
struct ReadSample {
  double gbs = 0, mean_latency_us = 0;
};
// drop_pages (buffered only): drop each read's range from the page cache
// after it (posix_fadvise DONTNEED), as the pread backend does by default:
// the kernel's read-ahead and whatever the page cache keeps then count.
ReadSample measure_direct_reads(const std::filesystem::path& path, size_t file_bytes, size_t request_bytes,
                                int queue_depth, double seconds, bool direct = true, bool drop_pages = false);

}  // namespace moelab::perfmodel
