// Resident set size of this process, from /proc/self/status (MiB).
#pragma once

namespace moelab::metrics {

struct RssSample {
  double peak_mb = 0;  // VmHWM: the high-water mark since start or reset_peak_rss()
  double rss_mb = 0;   // VmRSS
  double anon_mb = 0;  // RssAnon: heap, caches, KV
  double file_mb = 0;  // RssFile: mapped file pages (GGUF views)
};

RssSample read_rss();
// Resets VmHWM to the current RSS (writes 5 to /proc/self/clear_refs), so each
// sweep point reports its own peak. Returns false where the kernel refuses.
bool reset_peak_rss();

}  // namespace moelab::metrics
