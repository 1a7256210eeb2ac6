// One transformer forward pass, written to read like the math.
//
//   x = embed(tokens)
//   for each layer l:
//     h = rmsnorm(x) * attn_norm
//     q, k, v = Wq h (+bq), Wk h (+bk), Wv h (+bv)     [q/k norms for qwen3moe, olmoe]
//     q, k = rope(q, pos), rope(k, pos);  cache k, v
//     x = x + Wo softmax(q k^T / sqrt(d) + causal) v
//     h = rmsnorm(x) * ffn_norm
//     dense: x = x + W_down (silu(W_gate h) * W_up h)
//     MoE:   p = softmax(W_router h); E = top_K(p) (renormalised if the arch says so)
//            x = x + sum_{e in E} p_e W_down,e (silu(W_gate,e h) * W_up,e h)
//                  [+ sigmoid(g . h) * shared_expert(h) for qwen2moe]
//   logits = W_out rmsnorm(x) * output_norm
#include "model/forward.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <string>

#include "core/error.h"
#include "core/fp16.h"
#include "model/ggml_numerics.h"

namespace moelab::model {
namespace {

using quant::Activations;
using quant::QMatrix;

// y = x / sqrt(mean(x^2) + eps) * w, over rows of length n. As ggml: squares
// rounded to f32, summed in double.
void rmsnorm(const float* x, const float* w, float* y, int64_t n, float eps) {
  double ss = 0;
  for (int64_t i = 0; i < n; ++i) ss += double(x[i] * x[i]);
  const float scale = 1.0f / std::sqrt(float(ss / double(n)) + eps);
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] * scale * w[i];
}

// Rotates one head's first n_rot values by position `pos`.
// norm: pairs (2i, 2i+1); neox: pairs (i, i + n_rot/2). theta_i = pos * base^(-2i/n_rot).
// The rotation fuses as ggml-cpu's compiled code does (GCC contracts
// x0*c - x1*s into fma(x0, c, -(x1*s)), likewise the second output).
void rope(float* v, int64_t n_rot, int64_t pos, float base, RopeKind kind) {
  const float theta_scale = std::pow(base, -2.0f / float(n_rot));
  float theta = float(pos);
  for (int64_t i = 0; i < n_rot / 2; ++i, theta *= theta_scale) {
    const float c = std::cos(theta), s = std::sin(theta);
    const int64_t a = kind == RopeKind::norm ? 2 * i : i;
    const int64_t b = kind == RopeKind::norm ? 2 * i + 1 : i + n_rot / 2;
    const float x0 = v[a], x1 = v[b];
    v[a] = std::fma(x0, c, -(x1 * s));
    v[b] = std::fma(x0, s, x1 * c);
  }
}

// Y[n, rows] = X[n, cols] W^T through encoded activations (reused buffer).
void matmul(const QMatrix& w, const float* x, int64_t n, float* y, Activations& act, ThreadPool& pool,
            quant::DotPath path) {
  act.encode(*w.codec, x, n, w.cols, path);
  quant::gemm(w, act, y, &pool);
}

void add_bias(float* y, const float* b, int64_t n, int64_t dim) {
  if (!b) return;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < dim; ++j) y[i * dim + j] += b[j];
}

}  // namespace

void ResidentExperts::acquire(int layer, std::span<const int32_t> ids, std::span<ExpertWeights> out) {
  const LayerWeights& l = weights_.layers[size_t(layer)];
  for (size_t i = 0; i < ids.size(); ++i) out[i] = slice(l, n_expert_, ids[i]);
}

ExpertWeights ResidentExperts::slice(const LayerWeights& l, int64_t n_expert, int32_t e) {
  auto part = [&](const QMatrix& m) {
    const int64_t rows = m.rows / n_expert;
    QMatrix v = m;
    v.rows = rows;
    v.data = m.row(int64_t(e) * rows);
    return v;
  };
  return {part(l.gate_exps), part(l.up_exps), part(l.down_exps)};
}

