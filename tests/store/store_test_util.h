// Small synthetic MoE models for the expert-store tests: real GGUF files with
// the architectures' tensor names, shrunk to widths of 256 so they take
// milliseconds to generate and run.
#pragma once

#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "common/paths.h"
#include "core/thread_pool.h"
#include "engine/engine.h"
#include "model/preset.h"
#include "model/synth.h"

namespace moelab::test {

inline model::Config tiny_moe(const std::string& preset, int64_t layers, int64_t experts, int64_t top_k,
                              int64_t width = 256, int64_t ff = 256) {
  model::Config c = model::scaled(model::find_preset(preset).config, layers, experts, 512);
  c.n_embd = width;
  c.n_head = 4;
  c.n_head_kv = 2;
  c.head_dim = 64;
  c.n_rot = 64;
  c.n_ff_exp = ff;
  if (c.n_ff > 0) c.n_ff = ff;
  if (c.n_ff_shexp > 0) c.n_ff_shexp = ff;
  c.n_expert_used = top_k;
  return c;
}

inline std::filesystem::path write_tiny(const model::Config& c, const std::string& name, const std::string& codec = "q4_k",
                                        uint64_t seed = 1) {
  const auto path = temp_file(name);
  if (std::filesystem::exists(path)) return path;
  model::SynthOptions o;
  o.config = c;
  o.codec = codec;
  o.seed = seed;
  ThreadPool pool(2);
  model::write_synthetic_gguf(o, path, pool);
  return path;
}

// Logits of a prompt (prefill in one batch) then `decode` teacher-forced tokens, concatenated.
inline std::vector<float> run_logits(engine::Engine& e, std::span<const int32_t> prompt, std::span<const int32_t> decode) {
  const int64_t v = e.model().config().n_vocab;
  std::vector<float> all, logits(static_cast<size_t>(v));
  e.forward().eval(prompt, logits);
  all.insert(all.end(), logits.begin(), logits.end());
  for (int32_t t : decode) {
    e.forward().eval(std::span<const int32_t>(&t, 1), logits);
    all.insert(all.end(), logits.begin(), logits.end());
  }
  return all;
}

}  // namespace moelab::test
