#include "core/hlc.h"

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <memory>
#include <string>
#include <vector>

namespace mks {
namespace {

// A wall clock the test sets by hand, free to jump backwards.
class SteppedClock final : public Clock {
 public:
  int64_t WallMicros() override { return wall_us_; }
  int64_t MonotonicNanos() override { return 0; }
  void SetWallMillis(int64_t wall_ms) { wall_us_ = wall_ms * 1000; }

 private:
  int64_t wall_us_ = 0;
};

TEST(TimestampTest, OrdersByPhysicalThenLogical) {
  EXPECT_LT((Timestamp{1, 9}), (Timestamp{2, 0}));
  EXPECT_LT((Timestamp{2, 0}), (Timestamp{2, 1}));
  EXPECT_EQ((Timestamp{3, 4}), (Timestamp{3, 4}));
  EXPECT_LT(Timestamp::Zero(), (Timestamp{0, 1}));
}

TEST(TimestampTest, EncodingRoundTripsAndIsShort) {
  std::string bytes;
  EncodeTimestamp(Timestamp{0x0102030405060708ull, 0x0a0b0c0d}, &bytes);
  ASSERT_EQ(bytes.size(), kEncodedTimestampBytes);
  EXPECT_EQ(bytes, std::string("\x01\x02\x03\x04\x05\x06\x07\x08"
                               "\x0a\x0b\x0c\x0d", 12));
  const auto decoded = DecodeTimestamp(bytes);
  ASSERT_TRUE(decoded.has_value());
  EXPECT_EQ(*decoded, (Timestamp{0x0102030405060708ull, 0x0a0b0c0d}));
  EXPECT_FALSE(DecodeTimestamp(bytes.substr(0, 11)).has_value());
}

RC_GTEST_PROP(TimestampProperty, EncodingPreservesOrderBytewise,
              (uint64_t physical_a, uint32_t logical_a, uint64_t physical_b,
               uint32_t logical_b)) {
  const Timestamp a{physical_a, logical_a};
  const Timestamp b{physical_b, logical_b};
  std::string encoded_a;
  std::string encoded_b;
  EncodeTimestamp(a, &encoded_a);
  EncodeTimestamp(b, &encoded_b);
  RC_ASSERT((a < b) == (encoded_a < encoded_b));
  RC_ASSERT((a == b) == (encoded_a == encoded_b));
  RC_ASSERT(*DecodeTimestamp(encoded_a) == a);
}

TEST(HlcTest, FollowsTheWallClockWhenItMovesForward) {
  SteppedClock clock;
  clock.SetWallMillis(1000);
  HybridLogicalClock hlc(&clock, HlcOptions{});
  EXPECT_EQ(hlc.Now(), (Timestamp{1000, 0}));
  EXPECT_EQ(hlc.Now(), (Timestamp{1000, 1}));
  clock.SetWallMillis(1005);
  EXPECT_EQ(hlc.Now(), (Timestamp{1005, 0}));
}

TEST(HlcTest, StaysMonotonicWhenTheWallClockStepsBack) {
  SteppedClock clock;
  clock.SetWallMillis(10'000);
  HybridLogicalClock hlc(&clock, HlcOptions{});
  const Timestamp before_step = hlc.Now();
  clock.SetWallMillis(2'000);  // an NTP step eight seconds back
  const Timestamp after_step = hlc.Now();
  EXPECT_GT(after_step, before_step);
  EXPECT_EQ(after_step.physical_ms, 10'000u);
  EXPECT_EQ(hlc.stats().backward_steps, 1u);
  clock.SetWallMillis(10'001);
  EXPECT_EQ(hlc.Now(), (Timestamp{10'001, 0}));
}

TEST(HlcTest, NegativeWallClockReadsAsZero) {
  SteppedClock clock;
  clock.SetWallMillis(-5);
  HybridLogicalClock hlc(&clock, HlcOptions{});
  EXPECT_EQ(hlc.Now(), (Timestamp{0, 1}));
}

RC_GTEST_PROP(HlcProperty, MonotonicUnderArbitraryClockSteps, ()) {
  const auto wall_readings =
      *rc::gen::container<std::vector<int64_t>>(rc::gen::inRange<int64_t>(
          -10, 5'000));
  SteppedClock clock;
  HybridLogicalClock hlc(&clock, HlcOptions{});
  Timestamp previous = Timestamp::Zero();
  for (const int64_t wall_ms : wall_readings) {
    clock.SetWallMillis(wall_ms);
    const Timestamp now = hlc.Now();
    RC_ASSERT(now > previous);
    RC_ASSERT(now.physical_ms >= static_cast<uint64_t>(std::max<int64_t>(
                                     wall_ms, 0)));
    previous = now;
  }
}

TEST(HlcTest, ReceiveAfterSendIsOrderedAfterTheSend) {
  SteppedClock sender_clock;
  SteppedClock receiver_clock;
  sender_clock.SetWallMillis(5'200);  // the sender runs 200 ms ahead
  receiver_clock.SetWallMillis(5'000);
  HybridLogicalClock sender(&sender_clock, HlcOptions{});
  HybridLogicalClock receiver(&receiver_clock, HlcOptions{});
  const Timestamp sent = sender.Now();
  const auto received = receiver.Update(sent);
  ASSERT_TRUE(received.ok()) << received.status();
  EXPECT_GT(*received, sent);
  EXPECT_GT(receiver.Now(), sent);  // and every later local event too
}

// Causality over any exchange of messages between nodes with skewed,
// stepping clocks: a receive is ordered after its send, and each node's
// timestamps only grow.
RC_GTEST_PROP(HlcProperty, CausalityAcrossNodes, ()) {
  constexpr int kNodes = 3;
  SteppedClock clocks[kNodes];
  std::vector<std::unique_ptr<HybridLogicalClock>> hlcs;
  for (auto& clock : clocks) {
    hlcs.push_back(
        std::make_unique<HybridLogicalClock>(&clock, HlcOptions{1'000}));
  }
  Timestamp last_seen[kNodes] = {};
  const int steps = *rc::gen::inRange(1, 200);
  for (int step = 0; step < steps; ++step) {
    const int from = *rc::gen::inRange(0, kNodes);
    const int to = *rc::gen::inRange(0, kNodes);
    // Skews stay within the max offset, so no message is refused.
    clocks[from].SetWallMillis(*rc::gen::inRange<int64_t>(10'000, 10'400));
    clocks[to].SetWallMillis(*rc::gen::inRange<int64_t>(10'000, 10'400));
    const Timestamp sent = hlcs[from]->Now();
    RC_ASSERT(sent > last_seen[from]);
    last_seen[from] = sent;
    const auto received = hlcs[to]->Update(sent);
    RC_ASSERT(received.ok());
    RC_ASSERT(*received > sent);
    RC_ASSERT(*received > last_seen[to]);
    last_seen[to] = *received;
  }
}

TEST(HlcTest, RefusesATimestampBeyondTheMaximumOffset) {
  SteppedClock clock;
  clock.SetWallMillis(1'000'000);
  HybridLogicalClock hlc(&clock, HlcOptions{.max_offset_ms = 500});
  const Timestamp before = hlc.Now();

  const auto at_limit = hlc.Update(Timestamp{1'000'500, 7});
  ASSERT_TRUE(at_limit.ok()) << at_limit.status();
  EXPECT_EQ(*at_limit, (Timestamp{1'000'500, 8}));

  const auto too_far = hlc.Update(Timestamp{1'000'501, 0});
  ASSERT_FALSE(too_far.ok());
  EXPECT_EQ(too_far.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(too_far.status().message().find("maximum clock offset is 500 ms"),
            std::string::npos)
      << too_far.status();
  EXPECT_EQ(hlc.stats().remote_rejections, 1u);
  EXPECT_EQ(hlc.stats().remote_updates, 1u);
  // The refused timestamp left no trace in the clock.
  EXPECT_EQ(hlc.last(), *at_limit);
  EXPECT_GT(hlc.last(), before);
}

TEST(HlcTest, TimestampsFromThePastAreAlwaysAccepted) {
  SteppedClock clock;
  clock.SetWallMillis(50'000);
  HybridLogicalClock hlc(&clock, HlcOptions{.max_offset_ms = 10});
  const auto old = hlc.Update(Timestamp{1, 0});
  ASSERT_TRUE(old.ok());
  EXPECT_EQ(*old, (Timestamp{50'000, 0}));
}

RC_GTEST_PROP(HlcProperty, OffsetRuleIsExact,
              (uint32_t max_offset_seed, uint32_t ahead_ms)) {
  const uint64_t max_offset_ms = 1 + max_offset_seed % 10'000;
  SteppedClock clock;
  clock.SetWallMillis(1'000'000'000);
  HybridLogicalClock hlc(&clock, HlcOptions{max_offset_ms});
  const auto result = hlc.Update(Timestamp{1'000'000'000ull + ahead_ms, 0});
  RC_ASSERT(result.ok() == (ahead_ms <= max_offset_ms));
  RC_ASSERT(hlc.stats().remote_rejections == (result.ok() ? 0u : 1u));
}

TEST(HlcTest, AdvanceToRestoresAFloorAfterRestart) {
  SteppedClock clock;
  clock.SetWallMillis(100);  // the clock went back while the node was down
  HybridLogicalClock hlc(&clock, HlcOptions{});
  hlc.AdvanceTo(Timestamp{90'000, 3});
  EXPECT_EQ(hlc.Now(), (Timestamp{90'000, 4}));
  hlc.AdvanceTo(Timestamp{1, 0});  // never moves back
  EXPECT_EQ(hlc.last(), (Timestamp{90'000, 4}));
}

}  // namespace
}  // namespace mks
