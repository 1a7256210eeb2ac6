// Synthetic models written as real GGUF files that llama.cpp can load: the
// metadata keys, tensor names and shapes llama.cpp expects for the
// architecture, a byte-level BPE vocabulary, and weights drawn from a seeded
// generator (Gaussian, or heavy-tailed with outlier input channels). Router
// rows get a tunable norm skew so that some experts are more popular than
// others, as in trained MoE models.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>

#include "core/thread_pool.h"
#include "model/config.h"

namespace moelab::model {

enum class WeightDist : uint8_t { gaussian, heavy };

struct SynthOptions {
  Config config;
  std::string name = "moelab-synthetic";
  std::string codec = "q4_k";    // codec of every 2-D weight except the router (f32, as llama.cpp keeps it)
  uint64_t seed = 1;
  WeightDist dist = WeightDist::gaussian;
  double student_nu = 4.0;       // heavy: Student-t degrees of freedom
  int outlier_channels = 8;      // heavy: input channels scaled by outlier_scale
  float outlier_scale = 10.0f;
  double router_skew = 0.5;      // log-normal sigma of router row norms (0 = uniform popularity)
  bool tied_embeddings = false;
};

// Writes the model to `path` (through a temporary file renamed into place).
// `progress(done_bytes, total_bytes)` is called as tensors are generated.
void write_synthetic_gguf(const SynthOptions& options, const std::filesystem::path& path, ThreadPool& pool,
                          const std::function<void(uint64_t, uint64_t)>& progress = {});

// The GPT-2 byte-to-unicode map: the printable string each byte becomes in a
// byte-level BPE vocabulary (shared with the tokenizer).
std::string byte_to_unicode(uint8_t byte);

}  // namespace moelab::model
