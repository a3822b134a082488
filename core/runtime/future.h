// Future<T> and Promise<T>: one-shot values passed between fibers.
//
// A Promise is the writing end, a Future the reading end; both share one
// state. Get() suspends the calling fiber until the value (or an error)
// arrives. A Promise destroyed before it was fulfilled fulfils the future
// with BrokenPromise, so a waiter never hangs because its producer died.
//
// Included from scheduler.h; do not include directly.
#pragma once

#include <span>
#include <vector>

namespace mks::runtime {
namespace detail {

// Invariant: `result` is set at most once; every callback in `on_ready` runs
// exactly once, right after `result` is set, in registration order.
template <typename T>
struct SharedState {
  explicit SharedState(Scheduler* s) : scheduler(s) {}
  Scheduler* scheduler;
  std::optional<Result<T>> result;
  std::vector<WaitToken> waiters;  // fibers to wake when the result arrives

  void Fulfil(Result<T> value) {
    MKS_ASSERT_MSG(!result.has_value(), "promise fulfilled twice");
    result.emplace(std::move(value));
    std::vector<WaitToken> to_wake;
    to_wake.swap(waiters);
    for (const WaitToken& token : to_wake) scheduler->Wake(token);
  }
};

}  // namespace detail

template <typename T>
class Future {
 public:
  Future() = default;  // invalid until assigned

  bool valid() const { return state_ != nullptr; }
  bool IsReady() const {
    MKS_ASSERT(valid());
    return state_->result.has_value();
  }

  // Suspends the current fiber until the result is available and returns it,
  // leaving this future invalid. Must be called inside a fiber (unless ready).
  Result<T> Get() {
    MKS_ASSERT_MSG(valid(), "Get() on an invalid or consumed future");
    while (!state_->result.has_value()) {
      state_->waiters.push_back(state_->scheduler->PrepareWait());
      state_->scheduler->Wait();
    }
    Result<T> out = std::move(*state_->result);
    state_.reset();
    return out;
  }

  // As Get(), but gives up after `timeout_ns` with TimedOut, leaving the
  // future valid so the caller may wait again or drop it.
  Result<T> GetFor(int64_t timeout_ns) {
    MKS_ASSERT(valid());
    if (!IsReady() && !WaitReadyFor(timeout_ns)) {
      return Status::TimedOut("no result within " +
                              std::to_string(timeout_ns / 1000000) + " ms");
    }
    return Get();
  }

  // Waits until ready or `timeout_ns` passes; returns whether ready.
  bool WaitReadyFor(int64_t timeout_ns) {
    MKS_ASSERT(valid());
    Scheduler* scheduler = state_->scheduler;
    if (IsReady()) return true;
    const WaitToken token = scheduler->PrepareWait();
    state_->waiters.push_back(token);
    const TimerId timer = scheduler->After(
        scheduler->CurrentProcess(), timeout_ns,
        [scheduler, token] { scheduler->Wake(token); });
    scheduler->Wait();
    scheduler->Cancel(timer);
    return IsReady();
  }

  // Registers a wake-up for `token` when this future becomes ready (at once
  // if it already is). Used by WaitAny.
  void WakeWhenReady(WaitToken token) {
    MKS_ASSERT(valid());
    if (IsReady()) {
      state_->scheduler->Wake(token);
    } else {
      state_->waiters.push_back(token);
    }
  }

 private:
  friend class Promise<T>;
  explicit Future(std::shared_ptr<detail::SharedState<T>> state)
      : state_(std::move(state)) {}
  std::shared_ptr<detail::SharedState<T>> state_;
};

template <typename T>
class Promise {
 public:
  explicit Promise(Scheduler* scheduler)
      : state_(std::make_shared<detail::SharedState<T>>(scheduler)) {}
  Promise(Promise&&) noexcept = default;
  Promise& operator=(Promise&& other) noexcept {
    if (this != &other) {
      BreakIfUnfulfilled();
      state_ = std::move(other.state_);
    }
    return *this;
  }
  Promise(const Promise&) = delete;
  Promise& operator=(const Promise&) = delete;
  ~Promise() { BreakIfUnfulfilled(); }

  // Returns the reading end. May be called once.
  Future<T> GetFuture() {
    MKS_ASSERT(state_ != nullptr);
    MKS_ASSERT_MSG(!future_taken_, "GetFuture() called twice");
    future_taken_ = true;
    return Future<T>(state_);
  }

  template <typename... Args>
  void SetValue(Args&&... args) {
    MKS_ASSERT(state_ != nullptr);
    if constexpr (std::is_void_v<T>) {
      static_assert(sizeof...(Args) == 0);
      state_->Fulfil(Result<void>());
    } else {
      state_->Fulfil(Result<T>(T(std::forward<Args>(args)...)));
    }
  }
  void SetError(Status status) {
    MKS_ASSERT(state_ != nullptr);
    MKS_ASSERT(!status.ok());
    state_->Fulfil(Result<T>(std::move(status)));
  }
  bool IsFulfilled() const {
    return state_ != nullptr && state_->result.has_value();
  }

 private:
  void BreakIfUnfulfilled() {
    if (state_ != nullptr && !state_->result.has_value()) {
      state_->Fulfil(Result<T>(
          Status::BrokenPromise("promise destroyed before it was fulfilled")));
    }
  }

  std::shared_ptr<detail::SharedState<T>> state_;
  bool future_taken_ = false;
};

// Suspends the current fiber until at least one of `futures` is ready and
// returns the index of the first ready one (lowest index on ties). Requires a
// non-empty span of valid futures.
template <typename T>
size_t WaitAny(Scheduler* scheduler, std::span<Future<T>> futures) {
  MKS_ASSERT(!futures.empty());
  for (;;) {
    for (size_t i = 0; i < futures.size(); ++i) {
      if (futures[i].IsReady()) return i;
    }
    const WaitToken token = scheduler->PrepareWait();
    for (Future<T>& future : futures) future.WakeWhenReady(token);
    scheduler->Wait();
  }
}

// As WaitAny, but returns TimedOut if none is ready within `timeout_ns`.
template <typename T>
Result<size_t> WaitAnyFor(Scheduler* scheduler, std::span<Future<T>> futures,
                          int64_t timeout_ns) {
  MKS_ASSERT(!futures.empty());
  const int64_t deadline_ns = scheduler->NowNanos() + timeout_ns;
  for (;;) {
    for (size_t i = 0; i < futures.size(); ++i) {
      if (futures[i].IsReady()) return i;
    }
    if (scheduler->NowNanos() >= deadline_ns) {
      return Status::TimedOut("none of " + std::to_string(futures.size()) +
                              " futures ready in time");
    }
    const WaitToken token = scheduler->PrepareWait();
    for (Future<T>& future : futures) future.WakeWhenReady(token);
    const TimerId timer =
        scheduler->At(scheduler->CurrentProcess(), deadline_ns,
                      [scheduler, token] { scheduler->Wake(token); });
    scheduler->Wait();
    scheduler->Cancel(timer);
  }
}

}  // namespace mks::runtime