Forward::Forward(const Config& config, const Weights& weights, ExpertSource& experts, ThreadPool& pool,
                 const ForwardOptions& options)
    : config_(config), weights_(weights), experts_(experts), pool_(pool), options_(options),
      top_k_(options.top_k > 0 ? options.top_k : config.n_expert_used),
      kv_(config.n_layer, options.n_ctx, config.n_head_kv, config.head_dim, options.kv_codec,
          kv::KvRope{config.n_rot, config.rope_freq_base, config.rope == RopeKind::neox}),
      attend_(kv_, config.n_head, std::max<int64_t>(options.n_batch, 1), pool.size()) {
  if (config.is_moe() && (top_k_ < 1 || top_k_ > config.n_expert))
    throw Error("top_k " + std::to_string(top_k_) + " out of range [1, " + std::to_string(config.n_expert) + "]");
  if (options.n_batch < 1) throw Error("n_batch must be >= 1");
  const size_t nb = size_t(options.n_batch);
  const int64_t ff = std::max({config.n_ff, top_k_ * config.n_ff_exp, config.n_ff_shexp, config.n_ff_exp});
  x_.resize(nb * size_t(config.n_embd));
  xn_.resize(nb * size_t(config.n_embd));
  q_.resize(nb * size_t(config.q_dim()));
  k_.resize(nb * size_t(config.kv_dim()));
  v_.resize(nb * size_t(config.kv_dim()));
  attn_.resize(nb * size_t(config.q_dim()));
  proj_.resize(nb * size_t(config.n_embd));
  // llama.cpp's f16-cache attention (exact path below): per-thread scratch.
  scores_.resize(size_t(pool.size()) * size_t(options.n_ctx));
  q16_.resize(size_t(pool.size()) * size_t(config.head_dim));
  p16_.resize(size_t(pool.size()) * size_t(options.n_ctx));
  mixacc_.resize(size_t(pool.size()) * 32 * size_t(config.head_dim));
  gate_.resize(nb * size_t(ff));
  up_.resize(nb * size_t(ff));
  if (config.is_moe()) {
    router_.resize(nb * size_t(config.n_expert));
    sel_ids_.resize(nb * size_t(top_k_));
    sel_w_.resize(nb * size_t(top_k_));
    xe_.resize(nb * size_t(config.n_embd));
    ye_.resize(nb * size_t(config.n_embd));
    uniq_.reserve(size_t(config.n_expert));
    ew_.resize(size_t(config.n_expert));
  }
  last_.resize(size_t(config.n_embd));
  stream_dense_ = !config.is_moe() && experts.streams_dense_ffn();
  speculate_ = (config.is_moe() || stream_dense_) && experts.wants_hidden();
}

void Forward::eval(std::span<const int32_t> tokens, std::span<float> logits, bool all_logits) {
  const Config& c = config_;
  const int64_t n = int64_t(tokens.size());
  if (n == 0) throw Error("eval: no tokens");
  if (n > options_.n_batch)
    throw Error("eval: " + std::to_string(n) + " tokens exceed the batch size " + std::to_string(options_.n_batch));
  if (kv_.n_past() + n > kv_.n_ctx())
    throw Error("eval: context full (" + std::to_string(kv_.n_past()) + " + " + std::to_string(n) + " > " +
                std::to_string(kv_.n_ctx()) + " positions)");
  const size_t n_out = all_logits ? size_t(n) : 1;
  if (logits.size() != n_out * size_t(c.n_vocab))
    throw Error("eval: logits buffer holds " + std::to_string(logits.size()) + " values, need " +
                std::to_string(n_out * size_t(c.n_vocab)));

  // x = embed(tokens)
  const quant::DecodeFn embed_row = weights_.token_embd.codec->decode();
  for (int64_t t = 0; t < n; ++t) {
    const int32_t tok = tokens[size_t(t)];
    if (tok < 0 || tok >= c.n_vocab)
      throw Error("eval: token id " + std::to_string(tok) + " out of range [0, " + std::to_string(c.n_vocab) + ")");
    embed_row(weights_.token_embd.row(tok), x_.data() + t * c.n_embd, c.n_embd);
  }

  for (int layer = 0; layer < int(c.n_layer); ++layer) {
    const LayerWeights& l = weights_.layers[size_t(layer)];
    // x = x + attention(rmsnorm(x))
    // Speculation (decode): the expert source may predict and prefetch from the residual stream.
    const bool speculate = n == 1 && speculate_;
    if (speculate) experts_.on_hidden(layer, true, std::span<const float>(x_.data(), size_t(c.n_embd)));
    for (int64_t t = 0; t < n; ++t) rmsnorm(&x_[size_t(t * c.n_embd)], l.attn_norm, &xn_[size_t(t * c.n_embd)], c.n_embd, c.rms_eps);
    attention(layer, n);
    for (size_t i = 0; i < size_t(n * c.n_embd); ++i) x_[i] += proj_[i];
    if (speculate) experts_.on_hidden(layer, false, std::span<const float>(x_.data(), size_t(c.n_embd)));
    // x = x + ffn(rmsnorm(x))
    for (int64_t t = 0; t < n; ++t) rmsnorm(&x_[size_t(t * c.n_embd)], l.ffn_norm, &xn_[size_t(t * c.n_embd)], c.n_embd, c.rms_eps);
    if (c.is_moe()) ffn_moe(layer, n);
    else ffn_dense(layer, n);
    for (size_t i = 0; i < size_t(n * c.n_embd); ++i) x_[i] += proj_[i];
    if (observer_ && observer_->on_layer) observer_->on_layer(layer, std::span<const float>(x_.data(), size_t(n * c.n_embd)));
  }
  kv_.set_n_past(kv_.n_past() + n);

  // logits = W_out rmsnorm(x) * output_norm, for every token or the last only.
  const int64_t first = all_logits ? 0 : n - 1;
  for (int64_t t = first; t < n; ++t)
    rmsnorm(&x_[size_t(t * c.n_embd)], weights_.output_norm, &xn_[size_t((t - first) * c.n_embd)], c.n_embd, c.rms_eps);
  matmul(weights_.output, xn_.data(), int64_t(n_out), logits.data(), act_, pool_, options_.path);
}

