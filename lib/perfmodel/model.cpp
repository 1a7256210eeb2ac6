#include "perfmodel/model.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace moelab::perfmodel {

IoMode parse_io_mode(const std::string& name) {
  if (name == "resident") return IoMode::resident;
  if (name == "mmap") return IoMode::mmap;
  if (name == "pread") return IoMode::pread;
  if (name == "direct") return IoMode::direct;
  throw Error("unknown io mode '" + name + "' (known: resident, mmap, pread, direct)");
}

const char* io_mode_name(IoMode m) {
  switch (m) {
    case IoMode::resident: return "resident";
    case IoMode::mmap: return "mmap";
    case IoMode::pread: return "pread";
    case IoMode::direct: return "direct";
  }
  return "?";
}

Metric parse_metric(const std::string& name) {
  if (name == "decode_tok_s") return Metric::decode_tok_s;
  if (name == "prefill_tok_s") return Metric::prefill_tok_s;
  throw Error("unknown metric '" + name + "' (known: decode_tok_s, prefill_tok_s)");
}

const char* metric_name(Metric m) { return m == Metric::prefill_tok_s ? "prefill_tok_s" : "decode_tok_s"; }

namespace {

// mmap fault size where the profile does not say: the 4 KiB x86-64 page.
constexpr double kDefaultFaultBytes = 4096;

// Tokens to simulate: enough for the cache to fill (warm-up) and for the hit
// rate to settle, bounded so one prediction stays well under a second.
void trace_lengths(int64_t cap_experts, int64_t accesses_per_token, int64_t& warmup, int64_t& measured) {
  warmup = std::clamp<int64_t>(4 * cap_experts / std::max<int64_t>(1, accesses_per_token), 50, 5000);
  measured = std::clamp<int64_t>(int64_t(400000 / std::max<int64_t>(1, accesses_per_token)), 200, 2000);
}

double gemv_seconds(const ComputeDevice& dev, const std::string& codec, double bytes) {
  return bytes / (dev.gemv_rate_gbs(codec) * 1e9);
}

}  // namespace

