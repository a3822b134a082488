#include "core/gossip/suspicion.h"

#include <algorithm>

#include "core/assertions.h"

namespace mks::gossip {
namespace {

constexpr uint64_t kFixedOne = 1024;  // 1.0 in Log2Fixed's units

}  // namespace

uint64_t Log2Fixed(uint64_t x) {
  MKS_ASSERT_GE(x, 1u);
  const int integer_part = 63 - __builtin_clzll(x);
  // The mantissa x / 2^integer_part in [1, 2), as Q30.
  uint64_t mantissa = integer_part >= 30 ? x >> (integer_part - 30)
                                         : x << (30 - integer_part);
  MKS_ASSERT_GE(mantissa, 1ull << 30);
  MKS_ASSERT_LT(mantissa, 1ull << 31);
  uint64_t fraction = 0;
  // Each squaring doubles the logarithm: its carry past 2.0 is the next bit.
  for (int bit = 9; bit >= 0; --bit) {
    mantissa = (mantissa * mantissa) >> 30;
    if (mantissa >= (1ull << 31)) {
      mantissa >>= 1;
      fraction |= 1ull << bit;
    }
  }
  return static_cast<uint64_t>(integer_part) * kFixedOne + fraction;
}

SuspicionTimeouts ComputeSuspicionTimeouts(uint64_t members, int64_t probe_interval_ns,
                                           uint32_t suspicion_mult, uint32_t max_mult) {
  MKS_ASSERT_GE(members, 1u);
  MKS_ASSERT_GE(suspicion_mult, 1u);
  MKS_ASSERT_GE(max_mult, 1u);
  MKS_ASSERT_GT(probe_interval_ns, 0);
  // log10(n) = log2(n) * log10(2), log10(2) ~ 30103 / 100000.
  const uint64_t log10_fixed = std::max(kFixedOne, Log2Fixed(members) * 30103 / 100000);
  SuspicionTimeouts bounds;
  bounds.min_ns = static_cast<int64_t>(suspicion_mult * log10_fixed) * probe_interval_ns /
                  static_cast<int64_t>(kFixedOne);
  bounds.max_ns = bounds.min_ns * max_mult;
  const uint32_t k = suspicion_mult > 2 ? suspicion_mult - 2 : 0;
  bounds.expected_confirmations = members >= 2 + k ? k : 0;
  MKS_ASSERT_GE(bounds.max_ns, bounds.min_ns);
  MKS_ASSERT_GT(bounds.min_ns, 0);
  return bounds;
}

int64_t SuspicionTimeout(const SuspicionTimeouts& bounds, uint32_t confirmations) {
  MKS_ASSERT_GE(bounds.max_ns, bounds.min_ns);
  const uint32_t k = bounds.expected_confirmations;
  if (k == 0) return bounds.min_ns;
  const uint64_t c = std::min(confirmations, k);
  const int64_t span_ns = bounds.max_ns - bounds.min_ns;
  // span * log(c+1) / log(k+1); the two logs share a base, so log2 will do.
  // Spans are minutes at most and the logs a few thousand units: no overflow.
  MKS_ASSERT_LT(span_ns, int64_t{1} << 42);
  const int64_t shrink_ns = span_ns * static_cast<int64_t>(Log2Fixed(c + 1)) /
                            static_cast<int64_t>(Log2Fixed(k + 1));
  const int64_t timeout_ns = std::max(bounds.min_ns, bounds.max_ns - shrink_ns);
  MKS_ASSERT_LE(timeout_ns, bounds.max_ns);
  return timeout_ns;
}

}  // namespace mks::gossip