void Forward::attention(int layer, int64_t n) {
  const Config& c = config_;
  const LayerWeights& l = weights_.layers[size_t(layer)];
  const int64_t hd = c.head_dim, q_dim = c.q_dim(), kv_dim = c.kv_dim();
  matmul(l.wq, xn_.data(), n, q_.data(), act_, pool_, options_.path);
  matmul(l.wk, xn_.data(), n, k_.data(), act_, pool_, options_.path);
  matmul(l.wv, xn_.data(), n, v_.data(), act_, pool_, options_.path);
  add_bias(q_.data(), l.bq, n, q_dim);
  add_bias(k_.data(), l.bk, n, kv_dim);
  add_bias(v_.data(), l.bv, n, kv_dim);

  const int64_t pos0 = kv_.n_past();
  for (int64_t t = 0; t < n; ++t) {
    float* q = &q_[size_t(t * q_dim)];
    float* k = &k_[size_t(t * kv_dim)];
    if (c.qk_norm == QkNorm::full) {  // OLMoE: one norm over the whole projection
      rmsnorm(q, l.q_norm, q, q_dim, c.rms_eps);
      rmsnorm(k, l.k_norm, k, kv_dim, c.rms_eps);
    }
    for (int64_t h = 0; h < c.n_head; ++h) {
      if (c.qk_norm == QkNorm::per_head) rmsnorm(q + h * hd, l.q_norm, q + h * hd, hd, c.rms_eps);
      rope(q + h * hd, c.n_rot, pos0 + t, c.rope_freq_base, c.rope);
    }
    for (int64_t h = 0; h < c.n_head_kv; ++h) {
      if (c.qk_norm == QkNorm::per_head) rmsnorm(k + h * hd, l.k_norm, k + h * hd, hd, c.rms_eps);
      rope(k + h * hd, c.n_rot, pos0 + t, c.rope_freq_base, c.rope);
    }
  }
  if (pos0 == 0) kv_.calibrate(layer, q_.data(), k_.data(), n, c.n_head / c.n_head_kv);  // fixed by the first batch
  for (int64_t t = 0; t < n; ++t) kv_.store(layer, pos0 + t, &k_[size_t(t * kv_dim)], &v_[size_t(t * kv_dim)]);

  // Per (token, head): softmax(q . k_j / sqrt(d)) over j <= pos, then sum_j a_j v_j.
  if (kv_.k_codec().name() == "f16" && kv_.v_codec().name() == "f16") {
    // With an f16 cache, attention repeats llama.cpp's (non-flash) arithmetic
    // exactly (ggml_numerics.h): the query rounded to f16, f16 dots in ggml's
    // lanes, its softmax, probabilities rounded to f16 before the f16 value mix.
    const float scale = 1.0f / std::sqrt(float(hd));
    const int64_t group = c.n_head / c.n_head_kv;
    pool_.parallel_for(n * c.n_head, 1, [&](int64_t begin, int64_t end, int thread) {
      float* scores = &scores_[size_t(thread) * size_t(options_.n_ctx)];
      fp16_t* q16 = &q16_[size_t(thread) * size_t(hd)];
      fp16_t* p16 = &p16_[size_t(thread) * size_t(options_.n_ctx)];
      for (int64_t th = begin; th < end; ++th) {
        const int64_t t = th / c.n_head, h = th % c.n_head, hk = h / group;
        const int64_t n_keys = pos0 + t + 1;  // causal: positions 0 .. pos
        const float* q = &q_[size_t(t * q_dim + h * hd)];
        for (int64_t d = 0; d < hd; ++d) q16[d] = f32_to_fp16(q[d]);
        const uint8_t* k0 = kv_.k_head(layer, 0, hk);
        for (int64_t j = 0; j < n_keys; ++j)
          scores[j] =
              ggml::dot_f16(reinterpret_cast<const fp16_t*>(k0 + size_t(j) * kv_.pos_stride_k()), q16, hd) * scale;
        ggml::softmax(scores, n_keys);
        for (int64_t j = 0; j < n_keys; ++j) p16[j] = f32_to_fp16(scores[j]);
        ggml::mix_f16(kv_.v_head(layer, 0, hk), kv_.pos_stride_v(), n_keys, p16, hd,
                      &mixacc_[size_t(thread) * 32 * size_t(hd)], &attn_[size_t(t * q_dim + h * hd)]);
      }
    });
  } else {
    // Other codecs: tiles of keys and values decoded once per block of queries (kv/attention.h).
    attend_.run(layer, q_.data(), n, pos0, attn_.data(), pool_);
  }
  if (observer_ && observer_->on_attention)
    observer_->on_attention(layer, std::span<const float>(attn_.data(), size_t(n * q_dim)));
  matmul(l.wo, attn_.data(), n, proj_.data(), act_, pool_, options_.path);
}

