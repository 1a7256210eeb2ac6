// What a decode step touches, in parameters, derived from a model shape
// (lib/model/preset.h Config) or given coarsely (total and active parameters)
// for models without a preset that only run resident.
#pragma once

#include <cstdint>
#include <string>

#include "model/config.h"

namespace moelab::perfmodel {

struct ModelShape {
  std::string name;
  int64_t n_layer = 0;
  // Weights every token reads (attention, router, shared expert, dense FFN
  // layers, LM head); the embedding row a token reads is negligible.
  double resident_params_per_token = 0;
  double resident_params_total = 0;  // + the embedding table when untied (RAM footprint)
  // Routed experts (or a streamed dense FFN as one "expert" per layer).
  int64_t n_moe_layers = 0, n_expert = 0, n_expert_used = 0;
  double expert_params = 0;  // one expert's gate + up + down in one layer

  bool is_moe() const { return n_moe_layers > 0; }
  double active_params(int64_t top_k) const { return resident_params_per_token + double(n_moe_layers * top_k) * expert_params; }
  double total_params() const { return resident_params_total + double(n_moe_layers * n_expert) * expert_params; }
};

// n_dense_layers: leading layers with a dense FFN of width n_ff (DeepSeek-V3: 3).
ModelShape shape_from_config(const std::string& name, const model::Config& c, int64_t n_dense_layers,
                             bool tied_embeddings);
// A dense model whose FFN is streamed layer by layer (mac-code "dense flash
// streaming"): each layer's FFN becomes one expert used by every token.
ModelShape streamed_dense(const ModelShape& dense, const model::Config& c);
// Coarse shape: total and active parameters only, no experts (resident runs).
ModelShape coarse_shape(const std::string& name, double total_params, double active_params);

}  // namespace moelab::perfmodel
