// The recipes follow the shape of llama.cpp's k-quant mixes (llama-quant.cpp):
// a base codec, more bits for the output head, attn_v and ffn_down in the
// layers that matter most (the first and last eighth, and every third layer
// between), and for `_moe` recipes one step more for everything that is read
// for every token (attention, shared expert, dense FFN) than for the routed
// experts, which dominate the bytes and are read only when picked.
#include "model/recipes.h"

#include <array>
#include <cstdio>

#include "core/error.h"
#include "quant/codec.h"

namespace moelab::model {
namespace {

// One step up the ladder of bit widths.
std::string_view step_up(std::string_view c) {
  static constexpr std::array<std::pair<std::string_view, std::string_view>, 9> kLadder{{
      {"q2_k", "q3_k"}, {"q3_k", "q4_k"}, {"q4_k", "q5_k"}, {"q5_k", "q6_k"}, {"q6_k", "q8_0"},
      {"q4_0", "q5_0"}, {"q5_0", "q8_0"}, {"affine3_g64", "affine4_g64"}, {"affine4_g64", "affine5_g64"}}};
  for (const auto& [from, to] : kLadder)
    if (from == c) return to;
  return c;
}

// A 32-value codec of about the same size, for rows a 256-value block cannot tile.
std::string_view fallback_32(std::string_view c) {
  if (c == "q2_k" || c == "q3_k") return "q4_0";
  if (c == "q4_k") return "q5_0";
  if (c == "q5_k") return "q5_1";
  if (c == "q6_k") return "q8_0";
  return "q8_0";
}

bool more_bits(int layer, int n_layer) {  // first and last eighth, and every third layer between
  return layer < n_layer / 8 || layer >= 7 * n_layer / 8 || (layer - n_layer / 8) % 3 == 2;
}

bool is_ffn_down(Role r) { return r == Role::ffn_down || r == Role::exp_down || r == Role::shexp_down; }
bool is_routed(Role r) { return r == Role::exp_gate || r == Role::exp_up || r == Role::exp_down; }

struct Mix {
  std::string_view base;
  enum Kind : uint8_t { uniform, k_s, k_m, q3_k_m, q2_k } kind;
  bool moe;  // shared tensors one step above routed experts
};

// name -> mix. The recipe list and the rules below are the only two places a recipe appears.
Mix mix_of(std::string_view name) {
  struct Row {
    std::string_view name;
    Mix mix;
  };
  static const Row kRows[] = {
      {"q2_k", {"q2_k", Mix::q2_k, false}},      {"q3_k_m", {"q3_k", Mix::q3_k_m, false}},
      {"q4_k_s", {"q4_k", Mix::k_s, false}},     {"q4_k_m", {"q4_k", Mix::k_m, false}},
      {"q5_k_m", {"q5_k", Mix::k_m, false}},     {"q2_k_moe", {"q2_k", Mix::q2_k, true}},
      {"q3_k_m_moe", {"q3_k", Mix::q3_k_m, true}}, {"q4_k_s_moe", {"q4_k", Mix::k_s, true}},
      {"q4_k_m_moe", {"q4_k", Mix::k_m, true}},  {"q5_k_m_moe", {"q5_k", Mix::k_m, true}},
  };
  for (const Row& r : kRows)
    if (r.name == name) return r.mix;
  return {name, Mix::uniform, false};  // uniform recipes are named after their codec
}

}  // namespace

Role role_of_tensor(std::string_view n) {
  auto has = [&](std::string_view s) { return n.find(s) != std::string_view::npos; };
  if (n.rfind("token_embd.", 0) == 0) return Role::token_embd;
  if (n.rfind("output.", 0) == 0) return Role::output;
  if (has("norm")) return Role::norm;
  if (has("ffn_gate_inp")) return Role::router;  // also ffn_gate_inp_shexp: a gate vector
  if (has(".bias")) return Role::attn_bias;
  if (has("attn_q.")) return Role::attn_q;
  if (has("attn_k.")) return Role::attn_k;
  if (has("attn_v.")) return Role::attn_v;
  if (has("attn_output.")) return Role::attn_output;
  if (has("ffn_gate_exps")) return Role::exp_gate;
  if (has("ffn_up_exps")) return Role::exp_up;
  if (has("ffn_down_exps")) return Role::exp_down;
  if (has("ffn_gate_shexp")) return Role::shexp_gate;
  if (has("ffn_up_shexp")) return Role::shexp_up;
  if (has("ffn_down_shexp")) return Role::shexp_down;
  if (has("ffn_gate.")) return Role::ffn_gate;
  if (has("ffn_up.")) return Role::ffn_up;
  if (has("ffn_down.")) return Role::ffn_down;
  return Role::other;
}

int layer_of_tensor(std::string_view n) {
  int layer = -1;
  if (n.rfind("blk.", 0) != 0 || std::sscanf(n.data() + 4, "%d", &layer) != 1) return -1;
  return layer;
}

std::string_view role_name(Role r) {
  static constexpr std::string_view kNames[] = {
      "token_embd", "output", "norm", "router", "attn_q", "attn_k", "attn_v", "attn_output", "attn_bias",
      "ffn_gate", "ffn_up", "ffn_down", "exp_gate", "exp_up", "exp_down", "shexp_gate", "shexp_up", "shexp_down",
      "other"};
  return kNames[size_t(r)];
}

const std::vector<Recipe>& recipes() {
  static const std::vector<Recipe> kRecipes = {
      {"q2_k", "q2_k; attn_v q4_k (GQA >= 4) or q3_k, ffn_down and attn_output q3_k, output q6_k"},
      {"q3_k_m", "q3_k; attn_v q5_k in the first 2 layers else q4_k, ffn_down q5_k (first 1/16) else q4_k, attn_output q4_k, output q6_k"},
      {"q4_k_s", "q4_k; attn_v q5_k in the first 4 layers, ffn_down q5_k in the first 1/8, output q6_k"},
      {"q4_k_m", "q4_k; attn_v and ffn_down q6_k in half the layers (first/last 1/8 and every third), output q6_k"},
      {"q5_k_m", "q5_k; attn_v and ffn_down q6_k in half the layers, output q6_k"},
      {"q2_k_moe", "q2_k mix for routed experts; attention, shared expert and dense FFN one step up"},
      {"q3_k_m_moe", "q3_k_m mix for routed experts; attention, shared expert and dense FFN one step up"},
      {"q4_k_s_moe", "q4_k_s mix for routed experts; attention, shared expert and dense FFN one step up"},
      {"q4_k_m_moe", "q4_k_m mix for routed experts; attention, shared expert and dense FFN one step up"},
      {"q5_k_m_moe", "q5_k_m mix for routed experts; attention, shared expert and dense FFN one step up"},
      {"f32", "every matrix f32"}, {"f16", "every matrix f16"}, {"bf16", "every matrix bf16"},
      {"q8_0", "every matrix q8_0"}, {"q6_k", "every matrix q6_k"}, {"q5_k", "every matrix q5_k, output q6_k"},
      {"q5_1", "every matrix q5_1, output q6_k"}, {"q5_0", "every matrix q5_0, output q6_k"},
      {"q4_k", "every matrix q4_k, output q6_k"}, {"q4_1", "every matrix q4_1, output q6_k"},
      {"q4_0", "every matrix q4_0, output q6_k"}, {"q3_k", "every matrix q3_k, output q6_k"},
      {"affine8_g64", "MLX affine 8-bit, groups of 64 (moelab-only file)"},
      {"affine4_g64", "MLX affine 4-bit, groups of 64 (moelab-only file)"},
      {"affine3_g64", "MLX affine 3-bit, groups of 64, Kandiga's repack (moelab-only file)"},
      {"affine2_g64", "MLX affine 2-bit, groups of 64 (moelab-only file)"},
      {"tq4", "TurboQuant-style 4-bit: rotation + Lloyd-Max codebook (moelab-only file)"},
      {"tq3", "TurboQuant-style 3-bit, Kandiga's TQ3 (moelab-only file)"},
  };
  return kRecipes;
}

const Recipe& recipe(std::string_view name) {
  std::string known;
  for (const Recipe& r : recipes()) {
    if (r.name == name) return r;
    known += (known.empty() ? "" : ", ") + std::string(r.name);
  }
  throw Error("unknown quantization preset '" + std::string(name) + "' (known: " + known + ")");
}

std::string codec_for(const Recipe& rec, const Config& c, std::string_view name, int64_t row_length, int n_dims) {
  const Role role = role_of_tensor(name);
  if (n_dims < 2 || role == Role::norm || role == Role::router || role == Role::attn_bias) return "";
  const Mix mix = mix_of(rec.name);
  const int layer = layer_of_tensor(name), n_layer = int(c.n_layer);
  std::string_view codec = mix.base;
  const bool float_base = codec == "f32" || codec == "f16" || codec == "bf16";
  if (role == Role::output && !float_base && codec != "q8_0" && quant::codec(codec).ggml_type >= 0) codec = "q6_k";
  switch (mix.kind) {
    case Mix::uniform: break;
    case Mix::k_m:
      if ((role == Role::attn_v || is_ffn_down(role)) && more_bits(layer, n_layer)) codec = "q6_k";
      break;
    case Mix::k_s:
      if (role == Role::attn_v && layer < 4) codec = "q5_k";
      if (is_ffn_down(role) && layer < n_layer / 8) codec = "q5_k";
      break;
    case Mix::q3_k_m:
      if (role == Role::attn_v) codec = layer < 2 ? "q5_k" : "q4_k";
      if (is_ffn_down(role)) codec = layer < n_layer / 16 ? "q5_k" : "q4_k";
      if (role == Role::attn_output) codec = "q4_k";
      break;
    case Mix::q2_k:
      if (role == Role::attn_v) codec = c.n_head / c.n_head_kv >= 4 ? "q4_k" : "q3_k";
      if (is_ffn_down(role) || role == Role::attn_output) codec = "q3_k";
      break;
  }
  if (mix.moe && c.is_moe() && !is_routed(role) && role != Role::output && role != Role::token_embd)
    codec = step_up(codec);
  const quant::Codec& chosen = quant::codec(codec);
  if (row_length % chosen.block_values != 0) codec = fallback_32(codec);
  return std::string(codec);
}

bool recipe_is_gguf_native(const Recipe& rec) { return quant::codec(mix_of(rec.name).base).ggml_type >= 0; }

}  // namespace moelab::model
