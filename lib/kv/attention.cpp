#include "kv/attention.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/fp16.h"
#include "kv/attention_kernels.h"

namespace moelab::kv {

Attention::Attention(const KvCache& kv, int64_t n_head, int64_t n_batch, int n_threads)
    : kv_(kv), n_head_(n_head), group_(n_head / kv.n_head_kv()), hd_(kv.head_dim()) {
  // Blocks of about 48 query rows: enough to amortise tile decoding, few enough
  // that a batch still makes several items per thread.
  block_tokens_ = std::clamp<int64_t>(48 / group_, 1, n_batch);
  rows_max_ = block_tokens_ * group_;
  lds_ = (kv.n_ctx() + kKeyTile - 1) / kKeyTile * kKeyTile;
  codec_dim_ = kv.k_codec().score_dim();
  dim_ = codec_dim_ + size_t(kv.rope_dims());
  round_to_f16_ = kv.k_codec().name() == "f16" && kv.v_codec().name() == "f16";
  scratch_.resize(size_t(n_threads));
  for (Scratch& s : scratch_) {
    s.q.resize(size_t(rows_max_) * dim_);
    s.s.resize(size_t(rows_max_ * lds_));
    s.kt.resize(dim_ * size_t(kKeyTile));
    s.v.resize(size_t(kKeyTile * hd_));
    s.acc.resize(size_t(rows_max_ * hd_));
    s.qr.resize(size_t(hd_));
    s.len.resize(size_t(rows_max_));
    s.n_keys.resize(size_t(rows_max_));
  }
}

void Attention::run(int64_t layer, const float* q, int64_t n, int64_t pos0, float* out, ThreadPool& pool) {
  const int64_t blocks = (n + block_tokens_ - 1) / block_tokens_;
  const int64_t items = blocks * kv_.n_head_kv();
  next_.store(0, std::memory_order_relaxed);
  pool.parallel_for(pool.size(), 1, [&](int64_t, int64_t, int thread) {
    // Latest blocks (most keys) first, so the threads finish together.
    for (int64_t item; (item = next_.fetch_add(1, std::memory_order_relaxed)) < items;) {
      const int64_t block = blocks - 1 - item / kv_.n_head_kv(), hk = item % kv_.n_head_kv();
      const int64_t t0 = block * block_tokens_, t1 = std::min(n, t0 + block_tokens_);
      run_item(layer, q, pos0, t0, t1, hk, out, thread);
    }
  });
}

void Attention::run_item(int64_t layer, const float* q_all, int64_t pos0, int64_t t0, int64_t t1, int64_t hk,
                         float* out, int thread) {
  Scratch& sc = scratch_[size_t(thread)];
  const AttentionKernels& kern = attention_kernels();
  const RowCodec& kc = kv_.k_codec();
  const RowCodec& vc = kv_.v_codec();
  const int64_t hd = hd_, q_dim = n_head_ * hd, rows = (t1 - t0) * group_;
  const int64_t keys = pos0 + t1;  // keys the block's last token sees
  const bool sink = kv_.exact_sink();
  const float scale = 1.0f / std::sqrt(float(hd));

  // Queries in score space; row r = (t - t0) * group + g.
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t t = t0 + r / group_, h = hk * group_ + r % group_;
    const float* q = q_all + t * q_dim + h * hd;
    if (round_to_f16_) {  // llama.cpp multiplies f16 keys by the query rounded to f16
      for (int64_t d = 0; d < hd; ++d) sc.qr[size_t(d)] = fp16_to_f32(f32_to_fp16(q[d]));
      q = sc.qr.data();
    }
    kc.query_to_score_space(q, &sc.q[size_t(r) * dim_], kv_.qjl_weight(layer, hk), scale);
    kv_.rope_query_features(layer, hk, q, &sc.q[size_t(r) * dim_ + codec_dim_]);
    sc.n_keys[size_t(r)] = pos0 + t + 1;  // causal: positions 0 .. pos
  }

  // Scores, a tile of keys at a time (the last tile zero-padded).
  for (int64_t j0 = 0; j0 < keys; j0 += kKeyTile) {
    const int64_t nt = std::min(kKeyTile, keys - j0);
    kc.keys_to_score_space(kv_.k_head(layer, j0, hk), kv_.pos_stride_k(), nt, sc.kt.data(), kKeyTile);
    // + q . (the centre turned to each key's position)
    kv_.rope_features(j0, nt, &sc.kt[codec_dim_ * kKeyTile], kKeyTile);
    if (nt < kKeyTile)
      for (size_t i = 0; i < dim_; ++i) std::fill(&sc.kt[i * kKeyTile + size_t(nt)], &sc.kt[(i + 1) * kKeyTile], 0.0f);
    kern.scores(sc.q.data(), rows, int64_t(dim_), sc.kt.data(), sc.s.data() + j0, lds_);
  }

  // Softmax per row over its own keys.
  for (int64_t r = 0; r < rows; ++r) {
    float* s = &sc.s[size_t(r * lds_)];
    const int64_t nk = sc.n_keys[size_t(r)];
    if (sink) {  // position 0 exactly: q . (k_0 - centre's fixed dims), as the scores above stand for
      const int64_t t = t0 + r / group_, h = hk * group_ + r % group_;
      const float* q = q_all + t * q_dim + h * hd;
      const float* k0 = kv_.sink_key(layer, hk);
      const float* centre = kv_.key_centre(layer, hk);
      float s0 = 0;
      for (int64_t d = 0; d < hd; ++d) s0 += q[d] * (d < kv_.rope_dims() ? k0[d] : k0[d] - centre[d]);
      s[0] = s0;
    }
    float max_score = -INFINITY;
    for (int64_t j = 0; j < nk; ++j) {
      s[j] *= scale;
      max_score = std::max(max_score, s[j]);
    }
    float sum = 0;
    for (int64_t j = 0; j < nk; ++j) sum += (s[j] = std::exp(s[j] - max_score));
    if (round_to_f16_)  // llama.cpp mixes f16 values with probabilities rounded to f16
      for (int64_t j = 0; j < nk; ++j) s[j] = fp16_to_f32(f32_to_fp16(s[j] / sum));
    else
      for (int64_t j = 0; j < nk; ++j) s[j] /= sum;
  }

  // Values, a tile at a time, each row up to its own last key.
  std::fill(sc.acc.begin(), sc.acc.begin() + rows * hd, 0.0f);
  for (int64_t j0 = 0; j0 < keys; j0 += kKeyTile) {
    const int64_t nt = std::min(kKeyTile, keys - j0);
    vc.values_to_mix_space(kv_.v_head(layer, j0, hk), kv_.pos_stride_v(), nt, sc.v.data());
    for (int64_t r = 0; r < rows; ++r) sc.len[size_t(r)] = std::clamp<int64_t>(sc.n_keys[size_t(r)] - j0, 0, nt);
    kern.mix(sc.s.data() + j0, lds_, rows, sc.len.data(), sc.v.data(), hd, sc.acc.data());
  }
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t t = t0 + r / group_, h = hk * group_ + r % group_;
    vc.finish_mix(&sc.acc[size_t(r * hd)], out + t * q_dim + h * hd);
  }
}

}  // namespace moelab::kv
