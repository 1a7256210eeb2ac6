// Routing traces (which experts each token used in each MoE layer) and the
// expert-cache simulation that turns a trace and a byte budget into a hit rate.
//
// A trace is an input: recorded from a run (JSON, see load_routing_trace) or
// synthesized. The synthetic generator has two knobs, both global and fitted to
// published statistics (see kDefaultTraceShape):
//   zipf_s   expert popularity within a layer: P(rank r) ~ 1 / r^s, with a
//            random rank order per layer
//   reuse    probability that an expert of the previous token (same layer) is
//            picked again (temporal locality)
#pragma once

#include <cstdint>
#include <filesystem>
#include <vector>

namespace moelab::perfmodel {

struct RoutingTrace {
  int64_t n_layer = 0, n_expert = 0, top_k = 0;
  // [n_token][n_layer][top_k] expert ids
  std::vector<int32_t> ids;
  int64_t n_token() const { return n_layer * top_k == 0 ? 0 : int64_t(ids.size()) / (n_layer * top_k); }
  const int32_t* at(int64_t token, int64_t layer) const { return ids.data() + (token * n_layer + layer) * top_k; }

  // What speculation asked the prefetcher for, in the order it asked: while
  // token `token` was at layer `at_layer` (after its attention), the experts
  // spec_ids[offset, offset + count) of layer `target`. Like the routing, an
  // output of the routers, not a timing. Empty when speculation is off.
  struct Prefetch {
    int64_t token = 0;
    int32_t at_layer = 0, target = 0;
    uint32_t offset = 0, count = 0;
  };
  std::vector<Prefetch> prefetches;
  std::vector<int32_t> prefetch_ids;
};

struct TraceShape {
  double zipf_s = 0;
  double reuse = 0;
};

// Fitted once to two published statistics (tests/perfmodel checks both still hold):
//   consecutive tokens share 35% of their experts (Kandiga, Qwen3.5-35B-A3B,
//     K=8 of 256): the synthetic trace gives 0.356
//   a global LRU holding 17% of Qwen3.5-397B-A17B's experts at K=4 hits 71%
//     (flash-moe's page cache: ~35 GB over 203 GB of experts on the M3 Max):
//     the synthetic trace gives 0.713
inline constexpr TraceShape kDefaultTraceShape{1.05, 0.20};

RoutingTrace synthesize_trace(int64_t n_layer, int64_t n_expert, int64_t top_k, int64_t n_token, TraceShape shape,
                              uint64_t seed);

// JSON: {"n_layer": L, "n_expert": E, "top_k": K, "tokens": [[[ids of layer 0], [layer 1], ...], ...]}.
// Errors name the file and the JSON pointer of the bad entry.
RoutingTrace load_routing_trace(const std::filesystem::path& path);

// Hit rate of one least-recently-used cache of `capacity` experts shared by all
// layers (the OS page cache, or an expert cache sized in experts), measured
// over the tokens after the first `warmup_tokens`.
double lru_hit_rate(const RoutingTrace& trace, int64_t capacity, int64_t warmup_tokens);

// Mean number of distinct experts per layer over windows of `window` tokens
// (the experts a prefill batch of that many tokens reads once).
double mean_distinct_experts(const RoutingTrace& trace, int64_t window);

// Fraction of a token's experts (per layer) that the previous token also used.
double measured_reuse(const RoutingTrace& trace);

}  // namespace moelab::perfmodel
