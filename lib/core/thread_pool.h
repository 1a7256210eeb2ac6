// A fixed pool of worker threads for data-parallel loops (rows of a GEMV,
// experts of a MoE layer). The calling thread takes part, so a pool of N
// threads has N-1 workers. parallel_for allocates nothing: the loop body is
// passed by reference and the range is split into one contiguous chunk per
// thread, so row-split kernels stream their weights sequentially. An exception
// thrown in any chunk is rethrown on the calling thread once all chunks end.
//
// Decode issues hundreds of small parallel loops per token, so hand-off
// latency matters more than idle CPU: workers spin briefly on an atomic
// generation counter, then yield, then sleep on a condition variable; the
// caller waits for stragglers the same way. The yield and sleep stages keep
// an oversubscribed machine (parallel test runs, other jobs) from stalling.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <mutex>
#include <thread>
#include <type_traits>
#include <vector>

namespace moelab {

class ThreadPool {
 public:
  explicit ThreadPool(int n_threads);  // n_threads >= 1 (1 = run inline)
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }

  // Calls body(begin, end, thread_index) over [0, n) split into size() chunks
  // whose boundaries are multiples of `grain`; returns when all are done.
  template <class Body>
  void parallel_for(int64_t n, int64_t grain, Body&& body) {
    using Fn = std::remove_reference_t<Body>;
    run(n, grain, [](void* ctx, int64_t b, int64_t e, int t) { (*static_cast<Fn*>(ctx))(b, e, t); },
        const_cast<void*>(static_cast<const void*>(&body)));
  }

 private:
  using Trampoline = void (*)(void* ctx, int64_t begin, int64_t end, int thread);
  void run(int64_t n, int64_t grain, Trampoline fn, void* ctx);
  void worker_loop(int index);
  void run_chunk(int index);

  int n_threads_;
  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable wake_;   // workers sleep here between jobs
  std::condition_variable done_;   // the caller sleeps here when workers are slow (oversubscribed)
  std::atomic<uint64_t> generation_{0};  // bumped once per job
  std::atomic<int> pending_{0};          // workers still running the current job
  std::atomic<int> sleeping_{0};         // workers blocked on wake_
  std::atomic<bool> stop_{false};
  // The current job (written before generation_ is bumped).
  Trampoline fn_ = nullptr;
  void* ctx_ = nullptr;
  int64_t n_ = 0, grain_ = 1;
  std::mutex error_mutex_;
  std::exception_ptr error_;  // first exception thrown by a chunk; rethrown by run()
};

// Splits [0, n) into `parts` chunks aligned to `grain`; chunk i is [begin, end).
inline void chunk_range(int64_t n, int64_t grain, int parts, int i, int64_t& begin, int64_t& end) {
  const int64_t units = (n + grain - 1) / grain;
  const int64_t per = units / parts, extra = units % parts;
  const int64_t ub = i * per + (i < extra ? i : extra);
  const int64_t ue = ub + per + (i < extra ? 1 : 0);
  begin = ub * grain < n ? ub * grain : n;
  end = ue * grain < n ? ue * grain : n;
}

}  // namespace moelab
