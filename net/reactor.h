// The production event loop: one thread, one epoll set, one Scheduler.
//
// The reactor owns the thread's loop and drives the core runtime the way the
// simulator's world does: it runs ready fibers, fires timers whose deadline
// has passed (the epoll_wait timeout is the scheduler's next deadline), and
// calls the callback registered for each file descriptor that became ready.
// All callbacks run on the loop thread, outside any fiber, one at a time.
//
// End-of-turn work (AtEndOfTurn) runs after the turn's fibers and before
// the loop waits for I/O: connections use it to send everything a turn wrote
// with one system call, instead of one per message.
//
// Other threads hand work to the loop with Post(), which wakes it through
// the same eventfd as Stop().
//
// Stopping: Stop() may be called from any thread or a signal handler (it
// sets a flag and writes an eventfd); StopOnSignals() turns SIGTERM/SIGINT
// into a stop through a signalfd, so shutdown runs as ordinary loop code
// rather than inside a signal handler.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "core/runtime/scheduler.h"
#include "core/runtime/unique_function.h"
#include "core/status.h"
#include "net/socket.h"

namespace mks::net {

// Readiness bits, for interests and for the events a callback receives.
inline constexpr uint32_t kReadable = 1;
inline constexpr uint32_t kWritable = 2;
// Only ever reported, never requested: the peer hung up or the socket is in
// error. A callback that sees it should read (to collect EOF or the error).
inline constexpr uint32_t kHangup = 4;

using ReadinessCallback = std::function<void(uint32_t events)>;

class Reactor {
 public:
  // Returns a reactor driving `scheduler` (which must outlive it), or
  // IOError when the kernel refuses an epoll set or an eventfd.
  static Result<std::unique_ptr<Reactor>> Create(runtime::Scheduler* scheduler);
  ~Reactor();
  Reactor(const Reactor&) = delete;
  Reactor& operator=(const Reactor&) = delete;

  runtime::Scheduler* scheduler() const { return scheduler_; }

  // Calls `callback` whenever `fd` is ready for `interest` (level-triggered:
  // again on every turn while the condition holds). The caller keeps owning
  // `fd` and must Unwatch it before closing it. Returns InvalidArgument when
  // `fd` is already watched, IOError when epoll refuses it.
  Status Watch(int fd, uint32_t interest, ReadinessCallback callback);

  // Replaces the interest of a watched `fd` (0 silences it but keeps the
  // registration). Returns InvalidArgument when `fd` is not watched.
  Status SetInterest(int fd, uint32_t interest);

  // Forgets `fd`; no callback for it runs after this returns, even one whose
  // readiness was already collected this turn. A no-op when not watched.
  // Safe to call from any callback, including `fd`'s own.
  void Unwatch(int fd);

  // Runs turns until Stop(). Returns OK after a stop (and clears it so Run
  // can be called again), IOError when epoll_wait fails.
  Status Run();

  // One turn: runs ready fibers and due timers, waits for I/O at most
  // `max_wait_ns` (negative: until the next timer or forever; 0: poll), and
  // dispatches what became ready. Returns IOError when epoll_wait fails.
  Status RunOnce(int64_t max_wait_ns);

  // Runs turns until `done()` is true or `timeout_ns` of monotonic time pass.
  // Returns whether `done()` became true; IOError when epoll_wait fails.
  // For tools and tests that wait for one outcome.
  Result<bool> RunUntil(const std::function<bool()>& done, int64_t timeout_ns);

  // Runs `task` once, on the loop thread outside any fiber, after the fibers
  // and timers of the current turn and before the loop next waits for I/O
  // (or at the start of the next RunOnce when called outside a turn). Tasks
  // run in the order they were added; a task may add another, which runs in
  // the same pass.
  void AtEndOfTurn(std::function<void()> task);

  // Runs `task` once, on the loop thread outside any fiber, in a coming
  // turn. Thread-safe (not async-signal-safe): how work finished on another
  // thread, such as the disk's writer, reports back to the loop. Tasks run
  // in the order they were posted. Tasks still queued when the reactor is
  // destroyed never run; they are destroyed with it.
  void Post(runtime::UniqueFunction<void()> task);

  // Makes Run() return after the current turn. Thread-safe and
  // async-signal-safe.
  void Stop();

  // Blocks `signals` for the calling thread and routes them to the loop: when
  // one arrives, the reactor records it and stops. Call it from the main
  // thread before any other thread starts, or the signals may land elsewhere.
  // Returns IOError when the kernel refuses the signalfd.
  Status StopOnSignals(std::initializer_list<int> signals);

  // The signal that stopped the loop, 0 when none did.
  int stop_signal() const { return stop_signal_; }
  // How many fd callbacks have run; a cheap progress counter.
  uint64_t dispatched_events() const { return dispatched_events_; }

 private:
  struct Watcher {
    int fd;
    ReadinessCallback callback;
  };

  Reactor(runtime::Scheduler* scheduler, FileDescriptor epoll,
          FileDescriptor wake);
  void RunDueWork();
  void RunEndOfTurnTasks();
  int EpollTimeoutMs(int64_t max_wait_ns) const;
  void Dispatch(uint64_t watch_id, uint32_t events);
  // Reads the wake eventfd, then runs the posted tasks.
  void DrainWake();
  void RunPostedTasks();
  void DrainSignals();

  runtime::Scheduler* const scheduler_;
  const FileDescriptor epoll_;
  const FileDescriptor wake_;  // eventfd written by Stop()
  FileDescriptor signals_;     // signalfd, once StopOnSignals ran
  std::atomic<bool> stop_requested_{false};
  int stop_signal_ = 0;
  uint64_t dispatched_events_ = 0;
  // Invariant: watch_ids_ and watchers_ describe the same registrations:
  // watch_ids_[fd] == id exactly when watchers_[id]->fd == fd. Ids are never
  // reused, so readiness collected for a registration that has since been
  // replaced (same fd number, new socket) finds nothing and is dropped.
  std::map<int, uint64_t> watch_ids_;
  std::map<uint64_t, std::shared_ptr<Watcher>> watchers_;
  uint64_t next_watch_id_ = 1;
  // Invariant: empty whenever the loop waits in epoll_wait.
  std::vector<std::function<void()>> end_of_turn_tasks_;
  // Filled by Post on any thread; each Post also writes wake_, so the loop
  // never sleeps while this holds a task.
  std::mutex posted_mutex_;
  std::vector<runtime::UniqueFunction<void()>> posted_tasks_;  // guarded
};

}  // namespace mks::net
