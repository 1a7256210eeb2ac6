// The context every results file carries: the host (CPU, cores, RAM, kernel),
// the build (git commit, build type, version) and the raw disk bandwidth the
// I/O metrics are judged against.
#pragma once

#include <filesystem>
#include <string>

namespace moelab::experiment {

struct HostInfo {
  std::string cpu_model;
  int cores = 0;           // online logical CPUs
  double ram_mb = 0;       // MemTotal
  std::string kernel;      // uname -sr
  std::string hostname;
};
HostInfo host_info();

struct BuildInfo {
  std::string git_commit;  // HEAD of the source tree at run time (configure time if git is unavailable)
  bool git_dirty = false;  // tracked files differ from HEAD
  std::string build_type;  // CMAKE_BUILD_TYPE
  std::string version;     // project version
};
BuildInfo build_info();

struct DiskBandwidth {
  double mb_s = 0;         // MiB/s
  std::string method;      // "O_DIRECT 1 MiB reads of 64 MiB" or the buffered fallback, or why skipped
};
// Sequential 1 MiB O_DIRECT reads of a `size_mb` scratch file written in `dir`
// (removed afterwards). Falls back to buffered reads after dropping the page
// cache where the file system refuses O_DIRECT (tmpfs). size_mb 0 skips.
DiskBandwidth measure_raw_disk(const std::filesystem::path& dir, int size_mb);

std::string utc_now();  // ISO 8601

}  // namespace moelab::experiment
