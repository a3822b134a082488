#include "core/runtime/scheduler.h"

#include <vector>

namespace mks::runtime {

namespace context = boost::context;

// Invariant: `context` is valid exactly while the fiber is not running (it is
// the suspended fiber); `caller` is valid exactly while it is running (it is
// the scheduler side to switch back to).
struct Scheduler::Fiber {
  FiberId id = 0;
  ProcessId process = 0;
  std::string name;
  context::fiber context;
  context::fiber caller;
  uint64_t wait_generation = 0;  // bumped by every PrepareWait()
  bool waiting = false;          // suspended in Wait(), not yet woken
  bool finished = false;         // body returned; stack may be released
  bool unwinding = false;        // being destroyed; must not wait again
};

Scheduler::Scheduler(Clock* clock, SchedulerOptions options)
    : clock_(clock), stacks_(options.stack_size_bytes, options.max_idle_stacks) {
  MKS_ASSERT(clock_ != nullptr);
}

Scheduler::~Scheduler() {
  MKS_ASSERT_MSG(current_ == nullptr, "scheduler destroyed from a fiber");
  for (ProcessId id = 1; id <= processes_.size(); ++id) Kill(id);
  MKS_ASSERT_EQ(fibers_.size(), 0u);
  timers_.clear();
}

ProcessId Scheduler::CreateProcess(std::string name) {
  const ProcessId id = next_process_++;
  processes_.emplace_back();
  processes_.back().name = std::move(name);
  MKS_ASSERT_EQ(processes_.size(), static_cast<size_t>(id));
  return id;
}

Scheduler::Process& Scheduler::ProcessOf(ProcessId process) {
  MKS_ASSERT_MSG(process != 0 && process <= processes_.size(),
                 "unknown process " + std::to_string(process));
  return processes_[process - 1];
}

const Scheduler::Process& Scheduler::ProcessOf(ProcessId process) const {
  MKS_ASSERT_MSG(process != 0 && process <= processes_.size(),
                 "unknown process " + std::to_string(process));
  return processes_[process - 1];
}

bool Scheduler::IsAlive(ProcessId process) const {
  return process != 0 && process <= processes_.size() &&
         processes_[process - 1].alive;
}

const std::string& Scheduler::ProcessName(ProcessId process) const {
  return ProcessOf(process).name;
}

void Scheduler::Kill(ProcessId process) {
  Process& victim = ProcessOf(process);
  const bool killing_self = current_ != nullptr && current_->process == process;
  if (victim.alive) {
    victim.alive = false;
    victim.paused = false;
    victim.held_fibers.clear();
    for (const TimerId& timer : victim.held_timers) held_timers_.erase(timer);
    victim.held_timers.clear();
    // Timers first, so no callback of the dying process fires while its
    // fibers unwind.
    for (const TimerId& timer : victim.timers) timers_.erase(timer);
    victim.timers.clear();
    // Copy: destroying fibers edits victim.fibers.
    const std::vector<FiberId> doomed(victim.fibers.begin(), victim.fibers.end());
    for (FiberId id : doomed) {
      if (killing_self && id == current_->id) continue;
      DestroyFiber(id);
    }
  }
  if (killing_self && !current_->unwinding) {
    MKS_ASSERT_EQ(victim.fibers.size(), 1u);
    current_->unwinding = true;
    throw ProcessKilled{};
  }
}

void Scheduler::Pause(ProcessId process) {
  Process& target = ProcessOf(process);
  if (!target.alive) return;
  target.paused = true;
}

void Scheduler::Unpause(ProcessId process) {
  Process& target = ProcessOf(process);
  if (!target.alive || !target.paused) return;
  target.paused = false;
  for (FiberId id : target.held_fibers) ready_.push_back(id);
  target.held_fibers.clear();
  // Back under their own ids and past deadlines: they fire next, in the
  // order they came due, and whoever holds an id can still cancel them.
  for (const TimerId& id : target.held_timers) {
    auto held = held_timers_.find(id);
    MKS_ASSERT(held != held_timers_.end());
    MKS_ASSERT_EQ(held->second.process, process);
    timers_.emplace(id, std::move(held->second));
    held_timers_.erase(held);
    target.timers.insert(id);
  }
  target.held_timers.clear();
}

bool Scheduler::IsPaused(ProcessId process) const {
  const Process& target = ProcessOf(process);
  return target.alive && target.paused;
}

void Scheduler::DestroyFiber(FiberId id) {
  auto it = fibers_.find(id);
  if (it == fibers_.end()) return;
  std::unique_ptr<Fiber> fiber = std::move(it->second);
  fibers_.erase(it);
  ProcessOf(fiber->process).fibers.erase(id);
  MKS_ASSERT(fiber.get() != current_);
  fiber->unwinding = true;
  // Destroying a suspended Boost.Context fiber resumes it with a
  // forced-unwind exception: its destructors run on its own stack, with
  // `current_` pointing at it so they see the right process.
  Fiber* previous = current_;
  current_ = fiber.get();
  fiber->context = context::fiber();
  current_ = previous;
}

FiberId Scheduler::CurrentFiber() const {
  return current_ == nullptr ? 0 : current_->id;
}

ProcessId Scheduler::CurrentProcess() const {
  return current_ == nullptr ? 0 : current_->process;
}

void Scheduler::RecordFiberFailure(std::string message) {
  ++fiber_failures_;
  last_fiber_failure_ = std::move(message);
}

void Scheduler::SpawnFiber(ProcessId process, std::string name,
                           UniqueFunction<void()> body) {
  Process& owner = ProcessOf(process);
  MKS_ASSERT(owner.alive);
  auto fiber = std::make_unique<Fiber>();
  Fiber* raw = fiber.get();
  raw->id = next_fiber_++;
  raw->process = process;
  raw->name = std::move(name);
  raw->context = context::fiber(
      std::allocator_arg, PooledStackAllocator(&stacks_),
      [raw, body = std::move(body)](context::fiber&& caller) mutable {
        raw->caller = std::move(caller);
        // Boost's ucontext back end (sanitizer builds) enters a never-started
        // fiber when destroying it, instead of just discarding it: the body
        // must not run then.
        if (raw->unwinding) return std::move(raw->caller);
        try {
          body();
        } catch (const ProcessKilled&) {
          // The process killed itself from this fiber; unwinding is done.
        }
        // Release the body (and what it captured) while still on this stack.
        body = nullptr;
        raw->finished = true;
        return std::move(raw->caller);
      });
  owner.fibers.insert(raw->id);
  ready_.push_back(raw->id);
  fibers_.emplace(raw->id, std::move(fiber));
}

void Scheduler::Resume(Fiber* fiber) {
  MKS_ASSERT(current_ == nullptr);
  MKS_ASSERT(!fiber->waiting);
  current_ = fiber;
  ++fiber_switches_;
  fiber->context = std::move(fiber->context).resume();
  MKS_ASSERT_EQ(current_, fiber);
  current_ = nullptr;
  if (fiber->finished) {
    // The lambda returned its caller, so `context` is empty: nothing to
    // unwind, only bookkeeping.
    MKS_ASSERT(!fiber->context);
    const FiberId id = fiber->id;
    ProcessOf(fiber->process).fibers.erase(id);
    fibers_.erase(id);
  }
}

void Scheduler::SwitchOut() {
  Fiber* self = current_;
  MKS_ASSERT(self != nullptr);
  MKS_ASSERT_MSG(!self->unwinding, "a fiber waited while being destroyed");
  self->caller = std::move(self->caller).resume();
  // Back on this fiber's stack: the scheduler resumed us.
  MKS_ASSERT_EQ(current_, self);
}

size_t Scheduler::RunReady() {
  MKS_ASSERT_MSG(current_ == nullptr, "RunReady() called from a fiber");
  size_t resumed = 0;
  while (!ready_.empty()) {
    const FiberId id = ready_.front();
    ready_.pop_front();
    auto it = fibers_.find(id);
    if (it == fibers_.end()) continue;  // died after becoming ready
    Process& owner = ProcessOf(it->second->process);
    if (owner.paused) {
      owner.held_fibers.push_back(id);
      continue;
    }
    Resume(it->second.get());
    ++resumed;
  }
  return resumed;
}

WaitToken Scheduler::PrepareWait() {
  MKS_ASSERT_MSG(current_ != nullptr, "waiting outside a fiber");
  return WaitToken{current_->id, ++current_->wait_generation};
}

void Scheduler::Wait() {
  MKS_ASSERT_MSG(current_ != nullptr, "waiting outside a fiber");
  current_->waiting = true;
  SwitchOut();
  MKS_ASSERT(!current_->waiting);
}

void Scheduler::Wake(WaitToken token) {
  auto it = fibers_.find(token.fiber);
  if (it == fibers_.end()) return;
  Fiber* fiber = it->second.get();
  if (!fiber->waiting || fiber->wait_generation != token.generation) return;
  fiber->waiting = false;
  ready_.push_back(fiber->id);
}

void Scheduler::Yield() {
  MKS_ASSERT_MSG(current_ != nullptr, "Yield() outside a fiber");
  ready_.push_back(current_->id);
  SwitchOut();
}

void Scheduler::SleepUntil(int64_t deadline_ns) {
  const WaitToken token = PrepareWait();
  At(current_->process, deadline_ns, [this, token] { Wake(token); });
  Wait();
}

void Scheduler::SleepFor(int64_t duration_ns) {
  MKS_ASSERT_GE(duration_ns, 0);
  SleepUntil(NowNanos() + duration_ns);
}

TimerId Scheduler::At(ProcessId process, int64_t deadline_ns,
                      UniqueFunction<void()> callback) {
  Process& owner = ProcessOf(process);
  if (!owner.alive) return TimerId{};
  const TimerId id{deadline_ns, next_timer_++};
  timers_.emplace(id, Timer{process, std::move(callback)});
  owner.timers.insert(id);
  return id;
}

void Scheduler::Cancel(TimerId timer) {
  auto held = held_timers_.find(timer);
  if (held != held_timers_.end()) {
    ProcessOf(held->second.process).held_timers.erase(timer);
    held_timers_.erase(held);
    return;
  }
  auto it = timers_.find(timer);
  if (it == timers_.end()) return;
  ProcessOf(it->second.process).timers.erase(timer);
  timers_.erase(it);
}

std::optional<int64_t> Scheduler::NextDeadlineNanos() const {
  if (timers_.empty()) return std::nullopt;
  return timers_.begin()->first.deadline_ns;
}

bool Scheduler::FireNextTimer() {
  MKS_ASSERT_MSG(current_ == nullptr, "FireNextTimer() called from a fiber");
  if (timers_.empty()) return false;
  auto it = timers_.begin();
  if (it->first.deadline_ns > NowNanos()) return false;
  Timer timer = std::move(it->second);
  const TimerId it_id = it->first;
  ProcessOf(timer.process).timers.erase(it_id);
  timers_.erase(it);
  MKS_ASSERT(IsAlive(timer.process));
  Process& owner = ProcessOf(timer.process);
  if (owner.paused) {
    owner.held_timers.insert(it_id);
    held_timers_.emplace(it_id, std::move(timer));
    return true;
  }
  timer.callback();
  return true;
}

void Scheduler::RunUntilIdle() {
  do {
    RunReady();
  } while (FireNextTimer());
}

}  // namespace mks::runtime
