// The attention KV cache: for each layer, keys and values of every past
// position, each row stored in a codec of the registry (f32 or f16 here;
// lib/kv grows compressed codecs). Rows are read back through the codec's own
// kernels, so attention scores keys with `dot` and mixes values with `decode`.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "quant/codec.h"

namespace moelab::kv {

class KvCache {
 public:
  // n_ctx positions of kv_dim values per layer. Codecs must accept rows of head_dim.
  KvCache(int64_t n_layer, int64_t n_ctx, int64_t n_head_kv, int64_t head_dim, const quant::Codec& k_codec,
          const quant::Codec& v_codec);

  int64_t n_ctx() const { return n_ctx_; }
  int64_t n_past() const { return n_past_; }
  void set_n_past(int64_t n) { n_past_ = n; }
  const quant::Codec& k_codec() const { return *k_codec_; }
  const quant::Codec& v_codec() const { return *v_codec_; }
  size_t head_bytes_k() const { return head_bytes_k_; }
  size_t head_bytes_v() const { return head_bytes_v_; }
  size_t bytes() const { return k_.size() + v_.size(); }

  // Encodes one position's keys/values ([n_head_kv * head_dim] f32) into the cache.
  void store(int64_t layer, int64_t pos, const float* k, const float* v);
  // Row of head h at position pos: head_dim values in the cache's codec.
  const uint8_t* k_head(int64_t layer, int64_t pos, int64_t h) const {
    return k_.data() + offset(layer, pos, h, head_bytes_k_);
  }
  const uint8_t* v_head(int64_t layer, int64_t pos, int64_t h) const {
    return v_.data() + offset(layer, pos, h, head_bytes_v_);
  }

 private:
  size_t offset(int64_t layer, int64_t pos, int64_t h, size_t head_bytes) const {
    return ((size_t(layer) * size_t(n_ctx_) + size_t(pos)) * size_t(n_head_kv_) + size_t(h)) * head_bytes;
  }
  int64_t n_layer_, n_ctx_, n_head_kv_, head_dim_;
  const quant::Codec* k_codec_;
  const quant::Codec* v_codec_;
  size_t head_bytes_k_, head_bytes_v_;
  std::vector<uint8_t> k_, v_;  // [n_layer, n_ctx, n_head_kv, head_bytes]
  int64_t n_past_ = 0;
};

}  // namespace moelab::kv
