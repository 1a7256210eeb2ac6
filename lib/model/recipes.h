// Mixed-precision quantization recipes: which codec each tensor gets, by role
// and layer. One table (recipes.cpp) drives `moelab quantize --preset`,
// `--list-presets` and the checks in tests.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "model/config.h"

namespace moelab::model {

// What a tensor does, from llama.cpp's tensor names.
enum class Role : uint8_t {
  token_embd, output, norm, router, attn_q, attn_k, attn_v, attn_output, attn_bias,
  ffn_gate, ffn_up, ffn_down,           // dense FFN
  exp_gate, exp_up, exp_down,           // routed experts
  shexp_gate, shexp_up, shexp_down,     // shared expert
  other,
};
Role role_of_tensor(std::string_view name);
int layer_of_tensor(std::string_view name);  // -1 when not a blk.N tensor
std::string_view role_name(Role role);

struct Recipe {
  std::string_view name;
  std::string_view description;
};
const std::vector<Recipe>& recipes();
const Recipe& recipe(std::string_view name);  // throws listing the known recipes

// The codec `recipe` gives a tensor. `row_length` is ne[0]: when the chosen
// codec's block does not divide it, a 32-value codec of similar size is used
// instead (as llama.cpp does). Returns "" when the tensor keeps its codec
// (1-D tensors, the router).
std::string codec_for(const Recipe& recipe, const Config& config, std::string_view tensor_name, int64_t row_length,
                      int n_dims);
// True when every codec the recipe can produce is a GGUF type (the file loads in llama.cpp).
bool recipe_is_gguf_native(const Recipe& recipe);

}  // namespace moelab::model
