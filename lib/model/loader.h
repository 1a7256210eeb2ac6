// Loads a GGUF model: hyper-parameters from metadata (llama.cpp's keys),
// tensors by role (llama.cpp's names) as zero-copy views into the mapping.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "gguf/gguf.h"
#include "model/config.h"
#include "model/tokenizer.h"
#include "model/weights.h"

namespace moelab::model {

// Reads the hyper-parameters; errors name the file and the missing or bad key.
Config config_from_gguf(const gguf::File& file);
// The tokenizer.ggml.* vocabulary, as llama.cpp reads it.
Vocab vocab_from_gguf(const gguf::File& file);

class Model {
 public:
  static std::unique_ptr<Model> load(const std::filesystem::path& path);
  static std::unique_ptr<Model> from_file(gguf::File file);

  const gguf::File& file() const { return file_; }
  const Config& config() const { return config_; }
  const Weights& weights() const { return weights_; }
  // Built on first use from the file's vocabulary.
  const Tokenizer& tokenizer() const;

  // Bytes by role, for `inspect` and the perf model: shared (attention, norms,
  // embeddings, router, shared expert) vs routed experts, and what one token
  // reads at top-K.
  struct Footprint {
    uint64_t shared_bytes = 0;        // everything that stays resident
    uint64_t expert_bytes = 0;        // all routed experts
    uint64_t expert_bytes_each = 0;   // one expert of one layer (gate + up + down)
    uint64_t active_bytes_per_token(int64_t n_layer, int64_t top_k) const {
      return shared_bytes + uint64_t(n_layer * top_k) * expert_bytes_each;
    }
  };
  Footprint footprint() const;

 private:
  explicit Model(gguf::File file);
  QMatrix matrix(const std::string& name, bool required = true) const;
  const float* vector(const std::string& name, int64_t expected_len, bool required = true);

  gguf::File file_;
  Config config_;
  Weights weights_;
  std::vector<std::unique_ptr<std::vector<float>>> vectors_;  // 1-D tensors converted to f32
  mutable std::unique_ptr<Tokenizer> tokenizer_;
};

}  // namespace moelab::model
