#include "perfmodel/shape.h"

#include <algorithm>

#include "core/error.h"

namespace moelab::perfmodel {

ModelShape shape_from_config(const std::string& name, const model::Config& c, int64_t n_dense_layers,
                             bool tied_embeddings) {
  ModelShape s;
  s.name = name;
  s.n_layer = c.n_layer;
  const double d = double(c.n_embd);
  // q, k, v, o projections: d*q_dim + 2*d*kv_dim + q_dim*d.
  const double attn = d * double(c.q_dim()) * 2 + 2 * d * double(c.kv_dim());
  const double head = double(c.n_vocab) * d;  // LM head (or the tied embedding read as the head)
  const double per_layer_resident = attn;
  int64_t moe_layers = 0;
  double dense_ffn_total = 0;
  if (c.is_moe()) {
    const int64_t dense = std::min<int64_t>(n_dense_layers, c.n_layer);
    moe_layers = c.n_layer - dense;
    dense_ffn_total = double(dense) * 3 * d * double(c.n_ff);
    s.n_moe_layers = moe_layers;
    s.n_expert = c.n_expert;
    s.n_expert_used = c.n_expert_used;
    s.expert_params = 3 * d * double(c.n_ff_exp);
  } else {
    dense_ffn_total = double(c.n_layer) * 3 * d * double(c.n_ff);
  }
  // Per MoE layer: router d x n_expert, shared expert 3 d n_ff_shexp plus its d-wide gate.
  const double moe_resident = c.is_moe()
                                  ? double(moe_layers) * (d * double(c.n_expert) + 3 * d * double(c.n_ff_shexp) +
                                                          (c.n_ff_shexp > 0 ? d : 0))
                                  : 0;
  s.resident_params_per_token = double(c.n_layer) * per_layer_resident + dense_ffn_total + moe_resident + head;
  s.resident_params_total = s.resident_params_per_token + (tied_embeddings ? 0 : head);
  return s;
}

ModelShape streamed_dense(const ModelShape& dense, const model::Config& c) {
  if (c.is_moe()) throw Error("streamed dense FFN applies to dense models only (" + dense.name + " is MoE)");
  ModelShape s = dense;
  const double ffn = 3 * double(c.n_embd) * double(c.n_ff);
  s.resident_params_per_token -= double(c.n_layer) * ffn;
  s.resident_params_total -= double(c.n_layer) * ffn;
  s.n_moe_layers = c.n_layer;
  s.n_expert = 1;
  s.n_expert_used = 1;
  s.expert_params = ffn;
  return s;
}

ModelShape coarse_shape(const std::string& name, double total_params, double active_params) {
  if (!(active_params > 0) || !(total_params >= active_params))
    throw Error(name + ": coarse shape needs 0 < active_params <= total_params");
  ModelShape s;
  s.name = name;
  s.resident_params_per_token = active_params;
  s.resident_params_total = total_params;
  return s;
}

}  // namespace moelab::perfmodel
