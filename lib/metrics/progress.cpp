#include "metrics/progress.h"

#include <unistd.h>

#include <cstdio>

#include "metrics/timer.h"

namespace moelab::metrics {

namespace {
constexpr int64_t kRedrawNs = 250'000'000;       // terminal: 4 redraws a second
constexpr int64_t kLogLineNs = 10'000'000'000;   // log file: a line every 10 s

std::string duration(double s) {
  char buf[32];
  if (s < 90) std::snprintf(buf, sizeof buf, "%.0f s", s);
  else if (s < 5400) std::snprintf(buf, sizeof buf, "%.1f min", s / 60);
  else std::snprintf(buf, sizeof buf, "%.1f h", s / 3600);
  return buf;
}
}  // namespace

Progress::Progress(std::string label, double total, std::string unit)
    : label_(std::move(label)), unit_(std::move(unit)), total_(total), start_ns_(now_ns()), tty_(isatty(2)) {}

double Progress::elapsed_s() const { return double(now_ns() - start_ns_) * 1e-9; }

void Progress::update(double done, const std::string& note) {
  const int64_t t = now_ns();
  if (done < total_ && t - last_print_ns_ < (tty_ ? kRedrawNs : kLogLineNs)) return;
  last_print_ns_ = t;
  print(done, note, false);
}

void Progress::finish(const std::string& note) { print(total_, note, true); }

void Progress::print(double done, const std::string& note, bool final) {
  const double el = elapsed_s();
  const double eta = done > 0 && done < total_ ? el * (total_ - done) / done : 0;
  const double pct = total_ > 0 ? 100.0 * done / total_ : 100.0;
  std::fprintf(stderr, "%s%s: %.6g/%.6g%s%s (%3.0f%%)  elapsed %s  ETA %s%s%s%s", tty_ ? "\r\033[K" : "",
               label_.c_str(), done, total_, unit_.empty() ? "" : " ", unit_.c_str(), pct, duration(el).c_str(),
               duration(eta).c_str(), note.empty() ? "" : "  ", note.c_str(), (final || !tty_) ? "\n" : "");
  std::fflush(stderr);
}

}  // namespace moelab::metrics
