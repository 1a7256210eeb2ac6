// KV sessions: a conversation's KV cache, position and tokens saved to a file
// and loaded back, so that a follow-up turn processes only its new tokens.
//
// File (little-endian), version 2 (1 held post-RoPE key centres; 2 holds them
// un-rotated, KvCache::calibrate):
//   magic "MOELABKV" | u32 version | u32 reserved (0)
//   model identity: 32 ASCII hex digits (model/identity.h)
//   kv codec: u32 length | bytes (the canonical "k" or "k/v" form)
//   u64 n_layer, n_head_kv, head_dim, head_bytes_k, head_bytes_v, n_past
//   i32 tokens[n_past]                         the tokens the cache holds
//   f32 key centres [n_layer * n_head_kv * head_dim]   (KvCache::key_centres)
//   f32 sink keys [n_layer * n_head_kv * head_dim]     (KvCache::sink_keys)
//   f32 QJL weights [n_layer * n_head_kv * head_dim]   (KvCache::qjl_weights)
//   per layer: K rows [n_past * n_head_kv * head_bytes_k], V rows [... head_bytes_v]
//   u64 XXH64 of every byte before it
// Loading checks everything (magic, version, sizes, checksum, model, codec,
// shapes, room in the cache) before it writes a byte of the cache, so a bad
// file leaves the cache as it was.
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "kv/kv_cache.h"

namespace moelab::kv {

inline constexpr uint32_t kSessionVersion = 2;

// Writes positions [0, n_past) of `cache`; tokens.size() must equal n_past.
// Written to a temporary file renamed into place.
void save_session(const std::filesystem::path& path, const KvCache& cache, const std::string& model_identity,
                  std::span<const int32_t> tokens);

// Loads into `cache` (its n_past becomes the session's) and returns the
// session's tokens. Throws moelab::Error naming the file and the reason.
std::vector<int32_t> load_session(const std::filesystem::path& path, KvCache& cache,
                                  const std::string& model_identity);

}  // namespace moelab::kv
