#include "engine/engine.h"

#include "core/error.h"
#include "kv/kv_codec.h"

namespace moelab::engine {

Engine::Engine(const EngineConfig& config) : config_(config) {
  const store::IoStrategy io = store::parse_io_strategy(config.io);
  kv::parse_kv_codec(config.kv_codec);  // a bad setting fails before the model loads
  if (config.threads < 1) throw Error("engine: threads must be >= 1, got " + std::to_string(config.threads));
  model_ = model::Model::load(config.model);
  const model::Config& c = model_->config();
  if (config.top_k < 0 || (c.is_moe() && config.top_k > c.n_expert_used))
    throw Error("engine: top_k " + std::to_string(config.top_k) + " must be in 0.." + std::to_string(c.n_expert_used) +
                " (the model's K; 0 = the model's K)");
  pool_ = std::make_unique<ThreadPool>(config.threads);
  if (io.kind != store::IoKind::resident)
    throw Error("engine: io '" + io.name() + "' is not available yet (expert store pending)");
  experts_ = std::make_unique<model::ResidentExperts>(model_->weights(), c.n_expert);
  model::ForwardOptions fo;
  fo.n_ctx = config.n_ctx;
  fo.n_batch = config.n_batch;
  fo.top_k = config.top_k;
  fo.kv_codec = config.kv_codec;
  fo.path = config.path;
  forward_ = std::make_unique<model::Forward>(c, model_->weights(), *experts_, *pool_, fo);
}

Engine::~Engine() = default;

store::StoreCounters Engine::counters() const { return {}; }
void Engine::reset_counters() {}
uint64_t Engine::resident_weight_bytes() const { return model_->footprint().shared_bytes; }

}  // namespace moelab::engine
