// The attention KV cache: for each layer, keys and values of every past
// position, each head's row stored in a KV row codec (kv_codec.h; keys and
// values may use different ones). Attention reads the rows in place through
// the codec's score / mix, so a compressed cache is never expanded.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "kv/kv_codec.h"

namespace moelab::kv {

// The rotary position embedding the forward pass applies to keys before they
// are stored (model/forward.cpp's rope): pairs (2i, 2i+1), or (i, i + n_rot/2)
// for neox, turned by pos * base^(-2i/n_rot). n_rot 0: keys are not rotated.
struct KvRope {
  int64_t n_rot = 0;
  float base = 10000.0f;
  bool neox = false;
};

class KvCache {
 public:
  // n_ctx positions of n_head_kv rows of head_dim values per layer; `codec` is
  // a kv_codec setting ("f16", "tq3/q4_0"; see kv_codec.h).
  KvCache(int64_t n_layer, int64_t n_ctx, int64_t n_head_kv, int64_t head_dim, std::string_view codec,
          KvRope rope = {});

  int64_t n_layer() const { return n_layer_; }
  int64_t n_ctx() const { return n_ctx_; }
  int64_t n_head_kv() const { return n_head_kv_; }
  int64_t head_dim() const { return head_dim_; }
  int64_t n_past() const { return n_past_; }
  void set_n_past(int64_t n);
  const RowCodec& k_codec() const { return *k_codec_; }
  const RowCodec& v_codec() const { return *v_codec_; }
  const KvCodecSpec& spec() const { return spec_; }
  size_t head_bytes_k() const { return k_codec_->row_bytes(); }
  size_t head_bytes_v() const { return v_codec_->row_bytes(); }
  size_t bytes() const { return k_.size() + v_.size(); }  // allocated, all n_ctx positions
  // Keys + values of one position over all layers and heads.
  size_t bytes_per_token() const {
    return size_t(n_layer_ * n_head_kv_) * (head_bytes_k() + head_bytes_v());
  }
  // Per-cache side data the codecs need besides the rows, whatever the context
  // (key centres, exact sink rows, QJL weights; 0 for codecs that use none).
  size_t fixed_bytes() const;

  // calibrate(): key centres (codecs with centers_keys()): the mean key of each head over
  // positions 1 .. n-1 of the first batch (position 0, the attention sink, is
  // atypical), fixed from then on; zero when the first batch has one token
  // (weights 1 then). k: [n, n_head_kv * head_dim]. With RoPE (KvRope) the
  // centre is the mean of the un-rotated keys, and position p's key is stored
  // minus the centre turned to p (turn): a fixed post-RoPE centre goes
  // stale as positions turn the keys (on SmolLM2 the centred energy of the
  // mid-frequency channels grew from 0.19 to 0.95 of the raw keys' between
  // positions 0-511 and 1536-2047). Attention adds q . (rotated part of the
  // centre at p) back to each score (rope_features), so the centre's rotated
  // dims cancel; its fixed dims (i >= n_rot) add q . c to every score, which
  // softmax ignores.
  // Same batch: the channel weights of the keys, from the queries of the heads
  // sharing each KV head: tq3m/tq4m w_i^2 ~ rms(q_i) / rms(centred k_i), tq3
  // (weights on its sketch only) w_i^2 ~ rms(q_i) (kv_codec.cpp says why).
  // q: [n, n_head_kv * group * head_dim]. Both are no-ops for other codecs.
  void calibrate(int64_t layer, const float* q, const float* k, int64_t n, int64_t group);
  const float* qjl_weight(int64_t layer, int64_t h) const {
    return &qjl_w_[size_t((layer * n_head_kv_ + h) * head_dim_)];
  }
  std::vector<float>& qjl_weights() { return qjl_w_; }
  const std::vector<float>& qjl_weights() const { return qjl_w_; }
  // [n_layer, n_head_kv, head_dim] (zeros unless calibrated); sessions carry it.
  const std::vector<float>& key_centres() const { return k_centre_; }
  std::vector<float>& key_centres() { return k_centre_; }

