// What the expert store did: read, hit, missed, predicted. Cumulative since the
// store was made or reset(); the harness takes differences around a phase.
#pragma once

#include <cstdint>
#include <vector>

namespace moelab::store {

struct SpecCounters {        // one speculation depth
  uint64_t predicted = 0;    // experts prefetched for layer l+d
  uint64_t correct = 0;      // ... that the router of l+d then chose
  uint64_t needed = 0;       // experts the router of l+d chose
  double precision() const { return predicted ? double(correct) / double(predicted) : 0.0; }
  double recall() const { return needed ? double(correct) / double(needed) : 0.0; }
};

struct StoreCounters {
  uint64_t bytes_read = 0;      // from storage (disk or page cache), expert bytes only
  uint64_t reads = 0;           // read requests issued
  uint64_t cache_hits = 0;      // expert acquisitions served from the cache (incl. prefetched)
  uint64_t cache_misses = 0;    // acquisitions that had to wait for a read
  int64_t io_wait_ns = 0;       // time the forward pass waited on expert reads
  uint64_t cache_bytes = 0;     // expert bytes held by the cache now
  std::vector<SpecCounters> spec;  // [spec_depth]: depth d at index d - 1
  SpecCounters spec_pre_attention; // layer l predicted from its input before attention
  uint64_t prefetch_reads = 0;  // of `reads`, issued by speculation (background)
  uint64_t prefetch_bytes = 0;  // of `bytes_read`, read by speculation
  int64_t read_ns = 0;          // time the forward pass's own reads took (io_wait_ns minus waits on prefetches)
  int64_t prefetch_read_ns = 0; // time the background reader spent reading (overlaps compute)
  uint64_t cache_budget_bytes = 0;  // the slab: slots x slot bytes (<= ram_budget_mb)

  double hit_rate() const {
    const uint64_t n = cache_hits + cache_misses;
    return n ? double(cache_hits) / double(n) : 0.0;
  }
};

}  // namespace moelab::store
