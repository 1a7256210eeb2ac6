#include "model/preset.h"

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"

#ifndef MOELAB_SOURCE_DIR
#define MOELAB_SOURCE_DIR "."
#endif

namespace moelab::model {

std::filesystem::path presets_dir() {
  if (const char* env = std::getenv("MOELAB_PRESETS"); env && *env) return env;
  return std::filesystem::path(MOELAB_SOURCE_DIR) / "datasets" / "models";
}

Preset load_preset_file(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) throw Error(path.string() + ": cannot open preset file");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw Error(path.string() + ": invalid JSON: " + e.what());
  }
  auto field = [&](const char* key) -> const nlohmann::json& {
    if (!j.contains(key)) throw Error(path.string() + ": missing field '" + key + "'");
    return j.at(key);
  };
  auto integer = [&](const char* key, bool required = true) -> int64_t {
    if (!required && !j.contains(key)) return 0;
    const auto& v = field(key);
    if (!v.is_number_integer() || v.get<int64_t>() < 0)
      throw Error(path.string() + ": field '" + key + "' must be a non-negative integer");
    return v.get<int64_t>();
  };
  auto number = [&](const char* key) -> double {
    const auto& v = field(key);
    if (!v.is_number()) throw Error(path.string() + ": field '" + key + "' must be a number");
    return v.get<double>();
  };
  auto text = [&](const char* key, bool required = true) -> std::string {
    if (!required && !j.contains(key)) return "";
    const auto& v = field(key);
    if (!v.is_string()) throw Error(path.string() + ": field '" + key + "' must be a string");
    return v.get<std::string>();
  };
  Preset p;
  p.name = text("name");
  p.display_name = text("display_name", false);
  p.source = text("source");
  p.approximation = text("approximation", false);
  p.tied_embeddings = j.value("tied_embeddings", false);
  p.projection_only = j.value("projection_only", false);
  Config& c = p.config;
  c.arch_name = text("arch");
  try {
    c.arch = parse_arch(c.arch_name);
  } catch (const Error& e) {
    throw Error(path.string() + ": field 'arch': " + e.what());
  }
  c.n_vocab = integer("n_vocab");
  c.n_embd = integer("n_embd");
  c.n_layer = integer("n_layer");
  c.n_head = integer("n_head");
  c.n_head_kv = integer("n_head_kv");
  c.head_dim = integer("head_dim");
  c.n_rot = c.head_dim;
  c.n_ff = integer("n_ff");
  c.n_expert = integer("n_expert", false);
  c.n_expert_used = integer("n_expert_used", false);
  c.n_ff_exp = integer("n_ff_exp", false);
  c.n_ff_shexp = integer("n_ff_shexp", false);
  c.rope_freq_base = float(number("rope_freq_base"));
  c.rms_eps = float(number("rms_eps"));
  c.n_ctx_train = integer("context_length");
  if (c.n_embd == 0 || c.n_layer == 0 || c.n_head == 0 || c.n_head_kv == 0 || c.head_dim == 0 || c.n_vocab == 0)
    throw Error(path.string() + ": dimensions must be positive");
  if (c.n_head % c.n_head_kv != 0) throw Error(path.string() + ": n_head must be a multiple of n_head_kv");
  if (c.n_expert > 0 && (c.n_expert_used == 0 || c.n_expert_used > c.n_expert || c.n_ff_exp == 0))
    throw Error(path.string() + ": MoE preset needs 0 < n_expert_used <= n_expert and n_ff_exp > 0");
  apply_arch_rules(c);
  return p;
}

std::vector<std::string> preset_names() {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(presets_dir(), ec))
    if (e.path().extension() == ".json" && e.path().stem() != "schema") names.push_back(e.path().stem().string());
  std::sort(names.begin(), names.end());
  return names;
}

Preset find_preset(const std::string& name_or_path) {
  if (name_or_path.ends_with(".json")) return load_preset_file(name_or_path);
  const auto path = presets_dir() / (name_or_path + ".json");
  if (!std::filesystem::exists(path)) {
    std::string known;
    for (const auto& n : preset_names()) known += (known.empty() ? "" : ", ") + n;
    throw Error("unknown preset '" + name_or_path + "' (known: " + known + ")");
  }
  return load_preset_file(path);
}

Config scaled(const Config& c, int64_t n_layer, int64_t n_expert, int64_t n_vocab) {
  Config s = c;
  if (n_vocab > 0) s.n_vocab = n_vocab;
  if (n_layer > 0) s.n_layer = n_layer;
  if (n_expert > 0) {
    if (!c.is_moe()) throw Error("--experts given for a dense model");
    s.n_expert = n_expert;
    s.n_expert_used = std::min(c.n_expert_used, n_expert);
  }
  return s;
}

}  // namespace moelab::model
