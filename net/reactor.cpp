#include "net/reactor.h"

#include <errno.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <array>
#include <limits>

#include "core/assertions.h"

namespace mks::net {
namespace {

constexpr int kMaxEventsPerTurn = 256;
constexpr int64_t kNanosPerMilli = 1'000'000;

uint32_t ToEpollEvents(uint32_t interest) {
  MKS_ASSERT_EQ(interest & ~(kReadable | kWritable), 0u);
  uint32_t events = 0;
  if (interest & kReadable) events |= EPOLLIN | EPOLLRDHUP;
  if (interest & kWritable) events |= EPOLLOUT;
  return events;
}

uint32_t FromEpollEvents(uint32_t events) {
  uint32_t readiness = 0;
  if (events & EPOLLIN) readiness |= kReadable;
  if (events & EPOLLOUT) readiness |= kWritable;
  if (events & (EPOLLHUP | EPOLLERR | EPOLLRDHUP)) readiness |= kHangup;
  return readiness;
}

}  // namespace

Result<std::unique_ptr<Reactor>> Reactor::Create(runtime::Scheduler* scheduler) {
  MKS_ASSERT(scheduler != nullptr);
  FileDescriptor epoll(epoll_create1(EPOLL_CLOEXEC));
  if (!epoll.valid()) return ErrnoStatus("epoll_create1");
  FileDescriptor wake(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!wake.valid()) return ErrnoStatus("eventfd");
  std::unique_ptr<Reactor> reactor(
      new Reactor(scheduler, std::move(epoll), std::move(wake)));
  MKS_RETURN_IF_ERROR(reactor->Watch(reactor->wake_.get(), kReadable,
                                     [raw = reactor.get()](uint32_t) {
                                       raw->DrainWake();
                                     }));
  return reactor;
}

Reactor::Reactor(runtime::Scheduler* scheduler, FileDescriptor epoll,
                 FileDescriptor wake)
    : scheduler_(scheduler), epoll_(std::move(epoll)), wake_(std::move(wake)) {}

Reactor::~Reactor() {
  // Owners must unwatch their descriptors first; only our own remain.
  Unwatch(wake_.get());
  if (signals_.valid()) Unwatch(signals_.get());
  MKS_ASSERT_MSG(watchers_.empty(), "a descriptor is still watched");
}

Status Reactor::Watch(int fd, uint32_t interest, ReadinessCallback callback) {
  MKS_ASSERT_GE(fd, 0);
  MKS_ASSERT(callback != nullptr);
  if (watch_ids_.count(fd) != 0) {
    return Status::InvalidArgument("fd " + std::to_string(fd) +
                                   " is already watched");
  }
  const uint64_t id = next_watch_id_++;
  epoll_event event{};
  event.events = ToEpollEvents(interest);
  event.data.u64 = id;
  if (epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &event) != 0) {
    return ErrnoStatus("epoll_ctl(ADD)");
  }
  watch_ids_[fd] = id;
  watchers_[id] = std::make_shared<Watcher>(Watcher{fd, std::move(callback)});
  MKS_ASSERT_EQ(watch_ids_.size(), watchers_.size());
  return Status::Ok();
}

Status Reactor::SetInterest(int fd, uint32_t interest) {
  const auto found = watch_ids_.find(fd);
  if (found == watch_ids_.end()) {
    return Status::InvalidArgument("fd " + std::to_string(fd) + " is not watched");
  }
  epoll_event event{};
  event.events = ToEpollEvents(interest);
  event.data.u64 = found->second;
  if (epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, fd, &event) != 0) {
    return ErrnoStatus("epoll_ctl(MOD)");
  }
  return Status::Ok();
}

void Reactor::Unwatch(int fd) {
  const auto found = watch_ids_.find(fd);
  if (found == watch_ids_.end()) return;
  // EPOLL_CTL_DEL fails only when fd is not in the set or already closed;
  // either way the registration is gone, which is what we want.
  epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr);
  MKS_ASSERT_EQ(watchers_.count(found->second), 1u);
  MKS_ASSERT_EQ(watchers_.at(found->second)->fd, fd);
  watchers_.erase(found->second);
  watch_ids_.erase(found);
  MKS_ASSERT_EQ(watch_ids_.size(), watchers_.size());
}

Status Reactor::Run() {
  while (!stop_requested_.load(std::memory_order_acquire)) {
    MKS_RETURN_IF_ERROR(RunOnce(-1));
  }
  stop_requested_.store(false, std::memory_order_release);
  return Status::Ok();
}

void Reactor::RunDueWork() {
  // Only timers due when the turn began: a callback that re-arms itself
  // with no delay must not keep the loop from ever reaching epoll again.
  const int64_t turn_start_ns = scheduler_->NowNanos();
  scheduler_->RunReady();
  for (;;) {
    const std::optional<int64_t> deadline_ns = scheduler_->NextDeadlineNanos();
    if (!deadline_ns || *deadline_ns > turn_start_ns) return;
    const bool fired = scheduler_->FireNextTimer();
    MKS_ASSERT_MSG(fired, "a due timer did not fire");
    scheduler_->RunReady();
  }
}

void Reactor::AtEndOfTurn(std::function<void()> task) {
  MKS_ASSERT(task != nullptr);
  end_of_turn_tasks_.push_back(std::move(task));
}

void Reactor::RunEndOfTurnTasks() {
  // By index: a task may add more, which join this pass.
  for (size_t index = 0; index < end_of_turn_tasks_.size(); ++index) {
    std::function<void()> task = std::move(end_of_turn_tasks_[index]);
    task();
  }
  end_of_turn_tasks_.clear();
}

