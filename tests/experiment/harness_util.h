// Shared pieces of the harness tests: a tiny qwen3moe preset (every width a
// multiple of 256 so k-quants fit; generated in well under a second), specs
// written to temp files, and the CLI binary and Python venv paths.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "common/paths.h"

namespace moelab::test {

inline std::filesystem::path tiny_preset() {
  const auto p = temp_file("tiny-qwen3moe.json");
  if (!std::filesystem::exists(p)) {
    std::ofstream(p) << R"({"name": "tiny-qwen3moe", "source": "moelab tests", "arch": "qwen3moe",
      "n_vocab": 512, "n_embd": 256, "n_layer": 2, "n_head": 4, "n_head_kv": 2, "head_dim": 64, "n_ff": 512,
      "n_expert": 8, "n_expert_used": 4, "n_ff_exp": 256, "n_ff_shexp": 0, "rope_freq_base": 10000.0,
      "rms_eps": 1e-6, "context_length": 4096})";
  }
  // Generated models go to a per-process cache, so tests never see stale files.
  setenv("MOELAB_MODEL_CACHE", temp_file("model-cache").c_str(), 1);
  return p;
}

// The "model" value of a spec using the tiny preset.
inline std::string tiny_model_json() {
  return R"({"gen": {"preset": ")" + tiny_preset().string() + R"(", "codec": "q8_0", "seed": 7}})";
}

inline std::filesystem::path write_spec(const std::string& name, const std::string& json) {
  const auto p = temp_file(name);
  std::ofstream(p) << json;
  return p;
}

inline std::filesystem::path moelab_binary() { return std::filesystem::path(MOELAB_BINARY_DIR) / "bin" / "moelab"; }

inline std::filesystem::path venv_python() {
  return std::filesystem::path(MOELAB_SOURCE_DIR) / "build" / "venv" / "bin" / "python";
}

// Runs a shell command; returns its exit status (-1 if it did not exit normally).
inline int run_command(const std::string& cmd) {
  const int rc = std::system(cmd.c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

}  // namespace moelab::test
