// Predicted-here metrics of a sweep point: the prediction follows the point's
// own configuration (io, budget, policy, top_k), a sweep given a profile
// records them with the profile in the run's attributes, and a malformed
// profile fails before any work with the file and field named.
#include <H5Cpp.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "../common/sweep_options.h"
#include "core/error.h"
#include "experiment/predict.h"
#include "experiment/prediction_report.h"
#include "experiment/results.h"
#include "experiment/sweep.h"
#include "harness_util.h"
#include "model/preset.h"
#include "perfmodel/cache_sim.h"
#include "perfmodel/shape.h"
#include "quant/codec.h"

namespace moelab::experiment {
namespace {

namespace fs = std::filesystem;

perfmodel::HardwareProfile tiny_hw() {
  return perfmodel::load_hardware_file(test::fixture_dir("perfmodel") / "hardware" / "tiny.json");
}

// Facts of a 4-layer, 16-expert Qwen3-30B-A3B slice in q4_k, streamed with `slots` cache slots.
EngineFacts facts(int64_t top_k, size_t slots) {
  model::Config c = model::find_preset("qwen3-30b-a3b").config;
  c.n_layer = 4, c.n_expert = 16, c.n_vocab = 4096;
  EngineFacts f;
  f.shape = perfmodel::shape_from_config("slice", c, 0, false);
  f.top_k = top_k;
  f.streams = slots > 0;
  f.cache_slots = slots;
  f.read_bytes = f.shape.expert_params * 4.5 / 8 / 3;  // gguf layout: three reads per expert
  return f;
}

perfmodel::RoutingTrace routing(int64_t top_k) {
  return perfmodel::synthesize_trace(4, 16, top_k, 96, perfmodel::kDefaultTraceShape, 5);
}

PointPrediction predict(const std::string& io, size_t slots, int64_t top_k, const std::string& cache = "lru") {
  PointSetup s;
  s.engine.io = io;
  s.engine.cache = cache;
  s.engine.top_k = top_k;
  const perfmodel::RoutingTrace trace = routing(top_k);
  PredictionInputs in;
  in.run_trace = &trace;
  in.decode_tokens = 32;
  in.history_runs = 1;
  return predict_point(tiny_hw(), s, facts(top_k, io == "resident" ? 0 : slots), in);
}

// The compute term is measured on the calls the forward pass makes: q, k, v,
// o, the router, one pass over the K experts' gates and ups, one over their
// downs (one activation row each); per-expert rows, not the 3-D tensor's.
TEST(PredictPoint, DecodeLayerCallsFollowTheForwardPass) {
  model::Config c = model::find_preset("qwen3-30b-a3b").config;
  c.n_layer = 4, c.n_expert = 16;
  const quant::Codec& q4k = quant::codec("q4_k");
  const quant::Codec& q6k = quant::codec("q6_k");
  auto mat = [](const quant::Codec& codec, int64_t rows, int64_t cols) {
    quant::QMatrix m;
    m.codec = &codec, m.rows = rows, m.cols = cols;
    return m;
  };
  model::LayerWeights l;
  l.wq = mat(q4k, c.q_dim(), c.n_embd), l.wk = mat(q4k, c.kv_dim(), c.n_embd), l.wv = mat(q6k, c.kv_dim(), c.n_embd);
  l.wo = mat(q4k, c.n_embd, c.q_dim());
  l.router = mat(quant::codec("f32"), c.n_expert, c.n_embd);
  l.gate_exps = mat(q4k, c.n_expert * c.n_ff_exp, c.n_embd), l.up_exps = l.gate_exps;
  l.down_exps = mat(q6k, c.n_expert * c.n_embd, c.n_ff_exp);

  const std::vector<perfmodel::GemvCall> calls = decode_layer_calls(c, l, 6);
  ASSERT_EQ(calls.size(), 7u);
  EXPECT_EQ(calls[2].codec, "q6_k");
  EXPECT_EQ(calls[2].rows, c.kv_dim());
  EXPECT_EQ(calls[4].codec, "f32");
  EXPECT_FALSE(calls[4].expert);
  const perfmodel::GemvCall& gate_up = calls[5];
  EXPECT_TRUE(gate_up.expert);
  EXPECT_EQ(gate_up.n_mats, 12);
  EXPECT_EQ(gate_up.x_rows, 1);
  EXPECT_EQ(gate_up.rows, c.n_ff_exp);
  const perfmodel::GemvCall& down = calls[6];
  EXPECT_EQ(down.codec, "q6_k");
  EXPECT_EQ(down.n_mats, 6);
  EXPECT_EQ(down.x_rows, 6);
  EXPECT_EQ(down.rows, c.n_embd);
  EXPECT_EQ(down.cols, c.n_ff_exp);

  l.up_exps = mat(q6k, c.n_expert * c.n_ff_exp, c.n_embd);  // gates and ups in two codecs: two passes
  const std::vector<perfmodel::GemvCall> split = decode_layer_calls(c, l, 6);
  ASSERT_EQ(split.size(), 8u);
  EXPECT_EQ(split[5].n_mats, 6);
  EXPECT_EQ(split[6].codec, "q6_k");

  c.n_expert = 0;  // dense: q, k, v, o, gate, up, down
  model::LayerWeights d;
  d.wq = l.wq, d.wk = l.wk, d.wv = l.wv, d.wo = l.wo;
  d.ffn_gate = mat(q4k, 4096, c.n_embd), d.ffn_up = d.ffn_gate, d.ffn_down = mat(q4k, c.n_embd, 4096);
  const std::vector<perfmodel::GemvCall> dense = decode_layer_calls(c, d, 0);
  ASSERT_EQ(dense.size(), 7u);
  EXPECT_TRUE(std::none_of(dense.begin(), dense.end(), [](const perfmodel::GemvCall& g) { return g.expert; }));
}

TEST(PredictPoint, ResidentReadsNothingFromDisk) {
  const PointPrediction r = predict("resident", 0, 8);
  EXPECT_EQ(r.model.disk_bytes, 0);
  EXPECT_EQ(r.model.hit_rate, 1);
  EXPECT_NE(r.model.bound, "io");
  const PointPrediction d = predict("direct", 16, 8);
  EXPECT_GT(d.model.disk_bytes, 0);
  EXPECT_LT(d.model.tok_s, r.model.tok_s);
}

TEST(PredictPoint, BiggerBudgetNeverLowersTheHitRate) {
  double last_hit = -1, last_tok = 0;
  for (size_t slots : {8, 16, 32, 48, 64}) {
    const PointPrediction p = predict("direct", slots, 8);
    EXPECT_GE(p.model.hit_rate, last_hit) << slots;
    EXPECT_GE(p.model.tok_s, last_tok * 0.999) << slots;
    last_hit = p.model.hit_rate, last_tok = p.model.tok_s;
  }
  EXPECT_GT(last_hit, 0.9);  // 64 slots hold every expert: only cold misses remain (none after a run)
  EXPECT_LT(predict("direct", 8, 8).model.hit_rate, 0.6);
}

TEST(PredictPoint, FewerExpertsPerTokenReadFewerBytes) {
  const PointPrediction k4 = predict("resident", 0, 4), k8 = predict("resident", 0, 8);
  EXPECT_LT(k4.model.hit_bytes, k8.model.hit_bytes);
  EXPECT_GT(k4.model.tok_s, k8.model.tok_s);
  const PointPrediction d4 = predict("direct", 24, 4), d8 = predict("direct", 24, 8);
  EXPECT_LT(d4.model.disk_bytes, d8.model.disk_bytes);
}

TEST(PredictPoint, PolicyNoneNeverHitsAndDeeperQueuesReadFaster) {
  EXPECT_EQ(predict("direct", 32, 8, "none").model.hit_rate, 0);
  EXPECT_GT(predict("direct", 32, 8, "lru").model.hit_rate, 0);
  // The tiny profile's SSD curve rises with queue depth.
  EXPECT_GT(predict("uring<8>", 16, 8).model.tok_s, predict("direct", 16, 8).model.tok_s);
}

TEST(PredictPoint, CacheSimulationMatchesTheStoreOnAKnownPattern) {
  // One layer, experts 0..3 cycled with top_k 1: an LRU of 3 slots never hits,
  // 4 slots always hit once warm; policy none frees a slot when its layer is released.
  perfmodel::RoutingTrace t;
  t.n_layer = 1, t.n_expert = 4, t.top_k = 1;
  for (int i = 0; i < 40; ++i) t.ids.push_back(i % 4);
  EXPECT_EQ(perfmodel::simulate_expert_cache(t, store::CachePolicy::lru, 3, 8), 0.0);
  EXPECT_EQ(perfmodel::simulate_expert_cache(t, store::CachePolicy::lru, 4, 8), 1.0);
  EXPECT_EQ(perfmodel::simulate_expert_cache(t, store::CachePolicy::none, 4, 8), 0.0);
  EXPECT_THROW(perfmodel::simulate_expert_cache(t, store::CachePolicy::lru, 0, 0), Error);
}

// Two layers, top_k 1, each token uses expert 0 at both layers.
perfmodel::RoutingTrace two_layer_trace(int tokens) {
  perfmodel::RoutingTrace t;
  t.n_layer = 2, t.n_expert = 4, t.top_k = 1;
  for (int i = 0; i < 2 * tokens; ++i) t.ids.push_back(0);
  return t;
}

// At layer 0 of every token, speculation asks for `expert` of layer 1.
void add_prefetches(perfmodel::RoutingTrace& t, int32_t expert) {
  for (int64_t tok = 0; tok < t.n_token(); ++tok) {
    t.prefetches.push_back({tok, 0, 1, uint32_t(t.prefetch_ids.size()), 1});
    t.prefetch_ids.push_back(expert);
  }
}

TEST(ReplayStore, WrongPrefetchesEvictUsefulExpertsAndAddReads) {
  // Two slots hold both layers' expert: every access hits once warm.
  perfmodel::RoutingTrace t = two_layer_trace(20);
  const perfmodel::StoreReplay clean = perfmodel::replay_store(t, store::CachePolicy::lru, 2, 4);
  EXPECT_EQ(clean.hit_rate(), 1.0);
  EXPECT_EQ(clean.prefetch_reads, 0u);
  // A wrong prediction (expert 3 of layer 1) takes a slot each token.
  add_prefetches(t, 3);
  const perfmodel::StoreReplay wrong = perfmodel::replay_store(t, store::CachePolicy::lru, 2, 4);
  EXPECT_LT(wrong.hit_rate(), clean.hit_rate());
  EXPECT_GT(wrong.prefetch_reads, 0u);
  EXPECT_GT(wrong.misses, clean.misses);
}

TEST(ReplayStore, RightPrefetchesCountAsHits) {
  // Policy none frees every slot at release: without speculation nothing hits.
  perfmodel::RoutingTrace t = two_layer_trace(20);
  EXPECT_EQ(perfmodel::replay_store(t, store::CachePolicy::none, 2, 4).hit_rate(), 0.0);
  add_prefetches(t, 0);  // layer 1's expert, predicted right at layer 0
  const perfmodel::StoreReplay r = perfmodel::replay_store(t, store::CachePolicy::none, 2, 4);
  EXPECT_DOUBLE_EQ(r.hit_rate(), 0.5);
  EXPECT_EQ(r.prefetch_reads, r.hits);  // each hit was read by the prefetcher
  // Every read after the first token re-reads an expert read before.
  EXPECT_EQ(r.reread_misses, r.misses);
  EXPECT_EQ(r.distinct_read, 2u);
}

TEST(PredictPoint, ReplayedWrongPrefetchesCostDiskBytes) {
  PointSetup s;
  s.engine.io = "direct";
  s.engine.spec_depth = 1;
  const perfmodel::RoutingTrace plain = routing(8);
  perfmodel::RoutingTrace spec = plain;
  // Predict, at each layer, the 8 experts the next layer did NOT pick first.
  for (int64_t tok = 0; tok < spec.n_token(); ++tok)
    for (int32_t l = 0; l + 1 < int32_t(spec.n_layer); ++l) {
      spec.prefetches.push_back({tok, l, l + 1, uint32_t(spec.prefetch_ids.size()), 8});
      const int32_t* next = spec.at(tok, l + 1);
      for (int32_t e = 0, n = 0; e < int32_t(spec.n_expert) && n < 8; ++e)
        if (std::find(next, next + 8, e) == next + 8) spec.prefetch_ids.push_back(e), ++n;
    }
  PredictionInputs in;
  in.decode_tokens = 32;
  in.history_runs = 1;
  in.run_trace = &plain;
  const PointPrediction a = predict_point(tiny_hw(), s, facts(8, 40), in);
  in.run_trace = &spec;
  const PointPrediction b = predict_point(tiny_hw(), s, facts(8, 40), in);
  EXPECT_LT(b.store_hit_rate, a.store_hit_rate);
  EXPECT_GT(b.model.disk_bytes, a.model.disk_bytes);
  EXPECT_LT(b.model.tok_s, a.model.tok_s);
}

TEST(PredictPoint, BufferedReReadsCostLessThanFirstReads) {
  PointSetup s;
  s.engine.io = "pread";
  const perfmodel::RoutingTrace trace = routing(8);
  PredictionInputs in;
  in.run_trace = &trace;
  in.decode_tokens = 32;
  in.history_runs = 1;
  s.engine.drop_pages = true;  // every miss reads the disk
  const PointPrediction dropped = predict_point(tiny_hw(), s, facts(8, 40), in);
  s.engine.drop_pages = false;  // misses of experts read before come from the page cache
  const PointPrediction kept = predict_point(tiny_hw(), s, facts(8, 40), in);
  EXPECT_EQ(kept.model.hit_rate, dropped.model.hit_rate);  // the store's own cache is the same
  EXPECT_LT(kept.model.disk_bytes, dropped.model.disk_bytes);
  EXPECT_GT(kept.model.tok_s, dropped.model.tok_s);
  in.page_cache_bytes = 1;  // a page cache that holds nothing: as if dropped
  const PointPrediction tiny_cache = predict_point(tiny_hw(), s, facts(8, 40), in);
  EXPECT_NEAR(tiny_cache.model.tok_s, dropped.model.tok_s, 1e-6 * dropped.model.tok_s);
}

std::string predict_spec(const std::string& name) {
  return R"({"name": ")" + name + R"(", "model": )" + test::tiny_model_json() +
         R"(, "workload": {"prompt_tokens": 8, "decode_tokens": 8, "accuracy_tokens": 0, "seed": 2},
           "fixed": {"threads": 1, "top_k": 4}, "sweep": {"io": ["resident", "direct"], "ram_budget_mb": [1.5, 3]},
           "repeats": 1, "warmup": 1})";
}

