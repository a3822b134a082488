#include "sim/sim_clock.h"

#include <algorithm>

#include "core/assertions.h"

namespace mks::sim {

void TrueTime::AdvanceTo(int64_t now_ns) {
  MKS_ASSERT_GE(now_ns, now_ns_);
  now_ns_ = now_ns;
}

SimClock::SimClock(const TrueTime* true_time, ClockModel model)
    : true_time_(true_time), model_(model) {
  MKS_ASSERT(true_time != nullptr);
  MKS_ASSERT_LE(model.drift_ppm, kMaxDriftPpm);
  MKS_ASSERT_GE(model.drift_ppm, -kMaxDriftPpm);
}

int64_t SimClock::DriftedNanos(int64_t true_ns) const {
  MKS_ASSERT_GE(true_ns, 0);
  // Split so the products stay far from overflow for runs of many days:
  // true_ns * drift_ppm would overflow 64 bits after ~25 hours.
  const int64_t whole_ms = true_ns / 1000000;
  const int64_t rest_ns = true_ns % 1000000;
  return true_ns + whole_ms * model_.drift_ppm +
         rest_ns * model_.drift_ppm / 1000000;
}

int64_t SimClock::MonotonicNanos() {
  const int64_t drifted = DriftedNanos(true_time_->now_ns());
  last_monotonic_ns_ = std::max(last_monotonic_ns_, drifted);
  MKS_ASSERT_GE(last_monotonic_ns_, drifted);
  return last_monotonic_ns_;
}

int64_t SimClock::WallMicros() {
  return kSimEpochMicros + model_.offset_us + total_step_us_ +
         DriftedNanos(true_time_->now_ns()) / 1000;
}

void SimClock::Step(int64_t step_us) {
  total_step_us_ += step_us;
}

}  // namespace mks::sim
