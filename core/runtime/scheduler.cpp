#include "core/runtime/scheduler.h"

#include <algorithm>
#include <tuple>
#include <vector>

namespace mks::runtime {

namespace context = boost::context;

namespace {

// Heap order for std::push_heap and friends, which keep the greatest element
// on top: "greater" here means a later (deadline, sequence).
struct FiresLater {
  template <typename T>
  bool operator()(const T& a, const T& b) const {
    return std::tie(a.deadline_ns, a.sequence) > std::tie(b.deadline_ns, b.sequence);
  }
};

}  // namespace

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
  MKS_ASSERT_EQ(queued_timers_, 0u);
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
    // Timers first, so no callback of the dying process fires while its
    // fibers unwind.
    DropTimersOf(process);
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
  for (uint32_t index = 0; index < timer_slots_.size(); ++index) {
    TimerSlot& slot = timer_slots_[index];
    if (slot.sequence == 0 || slot.process != process || !slot.held) continue;
    slot.held = false;
    timer_queue_.push_back(QueuedTimer{slot.deadline_ns, slot.sequence, index});
    std::push_heap(timer_queue_.begin(), timer_queue_.end(), FiresLater{});
    ++queued_timers_;
  }
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
  const uint32_t index = AllocateTimerSlot();
  TimerSlot& slot = timer_slots_[index];
  slot.sequence = next_timer_++;
  slot.deadline_ns = deadline_ns;
  slot.process = process;
  slot.held = false;
  slot.callback = std::move(callback);
  timer_queue_.push_back(QueuedTimer{deadline_ns, slot.sequence, index});
  std::push_heap(timer_queue_.begin(), timer_queue_.end(), FiresLater{});
  ++queued_timers_;
  MKS_ASSERT(IsLive(timer_queue_.front()));
  return TimerId{deadline_ns, slot.sequence, index};
}

void Scheduler::Cancel(TimerId timer) {
  if (timer.sequence == 0 || timer.slot >= timer_slots_.size()) return;
  const TimerSlot& slot = timer_slots_[timer.slot];
  if (slot.sequence != timer.sequence) return;  // fired, cancelled or dropped
  MKS_ASSERT_EQ(slot.deadline_ns, timer.deadline_ns);
  if (!slot.held) --queued_timers_;
  // Destroyed at the end of this function, once the queue is consistent.
  UniqueFunction<void()> dropped = ReleaseTimerSlot(timer.slot);
  DropDeadTop();
  MaybeCompactTimers();
}

std::optional<int64_t> Scheduler::NextDeadlineNanos() const {
  if (timer_queue_.empty()) return std::nullopt;
  return timer_queue_.front().deadline_ns;
}

bool Scheduler::FireNextTimer() {
  MKS_ASSERT_MSG(current_ == nullptr, "FireNextTimer() called from a fiber");
  if (timer_queue_.empty()) return false;
  const QueuedTimer next = timer_queue_.front();
  if (next.deadline_ns > NowNanos()) return false;
  MKS_ASSERT(IsLive(next));
  std::pop_heap(timer_queue_.begin(), timer_queue_.end(), FiresLater{});
  timer_queue_.pop_back();
  --queued_timers_;
  TimerSlot& slot = timer_slots_[next.slot];
  MKS_ASSERT(IsAlive(slot.process));
  if (ProcessOf(slot.process).paused) {
    slot.held = true;  // keeps its slot, so Cancel() still reaches it
    DropDeadTop();
    return true;
  }
  UniqueFunction<void()> callback = ReleaseTimerSlot(next.slot);
  DropDeadTop();
  callback();
  return true;
}

bool Scheduler::IsLive(const QueuedTimer& entry) const {
  MKS_ASSERT_LT(entry.slot, timer_slots_.size());
  const TimerSlot& slot = timer_slots_[entry.slot];
  // A held timer's entry was popped when it came due, and its sequence is
  // never queued twice: a match means pending.
  return slot.sequence == entry.sequence && !slot.held;
}

void Scheduler::DropDeadTop() {
  while (!timer_queue_.empty() && !IsLive(timer_queue_.front())) {
    std::pop_heap(timer_queue_.begin(), timer_queue_.end(), FiresLater{});
    timer_queue_.pop_back();
  }
  MKS_ASSERT_LE(queued_timers_, timer_queue_.size());
}

void Scheduler::MaybeCompactTimers() {
  // Amortized O(1) per cancellation: a rebuild costs O(size) and happens
  // only after size/2 entries died.
  if (timer_queue_.size() < 64 || timer_queue_.size() <= 2 * queued_timers_) return;
  std::erase_if(timer_queue_, [this](const QueuedTimer& entry) { return !IsLive(entry); });
  std::make_heap(timer_queue_.begin(), timer_queue_.end(), FiresLater{});
  MKS_ASSERT_EQ(timer_queue_.size(), queued_timers_);
}

uint32_t Scheduler::AllocateTimerSlot() {
  if (free_timer_slots_.empty()) {
    MKS_ASSERT_LT(timer_slots_.size(), size_t{UINT32_MAX});
    timer_slots_.emplace_back();
    return static_cast<uint32_t>(timer_slots_.size() - 1);
  }
  const uint32_t index = free_timer_slots_.back();
  free_timer_slots_.pop_back();
  MKS_ASSERT_EQ(timer_slots_[index].sequence, 0u);
  return index;
}

UniqueFunction<void()> Scheduler::ReleaseTimerSlot(uint32_t index) {
  TimerSlot& slot = timer_slots_[index];
  MKS_ASSERT_NE(slot.sequence, 0u);
  UniqueFunction<void()> callback = std::move(slot.callback);
  slot.callback = nullptr;
  slot.sequence = 0;
  slot.held = false;
  free_timer_slots_.push_back(index);
  return callback;
}

void Scheduler::DropTimersOf(ProcessId process) {
  // Dropped in the order the old per-process sets gave: held timers first,
  // then pending ones, each by (deadline, sequence), since dropping runs
  // the callbacks' destructors.
  std::vector<std::tuple<bool, int64_t, uint64_t, uint32_t>> doomed;
  for (uint32_t index = 0; index < timer_slots_.size(); ++index) {
    const TimerSlot& slot = timer_slots_[index];
    if (slot.sequence == 0 || slot.process != process) continue;
    doomed.emplace_back(!slot.held, slot.deadline_ns, slot.sequence, index);
  }
  std::sort(doomed.begin(), doomed.end());
  std::vector<UniqueFunction<void()>> callbacks;
  callbacks.reserve(doomed.size());
  for (const auto& [pending, deadline_ns, sequence, index] : doomed) {
    if (pending) --queued_timers_;
    callbacks.push_back(ReleaseTimerSlot(index));
  }
  DropDeadTop();
  MaybeCompactTimers();
  for (UniqueFunction<void()>& callback : callbacks) callback = nullptr;
}

void Scheduler::RunUntilIdle() {
  do {
    RunReady();
  } while (FireNextTimer());
}

}  // namespace mks::runtime
