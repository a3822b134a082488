// A single-threaded scheduler of fibers, grouped into processes.
//
// A *process* is one node of the cluster: the scheduler may host many (the
// simulator runs a whole cluster in one OS thread) or one (a production node).
// Each fiber belongs to exactly one process. Killing a process destroys all
// of its fibers, unwinding their stacks so destructors run, and cancels its
// timers; other processes never notice, except through the messages and
// futures they shared.
//
// Fibers are cooperative: a fiber runs until it waits (on a future, a timer,
// or an explicit Yield). There are no locks because nothing runs concurrently.
//
// The scheduler does not own a loop. A driver (the simulator's world, or the
// epoll reactor in production) owns the thread and calls RunReady() and
// FireNextTimer(); the clock it passes in defines "now" for timers.
//
// Determinism: ready fibers run in exactly the order they became ready; timers
// fire in (deadline, creation order); fibers, processes and timers are keyed
// by counters, never by addresses. Given the same calls, two schedulers make
// the same sequence of switches.
#pragma once

#include <cassert>  // Boost.Context 1.74 uses assert() without including it
#include <boost/context/fiber.hpp>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/assertions.h"
#include "core/env.h"
#include "core/runtime/stack_pool.h"
#include "core/runtime/unique_function.h"
#include "core/status.h"

namespace mks::runtime {

using ProcessId = uint32_t;  // 0 is never a process
using FiberId = uint64_t;    // 0 is never a fiber

template <typename T>
class Future;
template <typename T>
class Promise;

// Thrown out of Scheduler::Kill() when a fiber kills its own process, so that
// fiber unwinds at once like its siblings. Deliberately not a std::exception:
// generic handlers must not swallow it.
struct ProcessKilled {};

// Identifies one suspension of one fiber. A wake carrying a stale token (the
// fiber has since resumed, or died) is ignored, which makes it safe to leave
// wake-up callbacks registered on futures that no longer matter.
struct WaitToken {
  FiberId fiber = 0;
  uint64_t generation = 0;
};

// Identifies a pending timer. Timers fire in (deadline_ns, sequence) order;
// `slot` only tells the scheduler where it keeps the timer (a slot is reused
// once its timer fired or was cancelled, and `sequence` tells the occupants
// apart), so it never influences order.
struct TimerId {
  int64_t deadline_ns = 0;
  uint64_t sequence = 0;  // 0 means "no timer"; unique per scheduler
  uint32_t slot = 0;
  friend auto operator<=>(const TimerId&, const TimerId&) = default;
};

struct SchedulerOptions {
  size_t stack_size_bytes = 256 * 1024;
  size_t max_idle_stacks = 1024;
};

class Scheduler {
 public:
  // `clock` supplies "now" for timers (its MonotonicNanos) and must outlive
  // the scheduler.
  explicit Scheduler(Clock* clock, SchedulerOptions options = {});
  // Destroys every fiber (unwinding its stack) and drops every timer.
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // ---- Processes ----

  // Creates a live process. Process ids are never reused.
  ProcessId CreateProcess(std::string name);
  // Destroys every fiber of `process` (running their destructors), cancels its
  // timers, and refuses further spawns into it. Idempotent. When called from a
  // fiber of `process` itself, that fiber is unwound by throwing
  // ProcessKilled once its siblings are gone.
  void Kill(ProcessId process);
  bool IsAlive(ProcessId process) const;
  // Freezes a live `process`: from now on its ready fibers and its timers
  // that come due are held, not run, until Unpause(). Used by the simulator
  // to model a stopped (SIGSTOP, long GC) node. Idempotent.
  void Pause(ProcessId process);
  // Releases what Pause() held: held fibers become ready in the order they
  // were held, held timers fire (in their original order) at the current
  // time. Idempotent; a no-op on a dead process.
  void Unpause(ProcessId process);
  bool IsPaused(ProcessId process) const;
  const std::string& ProcessName(ProcessId process) const;

  // ---- Fibers ----

