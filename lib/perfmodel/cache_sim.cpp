#include "perfmodel/cache_sim.h"

#include <string>
#include <vector>

#include "core/error.h"
#include "store/io_backend.h"

namespace moelab::perfmodel {

StoreReplay replay_store(const RoutingTrace& trace, store::CachePolicy policy, size_t n_slots, int64_t measure_from) {
  using State = store::ExpertCache::State;
  if (n_slots < size_t(trace.top_k))
    throw Error("cache simulation: " + std::to_string(n_slots) + " slots cannot hold top_k = " +
                std::to_string(trace.top_k) + " experts");
  for (const RoutingTrace::Prefetch& p : trace.prefetches)
    if (p.target < 0 || p.target >= trace.n_layer || size_t(p.offset) + p.count > trace.prefetch_ids.size())
      throw Error("cache simulation: a recorded prefetch is out of range");
  for (const int32_t e : trace.prefetch_ids)
    if (e < 0 || e >= trace.n_expert) throw Error("cache simulation: a recorded prefetch is out of range");
  // The smallest aligned slot: the simulation needs the bookkeeping, not the bytes.
  store::ExpertCache cache(policy, trace.n_layer, trace.n_expert, store::kIoAlign, n_slots);
  std::vector<uint8_t> seen(size_t(trace.n_layer * trace.n_expert), 0);
  std::vector<int> pinned;
  pinned.reserve(size_t(trace.top_k));
  StoreReplay r;
  auto first_read = [&](int layer, int32_t e) {  // whether (layer, e) was never read before
    uint8_t& s = seen[size_t(layer) * size_t(trace.n_expert) + size_t(e)];
    const bool first = s == 0;
    s = 1;
    r.distinct_read += first;
    return first;
  };
  // Speculation at layer l: the prefetcher fills slots it may take, never
  // evicting pinned slots or other unused predictions (ExpertCache::victim
  // with spare_prefetched). Asked after attention, its thread takes the cache
  // after the forward pass's acquire of layer l, which follows at once while
  // the prefetcher wakes or still reads the previous layer's experts; a
  // pre-attention prediction of layer l itself comes before that acquire.
  // Recorded in order: (token, at_layer) never decreases.
  size_t cursor = 0;
  auto prefetch = [&](int64_t t, int64_t l, bool measured, bool same_layer) {
    const auto before = [&](const RoutingTrace::Prefetch& p) {
      return p.token < t || (p.token == t && p.at_layer < l);
    };
    while (cursor < trace.prefetches.size() && before(trace.prefetches[cursor])) ++cursor;
    for (size_t j = cursor; j < trace.prefetches.size(); ++j) {
      const RoutingTrace::Prefetch& p = trace.prefetches[j];
      if (p.token != t || p.at_layer != l) break;
      if ((p.target == l) != same_layer) continue;
      for (uint32_t i = 0; i < p.count; ++i) {
        const int32_t e = trace.prefetch_ids[p.offset + i];
        if (cache.find(p.target, e) >= 0) continue;
        const int s = cache.victim(int(l), true);
        if (s < 0) break;
        cache.assign(s, p.target, e);
        cache.slot(s).state = State::ready;
        cache.slot(s).prefetched = true;
        const bool first = first_read(p.target, e);
        if (measured) ++r.prefetch_reads, r.reread_prefetches += !first;
      }
    }
  };
  for (int64_t t = 0; t < trace.n_token(); ++t) {
    const bool measured = t >= measure_from;
    r.measured_tokens += measured;
    for (int64_t l = 0; l < trace.n_layer; ++l) {
      prefetch(t, l, measured, true);
      const int32_t* ids = trace.at(t, l);
      pinned.clear();
      for (int64_t k = 0; k < trace.top_k; ++k) {
        int s = cache.find(int(l), ids[k]);
        if (s >= 0) {
          r.hits += measured;
        } else {
          s = cache.victim(int(l), false);
          if (s < 0) throw Error("cache simulation: every slot is pinned");
          cache.assign(s, int(l), ids[k]);
          cache.slot(s).state = State::ready;
          const bool first = first_read(int(l), ids[k]);
          if (measured) ++r.misses, r.reread_misses += !first;
        }
        r.acquisitions += measured;
        ++cache.slot(s).pins;
        cache.slot(s).prefetched = false;
        cache.touch(s);
        pinned.push_back(s);
      }
      prefetch(t, l, measured, false);
      // Decode reached this layer: its unused predictions become plain cached
      // experts (policy none: gone), as in StreamingExperts::acquire.
      for (size_t i = 0; i < cache.n_slots(); ++i) {
        store::ExpertCache::Slot& slot = cache.slot(int(i));
        if (slot.layer != l || !slot.prefetched || slot.pins > 0) continue;
        slot.prefetched = false;
        if (policy == store::CachePolicy::none) cache.drop(int(i));
      }
      for (int s : pinned)  // release(layer)
        if (--cache.slot(s).pins == 0 && policy == store::CachePolicy::none) cache.drop(s);
    }
  }
  return r;
}

double simulate_expert_cache(const RoutingTrace& trace, store::CachePolicy policy, size_t n_slots,
                             int64_t measure_from) {
  return replay_store(trace, policy, n_slots, measure_from).hit_rate();
}

}  // namespace moelab::perfmodel
