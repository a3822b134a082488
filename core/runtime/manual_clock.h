// A Clock that moves only when told to: the time base for driving a
// Scheduler by hand (unit tests, benchmarks, the runtime demo). The simulator
// has its own clocks with skew and drift; this one is exact.
#pragma once

#include <cstdint>

#include "core/assertions.h"
#include "core/env.h"
#include "core/runtime/scheduler.h"

namespace mks::runtime {

class ManualClock final : public Clock {
 public:
  int64_t WallMicros() override { return now_ns_ / 1000; }
  int64_t MonotonicNanos() override { return now_ns_; }

  // Moves time forward to `now_ns`. Time never goes back.
  void AdvanceTo(int64_t now_ns) {
    MKS_ASSERT_GE(now_ns, now_ns_);
    now_ns_ = now_ns;
  }

 private:
  int64_t now_ns_ = 0;
};

// Runs `scheduler` until no fiber is ready and no timer is pending, jumping
// `clock` to each next deadline. Returns the number of timers fired.
inline uint64_t DriveUntilQuiet(Scheduler& scheduler, ManualClock& clock) {
  uint64_t fired = 0;
  for (;;) {
    scheduler.RunReady();
    const std::optional<int64_t> next = scheduler.NextDeadlineNanos();
    if (!next) return fired;
    if (*next > clock.MonotonicNanos()) clock.AdvanceTo(*next);
    if (scheduler.FireNextTimer()) ++fired;
  }
}

}  // namespace mks::runtime
