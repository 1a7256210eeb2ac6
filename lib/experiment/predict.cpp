#include "experiment/predict.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>

#include "core/error.h"
#include "metrics/bandwidth.h"
#include "metrics/timer.h"
#include "perfmodel/cache_sim.h"
#include "quant/codec.h"
#include "store/streaming_experts.h"

namespace moelab::experiment {

namespace fs = std::filesystem;

RoutingRecorder::RoutingRecorder(const model::Config& config, int64_t top_k, int64_t n_tokens)
    : n_layer_(config.n_layer), n_expert_(config.n_expert), top_k_(top_k), ids_(size_t(config.n_layer)) {
  const size_t tokens = size_t(std::max<int64_t>(0, n_tokens));
  for (auto& v : ids_) v.reserve(tokens * size_t(top_k));
  prefetches_.reserve(tokens * size_t(config.n_layer) * 2);
  prefetch_ids_.reserve(tokens * size_t(config.n_layer) * size_t(top_k) * 2);
  observer_.on_route = [this](int layer, int64_t, std::span<const int32_t> ids, std::span<const float>) {
    std::vector<int32_t>& v = ids_[size_t(layer)];
    v.insert(v.end(), ids.begin(), ids.end());
  };
}

void RoutingRecorder::attach(model::Forward& forward, store::StreamingExperts* store) {
  forward.set_observer(&observer_);
  if (!store) return;
  store->set_prediction_observer([this](int at_layer, int target, std::span<const int32_t> ids) {
    // The token being decoded: the routes of `at_layer` recorded so far (its
    // own route comes after this prediction).
    const int64_t token = top_k_ > 0 ? int64_t(ids_[size_t(at_layer)].size()) / top_k_ : 0;
    prefetches_.push_back({token, at_layer, target, uint32_t(prefetch_ids_.size()), uint32_t(ids.size())});
    prefetch_ids_.insert(prefetch_ids_.end(), ids.begin(), ids.end());
  });
}

void RoutingRecorder::detach(model::Forward& forward, store::StreamingExperts* store) {
  forward.set_observer(nullptr);
  if (store) store->set_prediction_observer(nullptr);
}

perfmodel::RoutingTrace RoutingRecorder::trace() const {
  perfmodel::RoutingTrace t;
  t.n_layer = n_layer_, t.n_expert = n_expert_, t.top_k = top_k_;
  const size_t per_layer = ids_.empty() ? 0 : ids_[0].size();
  for (const auto& v : ids_)
    if (v.size() != per_layer) throw Error("internal: routing recorded for some layers only");
  const size_t n_token = top_k_ > 0 ? per_layer / size_t(top_k_) : 0;
  t.ids.resize(n_token * size_t(n_layer_ * top_k_));
  for (size_t tok = 0; tok < n_token; ++tok)
    for (int64_t l = 0; l < n_layer_; ++l)
      std::copy_n(ids_[size_t(l)].begin() + std::ptrdiff_t(tok * size_t(top_k_)), top_k_,
                  t.ids.begin() + std::ptrdiff_t((tok * size_t(n_layer_) + size_t(l)) * size_t(top_k_)));
  t.prefetches = prefetches_;
  t.prefetch_ids = prefetch_ids_;
  return t;
}

namespace {

// Codec holding most bytes of a group, and the group's bits per weight.
struct CodecMix {
  std::map<std::string, double> bytes;
  double total_bytes = 0, weights = 0;
  void add(const gguf::Tensor& t) {
    bytes[std::string(t.codec->name)] += double(t.n_bytes);
    total_bytes += double(t.n_bytes);
    weights += double(t.n_elements());
  }
  std::string main_codec() const {
    std::string best;
    double most = -1;
    for (const auto& [name, b] : bytes)
      if (b > most) best = name, most = b;
    return best;
  }
  double bits() const { return weights > 0 ? total_bytes * 8 / weights : 0; }
};

}  // namespace

std::vector<perfmodel::GemvCall> decode_layer_calls(const model::Config& c, const model::LayerWeights& l,
                                                    int64_t top_k) {
  std::vector<perfmodel::GemvCall> calls;
  auto add = [&](const quant::QMatrix& m, int64_t rows, bool expert = false, int n_mats = 1, int x_rows = 1) {
    if (m.codec) calls.push_back({std::string(m.codec->name), rows, m.cols, n_mats, x_rows, expert});
  };
  for (const quant::QMatrix* m : {&l.wq, &l.wk, &l.wv, &l.wo}) add(*m, m->rows);
  if (!c.is_moe()) {
    for (const quant::QMatrix* m : {&l.ffn_gate, &l.ffn_up, &l.ffn_down}) add(*m, m->rows);
    return calls;
  }
  for (const quant::QMatrix* m : {&l.router, &l.gate_shexp, &l.up_shexp, &l.down_shexp}) add(*m, m->rows);
  const int k = int(top_k);
  if (l.gate_exps.codec == l.up_exps.codec) {
    add(l.gate_exps, c.n_ff_exp, true, 2 * k);
  } else {
    add(l.gate_exps, c.n_ff_exp, true, k);
    add(l.up_exps, c.n_ff_exp, true, k);
  }
  add(l.down_exps, c.n_embd, true, k, k);
  return calls;
}

EngineFacts engine_facts(engine::Engine& engine) {
  const model::Model& m = engine.model();
  const model::Config& c = m.config();
  EngineFacts f;
  CodecMix resident, experts, embedding;
  bool has_output = false;
  for (const gguf::Tensor& t : m.file().tensors()) has_output = has_output || t.name == "output.weight";
  for (const gguf::Tensor& t : m.file().tensors()) {
    if (t.name.find("_exps.") != std::string::npos) experts.add(t);
    else if (t.name.rfind("token_embd.", 0) == 0 && has_output) embedding.add(t);  // one row per token
    else resident.add(t);  // attention, norms, routers, shared experts, LM head (tied: the embedding)
  }
  perfmodel::ModelShape& s = f.shape;
  s.name = fs::path(m.file().path()).filename().string();
  s.n_layer = c.n_layer;
  s.resident_params_per_token = resident.weights;
  s.resident_params_total = resident.weights + embedding.weights;
  f.resident_codec = resident.main_codec();
  f.resident_bits = resident.bits();
  f.top_k = engine.forward().top_k();
  if (!m.weights().layers.empty()) f.decode_calls = decode_layer_calls(c, m.weights().layers[0], f.top_k);
  if (c.is_moe() && experts.weights > 0) {
    s.n_moe_layers = c.n_layer;
    s.n_expert = c.n_expert;
    s.n_expert_used = c.n_expert_used;
    s.expert_params = experts.weights / double(c.n_layer * c.n_expert);
    f.expert_codec = experts.main_codec();
    f.expert_bits = experts.bits();
  }
  if (store::StreamingExperts* st = engine.streaming()) {
    f.streams = true;
    const store::ExpertLayout& layout = st->layout();
    f.cache_slots = size_t(st->counters().cache_budget_bytes / layout.slot_bytes());
    const store::ExpertPlacement& p = layout.at(0, 0);
    double bytes = 0;
    for (int r = 0; r < p.n_reads; ++r) bytes += double(p.reads[size_t(r)].bytes);
    f.read_bytes = p.n_reads > 0 ? bytes / p.n_reads : 0;
    f.read_path = layout.path();
  }
  return f;
}

PointPrediction predict_point(const perfmodel::HardwareProfile& hw, const PointSetup& setup, const EngineFacts& facts,
                              const PredictionInputs& in) {
  using perfmodel::IoMode;
  const bool debug = std::getenv("MOELAB_PREDICT_DEBUG") != nullptr;  // prints the replay and the terms
  const store::IoStrategy io = store::parse_io_strategy(setup.engine.io);
  perfmodel::Scenario sc;
  sc.metric = perfmodel::Metric::decode_tok_s;
  sc.top_k = facts.top_k;
  sc.expert_codec = facts.expert_codec;
  sc.expert_bits = facts.expert_bits > 0 ? facts.expert_bits : 4.5;
  sc.resident_codec = facts.resident_codec;
  sc.resident_bits = facts.resident_bits > 0 ? facts.resident_bits : 4.5;
  // 1 MiB: the chunk direct_mt and uring split each read into (store/io_backend.cpp).
  constexpr double kChunk = 1024.0 * 1024.0;
  const double read = facts.read_bytes > 0 ? facts.read_bytes : 0;
  switch (io.kind) {
    case store::IoKind::resident: sc.io = IoMode::resident; break;
    case store::IoKind::mmap: sc.io = IoMode::mmap; break;  // page faults of the profile's fault size
    case store::IoKind::pread: sc.io = IoMode::pread, sc.io_request_bytes = read; break;
    case store::IoKind::direct: sc.io = IoMode::direct, sc.io_request_bytes = read; break;
    case store::IoKind::direct_mt:
    case store::IoKind::uring:
      sc.io = IoMode::direct;
      sc.io_request_bytes = read > 0 ? std::min(read, kChunk) : kChunk;
      sc.io_queue_depth = io.n;
      break;
  }
  double hit = 1;
  bool prefetches_replayed = false;
  if (facts.streams && facts.shape.is_moe()) {
    // The store's own cache at its slot count, replayed with the recorded
    // routing and prefetches.
    const double expert_bytes = facts.shape.expert_params * sc.expert_bits / 8;
    sc.page_cache = false;
    sc.expert_cache_bytes = double(facts.cache_slots) * expert_bytes;
    if (!in.run_trace || in.run_trace->n_token() < in.decode_tokens || in.decode_tokens <= 0)
      throw Error("prediction: no routing trace of the point's run to simulate its cache with");
    const perfmodel::RoutingTrace& run = *in.run_trace;
    const int history = std::clamp(in.history_runs, 0, 2);  // LRU state is settled after one run
    perfmodel::RoutingTrace seq;
    seq.n_layer = run.n_layer, seq.n_expert = run.n_expert, seq.top_k = run.top_k;
    for (int r = 0; r <= history; ++r) {  // the same run again: routing and prefetches, tokens shifted
      const int64_t shift = int64_t(r) * run.n_token();
      const uint32_t id_shift = uint32_t(seq.prefetch_ids.size());
      seq.ids.insert(seq.ids.end(), run.ids.begin(), run.ids.end());
      for (perfmodel::RoutingTrace::Prefetch p : run.prefetches) {
        p.token += shift, p.offset += id_shift;
        seq.prefetches.push_back(p);
      }
      seq.prefetch_ids.insert(seq.prefetch_ids.end(), run.prefetch_ids.begin(), run.prefetch_ids.end());
    }
    const int64_t measure_from = seq.n_token() - in.decode_tokens;
    const perfmodel::StoreReplay r =
        perfmodel::replay_store(seq, store::parse_cache_policy(setup.engine.cache), facts.cache_slots, measure_from);
    hit = r.hit_rate();
    sc.hit_rate = hit;
    if (debug)
      std::fprintf(stderr, "replay: tokens %lld acq %llu hits %llu misses %llu prefetch %llu slots %zu events %zu\n",
                   (long long)r.measured_tokens, (unsigned long long)r.acquisitions, (unsigned long long)r.hits,
                   (unsigned long long)r.misses, (unsigned long long)r.prefetch_reads, facts.cache_slots,
                   seq.prefetches.size());
    if (!seq.prefetches.empty() && r.acquisitions > 0) {
      prefetches_replayed = true;
      sc.prefetch_reads = double(r.prefetch_reads) / double(r.acquisitions);
    }
    // Buffered io that keeps its pages: an expert read before in the run is
    // served by the page cache, as long as it holds every expert read so far.
    if (io.uses_page_cache() && !setup.engine.drop_pages) {
      const double reads = double(r.misses + r.prefetch_reads);
      const double rereads = double(r.reread_misses + r.reread_prefetches);
      const double capacity = in.page_cache_bytes > 0
                                  ? in.page_cache_bytes
                                  : perfmodel::page_cache_capacity_bytes(
                                        hw.ram_gb.value, facts.shape.resident_params_total * sc.resident_bits / 8);
      const double held = r.distinct_read > 0 ? std::min(1.0, capacity / (double(r.distinct_read) * expert_bytes)) : 1;
      sc.page_cache_read_share = reads > 0 ? rereads / reads * held : 0;
    }
  }
  // Without recorded prefetches, speculation is modelled from its measured
  // recall: it prefetches the predicted experts of layer l + depth while
  // layer l computes; the first `depth` layers are never predicted.
  double acc = 0;
  if (!prefetches_replayed && facts.streams && setup.engine.spec_depth > 0 && in.spec_recall > 0 &&
      facts.shape.n_moe_layers > 0) {
    const double covered = double(std::max<int64_t>(0, facts.shape.n_moe_layers - setup.engine.spec_depth)) /
                           double(facts.shape.n_moe_layers);
    acc = std::clamp(in.spec_recall, 0.0, 1.0) * covered;
    sc.spec_accuracy = acc;
    if (in.spec_precision > 0) sc.spec_wasted_reads = covered * (in.spec_recall / in.spec_precision - in.spec_recall);
  }
  PointPrediction out;
  out.model = perfmodel::predict(hw, facts.shape, sc);
  if (debug)
    std::fprintf(stderr,
                 "predict: %s tok/s %.2f disk MB/tok %.1f compute ms %.2f overhead ms %.2f io ms %.2f exposed ms %.2f "
                 "ssd %.3f GB/s at %.0f KiB\n",
                 setup.engine.io.c_str(), out.model.tok_s, out.model.disk_bytes / 1e6, out.model.compute_s * 1e3,
                 out.model.overhead_s * 1e3, out.model.io_s * 1e3, out.model.exposed_io_s * 1e3,
                 hw.ssd_read_gbs(sc.io_request_bytes, sc.io_queue_depth), sc.io_request_bytes / 1024);
  const double h = out.model.hit_rate;
  // The store counts used prefetches as hits: the replay already does.
  out.store_hit_rate = !facts.streams ? 1.0 : prefetches_replayed ? h : h + (1 - h) * acc;
  return out;
}

double bound_code(const std::string& bound) {
  if (bound == "io") return 1;
  if (bound == "memory") return 2;
  if (bound == "compute") return 3;
  if (bound == "overhead") return 4;
  return std::nan("");
}

std::string bound_name(double code) {
  if (code == 1) return "io";
  if (code == 2) return "memory";
  if (code == 3) return "compute";
  if (code == 4) return "overhead";
  return "-";
}

void set_prediction_metrics(const PointPrediction& p, MetricValues& m) {
  m.set("predicted_tok_s", p.model.tok_s);
  m.set("predicted_hit_rate", p.store_hit_rate);
  m.set("predicted_bound", bound_code(p.model.bound));
  m.set("roofline_tok_s", p.model.roofline_tok_s);
  const double measured = m.get("decode_tok_s");
  if (p.model.roofline_tok_s > 0 && std::isfinite(measured)) m.set("roofline_fraction", measured / p.model.roofline_tok_s);
}

namespace {

// What predict_point reads per request and how deep, for the SSD refresh.
// With speculation the prefetcher's backend reads beside the forward pass's,
// each at the strategy's depth: the disk then sees twice the depth, and that
// shared rate is what bounds a streamed layer (perfmodel::predict), so it is
// the one measured.
void io_shape(const store::IoStrategy& io, const EngineFacts& f, const perfmodel::HardwareProfile& hw, bool prefetcher,
              double& request, double& depth) {
  constexpr double kChunk = 1024.0 * 1024.0;
  request = f.read_bytes > 0 ? f.read_bytes : kChunk;
  depth = 1;
  if (io.kind == store::IoKind::mmap) request = hw.ssd.mmap_fault_kib ? hw.ssd.mmap_fault_kib->value * 1024 : 4096;
  if (io.kind == store::IoKind::direct_mt || io.kind == store::IoKind::uring) {
    request = std::min(request, kChunk);
    depth = std::min(8, io.n);
  }
  if (prefetcher) depth *= 2;
}

}  // namespace

nlohmann::ordered_json refresh_rates(perfmodel::HardwareProfile& hw, const PointSetup& setup, const EngineFacts& facts,
                                     ThreadPool& pool) {
  nlohmann::ordered_json out;
  constexpr size_t kWorkingSet = size_t(128) << 20;  // 4x the 32 MiB LLC here
  const double mem = metrics::read_bandwidth_gbs(kWorkingSet, &pool, 3);
  hw.cpu.memory_read_gbs = {mem, "metrics::read_bandwidth_gbs over 128 MiB, re-measured before the point"};
  out["memory_read_gbs"] = mem;
  if (!facts.decode_calls.empty()) {
    // The kernels at the model's own shapes, dispatched as the forward pass
    // does: what the weights' bytes cost per decode step.
    const perfmodel::DecodeGemvRates r = perfmodel::measure_decode_gemv(facts.decode_calls, kWorkingSet, pool, 3);
    const std::string source =
        "one decode layer's GEMVs at the model's shapes, dispatched as the forward pass does, "
        "over 128 MiB; re-measured before the point";
    auto set = [&](const std::string& codec, double gbs) {
      if (!(gbs > 0)) return;
      hw.cpu.gemv_gbs[codec] = {gbs, source};
      out["gemv_" + codec] = gbs;
    };
    if (r.expert_bytes > 0 && facts.expert_codec != facts.resident_codec) {
      set(facts.resident_codec, r.resident_gbs);
      set(facts.expert_codec, r.expert_gbs);
    } else {  // one codec: the layer's bytes over its time
      const double s = (r.resident_gbs > 0 ? r.resident_bytes / r.resident_gbs : 0) +
                       (r.expert_gbs > 0 ? r.expert_bytes / r.expert_gbs : 0);
      set(facts.resident_codec, s > 0 ? (r.resident_bytes + r.expert_bytes) / s : 0);
    }
  } else {
    for (const std::string& codec : {facts.resident_codec, facts.expert_codec}) {
      if (!quant::find_codec(codec) || out.contains("gemv_" + codec)) continue;
      const double rate = perfmodel::measure_gemv_gbs(codec, kWorkingSet, pool, 3);
      hw.cpu.gemv_gbs[codec] = {rate, "quant::gemv over 128 MiB, re-measured before the point"};
      out["gemv_" + codec] = rate;
    }
  }
  // The fixed cost of one parallel dispatch (wake the workers, wait at the
  // barrier) under the current load: the mean, since a descheduled worker makes
  // the tail what costs time. A MoE layer's decode step dispatches 8 times
  // (q, k, v, attention, o, router, experts' gate+up, experts' down:
  // model/forward.cpp), a dense layer 7; the GEMV calls measured above
  // already include theirs, which leaves attention's.
  if (pool.size() > 1) {
    constexpr int kDispatches = 400;
    std::atomic<int64_t> sink{0};
    const int64_t t0 = metrics::now_ns();
    for (int i = 0; i < kDispatches; ++i)
      pool.parallel_for(pool.size(), 1, [&](int64_t b, int64_t e, int) { sink += e - b; });
    const double us = double(metrics::now_ns() - t0) * 1e-3 / kDispatches;
    const int dispatches = !facts.decode_calls.empty() ? 1 : facts.shape.is_moe() ? 8 : 7;
    hw.cpu.layer_overhead_us = perfmodel::Sourced{
        us * dispatches,
        std::to_string(dispatches) + " x the mean of 400 empty ThreadPool dispatches, re-measured before the point"};
    out["dispatch_us"] = us;
  }
  const store::IoStrategy io = store::parse_io_strategy(setup.engine.io);
  if (facts.streams && !facts.read_path.empty() && io.kind != store::IoKind::resident) {
    double request = 0, depth = 1;
    io_shape(io, facts, hw, setup.engine.spec_depth > 0, request, depth);
    const size_t req = std::max<size_t>(4096, size_t(request) / 4096 * 4096);
    const size_t file_bytes = size_t(fs::file_size(facts.read_path)) / 4096 * 4096;
    if (file_bytes >= 4 * req) {
      // Buffered reads whose pages are dropped (pread, and mmap's faults of
      // read_ahead_kb) are measured as the engine issues them: read-ahead
      // past each request, and whatever the page cache keeps of the file,
      // count. Every other mode with O_DIRECT. One second: shorter probes
      // of the lent box's disk scattered +-25% around its sustained rate.
      const bool buffered_dropped = io.uses_page_cache() && setup.engine.drop_pages;
      const double fresh = perfmodel::measure_direct_reads(facts.read_path, file_bytes, req, int(depth), 1.0,
                                                           !buffered_dropped, buffered_dropped)
                               .gbs;
      const double before = hw.ssd_read_gbs(double(req), depth);
      if (fresh > 0 && before > 0) {
        for (perfmodel::SsdPoint& pt : hw.ssd.read) pt.gbs *= fresh / before;
        out["ssd_request_kib"] = double(req) / 1024;
        out["ssd_queue_depth"] = depth;
        out["ssd_gbs"] = fresh;
        out["ssd_reads"] = buffered_dropped ? "buffered, pages dropped after each read" : "O_DIRECT";
      }
    }
  }
  return out;
}

perfmodel::HardwareProfile average_rates(const perfmodel::HardwareProfile& before,
                                         const perfmodel::HardwareProfile& after) {
  perfmodel::HardwareProfile hw = after;
  const std::string note = ", mean of the measurements before and after the repeat";
  auto mean = [&](perfmodel::Sourced& out, const perfmodel::Sourced& a) {
    out.value = 0.5 * (out.value + a.value);
    if (out.source.find(note) == std::string::npos) out.source += note;
  };
  mean(hw.cpu.memory_read_gbs, before.cpu.memory_read_gbs);
  for (auto& [codec, rate] : hw.cpu.gemv_gbs)
    if (auto it = before.cpu.gemv_gbs.find(codec); it != before.cpu.gemv_gbs.end()) mean(rate, it->second);
  if (hw.cpu.layer_overhead_us && before.cpu.layer_overhead_us) mean(*hw.cpu.layer_overhead_us, *before.cpu.layer_overhead_us);
  if (hw.ssd.read.size() == before.ssd.read.size())
    for (size_t i = 0; i < hw.ssd.read.size(); ++i) hw.ssd.read[i].gbs = 0.5 * (hw.ssd.read[i].gbs + before.ssd.read[i].gbs);
  return hw;
}

perfmodel::HardwareProfile sweep_hardware(const std::string& what, const fs::path& scratch_dir, int threads) {
  if (what != "calibrate") return perfmodel::find_hardware(what);
  perfmodel::CalibrateOptions o;
  o.scratch_dir = scratch_dir;
  o.file_bytes = size_t(512) << 20;
  o.seconds_per_point = 0.2;
  o.request_kib = {4, 64, 256, 1024, 4096};
  o.threads = threads;
  o.id = "sweep-calibration";
  o.note = "Quick calibration at the start of a sweep.";
  o.progress = [](const std::string& line) { std::fprintf(stderr, "calibrate: %s\n", line.c_str()); };
  return perfmodel::calibrate(o);
}

PredictionHooks::PredictionHooks(perfmodel::HardwareProfile& hw, bool refresh, const PointSetup& setup, int point,
                                 const std::vector<int>& repeat_ids, nlohmann::ordered_json& refreshed)
    : hw_(hw), refresh_(refresh), setup_(setup), point_(point), repeat_ids_(repeat_ids), refreshed_(refreshed) {}

void PredictionHooks::engine_created(engine::Engine& engine) {
  if (!facts_) facts_ = engine_facts(engine);
  runs_on_engine_ = 0;
}

void PredictionHooks::before_run(engine::Engine& engine, bool timed) {
  if (!routing_) {  // the first run's routing stands for every run of the point
    recorder_.emplace(engine.model().config(), engine.forward().top_k(),
                      setup_.context_tokens + setup_.prompt_tokens + setup_.decode_tokens);
    recorder_->attach(engine.forward(), engine.streaming());
  }
  if (timed && refresh_ && facts_) {
    remeasure(engine, "before");
    before_ = hw_;
  }
}

void PredictionHooks::after_run(engine::Engine& engine, bool timed) {
  if (recorder_) {
    recorder_->detach(engine.forward(), engine.streaming());
    routing_ = recorder_->trace();
    recorder_.reset();
  }
  if (timed) {
    if (before_) {
      remeasure(engine, "after");
      hw_ = average_rates(*before_, hw_);
      before_.reset();
    }
    repeats_.push_back({hw_, runs_on_engine_});
  }
  ++runs_on_engine_;
}

void PredictionHooks::remeasure(engine::Engine& engine, const char* when) {
  nlohmann::ordered_json r = refresh_rates(hw_, setup_, *facts_, engine.pool());
  r["point"] = point_;
  const size_t i = repeats_.size();
  if (i < repeat_ids_.size()) r["repeat"] = repeat_ids_[i];
  r["when"] = when;
  refreshed_.push_back(std::move(r));
}

PointPrediction PredictionHooks::predict(size_t i, const MetricValues& measured) const {
  PredictionInputs in;
  in.run_trace = routing_ ? &*routing_ : nullptr;
  in.decode_tokens = setup_.decode_tokens;
  in.history_runs = repeats_[i].history_runs;
  const double recall = measured.get("spec_recall"), precision = measured.get("spec_precision");
  in.spec_recall = std::isfinite(recall) ? recall : 0;
  in.spec_precision = std::isfinite(precision) ? precision : 0;
  return predict_point(repeats_[i].hw, setup_, *facts_, in);
}

}  // namespace moelab::experiment
