#include "experiment/metric_table.h"

#include <cmath>
#include <limits>
#include <sstream>

#include "core/error.h"

namespace moelab::experiment {

const std::vector<Metric>& metrics() {
  static const std::vector<Metric> table = {
      {"decode_tok_s", "tok/s", "decoded tokens / decode wall time (prefill and first sample excluded)"},
      {"prefill_tok_s", "tok/s", "prompt tokens / prefill wall time"},
      {"ttft_ms", "ms", "time to first token: prefill + sampling the first token"},
      {"latency_p50_ms", "ms", "median per-token decode latency"},
      {"latency_p99_ms", "ms", "99th percentile per-token decode latency"},
      {"peak_rss_mb", "MiB", "VmHWM after the repeat (reset before each point; includes baseline_rss_mb)"},
      {"baseline_rss_mb", "MiB", "RSS when the peak was reset, before the engine was built (harness + reference)"},
      {"rss_anon_mb", "MiB", "RssAnon at the end of the repeat: heap, expert cache, KV"},
      {"rss_file_mb", "MiB", "RssFile at the end of the repeat: mapped file pages"},
      {"resident_weights_mb", "MiB", "weights that stay in RAM whatever the budget (attention, embeddings, routers)"},
      {"expert_cache_mb", "MiB", "expert bytes held by the store's cache at the end of the repeat"},
      {"bytes_read", "bytes", "expert bytes read from storage during decode"},
      {"prefill_bytes_read", "bytes", "expert bytes read from storage during prefill"},
      {"read_mb_s", "MiB/s", "bytes_read / decode wall time"},
      {"io_wait_ms", "ms", "time decode waited on expert reads"},
      {"read_ms", "ms", "time the forward pass's own expert reads took during decode (its misses, not prefetches)"},
      {"prefetch_read_ms", "ms", "time the background prefetch reader spent reading during decode (overlaps compute)"},
      {"prefetch_mb", "MiB", "of bytes_read, MiB read by speculation during decode"},
      {"raw_disk_mb_s", "MiB/s", "O_DIRECT 1 MiB sequential reads of a scratch file, measured at run start"},
      {"io_efficiency", "", "read_mb_s / raw_disk_mb_s"},
      {"cache_hit_rate", "", "expert acquisitions served from the cache during decode / all acquisitions"},
      {"spec_precision", "", "prefetched experts the router then chose / prefetched (all depths pooled)"},
      {"spec_recall", "", "chosen experts that had been prefetched / chosen (all depths pooled)"},
      {"cosine_logits", "", "mean over positions of cos(logits, reference logits), teacher-forced"},
      {"cosine_hidden_last", "", "mean cosine of the last layer's hidden state to the reference"},
      {"top1_agree", "", "fraction of positions whose argmax equals the reference's"},
      {"kl_div", "nats", "mean KL(reference || this) of the next-token distributions"},
      {"kv_bytes_per_token", "bytes", "KV cache bytes per position, keys + values of every layer (kv_codec)"},
      {"kv_vs_f16", "", "an f16 cache's bytes per position / kv_bytes_per_token"},
      {"wall_s", "s", "wall time of the whole repeat (context fill, prefill, decode)"},
      {"mem_cap_mb", "MiB", "the point's cgroup memory limit (mem_cap axis resolved); NaN when uncapped"},
      {"cgroup_peak_mb", "MiB",
       "memory.max_usage_in_bytes of the point's cgroup: peak RSS + page cache charged to the point (capped points)"},
      {"cgroup_failcnt", "", "memory.failcnt of the point's cgroup: times the cap forced reclaim (capped points)"},
      {"predicted_tok_s", "tok/s",
       "decode tok/s the perf model predicts for this point's configuration on the run's hardware profile "
       "(sweep --hardware)"},
      {"predicted_hit_rate", "",
       "the point's routing replayed through its own cache policy and size, plus prefetches the routers predicted"},
      {"predicted_bound", "", "what bounds the prediction: 1 io, 2 memory, 3 compute, 4 overhead"},
      {"roofline_tok_s", "tok/s", "decode tok/s with every byte at its tier's peak bandwidth, fully overlapped"},
      {"roofline_fraction", "", "decode_tok_s / roofline_tok_s"},
  };
  return table;
}

int metric_index(std::string_view name) {
  const auto& t = metrics();
  for (size_t i = 0; i < t.size(); ++i)
    if (t[i].name == name) return int(i);
  return -1;
}

std::string metric_label(const Metric& m) {
  return m.unit.empty() ? std::string(m.name) : std::string(m.name) + " (" + std::string(m.unit) + ")";
}

std::string metrics_markdown() {
  std::ostringstream os;
  os << "| metric | unit | definition |\n| --- | --- | --- |\n";
  for (const Metric& m : metrics()) os << "| `" << m.name << "` | " << m.unit << " | " << m.help << " |\n";
  return os.str();
}

MetricValues::MetricValues() : values_(metrics().size(), std::numeric_limits<double>::quiet_NaN()) {}

void MetricValues::set(std::string_view name, double value) {
  const int i = metric_index(name);
  if (i < 0) throw Error("internal: metric '" + std::string(name) + "' is not in the metric table");
  values_[size_t(i)] = value;
}

double MetricValues::get(std::string_view name) const {
  const int i = metric_index(name);
  if (i < 0) throw Error("internal: metric '" + std::string(name) + "' is not in the metric table");
  return values_[size_t(i)];
}

}  // namespace moelab::experiment
