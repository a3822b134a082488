// Microbenchmarks of the fiber runtime: a context switch, a spawn that runs
// to completion, and a promise/future round trip between two fibers.
// Run by hand: ./build/tools/bench-runtime (use a release build for targets).
#include <benchmark/benchmark.h>

#include <deque>

#include "core/runtime/manual_clock.h"
#include "core/runtime/scheduler.h"

namespace mks::runtime {
namespace {

// Two fibers yielding to each other: each iteration is one switch into a
// fiber and one out of it, so the time per switch is half an iteration.
void BM_FiberSwitch(benchmark::State& state) {
  ManualClock clock;
  Scheduler scheduler(&clock);
  const ProcessId p = scheduler.CreateProcess("bench");
  bool stop = false;
  auto spinner = scheduler.Spawn(p, "spin", [&] {
    while (!stop) scheduler.Yield();
  });
  scheduler.RunReady();  // spinner parks in Yield: ready again
  for (auto _ : state) {
    // One resume of the spinner, which yields straight back.
    scheduler.RunReady();
  }
  stop = true;
  scheduler.RunReady();
  state.counters["switches"] = benchmark::Counter(
      static_cast<double>(state.iterations()) * 2, benchmark::Counter::kIsRate);
  state.SetLabel("one iteration = switch in + switch out");
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

// A requester fiber sends a promise to a responder fiber and waits for it.
void BM_FutureRoundTrip(benchmark::State& state) {
  ManualClock clock;
  Scheduler scheduler(&clock);
  const ProcessId p = scheduler.CreateProcess("bench");
  std::deque<Promise<int>> inbox;
  bool stop = false;
  Promise<void> wake_responder(&scheduler);
  auto responder = scheduler.Spawn(p, "responder", [&] {
    while (!stop) {
      while (!inbox.empty()) {
        inbox.front().SetValue(1);
        inbox.pop_front();
      }
      scheduler.Yield();
    }
  });
  int64_t sum = 0;
  for (auto _ : state) {
    auto requester = scheduler.Spawn(p, "requester", [&] {
      Promise<int> promise(&scheduler);
      Future<int> future = promise.GetFuture();
      inbox.push_back(std::move(promise));
      sum += *future.Get();
    });
    scheduler.RunReady();
  }
  stop = true;
  scheduler.RunReady();
  benchmark::DoNotOptimize(sum);
}
BENCHMARK(BM_FutureRoundTrip);

}  // namespace
}  // namespace mks::runtime

BENCHMARK_MAIN();
