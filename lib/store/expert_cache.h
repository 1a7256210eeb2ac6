// The expert cache: a fixed number of equal slots carved out of one aligned
// slab allocated up front (the RAM budget), an index (layer, expert) -> slot,
// and an eviction policy. Not thread-safe: StreamingExperts locks around it.
//
// Policies:
//   none         a slot is freed when its layer is released (only prefetched,
//                not yet used experts stay): every token reads all it needs
//   lru          evict the least recently used
//   lfu          evict the least frequently used (counts per (layer, expert)
//                survive eviction), ties by recency
//   least_stale  after SpecMD's Least-Stale (Hoang et al., "SpecMD: A
//                Comprehensive Study On Speculative Expert Prefetching",
//                arXiv:2602.03921, 2026): decode walks the layers in a cycle, so
//                an expert's next use cannot come before the pass reaches its
//                layer again. Evict the expert whose layer is farthest ahead in
//                that cycle (the layers just computed), ties by recency. This is
//                moelab's reading of the idea, not the paper's code.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace moelab::store {

enum class CachePolicy : uint8_t { none, lru, lfu, least_stale };
CachePolicy parse_cache_policy(std::string_view name);  // throws naming the valid ones
const char* cache_policy_name(CachePolicy policy);

class ExpertCache {
 public:
  enum class State : uint8_t { free, loading, ready };
  struct Slot {
    int32_t layer = -1, expert = -1;
    State state = State::free;
    int pins = 0;
    bool prefetched = false;  // loaded by speculation and not used since
    uint64_t last_use = 0;
  };

  ExpertCache(CachePolicy policy, int64_t n_layer, int64_t n_expert, uint64_t slot_bytes, size_t n_slots);

  CachePolicy policy() const { return policy_; }
  size_t n_slots() const { return slots_.size(); }
  uint64_t slot_bytes() const { return slot_bytes_; }
  Slot& slot(int i) { return slots_[size_t(i)]; }
  uint8_t* data(int i) { return slab_.get() + size_t(i) * slot_bytes_; }
  int find(int layer, int32_t expert) const { return index_[key(layer, expert)]; }
  // A slot to reuse: free first, else the policy's victim among unpinned,
  // ready slots (keeping unused prefetches when spare_prefetched); -1 if none.
  int victim(int current_layer, bool spare_prefetched) const;
  void assign(int i, int layer, int32_t expert);  // evicts what the slot held; state loading
  void drop(int i);                               // back to free
  void touch(int i);                              // one use: recency and frequency
  uint64_t ready_slots() const;

 private:
  size_t key(int layer, int32_t expert) const { return size_t(layer) * size_t(n_expert_) + size_t(expert); }
  struct FreeDeleter {
    void operator()(uint8_t* p) const;
  };
  CachePolicy policy_;
  int64_t n_layer_, n_expert_;
  uint64_t slot_bytes_;
  std::unique_ptr<uint8_t[], FreeDeleter> slab_;
  std::vector<Slot> slots_;
  std::vector<int32_t> index_;   // [n_layer * n_expert] -> slot or -1
  std::vector<uint32_t> freq_;   // [n_layer * n_expert] uses (lfu)
  uint64_t tick_ = 0;
};

}  // namespace moelab::store
