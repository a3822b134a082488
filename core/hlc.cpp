#include "core/hlc.h"

#include <algorithm>
#include <limits>

#include "core/assertions.h"

namespace mks {

HybridLogicalClock::HybridLogicalClock(Clock* clock, HlcOptions options)
    : clock_(clock), options_(options) {
  MKS_ASSERT(clock_ != nullptr);
  MKS_ASSERT_GT(options_.max_offset_ms, 0u);
}

uint64_t HybridLogicalClock::WallMillis() {
  const int64_t micros = clock_->WallMicros();
  if (micros <= 0) return 0;
  return static_cast<uint64_t>(micros) / 1000;
}

Timestamp HybridLogicalClock::NextLogical(Timestamp base) const {
  // 2^32 events within one millisecond cannot happen in practice; if the
  // counter were exhausted, borrowing the next millisecond keeps the order.
  if (base.logical == std::numeric_limits<uint32_t>::max()) {
    return Timestamp{base.physical_ms + 1, 0};
  }
  return Timestamp{base.physical_ms, base.logical + 1};
}

Timestamp HybridLogicalClock::Now() {
  const Timestamp before = last_;
  const uint64_t wall_ms = WallMillis();
  ++stats_.local_events;
  if (wall_ms > last_.physical_ms) {
    last_ = Timestamp{wall_ms, 0};
  } else {
    if (wall_ms < last_.physical_ms) ++stats_.backward_steps;
    last_ = NextLogical(last_);
  }
  MKS_ASSERT_GT(last_, before);
  MKS_ASSERT_GE(last_.physical_ms, wall_ms);
  return last_;
}

Result<Timestamp> HybridLogicalClock::Update(Timestamp remote) {
  const uint64_t wall_ms = WallMillis();
  if (remote.physical_ms > wall_ms &&
      remote.physical_ms - wall_ms > options_.max_offset_ms) {
    ++stats_.remote_rejections;
    return Status::InvalidArgument(
        "remote timestamp " + ToString(remote) + " is " +
        std::to_string(remote.physical_ms - wall_ms) +
        " ms ahead of the local wall clock (" + std::to_string(wall_ms) +
        " ms); the maximum clock offset is " +
        std::to_string(options_.max_offset_ms) + " ms");
  }
  const Timestamp before = last_;
  const uint64_t physical_ms =
      std::max({wall_ms, last_.physical_ms, remote.physical_ms});
  if (physical_ms == last_.physical_ms &&
      physical_ms == remote.physical_ms) {
    last_ = NextLogical(std::max(last_, remote));
  } else if (physical_ms == last_.physical_ms) {
    last_ = NextLogical(last_);
  } else if (physical_ms == remote.physical_ms) {
    last_ = NextLogical(remote);
  } else {
    last_ = Timestamp{physical_ms, 0};
  }
  ++stats_.remote_updates;
  MKS_ASSERT_GT(last_, before);
  MKS_ASSERT_GT(last_, remote);
  return last_;
}

void HybridLogicalClock::AdvanceTo(Timestamp floor) {
  const Timestamp before = last_;
  last_ = std::max(last_, floor);
  MKS_ASSERT_GE(last_, before);
  MKS_ASSERT_GE(last_, floor);
}

}  // namespace mks
