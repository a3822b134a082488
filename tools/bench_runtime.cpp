// Microbenchmarks of the fiber runtime: a context switch, a spawn that runs
// to completion, and a promise/future round trip between two fibers.
// Run by hand: ./build/tools/bench-runtime (use a release build for targets).
#include <benchmark/benchmark.h>

#include <deque>
#include <optional>

#include "core/runtime/manual_clock.h"
#include "core/runtime/scheduler.h"

namespace mks::runtime {
namespace {

// One fiber yields kYields times inside one RunReady(): RunReady() drains
// the ready queue, so every Yield is one switch out to the scheduler and one
// switch back in. Time per switch is the iteration time / (2 * kYields).
void BM_FiberSwitch(benchmark::State& state) {
  constexpr int kYields = 1000;
  ManualClock clock;
  Scheduler scheduler(&clock);
  const ProcessId p = scheduler.CreateProcess("bench");
  for (auto _ : state) {
    auto spinner = scheduler.Spawn(p, "spin", [&scheduler] {
      for (int i = 0; i < kYields; ++i) scheduler.Yield();
    });
    scheduler.RunReady();
    benchmark::DoNotOptimize(spinner.IsReady());
  }
  state.counters["ns_per_switch"] = benchmark::Counter(
      static_cast<double>(state.iterations()) * 2 * kYields,
      benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}
BENCHMARK(BM_FiberSwitch);

void BM_SpawnToFinish(benchmark::State& state) {
  ManualClock clock;
  Scheduler scheduler(&clock);
  const ProcessId p = scheduler.CreateProcess("bench");
  int64_t counter = 0;
  for (auto _ : state) {
    auto done = scheduler.Spawn(p, "", [&counter] { ++counter; });
    scheduler.RunReady();
    benchmark::DoNotOptimize(done.IsReady());
  }
  benchmark::DoNotOptimize(counter);
}
BENCHMARK(BM_SpawnToFinish);

// A requester fiber hands a promise to a responder fiber, wakes it, and
// waits for the answer: two wake-ups and four switches per round trip.
void BM_FutureRoundTrip(benchmark::State& state) {
  ManualClock clock;
  Scheduler scheduler(&clock);
  const ProcessId p = scheduler.CreateProcess("bench");
  std::deque<Promise<int>> inbox;
  bool stop = false;
  std::optional<Promise<void>> wake_responder;
  auto responder = scheduler.Spawn(p, "responder", [&] {
    while (!stop) {
      wake_responder.emplace(&scheduler);
      MKS_ASSERT(wake_responder->GetFuture().Get().ok());
      while (!inbox.empty()) {
        inbox.front().SetValue(1);
        inbox.pop_front();
      }
    }
  });
  scheduler.RunReady();  // the responder parks on its wake-up
  int64_t sum = 0;
  for (auto _ : state) {
    auto requester = scheduler.Spawn(p, "requester", [&] {
      Promise<int> promise(&scheduler);
      Future<int> future = promise.GetFuture();
      inbox.push_back(std::move(promise));
      wake_responder->SetValue();
      sum += *future.Get();
    });
    scheduler.RunReady();
  }
  stop = true;
  wake_responder->SetValue();
  scheduler.RunReady();
  benchmark::DoNotOptimize(sum);
}
BENCHMARK(BM_FutureRoundTrip);

}  // namespace
}  // namespace mks::runtime

BENCHMARK_MAIN();
