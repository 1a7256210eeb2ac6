#include "kv/kv_cache.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace moelab::kv {

KvCache::KvCache(int64_t n_layer, int64_t n_ctx, int64_t n_head_kv, int64_t head_dim, std::string_view codec,
                 KvRope rope)
    : n_layer_(n_layer), n_ctx_(n_ctx), n_head_kv_(n_head_kv), head_dim_(head_dim), rope_(rope),
      spec_(parse_kv_codec(codec)) {
  if (n_layer <= 0 || n_ctx <= 0 || n_head_kv <= 0 || head_dim <= 0)
    throw Error("kv cache: invalid shape (layers " + std::to_string(n_layer) + ", ctx " + std::to_string(n_ctx) + ")");
  if (rope.n_rot < 0 || rope.n_rot > head_dim || rope.n_rot % 2 != 0)
    throw Error("kv cache: rope n_rot " + std::to_string(rope.n_rot) + " not an even count <= head_dim " +
                std::to_string(head_dim));
  k_codec_ = make_row_codec(spec_.k, Role::key, head_dim);
  for (int64_t i = 0; i < rope.n_rot / 2; ++i)
    rope_freq_.push_back(std::pow(double(rope.base), -2.0 * double(i) / double(rope.n_rot)));
  v_codec_ = make_row_codec(spec_.v, Role::value, head_dim);
  k_.resize(size_t(n_layer) * size_t(n_ctx) * size_t(n_head_kv) * head_bytes_k());
  v_.resize(size_t(n_layer) * size_t(n_ctx) * size_t(n_head_kv) * head_bytes_v());
  k_centre_.assign(size_t(n_layer * n_head_kv * head_dim), 0.0f);
  sink_k_.assign(size_t(n_layer * n_head_kv * head_dim), 0.0f);
  qjl_w_.assign(size_t(n_layer * n_head_kv * head_dim), 1.0f);
  centred_.resize(size_t(head_dim));
  centre_pos_.resize(size_t(head_dim));
  angles_.resize(size_t(head_dim));
}

void KvCache::calibrate(int64_t layer, const float* q, const float* k, int64_t n, int64_t group) {
  if (!k_codec_->centers_keys()) return;
  const int64_t kv_dim = n_head_kv_ * head_dim_, q_dim = kv_dim * group;
  if (n < 2) {  // nothing to estimate from: no centre, plain QJL (not what an earlier sequence left)
    std::fill(k_centre_.begin() + layer * kv_dim, k_centre_.begin() + (layer + 1) * kv_dim, 0.0f);
    std::fill(qjl_w_.begin() + layer * kv_dim, qjl_w_.begin() + (layer + 1) * kv_dim, 1.0f);
    return;
  }
  float* c = &k_centre_[size_t(layer * kv_dim)];
  // Keys turned back to position 0 (R(-t) k_t) when the centre follows RoPE.
  std::vector<float> k0(static_cast<size_t>(n * kv_dim));
  for (int64_t t = 0; t < n; ++t) {
    rope_angles(-t, angles_.data());
    for (int64_t h = 0; h < n_head_kv_; ++h)
      turn(k + t * kv_dim + h * head_dim_, &k0[size_t(t * kv_dim + h * head_dim_)], angles_.data());
  }
  for (int64_t i = 0; i < kv_dim; ++i) {
    double sum = 0;
    for (int64_t t = 1; t < n; ++t) sum += k0[size_t(t * kv_dim + i)];
    c[i] = float(sum / double(n - 1));
  }
  // The keys as store() will centre them: k_t - R(t) c (reusing k0).
  for (int64_t t = 0; t < n; ++t) {
    rope_angles(t, angles_.data());
    for (int64_t h = 0; h < n_head_kv_; ++h)
      subtract_centre(layer, h, k + t * kv_dim + h * head_dim_, &k0[size_t(t * kv_dim + h * head_dim_)]);
  }
  // Channel weights w_i^2 ~ rms(q_i) / rms(k_i - c_i) (kv_codec.cpp says why),
  // normalised to a mean ratio of 1 and kept within [0.01, 100] of it. tq3,
  // whose weights act on the sketch only, keeps w_i^2 ~ rms(q_i) (floor 0.01).
  const bool sketch_only = k_codec_->score_dim() > size_t(head_dim_);
  std::vector<double> ratio(static_cast<size_t>(head_dim_));
  for (int64_t h = 0; h < n_head_kv_; ++h) {
    float* w = &qjl_w_[size_t((layer * n_head_kv_ + h) * head_dim_)];
    double mean_q = 0, mean_k = 0;
    std::vector<double> rq(static_cast<size_t>(head_dim_)), rk(static_cast<size_t>(head_dim_));
    for (int64_t i = 0; i < head_dim_; ++i) {
      double qq = 0, kk = 0;
      for (int64_t t = 1; t < n; ++t) {
        for (int64_t g = 0; g < group; ++g) {
          const double x = q[t * q_dim + (h * group + g) * head_dim_ + i];
          qq += x * x;
        }
        const double y = k0[size_t(t * kv_dim + h * head_dim_ + i)];
        kk += y * y;
      }
      rq[size_t(i)] = std::sqrt(qq / double((n - 1) * group));
      rk[size_t(i)] = std::sqrt(kk / double(n - 1));
      mean_q += rq[size_t(i)] / double(head_dim_);
      mean_k += rk[size_t(i)] / double(head_dim_);
    }
    double mean_ratio = 0;
    for (int64_t i = 0; i < head_dim_; ++i) {  // floors: a silent channel must not divide by ~0
      ratio[size_t(i)] = sketch_only ? rq[size_t(i)]
                                     : std::max(rq[size_t(i)], 1e-3 * mean_q) / std::max(rk[size_t(i)], 1e-3 * mean_k);
      mean_ratio += ratio[size_t(i)] / double(head_dim_);
    }
    for (int64_t i = 0; i < head_dim_; ++i)
      w[i] = mean_ratio > 0 ? float(std::sqrt(std::clamp(ratio[size_t(i)] / mean_ratio, 0.01, sketch_only ? 1e30 : 100.0)))
                            : 1.0f;
  }
}

