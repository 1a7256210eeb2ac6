// One sweep point, whichever engine runs it and wherever: moelab in the sweep
// process, moelab in a forked child inside a memory cgroup (mem_cap), or the
// llama.cpp peer in a subprocess (experiment/peer.h). Each gives the same
// outcome: accuracy against the sweep's reference and one timed run per repeat.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "engine/engine.h"
#include "experiment/axes.h"
#include "experiment/measure.h"
#include "experiment/spec.h"

namespace moelab::experiment {

// Hooks a sweep may attach to a point that moelab runs in the sweep process
// (the perf-model predictions record routing and re-measure rates around each
// run through them). Not called for forked (mem_cap) or llama.cpp points.
struct PointHooks {
  virtual ~PointHooks() = default;
  virtual void engine_created(engine::Engine&) {}
  // Around every run on the engine: warmups (timed = false) and timed repeats.
  virtual void before_run(engine::Engine&, bool /*timed*/) {}
  virtual void after_run(engine::Engine&, bool /*timed*/) {}
};

struct PointJob {
  const Spec* spec = nullptr;                    // workload, warmup, cold start
  PointSetup setup;
  engine::EngineConfig engine;                   // with model and n_ctx filled in
  const Reference* reference = nullptr;          // null when accuracy is off
  const std::vector<int32_t>* accuracy_stream = nullptr;
  int repeats = 1;                               // timed runs to make
  PointHooks* hooks = nullptr;                   // optional; in-process moelab points only
};

struct PointOutcome {
  bool has_accuracy = false;
  Accuracy accuracy;
  std::vector<TimedRun> runs;                    // [repeats]
  std::vector<double> baseline_rss_mb;           // [repeats] RSS when the peak was reset
  double engine_s = 0;                           // time inside the engine (accuracy, warmup, runs)
  double mem_cap_mb = 0, cgroup_peak_mb = 0, cgroup_failcnt = 0;  // when capped
  bool capped = false;
};

// Runs the point as set up (engine axis, mem_cap axis). Under a cap, the model
// file's cached pages are dropped first so the point reads, and is charged
// for, them inside its cgroup.
PointOutcome run_point(const PointJob& job);

// moelab in this process: accuracy pass, then warmup and timed runs.
PointOutcome run_moelab_point(const PointJob& job);

// The outcome through a pipe (forked children); NaN travels as null.
std::string point_outcome_json(const PointOutcome& o);
PointOutcome point_outcome_from_json(const std::string& text);

}  // namespace moelab::experiment
