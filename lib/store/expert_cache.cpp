#include "store/expert_cache.h"

#include <cstdlib>

#include "core/error.h"
#include "store/io_backend.h"

namespace moelab::store {

CachePolicy parse_cache_policy(std::string_view name) {
  if (name == "none") return CachePolicy::none;
  if (name == "lru") return CachePolicy::lru;
  if (name == "lfu") return CachePolicy::lfu;
  if (name == "least_stale") return CachePolicy::least_stale;
  throw Error("unknown cache policy '" + std::string(name) + "'; valid: none, lru, lfu, least_stale");
}

const char* cache_policy_name(CachePolicy policy) {
  switch (policy) {
    case CachePolicy::none: return "none";
    case CachePolicy::lru: return "lru";
    case CachePolicy::lfu: return "lfu";
    case CachePolicy::least_stale: return "least_stale";
  }
  return "?";
}

void ExpertCache::FreeDeleter::operator()(uint8_t* p) const { std::free(p); }

ExpertCache::ExpertCache(CachePolicy policy, int64_t n_layer, int64_t n_expert, uint64_t slot_bytes, size_t n_slots)
    : policy_(policy), n_layer_(n_layer), n_expert_(n_expert), slot_bytes_(slot_bytes), slots_(n_slots),
      index_(size_t(n_layer * n_expert), -1), freq_(size_t(n_layer * n_expert), 0) {
  if (slot_bytes % kIoAlign != 0) throw Error("expert cache: slot size " + std::to_string(slot_bytes) + " is not aligned");
  slab_.reset(static_cast<uint8_t*>(std::aligned_alloc(kIoAlign, n_slots * slot_bytes)));
  if (!slab_) throw Error("expert cache: cannot allocate " + std::to_string(n_slots * slot_bytes) + " bytes");
}

int ExpertCache::victim(int current_layer, bool spare_prefetched) const {
  int best = -1;
  uint64_t best_score = 0;
  for (size_t i = 0; i < slots_.size(); ++i) {
    const Slot& s = slots_[i];
    if (s.state == State::free && s.pins == 0) return int(i);
    if (s.state != State::ready || s.pins > 0 || (spare_prefetched && s.prefetched)) continue;
    // Larger score = evict first. Recency breaks ties (older first).
    const uint64_t age = tick_ - s.last_use;
    uint64_t score = age;
    if (policy_ == CachePolicy::lfu) {
      score = (uint64_t(UINT32_MAX - freq_[key(s.layer, s.expert)]) << 32) | (age & 0xFFFFFFFFull);
    } else if (policy_ == CachePolicy::least_stale) {
      // Layers until the pass needs s.layer again (current + 1 next, current itself last).
      const uint64_t ahead = uint64_t((s.layer - current_layer - 1 + 2 * n_layer_) % n_layer_);
      score = (ahead << 40) | (age & ((1ull << 40) - 1));
    }
    if (best < 0 || score > best_score) {
      best = int(i);
      best_score = score;
    }
  }
  return best;
}

void ExpertCache::assign(int i, int layer, int32_t expert) {
  Slot& s = slots_[size_t(i)];
  if (s.layer >= 0) index_[key(s.layer, s.expert)] = -1;
  s = Slot{};
  s.layer = layer;
  s.expert = expert;
  s.state = State::loading;
  s.last_use = tick_;
  index_[key(layer, expert)] = int32_t(i);
}

void ExpertCache::drop(int i) {
  Slot& s = slots_[size_t(i)];
  if (s.layer >= 0) index_[key(s.layer, s.expert)] = -1;
  s = Slot{};
}

void ExpertCache::touch(int i) {
  Slot& s = slots_[size_t(i)];
  s.last_use = ++tick_;
  ++freq_[key(s.layer, s.expert)];
}

uint64_t ExpertCache::ready_slots() const {
  uint64_t n = 0;
  for (const Slot& s : slots_) n += s.state == State::ready;
  return n;
}

}  // namespace moelab::store
