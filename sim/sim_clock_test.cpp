#include "sim/sim_clock.h"

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

namespace mks::sim {
namespace {

constexpr int64_t kSecondNanos = 1000000000;

TEST(SimClockTest, ExactClockFollowsTrueTime) {
  TrueTime time;
  SimClock clock(&time, ClockModel{});
  time.AdvanceTo(3 * kSecondNanos + 500);
  EXPECT_EQ(clock.MonotonicNanos(), 3 * kSecondNanos + 500);
  EXPECT_EQ(clock.WallMicros(), kSimEpochMicros + 3000000);
}

TEST(SimClockTest, OffsetShiftsWallTimeOnly) {
  TrueTime time;
  SimClock clock(&time, ClockModel{.offset_us = -250000, .drift_ppm = 0});
  time.AdvanceTo(kSecondNanos);
  EXPECT_EQ(clock.WallMicros(), kSimEpochMicros + 1000000 - 250000);
  EXPECT_EQ(clock.MonotonicNanos(), kSecondNanos);
}

TEST(SimClockTest, DriftScalesElapsedTime) {
  TrueTime time;
  SimClock fast(&time, ClockModel{.offset_us = 0, .drift_ppm = 200});
  SimClock slow(&time, ClockModel{.offset_us = 0, .drift_ppm = -1000});
  time.AdvanceTo(100 * kSecondNanos);
  // 200 ppm of 100 s is 20 ms; -1000 ppm is -100 ms.
  EXPECT_EQ(fast.MonotonicNanos(), 100 * kSecondNanos + 20000000);
  EXPECT_EQ(slow.MonotonicNanos(), 100 * kSecondNanos - 100000000);
  EXPECT_EQ(fast.WallMicros(), kSimEpochMicros + 100000000 + 20000);
  EXPECT_EQ(slow.WallMicros(), kSimEpochMicros + 100000000 - 100000);
}

TEST(SimClockTest, DriftDoesNotOverflowOverLongRuns) {
  TrueTime time;
  SimClock clock(&time, ClockModel{.offset_us = 0, .drift_ppm = kMaxDriftPpm});
  const int64_t thirty_days_ns = 30LL * 24 * 3600 * kSecondNanos;
  time.AdvanceTo(thirty_days_ns);
  EXPECT_EQ(clock.MonotonicNanos(), thirty_days_ns + thirty_days_ns / 10);
}

TEST(SimClockTest, StepsMoveWallTimeBothWaysButNotMonotonicTime) {
  TrueTime time;
  SimClock clock(&time, ClockModel{});
  time.AdvanceTo(10 * kSecondNanos);
  const int64_t before = clock.WallMicros();
  const int64_t monotonic_before = clock.MonotonicNanos();
  clock.Step(-5000000);
  EXPECT_EQ(clock.WallMicros(), before - 5000000);
  clock.Step(7000000);
  EXPECT_EQ(clock.WallMicros(), before + 2000000);
  EXPECT_EQ(clock.total_step_us(), 2000000);
  EXPECT_EQ(clock.MonotonicNanos(), monotonic_before);
}

RC_GTEST_PROP(SimClockProperty, MonotonicNeverDecreasesUnderAnyDrift, ()) {
  const int64_t drift = *rc::gen::inRange<int64_t>(-kMaxDriftPpm, kMaxDriftPpm + 1);
  const auto steps = *rc::gen::container<std::vector<int64_t>>(
      rc::gen::inRange<int64_t>(0, 5000000));
  TrueTime time;
  SimClock clock(&time, ClockModel{.offset_us = 0, .drift_ppm = drift});
  int64_t last = clock.MonotonicNanos();
  int64_t now = 0;
  for (int64_t step : steps) {
    now += step;
    time.AdvanceTo(now);
    const int64_t reading = clock.MonotonicNanos();
    RC_ASSERT(reading >= last);
    last = reading;
  }
}

}  // namespace
}  // namespace mks::sim
