// Replays a routing trace through the engine's own expert cache
// (store::ExpertCache: the same slots, eviction policies and pinning as
// StreamingExperts::acquire/release, without the bytes), so a sweep point's
// hit rate is predicted from its budget and policy rather than measured.
#pragma once

#include <cstddef>
#include <cstdint>

#include "perfmodel/routing.h"
#include "store/expert_cache.h"

namespace moelab::perfmodel {

// What the store does over the measured tokens (from `measure_from` on; the
// tokens before only fill the cache), counted as StreamingExperts counts it.
struct StoreReplay {
  uint64_t acquisitions = 0;  // experts the forward pass asked for
  uint64_t hits = 0;          // found in the cache (prefetched ones included)
  uint64_t misses = 0;        // read on the forward pass's critical path
  uint64_t prefetch_reads = 0;  // read by the prefetcher (useful or not)
  // Misses and prefetch reads of experts read before since the replay began
  // (the page cache may still hold them: buffered io without dropped pages).
  uint64_t reread_misses = 0, reread_prefetches = 0;
  uint64_t distinct_read = 0;  // experts read at least once, all tokens
  int64_t measured_tokens = 0;
  double hit_rate() const { return acquisitions ? double(hits) / double(acquisitions) : 0.0; }
};

// Replays the routing and, when the trace has them, the speculative
// prefetches (each predicted expert not cached is read into a slot the
// prefetcher may take, as StreamingExperts::prefetch_loop does, before the
// forward pass acquires the layer it runs at). n_slots >= trace.top_k.
StoreReplay replay_store(const RoutingTrace& trace, store::CachePolicy policy, size_t n_slots, int64_t measure_from);

// Hits / acquisitions of replay_store.
double simulate_expert_cache(const RoutingTrace& trace, store::CachePolicy policy, size_t n_slots,
                             int64_t measure_from);

}  // namespace moelab::perfmodel
