#include "runtime/thread_pool.hpp"

#include <chrono>

namespace sparsert {

namespace {
thread_local bool t_inside_task = false;
// Workers spin this long for the next job before sleeping: back-to-back layers of one model
// arrive within microseconds, and a futex wake-up costs tens of them.
constexpr auto kSpin = std::chrono::microseconds(200);
}  // namespace

ThreadPool& ThreadPool::instance() {
  static ThreadPool pool;
  return pool;
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(state_mutex_);
    stopping_ = true;
    published_.store(generation_ + 1);
  }
  wake_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::grow(int workers) {
  while (static_cast<int>(workers_.size()) < workers) {
    const int index = static_cast<int>(workers_.size()) + 1;
    workers_.emplace_back([this, index] { worker_loop(index); });
  }
}

void ThreadPool::worker_loop(int index) {
  uint64_t seen = 0;
  for (;;) {
    const auto spin_until = std::chrono::steady_clock::now() + kSpin;
    while (published_.load(std::memory_order_acquire) == seen && std::chrono::steady_clock::now() < spin_until) {
    }
    const std::function<void(int)>* task;
    int count;
    {
      std::unique_lock<std::mutex> lock(state_mutex_);
      wake_.wait(lock, [&] { return stopping_ || generation_ != seen; });
      if (stopping_) return;
      seen = generation_;
      task = task_;
      count = task_count_;
    }
    if (index < count) {
      t_inside_task = true;
      (*task)(index);
      t_inside_task = false;
      pending_.fetch_sub(1, std::memory_order_acq_rel);
    }
  }
}

void ThreadPool::run(int n, const std::function<void(int)>& task) {
  if (n <= 1 || t_inside_task) {
    for (int i = 0; i < n; ++i) task(i);
    return;
  }
  std::lock_guard<std::mutex> job(job_mutex_);
  grow(n - 1);
  pending_.store(n - 1, std::memory_order_release);
  {
    std::lock_guard<std::mutex> lock(state_mutex_);
    task_ = &task;
    task_count_ = n;
    ++generation_;
    published_.store(generation_, std::memory_order_release);
  }
  wake_.notify_all();
  t_inside_task = true;
  task(0);
  t_inside_task = false;
  while (pending_.load(std::memory_order_acquire) != 0) std::this_thread::yield();
}

}  // namespace sparsert
