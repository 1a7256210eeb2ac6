#include "engine/engine.h"

#include "core/error.h"
#include "kv/kv_codec.h"
#include "store/pack.h"
#include "store/streaming_experts.h"

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
  if (config.layout != "gguf" && config.layout != "packed")
    throw Error("engine: layout '" + config.layout + "' is not one of gguf, packed");
  const store::CachePolicy policy = store::parse_cache_policy(config.cache);
  if (config.spec_depth < 0 || config.spec_width < 0)
    throw Error("engine: spec_depth and spec_width must be >= 0");
  if (!c.is_moe() && io.kind != store::IoKind::resident && config.layout != "gguf")
    throw Error("engine: dense flash streaming reads the FFN from the GGUF (layout gguf); packs hold routed experts");
  if (io.kind == store::IoKind::resident) {
    experts_ = std::make_unique<model::ResidentExperts>(model_->weights(), c.n_expert);
  } else {
    if (!(config.ram_budget_mb > 0))
      throw Error("engine: io '" + io.name() + "' streams experts and needs ram_budget_mb > 0");
    store::ExpertLayout layout = [&] {
      if (config.layout == "gguf") return store::ExpertLayout::from_gguf(*model_);
      const std::filesystem::path pack = config.pack.empty() ? std::filesystem::path(config.model.string() + ".moepack") : config.pack;
      return store::ExpertLayout::from_pack(store::PackIndex::open(pack, *model_));
    }();
    store::StreamingOptions so;
    so.io = io;
    so.cache = policy;
    so.budget_bytes = uint64_t(config.ram_budget_mb * 1024.0 * 1024.0);
    so.drop_pages = config.drop_pages;
    so.spec_depth = config.spec_depth;
    so.spec_width = config.spec_width;
    so.spec_pre_attention = config.spec_pre_attention;
    so.verify_checksums = config.verify_checksums;
    so.top_k = config.top_k;
    so.path = config.path;
    auto streaming = std::make_unique<store::StreamingExperts>(*model_, std::move(layout), so);
    streaming_ = streaming.get();
    experts_ = std::move(streaming);
  }
  model::ForwardOptions fo;
  fo.n_ctx = config.n_ctx;
  fo.n_batch = config.n_batch;
  fo.top_k = config.top_k;
  fo.kv_codec = config.kv_codec;
  fo.path = config.path;
  forward_ = std::make_unique<model::Forward>(c, model_->weights(), *experts_, *pool_, fo);
}

Engine::~Engine() = default;

store::StoreCounters Engine::counters() const { return streaming_ ? streaming_->counters() : store::StoreCounters{}; }
void Engine::reset_counters() {
  if (streaming_) streaming_->reset_counters();
}
uint64_t Engine::resident_weight_bytes() const {
  uint64_t bytes = model_->footprint().shared_bytes;
  if (streaming_ && !model_->config().is_moe())  // dense flash streaming: the FFN weights are streamed too
    for (const model::LayerWeights& l : model_->weights().layers)
      for (const quant::QMatrix* m : {&l.ffn_gate, &l.ffn_up, &l.ffn_down}) bytes -= uint64_t(m->rows) * m->row_bytes;
  return bytes;
}

}  // namespace moelab::engine