  // Starts `body` as a new fiber of `process`; it first runs after the fibers
  // already ready. Returns a future for its result; an exception escaping
  // `body` becomes an Internal error in that future (and is counted). When
  // `process` is dead, `body` never runs and the future holds Cancelled.
  template <typename F>
  auto Spawn(ProcessId process, std::string name, F body)
      -> Future<std::invoke_result_t<F>>;

  // Inside a fiber: the fiber and process running now. Outside: 0.
  FiberId CurrentFiber() const;
  ProcessId CurrentProcess() const;
  bool InFiber() const { return current_ != nullptr; }

  // ---- Waiting (only inside a fiber) ----

  // Returns a token for the next Wait() of the current fiber.
  WaitToken PrepareWait();
  // Suspends the current fiber until Wake() is called with the token returned
  // by the latest PrepareWait(). Does not return if the process is killed
  // meanwhile: the fiber's stack is unwound instead.
  void Wait();
  // Makes the fiber of `token` ready if it is still suspended in that wait.
  // Callable from anywhere.
  void Wake(WaitToken token);
  // Lets every other ready fiber run, then continues.
  void Yield();
  // Suspends the current fiber until the clock reaches `deadline_ns` / for
  // `duration_ns` nanoseconds.
  void SleepUntil(int64_t deadline_ns);
  void SleepFor(int64_t duration_ns);

  // ---- Timers ----

  int64_t NowNanos() const { return clock_->MonotonicNanos(); }
  // Calls `callback` outside any fiber once the clock reaches `deadline_ns`,
  // unless cancelled or `process` dies first. The callback must not wait.
  TimerId At(ProcessId process, int64_t deadline_ns,
             UniqueFunction<void()> callback);
  TimerId After(ProcessId process, int64_t delay_ns,
                UniqueFunction<void()> callback) {
    return At(process, NowNanos() + delay_ns, std::move(callback));
  }
  // Cancels a pending timer; cancelling a fired or cancelled one is a no-op.
  void Cancel(TimerId timer);

  // ---- Driving (only outside fibers) ----

  // Runs ready fibers until none is ready. Returns how many resumptions ran.
  size_t RunReady();
  // The earliest pending deadline, if any timer is pending.
  std::optional<int64_t> NextDeadlineNanos() const;
  // Fires the earliest timer if its deadline is <= now. Returns whether one
  // fired. Does not run the fibers it woke: call RunReady().
  bool FireNextTimer();
  // Alternates RunReady() and FireNextTimer() until neither has work.
  void RunUntilIdle();

  // ---- Introspection ----

  size_t fiber_count() const { return fibers_.size(); }
  // Pending timers, not counting those held by a paused process.
  size_t timer_count() const { return queued_timers_; }
  size_t ready_count() const { return ready_.size(); }
  uint64_t fiber_switches() const { return fiber_switches_; }
  // Fibers whose body ended in an exception, and the latest such message.
  uint64_t fiber_failures() const { return fiber_failures_; }
  const std::string& last_fiber_failure() const { return last_fiber_failure_; }

  // Used by Spawn's wrapper; not for general use.
  void RecordFiberFailure(std::string message);

 private:
  struct Fiber;
  struct Process {
    std::string name;
    bool alive = true;
    std::set<FiberId> fibers;       // live fibers, in creation order
    bool paused = false;
    // Invariant: empty unless `paused`; what came due while paused, in order.
    std::vector<FiberId> held_fibers;
  };
  // One timer's state. Invariant: `sequence` is 0 exactly when the slot is
  // free (its index is then in free_timer_slots_, and it has no callback);
  // a `held` timer came due while its process was paused and has no entry
  // in timer_queue_ until Unpause() puts one back.
  struct TimerSlot {
    uint64_t sequence = 0;
    int64_t deadline_ns = 0;
    ProcessId process = 0;
    bool held = false;
    UniqueFunction<void()> callback;
  };
  // An entry of the timer heap; the earliest (deadline_ns, sequence) on top.
  struct QueuedTimer {
    int64_t deadline_ns;
    uint64_t sequence;
    uint32_t slot;
  };

