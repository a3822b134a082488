#include "net/reactor.h"

#include <gtest/gtest.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <string>
#include <thread>
#include <vector>

#include "net/system_clock.h"

namespace mks::net {
namespace {

constexpr int64_t kTestTimeoutNs = 10'000'000'000;  // a hang guard, not a measurement

class ReactorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Result<std::unique_ptr<Reactor>> created = Reactor::Create(&scheduler_);
    ASSERT_TRUE(created.ok()) << created.status();
    reactor_ = std::move(*created);
    process_ = scheduler_.CreateProcess("test");
  }

  SystemClock clock_;
  runtime::Scheduler scheduler_{&clock_};
  std::unique_ptr<Reactor> reactor_;
  runtime::ProcessId process_ = 0;
};

// A pipe whose ends close with the test.
struct Pipe {
  Pipe() {
    int fds[2];
    EXPECT_EQ(pipe2(fds, O_NONBLOCK | O_CLOEXEC), 0);
    read_end = FileDescriptor(fds[0]);
    write_end = FileDescriptor(fds[1]);
  }
  FileDescriptor read_end;
  FileDescriptor write_end;
};

TEST_F(ReactorTest, SystemClockMovesForwardAndMatchesWallTime) {
  const int64_t first = clock_.MonotonicNanos();
  const int64_t second = clock_.MonotonicNanos();
  EXPECT_LE(first, second);
  // 2020-01-01 in microseconds: any sane machine is past it.
  EXPECT_GT(clock_.WallMicros(), int64_t{1'577'836'800'000'000});
}

TEST_F(ReactorTest, EndOfTurnTasksRunAfterTheTurnsFibersInOrderOnce) {
  std::vector<std::string> order;
  scheduler_.Spawn(process_, "writer", [&] {
    order.push_back("fiber 1");
    reactor_->AtEndOfTurn([&] {
      order.push_back("task 1");
      reactor_->AtEndOfTurn([&] { order.push_back("task added by task 1"); });
    });
    scheduler_.Yield();
    order.push_back("fiber 1 again");
  });
  scheduler_.Spawn(process_, "other", [&] {
    order.push_back("fiber 2");
    reactor_->AtEndOfTurn([&] { order.push_back("task 2"); });
  });
  ASSERT_TRUE(reactor_->RunOnce(0).ok());
  EXPECT_EQ(order, (std::vector<std::string>{"fiber 1", "fiber 2", "fiber 1 again",
                                             "task 1", "task 2",
                                             "task added by task 1"}));
  ASSERT_TRUE(reactor_->RunOnce(0).ok());
  EXPECT_EQ(order.size(), 6u);  // each task ran once
}

TEST_F(ReactorTest, EndOfTurnTasksAddedOutsideATurnRunOnTheNextOne) {
  int runs = 0;
  reactor_->AtEndOfTurn([&] { ++runs; });
  EXPECT_EQ(runs, 0);
  // Polls without waiting: the task must have run before the loop waits.
  ASSERT_TRUE(reactor_->RunOnce(0).ok());
  EXPECT_EQ(runs, 1);
}

TEST_F(ReactorTest, FibersSleepThroughTheReactorsTimers) {
  std::vector<int> order;
  scheduler_.Spawn(process_, "late", [&] {
    scheduler_.SleepFor(20'000'000);
    order.push_back(2);
  });
  scheduler_.Spawn(process_, "early", [&] {
    scheduler_.SleepFor(5'000'000);
    order.push_back(1);
  });
  const int64_t start_ns = clock_.MonotonicNanos();
  Result<bool> done =
      reactor_->RunUntil([&] { return order.size() == 2; }, kTestTimeoutNs);
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_TRUE(*done);
  EXPECT_EQ(order, (std::vector<int>{1, 2}));
  // A timer never fires before its deadline.
  EXPECT_GE(clock_.MonotonicNanos() - start_ns, 20'000'000);
}

TEST_F(ReactorTest, SelfRearmingTimerDoesNotStarveIo) {
  // Re-arms itself with no delay forever; I/O must still get its turn.
  std::function<void()> rearm = [&] { scheduler_.After(process_, 0, rearm); };
  scheduler_.After(process_, 0, rearm);
  Pipe pipe;
  bool readable = false;
  ASSERT_TRUE(reactor_->Watch(pipe.read_end.get(), kReadable, [&](uint32_t) {
    readable = true;
  }).ok());
  ASSERT_EQ(write(pipe.write_end.get(), "x", 1), 1);
  Result<bool> done = reactor_->RunUntil([&] { return readable; }, kTestTimeoutNs);
  EXPECT_TRUE(done.ok() && *done);
  reactor_->Unwatch(pipe.read_end.get());
  scheduler_.Kill(process_);  // drops the timer
}

TEST_F(ReactorTest, DispatchesReadinessToTheWatcher) {
  Pipe pipe;
  std::string received;
  ASSERT_TRUE(reactor_->Watch(pipe.read_end.get(), kReadable, [&](uint32_t events) {
    EXPECT_TRUE(events & kReadable);
    char buffer[16];
    const ssize_t count = read(pipe.read_end.get(), buffer, sizeof(buffer));
    if (count > 0) received.append(buffer, static_cast<size_t>(count));
  }).ok());
  ASSERT_EQ(write(pipe.write_end.get(), "ping", 4), 4);
  Result<bool> done = reactor_->RunUntil([&] { return received == "ping"; },
                                         kTestTimeoutNs);
  EXPECT_TRUE(done.ok() && *done);
  EXPECT_EQ(reactor_->Watch(pipe.read_end.get(), kReadable, [](uint32_t) {}).code(),
            StatusCode::kInvalidArgument);
  reactor_->Unwatch(pipe.read_end.get());
}

TEST_F(ReactorTest, UnwatchedDescriptorGetsNoLateCallback) {
  Pipe first;
  Pipe second;
  int calls = 0;
  // Both become ready in the same turn; whichever runs first unwatches the
  // other, whose collected readiness must then be dropped.
  ASSERT_TRUE(reactor_->Watch(first.read_end.get(), kReadable, [&](uint32_t) {
    ++calls;
    reactor_->Unwatch(second.read_end.get());
    reactor_->Unwatch(first.read_end.get());
  }).ok());
  ASSERT_TRUE(reactor_->Watch(second.read_end.get(), kReadable, [&](uint32_t) {
    ++calls;
    reactor_->Unwatch(first.read_end.get());
    reactor_->Unwatch(second.read_end.get());
  }).ok());
  ASSERT_EQ(write(first.write_end.get(), "x", 1), 1);
  ASSERT_EQ(write(second.write_end.get(), "y", 1), 1);
  ASSERT_TRUE(reactor_->RunOnce(kTestTimeoutNs).ok());
  ASSERT_TRUE(reactor_->RunOnce(0).ok());
  EXPECT_EQ(calls, 1);
}

TEST_F(ReactorTest, StopFromAFiberEndsRun) {
  scheduler_.Spawn(process_, "stopper", [&] {
    scheduler_.SleepFor(1'000'000);
    reactor_->Stop();
  });
  EXPECT_TRUE(reactor_->Run().ok());
  EXPECT_EQ(reactor_->stop_signal(), 0);
  EXPECT_EQ(scheduler_.fiber_count(), 0u);
}

TEST_F(ReactorTest, StopFromAnotherThreadWakesABlockedLoop) {
  std::thread stopper([&] { reactor_->Stop(); });
  EXPECT_TRUE(reactor_->Run().ok());  // no timers: blocks until woken
  stopper.join();
}

TEST_F(ReactorTest, PostedTasksRunOnTheLoopThreadInOrder) {
  constexpr int kTasks = 200;
  const std::thread::id loop_thread = std::this_thread::get_id();
  std::vector<int> ran;  // touched only on the loop thread
  std::thread poster([&] {
    for (int i = 0; i < kTasks; ++i) {
      reactor_->Post([&, i] {
        EXPECT_EQ(std::this_thread::get_id(), loop_thread);
        EXPECT_FALSE(scheduler_.InFiber());
        ran.push_back(i);
        if (i == kTasks - 1) reactor_->Stop();
      });
    }
  });
  EXPECT_TRUE(reactor_->Run().ok());  // no timers: only the posts wake it
  poster.join();
  ASSERT_EQ(ran.size(), static_cast<size_t>(kTasks));
  for (int i = 0; i < kTasks; ++i) EXPECT_EQ(ran[static_cast<size_t>(i)], i);
}

TEST_F(ReactorTest, TasksStillQueuedAtDestructionNeverRun) {
  bool ran = false;
  reactor_->Post([&ran] { ran = true; });
  reactor_.reset();
  EXPECT_FALSE(ran);
}

TEST_F(ReactorTest, SignalStopsTheLoop) {
  ASSERT_TRUE(reactor_->StopOnSignals({SIGUSR1}).ok());
  scheduler_.Spawn(process_, "signaller", [&] {
    scheduler_.SleepFor(1'000'000);
    ASSERT_EQ(raise(SIGUSR1), 0);
  });
  EXPECT_TRUE(reactor_->Run().ok());
  EXPECT_EQ(reactor_->stop_signal(), SIGUSR1);
}

}  // namespace
}  // namespace mks::net
