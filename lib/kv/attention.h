// Causal attention of a batch of queries over a KvCache, read in place in the
// cache's codecs. Work is split into (KV head, block of tokens) items, so each
// decoded tile of keys or values serves every query of the block and of the
// KV head's query group (the group of GQA): decoding costs one pass over the
// cache per block instead of one per query. Items are spread over the pool's
// threads largest first. Every query's result depends only on its own keys
// (tiles start at fixed multiples of kKeyTile), never on how the batch was
// split or which thread ran it, so a session resumed from a file continues
// bit-identically.
#pragma once

#include <atomic>
#include <cstdint>
#include <vector>

#include "core/thread_pool.h"
#include "kv/kv_cache.h"

namespace moelab::kv {

class Attention {
 public:
  // Scratch for n_batch tokens of n_head query heads over kv's n_ctx positions, per pool thread.
  Attention(const KvCache& kv, int64_t n_head, int64_t n_batch, int n_threads);

  // q: [n, n_head * head_dim] queries of positions pos0 .. pos0 + n - 1, whose
  // keys and values are already in the cache; out: [n, n_head * head_dim],
  // softmax(q k^T / sqrt(head_dim)) v per head.
  void run(int64_t layer, const float* q, int64_t n, int64_t pos0, float* out, ThreadPool& pool);

 private:
  void run_item(int64_t layer, const float* q, int64_t pos0, int64_t t0, int64_t t1, int64_t hk, float* out,
                int thread);

  const KvCache& kv_;
  int64_t n_head_, group_, hd_, block_tokens_, rows_max_, lds_;
  size_t codec_dim_;  // score-space floats of the key codec
  size_t dim_;        // and the centre's RoPE features after them (KvCache::rope_dims)
  bool round_to_f16_;  // llama.cpp's f16 cache: query and probabilities rounded to f16
  struct Scratch {
    std::vector<float> q;    // [rows, dim] queries in score space
    std::vector<float> s;    // [rows, lds] scores -> probabilities
    std::vector<float> kt;   // [dim, kKeyTile] key tile, transposed
    std::vector<float> v;    // [kKeyTile, head_dim] value tile in mix space
    std::vector<float> acc;  // [rows, head_dim] outputs in mix space
    std::vector<float> qr;   // [head_dim] query rounded to f16
    std::vector<int64_t> len, n_keys;  // [rows] keys of the current tile / in total per row
  };
  std::vector<Scratch> scratch_;
  std::atomic<int64_t> next_{0};
};

}  // namespace moelab::kv
