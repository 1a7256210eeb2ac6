#include "experiment/measure.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <random>

#include "core/error.h"
#include "metrics/accuracy.h"
#include "metrics/rss.h"
#include "metrics/timer.h"

namespace moelab::experiment {

namespace {

constexpr double kMiB = 1024.0 * 1024.0;

int32_t argmax(std::span<const float> v) {
  return int32_t(std::max_element(v.begin(), v.end()) - v.begin());
}

// Feeds `tokens` in batches from position 0; logits: [n, n_vocab].
void teacher_forced(engine::Engine& engine, std::span<const int32_t> tokens, std::span<float> logits,
                    const std::function<void(int layer, int64_t pos0, std::span<const float> hidden)>& on_layer) {
  model::Forward& fwd = engine.forward();
  const int64_t n_vocab = fwd.config().n_vocab;
  int64_t pos0 = 0;
  model::ForwardObserver obs;
  obs.on_layer = [&](int layer, std::span<const float> hidden) { on_layer(layer, pos0, hidden); };
  fwd.reset();
  fwd.set_observer(&obs);
  try {
    const int64_t n = int64_t(tokens.size()), batch = engine.config().n_batch;
    for (pos0 = 0; pos0 < n; pos0 += batch) {
      const int64_t m = std::min(batch, n - pos0);
      fwd.eval(tokens.subspan(size_t(pos0), size_t(m)), logits.subspan(size_t(pos0 * n_vocab), size_t(m * n_vocab)),
               true);
    }
  } catch (...) {
    fwd.set_observer(nullptr);
    throw;
  }
  fwd.set_observer(nullptr);
}

store::StoreCounters minus(const store::StoreCounters& a, const store::StoreCounters& b) {
  store::StoreCounters d;
  d.bytes_read = a.bytes_read - b.bytes_read;
  d.reads = a.reads - b.reads;
  d.cache_hits = a.cache_hits - b.cache_hits;
  d.cache_misses = a.cache_misses - b.cache_misses;
  d.io_wait_ns = a.io_wait_ns - b.io_wait_ns;
  d.read_ns = a.read_ns - b.read_ns;
  d.prefetch_read_ns = a.prefetch_read_ns - b.prefetch_read_ns;
  d.prefetch_reads = a.prefetch_reads - b.prefetch_reads;
  d.prefetch_bytes = a.prefetch_bytes - b.prefetch_bytes;
  d.cache_bytes = a.cache_bytes;
  d.spec.resize(a.spec.size());
  for (size_t i = 0; i < a.spec.size(); ++i) {
    const store::SpecCounters z{};
    const store::SpecCounters& y = i < b.spec.size() ? b.spec[i] : z;
    d.spec[i] = {a.spec[i].predicted - y.predicted, a.spec[i].correct - y.correct, a.spec[i].needed - y.needed};
  }
  return d;
}

}  // namespace

double nearest_rank_percentile(std::vector<double> v, double q) {
  if (v.empty()) return std::nan("");
  std::sort(v.begin(), v.end());
  const size_t rank = size_t(std::ceil(q * double(v.size())));
  return v[std::min(v.size() - 1, rank == 0 ? 0 : rank - 1)];
}

std::vector<int32_t> workload_tokens(const Workload& w, const model::Model& m, int64_t n) {
  std::vector<int32_t> base;
  if (!w.prompt.empty()) base = m.tokenizer().encode(w.prompt, /*add_special=*/false, /*parse_special=*/false);
  const int64_t n_vocab = m.config().n_vocab;
  std::vector<int32_t> out;
  out.reserve(size_t(n));
  if (base.empty()) {
    std::mt19937_64 rng(w.seed);
    while (int64_t(out.size()) < n) out.push_back(int32_t(rng() % uint64_t(n_vocab)));
  } else {
    while (int64_t(out.size()) < n) out.push_back(base[out.size() % base.size()]);
  }
  return out;
}

TimedRun run_timed(engine::Engine& engine, std::span<const int32_t> stream, int64_t context_tokens,
                   int64_t prompt_tokens, int64_t decode_tokens) {
  model::Forward& fwd = engine.forward();
  const int64_t n_vocab = fwd.config().n_vocab, batch = engine.config().n_batch;
  if (int64_t(stream.size()) < context_tokens + prompt_tokens) throw Error("internal: workload stream too short");
  std::vector<float> logits(static_cast<size_t>(n_vocab));  // [n_vocab] of the last token
  TimedRun out;
  out.token_latency_ms.reserve(size_t(decode_tokens));  // no allocation inside the decode loop
  const int64_t t_start = metrics::now_ns();
  fwd.reset();
  for (int64_t i = 0; i < context_tokens; i += batch)
    fwd.eval(stream.subspan(size_t(i), size_t(std::min(batch, context_tokens - i))), logits);

  const store::StoreCounters c0 = engine.counters();
  const int64_t t0 = metrics::now_ns();
  for (int64_t i = 0; i < prompt_tokens; i += batch)
    fwd.eval(stream.subspan(size_t(context_tokens + i), size_t(std::min(batch, prompt_tokens - i))), logits);
  const int64_t t_prefill = metrics::now_ns();
  int32_t next = argmax(logits);
  const int64_t t_first = metrics::now_ns();
  const store::StoreCounters c1 = engine.counters();
  for (int64_t i = 0; i < decode_tokens; ++i) {
    const int64_t ts = metrics::now_ns();
    fwd.eval(std::span<const int32_t>(&next, 1), logits);
    next = argmax(logits);
    out.token_latency_ms.push_back(double(metrics::now_ns() - ts) * 1e-6);
  }
  const int64_t t_end = metrics::now_ns();
  const store::StoreCounters c2 = engine.counters();
  const metrics::RssSample rss = metrics::read_rss();

  const store::StoreCounters dec = minus(c2, c1), pre = minus(c1, c0);
  const double decode_s = double(t_end - t_first) * 1e-9;
  MetricValues& m = out.metrics;
  m.set("decode_tok_s", double(decode_tokens) / decode_s);
  m.set("prefill_tok_s", double(prompt_tokens) / (double(t_prefill - t0) * 1e-9));
  m.set("ttft_ms", double(t_first - t0) * 1e-6);
  m.set("latency_p50_ms", nearest_rank_percentile(out.token_latency_ms, 0.50));
  m.set("latency_p99_ms", nearest_rank_percentile(out.token_latency_ms, 0.99));
  m.set("peak_rss_mb", rss.peak_mb);
  m.set("rss_anon_mb", rss.anon_mb);
  m.set("rss_file_mb", rss.file_mb);
  m.set("resident_weights_mb", double(engine.resident_weight_bytes()) / kMiB);
  m.set("expert_cache_mb", double(c2.cache_bytes) / kMiB);
  m.set("bytes_read", double(dec.bytes_read));
  m.set("prefill_bytes_read", double(pre.bytes_read));
  m.set("read_mb_s", double(dec.bytes_read) / kMiB / decode_s);
  m.set("io_wait_ms", double(dec.io_wait_ns) * 1e-6);
  m.set("read_ms", double(dec.read_ns) * 1e-6);
  m.set("prefetch_read_ms", double(dec.prefetch_read_ns) * 1e-6);
  m.set("prefetch_mb", double(dec.prefetch_bytes) / kMiB);
  const uint64_t acquisitions = dec.cache_hits + dec.cache_misses;
  if (acquisitions) m.set("cache_hit_rate", dec.hit_rate());
  uint64_t predicted = 0, correct = 0, needed = 0;
  for (const store::SpecCounters& s : dec.spec) {
    out.spec_precision.push_back(s.precision());
    out.spec_recall.push_back(s.recall());
    predicted += s.predicted, correct += s.correct, needed += s.needed;
  }
  if (predicted) m.set("spec_precision", double(correct) / double(predicted));
  if (needed) m.set("spec_recall", double(correct) / double(needed));
  const kv::KvCache& kv = fwd.kv_cache();
  m.set("kv_bytes_per_token", double(kv.bytes_per_token()));
  m.set("kv_vs_f16", double(kv.n_layer() * kv.n_head_kv() * kv.head_dim() * 2 * 2) / double(kv.bytes_per_token()));
  m.set("wall_s", double(t_end - t_start) * 1e-9);
  out.engine_s = double(t_end - t_start) * 1e-9;
  return out;
}

Reference compute_reference(engine::Engine& engine, std::span<const int32_t> tokens) {
  const model::Config& c = engine.forward().config();
  Reference r;
  r.n_tokens = int64_t(tokens.size());
  r.n_vocab = c.n_vocab;
  r.n_embd = c.n_embd;
  r.n_layer = c.n_layer;
  r.logits.resize(size_t(r.n_tokens * r.n_vocab));
  r.hidden.resize(size_t(r.n_layer * r.n_tokens * r.n_embd));
  teacher_forced(engine, tokens, r.logits, [&](int layer, int64_t pos0, std::span<const float> h) {
    std::copy(h.begin(), h.end(), r.hidden.begin() + (layer * r.n_tokens + pos0) * r.n_embd);
  });
  return r;
}

Accuracy measure_accuracy(engine::Engine& engine, std::span<const int32_t> tokens, const Reference& ref) {
  const model::Config& c = engine.forward().config();
  if (c.n_vocab != ref.n_vocab || c.n_embd != ref.n_embd || c.n_layer != ref.n_layer ||
      int64_t(tokens.size()) != ref.n_tokens)
    throw Error("internal: accuracy against a reference of another shape");
  const int64_t n = ref.n_tokens, d = ref.n_embd, v = ref.n_vocab;
  std::vector<float> logits(size_t(n * v));  // [n_tokens, n_vocab]
  std::vector<double> layer_sum(size_t(ref.n_layer), 0.0);
  teacher_forced(engine, tokens, logits, [&](int layer, int64_t pos0, std::span<const float> h) {
    const int64_t m = int64_t(h.size()) / d;
    for (int64_t t = 0; t < m; ++t)
      layer_sum[size_t(layer)] += metrics::cosine(
          std::span<const float>(&ref.hidden[size_t((layer * n + pos0 + t) * d)], size_t(d)),
          h.subspan(size_t(t * d), size_t(d)));
  });
  Accuracy a = compare_logits(logits, ref);
  for (double s : layer_sum) a.hidden_cosine.push_back(s / double(n));
  return a;
}

Accuracy compare_logits(std::span<const float> logits, const Reference& ref) {
  const int64_t n = ref.n_tokens, v = ref.n_vocab;
  if (int64_t(logits.size()) != n * v) throw Error("internal: logits of another shape than the reference's");
  Accuracy a;
  double cos_sum = 0, kl_sum = 0;
  int64_t agree = 0;
  for (int64_t t = 0; t < n; ++t) {
    const std::span<const float> p(&ref.logits[size_t(t * v)], size_t(v)), q(&logits[size_t(t * v)], size_t(v));
    cos_sum += metrics::cosine(p, q);
    agree += argmax(p) == argmax(q);
    // KL(P || Q) of the softmax distributions, in f64 with max-subtraction.
    const double pm = *std::max_element(p.begin(), p.end()), qm = *std::max_element(q.begin(), q.end());
    double pz = 0, qz = 0;
    for (int64_t i = 0; i < v; ++i) pz += std::exp(double(p[size_t(i)]) - pm), qz += std::exp(double(q[size_t(i)]) - qm);
    const double lpz = std::log(pz), lqz = std::log(qz);
    double kl = 0;
    for (int64_t i = 0; i < v; ++i) {
      const double lp = double(p[size_t(i)]) - pm - lpz, lq = double(q[size_t(i)]) - qm - lqz;
      kl += std::exp(lp) * (lp - lq);
    }
    kl_sum += std::max(0.0, kl);
  }
  a.cosine_logits = cos_sum / double(n);
  a.top1_agree = double(agree) / double(n);
  a.kl_div = kl_sum / double(n);
  return a;
}

}  // namespace moelab::experiment
