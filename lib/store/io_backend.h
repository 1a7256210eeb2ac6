// Reading byte ranges of one file into RAM: the I/O strategies behind one
// interface. A backend reads a batch of ranges completely (short reads are
// continued, transient errors retried) or throws moelab::Error naming the file,
// offset and reason; it never hands back partial bytes.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>

#include "store/io_strategy.h"

namespace moelab::store {

// Reads and buffers must be aligned to this for O_DIRECT (and are, for every backend).
inline constexpr uint64_t kIoAlign = 4096;

struct ReadOp {
  uint64_t offset = 0;   // file offset (kIoAlign-aligned)
  uint64_t bytes = 0;    // length asked (kIoAlign multiple); may run past the end of the file
  uint64_t need = 0;     // bytes that must arrive (<= bytes); the rest is alignment slack
  uint8_t* dst = nullptr;// kIoAlign-aligned buffer of `bytes`
};

class IoBackend {
 public:
  virtual ~IoBackend() = default;
  // Reads every op; returns the bytes read from storage.
  virtual uint64_t read(std::span<const ReadOp> ops) = 0;
  virtual std::string name() const = 0;
};

// io must not be resident. drop_pages: buffered strategies (pread, mmap) drop
// what they read from the page cache (and the mapping) after copying it.
std::unique_ptr<IoBackend> make_io_backend(const IoStrategy& io, const std::filesystem::path& path, bool drop_pages);

// Test-only fault injection (issue 8): when set, every read attempt asks the
// hook first. Faults must end in a successful retry or a clear Error.
namespace testing {
struct Fault {
  enum Kind { none, eio, short_read, delay } kind = none;
  uint64_t bytes = 0;      // short_read: how many bytes this attempt returns
  int64_t delay_us = 0;    // delay: sleep before the read
};
using FaultHook = Fault (*)(uint64_t offset, uint64_t bytes);
void set_fault_hook(FaultHook hook);  // nullptr turns injection off
}  // namespace testing

// Attempts per range before a failing read becomes an Error.
inline constexpr int kReadAttempts = 4;

}  // namespace moelab::store
