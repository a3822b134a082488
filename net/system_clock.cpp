#include "net/system_clock.h"

#include <time.h>

#include "core/assertions.h"

namespace mks::net {
namespace {

int64_t ReadClockNanos(clockid_t clock_id) {
  timespec now{};
  // clock_gettime fails only for an invalid clock id or a bad pointer,
  // neither of which can happen here.
  const int result = clock_gettime(clock_id, &now);
  MKS_ASSERT_EQ(result, 0);
  MKS_ASSERT_GE(now.tv_nsec, 0);
  return int64_t{now.tv_sec} * 1'000'000'000 + now.tv_nsec;
}

}  // namespace

int64_t SystemClock::WallMicros() {
  return ReadClockNanos(CLOCK_REALTIME) / 1000;
}

int64_t SystemClock::MonotonicNanos() {
  return ReadClockNanos(CLOCK_MONOTONIC);
}

}  // namespace mks::net
