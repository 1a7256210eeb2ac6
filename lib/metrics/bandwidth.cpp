#include "metrics/bandwidth.h"

#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "core/error.h"
#include "metrics/timer.h"
#include "quant/codec.h"

namespace moelab::metrics {

// Per-ISA read loops (bandwidth_avx2.cpp, bandwidth_avx512.cpp).
uint64_t read_chunk_avx2(const uint8_t* p, size_t bytes);
uint64_t read_chunk_avx512(const uint8_t* p, size_t bytes);

static uint64_t read_chunk_scalar(const uint8_t* p, size_t bytes) {
  uint64_t acc = 0;
  for (size_t i = 0; i < bytes; i += 8) {
    uint64_t v;
    std::memcpy(&v, p + i, 8);
    acc ^= v;
  }
  return acc;
}

uint64_t read_all(const void* data, size_t bytes, ThreadPool* pool) {
  if (bytes % 64 != 0 || reinterpret_cast<uintptr_t>(data) % 64 != 0)
    throw Error("read_all: buffer must be 64-byte aligned and a multiple of 64 bytes");
  const auto* p = static_cast<const uint8_t*>(data);
  const quant::Isa isa = quant::active_isa();
  auto chunk = isa == quant::Isa::avx512 ? read_chunk_avx512
               : isa == quant::Isa::avx2 ? read_chunk_avx2
                                         : read_chunk_scalar;
  const int n_threads = pool ? pool->size() : 1;
  std::vector<uint64_t> sums(size_t(n_threads), 0);
  auto body = [&](int64_t b, int64_t e, int t) { sums[size_t(t)] ^= chunk(p + b * 64, size_t(e - b) * 64); };
  if (pool) pool->parallel_for(int64_t(bytes / 64), 64, body);
  else body(0, int64_t(bytes / 64), 0);
  uint64_t acc = 0;
  for (uint64_t s : sums) acc ^= s;
  return acc;
}

double read_bandwidth_gbs(size_t bytes, ThreadPool* pool, int reps) {
  bytes = (bytes + 63) / 64 * 64;
  std::unique_ptr<uint8_t, decltype(&std::free)> buf(static_cast<uint8_t*>(std::aligned_alloc(64, bytes)), &std::free);
  if (!buf) throw Error("read_bandwidth: cannot allocate " + std::to_string(bytes) + " bytes");
  std::memset(buf.get(), 1, bytes);  // touch every page so no pass pays for page faults
  std::vector<double> gbs;
  volatile uint64_t sink = 0;
  for (int r = 0; r < reps; ++r) {
    const int64_t t0 = now_ns();
    sink = sink ^ read_all(buf.get(), bytes, pool);
    const int64_t t1 = now_ns();
    gbs.push_back(double(bytes) / double(t1 - t0));
  }
  return median(gbs);
}

}  // namespace moelab::metrics