SweepOptions options(const fs::path& out, const std::string& hardware) {
  return test::quiet_options(out, /*disk_probe_mb=*/1, /*plots=*/false, hardware);
}

TEST(PredictSweep, RecordsPredictionsAndTheProfile) {
  const fs::path hw = test::fixture_dir("perfmodel") / "hardware" / "tiny.json";
  const Spec spec = load_spec(test::write_spec("predict.json", predict_spec("predict")));
  const fs::path out = test::temp_file("predict.h5");
  ASSERT_EQ(run_sweep(spec, options(out, hw.string())), 0);
  const ResultsTable t = read_points(out);
  ASSERT_EQ(t.n_rows, 4u);
  const auto& io = t.text[size_t(t.column("io"))];
  const auto& budget = t.num[size_t(t.column("ram_budget_mb"))];
  const auto& pred = t.num[size_t(t.column("predicted_tok_s"))];
  const auto& hit = t.num[size_t(t.column("predicted_hit_rate"))];
  const auto& roof = t.num[size_t(t.column("roofline_tok_s"))];
  const auto& frac = t.num[size_t(t.column("roofline_fraction"))];
  const auto& meas = t.num[size_t(t.column("decode_tok_s"))];
  const auto& bound = t.num[size_t(t.column("predicted_bound"))];
  double direct_hit[2] = {-1, -1};
  for (size_t r = 0; r < t.n_rows; ++r) {
    EXPECT_GT(pred[r], 0) << r;
    EXPECT_GE(roof[r], pred[r] * 0.999) << r;  // the roofline bounds the prediction
    EXPECT_NEAR(frac[r], meas[r] / roof[r], 1e-9 * frac[r]) << r;
    EXPECT_NE(bound_name(bound[r]), "-") << r;
    if (io[r] == "resident") EXPECT_EQ(hit[r], 1.0);
    else direct_hit[budget[r] > 2] = hit[r];
  }
  // 1.5 MiB holds about 7 of the 16 experts (q8_0, ~0.2 MB each), 3 MiB about 14: the bigger budget hits more.
  EXPECT_GE(direct_hit[0], 0);
  EXPECT_LT(direct_hit[0], 1);
  EXPECT_GE(direct_hit[1], direct_hit[0]);
  // The profile used is in the run's attributes.
  H5::H5File f(out.string(), H5F_ACC_RDONLY);
  EXPECT_TRUE(f.openGroup("/runs/0").attrExists("hardware_profile"));
  const PredictionReport rep = prediction_report(out);
  EXPECT_EQ(rep.points, 4);
  EXPECT_NE(rep.markdown.find("test profile"), std::string::npos) << rep.markdown;
}

TEST(PredictSweep, MalformedHardwareFileFailsBeforeAnyWorkNamingFileAndField) {
  const fs::path bad = test::fixture_dir("perfmodel") / "bad_hardware" / "ssd_gbs_string.json";
  const Spec spec = load_spec(test::write_spec("predict-bad.json", predict_spec("predict_bad")));
  const fs::path out = test::temp_file("predict-bad.h5");
  fs::remove(out);
  std::string err;
  try {
    run_sweep(spec, options(out, bad.string()));
  } catch (const Error& e) {
    err = e.what();
  }
  EXPECT_NE(err.find(bad.string()), std::string::npos) << err;
  EXPECT_NE(err.find("/ssd/read/0/gbs"), std::string::npos) << err;
  EXPECT_FALSE(fs::exists(out));
}

TEST(PredictSweep, ReportRefusesResultsWithoutPredictions) {
  const Spec spec = load_spec(test::write_spec("predict-none.json", predict_spec("predict_none")));
  const fs::path out = test::temp_file("predict-none.h5");
  ASSERT_EQ(run_sweep(spec, options(out, "")), 0);
  try {
    prediction_report(out);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--hardware"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace moelab::experiment
