// The analytic model of one configuration on one hardware profile.
//
// Decode, per token (layers run one after another: layer l+1's router needs
// layer l's output):
//   bytes by tier   resident  = resident params x resident bits/8 (every token)
//                   experts   = n_moe_layers x top_k x expert params x expert bits/8,
//                               split into cache hits (h) and disk reads (1 - h)
//   hit rate h      LRU over a routing trace at the cache capacity in experts:
//                   resident io -> 1; own cache -> its budget; page cache ->
//                   kPageCacheShare x (RAM - resident weights); direct I/O without
//                   a cache -> 0
//   compute         bytes / gemv rate of the device that runs them (codec rate,
//                   capped by its memory bandwidth) + n_layer x layer overhead
//   disk I/O        per layer: misses x expert bytes at the SSD rate for that
//                   request size and queue depth min(io depth, misses); mmap
//                   reads fault-sized requests; page-cache hits of pread cost a
//                   copy at page_cache_hit_gbs
//   overlap         speculation hides accuracy x I/O behind compute (only where
//                   the hardware overlaps I/O and compute); with a replayed
//                   store (Scenario::prefetch_reads) per layer: misses +
//                   max(compute, prefetch reads)
// Prefill (P tokens): each layer reads the distinct experts of the batch once;
// time = max(weight bytes / gemv rate, 2 x active params x P / gflops) + I/O.
//
// Outputs: predicted tok/s, the bound (io / memory / compute / overhead), and the
// roofline: each resource at its peak, perfectly overlapped.
#pragma once

#include <algorithm>
#include <optional>
#include <string>

#include "perfmodel/hardware.h"
#include "perfmodel/routing.h"
#include "perfmodel/shape.h"

namespace moelab::perfmodel {

// Share of the RAM a process leaves free that the OS page cache ends up
// holding. Fitted to flash-moe's two published observations: ~35 GB of the
// ~42 GB left on the 48 GB M3 Max, ~50 GB of the ~58.5 GB left on the 64 GB
// RTX 4090 box (both 0.84).
inline constexpr double kPageCacheShare = 0.84;
// Bytes the OS page cache can hold beside a process whose weights take
// `process_bytes`: kPageCacheShare of the RAM left.
inline double page_cache_capacity_bytes(double ram_gb, double process_bytes) {
  return kPageCacheShare * std::max(0.0, ram_gb * 1e9 - process_bytes);
}

enum class IoMode : uint8_t { resident, mmap, pread, direct };
IoMode parse_io_mode(const std::string& name);  // resident | mmap | pread | direct; throws moelab::Error
const char* io_mode_name(IoMode m);

enum class Metric : uint8_t { decode_tok_s, prefill_tok_s };
Metric parse_metric(const std::string& name);
const char* metric_name(Metric m);

struct Scenario {
  Metric metric = Metric::decode_tok_s;
  IoMode io = IoMode::resident;
  int64_t top_k = 0;                    // 0 = the model's
  std::string expert_codec = "q4_k";    // codec name for the gemv rate lookup
  double expert_bits = 4.5;             // bits per weight of expert bytes
  std::string resident_codec = "q4_k";
  double resident_bits = 4.5;
  Device expert_device = Device::cpu, resident_device = Device::cpu;
  std::optional<double> expert_cache_bytes;  // own cache; unset = none (page cache decides for pread/mmap)
  bool page_cache = true;               // pread/mmap go through the OS page cache (false: F_NOCACHE/O_DIRECT)
  double io_queue_depth = 1;            // reads in flight (threads issuing pread, io_uring depth)
  double process_resident_bytes = 0;    // RAM the process holds besides the cache; 0 = resident weights
  double spec_accuracy = 0;             // share of expert reads prefetched a layer ahead
  // Reads speculation wastes (wrong predictions), per needed miss; they use
  // the disk in the background beside the useful prefetches.
  double spec_wasted_reads = 0;
  double io_request_bytes = 0;          // one read's size; 0 = one read per expert
  // From a replay of the engine's store with its recorded prefetches: reads
  // the prefetcher issues per expert the forward pass acquires (useful or
  // not). Set, the model follows the engine: misses are read on the critical
  // path in series with compute, the prefetches share the disk in the
  // background (two readers: twice the depth) and hide behind at most one
  // layer's compute (speculation looks one layer ahead); spec_accuracy and
  // spec_wasted_reads are then unused.
  std::optional<double> prefetch_reads;
  // Share of those reads the OS page cache serves (buffered io that keeps its
  // pages, re-reading experts read before), at page_cache_hit_gbs.
  double page_cache_read_share = 0;
  // The cache hit rate, when the caller simulated it (a recorded trace through
  // the engine's own cache); unset = LRU over `trace` or a synthetic trace.
  std::optional<double> hit_rate;
  int64_t prompt_tokens = 512;          // prefill batch
  TraceShape trace_shape = kDefaultTraceShape;
  const RoutingTrace* trace = nullptr;  // recorded trace; nullptr = synthesize one
  uint64_t seed = 1;
  // Fixed cost per layer per token of the engine (dispatch, Python, syncs), on
  // top of the devices' own; from the published file's engine table.
  double engine_layer_overhead_us = 0;
};

struct Prediction {
  double tok_s = 0;
  double roofline_tok_s = 0;
  std::string bound;  // io | memory | compute | overhead
  // Per token (decode) or per prompt (prefill):
  double resident_bytes = 0, hit_bytes = 0, disk_bytes = 0;
  double hit_rate = 0;
  double cache_experts = 0;  // capacity the simulation used
  double compute_s = 0, io_s = 0, exposed_io_s = 0, overhead_s = 0, total_s = 0;
};

Prediction predict(const HardwareProfile& hw, const ModelShape& shape, const Scenario& sc);

}  // namespace moelab::perfmodel
