#include "perfmodel/hardware.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <set>

#include "core/error.h"
#include "perfmodel/json_node.h"

#ifndef MOELAB_SOURCE_DIR
#define MOELAB_SOURCE_DIR "."
#endif

namespace moelab::perfmodel {

const char* device_name(Device d) { return d == Device::gpu ? "gpu" : "cpu"; }

Device parse_device(const std::string& name) {
  if (name == "cpu") return Device::cpu;
  if (name == "gpu") return Device::gpu;
  throw Error("unknown compute device '" + name + "' (known: cpu, gpu)");
}

double ComputeDevice::gemv_rate_gbs(const std::string& codec) const {
  auto it = gemv_gbs.find(codec);
  if (it == gemv_gbs.end()) it = gemv_gbs.find("*");
  const double mem = memory_read_gbs.value;
  return it == gemv_gbs.end() ? mem : std::min(mem, it->second.value);
}

bool ComputeDevice::gemv_memory_bound(const std::string& codec) const {
  // Within 10% of the memory bandwidth counts as memory-bound: a kernel that
  // streams that close to the bus has nothing left to win from faster math.
  return gemv_rate_gbs(codec) >= 0.9 * memory_read_gbs.value;
}

const ComputeDevice& HardwareProfile::device(Device d) const {
  if (d == Device::cpu) return cpu;
  if (!gpu) throw Error(file + ": profile '" + id + "' has no gpu section but a configuration computes on the gpu");
  return *gpu;
}

double HardwareProfile::ssd_peak_gbs() const {
  double peak = 0;
  for (const auto& p : ssd.read) peak = std::max(peak, p.gbs);
  return peak;
}

namespace {
// The distinct sizes and depths of the points when they form a full grid, else empty.
bool as_grid(const std::vector<SsdPoint>& pts, std::vector<double>& sizes, std::vector<double>& depths) {
  std::set<double> s, d;
  for (const auto& p : pts) {
    s.insert(p.request_kib);
    d.insert(p.queue_depth);
  }
  if (s.size() < 2 || d.size() < 2 || s.size() * d.size() != pts.size()) return false;
  sizes.assign(s.begin(), s.end());
  depths.assign(d.begin(), d.end());
  return true;
}

double grid_at(const std::vector<SsdPoint>& pts, double kib, double qd) {
  for (const auto& p : pts)
    if (p.request_kib == kib && p.queue_depth == qd) return p.gbs;
  return 0;
}

// Index i and weight w with v between axis[i] and axis[i+1] in log2 space (clamped).
void bracket(const std::vector<double>& axis, double v, size_t& i, double& w) {
  if (v <= axis.front()) { i = 0; w = 0; return; }
  if (v >= axis.back()) { i = axis.size() - 2; w = 1; return; }
  i = 0;
  while (axis[i + 1] < v) ++i;
  w = (std::log2(v) - std::log2(axis[i])) / (std::log2(axis[i + 1]) - std::log2(axis[i]));
}
}  // namespace

double HardwareProfile::ssd_read_gbs(double request_bytes, double queue_depth) const {
  queue_depth = std::max(1.0, queue_depth);
  const double kib = request_bytes / 1024.0;
  std::vector<double> sizes, depths;
  if (as_grid(ssd.read, sizes, depths)) {
    size_t i, j;
    double wi, wj;
    bracket(sizes, kib, i, wi);
    bracket(depths, queue_depth, j, wj);
    auto g = [&](size_t a, size_t b) { return std::log2(std::max(1e-9, grid_at(ssd.read, sizes[a], depths[b]))); };
    const double lg = (1 - wi) * (1 - wj) * g(i, j) + wi * (1 - wj) * g(i + 1, j) + (1 - wi) * wj * g(i, j + 1) +
                      wi * wj * g(i + 1, j + 1);
    const double gbs = std::exp2(lg);
    // Beyond the largest measured request size a bigger request costs no more per byte;
    // beyond the deepest queue nothing more is gained: the clamped corners above do that.
    return gbs;
  }
  // Sparse points: the point nearest in log2(request size) (then in depth)
  // gives the streaming rate for this request size; latency bounds small or
  // shallow reads below it.
  const SsdPoint* near = &ssd.read.front();
  auto distance = [&](const SsdPoint& p) {
    return std::fabs(std::log2(p.request_kib / kib)) * 16 + std::fabs(std::log2(p.queue_depth / queue_depth));
  };
  for (const auto& p : ssd.read)
    if (distance(p) < distance(*near)) near = &p;
  const double peak = near->gbs * 1e9;  // bytes/s
  const double latency_s = ssd.latency_us ? ssd.latency_us->value * 1e-6 : 0.0;
  const double per_request_s = latency_s + request_bytes / peak;
  return std::min(peak, queue_depth * request_bytes / per_request_s) / 1e9;
}

namespace {
Sourced read_sourced(const JsonNode& n) {
  n.expect_object();
  n.allow_only({"value", "source", "note"});
  Sourced s;
  const JsonNode v = n.at("value");
  if (v.json().is_boolean()) s.value = v.boolean() ? 1 : 0;
  else s.value = v.nonnegative_number();
  s.source = n.string("source");
  if (s.source.empty()) n.at("source").fail("empty source: every value needs one");
  return s;
}
std::optional<Sourced> optional_sourced(const JsonNode& parent, const std::string& key) {
  if (!parent.has(key)) return std::nullopt;
  return read_sourced(parent.at(key));
}

ComputeDevice read_device(const JsonNode& n) {
  n.expect_object();
  n.allow_only({"cores", "memory_read_gbs", "memory_read_gbs_1thread", "gflops", "layer_overhead_us", "gemv_gbs",
                "note"});
  ComputeDevice d;
  if (n.has("cores")) d.cores = read_sourced(n.at("cores"));
  d.memory_read_gbs = read_sourced(n.at("memory_read_gbs"));
  if (!(d.memory_read_gbs.value > 0)) n.at("memory_read_gbs").at("value").fail("expected a positive number");
  d.memory_read_gbs_1thread = optional_sourced(n, "memory_read_gbs_1thread");
  d.gflops = optional_sourced(n, "gflops");
  d.layer_overhead_us = optional_sourced(n, "layer_overhead_us");
  if (n.has("gemv_gbs")) {
    const JsonNode g = n.at("gemv_gbs");
    for (const auto& key : g.keys()) {
      Sourced s = read_sourced(g.at(key));
      if (!(s.value > 0)) g.at(key).at("value").fail("expected a positive number");
      d.gemv_gbs[key] = s;
    }
  }
  return d;
}
}  // namespace

HardwareProfile load_hardware_file(const std::filesystem::path& path) {
  const JsonNode root = JsonNode::load(path);
  root.expect_object();
  root.allow_only({"$schema", "id", "name", "notes", "ram_gb", "cpu", "gpu", "ssd", "io_overlaps_compute"});
  HardwareProfile hw;
  hw.file = path.string();
  hw.id = root.string("id");
  if (hw.id != path.stem().string()) root.at("id").fail("id '" + hw.id + "' must equal the file name without .json");
  hw.name = root.string("name");
  hw.notes = root.optional_string("notes").value_or("");
  hw.ram_gb = read_sourced(root.at("ram_gb"));
  hw.cpu = read_device(root.at("cpu"));
  if (root.has("gpu")) hw.gpu = read_device(root.at("gpu"));
  const JsonNode ssd = root.at("ssd");
  ssd.expect_object();
  ssd.allow_only({"latency_us", "read", "page_cache_hit_gbs", "mmap_fault_kib", "note"});
  hw.ssd.latency_us = optional_sourced(ssd, "latency_us");
  hw.ssd.page_cache_hit_gbs = optional_sourced(ssd, "page_cache_hit_gbs");
  hw.ssd.mmap_fault_kib = optional_sourced(ssd, "mmap_fault_kib");
  const JsonNode read = ssd.at("read");
  if (read.size() == 0) read.fail("expected at least one read point");
  for (size_t i = 0; i < read.size(); ++i) {
    const JsonNode p = read.at(i);
    p.expect_object();
    p.allow_only({"request_kib", "queue_depth", "gbs", "source", "note"});
    SsdPoint pt;
    pt.request_kib = p.positive_number("request_kib");
    pt.queue_depth = p.positive_number("queue_depth");
    pt.gbs = p.positive_number("gbs");
    pt.source = p.string("source");
    if (pt.source.empty()) p.at("source").fail("empty source: every value needs one");
    hw.ssd.read.push_back(pt);
  }
  hw.io_overlaps_compute = optional_sourced(root, "io_overlaps_compute");
  return hw;
}

std::filesystem::path hardware_dir() {
  if (const char* env = std::getenv("MOELAB_HARDWARE"); env && *env) return env;
  return std::filesystem::path(MOELAB_SOURCE_DIR) / "datasets" / "hardware";
}

std::vector<std::string> hardware_ids(const std::filesystem::path& dir) {
  std::vector<std::string> ids;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir.empty() ? hardware_dir() : dir, ec))
    if (e.path().extension() == ".json" && e.path().stem() != "schema") ids.push_back(e.path().stem().string());
  std::sort(ids.begin(), ids.end());
  return ids;
}

