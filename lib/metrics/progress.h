// Progress of a long operation on stderr: done/total, elapsed and ETA,
// redrawn at most a few times a second (one line per update when stderr is
// not a terminal, so CI logs stay readable).
#pragma once

#include <cstdint>
#include <string>

namespace moelab::metrics {

class Progress {
 public:
  Progress(std::string label, double total, std::string unit = "");
  // Reports `done` units finished; prints when enough time has passed or done == total.
  void update(double done, const std::string& note = "");
  void finish(const std::string& note = "");
  void set_total(double total) { total_ = total; }
  double elapsed_s() const;

 private:
  void print(double done, const std::string& note, bool final);
  std::string label_, unit_;
  double total_;
  int64_t start_ns_, last_print_ns_ = 0;
  bool tty_;
};

}  // namespace moelab::metrics
