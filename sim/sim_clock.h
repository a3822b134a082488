// SimClock: one node's view of time in the simulated world.
//
// Fault model. The world keeps one true time (nanoseconds since the run
// began). Each node's clock derives from it:
//  * MonotonicNanos = true time scaled by (1 + drift_ppm / 1e6), computed in
//    integers, and clamped so it never decreases across calls (the contract
//    of Clock). Offset and steps do not touch it, as CLOCK_MONOTONIC ignores
//    settimeofday.
//  * WallMicros = a fixed epoch + the node's offset + the drifted elapsed
//    time + the sum of the steps applied so far. Steps may be negative: wall
//    time may jump backwards, which the protocol must survive.
// The clock belongs to the machine, so it persists across restarts of the
// node. Timers of the runtime are kept in true time by the world's single
// scheduler; a node reads skewed time only through this Clock.
#pragma once

#include <cstdint>

#include "core/env.h"

namespace mks::sim {

// Wall time at true time 0: 2024-01-01T00:00:00Z, in microseconds.
inline constexpr int64_t kSimEpochMicros = 1704067200LL * 1000000;

// The world's true time, readable by every SimClock. As a Clock it is exact
// (no offset, no drift): the time base of the world's scheduler.
class TrueTime final : public Clock {
 public:
  int64_t WallMicros() override { return kSimEpochMicros + now_ns_ / 1000; }
  int64_t MonotonicNanos() override { return now_ns_; }
  int64_t now_ns() const { return now_ns_; }
  // Moves true time to `now_ns`; time never goes back.
  void AdvanceTo(int64_t now_ns);

 private:
  int64_t now_ns_ = 0;  // invariant: never decreases
};

// Drift beyond 10% is not a clock, it is a broken crystal; refused.
inline constexpr int64_t kMaxDriftPpm = 100000;

struct ClockModel {
  int64_t offset_us = 0;  // wall-clock offset from true time at time 0
  int64_t drift_ppm = 0;  // in [-kMaxDriftPpm, kMaxDriftPpm]
  friend bool operator==(const ClockModel&, const ClockModel&) = default;
};

class SimClock final : public Clock {
 public:
  SimClock(const TrueTime* true_time, ClockModel model);

  int64_t WallMicros() override;
  int64_t MonotonicNanos() override;

  // Jumps the wall clock by `step_us` (forwards or backwards) from now on.
  void Step(int64_t step_us);

  // Elapsed true nanoseconds as this clock's crystal measures them.
  int64_t DriftedNanos(int64_t true_ns) const;

  const ClockModel& model() const { return model_; }
  int64_t total_step_us() const { return total_step_us_; }

 private:
  const TrueTime* const true_time_;
  const ClockModel model_;
  int64_t total_step_us_ = 0;
  int64_t last_monotonic_ns_ = 0;  // invariant: the largest value returned
};

}  // namespace mks::sim