HardwareProfile find_hardware(const std::string& id_or_path, const std::filesystem::path& dir) {
  if (id_or_path.ends_with(".json")) return load_hardware_file(id_or_path);
  const auto base = dir.empty() ? hardware_dir() : dir;
  const auto path = base / (id_or_path + ".json");
  if (!std::filesystem::exists(path)) {
    std::string known;
    for (const auto& n : hardware_ids(base)) known += (known.empty() ? "" : ", ") + n;
    throw Error("unknown hardware profile '" + id_or_path + "' in " + base.string() + " (known: " + known + ")");
  }
  return load_hardware_file(path);
}

namespace {
// Four significant digits: more would only repeat measurement noise.
double round4(double v) {
  if (v == 0 || !std::isfinite(v)) return v;
  const double scale = std::pow(10.0, 3 - std::floor(std::log10(std::fabs(v))));
  return std::round(v * scale) / scale;
}
nlohmann::ordered_json sourced_json(const Sourced& s) {
  nlohmann::ordered_json j;
  j["value"] = round4(s.value);
  j["source"] = s.source;
  return j;
}
nlohmann::ordered_json device_json(const ComputeDevice& d) {
  nlohmann::ordered_json j;
  if (!d.cores.source.empty()) j["cores"] = sourced_json(d.cores);
  j["memory_read_gbs"] = sourced_json(d.memory_read_gbs);
  if (d.memory_read_gbs_1thread) j["memory_read_gbs_1thread"] = sourced_json(*d.memory_read_gbs_1thread);
  if (d.gflops) j["gflops"] = sourced_json(*d.gflops);
  if (d.layer_overhead_us) j["layer_overhead_us"] = sourced_json(*d.layer_overhead_us);
  if (!d.gemv_gbs.empty()) {
    nlohmann::ordered_json g = nlohmann::ordered_json::object();
    for (const auto& [k, v] : d.gemv_gbs) g[k] = sourced_json(v);
    j["gemv_gbs"] = g;
  }
  return j;
}
}  // namespace

