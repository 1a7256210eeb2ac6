// Hyper-parameters of a model, read from GGUF metadata under the same keys
// llama.cpp uses ("<arch>.embedding_length", ...), plus the per-architecture
// choices llama.cpp hard-codes (RoPE ordering, router renormalisation, q/k norms).
#pragma once

#include <cstdint>
#include <string>

namespace moelab::model {

enum class Arch : uint8_t { llama, qwen3moe, qwen2moe, olmoe };
// llama.cpp's rope types: NORM rotates adjacent pairs (2i, 2i+1), NEOX rotates (i, i + d/2).
enum class RopeKind : uint8_t { norm, neox };
// Where q/k RMSNorms apply: per head over head_dim (Qwen3), or over the whole projection (OLMoE).
enum class QkNorm : uint8_t { none, per_head, full };

struct Config {
  Arch arch = Arch::llama;
  std::string arch_name;        // GGUF general.architecture
  int64_t n_vocab = 0;
  int64_t n_embd = 0;           // hidden size
  int64_t n_layer = 0;
  int64_t n_head = 0, n_head_kv = 0;
  int64_t head_dim = 0;         // key_length (n_embd / n_head unless stated)
  int64_t n_ff = 0;             // dense FFN width (0 for all-MoE models)
  int64_t n_ctx_train = 0;
  int64_t n_expert = 0;         // 0 = dense
  int64_t n_expert_used = 0;    // the model's top-K
  int64_t n_ff_exp = 0;         // routed expert FFN width
  int64_t n_ff_shexp = 0;       // shared expert width (qwen2moe), 0 if none
  int64_t n_rot = 0;            // rotary dims (= head_dim unless stated)
  float rope_freq_base = 10000.0f;
  float rms_eps = 1e-5f;
  RopeKind rope = RopeKind::norm;
  QkNorm qk_norm = QkNorm::none;
  bool expert_weights_norm = false;  // renormalise the top-K router weights to sum 1

  bool is_moe() const { return n_expert > 0; }
  int64_t q_dim() const { return n_head * head_dim; }
  int64_t kv_dim() const { return n_head_kv * head_dim; }
};

Arch parse_arch(const std::string& name);  // throws moelab::Error naming the known ones
// Sets what llama.cpp hard-codes per architecture: RoPE ordering, q/k norms,
// router renormalisation.
void apply_arch_rules(Config& c);
const char* arch_name(Arch arch);

}  // namespace moelab::model
