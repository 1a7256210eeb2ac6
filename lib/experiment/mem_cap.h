// Memory caps for sweep points (the `mem_cap` axis): a child of this
// process's own cgroup-v1 memory cgroup with memory.limit_in_bytes set, which
// the point's process enters before it allocates anything. The limit covers
// RSS and the page cache the process faults in (a file page is charged to the
// cgroup that first reads it), so an mmap'd model larger than the cap pages in
// and out inside it: the "mmap thrashing" regime. This is the method of
// scripts/run_in_memory_cgroup.sh (docs/store.md); cgroup v2 and systemd-run
// give no per-process limit on this machine.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

namespace moelab::experiment {

// "" when `text` is a mem_cap value (none, <N>MiB, model/<D>), else the reason.
std::string mem_cap_syntax_error(const std::string& text);
// The cap in bytes for a model file of `model_bytes`; 0 for none. `text` must be valid.
uint64_t mem_cap_bytes(const std::string& text, uint64_t model_bytes);

// "" when this process can make child memory cgroups (cgroup v1 memory
// controller mounted, its own group writable), else why not.
std::string memory_cgroup_unavailable();

class MemoryCgroup {
 public:
  // Creates <own memory cgroup>/moelab-<pid>-<n> with the limit; throws moelab::Error naming the path.
  explicit MemoryCgroup(uint64_t limit_bytes);
  ~MemoryCgroup();  // removes the group (every task that entered it must have exited)
  MemoryCgroup(const MemoryCgroup&) = delete;
  MemoryCgroup& operator=(const MemoryCgroup&) = delete;

  // Open for writing on cgroup.procs: a forked child writes "0" to it to enter
  // (write(2) only, so it is safe between fork and exec).
  int procs_fd() const { return procs_fd_; }
  const std::filesystem::path& path() const { return path_; }
  uint64_t limit_bytes() const;
  uint64_t max_usage_bytes() const;  // memory.max_usage_in_bytes: peak RSS + page cache charged
  uint64_t failcnt() const;          // memory.failcnt: times the limit forced reclaim

 private:
  std::filesystem::path path_;
  int procs_fd_ = -1;
};

}  // namespace moelab::experiment
