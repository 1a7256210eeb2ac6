#include "kv/kv_cache.h"

#include "core/error.h"

namespace moelab::kv {

KvCache::KvCache(int64_t n_layer, int64_t n_ctx, int64_t n_head_kv, int64_t head_dim, std::string_view codec)
    : n_layer_(n_layer), n_ctx_(n_ctx), n_head_kv_(n_head_kv), head_dim_(head_dim), spec_(parse_kv_codec(codec)) {
  if (n_layer <= 0 || n_ctx <= 0 || n_head_kv <= 0 || head_dim <= 0)
    throw Error("kv cache: invalid shape (layers " + std::to_string(n_layer) + ", ctx " + std::to_string(n_ctx) + ")");
  k_codec_ = make_row_codec(spec_.k, Role::key, head_dim);
  v_codec_ = make_row_codec(spec_.v, Role::value, head_dim);
  k_.resize(size_t(n_layer) * size_t(n_ctx) * size_t(n_head_kv) * head_bytes_k());
  v_.resize(size_t(n_layer) * size_t(n_ctx) * size_t(n_head_kv) * head_bytes_v());
}

void KvCache::set_n_past(int64_t n) {
  if (n < 0 || n > n_ctx_)
    throw Error("kv cache: n_past " + std::to_string(n) + " out of range [0, " + std::to_string(n_ctx_) + "]");
  n_past_ = n;
}

void KvCache::store(int64_t layer, int64_t pos, const float* k, const float* v) {
  if (pos < 0 || pos >= n_ctx_)
    throw Error("kv cache: position " + std::to_string(pos) + " is past the context size " + std::to_string(n_ctx_));
  for (int64_t h = 0; h < n_head_kv_; ++h) {
    k_codec_->encode(k + h * head_dim_, k_.data() + offset(layer, pos, h, head_bytes_k()));
    v_codec_->encode(v + h * head_dim_, v_.data() + offset(layer, pos, h, head_bytes_v()));
  }
}

}  // namespace moelab::kv
