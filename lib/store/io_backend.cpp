#include "store/io_backend.h"

#include <fcntl.h>
#include <liburing.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>

#include "core/error.h"

namespace moelab::store {

namespace testing {
namespace {
std::atomic<FaultHook> g_hook{nullptr};
}
void set_fault_hook(FaultHook hook) { g_hook.store(hook); }
}  // namespace testing

namespace {

using testing::Fault;

Fault ask_fault(uint64_t offset, uint64_t bytes) {
  const testing::FaultHook hook = testing::g_hook.load(std::memory_order_relaxed);
  Fault f = hook ? hook(offset, bytes) : Fault{};
  if (f.kind == Fault::delay && f.delay_us > 0) std::this_thread::sleep_for(std::chrono::microseconds(f.delay_us));
  return f;
}

// A short read of at most `bytes`, aligned down for O_DIRECT (at least one block).
uint64_t short_length(const Fault& f, uint64_t want, bool direct) {
  if (f.kind != Fault::short_read) return want;
  const uint64_t n = direct ? std::max(kIoAlign, f.bytes / kIoAlign * kIoAlign) : std::max<uint64_t>(1, f.bytes);
  return std::min(want, n);
}

std::string where(const std::string& path, uint64_t offset, uint64_t bytes) {
  return path + ": read of " + std::to_string(bytes) + " bytes at offset " + std::to_string(offset);
}

[[noreturn]] void fail_eof(const std::string& path, const ReadOp& op, uint64_t got) {
  throw Error(where(path, op.offset, op.need) + ": unexpected end of file after " + std::to_string(got) +
              " bytes (truncated file?)");
}

[[noreturn]] void fail_errno(const std::string& path, uint64_t offset, uint64_t bytes, int err, int attempts) {
  throw Error(where(path, offset, bytes) + " failed after " + std::to_string(attempts) + " attempts: " +
              std::strerror(err));
}

class Fd {
 public:
  Fd(const std::filesystem::path& path, bool direct) {
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | (direct ? O_DIRECT : 0));
    if (fd_ < 0) throw Error(path.string() + ": cannot open" + (direct ? " with O_DIRECT" : "") + ": " + std::strerror(errno));
    struct stat st {};
    if (::fstat(fd_, &st) != 0) throw Error(path.string() + ": cannot stat: " + std::strerror(errno));
    size_ = uint64_t(st.st_size);
  }
  ~Fd() { if (fd_ >= 0) ::close(fd_); }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  uint64_t size() const { return size_; }

 private:
  int fd_ = -1;
  uint64_t size_ = 0;
};

// One range with pread: short reads continue where they stopped, errors are
// retried kReadAttempts times. Returns the bytes read.
uint64_t read_range(int fd, const std::string& path, const ReadOp& op, bool direct) {
  uint64_t done = 0;
  int failures = 0;
  while (done < op.bytes) {
    uint64_t want = op.bytes - done;
    const Fault f = ask_fault(op.offset + done, want);
    want = short_length(f, want, direct);
    ssize_t r = -1;
    int err = EIO;
    if (f.kind != Fault::eio) {
      r = ::pread(fd, op.dst + done, size_t(want), off_t(op.offset + done));
      err = errno;
    }
    if (r < 0) {
      if (err == EINTR) continue;
      if (++failures >= kReadAttempts) fail_errno(path, op.offset + done, want, err, failures);
      continue;
    }
    if (r == 0) break;  // end of file
    failures = 0;       // attempts count consecutive failures
    done += uint64_t(r);
    if (direct && done % kIoAlign != 0) break;  // O_DIRECT returns a partial block only at the end of the file
  }
  if (done < op.need) fail_eof(path, op, done);
  return done;
}

// Splits ops into pieces of at most `chunk` bytes (kIoAlign multiples) so
// several readers or queue slots share one large blob.
void split(std::span<const ReadOp> ops, uint64_t chunk, std::vector<ReadOp>& out) {
  out.clear();
  for (const ReadOp& op : ops)
    for (uint64_t at = 0; at < op.bytes; at += chunk) {
      const uint64_t n = std::min(chunk, op.bytes - at);
      const uint64_t need = op.need > at ? std::min(n, op.need - at) : 0;
      out.push_back({op.offset + at, n, need, op.dst + at});
    }
}

class PreadBackend final : public IoBackend {
 public:
  PreadBackend(const std::filesystem::path& path, bool direct, bool drop_pages)
      : path_(path.string()), fd_(path, direct), direct_(direct), drop_pages_(drop_pages) {}
  uint64_t read(std::span<const ReadOp> ops) override {
    uint64_t total = 0;
    for (const ReadOp& op : ops) {
      total += read_range(fd_.get(), path_, op, direct_);
      if (drop_pages_ && !direct_) ::posix_fadvise(fd_.get(), off_t(op.offset), off_t(op.bytes), POSIX_FADV_DONTNEED);
    }
    return total;
  }
  std::string name() const override { return direct_ ? "direct" : "pread"; }

