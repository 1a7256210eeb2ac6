#include "core/thread_pool.h"

#include <utility>

#include "core/error.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define MOELAB_PAUSE() _mm_pause()
#else
#define MOELAB_PAUSE() std::this_thread::yield()
#endif

namespace moelab {

namespace {
// Waiting stages: pause-spin (~tens of microseconds: covers the gap between
// the small loops of one decode step), then yield (lets a descheduled peer
// run), then block.
constexpr int kSpinIterations = 2000;
constexpr int kYieldIterations = 200;

// Waits until `ready()` holds: spin, then yield; returns false if it still
// does not hold after both stages (the caller then blocks).
template <class Ready>
bool spin_then_yield(Ready ready) {
  for (int i = 0; i < kSpinIterations; ++i) {
    if (ready()) return true;
    MOELAB_PAUSE();
  }
  for (int i = 0; i < kYieldIterations; ++i) {
    if (ready()) return true;
    std::this_thread::yield();
  }
  return ready();
}
}  // namespace

ThreadPool::ThreadPool(int n_threads) : n_threads_(n_threads) {
  if (n_threads < 1) throw Error("thread pool: threads must be >= 1, got " + std::to_string(n_threads));
  for (int i = 1; i < n_threads; ++i) workers_.emplace_back([this, i] { worker_loop(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard lock(mutex_);
    stop_.store(true);
  }
  wake_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::run_chunk(int index) {
  int64_t b, e;
  chunk_range(n_, grain_, n_threads_, index, b, e);
  if (b >= e) return;
  try {
    fn_(ctx_, b, e, index);
  } catch (...) {
    std::lock_guard lock(error_mutex_);
    if (!error_) error_ = std::current_exception();
  }
}

void ThreadPool::run(int64_t n, int64_t grain, Trampoline fn, void* ctx) {
  if (n <= 0) return;
  if (n_threads_ == 1) {
    fn(ctx, 0, n, 0);
    return;
  }
  fn_ = fn;
  ctx_ = ctx;
  n_ = n;
  grain_ = grain < 1 ? 1 : grain;
  pending_.store(n_threads_ - 1, std::memory_order_relaxed);
  {
    // Under the mutex so a worker about to sleep either sees the new
    // generation or is already waiting when we notify.
    std::lock_guard lock(mutex_);
    generation_.fetch_add(1, std::memory_order_release);
  }
  if (sleeping_.load(std::memory_order_acquire) > 0) wake_.notify_all();
  run_chunk(0);
  auto all_done = [this] { return pending_.load(std::memory_order_acquire) == 0; };
  if (!spin_then_yield(all_done)) {
    std::unique_lock lock(mutex_);
    done_.wait(lock, all_done);
  }
  if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
}

void ThreadPool::worker_loop(int index) {
  uint64_t seen = 0;
  for (;;) {
    auto new_job = [&] { return stop_.load(std::memory_order_relaxed) || generation_.load(std::memory_order_acquire) != seen; };
    if (!spin_then_yield(new_job)) {
      std::unique_lock lock(mutex_);
      sleeping_.fetch_add(1, std::memory_order_acq_rel);
      wake_.wait(lock, new_job);
      sleeping_.fetch_sub(1, std::memory_order_acq_rel);
    }
    if (stop_.load()) return;
    seen = generation_.load(std::memory_order_acquire);
    run_chunk(index);
    if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      // The last worker always goes through the mutex: the caller tests
      // pending_ under it before sleeping, so it either sees 0 or is already
      // waiting. (Checking a "caller is asleep" flag instead would race: the
      // flag's store and pending_'s load on the caller may be reordered.)
      std::lock_guard lock(mutex_);
      done_.notify_one();
    }
  }
}

}  // namespace moelab