Prediction predict(const HardwareProfile& hw, const ModelShape& shape, const Scenario& sc) {
  Prediction p;
  const int64_t top_k = shape.is_moe() ? (sc.top_k > 0 ? sc.top_k : shape.n_expert_used) : 0;
  if (shape.is_moe() && top_k > shape.n_expert)
    throw Error(shape.name + ": top_k " + std::to_string(top_k) + " exceeds n_expert " + std::to_string(shape.n_expert));
  if (!(sc.expert_bits > 0) || !(sc.resident_bits > 0)) throw Error(shape.name + ": bits per weight must be positive");
  const ComputeDevice& dev_r = hw.device(sc.resident_device);
  const ComputeDevice& dev_e = hw.device(sc.expert_device);

  const double expert_bytes = shape.expert_params * sc.expert_bits / 8;  // one expert, one layer
  const double resident_bytes = shape.resident_params_per_token * sc.resident_bits / 8;
  const double resident_total_bytes = shape.resident_params_total * sc.resident_bits / 8;

  // Cache capacity (in experts) and the LRU hit rate on the routing trace.
  double hit = 1.0;
  RoutingTrace synthetic;
  const RoutingTrace* trace = sc.trace;
  if (shape.is_moe()) {
    if (trace && (trace->n_layer != shape.n_moe_layers || trace->n_expert != shape.n_expert || trace->top_k != top_k))
      throw Error(shape.name + ": routing trace shape (layers " + std::to_string(trace->n_layer) + ", experts " +
                  std::to_string(trace->n_expert) + ", top_k " + std::to_string(trace->top_k) +
                  ") does not match the configuration");
    double cap_bytes = 0;
    if (sc.io == IoMode::resident) {
      cap_bytes = double(shape.n_moe_layers * shape.n_expert) * expert_bytes;
    } else if (sc.expert_cache_bytes) {
      cap_bytes = *sc.expert_cache_bytes;
    } else if (sc.page_cache && sc.io != IoMode::direct) {
      const double process = sc.process_resident_bytes > 0 ? sc.process_resident_bytes : resident_total_bytes;
      cap_bytes = page_cache_capacity_bytes(hw.ram_gb.value, process);
    }
    const int64_t n_items = shape.n_moe_layers * shape.n_expert;
    const int64_t cap = std::min<int64_t>(n_items, int64_t(std::floor(cap_bytes / expert_bytes)));
    p.cache_experts = double(cap);
    int64_t warmup, measured;
    trace_lengths(cap, shape.n_moe_layers * top_k, warmup, measured);
    const int64_t need_tokens = sc.metric == Metric::prefill_tok_s ? std::max(warmup + measured, sc.prompt_tokens * 2)
                                                                   : warmup + measured;
    const bool hit_given = sc.hit_rate && sc.metric == Metric::decode_tok_s;
    if (!trace && !hit_given) {
      synthetic = synthesize_trace(shape.n_moe_layers, shape.n_expert, top_k, need_tokens, sc.trace_shape, sc.seed);
      trace = &synthetic;
    }
    if (sc.io == IoMode::resident) hit = 1.0;
    else if (hit_given) hit = std::clamp(*sc.hit_rate, 0.0, 1.0);
    else if (cap >= n_items) hit = 1.0;
    else hit = lru_hit_rate(*trace, cap, std::min(warmup, trace->n_token() / 2));
  }
  p.hit_rate = hit;

  // Experts read per layer: top_k for one decode token; the distinct experts of
  // the batch for prefill.
  const bool prefill = sc.metric == Metric::prefill_tok_s;
  const double prompt = double(std::max<int64_t>(1, sc.prompt_tokens));
  const double experts_per_layer =
      !shape.is_moe() ? 0 : prefill ? mean_distinct_experts(*trace, sc.prompt_tokens) : double(top_k);
  const double misses_per_layer = (1 - hit) * experts_per_layer;
  const double expert_read_bytes = double(shape.n_moe_layers) * experts_per_layer * expert_bytes;

  p.resident_bytes = resident_bytes;
  p.hit_bytes = hit * expert_read_bytes;
  p.disk_bytes = (1 - hit) * expert_read_bytes * (1 + std::max(0.0, sc.spec_wasted_reads));

  // Compute: weights streamed through the GEMV kernels (and, for prefill, the
  // matmul FLOPs), plus the fixed per-layer cost of each device used.
  double weight_s = gemv_seconds(dev_r, sc.resident_codec, resident_bytes) +
                    gemv_seconds(dev_e, sc.expert_codec, expert_read_bytes);
  double compute_s = weight_s;
  if (prefill) {
    auto gflops = [&](const ComputeDevice& d, Device which) {
      if (!d.gflops)
        throw Error(hw.file + ": /" + device_name(which) + "/gflops: missing field (prefill needs the matmul rate)");
      return d.gflops->value * 1e9;
    };
    const double flops_s = 2 * shape.resident_params_per_token * prompt / gflops(dev_r, sc.resident_device) +
                           2 * double(shape.n_moe_layers * top_k) * shape.expert_params * prompt /
                               gflops(dev_e, sc.expert_device);
    compute_s = std::max(weight_s, flops_s);
  }
  double overhead_us = dev_r.layer_overhead_us ? dev_r.layer_overhead_us->value : 0;
  if (sc.expert_device != sc.resident_device && dev_e.layer_overhead_us) overhead_us += dev_e.layer_overhead_us->value;
  overhead_us += sc.engine_layer_overhead_us;
  const double overhead_s = double(shape.n_layer) * overhead_us * 1e-6;

  // Disk I/O, layer by layer: `bytes` of expert reads per layer, the page
  // cache's share of them copied at its delivery rate, the rest from the disk
  // at the rate of the requests' size and queue depth.
  const double copy_gbs = hw.ssd.page_cache_hit_gbs ? hw.ssd.page_cache_hit_gbs->value : hw.cpu.memory_read_gbs.value;
  const double cached_share = std::clamp(sc.page_cache_read_share, 0.0, 1.0);
  auto read_seconds = [&](double bytes, double depth_factor = 1) {
    if (!(bytes > 0)) return 0.0;
    const double disk = bytes * (1 - cached_share);
    double s = bytes * cached_share / (copy_gbs * 1e9);
    if (disk <= 0) return s;
    if (sc.io == IoMode::mmap) {
      const double fault = hw.ssd.mmap_fault_kib ? hw.ssd.mmap_fault_kib->value * 1024 : kDefaultFaultBytes;
      const double depth = depth_factor * std::min(sc.io_queue_depth, std::max(1.0, disk / fault));
      s += disk / (hw.ssd_read_gbs(fault, depth) * 1e9);
    } else {
      const double request = sc.io_request_bytes > 0 ? sc.io_request_bytes : expert_bytes;
      const double depth = depth_factor * std::min(sc.io_queue_depth, std::max(1.0, disk / request));
      s += disk / (hw.ssd_read_gbs(request, depth) * 1e9);
    }
    return s;
  };
  const bool streams = shape.is_moe() && sc.io != IoMode::resident;
  const bool replayed = streams && sc.prefetch_reads && !prefill;
  double io_layer_s = streams ? read_seconds(misses_per_layer * expert_bytes) : 0;
  // pread through the page cache copies each hit out of the cache.
  if (shape.is_moe() && sc.io == IoMode::pread && sc.page_cache && !sc.expert_cache_bytes)
    io_layer_s += hit * experts_per_layer * expert_bytes / (copy_gbs * 1e9);
  const double prefetch_layer_bytes =
      replayed ? std::max(0.0, *sc.prefetch_reads) * experts_per_layer * expert_bytes : 0;
  const double prefetch_layer_s = read_seconds(prefetch_layer_bytes);
  p.disk_bytes = (replayed ? double(shape.n_moe_layers) * (misses_per_layer * expert_bytes + prefetch_layer_bytes)
                            : p.disk_bytes) *
                 (1 - cached_share);
  const double io_s = double(shape.n_moe_layers) * (io_layer_s + prefetch_layer_s);

  // Overlap: speculation prefetches accuracy x the reads a layer ahead, hidden
  // behind that layer's compute where the hardware lets I/O and compute overlap.
  double exposed_io_s = io_s;
  if (replayed && hw.overlaps_io_and_compute()) {
    // The prefetcher reads layer l+1's experts while layer l runs. A layer
    // takes the longer of (a) its misses, read when it asks, then its compute
    // and fixed cost, and (b) the disk's time for misses and prefetches
    // together, which two readers (the forward pass's and the prefetcher's
    // backend, each at the strategy's depth) keep at twice the depth.
    const double layer_s = (compute_s + overhead_s) / double(std::max<int64_t>(1, shape.n_layer));
    const double both_s = read_seconds(misses_per_layer * expert_bytes + prefetch_layer_bytes, 2);
    exposed_io_s = double(shape.n_moe_layers) * std::max(io_layer_s, both_s - layer_s);
  } else if (!replayed && hw.overlaps_io_and_compute() && sc.spec_accuracy > 0 && shape.n_moe_layers > 0) {
    const double compute_layer_s = compute_s / double(std::max<int64_t>(1, shape.n_layer));
    // Useful and wasted prefetches share the disk in the background; what
    // does not fit behind the layer's compute, the forward pass waits for.
    const double acc = std::clamp(sc.spec_accuracy, 0.0, 1.0);
    const double background_s = (acc + std::max(0.0, sc.spec_wasted_reads)) * io_layer_s;
    exposed_io_s = double(shape.n_moe_layers) *
                   ((1 - acc) * io_layer_s + std::max(0.0, background_s - compute_layer_s));
  }

  p.compute_s = compute_s;
  p.io_s = io_s;
  p.exposed_io_s = exposed_io_s;
  p.overhead_s = overhead_s;
  p.total_s = compute_s + exposed_io_s + overhead_s;
  const double tokens = prefill ? prompt : 1.0;
  p.tok_s = tokens / p.total_s;

  // The bound: the largest term; compute splits into memory (the kernels run
  // at the memory bandwidth) and compute (they run below it, or FLOPs dominate).
  if (exposed_io_s >= compute_s && exposed_io_s >= overhead_s) {
    p.bound = "io";
  } else if (overhead_s >= compute_s) {
    p.bound = "overhead";
  } else if (prefill && compute_s > weight_s) {
    p.bound = "compute";
  } else {
    const double r_s = gemv_seconds(dev_r, sc.resident_codec, resident_bytes);
    const double e_s = gemv_seconds(dev_e, sc.expert_codec, expert_read_bytes);
    const bool mem = r_s >= e_s ? dev_r.gemv_memory_bound(sc.resident_codec) : dev_e.gemv_memory_bound(sc.expert_codec);
    p.bound = mem ? "memory" : "compute";
  }

  // Roofline: every byte at its tier's peak bandwidth, everything overlapped.
  const double mem_s = resident_bytes / (dev_r.memory_read_gbs.value * 1e9) +
                       expert_read_bytes / (dev_e.memory_read_gbs.value * 1e9);
  const double disk_s = p.disk_bytes > 0 ? p.disk_bytes / (hw.ssd_peak_gbs() * 1e9) : 0;
  p.roofline_tok_s = tokens / std::max(mem_s, disk_s);
  return p;
}

}  // namespace moelab::perfmodel