 private:
  std::string path_;
  Fd fd_;
  bool direct_, drop_pages_;
};

// Copies out of a shared mapping of the file: the kernel pages on demand
// (read-ahead and all), as llama.cpp's mmap loading does.
class MmapBackend final : public IoBackend {
 public:
  MmapBackend(const std::filesystem::path& path, bool drop_pages) : path_(path.string()), fd_(path, false), drop_pages_(drop_pages) {
    if (fd_.size() == 0) throw Error(path_ + ": empty file");
    void* p = ::mmap(nullptr, fd_.size(), PROT_READ, MAP_SHARED, fd_.get(), 0);
    if (p == MAP_FAILED) throw Error(path_ + ": cannot mmap: " + std::strerror(errno));
    map_ = static_cast<const uint8_t*>(p);
  }
  ~MmapBackend() override { ::munmap(const_cast<uint8_t*>(map_), fd_.size()); }
  uint64_t read(std::span<const ReadOp> ops) override {
    uint64_t total = 0;
    for (const ReadOp& op : ops) {
      const uint64_t avail = op.offset < fd_.size() ? std::min(op.bytes, fd_.size() - op.offset) : 0;
      if (avail < op.need) fail_eof(path_, op, avail);
      for (int failures = 0;;) {  // a mapping has no short reads; EIO would be a SIGBUS, so only injected ones
        const Fault f = ask_fault(op.offset, avail);
        if (f.kind != Fault::eio) break;
        if (++failures >= kReadAttempts) fail_errno(path_, op.offset, avail, EIO, failures);
      }
      std::memcpy(op.dst, map_ + op.offset, avail);
      total += avail;
      if (drop_pages_) {
        const uint64_t page = uint64_t(::sysconf(_SC_PAGESIZE));
        const uint64_t a = op.offset / page * page;
        ::madvise(const_cast<uint8_t*>(map_) + a, op.offset + avail - a, MADV_DONTNEED);
        ::posix_fadvise(fd_.get(), off_t(op.offset), off_t(avail), POSIX_FADV_DONTNEED);
      }
    }
    return total;
  }
  std::string name() const override { return "mmap"; }

 private:
  std::string path_;
  Fd fd_;
  const uint8_t* map_ = nullptr;
  bool drop_pages_;
};

// N reader threads pulling chunks of the batch from a shared index.
class DirectMtBackend final : public IoBackend {
 public:
  DirectMtBackend(const std::filesystem::path& path, int n_threads, uint64_t chunk)
      : path_(path.string()), fd_(path, true), chunk_(chunk) {
    for (int i = 0; i < n_threads; ++i) threads_.emplace_back([this] { worker(); });
  }
  ~DirectMtBackend() override {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    work_cv_.notify_all();
    for (auto& t : threads_) t.join();
  }
  uint64_t read(std::span<const ReadOp> ops) override {
    split(ops, chunk_, chunks_);
    {
      std::lock_guard lock(mu_);
      next_.store(0);
      bytes_.store(0);
      error_.clear();
      busy_ = int(threads_.size());
      ++generation_;
    }
    work_cv_.notify_all();
    std::unique_lock lock(mu_);
    done_cv_.wait(lock, [&] { return busy_ == 0; });
    if (!error_.empty()) throw Error(error_);
    return bytes_.load();
  }
  std::string name() const override { return "direct_mt<" + std::to_string(threads_.size()) + ">"; }

 private:
  void worker() {
    uint64_t seen = 0;
    for (;;) {
      {
        std::unique_lock lock(mu_);
        work_cv_.wait(lock, [&] { return stop_ || generation_ != seen; });
        if (stop_) return;
        seen = generation_;
      }
      for (size_t i; (i = next_.fetch_add(1)) < chunks_.size();) {
        try {
          bytes_ += read_range(fd_.get(), path_, chunks_[i], true);
        } catch (const Error& e) {
          std::lock_guard lock(mu_);
          if (error_.empty()) error_ = e.what();
        }
      }
      std::lock_guard lock(mu_);
      if (--busy_ == 0) done_cv_.notify_one();
    }
  }