void Forward::ffn_dense(int layer, int64_t n) {
  const Config& c = config_;
  const LayerWeights& l = weights_.layers[size_t(layer)];
  ExpertWeights f{l.ffn_gate, l.ffn_up, l.ffn_down};
  const int32_t whole_ffn = 0;
  if (stream_dense_) experts_.acquire(layer, std::span<const int32_t>(&whole_ffn, 1), std::span<ExpertWeights>(&f, 1));
  matmul(f.gate, xn_.data(), n, gate_.data(), act_, pool_, options_.path);
  matmul(f.up, xn_.data(), n, up_.data(), act_, pool_, options_.path);
  ggml::swiglu(gate_.data(), up_.data(), n * c.n_ff);
  matmul(f.down, gate_.data(), n, proj_.data(), act_, pool_, options_.path);
  if (stream_dense_) experts_.release(layer);
}

// p = softmax(W_router h); keep the top-K (ties broken by lower id), renormalised if the arch does.
void Forward::route(int layer, int64_t n) {
  const Config& c = config_;
  const LayerWeights& l = weights_.layers[size_t(layer)];
  matmul(l.router, xn_.data(), n, router_.data(), act_, pool_, options_.path);
  for (int64_t t = 0; t < n; ++t) {
    float* p = &router_[size_t(t * c.n_expert)];
    const float mx = *std::max_element(p, p + c.n_expert);
    float sum = 0;
    for (int64_t e = 0; e < c.n_expert; ++e) sum += (p[e] = std::exp(p[e] - mx));
    for (int64_t e = 0; e < c.n_expert; ++e) p[e] /= sum;
    int32_t* ids = &sel_ids_[size_t(t * top_k_)];
    float* w = &sel_w_[size_t(t * top_k_)];
    // Partial selection sort: K is small (<= 16) next to E.
    for (int64_t k = 0; k < top_k_; ++k) {
      int32_t best = -1;
      for (int32_t e = 0; e < int32_t(c.n_expert); ++e) {
        bool taken = false;
        for (int64_t j = 0; j < k; ++j) taken |= ids[j] == e;
        if (!taken && (best < 0 || p[e] > p[best])) best = e;
      }
      ids[k] = best;
      w[k] = p[best];
    }
    if (c.expert_weights_norm) {
      float s = 0;
      for (int64_t k = 0; k < top_k_; ++k) s += w[k];
      for (int64_t k = 0; k < top_k_; ++k) w[k] /= s;
    }
    if (observer_ && observer_->on_route)
      observer_->on_route(layer, t, std::span<const int32_t>(ids, size_t(top_k_)), std::span<const float>(w, size_t(top_k_)));
  }
}

