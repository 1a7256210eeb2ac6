#include "experiment/mem_cap.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include "core/error.h"

namespace moelab::experiment {

namespace fs = std::filesystem;

namespace {

constexpr uint64_t kMiB = 1024 * 1024;
constexpr int64_t kMinCapMiB = 16;  // below this not even the harness process fits

// Parses all of `text` as a positive decimal integer; -1 when it is not one.
int64_t whole_number(const std::string& text) {
  if (text.empty() || text.size() > 12) return -1;
  int64_t v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return -1;
    v = v * 10 + (c - '0');
  }
  return v;
}

// The memory controller's mount point: the cgroup (v1) mount whose options name "memory".
fs::path memory_mount() {
  std::ifstream in("/proc/self/mounts");
  std::string dev, dir, type, opts, rest;
  while (in >> dev >> dir >> type >> opts && std::getline(in, rest)) {
    if (type != "cgroup") continue;
    std::stringstream ss(opts);
    for (std::string o; std::getline(ss, o, ',');)
      if (o == "memory") return dir;
  }
  return {};
}

// This process's memory cgroup, from the "N:memory:/path" line of /proc/self/cgroup.
std::string own_memory_group() {
  std::ifstream in("/proc/self/cgroup");
  for (std::string line; std::getline(in, line);) {
    const size_t a = line.find(':'), b = a == std::string::npos ? a : line.find(':', a + 1);
    if (b == std::string::npos) continue;
    std::stringstream ss(line.substr(a + 1, b - a - 1));
    for (std::string c; std::getline(ss, c, ',');)
      if (c == "memory") return line.substr(b + 1);
  }
  return {};
}

fs::path own_group_dir(std::string* why) {
  const fs::path mount = memory_mount();
  if (mount.empty()) {
    *why = "no cgroup v1 memory controller is mounted (/proc/self/mounts); mem_cap needs one (cgroup v2 and "
           "systemd-run are not supported)";
    return {};
  }
  const std::string group = own_memory_group();
  if (group.empty()) {
    *why = "this process has no memory cgroup in /proc/self/cgroup";
    return {};
  }
  return mount / fs::path(group).relative_path();
}

uint64_t read_number(const fs::path& file) {
  std::ifstream in(file);
  uint64_t v = 0;
  if (!(in >> v)) throw Error(file.string() + ": cannot read a number");
  return v;
}

void write_text(const fs::path& file, const std::string& text) {
  const int fd = ::open(file.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) throw Error(file.string() + ": cannot open for writing: " + std::strerror(errno));
  const ssize_t n = ::write(fd, text.data(), text.size());
  const int err = errno;
  ::close(fd);
  if (n != ssize_t(text.size())) throw Error(file.string() + ": cannot write '" + text + "': " + std::strerror(err));
}

}  // namespace

std::string mem_cap_syntax_error(const std::string& text) {
  const std::string valid = "valid: none, <N>MiB (N >= " + std::to_string(kMinCapMiB) +
                            "), model/<D> (the model file's size / D, D in 1..1024)";
  if (text == "none") return "";
  if (text.starts_with("model/")) {
    const int64_t d = whole_number(text.substr(6));
    if (d < 1 || d > 1024) return "mem_cap '" + text + "': D must be a whole number in 1..1024; " + valid;
    return "";
  }
  if (text.ends_with("MiB")) {
    const int64_t n = whole_number(text.substr(0, text.size() - 3));
    if (n < kMinCapMiB) return "mem_cap '" + text + "': N must be a whole number >= " + std::to_string(kMinCapMiB) + "; " + valid;
    return "";
  }
  return "unknown mem_cap '" + text + "'; " + valid;
}

uint64_t mem_cap_bytes(const std::string& text, uint64_t model_bytes) {
  const std::string why = mem_cap_syntax_error(text);
  if (!why.empty()) throw Error(why);
  if (text == "none") return 0;
  if (text.starts_with("model/")) {
    const uint64_t page = 4096;
    const uint64_t cap = model_bytes / uint64_t(whole_number(text.substr(6)));
    return std::max<uint64_t>(uint64_t(kMinCapMiB) * kMiB, (cap + page - 1) / page * page);
  }
  return uint64_t(whole_number(text.substr(0, text.size() - 3))) * kMiB;
}

std::string memory_cgroup_unavailable() {
  std::string why;
  const fs::path dir = own_group_dir(&why);
  if (dir.empty()) return why;
  if (!fs::exists(dir / "memory.limit_in_bytes"))
    return dir.string() + " has no memory.limit_in_bytes (not a cgroup v1 memory controller)";
  if (::access(dir.c_str(), W_OK) != 0)
    return "cannot create a child of " + dir.string() + ": " + std::strerror(errno) +
           " (mem_cap needs write access to the own memory cgroup, e.g. root)";
  return "";
}

MemoryCgroup::MemoryCgroup(uint64_t limit_bytes) {
  std::string why;
  const fs::path parent = own_group_dir(&why);
  if (parent.empty()) throw Error("mem_cap: " + why);
  static std::atomic<int> serial{0};
  path_ = parent / ("moelab-" + std::to_string(::getpid()) + "-" + std::to_string(serial++));
  if (::mkdir(path_.c_str(), 0755) != 0)
    throw Error("mem_cap: cannot create the cgroup " + path_.string() + ": " + std::strerror(errno));
  try {
    write_text(path_ / "memory.limit_in_bytes", std::to_string(limit_bytes));
    procs_fd_ = ::open((path_ / "cgroup.procs").c_str(), O_WRONLY | O_CLOEXEC);
    if (procs_fd_ < 0) throw Error(path_.string() + "/cgroup.procs: cannot open: " + std::strerror(errno));
  } catch (...) {
    ::rmdir(path_.c_str());
    throw;
  }
}

MemoryCgroup::~MemoryCgroup() {
  if (procs_fd_ >= 0) ::close(procs_fd_);
  // The tasks are reaped before this runs; the kernel may still be tearing the last one down.
  for (int i = 0; i < 50 && ::rmdir(path_.c_str()) != 0 && errno == EBUSY; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
}

uint64_t MemoryCgroup::limit_bytes() const { return read_number(path_ / "memory.limit_in_bytes"); }
uint64_t MemoryCgroup::max_usage_bytes() const { return read_number(path_ / "memory.max_usage_in_bytes"); }
uint64_t MemoryCgroup::failcnt() const { return read_number(path_ / "memory.failcnt"); }

}  // namespace moelab::experiment
