// Hardware profiles (datasets/hardware/<id>.json): the few rates that bound a
// decode step, each with its source (a spec sheet, a review, a published
// measurement, or "measured by moelab calibrate on <date>").
//
//   ram_gb                     installed memory (sizes the OS page cache)
//   cpu / gpu                  one compute device each (gpu optional):
//     memory_read_gbs          weight streaming bandwidth of its memory, all threads / whole GPU
//     memory_read_gbs_1thread  one core (cpu only, optional)
//     gflops                   dense matmul peak (prefill), optional
//     layer_overhead_us        fixed cost per layer per token (dispatch, sync), optional
//     gemv_gbs                 codec -> GB/s of weights a quantized GEMV streams ("*" = any codec)
//   ssd                        read throughput points (request KiB, queue depth, GB/s), latency,
//                              page-cache hit rate of delivery, mmap fault size
//   io_overlaps_compute        false where disk DMA and compute share one memory controller
//
// Schema: datasets/hardware/schema.json.
#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace moelab::perfmodel {

struct Sourced {
  double value = 0;
  std::string source;
};

struct SsdPoint {
  double request_kib = 0, queue_depth = 0, gbs = 0;
  std::string source;
};

enum class Device : uint8_t { cpu, gpu };
const char* device_name(Device d);
Device parse_device(const std::string& name);  // throws moelab::Error

struct ComputeDevice {
  Sourced cores;                           // cpu cores or gpu cores (informational)
  Sourced memory_read_gbs;                 // required
  std::optional<Sourced> memory_read_gbs_1thread;
  std::optional<Sourced> gflops;
  std::optional<Sourced> layer_overhead_us;
  std::map<std::string, Sourced> gemv_gbs;  // codec name or "*"

  // GB/s a GEMV of `codec` streams weights at: the codec's own rate, else "*",
  // else the memory bandwidth; never above the memory bandwidth.
  double gemv_rate_gbs(const std::string& codec) const;
  // Whether that rate is limited by memory (true) or by the kernel (false).
  bool gemv_memory_bound(const std::string& codec) const;
};

struct SsdProfile {
  std::optional<Sourced> latency_us;      // one small read at queue depth 1
  std::vector<SsdPoint> read;             // >= 1 point
  std::optional<Sourced> page_cache_hit_gbs;  // bytes/s a page-cache hit delivers to the compute device
  std::optional<Sourced> mmap_fault_kib;      // bytes one mmap page fault reads
};

struct HardwareProfile {
  std::string id, name, notes, file;
  Sourced ram_gb;
  ComputeDevice cpu;
  std::optional<ComputeDevice> gpu;
  SsdProfile ssd;
  std::optional<Sourced> io_overlaps_compute;  // value 1 = true

  const ComputeDevice& device(Device d) const;  // throws if the profile has no gpu
  // Aggregate read GB/s for requests of `request_bytes` kept `queue_depth` deep.
  // Grid profiles (from moelab calibrate) interpolate bilinearly in log2(size),
  // log2(qd); sparse profiles (published figures) use
  //   min(peak, qd * size / (latency + size / peak))
  // with peak = the rate of the published point nearest in request size
  // (published points come from different access patterns: a sequential
  // benchmark and an engine's own random expert reads differ).
  double ssd_read_gbs(double request_bytes, double queue_depth) const;
  double ssd_peak_gbs() const;
  bool overlaps_io_and_compute() const { return !io_overlaps_compute || io_overlaps_compute->value != 0; }
};

HardwareProfile load_hardware_file(const std::filesystem::path& path);
// Finds `<dir>/<id>.json` (dir defaults to hardware_dir()); error lists the known ids.
HardwareProfile find_hardware(const std::string& id_or_path, const std::filesystem::path& dir = {});
std::filesystem::path hardware_dir();  // $MOELAB_HARDWARE or <source>/datasets/hardware
std::vector<std::string> hardware_ids(const std::filesystem::path& dir = {});

// The profile as JSON in the file's field order (what moelab calibrate writes).
nlohmann::ordered_json to_json(const HardwareProfile& hw);

}  // namespace moelab::perfmodel