void Forward::ffn_moe(int layer, int64_t n) {
  const Config& c = config_;
  const LayerWeights& l = weights_.layers[size_t(layer)];
  const int64_t d = c.n_embd, ff = c.n_ff_exp;
  if (observer_ && observer_->on_ffn_input)
    for (int64_t t = 0; t < n; ++t) observer_->on_ffn_input(layer, t, std::span<const float>(&xn_[size_t(t * d)], size_t(d)));
  route(layer, n);
  std::fill(proj_.begin(), proj_.begin() + n * d, 0.0f);

  if (n == 1) {
    // Decode: the K experts of one token in two parallel passes (gate+up, then down).
    experts_.acquire(layer, std::span<const int32_t>(sel_ids_.data(), size_t(top_k_)),
                     std::span<ExpertWeights>(ew_.data(), size_t(top_k_)));
    thread_local std::vector<QMatrix> mats;
    mats.clear();
    for (int64_t k = 0; k < top_k_; ++k) mats.push_back(ew_[size_t(k)].gate);
    for (int64_t k = 0; k < top_k_; ++k) mats.push_back(ew_[size_t(k)].up);
    act_.encode(*mats[0].codec, xn_.data(), 1, d, options_.path);
    if (ew_[0].gate.codec == ew_[0].up.codec) {
      quant::multi_gemv(mats, act_, gate_.data(), &pool_);  // [2K, ff]: gates then ups
    } else {
      quant::multi_gemv(std::span(mats).first(size_t(top_k_)), act_, gate_.data(), &pool_);
      act2_.encode(*ew_[0].up.codec, xn_.data(), 1, d, options_.path);
      quant::multi_gemv(std::span(mats).last(size_t(top_k_)), act2_, gate_.data() + top_k_ * ff, &pool_);
    }
    const float* up = gate_.data() + top_k_ * ff;
    ggml::swiglu(gate_.data(), up, top_k_ * ff);
    mats.clear();
    for (int64_t k = 0; k < top_k_; ++k) mats.push_back(ew_[size_t(k)].down);
    act2_.encode(*mats[0].codec, gate_.data(), top_k_, ff, options_.path);
    quant::multi_gemv(mats, act2_, ye_.data(), &pool_);  // [K, d]
    for (int64_t k = 0; k < top_k_; ++k)
      for (int64_t j = 0; j < d; ++j) proj_[size_t(j)] += sel_w_[size_t(k)] * ye_[size_t(k * d + j)];
    experts_.release(layer);
  } else {
    // Prefill: each expert the batch needs is fetched once and applied to all its tokens
    // (in chunks of as many experts as the source can hold at once).
    uniq_.assign(sel_ids_.begin(), sel_ids_.begin() + n * top_k_);
    std::sort(uniq_.begin(), uniq_.end());
    uniq_.erase(std::unique(uniq_.begin(), uniq_.end()), uniq_.end());
    experts_.prefetch(layer, uniq_);  // a streaming source reads ahead while earlier chunks compute
    const size_t chunk = std::min(uniq_.size(), experts_.max_acquire());
    thread_local std::vector<int64_t> rows;     // tokens routed to the current expert
    thread_local std::vector<float> weights;  // their router weights
    for (size_t u = 0; u < uniq_.size(); ++u) {
      if (u % chunk == 0) {
        if (u > 0) experts_.release(layer);
        const size_t m = std::min(chunk, uniq_.size() - u);
        experts_.acquire(layer, std::span<const int32_t>(uniq_.data() + u, m), std::span<ExpertWeights>(ew_.data() + u, m));
      }
      rows.clear();
      weights.clear();
      for (int64_t t = 0; t < n; ++t)
        for (int64_t k = 0; k < top_k_; ++k)
          if (sel_ids_[size_t(t * top_k_ + k)] == uniq_[u]) {
            rows.push_back(t);
            weights.push_back(sel_w_[size_t(t * top_k_ + k)]);
          }
      const int64_t m = int64_t(rows.size());
      for (int64_t i = 0; i < m; ++i) std::memcpy(&xe_[size_t(i * d)], &xn_[size_t(rows[size_t(i)] * d)], size_t(d) * sizeof(float));
      matmul(ew_[u].gate, xe_.data(), m, gate_.data(), act_, pool_, options_.path);
      matmul(ew_[u].up, xe_.data(), m, up_.data(), act_, pool_, options_.path);
      ggml::swiglu(gate_.data(), up_.data(), m * ff);
      matmul(ew_[u].down, gate_.data(), m, ye_.data(), act_, pool_, options_.path);
      for (int64_t i = 0; i < m; ++i)
        for (int64_t j = 0; j < d; ++j) proj_[size_t(rows[size_t(i)] * d + j)] += weights[size_t(i)] * ye_[size_t(i * d + j)];
    }
    experts_.release(layer);
  }

  // Shared expert (qwen2moe): proj += sigmoid(g . h) * W_down (silu(W_gate h) * W_up h)
  if (l.gate_shexp.codec) {
    const int64_t fs = c.n_ff_shexp;
    matmul(l.gate_shexp, xn_.data(), n, gate_.data(), act_, pool_, options_.path);
    matmul(l.up_shexp, xn_.data(), n, up_.data(), act_, pool_, options_.path);
    ggml::swiglu(gate_.data(), up_.data(), n * fs);
    matmul(l.down_shexp, gate_.data(), n, ye_.data(), act_, pool_, options_.path);
    for (int64_t t = 0; t < n; ++t) {
      float g = 1.0f;
      if (l.shexp_gate) {
        float s = 0;
        for (int64_t j = 0; j < d; ++j) s += l.shexp_gate[j] * xn_[size_t(t * d + j)];
        g = 1.0f / (1.0f + std::exp(-s));
      }
      for (int64_t j = 0; j < d; ++j) proj_[size_t(t * d + j)] += g * ye_[size_t(t * d + j)];
    }
  }
}

