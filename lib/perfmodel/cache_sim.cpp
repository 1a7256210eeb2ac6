#include "perfmodel/cache_sim.h"

#include <string>
#include <vector>

#include "core/error.h"
#include "store/io_backend.h"

namespace moelab::perfmodel {

double simulate_expert_cache(const RoutingTrace& trace, store::CachePolicy policy, size_t n_slots,
                             int64_t measure_from) {
  if (n_slots < size_t(trace.top_k))
    throw Error("cache simulation: " + std::to_string(n_slots) + " slots cannot hold top_k = " +
                std::to_string(trace.top_k) + " experts");
  // The smallest aligned slot: the simulation needs the bookkeeping, not the bytes.
  store::ExpertCache cache(policy, trace.n_layer, trace.n_expert, store::kIoAlign, n_slots);
  std::vector<int> pinned;
  pinned.reserve(size_t(trace.top_k));
  uint64_t hits = 0, total = 0;
  for (int64_t t = 0; t < trace.n_token(); ++t) {
    const bool measured = t >= measure_from;
    for (int64_t l = 0; l < trace.n_layer; ++l) {
      const int32_t* ids = trace.at(t, l);
      pinned.clear();
      for (int64_t k = 0; k < trace.top_k; ++k) {
        int s = cache.find(int(l), ids[k]);
        if (s >= 0) {
          hits += measured;
        } else {
          s = cache.victim(int(l), false);
          if (s < 0) throw Error("cache simulation: every slot is pinned");
          cache.assign(s, int(l), ids[k]);
          cache.slot(s).state = store::ExpertCache::State::ready;
        }
        total += measured;
        ++cache.slot(s).pins;
        cache.touch(s);
        pinned.push_back(s);
      }
      for (int s : pinned)  // release(layer)
        if (--cache.slot(s).pins == 0 && policy == store::CachePolicy::none) cache.drop(s);
    }
  }
  return total ? double(hits) / double(total) : 0.0;
}

}  // namespace moelab::perfmodel
