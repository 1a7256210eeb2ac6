// One configured engine: a model, its expert source (resident or streamed from
// storage under a RAM budget) and a forward pass. Every CLI command and every
// sweep point builds its engine from an EngineConfig, so a setting means the
// same thing everywhere.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

#include "core/thread_pool.h"
#include "model/forward.h"
#include "model/loader.h"
#include "store/counters.h"
#include "store/io_strategy.h"

namespace moelab::store {
class StreamingExperts;
}

namespace moelab::engine {

struct EngineConfig {
  std::filesystem::path model;     // GGUF file
  std::string layout = "gguf";     // gguf: experts read from the GGUF tensors; packed: from a .moepack
  std::filesystem::path pack;      // the .moepack for layout=packed (default: <model>.moepack)
  std::string io = "resident";     // see store/io_strategy.h
  std::string cache = "lru";       // none | lru | lfu | least_stale
  double ram_budget_mb = 0;        // expert cache bytes; shared weights are counted apart
  int spec_depth = 0;              // layers ahead whose experts are prefetched (0 = off)
  int spec_width = 0;              // extra candidates per predicted layer
  bool spec_pre_attention = false; // also predict layer l from its input before attention
  bool drop_pages = true;          // buffered io: posix_fadvise(DONTNEED) after each read
  bool verify_checksums = false;   // layout=packed: check every blob's checksum as it is read
  int64_t top_k = 0;               // experts per token; 0 = the model's K
  std::string kv_codec = "f16";    // NAME or K/V, e.g. "q8_0", "tq3/q4_0" (kv/kv_codec.h)
  int threads = 2;
  int64_t n_ctx = 2048, n_batch = 256;
  quant::DotPath path = quant::DotPath::quantized;
};

class Engine {
 public:
  // Validates the config (errors name the setting) and builds everything.
  explicit Engine(const EngineConfig& config);
  ~Engine();

  model::Forward& forward() { return *forward_; }
  const model::Model& model() const { return *model_; }
  const EngineConfig& config() const { return config_; }
  ThreadPool& pool() { return *pool_; }
  // Expert-store counters (all zero for io=resident).
  store::StoreCounters counters() const;
  void reset_counters();
  // Bytes that stay in RAM whatever the budget: attention, norms, embeddings, routers, shared experts.
  uint64_t resident_weight_bytes() const;
  // The streaming expert source, or nullptr for io=resident.
  store::StreamingExperts* streaming() { return streaming_; }

 private:
  EngineConfig config_;
  std::unique_ptr<model::Model> model_;
  std::unique_ptr<ThreadPool> pool_;
  std::unique_ptr<model::ExpertSource> experts_;
  store::StreamingExperts* streaming_ = nullptr;  // experts_ when it streams
  std::unique_ptr<model::Forward> forward_;
};

}  // namespace moelab::engine
