#include "core/runtime/scheduler.h"

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <map>
#include <stdexcept>
#include <tuple>
#include <string>
#include <vector>

#include "core/runtime/manual_clock.h"

namespace mks::runtime {
namespace {

constexpr int64_t kMs = 1000000;

class SchedulerTest : public ::testing::Test {
 protected:
  ManualClock clock_;
  Scheduler scheduler_{&clock_};
  void Drive() { DriveUntilQuiet(scheduler_, clock_); }
};

// Counts live instances, so tests can see that a killed fiber's stack
// objects were destroyed.
struct LiveCounter {
  explicit LiveCounter(int* live) : live_(live) { ++*live_; }
  ~LiveCounter() { --*live_; }
  LiveCounter(const LiveCounter&) = delete;
  LiveCounter& operator=(const LiveCounter&) = delete;
  int* live_;
};

TEST_F(SchedulerTest, PingPongBetweenTwoProcesses) {
  const ProcessId a = scheduler_.CreateProcess("a");
  const ProcessId b = scheduler_.CreateProcess("b");
  constexpr int kRounds = 100;
  std::vector<std::string> log;
  // Each round trip passes a promise to the other side through a mailbox.
  std::deque<Promise<int>> to_b;
  std::deque<Promise<int>> to_a;
  Promise<void> b_ready(&scheduler_);
  auto pinger = scheduler_.Spawn(a, "ping", [&] {
    for (int i = 0; i < kRounds; ++i) {
      Promise<int> reply(&scheduler_);
      Future<int> answer = reply.GetFuture();
      to_a.push_back(std::move(reply));
      log.push_back("ping " + std::to_string(i));
      scheduler_.Yield();
      Result<int> got = answer.Get();
      EXPECT_TRUE(got.ok());
      EXPECT_EQ(*got, i * 2);
    }
    return kRounds;
  });
  auto ponger = scheduler_.Spawn(b, "pong", [&] {
    for (int i = 0; i < kRounds; ++i) {
      while (to_a.empty()) scheduler_.Yield();
      Promise<int> reply = std::move(to_a.front());
      to_a.pop_front();
      log.push_back("pong " + std::to_string(i));
      reply.SetValue(i * 2);
    }
  });
  Drive();
  ASSERT_TRUE(pinger.IsReady());
  ASSERT_TRUE(ponger.IsReady());
  EXPECT_EQ(*pinger.Get(), kRounds);
  EXPECT_TRUE(ponger.Get().ok());
  ASSERT_EQ(log.size(), 2u * kRounds);
  for (int i = 0; i < kRounds; ++i) {
    EXPECT_EQ(log[2 * i], "ping " + std::to_string(i));
    EXPECT_EQ(log[2 * i + 1], "pong " + std::to_string(i));
  }
  EXPECT_EQ(scheduler_.fiber_count(), 0u);
}

TEST_F(SchedulerTest, SleepersWakeInDeadlineOrderAtTheirDeadlines) {
  const ProcessId p = scheduler_.CreateProcess("p");
  std::vector<std::pair<int, int64_t>> wakes;  // (sleeper, time woken)
  for (int sleeper : {3, 1, 2}) {
    auto done = scheduler_.Spawn(p, "sleeper", [&, sleeper] {
      scheduler_.SleepFor(sleeper * 10 * kMs);
      wakes.emplace_back(sleeper, scheduler_.NowNanos());
    });
    (void)done;
  }
  Drive();
  ASSERT_EQ(wakes.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(wakes[i].first, i + 1);
    EXPECT_EQ(wakes[i].second, (i + 1) * 10 * kMs);
  }
}

TEST_F(SchedulerTest, EqualDeadlinesFireInCreationOrder) {
  const ProcessId p = scheduler_.CreateProcess("p");
  std::vector<int> order;
  for (int i = 0; i < 10; ++i) {
    scheduler_.At(p, 5 * kMs, [&order, i] { order.push_back(i); });
  }
  Drive();
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
}

TEST_F(SchedulerTest, GetForTimesOutThenStillReceivesTheValue) {
  const ProcessId p = scheduler_.CreateProcess("p");
  Promise<std::string> promise(&scheduler_);
  Future<std::string> future = promise.GetFuture();
  scheduler_.At(p, 50 * kMs, [&] { promise.SetValue("late"); });
  std::vector<std::string> seen;
  auto waiter = scheduler_.Spawn(p, "waiter", [&] {
    Result<std::string> first = future.GetFor(20 * kMs);
    EXPECT_TRUE(first.status().IsTimedOut()) << first.status();
    seen.push_back("timeout@" + std::to_string(scheduler_.NowNanos() / kMs));
    Result<std::string> second = future.GetFor(100 * kMs);
    EXPECT_TRUE(second.ok());
    seen.push_back(*second + "@" + std::to_string(scheduler_.NowNanos() / kMs));
  });
  Drive();
  EXPECT_EQ(seen, (std::vector<std::string>{"timeout@20", "late@50"}));
  EXPECT_TRUE(waiter.Get().ok());
  EXPECT_EQ(scheduler_.timer_count(), 0u);  // the unused timeout was cancelled
}

TEST_F(SchedulerTest, WaitAnyReturnsTheFirstReady) {
  const ProcessId p = scheduler_.CreateProcess("p");
  std::vector<Promise<int>> promises;
  std::vector<Future<int>> futures;
  for (int i = 0; i < 3; ++i) {
    promises.emplace_back(&scheduler_);
    futures.push_back(promises.back().GetFuture());
  }
  scheduler_.At(p, 30 * kMs, [&] { promises[0].SetValue(0); });
  scheduler_.At(p, 10 * kMs, [&] { promises[2].SetValue(2); });
  scheduler_.At(p, 20 * kMs, [&] { promises[1].SetValue(1); });
  size_t first = 99;
  int64_t when = 0;
  auto waiter = scheduler_.Spawn(p, "any", [&] {
    first = WaitAny<int>(&scheduler_, futures);
    when = scheduler_.NowNanos();
    Result<size_t> none = WaitAnyFor<int>(&scheduler_, std::span(futures).subspan(0, 1), 5 * kMs);
    EXPECT_TRUE(none.status().IsTimedOut());
  });
  Drive();
  EXPECT_EQ(first, 2u);
  EXPECT_EQ(when, 10 * kMs);
  EXPECT_TRUE(waiter.Get().ok());
}

TEST_F(SchedulerTest, DestroyedPromiseGivesWaiterBrokenPromise) {
  const ProcessId p = scheduler_.CreateProcess("p");
  auto promise = std::make_unique<Promise<int>>(&scheduler_);
  Future<int> future = promise->GetFuture();
  Status seen;
  auto waiter = scheduler_.Spawn(p, "w", [&] { seen = future.Get().status(); });
  scheduler_.At(p, kMs, [&] { promise.reset(); });
  Drive();
  EXPECT_EQ(seen.code(), StatusCode::kBrokenPromise) << seen;
  EXPECT_TRUE(waiter.Get().ok());
}

TEST_F(SchedulerTest, KillDestroysFibersTimersAndLeavesOthersAlone) {
  const ProcessId victim = scheduler_.CreateProcess("victim");
  const ProcessId bystander = scheduler_.CreateProcess("bystander");
  int live = 0;
  int victim_timer_fired = 0;
  Promise<int> never(&scheduler_);
  Future<int> never_future = never.GetFuture();
  // The victim holds a promise that the bystander waits on.
  auto victims_promise = std::make_shared<std::optional<Promise<int>>>();
  Future<int> from_victim;
  {
    victims_promise->emplace(&scheduler_);
    from_victim = (*victims_promise)->GetFuture();
  }
  auto sleeper = scheduler_.Spawn(victim, "sleeper", [&] {
    LiveCounter guard(&live);
    scheduler_.SleepFor(1000 * kMs);
    ADD_FAILURE() << "sleeper survived the kill";
  });
  auto waiter = scheduler_.Spawn(victim, "waiter", [&, victims_promise] {
    LiveCounter guard(&live);
    Promise<int> mine = std::move(**victims_promise);
    victims_promise->reset();
    (void)never_future.Get();
    ADD_FAILURE() << "waiter survived the kill";
  });
  scheduler_.At(victim, 500 * kMs, [&] { ++victim_timer_fired; });
  Status bystander_saw;
  int64_t bystander_woke_ns = -1;
  auto observer = scheduler_.Spawn(bystander, "observer", [&] {
    bystander_saw = from_victim.Get().status();
    bystander_woke_ns = scheduler_.NowNanos();
    scheduler_.SleepFor(2000 * kMs);
  });
  scheduler_.At(bystander, 100 * kMs, [&] { scheduler_.Kill(victim); });
  scheduler_.RunReady();
  EXPECT_EQ(live, 2);
  Drive();
  EXPECT_EQ(live, 0);
  EXPECT_EQ(victim_timer_fired, 0);
  EXPECT_FALSE(scheduler_.IsAlive(victim));
  EXPECT_TRUE(scheduler_.IsAlive(bystander));
  EXPECT_EQ(bystander_saw.code(), StatusCode::kBrokenPromise);
  EXPECT_EQ(bystander_woke_ns, 100 * kMs);
  EXPECT_EQ(sleeper.Get().status().code(), StatusCode::kBrokenPromise);
  EXPECT_EQ(waiter.Get().status().code(), StatusCode::kBrokenPromise);
  EXPECT_TRUE(observer.Get().ok());
  EXPECT_EQ(clock_.MonotonicNanos(), 2100 * kMs);
  // Spawning into a dead process never runs the body.
  bool ran = false;
  auto late = scheduler_.Spawn(victim, "late", [&] { ran = true; });
  Drive();
  EXPECT_FALSE(ran);
  EXPECT_EQ(late.Get().status().code(), StatusCode::kCancelled);
}

TEST_F(SchedulerTest, AFiberCanKillItsOwnProcess) {
  const ProcessId p = scheduler_.CreateProcess("p");
  int live = 0;
  bool after_kill = false;
  auto sibling = scheduler_.Spawn(p, "sibling", [&] {
    LiveCounter guard(&live);
    scheduler_.SleepFor(kMs);
  });
  auto suicidal = scheduler_.Spawn(p, "suicidal", [&] {
    LiveCounter guard(&live);
    scheduler_.Kill(p);
    after_kill = true;
  });
  Drive();
  EXPECT_FALSE(after_kill);
  EXPECT_EQ(live, 0);
  EXPECT_EQ(scheduler_.fiber_count(), 0u);
  EXPECT_EQ(sibling.Get().status().code(), StatusCode::kBrokenPromise);
  EXPECT_EQ(suicidal.Get().status().code(), StatusCode::kBrokenPromise);
}

TEST_F(SchedulerTest, NestedSpawnsRunAfterTheirParentYields) {
  const ProcessId p = scheduler_.CreateProcess("p");
  std::vector<std::string> order;
  auto root = scheduler_.Spawn(p, "root", [&] {
    order.push_back("root start");
    auto child = scheduler_.Spawn(p, "child", [&] {
      order.push_back("child start");
      auto grandchild = scheduler_.Spawn(p, "grandchild", [&] {
        order.push_back("grandchild");
        return 7;
      });
      const int value = *grandchild.Get();
      order.push_back("child end");
      return value * 6;
    });
    order.push_back("root waits");
    const int answer = *child.Get();
    order.push_back("root end");
    return answer;
  });
  Drive();
  EXPECT_EQ(*root.Get(), 42);
  EXPECT_EQ(order, (std::vector<std::string>{"root start", "root waits",
                                             "child start", "grandchild",
                                             "child end", "root end"}));
}

TEST_F(SchedulerTest, AnExceptionInAFiberBecomesAnErrorAndOthersGoOn) {
  const ProcessId p = scheduler_.CreateProcess("p");
  int live = 0;
  auto thrower = scheduler_.Spawn(p, "thrower", [&]() -> int {
    LiveCounter guard(&live);
    scheduler_.SleepFor(kMs);
    throw std::runtime_error("boom");
  });
  auto survivor = scheduler_.Spawn(p, "survivor", [&] {
    scheduler_.SleepFor(2 * kMs);
    return std::string("fine");
  });
  Drive();
  Result<int> thrown = thrower.Get();
  EXPECT_EQ(thrown.status().code(), StatusCode::kInternal);
  EXPECT_NE(thrown.status().message().find("boom"), std::string::npos);
  EXPECT_EQ(*survivor.Get(), "fine");
  EXPECT_EQ(live, 0);
  EXPECT_EQ(scheduler_.fiber_failures(), 1u);
  EXPECT_TRUE(scheduler_.IsAlive(p));
}

TEST_F(SchedulerTest, DestroyingTheSchedulerUnwindsSuspendedFibers) {
  int live = 0;
  {
    ManualClock clock;
    Scheduler scheduler(&clock);
    const ProcessId p = scheduler.CreateProcess("p");
    for (int i = 0; i < 10; ++i) {
      auto f = scheduler.Spawn(p, "f", [&] {
        LiveCounter guard(&live);
        scheduler.SleepFor(kMs * 1000);
      });
      (void)f;
    }
    scheduler.RunReady();
    EXPECT_EQ(live, 10);
  }
  EXPECT_EQ(live, 0);
}

// ---- Determinism: random programs run in the same order twice ----

// One step of a random program, interpreted by RunProgram.
struct Step {
  enum Kind { kSpawn, kSleep, kWake, kKill, kYield } kind;
  uint32_t a;  // process or fiber selector
  uint32_t b;  // duration or target selector
};

std::vector<std::string> RunProgram(const std::vector<Step>& program) {
  ManualClock clock;
  Scheduler scheduler(&clock);
  std::vector<ProcessId> processes;
  for (int i = 0; i < 3; ++i) processes.push_back(scheduler.CreateProcess("p" + std::to_string(i)));
  std::vector<std::string> trace;
  std::vector<Promise<void>> gates;  // promises that kWake fulfils
  std::vector<Future<void>> gate_futures;
  size_t cursor = 0;
  // Each fiber interprets the program from a shared cursor until it ends, so
  // spawns, sleeps and kills interleave through the scheduler.
  std::function<void(int)> worker = [&](int fiber_number) {
    while (cursor < program.size()) {
      const Step step = program[cursor++];
      trace.push_back(std::to_string(fiber_number) + ":" + std::to_string(step.kind) +
                      "@" + std::to_string(clock.MonotonicNanos()));
      switch (step.kind) {
        case Step::kSpawn: {
          const ProcessId target = processes[step.a % processes.size()];
          const int child = static_cast<int>(cursor) * 10 + fiber_number;
          auto f = scheduler.Spawn(target, "w", [&worker, child] { worker(child); });
          (void)f;
          break;
        }
        case Step::kSleep:
          scheduler.SleepFor((step.b % 5) * kMs);
          break;
        case Step::kWake:
          if (!gates.empty()) {
            const size_t i = step.b % gates.size();
            if (!gates[i].IsFulfilled()) gates[i].SetValue();
          } else {
            gates.emplace_back(&scheduler);
            gate_futures.push_back(gates.back().GetFuture());
            Future<void> mine = std::move(gate_futures.back());
            gate_futures.pop_back();
            (void)mine.GetFor(3 * kMs);
          }
          break;
        case Step::kKill:
          if (step.b % 4 == 0) scheduler.Kill(processes[step.a % processes.size()]);
          break;
        case Step::kYield:
          scheduler.Yield();
          break;
      }
    }
  };
  auto root = scheduler.Spawn(processes[0], "root", [&] { worker(0); });
  (void)root;
  DriveUntilQuiet(scheduler, clock);
  trace.push_back("end@" + std::to_string(clock.MonotonicNanos()) + " switches=" +
                  std::to_string(scheduler.fiber_switches()));
  return trace;
}

RC_GTEST_PROP(SchedulerProperty, RandomProgramsRunInTheSameOrderTwice, ()) {
  const auto program = *rc::gen::container<std::vector<Step>>(rc::gen::build<Step>(
      rc::gen::set(&Step::kind, rc::gen::element(Step::kSpawn, Step::kSleep, Step::kWake,
                                                 Step::kKill, Step::kYield)),
      rc::gen::set(&Step::a, rc::gen::inRange<uint32_t>(0, 8)),
      rc::gen::set(&Step::b, rc::gen::inRange<uint32_t>(0, 8))));
  const auto first = RunProgram(program);
  const auto second = RunProgram(program);
  RC_ASSERT(first == second);
}

TEST_F(SchedulerTest, PausedProcessRunsNothingUntilUnpaused) {
  const ProcessId frozen = scheduler_.CreateProcess("frozen");
  const ProcessId other = scheduler_.CreateProcess("other");
  std::vector<std::string> log;
  scheduler_.Spawn(frozen, "sleeper", [&] {
    log.push_back("frozen starts");
    scheduler_.SleepFor(10 * kMs);
    log.push_back("frozen wakes at " + std::to_string(clock_.MonotonicNanos() / kMs));
  });
  scheduler_.RunReady();
  scheduler_.Pause(frozen);
  EXPECT_TRUE(scheduler_.IsPaused(frozen));
  scheduler_.After(frozen, 5 * kMs, [&] { log.push_back("frozen timer"); });
  scheduler_.After(other, 20 * kMs, [&] { log.push_back("other timer"); });
  Drive();
  ASSERT_EQ(log.size(), 2u);
  EXPECT_EQ(log[1], "other timer");
  clock_.AdvanceTo(30 * kMs);
  scheduler_.Unpause(frozen);
  EXPECT_FALSE(scheduler_.IsPaused(frozen));
  Drive();
  ASSERT_EQ(log.size(), 4u);
  // Held work runs at unpause time, in its original order.
  EXPECT_EQ(log[2], "frozen timer");
  EXPECT_EQ(log[3], "frozen wakes at 30");
}

// A deadline timer that came due while its process was paused can still be
// cancelled by whoever holds its id (an RPC reply arriving after the pause).
TEST_F(SchedulerTest, TimersHeldByAPauseCanStillBeCancelled) {
  const ProcessId frozen = scheduler_.CreateProcess("frozen");
  int cancelled_fired = 0;
  int kept_fired = 0;
  const TimerId doomed = scheduler_.After(frozen, kMs, [&] { ++cancelled_fired; });
  scheduler_.After(frozen, 2 * kMs, [&] { ++kept_fired; });
  scheduler_.Pause(frozen);
  Drive();
  scheduler_.Cancel(doomed);
  scheduler_.Unpause(frozen);
  Drive();
  EXPECT_EQ(cancelled_fired, 0);
  EXPECT_EQ(kept_fired, 1);
  scheduler_.Cancel(doomed);  // cancelling again is a no-op
}

TEST_F(SchedulerTest, KillingAPausedProcessDropsWhatItHeld) {
  const ProcessId frozen = scheduler_.CreateProcess("frozen");
  int fired = 0;
  scheduler_.After(frozen, kMs, [&] { ++fired; });
  scheduler_.Pause(frozen);
  Drive();
  scheduler_.Kill(frozen);
  scheduler_.Unpause(frozen);
  Drive();
  EXPECT_EQ(fired, 0);
  EXPECT_FALSE(scheduler_.IsPaused(frozen));
}

// Many cancelled far-off timers (unused RPC deadlines) must not delay or
// reorder the live ones, however many pile up.
TEST_F(SchedulerTest, CancelledTimersDoNotDisturbLiveOnes) {
  const ProcessId process = scheduler_.CreateProcess("p");
  std::vector<int> log;
  for (int i = 0; i < 10000; ++i) {
    const TimerId unused = scheduler_.After(process, 1000 * kMs + i, [&] { log.push_back(-1); });
    if (i % 1000 == 0) scheduler_.After(process, 2 * kMs - i, [&, i] { log.push_back(i); });
    scheduler_.Cancel(unused);
  }
  EXPECT_EQ(scheduler_.timer_count(), 10u);
  EXPECT_EQ(scheduler_.NextDeadlineNanos(), 2 * kMs - 9000);
  Drive();
  EXPECT_EQ(log, (std::vector<int>{9000, 8000, 7000, 6000, 5000, 4000, 3000, 2000, 1000, 0}));
  EXPECT_EQ(scheduler_.timer_count(), 0u);
  EXPECT_FALSE(scheduler_.NextDeadlineNanos().has_value());
}

// The timer queue against a plain ordered model: under any mix of At,
// Cancel (of pending, held, fired or long-gone timers), Pause, Unpause,
// Kill and time passing, timers fire in (deadline, creation) order, held
// ones after Unpause, and NextDeadlineNanos and timer_count agree.
RC_GTEST_PROP(SchedulerTimerProperty, FiresLikeAnOrderedModel,
              (const std::vector<std::tuple<uint8_t, uint8_t, uint8_t>>& script)) {
  struct ModelTimer {
    ProcessId process;
    int label;
    bool held;
  };
  ManualClock clock;
  Scheduler scheduler(&clock);
  constexpr ProcessId kProcesses = 3;
  for (ProcessId p = 1; p <= kProcesses; ++p) scheduler.CreateProcess("p");
  std::map<std::pair<int64_t, uint64_t>, ModelTimer> model;
  std::vector<bool> paused(kProcesses + 1, false);
  std::vector<bool> alive(kProcesses + 1, true);
  std::vector<TimerId> issued;
  std::vector<int> fired;
  std::vector<int> expected;
  int next_label = 0;
  for (const auto& [kind, a, b] : script) {
    const ProcessId process = 1 + a % kProcesses;
    switch (kind % 6) {
      case 0: case 1: {  // At
        const int label = next_label++;
        const TimerId id = scheduler.After(process, (b % 16) * kMs,
                                           [&fired, label] { fired.push_back(label); });
        if (!alive[process]) {
          RC_ASSERT(id.sequence == 0u);
          break;
        }
        issued.push_back(id);
        model[{id.deadline_ns, id.sequence}] = ModelTimer{process, label, false};
        break;
      }
      case 2:  // Cancel
        if (issued.empty()) break;
        scheduler.Cancel(issued[b % issued.size()]);
        model.erase({issued[b % issued.size()].deadline_ns, issued[b % issued.size()].sequence});
        break;
      case 3:  // Pause or Unpause
        if (b % 2 == 0) {
          scheduler.Pause(process);
          paused[process] = alive[process];
        } else {
          scheduler.Unpause(process);
          paused[process] = false;
          for (auto& [id, timer] : model) {
            if (timer.process == process) timer.held = false;
          }
        }
        break;
      case 4:  // Kill
        if (b % 4 != 0) break;  // rarer than the rest
        scheduler.Kill(process);
        alive[process] = false;
        paused[process] = false;
        std::erase_if(model, [&](const auto& entry) { return entry.second.process == process; });
        break;
      case 5: {  // time passes; everything due fires or is held
        clock.AdvanceTo(clock.MonotonicNanos() + (b % 8) * kMs);
        for (;;) {
          auto due = std::find_if(model.begin(), model.end(),
                                  [](const auto& entry) { return !entry.second.held; });
          const bool model_fires =
              due != model.end() && due->first.first <= clock.MonotonicNanos();
          RC_ASSERT(scheduler.FireNextTimer() == model_fires);
          if (!model_fires) break;
          if (paused[due->second.process]) {
            due->second.held = true;
          } else {
            expected.push_back(due->second.label);
            model.erase(due);
          }
        }
        break;
      }
    }
    size_t queued = 0;
    std::optional<int64_t> next;
    for (const auto& [id, timer] : model) {
      if (timer.held) continue;
      ++queued;
      if (!next) next = id.first;
    }
    RC_ASSERT(scheduler.timer_count() == queued);
    RC_ASSERT(scheduler.NextDeadlineNanos() == next);
    RC_ASSERT(fired == expected);
  }
}

}  // namespace
}  // namespace mks::runtime
