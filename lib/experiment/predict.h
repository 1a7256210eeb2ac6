// Predicted-here next to measured-here: the perf model (lib/perfmodel) run for
// each sweep point with the point's exact configuration, on a hardware profile
// measured in the same run (or given), recorded as the metrics predicted_tok_s,
// predicted_hit_rate, predicted_bound, roofline_tok_s and roofline_fraction.
//
// Inputs and where they come from (none is a timing of the point itself):
//   model shape, codecs    the GGUF the point's engine loaded (tensor by tensor)
//   top_k, io, threads     the point's axes; reads per expert and their size from
//                          the store's layout (gguf: 3 reads, packed: 1 blob;
//                          direct_mt / uring split them into 1 MiB chunks)
//   hit rate               the routing of the point's first run, recorded from
//                          its router, replayed through the store's own cache
//                          class (store::ExpertCache) at the point's slot count
//                          and eviction policy, after the runs that precede the
//                          repeat on the same engine (warmup, earlier repeats)
//   speculation            the prefetcher's requests, recorded with the routing
//                          (at which token and layer it asked for which experts)
//                          and replayed through the same cache: wrong prefetches
//                          evict and cost disk reads; without a record, the
//                          measured spec_recall / spec_precision
//   rates                  the hardware profile (moelab calibrate), re-measured
//                          around each repeat on the point's own file
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "engine/engine.h"
#include "experiment/axes.h"
#include "experiment/metric_table.h"
#include "experiment/point.h"
#include "perfmodel/calibrate.h"
#include "perfmodel/hardware.h"
#include "perfmodel/model.h"
#include "perfmodel/routing.h"
#include "store/streaming_experts.h"

namespace moelab::experiment {

// Records the router's choices (every token of every eval) while attached.
class RoutingRecorder {
 public:
  // Reserves room for `n_tokens` tokens, so recording does not allocate.
  RoutingRecorder(const model::Config& config, int64_t top_k, int64_t n_tokens);
  // Also records the store's speculative predictions when `store` is given.
  void attach(model::Forward& forward, store::StreamingExperts* store = nullptr);
  void detach(model::Forward& forward, store::StreamingExperts* store = nullptr);
  // [tokens][layers][top_k] of what was recorded; throws if layers disagree.
  perfmodel::RoutingTrace trace() const;