nlohmann::ordered_json to_json(const HardwareProfile& hw) {
  nlohmann::ordered_json j;
  j["$schema"] = "./schema.json";
  j["id"] = hw.id;
  j["name"] = hw.name;
  if (!hw.notes.empty()) j["notes"] = hw.notes;
  j["ram_gb"] = sourced_json(hw.ram_gb);
  j["cpu"] = device_json(hw.cpu);
  if (hw.gpu) j["gpu"] = device_json(*hw.gpu);
  nlohmann::ordered_json ssd;
  if (hw.ssd.latency_us) ssd["latency_us"] = sourced_json(*hw.ssd.latency_us);
  nlohmann::ordered_json read = nlohmann::ordered_json::array();
  for (const auto& p : hw.ssd.read) {
    nlohmann::ordered_json pt;
    pt["request_kib"] = p.request_kib;
    pt["queue_depth"] = p.queue_depth;
    pt["gbs"] = round4(p.gbs);
    pt["source"] = p.source;
    read.push_back(pt);
  }
  ssd["read"] = read;
  if (hw.ssd.page_cache_hit_gbs) ssd["page_cache_hit_gbs"] = sourced_json(*hw.ssd.page_cache_hit_gbs);
  if (hw.ssd.mmap_fault_kib) ssd["mmap_fault_kib"] = sourced_json(*hw.ssd.mmap_fault_kib);
  j["ssd"] = ssd;
  if (hw.io_overlaps_compute) {
    nlohmann::ordered_json o;
    o["value"] = hw.io_overlaps_compute->value != 0;
    o["source"] = hw.io_overlaps_compute->source;
    j["io_overlaps_compute"] = o;
  }
  return j;
}

}  // namespace moelab::perfmodel