  // Codecs with centers_keys() also keep position 0's keys exactly (f32, not
  // centred): the first token is the attention sink that most heads attend
  // to, so an error on its score moves every probability of the row. Fixed
  // cost n_layer * n_head_kv * head_dim floats, whatever the context.
  bool exact_sink() const { return k_codec_->centers_keys(); }
  const float* sink_key(int64_t layer, int64_t h) const { return &sink_k_[size_t((layer * n_head_kv_ + h) * head_dim_)]; }
  const float* key_centre(int64_t layer, int64_t h) const {
    return &k_centre_[size_t((layer * n_head_kv_ + h) * head_dim_)];
  }
  // Rotary dims whose centre part attention adds back (0 unless the key codec
  // centres keys and the cache has RoPE). Score-space features, per pair i <
  // n_rot / 2: key (cos, sin) of pos's angle, query q . c turned so that their
  // dot product is q . R(pos) c over the pair (rope_query_features).
  int64_t rope_dims() const { return k_codec_->centers_keys() ? rope_.n_rot : 0; }
  // Key features of positions pos0 .. pos0 + n - 1 into kt[f * ld + j], f < rope_dims(), j < n:
  // computed, not stored (one sin/cos per pair, then turned a step per position).
  void rope_features(int64_t pos0, int64_t n, float* kt, int64_t ld) const;
  void rope_query_features(int64_t layer, int64_t h, const float* q, float* out) const;
  std::vector<float>& sink_keys() { return sink_k_; }
  const std::vector<float>& sink_keys() const { return sink_k_; }

  // Encodes one position's keys/values ([n_head_kv * head_dim] f32) into the cache.
  void store(int64_t layer, int64_t pos, const float* k, const float* v);
  // Row of head h at position pos; rows of one head are pos_stride_*() bytes apart.
  const uint8_t* k_head(int64_t layer, int64_t pos, int64_t h) const {
    return k_.data() + offset(layer, pos, h, head_bytes_k());
  }
  const uint8_t* v_head(int64_t layer, int64_t pos, int64_t h) const {
    return v_.data() + offset(layer, pos, h, head_bytes_v());
  }
  size_t pos_stride_k() const { return size_t(n_head_kv_) * head_bytes_k(); }
  size_t pos_stride_v() const { return size_t(n_head_kv_) * head_bytes_v(); }

  // Positions [0, n) of one layer, all heads, contiguous (for sessions).
  const uint8_t* k_layer(int64_t layer) const { return k_head(layer, 0, 0); }
  const uint8_t* v_layer(int64_t layer) const { return v_head(layer, 0, 0); }
  uint8_t* k_layer(int64_t layer) { return k_.data() + offset(layer, 0, 0, head_bytes_k()); }
  uint8_t* v_layer(int64_t layer) { return v_.data() + offset(layer, 0, 0, head_bytes_v()); }

 private:
  size_t offset(int64_t layer, int64_t pos, int64_t h, size_t head_bytes) const {
    return ((size_t(layer) * size_t(n_ctx_) + size_t(pos)) * size_t(n_head_kv_) + size_t(h)) * head_bytes;
  }
  // cs[2i], cs[2i + 1] = cos, sin of pos's angle for rotary pair i < rope_dims() / 2
  // (negative pos turns back): every head of a position shares them.
  void rope_angles(int64_t pos, double* cs) const;
  // out[head_dim] = x turned by RoPE through the angles `cs` over the
  // rope_dims() dims, the other dims copied.
  void turn(const float* x, float* out, const double* cs) const;
  // out[head_dim] = key - the centre of head h turned by angles_ (the key's
  // position: rope_angles was called for it).
  void subtract_centre(int64_t layer, int64_t h, const float* key, float* out);
  // Dims (a, b) of rotary pair i.
  int64_t pair_a(int64_t i) const { return rope_.neox ? i : 2 * i; }
  int64_t pair_b(int64_t i) const { return rope_.neox ? i + rope_.n_rot / 2 : 2 * i + 1; }
  int64_t n_layer_, n_ctx_, n_head_kv_, head_dim_;
  KvRope rope_;
  std::vector<double> rope_freq_;  // [n_rot / 2] base^(-2i/n_rot): pair i turns pos * rope_freq_[i]
  KvCodecSpec spec_;
  std::unique_ptr<RowCodec> k_codec_, v_codec_;
  std::vector<uint8_t> k_, v_;  // [n_layer, n_ctx, n_head_kv, head_bytes]
  std::vector<float> k_centre_;  // [n_layer, n_head_kv, head_dim]
  std::vector<float> sink_k_;    // [n_layer, n_head_kv, head_dim]
  std::vector<float> qjl_w_;     // [n_layer, n_head_kv, head_dim], 1 until calibrated
  std::vector<float> centred_, centre_pos_;  // [head_dim] scratch of store() and subtract_centre
  std::vector<double> angles_;               // [rope_dims()] scratch: rope_angles of one position
  int64_t n_past_ = 0;
};

}  // namespace moelab::kv
