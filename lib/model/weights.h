// Views of a model's tensors, by role. Nothing here owns weight bytes: the
// views point into a GGUF mapping (or, for experts, into whatever the expert
// store hands out). Norm vectors are always f32 (the loader converts them).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "quant/ops.h"

namespace moelab::model {

using quant::QMatrix;

// One routed expert's SwiGLU MLP.
struct ExpertWeights {
  QMatrix gate;  // [n_ff_exp, n_embd]
  QMatrix up;    // [n_ff_exp, n_embd]
  QMatrix down;  // [n_embd, n_ff_exp]
};

struct LayerWeights {
  const float* attn_norm = nullptr;  // [n_embd]
  QMatrix wq;                        // [n_head * head_dim, n_embd]
  QMatrix wk, wv;                    // [n_head_kv * head_dim, n_embd]
  QMatrix wo;                        // [n_embd, n_head * head_dim]
  const float* bq = nullptr;         // [q_dim] or null (qwen2moe has q/k/v biases)
  const float* bk = nullptr;         // [kv_dim] or null
  const float* bv = nullptr;         // [kv_dim] or null
  const float* q_norm = nullptr;     // [head_dim] (per head) or [q_dim] (full), or null
  const float* k_norm = nullptr;     // [head_dim] or [kv_dim], or null
  const float* ffn_norm = nullptr;   // [n_embd]

  // Dense FFN (n_expert == 0).
  QMatrix ffn_gate, ffn_up;          // [n_ff, n_embd]
  QMatrix ffn_down;                  // [n_embd, n_ff]

  // MoE FFN. The routed experts are stored as GGUF 3-D tensors
  // [n_expert, n_ff_exp, n_embd] (seen here as [n_expert * n_ff_exp, n_embd]);
  // the forward pass reaches them only through an ExpertSource.
  QMatrix router;                    // [n_expert, n_embd]
  QMatrix gate_exps, up_exps;        // [n_expert * n_ff_exp, n_embd]
  QMatrix down_exps;                 // [n_expert * n_embd, n_ff_exp]
  // Shared expert (qwen2moe): always applied, scaled by sigmoid(shexp_gate . x).
  QMatrix gate_shexp, up_shexp;      // [n_ff_shexp, n_embd]
  QMatrix down_shexp;                // [n_embd, n_ff_shexp]
  const float* shexp_gate = nullptr; // [n_embd] or null
};

struct Weights {
  QMatrix token_embd;                // [n_vocab, n_embd]
  const float* output_norm = nullptr;// [n_embd]
  QMatrix output;                    // [n_vocab, n_embd] (token_embd when tied)
  std::vector<LayerWeights> layers;  // [n_layer]
};

// Where the forward pass gets routed experts from. The resident source hands
// out views into the 3-D tensors; the expert store (lib/store) reads them from
// disk under a RAM budget. Views stay valid until release(layer).
class ExpertSource {
 public:
  virtual ~ExpertSource() = default;
  // Makes experts `ids` of `layer` available; out[i] views expert ids[i].
  virtual void acquire(int layer, std::span<const int32_t> ids, std::span<ExpertWeights> out) = 0;
  virtual void release(int /*layer*/) {}
  // A hint from speculation: these experts of `layer` are likely needed soon.
  virtual void prefetch(int /*layer*/, std::span<const int32_t> /*ids*/) {}
  // Most experts one acquire() may ask for; prefill asks in chunks of this.
  virtual size_t max_acquire() const { return SIZE_MAX; }
  // Speculation: when wants_hidden(), decode passes the residual stream of
  // its token at each layer, before attention and after it. Must not change x.
  virtual bool wants_hidden() const { return false; }
  virtual void on_hidden(int /*layer*/, bool /*before_attention*/, std::span<const float> /*x*/) {}
  // Dense flash streaming: a dense model's FFN of each layer comes from the
  // source as "expert 0" (gate, up, down) instead of the resident views.
  virtual bool streams_dense_ffn() const { return false; }
};

// Every expert in RAM (or in the page cache through the GGUF mapping).
class ResidentExperts final : public ExpertSource {
 public:
  ResidentExperts(const Weights& w, int64_t n_expert) : weights_(w), n_expert_(n_expert) {}
  void acquire(int layer, std::span<const int32_t> ids, std::span<ExpertWeights> out) override;
  // The view of one expert inside the layer's 3-D tensors.
  static ExpertWeights slice(const LayerWeights& l, int64_t n_expert, int32_t e);

 private:
  const Weights& weights_;
  int64_t n_expert_;
};

}  // namespace moelab::model
