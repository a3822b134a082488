// The machine's clocks behind mks::Clock.
#pragma once

#include <cstdint>

#include "core/env.h"

namespace mks::net {

// WallMicros reads CLOCK_REALTIME (steps with NTP and operators, as the
// Clock contract allows); MonotonicNanos reads CLOCK_MONOTONIC, which never
// goes back and is the time base of the reactor's timers. Stateless, so one
// instance may be shared by everything in the process.
class SystemClock final : public Clock {
 public:
  int64_t WallMicros() override;
  int64_t MonotonicNanos() override;
};

}  // namespace mks::net
