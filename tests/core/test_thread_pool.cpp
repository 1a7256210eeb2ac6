// The thread pool: every index visited exactly once, exceptions reach the
// caller, and many tiny back-to-back jobs (the decode pattern) never hang,
// also when the machine is oversubscribed (more busy threads than cores).
#include <gtest/gtest.h>

#include <atomic>
#include <stdexcept>
#include <thread>
#include <vector>

#include "core/thread_pool.h"

namespace moelab {
namespace {

TEST(ThreadPool, EveryIndexOnceInGrainAlignedChunks) {
  for (int threads : {1, 2, 3}) {
    ThreadPool pool(threads);
    std::vector<std::atomic<int>> hits(1001);
    pool.parallel_for(1001, 8, [&](int64_t b, int64_t e, int) {
      EXPECT_EQ(b % 8, 0);
      for (int64_t i = b; i < e; ++i) hits[size_t(i)]++;
    });
    for (auto& h : hits) EXPECT_EQ(h.load(), 1);
  }
}

TEST(ThreadPool, ExceptionInAWorkerChunkReachesTheCaller) {
  ThreadPool pool(2);
  EXPECT_THROW(pool.parallel_for(100, 1, [](int64_t b, int64_t, int) {
    if (b > 0) throw std::runtime_error("chunk failed");
  }), std::runtime_error);
  int64_t sum = 0;  // the pool still works afterwards
  pool.parallel_for(10, 10, [&](int64_t b, int64_t e, int) { sum += e - b; });
  EXPECT_EQ(sum, 10);
}

TEST(ThreadPool, ManyTinyJobsUnderOversubscriptionNeverHang) {
  // Busy threads on every core force the pool through its sleep paths.
  std::atomic<bool> stop{false};
  std::vector<std::thread> hogs;
  for (unsigned i = 0; i < std::thread::hardware_concurrency(); ++i)
    hogs.emplace_back([&] {
      volatile uint64_t x = 0;
      while (!stop.load(std::memory_order_relaxed)) x = x + 1;
    });
  ThreadPool pool(2);
  std::atomic<int64_t> total{0};
  for (int job = 0; job < 20000; ++job)
    pool.parallel_for(4, 1, [&](int64_t b, int64_t e, int) { total += e - b; });
  stop = true;
  for (auto& t : hogs) t.join();
  EXPECT_EQ(total.load(), 4 * 20000);
}

}  // namespace
}  // namespace moelab
