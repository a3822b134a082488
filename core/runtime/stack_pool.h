// Fiber stacks, recycled.
//
// Allocating a fiber stack is the dominant cost of a spawn, so stacks are kept
// in a free list and reused. Stacks come from the C++ heap, never from the
// operating system directly (core stays OS-free), so there is no guard page:
// instead a canary word sits at the lowest address of each stack and is
// checked whenever its fiber switches out and when the stack is returned. An
// overflow that reaches the canary stops the process with a clear message.
#pragma once

#include <cassert>  // Boost.Context 1.74 uses assert() without including it
#include <boost/context/stack_context.hpp>
#include <cstddef>
#include <vector>

namespace mks::runtime {

class StackPool {
 public:
  // Every stack has `stack_size_bytes` bytes (rounded up to 16); at most
  // `max_free_stacks` idle stacks are kept.
  StackPool(size_t stack_size_bytes, size_t max_free_stacks);
  ~StackPool();
  StackPool(const StackPool&) = delete;
  StackPool& operator=(const StackPool&) = delete;

  boost::context::stack_context Acquire();
  void Release(boost::context::stack_context& stack);

  // Asserts that the canary of `stack` is intact.
  static void CheckCanary(const boost::context::stack_context& stack);

  size_t stack_size_bytes() const { return stack_size_bytes_; }
  size_t stacks_in_use() const { return in_use_; }

 private:
  const size_t stack_size_bytes_;
  const size_t max_free_stacks_;
  std::vector<void*> free_;  // lowest addresses of idle stacks, canary intact
  size_t in_use_ = 0;        // stacks handed out and not yet released
};

// A Boost.Context StackAllocator that draws from a StackPool. It is a handle:
// copies share the pool, which must outlive every fiber made with it.
class PooledStackAllocator {
 public:
  explicit PooledStackAllocator(StackPool* pool) : pool_(pool) {}
  boost::context::stack_context allocate() { return pool_->Acquire(); }
  void deallocate(boost::context::stack_context& stack) noexcept {
    pool_->Release(stack);
  }

 private:
  StackPool* pool_;
};

}  // namespace mks::runtime
