// Named shapes of published models (datasets/models/*.json), scalable to fewer
// layers or experts so that a run fits this machine while every per-layer
// dimension stays true to the published model.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "model/config.h"

namespace moelab::model {

struct Preset {
  std::string name, display_name, source, approximation;
  Config config;            // arch, dims, rope, eps (n_vocab included)
  bool tied_embeddings = false;
  bool projection_only = false;  // shape used for projection only, never generated
};

// Reads one preset file; errors name the file and the JSON field.
Preset load_preset_file(const std::filesystem::path& path);
// Finds `name` (a preset name or a path to a .json file) under datasets/models.
Preset find_preset(const std::string& name_or_path);
std::vector<std::string> preset_names();
std::filesystem::path presets_dir();  // $MOELAB_PRESETS or <source>/datasets/models

// The same shape with fewer layers, experts or vocabulary entries (0 = keep);
// every per-layer width stays true. n_expert_used is clamped to the new
// expert count. A smaller vocabulary keeps test models small.
Config scaled(const Config& c, int64_t n_layer, int64_t n_expert, int64_t n_vocab = 0);

}  // namespace moelab::model