Sampler::Sampler(const SamplerOptions& options) : options_(options), state_(options.seed * 0x9E3779B97F4A7C15ull + 1) {}

int32_t Sampler::sample(std::span<const float> logits) {
  if (logits.empty()) throw Error("sampler: empty logits");
  if (options_.temperature <= 0.0f)
    return int32_t(std::max_element(logits.begin(), logits.end()) - logits.begin());
  candidates_.resize(logits.size());
  for (size_t i = 0; i < logits.size(); ++i) candidates_[i] = {logits[i] / options_.temperature, int32_t(i)};
  std::sort(candidates_.begin(), candidates_.end(), [](auto& a, auto& b) { return a.first > b.first; });
  size_t keep = candidates_.size();
  if (options_.top_k > 0) keep = std::min(keep, size_t(options_.top_k));
  const float mx = candidates_[0].first;
  double sum = 0;
  for (size_t i = 0; i < keep; ++i) sum += (candidates_[i].first = std::exp(candidates_[i].first - mx));
  double cum = 0;
  size_t cut = keep;
  for (size_t i = 0; i < keep; ++i) {
    cum += candidates_[i].first / sum;
    if (cum >= options_.top_p) {
      cut = i + 1;
      break;
    }
  }
  double total = 0;
  for (size_t i = 0; i < cut; ++i) total += candidates_[i].first;
  // xorshift64*: reproducible across platforms for a given seed.
  state_ ^= state_ >> 12;
  state_ ^= state_ << 25;
  state_ ^= state_ >> 27;
  const double u = double((state_ * 0x2545F4914F6CDD1Dull) >> 11) / double(1ull << 53) * total;
  double acc = 0;
  for (size_t i = 0; i < cut; ++i)
    if ((acc += candidates_[i].first) >= u) return candidates_[i].second;
  return candidates_[cut - 1].second;
}

}  // namespace moelab::model
