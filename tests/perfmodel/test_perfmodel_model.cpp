// Properties of the analytic model, the SSD curve, the routing traces and the
// cache simulation. Numbers are checked as directions and bounds, never as
// timings of this machine.
#include <gtest/gtest.h>

#include <cmath>

#include "../common/paths.h"
#include "core/error.h"
#include "model/preset.h"
#include "perfmodel/hardware.h"
#include "perfmodel/model.h"
#include "perfmodel/reproduce.h"
#include "perfmodel/routing.h"

namespace moelab::perfmodel {
namespace {

HardwareProfile tiny() { return load_hardware_file(test::fixture_dir("perfmodel") / "hardware" / "tiny.json"); }

ModelShape qwen3_30b() {
  const model::Preset p = model::find_preset("qwen3-30b-a3b");
  return shape_from_config(p.name, p.config, 0, p.tied_embeddings);
}

Scenario pread_scenario() {
  Scenario sc;
  sc.io = IoMode::pread;
  sc.page_cache = true;
  sc.io_queue_depth = 4;
  return sc;
}

TEST(PerfmodelShape, PresetCountsMatchPublishedParameters) {
  const ModelShape s = qwen3_30b();
  // datasets/models/README.md: 30.532B total, 3.353B active.
  EXPECT_NEAR(s.total_params() / 1e9, 30.53, 0.05);
  // The README's "active" includes the embedding table; a token reads one row of it.
  const double embedding = s.resident_params_total - s.resident_params_per_token;
  EXPECT_NEAR((s.active_params(8) + embedding) / 1e9, 3.35, 0.05);
  EXPECT_EQ(s.n_moe_layers, 48);
}

TEST(PerfmodelSsd, SparseCurveRisesWithSizeAndDepthUpToPeak) {
  const HardwareProfile hw = tiny();
  double last = 0;
  for (double kib : {4.0, 64.0, 1024.0, 16384.0}) {
    const double g = hw.ssd_read_gbs(kib * 1024, 1);
    EXPECT_GT(g, last);
    last = g;
  }
  EXPECT_LT(hw.ssd_read_gbs(4096, 1), hw.ssd_read_gbs(4096, 8));
  EXPECT_LE(hw.ssd_read_gbs(64 << 20, 64), 3.0 + 1e-9);
  // QD1 4 KiB is latency-bound: 4096 B / (80 us + 4096 B / 3 GB/s).
  EXPECT_NEAR(hw.ssd_read_gbs(4096, 1), 4096.0 / (80e-6 + 4096.0 / 3e9) / 1e9, 1e-6);
}

TEST(PerfmodelSsd, GridCurveInterpolatesBetweenMeasuredPoints) {
  HardwareProfile hw = tiny();
  hw.ssd.read.clear();
  for (double kib : {4.0, 1024.0})
    for (double qd : {1.0, 8.0}) hw.ssd.read.push_back({kib, qd, kib == 4 ? 0.05 * qd : 1.0 * qd, "test"});
  EXPECT_NEAR(hw.ssd_read_gbs(4096, 1), 0.05, 1e-9);
  EXPECT_NEAR(hw.ssd_read_gbs(1024 * 1024, 8), 8.0, 1e-9);
  const double mid = hw.ssd_read_gbs(64 * 1024, 1);
  EXPECT_GT(mid, 0.05);
  EXPECT_LT(mid, 1.0);
  EXPECT_NEAR(hw.ssd_read_gbs(1 << 30, 100), 8.0, 1e-9);  // clamped beyond the grid
}

TEST(PerfmodelTrace, SyntheticTraceKeepsItsFittedStatistics) {
  // The two published statistics kDefaultTraceShape was fitted to.
  const RoutingTrace t35 = synthesize_trace(40, 256, 8, 300, kDefaultTraceShape, 1);
  EXPECT_NEAR(measured_reuse(t35), 0.35, 0.03);
  const RoutingTrace t397 = synthesize_trace(60, 512, 4, 1000, kDefaultTraceShape, 1);
  const int64_t cap = int64_t(35e9 / (3.0 * 4096 * 1024 * 4.5 / 8));
  EXPECT_NEAR(lru_hit_rate(t397, cap, 300), 0.71, 0.04);
}

TEST(PerfmodelTrace, HitRateRisesWithCapacityAndEndsAtOne) {
  const RoutingTrace t = synthesize_trace(8, 64, 4, 600, kDefaultTraceShape, 2);
  double last = -1;
  for (int64_t cap : {0, 16, 64, 128, 256, 511}) {
    const double h = lru_hit_rate(t, cap, 100);
    EXPECT_GE(h, last) << cap;
    last = h;
  }
  EXPECT_DOUBLE_EQ(lru_hit_rate(t, 0, 100), 0.0);
  EXPECT_GT(lru_hit_rate(t, 8 * 64, 200), 0.99);  // everything fits: only first uses after warm-up miss
}

TEST(PerfmodelTrace, UniformTraceWithoutReuseHitsAboutCapacityShare) {
  // No skew, no reuse: LRU holding a quarter of the experts hits ~25%.
  const RoutingTrace t = synthesize_trace(4, 256, 8, 2000, TraceShape{0, 0}, 3);
  EXPECT_NEAR(lru_hit_rate(t, 256, 200), 0.25, 0.03);
  EXPECT_NEAR(measured_reuse(t), 8.0 / 256, 0.01);
  EXPECT_NEAR(mean_distinct_experts(t, 1), 8.0, 1e-9);
  EXPECT_GT(mean_distinct_experts(t, 64), 8.0 * 20);
}

TEST(PerfmodelModel, MonotonicInSsdBandwidth) {
  HardwareProfile hw = tiny();
  const ModelShape s = qwen3_30b();
  Scenario sc = pread_scenario();
  sc.expert_cache_bytes = 2e9;  // own cache: 2 GB of the 17 GB of experts
  double last = 0;
  for (double gbs : {0.5, 1.0, 3.0, 7.0, 14.0}) {
    hw.ssd.read[0].gbs = gbs;
    const Prediction p = predict(hw, s, sc);
    EXPECT_GT(p.tok_s, last) << gbs;
    EXPECT_LE(p.tok_s, p.roofline_tok_s * (1 + 1e-9));
    last = p.tok_s;
  }
}

TEST(PerfmodelModel, BoundSwitchesFromIoToMemoryAsTheCacheGrows) {
  const HardwareProfile hw = tiny();
  const ModelShape s = qwen3_30b();
  Scenario sc = pread_scenario();
  sc.page_cache = false;
  sc.io = IoMode::direct;
  sc.expert_cache_bytes = 0;
  const Prediction cold = predict(hw, s, sc);
  EXPECT_EQ(cold.bound, "io");
  EXPECT_DOUBLE_EQ(cold.hit_rate, 0.0);
  sc.expert_cache_bytes = 40e9;  // more than all experts
  const Prediction warm = predict(hw, s, sc);
  EXPECT_DOUBLE_EQ(warm.hit_rate, 1.0);
  EXPECT_EQ(warm.disk_bytes, 0.0);
  EXPECT_NE(warm.bound, "io");
  EXPECT_GT(warm.tok_s, cold.tok_s * 3);
  // Hit rate rises with the budget in between.
  double last = -1;
  for (double gb : {1.0, 4.0, 8.0, 12.0}) {
    sc.expert_cache_bytes = gb * 1e9;
    const double h = predict(hw, s, sc).hit_rate;
    EXPECT_GT(h, last) << gb;
    last = h;
  }
}

TEST(PerfmodelModel, ComputeBoundWhenTheKernelIsSlowerThanMemory) {
  const HardwareProfile hw = tiny();  // q4_k gemv 30 GB/s < memory 50 GB/s; q8_0 80 > 50
  const ModelShape s = qwen3_30b();
  Scenario sc;
  sc.io = IoMode::resident;
  EXPECT_EQ(predict(hw, s, sc).bound, "compute");
  sc.expert_codec = sc.resident_codec = "q8_0";
  sc.expert_bits = sc.resident_bits = 8.5;
  const Prediction p = predict(hw, s, sc);
  EXPECT_EQ(p.bound, "memory");
  EXPECT_NEAR(p.tok_s, p.roofline_tok_s, 1e-9 * p.tok_s);  // memory-bound resident run sits on the roofline
}

TEST(PerfmodelModel, FewerExpertsAndFewerBitsReadFewerBytes) {
  const HardwareProfile hw = tiny();
  const ModelShape s = qwen3_30b();
  Scenario sc = pread_scenario();
  const Prediction k8 = predict(hw, s, sc);
  sc.top_k = 4;
  const Prediction k4 = predict(hw, s, sc);
  EXPECT_LT(k4.hit_bytes + k4.disk_bytes, k8.hit_bytes + k8.disk_bytes);
  EXPECT_GT(k4.tok_s, k8.tok_s);
  sc.expert_bits = 3.5;
  const Prediction b3 = predict(hw, s, sc);
  EXPECT_LT(b3.hit_bytes + b3.disk_bytes, k4.hit_bytes + k4.disk_bytes);
}

TEST(PerfmodelModel, SpeculationHidesIoOnlyWhereHardwareOverlaps) {
  HardwareProfile hw = tiny();
  const ModelShape s = qwen3_30b();
  Scenario sc = pread_scenario();
  sc.io = IoMode::direct;
  sc.page_cache = false;
  sc.expert_cache_bytes = 4e9;
  const Prediction base = predict(hw, s, sc);
  sc.spec_accuracy = 0.8;
  const Prediction spec = predict(hw, s, sc);
  EXPECT_LT(spec.exposed_io_s, base.exposed_io_s);
  EXPECT_GT(spec.tok_s, base.tok_s);
  EXPECT_DOUBLE_EQ(spec.io_s, base.io_s);  // same reads, only hidden
  hw.io_overlaps_compute = Sourced{0, "test: unified memory"};
  const Prediction serial = predict(hw, s, sc);
  EXPECT_DOUBLE_EQ(serial.exposed_io_s, serial.io_s);
  EXPECT_NEAR(serial.tok_s, base.tok_s, 1e-9 * base.tok_s);
}

TEST(PerfmodelModel, ReplayedPrefetchesHideBehindOneLayerAndMissesDoNot) {
  const HardwareProfile hw = tiny();
  const ModelShape s = qwen3_30b();
  Scenario sc = pread_scenario();
  sc.io = IoMode::direct;
  sc.page_cache = false;
  sc.expert_cache_bytes = 4e9;
  sc.hit_rate = 0.9;
  sc.prefetch_reads = 0;
  const Prediction none = predict(hw, s, sc);
  // A trickle of prefetches fits behind a layer's compute: same time, more bytes.
  sc.prefetch_reads = 1e-4;
  const Prediction trickle = predict(hw, s, sc);
  EXPECT_GT(trickle.disk_bytes, none.disk_bytes);
  EXPECT_NEAR(trickle.tok_s, none.tok_s, 1e-9 * none.tok_s);
  // Reading every expert again in the background outruns one layer's compute.
  sc.prefetch_reads = 1;
  const Prediction flood = predict(hw, s, sc);
  EXPECT_LT(flood.tok_s, none.tok_s);
  EXPECT_GT(flood.exposed_io_s, none.exposed_io_s);
  // Misses are on the critical path: a lower hit rate costs their full read time.
  sc.prefetch_reads = 0;
  sc.hit_rate = 0.5;
  const Prediction missy = predict(hw, s, sc);
  EXPECT_NEAR(missy.exposed_io_s, missy.io_s, 1e-12);
  EXPECT_GT(missy.exposed_io_s, none.exposed_io_s);
}

TEST(PerfmodelModel, PageCacheShrinksAsTheProcessGrows) {
  const HardwareProfile hw = tiny();  // 16 GB RAM
  const ModelShape s = qwen3_30b();
  Scenario sc = pread_scenario();
  sc.process_resident_bytes = 2e9;
  const Prediction small = predict(hw, s, sc);
  sc.process_resident_bytes = 10e9;
  const Prediction big = predict(hw, s, sc);
  EXPECT_NEAR(small.cache_experts * s.expert_params * 4.5 / 8, kPageCacheShare * 14e9, 3e6);
  EXPECT_LT(big.hit_rate, small.hit_rate);
  EXPECT_LT(big.tok_s, small.tok_s);
}

TEST(PerfmodelModel, LayerOverheadAddsPerLayerTime) {
  const HardwareProfile hw = tiny();
  const ModelShape s = qwen3_30b();
  Scenario sc;
  sc.io = IoMode::resident;
  const Prediction base = predict(hw, s, sc);
  sc.engine_layer_overhead_us = 2000;
  const Prediction slow = predict(hw, s, sc);
  EXPECT_NEAR(slow.total_s - base.total_s, 48 * 2e-3, 1e-12);
  EXPECT_EQ(slow.bound, "overhead");
}

TEST(PerfmodelModel, PrefillReadsEachDistinctExpertOncePerBatch) {
  const HardwareProfile hw = tiny();
  const ModelShape s = qwen3_30b();
  Scenario sc;
  sc.io = IoMode::resident;
  sc.metric = Metric::prefill_tok_s;
  sc.prompt_tokens = 256;
  const Prediction p = predict(hw, s, sc);
  const double all_experts = double(s.n_moe_layers * s.n_expert) * s.expert_params * 4.5 / 8;
  EXPECT_LT(p.hit_bytes, all_experts);
  EXPECT_GT(p.hit_bytes, 0.5 * all_experts);  // 256 tokens x 8 of 128 touch most experts
  const Prediction decode = predict(hw, s, Scenario{});
  EXPECT_GT(p.tok_s, decode.tok_s);  // batching amortises the weight reads
}

TEST(PerfmodelModel, MmapFaultsAreSlowerThanExpertSizedReads) {
  const HardwareProfile hw = tiny();
  const ModelShape s = qwen3_30b();
  Scenario sc = pread_scenario();
  sc.expert_cache_bytes = 1e9;
  const Prediction pread = predict(hw, s, sc);
  sc.io = IoMode::mmap;
  const Prediction mmap = predict(hw, s, sc);
  EXPECT_GT(mmap.io_s, pread.io_s);
}

TEST(PerfmodelModel, RecordedTraceDrivesTheHitRateAndMustMatchTheShape) {
  const HardwareProfile hw = tiny();
  const RoutingTrace trace = load_routing_trace(test::fixture_dir("perfmodel") / "trace_good.json");
  ModelShape s;
  s.name = "toy";
  s.n_layer = s.n_moe_layers = 2;
  s.n_expert = 4;
  s.n_expert_used = 2;
  s.expert_params = 1e6;
  s.resident_params_per_token = s.resident_params_total = 1e6;
  Scenario sc;
  sc.io = IoMode::direct;
  sc.page_cache = false;
  sc.expert_cache_bytes = 3 * 1e6 * 4.5 / 8;  // three experts
  sc.trace = &trace;
  const Prediction p = predict(hw, s, sc);
  EXPECT_EQ(p.cache_experts, 3);
  // The model's warm-up is clamped to half the trace (1 of 3 tokens here).
  EXPECT_DOUBLE_EQ(p.hit_rate, lru_hit_rate(trace, 3, 1));
  s.n_expert = 8;
  EXPECT_THROW(predict(hw, s, sc), Error);
}

TEST(PerfmodelReproduce, FixtureFileGivesOnePredictionPerRowAndAShare) {
  const auto dir = test::fixture_dir("perfmodel");
  const PublishedFile f = load_published_file(dir / "good_published.json", dir / "hardware");
  const auto rows = reproduce(f, dir / "hardware");
  ASSERT_EQ(rows.size(), 3u);
  for (const auto& r : rows) {
    EXPECT_GT(r.prediction.tok_s, 0) << r.row.id;
    EXPECT_NEAR(r.ratio, r.prediction.tok_s / r.row.value, 1e-12);
    EXPECT_EQ(r.within, std::fabs(r.ratio - 1) <= 0.25);
  }
  const ReproduceSummary sum = summarize(rows);
  EXPECT_EQ(sum.scored, 2);  // the estimate is not scored
  const std::string md = markdown_table(f, rows);
  EXPECT_NE(md.find("| moe-pread |"), std::string::npos);
  EXPECT_NE(md.find("measured rows within +-25%"), std::string::npos);
}

}  // namespace
}  // namespace moelab::perfmodel
