#include "store/streaming_experts.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "core/error.h"
#include "metrics/timer.h"
#include "core/hash.h"

namespace moelab::store {

namespace {

size_t slots_for(const ExpertLayout& layout, const StreamingOptions& o, int64_t top_k) {
  const uint64_t n = o.budget_bytes / layout.slot_bytes();
  if (n < uint64_t(top_k)) {
    const double mib = 1024.0 * 1024.0;
    char buf[320];
    std::snprintf(buf, sizeof buf,
                  "ram_budget_mb %.1f is too small: it holds %llu experts of %.2f MB (layout %s) but one token needs "
                  "top_k = %lld experts at one layer; the minimum is %.1f MB",
                  double(o.budget_bytes) / mib, (unsigned long long)n, double(layout.slot_bytes()) / mib,
                  layout.name().c_str(), (long long)top_k,
                  std::ceil(double(StreamingExperts::min_budget_bytes(layout, top_k)) / mib * 10) / 10);
    throw Error(buf);
  }
  return size_t(n);
}

}  // namespace

StreamingExperts::StreamingExperts(const model::Model& model, ExpertLayout layout, const StreamingOptions& options)
    : model_(model), layout_(std::move(layout)), options_(options),
      top_k_(!model.config().is_moe() ? 1 : options.top_k > 0 ? options.top_k : model.config().n_expert_used),
      cache_(options.cache, layout_.n_layer(), layout_.n_expert(), layout_.slot_bytes(), slots_for(layout_, options, top_k_)) {
  const model::Config& c = model.config();
  if (options.io.kind == IoKind::resident) throw Error("expert store: io 'resident' does not stream");
  if (options.spec_depth < 0 || options.spec_width < 0)
    throw Error("expert store: spec_depth and spec_width must be >= 0");
  io_ = make_io_backend(options.io, layout_.path(), options.drop_pages);
  pinned_.reserve(cache_.n_slots());
  misses_.reserve(cache_.n_slots());
  waits_.reserve(cache_.n_slots());
  ops_.reserve(cache_.n_slots() * 3);
  spec_.resize(size_t(options.spec_depth + 1));
  // The background reader serves speculation and prefill read-ahead.
  prefetch_io_ = make_io_backend(options.io, layout_.path(), options.drop_pages);
  queue_.reserve(size_t(layout_.n_layer() * layout_.n_expert()));
  taken_.reserve(size_t(layout_.n_layer() * layout_.n_expert()));
  bg_slots_.reserve(cache_.n_slots());
  bg_ops_.reserve(cache_.n_slots() * 3);
  thread_ = std::thread([this] { prefetch_loop(); });
  if (wants_hidden()) {
    xn_.resize(size_t(c.n_embd));
    logits_.resize(size_t(c.n_expert));
    const size_t n_pred = size_t(options.spec_depth + 1) * size_t(c.n_layer);
    predicted_.resize(n_pred);
    for (auto& p : predicted_) p.reserve(size_t(layout_.n_expert()));
    predicted_valid_.assign(n_pred, 0);
  }
}

StreamingExperts::~StreamingExperts() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  queue_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void StreamingExperts::verify(int slot) const {
  const ExpertCache::Slot& s = const_cast<ExpertCache&>(cache_).slot(slot);
  const ExpertPlacement& p = layout_.at(s.layer, s.expert);
  if (!options_.verify_checksums || p.checksum_bytes == 0) return;
  const uint8_t* blob = const_cast<ExpertCache&>(cache_).data(slot) + p.parts[0].slot_offset;
  if (Xxh64::of(blob, size_t(p.checksum_bytes)) != p.checksum)
    throw Error(layout_.path().string() + ": blob of layer " + std::to_string(s.layer) + ", expert " +
                std::to_string(s.expert) + ": checksum mismatch (corrupted pack; re-run moelab pack)");
}

// Reads the experts the slots were assigned (their layer/expert cannot change
// while loading) and checks them. Throws on failure.
void StreamingExperts::read_slots(IoBackend& backend, std::span<const int> slots, bool prefetch) {
  std::vector<ReadOp>& ops = prefetch ? bg_ops_ : ops_;
  ops.clear();
  for (int i : slots) {
    const ExpertCache::Slot& s = cache_.slot(i);
    const ExpertPlacement& p = layout_.at(s.layer, s.expert);
    for (int r = 0; r < p.n_reads; ++r)
      ops.push_back({p.reads[size_t(r)].offset, p.reads[size_t(r)].bytes, p.reads[size_t(r)].need,
                     cache_.data(i) + p.reads[size_t(r)].slot_offset});
  }
  const uint64_t bytes = backend.read(ops);
  bytes_read_ += bytes;
  reads_ += ops.size();
  if (prefetch) {
    prefetch_bytes_ += bytes;
    prefetch_reads_ += ops.size();
  }
  for (int i : slots) verify(i);
}

void StreamingExperts::acquire(int layer, std::span<const int32_t> ids, std::span<model::ExpertWeights> out) {
  const int64_t t0 = metrics::now_ns();
  std::unique_lock lock(mu_);
  current_layer_ = layer;
  if (int64_t(ids.size()) == top_k_ && !predicted_valid_.empty()) {  // decode: score the predictions for this layer
    for (size_t d = 0; d < spec_.size(); ++d) {
      const size_t at = d * size_t(layout_.n_layer()) + size_t(layer);
      if (!predicted_valid_[at]) continue;
      predicted_valid_[at] = 0;
      SpecCounters& sc = spec_[d];
      sc.predicted += predicted_[at].size();
      sc.needed += ids.size();
      for (int32_t e : ids) sc.correct += std::find(predicted_[at].begin(), predicted_[at].end(), e) != predicted_[at].end();
    }
  }
  if (ids.size() > cache_.n_slots())
    throw Error("expert store: " + std::to_string(ids.size()) + " experts asked at once, the cache has " +
                std::to_string(cache_.n_slots()) + " slots");

  misses_.clear();
  waits_.clear();
  const size_t pinned_before = pinned_.size();
  for (int32_t e : ids) {
    int s = cache_.find(layer, e);
    if (s >= 0) {
      ++hits_;
      if (cache_.slot(s).state == ExpertCache::State::loading) waits_.push_back(s);
    } else {
      for (;;) {
        s = cache_.victim(layer, false);
        if (s >= 0) break;
        bool loading = false;
        for (size_t i = 0; i < cache_.n_slots(); ++i) loading |= cache_.slot(int(i)).state == ExpertCache::State::loading;
        if (!loading)
          throw Error("expert store: every cache slot is pinned (" + std::to_string(cache_.n_slots()) + " slots)");
        loaded_cv_.wait(lock);  // a prefetch finishes and frees up a slot
        if ((s = cache_.find(layer, e)) >= 0) break;  // ... or brought this very expert
      }
      if (cache_.slot(s).layer == layer && cache_.slot(s).expert == e) {
        ++hits_;
        if (cache_.slot(s).state == ExpertCache::State::loading) waits_.push_back(s);
      } else {
        ++misses_count_;
        cache_.assign(s, layer, e);
        misses_.push_back(s);
      }
    }
    ExpertCache::Slot& slot = cache_.slot(s);
    ++slot.pins;
    slot.prefetched = false;
    cache_.touch(s);
    pinned_.push_back(s);
  }
  if (decode_layer_ == layer) {
    // Decode reached this layer: its predictions that the router did not pick are
    // now plain cached experts (policy none: gone), so they stop holding slots
    // that speculation for later layers needs.
    decode_layer_ = -1;
    for (size_t i = 0; i < cache_.n_slots(); ++i) {
      ExpertCache::Slot& slot = cache_.slot(int(i));
      if (slot.layer != layer || !slot.prefetched || slot.pins > 0 || slot.state != ExpertCache::State::ready) continue;
      slot.prefetched = false;
      if (cache_.policy() == CachePolicy::none) cache_.drop(int(i));
    }
  }
  lock.unlock();

  auto fail = [&](const std::string& what) {
    std::lock_guard relock(mu_);
    for (size_t i = pinned_before; i < pinned_.size(); ++i) {
      const int s = pinned_[i];
      if (--cache_.slot(s).pins == 0 && cache_.slot(s).state != ExpertCache::State::ready) cache_.drop(s);
    }
    pinned_.resize(pinned_before);
    loaded_cv_.notify_all();
    throw Error(what);
  };
  if (!misses_.empty()) {
    const int64_t r0 = metrics::now_ns();
    try {
      read_slots(*io_, misses_, false);
    } catch (const Error& e) {
      fail(e.what());
    }
    read_ns_ += metrics::now_ns() - r0;
  }
  lock.lock();
  for (int s : misses_) cache_.slot(s).state = ExpertCache::State::ready;
  if (!misses_.empty()) loaded_cv_.notify_all();
  // Experts a prefetch is still bringing: wait; if its read failed, read them here.
  for (int s : waits_) {
    loaded_cv_.wait(lock, [&] { return cache_.slot(s).state != ExpertCache::State::loading; });
    if (cache_.slot(s).state == ExpertCache::State::free) {  // the prefetch failed: read it ourselves
      cache_.slot(s).state = ExpertCache::State::loading;
      lock.unlock();
      const int one[1] = {s};
      try {
        read_slots(*io_, one, false);
      } catch (const Error& e) {
        fail(e.what());
      }
      lock.lock();
      cache_.slot(s).state = ExpertCache::State::ready;
    }
  }
  for (size_t i = 0; i < ids.size(); ++i)
    out[i] = layout_.views(layer, ids[i], cache_.data(pinned_[pinned_before + i]));
  io_wait_ns_ += metrics::now_ns() - t0;
}

void StreamingExperts::release(int /*layer*/) {
  std::lock_guard lock(mu_);
  for (int s : pinned_) {
    ExpertCache::Slot& slot = cache_.slot(s);
    if (--slot.pins == 0 && cache_.policy() == CachePolicy::none && slot.state == ExpertCache::State::ready) cache_.drop(s);
  }
  pinned_.clear();
}

void StreamingExperts::prefetch(int layer, std::span<const int32_t> ids) {
  if (!thread_.joinable()) return;
  {
    std::lock_guard lock(mu_);
    for (int32_t e : ids)
      if (queue_.size() < queue_.capacity()) queue_.push_back({layer, e});
  }
  queue_cv_.notify_one();
}

void StreamingExperts::prefetch_loop() {
  for (;;) {
    std::unique_lock lock(mu_);
    queue_cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
    if (stop_) return;
    taken_.swap(queue_);
    queue_.clear();
    bg_slots_.clear();
    for (const Request& r : taken_) {
      if (cache_.find(r.layer, r.expert) >= 0) continue;
      const int s = cache_.victim(current_layer_, true);
      if (s < 0) break;  // no room without evicting what the forward pass holds or other predictions
      cache_.assign(s, r.layer, r.expert);
      cache_.slot(s).prefetched = true;
      bg_slots_.push_back(s);
    }
    taken_.clear();
    lock.unlock();
    if (bg_slots_.empty()) continue;
    bool ok = true;
    const int64_t r0 = metrics::now_ns();
    try {
      read_slots(*prefetch_io_, bg_slots_, true);
    } catch (const Error& e) {
      ok = false;  // the forward pass reads these itself if it needs them (and reports the error then)
      std::lock_guard relock(mu_);
      prefetch_error_ = e.what();
    }
    lock.lock();
    prefetch_read_ns_ += metrics::now_ns() - r0;
    for (int s : bg_slots_) {
      if (ok) cache_.slot(s).state = ExpertCache::State::ready;
      else if (cache_.slot(s).pins == 0) cache_.drop(s);
      else cache_.slot(s).state = ExpertCache::State::free;  // pinned by a waiting acquire, which re-reads it
    }
    lock.unlock();
    loaded_cv_.notify_all();
  }
}

void StreamingExperts::on_hidden(int layer, bool before_attention, std::span<const float> x) {
  {
    std::lock_guard lock(mu_);
    decode_layer_ = layer;  // the next acquire(layer) is a decode token's
  }
  if (before_attention) {
    if (options_.spec_pre_attention) predict(layer, 0, x);
    return;
  }
  for (int d = 1; d <= options_.spec_depth && layer + d < int(layout_.n_layer()); ++d) predict(layer + d, d, x);
}

// Router of `target` on rmsnorm(x) * ffn_norm(target); prefetches its top K + width experts.
// A dense model needs no prediction: layer `target`'s FFN is certain.
void StreamingExperts::predict(int target, int depth_index, std::span<const float> x) {
  const model::Config& c = model_.config();
  if (!c.is_moe()) {
    const int32_t whole_ffn = 0;
    const size_t at = size_t(depth_index) * size_t(c.n_layer) + size_t(target);
    predicted_[at].assign(1, whole_ffn);
    predicted_valid_[at] = 1;
    prefetch(target, std::span<const int32_t>(&whole_ffn, 1));
    return;
  }
  const model::LayerWeights& lw = model_.weights().layers[size_t(target)];
  double ss = 0;
  for (int64_t i = 0; i < c.n_embd; ++i) ss += double(x[size_t(i)]) * x[size_t(i)];
  const float scale = 1.0f / std::sqrt(float(ss / double(c.n_embd)) + c.rms_eps);
  for (int64_t i = 0; i < c.n_embd; ++i) xn_[size_t(i)] = x[size_t(i)] * scale * lw.ffn_norm[i];
  act_.encode(*lw.router.codec, xn_.data(), 1, c.n_embd, options_.path);
  quant::gemv(lw.router, act_, logits_.data(), nullptr);
  const size_t at = size_t(depth_index) * size_t(c.n_layer) + size_t(target);
  std::vector<int32_t>& pred = predicted_[at];
  pred.clear();
  const int64_t n_pick = std::min<int64_t>(top_k_ + options_.spec_width, c.n_expert);
  for (int64_t k = 0; k < n_pick; ++k) {
    int32_t best = -1;
    for (int32_t e = 0; e < int32_t(c.n_expert); ++e)
      if ((best < 0 || logits_[size_t(e)] > logits_[size_t(best)]) &&
          std::find(pred.begin(), pred.end(), e) == pred.end())
        best = e;
    pred.push_back(best);
  }
  predicted_valid_[at] = 1;
  if (on_predict_) on_predict_(target - depth_index, target, pred);
  prefetch(target, pred);
}

StoreCounters StreamingExperts::counters() const {
  std::lock_guard lock(const_cast<std::mutex&>(mu_));
  StoreCounters c;
  c.bytes_read = bytes_read_.load();
  c.reads = reads_.load();
  c.cache_hits = hits_;
  c.cache_misses = misses_count_;
  c.io_wait_ns = io_wait_ns_;
  c.read_ns = read_ns_;
  c.prefetch_read_ns = prefetch_read_ns_;
  c.cache_bytes = cache_.ready_slots() * cache_.slot_bytes();
  c.cache_budget_bytes = uint64_t(cache_.n_slots()) * cache_.slot_bytes();
  c.prefetch_reads = prefetch_reads_.load();
  c.prefetch_bytes = prefetch_bytes_.load();
  c.spec.assign(spec_.begin() + 1, spec_.end());
  c.spec_pre_attention = spec_[0];
  return c;
}

void StreamingExperts::reset_counters() {
  std::lock_guard lock(mu_);
  bytes_read_ = 0;
  reads_ = 0;
  prefetch_reads_ = 0;
  prefetch_bytes_ = 0;
  hits_ = misses_count_ = 0;
  io_wait_ns_ = read_ns_ = prefetch_read_ns_ = 0;
  for (SpecCounters& s : spec_) s = {};
}

}  // namespace moelab::store
