// The forward pass of a decoder-only transformer with optional MoE FFNs.
// One Forward object holds the per-sequence state (KV cache, scratch
// buffers sized once for the largest batch), so the decode loop allocates
// nothing after construction.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "core/fp16.h"
#include "core/thread_pool.h"
#include "kv/attention.h"
#include "kv/kv_cache.h"
#include "model/config.h"
#include "model/weights.h"

namespace moelab::model {

struct ForwardOptions {
  int64_t n_ctx = 2048;          // KV cache positions
  int64_t n_batch = 512;         // most tokens per eval() call
  int64_t top_k = 0;             // experts per token; 0 = the model's own K
  quant::DotPath path = quant::DotPath::quantized;
  std::string kv_codec = "f16";  // llama.cpp's default KV type; "name" or "k/v" (kv/kv_codec.h)
};

// Observers see intermediate states; they never change results.
struct ForwardObserver {
  // After layer `layer`, hidden states of the batch: [n_tokens, n_embd].
  std::function<void(int layer, std::span<const float> hidden)> on_layer;
  // Attention output of layer `layer` (before the output projection): [n_tokens, n_head * head_dim].
  std::function<void(int layer, std::span<const float> attn)> on_attention;
  // Router choice of one token at one layer (ids and weights after top-K).
  std::function<void(int layer, int64_t token, std::span<const int32_t> ids, std::span<const float> weights)>
      on_route;
  // Router logits of one token at one layer: [n_expert] (for speculation).
  std::function<void(int layer, int64_t token, std::span<const float> hidden_in)> on_ffn_input;
};

class Forward {
 public:
  Forward(const Config& config, const Weights& weights, ExpertSource& experts, ThreadPool& pool,
          const ForwardOptions& options);

  // Runs `tokens` at positions n_past() .. n_past() + n - 1, appending to the
  // KV cache. logits: [n, n_vocab] when all_logits, else [1, n_vocab] for the last token.
  void eval(std::span<const int32_t> tokens, std::span<float> logits, bool all_logits = false);
  int64_t n_past() const { return kv_.n_past(); }
  void reset() { kv_.set_n_past(0); }
  kv::KvCache& kv_cache() { return kv_; }
  const Config& config() const { return config_; }
  int64_t top_k() const { return top_k_; }
  void set_observer(const ForwardObserver* observer) { observer_ = observer; }

 private:
  void attention(int layer, int64_t n);
  void ffn_dense(int layer, int64_t n);
  void ffn_moe(int layer, int64_t n);
  void route(int layer, int64_t n);

  const Config& config_;
  const Weights& weights_;
  ExpertSource& experts_;
  ThreadPool& pool_;
  ForwardOptions options_;
  int64_t top_k_;
  kv::KvCache kv_;
  kv::Attention attend_;        // scratch per thread, sized for n_batch tokens over n_ctx keys
  const ForwardObserver* observer_ = nullptr;
  bool speculate_ = false;      // experts_.wants_hidden()
  bool stream_dense_ = false;   // dense FFN weights come from experts_ (dense flash streaming)

  // Scratch, sized for n_batch tokens at construction.
  std::vector<float> x_;        // [n_batch, n_embd] residual stream
  std::vector<float> xn_;       // [n_batch, n_embd] normed input of the current block
  std::vector<float> q_;        // [n_batch, q_dim]
  std::vector<float> k_, v_;    // [n_batch, kv_dim]
  std::vector<float> attn_;     // [n_batch, q_dim] attention output per head
  std::vector<float> proj_;     // [n_batch, n_embd] output projection / FFN output
  std::vector<float> scores_;   // [n_threads, n_ctx] attention scores per thread (f16 cache)
  std::vector<fp16_t> q16_;     // [n_threads, head_dim] query in f16 (f16 cache)
  std::vector<fp16_t> p16_;     // [n_threads, n_ctx] probabilities in f16 (f16 cache)
  std::vector<float> mixacc_;   // [n_threads, 32 * head_dim] value-mix lanes (f16 cache)
  std::vector<float> gate_, up_;// [n_batch, max(n_ff, top_k * n_ff_exp, n_ff_shexp)]
  std::vector<float> router_;   // [n_batch, n_expert] router logits -> probabilities
  std::vector<int32_t> sel_ids_;// [n_batch, top_k]
  std::vector<float> sel_w_;    // [n_batch, top_k]
  std::vector<float> xe_;       // [n_batch, n_embd] tokens gathered for one expert
  std::vector<float> ye_;       // [n_batch, n_embd] their expert outputs
  std::vector<int32_t> uniq_;   // [n_expert] experts used by the batch
  std::vector<ExpertWeights> ew_;  // [n_expert]
  std::vector<float> last_;     // [n_embd] last token's final hidden state
  quant::Activations act_;      // activations encoded for one weight codec
  quant::Activations act2_;
};

// Sampling over one row of logits.
struct SamplerOptions {
  float temperature = 0.0f;  // 0 = greedy
  float top_p = 1.0f;
  int top_k = 0;             // 0 = all
  uint64_t seed = 0;
};
class Sampler {
 public:
  explicit Sampler(const SamplerOptions& options);
  int32_t sample(std::span<const float> logits);

 private:
  SamplerOptions options_;
  uint64_t state_;
  std::vector<std::pair<float, int32_t>> candidates_;
};

}  // namespace moelab::model