  std::string path_;
  Fd fd_;
  uint64_t chunk_;
  std::vector<ReadOp> chunks_;
  std::vector<std::thread> threads_;
  std::mutex mu_;
  std::condition_variable work_cv_, done_cv_;
  uint64_t generation_ = 0;
  int busy_ = 0;
  bool stop_ = false;
  std::atomic<size_t> next_{0};
  std::atomic<uint64_t> bytes_{0};
  std::string error_;
};

// io_uring with O_DIRECT: up to QD chunk reads in flight from one thread.
class UringBackend final : public IoBackend {
 public:
  UringBackend(const std::filesystem::path& path, int qd, uint64_t chunk)
      : path_(path.string()), fd_(path, true), qd_(qd), chunk_(chunk) {
    const int rc = io_uring_queue_init(unsigned(qd), &ring_, 0);
    if (rc < 0) throw Error(path_ + ": io_uring_queue_init(" + std::to_string(qd) + ") failed: " + std::strerror(-rc));
  }
  ~UringBackend() override { io_uring_queue_exit(&ring_); }

  uint64_t read(std::span<const ReadOp> ops) override {
    split(ops, chunk_, chunks_);
    state_.assign(chunks_.size(), Chunk{});
    ready_.clear();
    for (size_t i = chunks_.size(); i-- > 0;) ready_.push_back(uint32_t(i));  // popped from the back: in order
    uint64_t total = 0;
    int in_flight = 0;
    std::string error;
    while (in_flight > 0 || (!ready_.empty() && error.empty())) {
      while (in_flight < qd_ && !ready_.empty() && error.empty()) {
        const uint32_t i = ready_.back();
        ready_.pop_back();
        const ReadOp& op = chunks_[i];
        Chunk& s = state_[i];
        const uint64_t want = op.bytes - s.done;
        s.fault = ask_fault(op.offset + s.done, want);
        io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
        io_uring_prep_read(sqe, fd_.get(), op.dst + s.done, unsigned(want), op.offset + s.done);
        io_uring_sqe_set_data64(sqe, i);
        ++in_flight;
      }
      const int rc = io_uring_submit_and_wait(&ring_, 1);
      if (rc < 0 && rc != -EINTR) throw Error(path_ + ": io_uring_submit failed: " + std::strerror(-rc));
      io_uring_cqe* cqe = nullptr;
      while (io_uring_peek_cqe(&ring_, &cqe) == 0) {
        const uint32_t i = uint32_t(io_uring_cqe_get_data64(cqe));
        int res = cqe->res;
        io_uring_cqe_seen(&ring_, cqe);
        --in_flight;
        const ReadOp& op = chunks_[i];
        Chunk& s = state_[i];
        if (s.fault.kind == Fault::eio) res = -EIO;
        else if (res > 0) res = int(std::min<uint64_t>(uint64_t(res), short_length(s.fault, uint64_t(res), true)));
        if (res < 0) {
          if (res == -EINTR || res == -EAGAIN) { ready_.push_back(i); continue; }
          if (++s.failures >= kReadAttempts) {
            if (error.empty())
              error = where(path_, op.offset + s.done, op.bytes - s.done) + " failed after " +
                      std::to_string(s.failures) + " attempts: " + std::strerror(-res);
          } else {
            ready_.push_back(i);
          }
          continue;
        }
        s.done += uint64_t(res);
        total += uint64_t(res);
        if (res > 0) s.failures = 0;
        const bool eof = res == 0 || s.done % kIoAlign != 0;
        if (s.done < op.bytes && !eof) { ready_.push_back(i); continue; }
        if (s.done < op.need && error.empty())
          error = where(path_, op.offset, op.need) + ": unexpected end of file after " + std::to_string(s.done) +
                  " bytes (truncated file?)";
      }
    }
    if (!error.empty()) throw Error(error);
    return total;
  }
  std::string name() const override { return "uring<" + std::to_string(qd_) + ">"; }

 private:
  struct Chunk {
    uint64_t done = 0;
    int failures = 0;
    Fault fault;
  };
  std::string path_;
  Fd fd_;
  int qd_;
  uint64_t chunk_;
  io_uring ring_{};
  std::vector<ReadOp> chunks_;
  std::vector<Chunk> state_;
  std::vector<uint32_t> ready_;
};

}  // namespace

std::unique_ptr<IoBackend> make_io_backend(const IoStrategy& io, const std::filesystem::path& path, bool drop_pages) {
  // Pieces of one expert go to several readers / queue slots; 1 MiB keeps
  // N x 1 MiB in flight, enough to saturate an NVMe-class device.
  constexpr uint64_t kChunk = 1024 * 1024;
  switch (io.kind) {
    case IoKind::resident: break;
    case IoKind::mmap: return std::make_unique<MmapBackend>(path, drop_pages);
    case IoKind::pread: return std::make_unique<PreadBackend>(path, false, drop_pages);
    case IoKind::direct: return std::make_unique<PreadBackend>(path, true, false);
    case IoKind::direct_mt: return std::make_unique<DirectMtBackend>(path, io.n, kChunk);
    case IoKind::uring: return std::make_unique<UringBackend>(path, io.n, kChunk);
  }
  throw Error("io backend: strategy '" + io.name() + "' reads nothing from storage");
}

}  // namespace moelab::store
