#include "core/runtime/stack_pool.h"

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>

#include "core/assertions.h"

namespace mks::runtime {
namespace {

constexpr uint64_t kCanary = 0x6d6b732d63616e79ULL;  // "mks-cany"
constexpr size_t kStackAlignment = 16;

void* StackBottom(const boost::context::stack_context& stack) {
  return static_cast<char*>(stack.sp) - stack.size;
}

}  // namespace

StackPool::StackPool(size_t stack_size_bytes, size_t max_free_stacks)
    : stack_size_bytes_((stack_size_bytes + kStackAlignment - 1) /
                        kStackAlignment * kStackAlignment),
      max_free_stacks_(max_free_stacks) {
  MKS_ASSERT_GE(stack_size_bytes_, 16u * 1024u);
}

StackPool::~StackPool() {
  MKS_ASSERT_EQ(in_use_, 0u);
  for (void* bottom : free_) std::free(bottom);
}

boost::context::stack_context StackPool::Acquire() {
  void* bottom = nullptr;
  if (!free_.empty()) {
    bottom = free_.back();
    free_.pop_back();
  } else {
    bottom = std::aligned_alloc(kStackAlignment, stack_size_bytes_);
    if (bottom == nullptr) throw std::bad_alloc();
    std::memcpy(bottom, &kCanary, sizeof(kCanary));
  }
  ++in_use_;
  boost::context::stack_context stack;
  stack.size = stack_size_bytes_;
  stack.sp = static_cast<char*>(bottom) + stack_size_bytes_;
  CheckCanary(stack);
  return stack;
}

void StackPool::Release(boost::context::stack_context& stack) {
  MKS_ASSERT_EQ(stack.size, stack_size_bytes_);
  MKS_ASSERT_GT(in_use_, 0u);
  CheckCanary(stack);
  --in_use_;
  void* bottom = StackBottom(stack);
  if (free_.size() < max_free_stacks_) {
    free_.push_back(bottom);
  } else {
    std::free(bottom);
  }
  stack.sp = nullptr;
  stack.size = 0;
}

void StackPool::CheckCanary(const boost::context::stack_context& stack) {
  uint64_t word = 0;
  std::memcpy(&word, StackBottom(stack), sizeof(word));
  MKS_ASSERT_MSG(word == kCanary,
                 "fiber stack overflow: canary at the stack bottom was "
                 "overwritten; raise the stack size");
}

}  // namespace mks::runtime