int Reactor::EpollTimeoutMs(int64_t max_wait_ns) const {
  if (scheduler_->ready_count() > 0) return 0;
  int64_t wait_ns = max_wait_ns;
  if (const std::optional<int64_t> deadline = scheduler_->NextDeadlineNanos()) {
    const int64_t until_deadline_ns =
        std::max<int64_t>(0, *deadline - scheduler_->NowNanos());
    wait_ns = wait_ns < 0 ? until_deadline_ns : std::min(wait_ns, until_deadline_ns);
  }
  if (wait_ns < 0) return -1;
  // Round up: waking a little late costs nothing, waking early spins.
  const int64_t wait_ms = (wait_ns + kNanosPerMilli - 1) / kNanosPerMilli;
  return static_cast<int>(std::min<int64_t>(wait_ms, std::numeric_limits<int>::max()));
}

Status Reactor::RunOnce(int64_t max_wait_ns) {
  RunDueWork();
  RunEndOfTurnTasks();
  if (stop_requested_.load(std::memory_order_acquire)) return Status::Ok();
  std::array<epoll_event, kMaxEventsPerTurn> events;
  const int count = epoll_wait(epoll_.get(), events.data(), kMaxEventsPerTurn,
                               EpollTimeoutMs(max_wait_ns));
  if (count < 0) {
    if (errno == EINTR) return Status::Ok();
    return ErrnoStatus("epoll_wait");
  }
  MKS_ASSERT_LE(count, kMaxEventsPerTurn);
  for (int index = 0; index < count; ++index) {
    Dispatch(events[index].data.u64, FromEpollEvents(events[index].events));
  }
  RunDueWork();
  RunEndOfTurnTasks();
  MKS_ASSERT(end_of_turn_tasks_.empty());
  return Status::Ok();
}

void Reactor::Dispatch(uint64_t watch_id, uint32_t events) {
  const auto found = watchers_.find(watch_id);
  if (found == watchers_.end()) return;  // unwatched earlier this turn
  // Hold the watcher: the callback may unwatch its own fd, which must not
  // destroy the function while it runs.
  const std::shared_ptr<Watcher> watcher = found->second;
  MKS_ASSERT_NE(events, 0u);
  ++dispatched_events_;
  watcher->callback(events);
}

Result<bool> Reactor::RunUntil(const std::function<bool()>& done,
                               int64_t timeout_ns) {
  MKS_ASSERT_GE(timeout_ns, 0);
  const int64_t deadline_ns = scheduler_->NowNanos() + timeout_ns;
  while (!done()) {
    const int64_t left_ns = deadline_ns - scheduler_->NowNanos();
    if (left_ns <= 0 || stop_requested_.load(std::memory_order_acquire)) {
      return done();
    }
    MKS_RETURN_IF_ERROR(RunOnce(left_ns));
  }
  return true;
}

void Reactor::Stop() {
  stop_requested_.store(true, std::memory_order_release);
  const uint64_t one = 1;
  // write() is async-signal-safe; a full counter (EAGAIN) already wakes the
  // loop, so the result needs no handling.
  [[maybe_unused]] const ssize_t written = write(wake_.get(), &one, sizeof(one));
}

void Reactor::Post(runtime::UniqueFunction<void()> task) {
  MKS_ASSERT(static_cast<bool>(task));
  {
    const std::lock_guard<std::mutex> lock(posted_mutex_);
    posted_tasks_.push_back(std::move(task));
  }
  const uint64_t one = 1;
  // A full counter (EAGAIN) already wakes the loop.
  [[maybe_unused]] const ssize_t written = write(wake_.get(), &one, sizeof(one));
}

void Reactor::DrainWake() {
  uint64_t count = 0;
  while (read(wake_.get(), &count, sizeof(count)) == sizeof(count)) {
  }
  // After draining: a task posted from now on writes the eventfd again.
  RunPostedTasks();
}

void Reactor::RunPostedTasks() {
  std::vector<runtime::UniqueFunction<void()>> tasks;
  {
    const std::lock_guard<std::mutex> lock(posted_mutex_);
    tasks.swap(posted_tasks_);
  }
  for (runtime::UniqueFunction<void()>& task : tasks) {
    MKS_ASSERT(static_cast<bool>(task));
    task();
  }
}

Status Reactor::StopOnSignals(std::initializer_list<int> signals) {
  MKS_ASSERT(!signals_.valid());
  MKS_ASSERT_GT(signals.size(), 0u);
  sigset_t mask;
  sigemptyset(&mask);
  for (const int signal_number : signals) sigaddset(&mask, signal_number);
  if (pthread_sigmask(SIG_BLOCK, &mask, nullptr) != 0) {
    return Status::IOError("pthread_sigmask failed");
  }
  signals_ = FileDescriptor(signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC));
  if (!signals_.valid()) return ErrnoStatus("signalfd");
  return Watch(signals_.get(), kReadable, [this](uint32_t) { DrainSignals(); });
}

void Reactor::DrainSignals() {
  signalfd_siginfo info{};
  while (read(signals_.get(), &info, sizeof(info)) == sizeof(info)) {
    MKS_ASSERT_GT(info.ssi_signo, 0u);
    if (stop_signal_ == 0) stop_signal_ = static_cast<int>(info.ssi_signo);
    Stop();
  }
}

}  // namespace mks::net
