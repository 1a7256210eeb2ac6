#include "experiment/host.h"

#include <fcntl.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <memory>
#include <thread>

#include "core/error.h"
#include "metrics/timer.h"

#ifndef MOELAB_SOURCE_DIR
#define MOELAB_SOURCE_DIR ""
#endif
#ifndef MOELAB_GIT_COMMIT
#define MOELAB_GIT_COMMIT "unknown"
#endif
#ifndef MOELAB_BUILD_TYPE
#define MOELAB_BUILD_TYPE "unknown"
#endif
#ifndef MOELAB_VERSION
#define MOELAB_VERSION "unknown"
#endif

namespace moelab::experiment {

namespace {

// O_DIRECT needs buffers, offsets and sizes aligned to the logical block size; 4 KiB covers every device here.
constexpr size_t kDirectAlign = 4096;
constexpr size_t kChunk = 1 << 20;  // 1 MiB reads, as the expert store issues them

std::string first_line_of(const char* cmd) {
  std::unique_ptr<FILE, int (*)(FILE*)> p(popen(cmd, "r"), pclose);
  if (!p) return "";
  char buf[256] = {0};
  if (!std::fgets(buf, sizeof buf, p.get())) return "";
  std::string s = buf;
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
  return s;
}

}  // namespace

HostInfo host_info() {
  HostInfo h;
  std::ifstream cpu("/proc/cpuinfo");
  for (std::string line; std::getline(cpu, line);)
    if (line.rfind("model name", 0) == 0) {
      h.cpu_model = line.substr(line.find(':') + 2);
      break;
    }
  h.cores = int(std::thread::hardware_concurrency());
  std::ifstream mem("/proc/meminfo");
  for (std::string line; std::getline(mem, line);) {
    double kb = 0;
    if (std::sscanf(line.c_str(), "MemTotal: %lf kB", &kb) == 1) h.ram_mb = kb / 1024;
  }
  utsname u{};
  if (uname(&u) == 0) {
    h.kernel = std::string(u.sysname) + " " + u.release;
    h.hostname = u.nodename;
  }
  return h;
}

BuildInfo build_info() {
  BuildInfo b;
  b.build_type = MOELAB_BUILD_TYPE;
  b.version = MOELAB_VERSION;
  b.git_commit = MOELAB_GIT_COMMIT;
  const std::string src = MOELAB_SOURCE_DIR;
  if (src.empty() || !std::filesystem::exists(std::filesystem::path(src) / ".git")) return b;
  const std::string git = "git -C '" + src + "' ";
  const std::string head = first_line_of((git + "rev-parse HEAD 2>/dev/null").c_str());
  if (head.size() == 40) {
    b.git_commit = head;
    b.git_dirty = !first_line_of((git + "status --porcelain --untracked-files=no 2>/dev/null").c_str()).empty();
  }
  return b;
}

DiskBandwidth measure_raw_disk(const std::filesystem::path& dir, int size_mb) {
  DiskBandwidth d;
  if (size_mb <= 0) {
    d.method = "skipped";
    return d;
  }
  const std::filesystem::path path = dir / (".moelab-disk-probe-" + std::to_string(getpid()));
  void* raw = nullptr;
  if (posix_memalign(&raw, kDirectAlign, kChunk) != 0) throw Error("disk probe: out of memory");
  std::unique_ptr<void, void (*)(void*)> buf(raw, std::free);
  std::memset(buf.get(), 0x5a, kChunk);
  {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) throw Error("disk probe: cannot create " + path.string() + ": " + std::strerror(errno));
    for (int i = 0; i < size_mb; ++i)
      if (::write(fd, buf.get(), kChunk) != ssize_t(kChunk)) {
        ::close(fd);
        std::filesystem::remove(path);
        throw Error("disk probe: cannot write " + path.string() + ": " + std::strerror(errno));
      }
    ::fsync(fd);
    ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    ::close(fd);
  }
  int fd = ::open(path.c_str(), O_RDONLY | O_DIRECT);
  d.method = "O_DIRECT 1 MiB reads of " + std::to_string(size_mb) + " MiB";
  if (fd < 0) {  // tmpfs and some overlay file systems refuse O_DIRECT
    fd = ::open(path.c_str(), O_RDONLY);
    d.method = "buffered 1 MiB reads of " + std::to_string(size_mb) + " MiB after dropping its page cache (no O_DIRECT here)";
  }
  if (fd < 0) {
    std::filesystem::remove(path);
    throw Error("disk probe: cannot open " + path.string());
  }
  const int64_t t0 = metrics::now_ns();
  size_t total = 0;
  for (ssize_t n; (n = ::pread(fd, buf.get(), kChunk, off_t(total))) > 0;) total += size_t(n);
  const int64_t t1 = metrics::now_ns();
  ::close(fd);
  std::filesystem::remove(path);
  d.mb_s = double(total) / double(1 << 20) / (double(t1 - t0) * 1e-9);
  return d;
}

std::string utc_now() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace moelab::experiment
