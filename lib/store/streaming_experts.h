// Routed experts streamed from storage under a RAM budget: an ExpertSource
// built from a layout (where expert bytes live), an I/O backend (how they are
// read) and a cache (which stay). Speculation runs the routers of the next
// layers on the current hidden state and prefetches their experts on a
// background thread while the forward pass computes. Every path hands the
// forward pass the same bytes, so logits never depend on these settings.
#pragma once

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "model/loader.h"
#include "quant/ops.h"
#include "store/counters.h"
#include "store/expert_cache.h"
#include "store/expert_layout.h"
#include "store/io_backend.h"
#include "store/io_strategy.h"

namespace moelab::store {

struct StreamingOptions {
  IoStrategy io{IoKind::direct, 1};
  CachePolicy cache = CachePolicy::lru;
  uint64_t budget_bytes = 0;     // expert cache (slab) bytes
  bool drop_pages = true;
  int spec_depth = 0, spec_width = 0;
  bool spec_pre_attention = false;
  bool verify_checksums = false; // packed: check each blob as it is read
  int64_t top_k = 0;             // the forward pass's K (0 = the model's)
  quant::DotPath path = quant::DotPath::quantized;  // speculation's router dots
};

class StreamingExperts final : public model::ExpertSource {
 public:
  StreamingExperts(const model::Model& model, ExpertLayout layout, const StreamingOptions& options);
  ~StreamingExperts() override;

  void acquire(int layer, std::span<const int32_t> ids, std::span<model::ExpertWeights> out) override;
  void release(int layer) override;
  void prefetch(int layer, std::span<const int32_t> ids) override;
  // Prefill asks for half the slots at a time, so the background reader can
  // bring the next experts while the forward pass computes on these.
  size_t max_acquire() const override { return std::max<size_t>(size_t(top_k_), cache_.n_slots() / 2); }
  bool wants_hidden() const override { return options_.spec_depth > 0 || options_.spec_pre_attention; }
  bool streams_dense_ffn() const override { return !model_.config().is_moe(); }
  void on_hidden(int layer, bool before_attention, std::span<const float> x) override;

  StoreCounters counters() const;
  void reset_counters();
  // Called on the forward thread with each prediction speculation makes (at
  // layer `at_layer`, for layer `target`, the experts it asks the prefetcher
  // for), so the cache can be replayed with its prefetches (experiment/predict).
  using PredictionObserver = std::function<void(int at_layer, int target, std::span<const int32_t> ids)>;
  void set_prediction_observer(PredictionObserver observer) { on_predict_ = std::move(observer); }
  const ExpertLayout& layout() const { return layout_; }
  // Smallest budget that holds the top_k experts one token needs at one layer.
  static uint64_t min_budget_bytes(const ExpertLayout& layout, int64_t top_k) { return uint64_t(top_k) * layout.slot_bytes(); }

 private:
  struct Request {
    int32_t layer, expert;
  };
  void predict(int target, int depth_index, std::span<const float> x);
  void read_slots(IoBackend& backend, std::span<const int> slots, bool prefetch);
  void verify(int slot) const;
  void prefetch_loop();

  const model::Model& model_;
  ExpertLayout layout_;
  StreamingOptions options_;
  int64_t top_k_;
  ExpertCache cache_;
  std::unique_ptr<IoBackend> io_;        // the forward pass's reads
  std::unique_ptr<IoBackend> prefetch_io_;  // the background thread's

  std::mutex mu_;
  std::condition_variable loaded_cv_, queue_cv_;
  std::vector<int> pinned_;              // slots pinned until release
  std::vector<int> misses_, waits_;      // scratch of acquire()
  std::vector<ReadOp> ops_;              // scratch of the foreground reads
  int current_layer_ = 0;
  int decode_layer_ = -1;                // layer whose next acquire comes from decode (set by on_hidden)

  // Speculation (forward thread only).
  std::vector<float> xn_, logits_;
  quant::Activations act_;
  std::vector<std::vector<int32_t>> predicted_;  // [(spec_depth + 1) * n_layer]: index 0 = pre-attention
  std::vector<uint8_t> predicted_valid_;
  PredictionObserver on_predict_;

  // Prefetch thread.
  std::vector<Request> queue_, taken_;
  std::vector<int> bg_slots_;
  std::vector<ReadOp> bg_ops_;
  bool stop_ = false;
  std::thread thread_;

  // Counters (under mu_ unless atomic).
  std::atomic<uint64_t> bytes_read_{0}, reads_{0}, prefetch_reads_{0}, prefetch_bytes_{0};
  uint64_t hits_ = 0, misses_count_ = 0;
  int64_t io_wait_ns_ = 0, read_ns_ = 0, prefetch_read_ns_ = 0;
  std::vector<SpecCounters> spec_;  // [spec_depth + 1]: index 0 = pre-attention
  std::string prefetch_error_;
};

}  // namespace moelab::store