 private:
  int64_t n_layer_, n_expert_, top_k_;
  std::vector<std::vector<int32_t>> ids_;  // [n_layer][tokens * top_k]
  std::vector<perfmodel::RoutingTrace::Prefetch> prefetches_;
  std::vector<int32_t> prefetch_ids_;
  model::ForwardObserver observer_;
};

// What the perf model needs of the engine a point runs on.
struct EngineFacts {
  perfmodel::ModelShape shape;
  std::string expert_codec = "q4_k", resident_codec = "q4_k";  // the codec holding most of the bytes
  double expert_bits = 4.5, resident_bits = 4.5;                // bytes x 8 / weights
  int64_t top_k = 0;
  bool streams = false;       // experts come from the store
  size_t cache_slots = 0;     // the store's cache, in experts
  double read_bytes = 0;      // one read of one expert part (aligned), as the layout issues it
  std::filesystem::path read_path;  // the file expert reads address (GGUF or .moepack)
  std::vector<perfmodel::GemvCall> decode_calls;  // one decode layer's GEMVs, as the forward pass dispatches them
};
EngineFacts engine_facts(engine::Engine& engine);

// One decode layer's GEMV calls at the model's shapes and codecs, in the
// groups model/forward.cpp dispatches: q, k, v, o, the router, the shared
// expert, the routed experts' gates and ups in one pass, their downs in one.
std::vector<perfmodel::GemvCall> decode_layer_calls(const model::Config& c, const model::LayerWeights& l,
                                                    int64_t top_k);

struct PredictionInputs {
  // One run's routing (context, prompt, decode tokens) and, with speculation,
  // its recorded prefetches.
  const perfmodel::RoutingTrace* run_trace = nullptr;
  int64_t decode_tokens = 0;     // the last tokens of run_trace that decode
  int history_runs = 0;          // runs before this one on the same engine
  double spec_recall = 0, spec_precision = 0;  // measured; 0 when speculation is off (used without recorded prefetches)
  // Bytes the OS page cache can hold for buffered io that keeps its pages
  // (drop_pages false): the point's mem_cap, else the RAM free at the start.
  double page_cache_bytes = 0;
};

struct PointPrediction {
  perfmodel::Prediction model;
  double store_hit_rate = 0;     // what the store counts: cache hits plus used prefetches
};

// Throws moelab::Error when the configuration cannot be predicted (e.g. a
// cache smaller than one layer's experts). With MOELAB_PREDICT_DEBUG set, each
// prediction prints its replay (acquisitions, hits, misses, prefetch reads)
// and its terms (disk MB per token, compute, exposed I/O, SSD rate) to stderr.
PointPrediction predict_point(const perfmodel::HardwareProfile& hw, const PointSetup& setup, const EngineFacts& facts,
                              const PredictionInputs& in);

// predicted_bound as a number (HDF5 metric columns are numeric): 1 io, 2 memory, 3 compute, 4 overhead.
double bound_code(const std::string& bound);
std::string bound_name(double code);

// Sets predicted_tok_s, predicted_hit_rate, predicted_bound, roofline_tok_s and
// roofline_fraction (measured decode_tok_s / roofline_tok_s) on `m`.
void set_prediction_metrics(const PointPrediction& p, MetricValues& m);

// Re-measures, just before a point runs, the rates its prediction uses (the
// machine is shared, and rates move within minutes): memory read, the GEMV
// rates of one decode layer's calls at the model's shapes (facts.decode_calls)
// on the engine's own thread pool, one pool dispatch, and for streamed io one
// second of reads of the point's own expert file at its request size and the
// depth the disk sees, which rescales the profile's SSD curve. Returns what it
// measured, as JSON, for the record.
nlohmann::ordered_json refresh_rates(perfmodel::HardwareProfile& hw, const PointSetup& setup, const EngineFacts& facts,
                                     ThreadPool& pool);

// The rates of two refreshes of one profile averaged (memory read, GEMV per
// codec, layer overhead, SSD points): a repeat is predicted from the rates
// measured just before and just after it.
perfmodel::HardwareProfile average_rates(const perfmodel::HardwareProfile& before,
                                         const perfmodel::HardwareProfile& after);

// The profile a sweep predicts with: `what` is a profile file or id, or
// "calibrate" for a quick calibration now (scratch file in `scratch_dir`,
// `threads` compute threads). Errors name the file and field.
perfmodel::HardwareProfile sweep_hardware(const std::string& what, const std::filesystem::path& scratch_dir,
                                          int threads);

// The hooks a sweep attaches to an in-process moelab point to predict each
// of its timed repeats: the engine's facts when it is built, the routing of
// its first run, and (refresh) the rates re-measured just before and after
// each timed repeat, averaged, appended to `refreshed` for the record.
class PredictionHooks : public PointHooks {
 public:
  PredictionHooks(perfmodel::HardwareProfile& hw, bool refresh, const PointSetup& setup, int point,
                  const std::vector<int>& repeat_ids, nlohmann::ordered_json& refreshed);
  void engine_created(engine::Engine& engine) override;
  void before_run(engine::Engine& engine, bool timed) override;
  void after_run(engine::Engine& engine, bool timed) override;

  // Whether timed repeat `i` (0-based, in run order) can be predicted.
  bool predicts(size_t i) const { return facts_ && i < repeats_.size(); }
  // Repeat i's prediction; `measured` gives its spec_recall / spec_precision.
  PointPrediction predict(size_t i, const MetricValues& measured) const;

 private:
  struct Repeat {
    perfmodel::HardwareProfile hw;  // the rates it is predicted with
    int history_runs = 0;           // runs before it on the same engine
  };
  void remeasure(engine::Engine& engine, const char* when);

  perfmodel::HardwareProfile& hw_;
  bool refresh_;
  PointSetup setup_;
  int point_;
  std::vector<int> repeat_ids_;
  nlohmann::ordered_json& refreshed_;
  std::optional<EngineFacts> facts_;
  std::optional<RoutingRecorder> recorder_;
  std::optional<perfmodel::RoutingTrace> routing_;
  std::optional<perfmodel::HardwareProfile> before_;
  int runs_on_engine_ = 0;
  std::vector<Repeat> repeats_;
};

}  // namespace moelab::experiment
