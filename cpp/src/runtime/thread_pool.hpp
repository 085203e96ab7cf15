// A persistent pool: workers stay alive between calls so that a layer of ~10 µs is not
// dominated by thread start-up. One job runs at a time; concurrent callers queue on a mutex.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace sparsert {

class ThreadPool {
 public:
  static ThreadPool& instance();
  ~ThreadPool();

  /// Calls task(i) for every i in [0, n), each on its own thread; the caller runs task(0).
  /// Blocks until all are done. Called from inside a task, it runs the tasks inline.
  /// `task` must not throw.
  void run(int n, const std::function<void(int)>& task);

 private:
  ThreadPool() = default;
  void grow(int workers);
  void worker_loop(int index);

  std::mutex job_mutex_;      // one job at a time
  std::mutex state_mutex_;    // guards the fields below with wake_
  std::condition_variable wake_;
  std::vector<std::thread> workers_;
  const std::function<void(int)>* task_ = nullptr;
  int task_count_ = 0;
  uint64_t generation_ = 0;
  bool stopping_ = false;
  std::atomic<uint64_t> published_{0};  // generation_, readable without the lock for spinning
  std::atomic<int> pending_{0};
};

}  // namespace sparsert
