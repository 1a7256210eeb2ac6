// Memory read bandwidth, measured the way a GEMV reads weights: every byte of
// a buffer loaded once with the widest vector loads the CPU has, split across
// threads in contiguous chunks. Kernel benchmarks report their GB/s as a ratio
// to this figure measured in the same run.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/thread_pool.h"

namespace moelab::metrics {

// Reads [data, data + bytes) once and returns a checksum (so the loads are not
// optimised away). bytes must be a multiple of 64 and data 64-byte aligned.
uint64_t read_all(const void* data, size_t bytes, ThreadPool* pool = nullptr);

// Median GB/s (1e9 bytes/s) of `reps` passes over a fresh buffer of `bytes`.
double read_bandwidth_gbs(size_t bytes, ThreadPool* pool, int reps = 5);

}  // namespace moelab::metrics