  void SpawnFiber(ProcessId process, std::string name,
                  UniqueFunction<void()> body);
  void Resume(Fiber* fiber);
  void SwitchOut();
  void DestroyFiber(FiberId id);
  Process& ProcessOf(ProcessId process);
  const Process& ProcessOf(ProcessId process) const;
  // Whether `entry` still stands for a pending timer (not cancelled, fired
  // or dropped with its process since it was queued).
  bool IsLive(const QueuedTimer& entry) const;
  void PushTimer(TimerId id);
  // Pops dead entries off the top, so the top is always a pending timer.
  void DropDeadTop();
  // Rebuilds the heap without dead entries once they outnumber the live
  // ones, so cancelled long timers cannot pile up.
  void MaybeCompactTimers();
  uint32_t AllocateTimerSlot();
  // Frees `slot` and returns its callback for the caller to run or drop
  // once the scheduler's state is consistent again.
  UniqueFunction<void()> ReleaseTimerSlot(uint32_t slot);
  // Cancels every pending or held timer of `process` (Kill()).
  void DropTimersOf(ProcessId process);

  Clock* const clock_;
  StackPool stacks_;  // declared before fibers_: outlives every stack
  // Process `id` is at index id - 1 (ids are dense and never reused); a
  // deque keeps references stable as processes are added.
  std::deque<Process> processes_;
  // Invariant: a fiber is in `fibers_` from spawn until its body returns or
  // it is destroyed; it is in its process's `fibers` set for the same span.
  // Only ever looked up by id, never iterated (order lives in the process
  // sets and ready_), so the hash order cannot reach behaviour.
  std::unordered_map<FiberId, std::unique_ptr<Fiber>> fibers_;
  // Invariant: every FiberId here was ready when pushed; entries of fibers
  // that died since are skipped.
  std::deque<FiberId> ready_;
  // Every timer that is pending or held, indexed by TimerId::slot.
  std::vector<TimerSlot> timer_slots_;
  std::vector<uint32_t> free_timer_slots_;
  // A binary min-heap by (deadline_ns, sequence) with lazy deletion: a
  // cancelled timer's entry stays until it reaches the top or a compaction.
  // Invariants: every pending, non-held timer has exactly one entry; the top
  // entry, if any, is live; queued_timers_ counts the live entries.
  std::vector<QueuedTimer> timer_queue_;
  size_t queued_timers_ = 0;
  Fiber* current_ = nullptr;         // the fiber running now, if any
  ProcessId next_process_ = 1;
  FiberId next_fiber_ = 1;
  uint64_t next_timer_ = 1;
  uint64_t fiber_switches_ = 0;
  uint64_t fiber_failures_ = 0;
  std::string last_fiber_failure_;
};

}  // namespace mks::runtime

#include "core/runtime/future.h"

namespace mks::runtime {

template <typename F>
auto Scheduler::Spawn(ProcessId process, std::string name, F body)
    -> Future<std::invoke_result_t<F>> {
  using R = std::invoke_result_t<F>;
  Promise<R> promise(this);
  Future<R> future = promise.GetFuture();
  if (!IsAlive(process)) {
    promise.SetError(Status::Cancelled("spawn into dead process " +
                                       ProcessName(process)));
    return future;
  }
  SpawnFiber(process, std::move(name),
             [this, body = std::move(body), promise = std::move(promise)]() mutable {
               try {
                 if constexpr (std::is_void_v<R>) {
                   body();
                   promise.SetValue();
                 } else {
                   promise.SetValue(body());
                 }
               } catch (const std::exception& error) {
                 std::string message = std::string("fiber threw: ") + error.what();
                 RecordFiberFailure(message);
                 promise.SetError(Status::Internal(std::move(message)));
               }
             });
  return future;
}

}  // namespace mks::runtime
