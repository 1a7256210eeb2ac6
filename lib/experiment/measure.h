// What one point measures on an engine: the timed workload (optional context
// fill, prefill, greedy decode) and the teacher-forced accuracy pass against
// a reference computed once per model.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "engine/engine.h"
#include "experiment/metric_table.h"
#include "experiment/spec.h"

namespace moelab::experiment {

// The token stream of a workload: the prompt's tokens repeated to `n`, or
// seeded random ids when the spec gives no prompt.
std::vector<int32_t> workload_tokens(const Workload& w, const model::Model& m, int64_t n);

struct TimedRun {
  MetricValues metrics;                  // throughput, latency, RSS, store counters
  std::vector<double> token_latency_ms;  // [decode_tokens]
  std::vector<double> spec_precision, spec_recall;  // [spec_depth]
  double engine_s = 0;                   // wall time inside the engine (for the overhead figure)
};

// Runs context fill (untimed), prefill and decode on a reset KV cache.
// `stream` holds at least context_tokens + prompt_tokens ids.
TimedRun run_timed(engine::Engine& engine, std::span<const int32_t> stream, int64_t context_tokens,
                   int64_t prompt_tokens, int64_t decode_tokens);

// Teacher-forced outputs of the reference configuration.
struct Reference {
  int64_t n_tokens = 0, n_vocab = 0, n_embd = 0, n_layer = 0;
  std::vector<float> logits;  // [n_tokens, n_vocab]
  std::vector<float> hidden;  // [n_layer, n_tokens, n_embd] residual stream after each layer
};
Reference compute_reference(engine::Engine& engine, std::span<const int32_t> tokens);

struct Accuracy {
  double cosine_logits = 0, top1_agree = 0, kl_div = 0;
  std::vector<double> hidden_cosine;  // [n_layer] mean over positions
};
Accuracy measure_accuracy(engine::Engine& engine, std::span<const int32_t> tokens, const Reference& ref);
// The logits part of measure_accuracy for logits computed elsewhere (a peer
// engine): [ref.n_tokens, ref.n_vocab]; hidden_cosine stays empty.
Accuracy compare_logits(std::span<const float> logits, const Reference& ref);

// Nearest-rank percentile (q in 0..1) of `v`; NaN when empty.
double nearest_rank_percentile(std::vector<double> v, double q);

}  // namespace moelab::experiment
