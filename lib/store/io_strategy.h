// How expert bytes get from storage into RAM: the `io` axis of a sweep.
//   resident      every expert in RAM (the GGUF mapping, touched up front)
//   mmap          expert views into the file mapping; the kernel pages on demand
//   pread         buffered pread into the expert cache
//   direct        O_DIRECT pread (no page cache), one reader
//   direct_mt<N>  O_DIRECT with N parallel readers
//   uring<QD>     io_uring, O_DIRECT, up to QD reads in flight
#pragma once

#include <string>
#include <string_view>

namespace moelab::store {

enum class IoKind { resident, mmap, pread, direct, direct_mt, uring };

struct IoStrategy {
  IoKind kind = IoKind::resident;
  int n = 1;  // readers (direct_mt) or queue depth (uring); 1 otherwise

  std::string name() const;        // round-trips through parse_io_strategy
  bool uses_page_cache() const { return kind == IoKind::mmap || kind == IoKind::pread; }
  bool is_direct() const { return kind == IoKind::direct || kind == IoKind::direct_mt || kind == IoKind::uring; }
  bool operator==(const IoStrategy&) const = default;
};

// Parses "resident", "mmap", "pread", "direct", "direct_mt<N>", "uring<QD>"
// (N, QD in 1..256). Throws moelab::Error naming the bad text and the valid forms.
IoStrategy parse_io_strategy(std::string_view text);

}  // namespace moelab::store
