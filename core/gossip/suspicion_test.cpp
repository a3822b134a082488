#include "core/gossip/suspicion.h"

#include <gtest/gtest.h>

#include <cmath>

namespace mks::gossip {
namespace {

constexpr int64_t kSecond = 1'000'000'000;

TEST(SuspicionTest, Log2FixedIsExactOnPowersAndCloseElsewhere) {
  EXPECT_EQ(Log2Fixed(1), 0u);
  EXPECT_EQ(Log2Fixed(2), 1024u);
  EXPECT_EQ(Log2Fixed(1024), 10u * 1024);
  for (uint64_t x : {3ull, 10ull, 64ull, 100ull, 513ull, 1'000'000ull}) {
    const double exact = std::log2(static_cast<double>(x)) * 1024;
    EXPECT_LE(static_cast<double>(Log2Fixed(x)), exact + 0.01) << x;
    EXPECT_GE(static_cast<double>(Log2Fixed(x)), exact - 3) << x;
  }
}

// memberlist's LAN defaults (probe 1 s, suspicion multiplier 4, max
// multiplier 6): min = 4 * log10(n) s for n >= 10.
TEST(SuspicionTest, BoundsFollowMemberlistsFormula) {
  const SuspicionTimeouts small = ComputeSuspicionTimeouts(3, kSecond, 4, 6);
  EXPECT_EQ(small.min_ns, 4 * kSecond);  // log10 floored at 1
  EXPECT_EQ(small.max_ns, 24 * kSecond);
  EXPECT_EQ(small.expected_confirmations, 0u);  // 3 - 2 < 2
  const SuspicionTimeouts n64 = ComputeSuspicionTimeouts(64, kSecond, 4, 6);
  EXPECT_NEAR(static_cast<double>(n64.min_ns) / kSecond, 4 * std::log10(64.0), 0.02);
  EXPECT_EQ(n64.expected_confirmations, 2u);
}

TEST(SuspicionTest, ConfirmationsShrinkTheTimeoutToTheMinimum) {
  const SuspicionTimeouts bounds = ComputeSuspicionTimeouts(64, kSecond, 4, 6);
  EXPECT_EQ(SuspicionTimeout(bounds, 0), bounds.max_ns);
  const int64_t one = SuspicionTimeout(bounds, 1);
  EXPECT_LT(one, bounds.max_ns);
  EXPECT_GT(one, bounds.min_ns);
  EXPECT_EQ(SuspicionTimeout(bounds, 2), bounds.min_ns);
  EXPECT_EQ(SuspicionTimeout(bounds, 9), bounds.min_ns);
  const SuspicionTimeouts small = ComputeSuspicionTimeouts(3, kSecond, 4, 6);
  EXPECT_EQ(SuspicionTimeout(small, 0), small.min_ns);
}

}  // namespace
}  // namespace mks::gossip
