#include "metrics/rss.h"

#include <cstdio>
#include <cstring>

namespace moelab::metrics {

RssSample read_rss() {
  RssSample s;
  std::FILE* f = std::fopen("/proc/self/status", "r");
  if (!f) return s;
  char line[256];
  while (std::fgets(line, sizeof line, f)) {
    double kb = 0;
    if (std::sscanf(line, "VmHWM: %lf kB", &kb) == 1) s.peak_mb = kb / 1024;
    else if (std::sscanf(line, "VmRSS: %lf kB", &kb) == 1) s.rss_mb = kb / 1024;
    else if (std::sscanf(line, "RssAnon: %lf kB", &kb) == 1) s.anon_mb = kb / 1024;
    else if (std::sscanf(line, "RssFile: %lf kB", &kb) == 1) s.file_mb = kb / 1024;
  }
  std::fclose(f);
  return s;
}

bool reset_peak_rss() {
  std::FILE* f = std::fopen("/proc/self/clear_refs", "w");
  if (!f) return false;
  const bool ok = std::fputs("5", f) >= 0;
  return std::fclose(f) == 0 && ok;
}

}  // namespace moelab::metrics
