#include "core/gossip/member_table.h"

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <vector>

#include "core/gossip/broadcast_queue.h"
#include "core/random.h"

namespace mks::gossip {
namespace {

MemberRecord Record(NodeId node, uint64_t incarnation, MemberState state,
                    std::string peer = "") {
  return MemberRecord{node, incarnation, state, Addresses{std::move(peer), "", ""}, kNoNode};
}

TEST(MemberTableTest, HigherIncarnationWinsAndAtEqualTheWorseStateWins) {
  const MemberRecord alive1 = Record(2, 1, MemberState::kAlive);
  EXPECT_TRUE(Overrides(Record(2, 2, MemberState::kAlive), Record(2, 1, MemberState::kDead)));
  EXPECT_TRUE(Overrides(Record(2, 1, MemberState::kSuspect), alive1));
  EXPECT_TRUE(Overrides(Record(2, 1, MemberState::kDead), Record(2, 1, MemberState::kSuspect)));
  EXPECT_TRUE(Overrides(Record(2, 1, MemberState::kLeft), Record(2, 1, MemberState::kDead)));
  EXPECT_FALSE(Overrides(alive1, Record(2, 1, MemberState::kSuspect)));
  EXPECT_FALSE(Overrides(alive1, alive1));
  EXPECT_FALSE(Overrides(Record(2, 0, MemberState::kLeft), alive1));
}

TEST(MemberTableTest, ApplyReportsWhatChangedAndKeepsAddresses) {
  MemberTable table(Record(1, 5, MemberState::kAlive, "self"));
  Applied first = table.Apply(Record(2, 1, MemberState::kAlive, "a:1"), 10);
  EXPECT_TRUE(first.changed && first.is_new);
  Applied stale = table.Apply(Record(2, 0, MemberState::kDead), 20);
  EXPECT_FALSE(stale.changed);
  Applied dead = table.Apply(Record(2, 1, MemberState::kDead), 30);
  EXPECT_TRUE(dead.changed);
  EXPECT_EQ(dead.previous_state, MemberState::kAlive);
  // A death without addresses keeps the member's.
  EXPECT_EQ(table.Find(2)->record.addresses.peer, "a:1");
  EXPECT_EQ(table.Find(2)->state_since_ns, 30);
  EXPECT_EQ(table.InState(MemberState::kDead), (std::vector<NodeId>{2}));
  EXPECT_EQ(table.LiveCount(), 1u);  // self
  EXPECT_EQ(table.Find(3), nullptr);
}

// Merging is order-independent: any order of the same records gives the
// same view, so nodes that heard the same news agree.
RC_GTEST_PROP(MemberTableProperty, AnyOrderGivesTheSameView, ()) {
  const auto records = *rc::gen::container<std::vector<MemberRecord>>(
      rc::gen::apply(
          [](NodeId node, uint64_t incarnation, int state) {
            return Record(node, incarnation, static_cast<MemberState>(state));
          },
          rc::gen::inRange<NodeId>(2, 6), rc::gen::inRange<uint64_t>(0, 4),
          rc::gen::inRange(0, 4)));
  std::vector<MemberRecord> shuffled = records;
  const auto seed = *rc::gen::arbitrary<uint64_t>();
  Random random(seed);
  for (size_t i = shuffled.size(); i > 1; --i) {
    std::swap(shuffled[i - 1], shuffled[random.Uniform(i)]);
  }
  MemberTable a(Record(1, 0, MemberState::kAlive));
  MemberTable b(Record(1, 0, MemberState::kAlive));
  for (const MemberRecord& record : records) a.Apply(record, 0);
  for (const MemberRecord& record : shuffled) b.Apply(record, 0);
  for (NodeId node = 2; node < 6; ++node) {
    const Member* x = a.Find(node);
    const Member* y = b.Find(node);
    RC_ASSERT((x == nullptr) == (y == nullptr));
    if (x != nullptr) {
      RC_ASSERT(x->record.incarnation == y->record.incarnation);
      RC_ASSERT(x->record.state == y->record.state);
    }
  }
}

TEST(BroadcastQueueTest, LeastSentFirstAndEachAtMostTheLimit) {
  BroadcastQueue queue;
  queue.Push(Record(2, 1, MemberState::kAlive));
  queue.Push(Record(3, 1, MemberState::kAlive));
  std::vector<MemberRecord> first = queue.Take(1, 2);
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(first[0].node, 3u);  // newest first among the unsent
  std::vector<MemberRecord> second = queue.Take(1, 2);
  EXPECT_EQ(second[0].node, 2u);  // then the least sent
  queue.Push(Record(2, 2, MemberState::kSuspect));  // replaces, count restarts
  std::vector<MemberRecord> all = queue.Take(8, 2);
  EXPECT_EQ(all.size(), 2u);
  EXPECT_EQ(queue.size(), 1u);  // node 3 reached its two sends
  EXPECT_EQ(queue.Take(8, 2).size(), 1u);
  EXPECT_TRUE(queue.empty());
}

TEST(BroadcastQueueTest, TransmitLimitGrowsWithTheLogOfTheCluster) {
  EXPECT_EQ(TransmitLimit(4, 1), 4u);
  EXPECT_EQ(TransmitLimit(4, 9), 4u);
  EXPECT_EQ(TransmitLimit(4, 10), 8u);
  EXPECT_EQ(TransmitLimit(4, 512), 12u);
}

}  // namespace
}  // namespace mks::gossip