void KvCache::subtract_centre(int64_t layer, int64_t h, const float* key, float* out) {
  turn(key_centre(layer, h), centre_pos_.data(), angles_.data());
  for (int64_t i = 0; i < head_dim_; ++i) out[i] = key[i] - centre_pos_[size_t(i)];
}

void KvCache::rope_angles(int64_t pos, double* cs) const {
  for (int64_t i = 0; i < rope_dims() / 2; ++i) {
    cs[2 * i] = std::cos(double(pos) * rope_freq_[size_t(i)]);
    cs[2 * i + 1] = std::sin(double(pos) * rope_freq_[size_t(i)]);
  }
}

void KvCache::turn(const float* x, float* out, const double* cs) const {
  std::copy(x, x + head_dim_, out);
  for (int64_t i = 0; i < rope_dims() / 2; ++i) {
    const double c = cs[2 * i], s = cs[2 * i + 1];
    const int64_t a = pair_a(i), b = pair_b(i);
    out[a] = float(x[a] * c - x[b] * s);
    out[b] = float(x[a] * s + x[b] * c);
  }
}

void KvCache::rope_features(int64_t pos0, int64_t n, float* kt, int64_t ld) const {
  for (int64_t i = 0; i < rope_dims() / 2; ++i) {
    const double f = rope_freq_[size_t(i)], step_c = std::cos(f), step_s = std::sin(f);
    double cs = std::cos(double(pos0) * f), sn = std::sin(double(pos0) * f);
    for (int64_t j = 0; j < n; ++j) {
      kt[2 * i * ld + j] = float(cs);
      kt[(2 * i + 1) * ld + j] = float(sn);
      const double next = cs * step_c - sn * step_s;
      sn = sn * step_c + cs * step_s;
      cs = next;
    }
  }
}

// q . R(pos) c over pair i = cos * (q_a c_a + q_b c_b) + sin * (q_b c_a - q_a c_b).
void KvCache::rope_query_features(int64_t layer, int64_t h, const float* q, float* out) const {
  const float* c = key_centre(layer, h);
  for (int64_t i = 0; i < rope_dims() / 2; ++i) {
    const int64_t a = pair_a(i), b = pair_b(i);
    out[2 * i] = q[a] * c[a] + q[b] * c[b];
    out[2 * i + 1] = q[b] * c[a] - q[a] * c[b];
  }
}

size_t KvCache::fixed_bytes() const {
  if (!k_codec_->centers_keys()) return 0;
  const size_t per_layer_heads = size_t(n_layer_ * n_head_kv_ * head_dim_) * sizeof(float);
  return 3 * per_layer_heads;  // key centres, sink keys, channel weights
}

void KvCache::set_n_past(int64_t n) {
  if (n < 0 || n > n_ctx_)
    throw Error("kv cache: n_past " + std::to_string(n) + " out of range [0, " + std::to_string(n_ctx_) + "]");
  n_past_ = n;
}

void KvCache::store(int64_t layer, int64_t pos, const float* k, const float* v) {
  if (pos < 0 || pos >= n_ctx_)
    throw Error("kv cache: position " + std::to_string(pos) + " is past the context size " + std::to_string(n_ctx_));
  const bool centre = k_codec_->centers_keys();
  if (centre) rope_angles(pos, angles_.data());  // once per position: every head turns its centre by them
  for (int64_t h = 0; h < n_head_kv_; ++h) {
    const float* key = k + h * head_dim_;
    if (centre && pos == 0) std::copy(key, key + head_dim_, &sink_k_[size_t((layer * n_head_kv_ + h) * head_dim_)]);
    if (centre) {
      subtract_centre(layer, h, key, centred_.data());
      key = centred_.data();
    }
    k_codec_->encode(key, k_.data() + offset(layer, pos, h, head_bytes_k()), qjl_weight(layer, h));
    v_codec_->encode(v + h * head_dim_, v_.data() + offset(layer, pos, h, head_bytes_v()));
  }
}

}  // namespace moelab::kv
