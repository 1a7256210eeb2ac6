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

// Hits / acquisitions over the tokens from `measure_from` on; the tokens
// before only fill the cache. n_slots >= trace.top_k (one layer's experts).
double simulate_expert_cache(const RoutingTrace& trace, store::CachePolicy policy, size_t n_slots,
                             int64_t measure_from);

}  // namespace moelab::perfmodel
