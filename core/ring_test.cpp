#include "core/ring.h"

#include "core/random.h"

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <cstddef>
#include <cstdio>
#include <set>
#include <string>
#include <vector>

namespace mks {
namespace {

Ring BuildOrDie(std::vector<NodeId> members, uint64_t epoch,
                RingOptions options = {}) {
  Result<Ring> ring = Ring::Build(std::move(members), epoch, options);
  MKS_ASSERT_MSG(ring.ok(), ring.status().ToString());
  return std::move(ring).value();
}

Ring BuildOrDie(const MemberList& members, uint64_t epoch,
                RingOptions options = {}) {
  Result<Ring> ring = Ring::Build(members, epoch, options);
  MKS_ASSERT_MSG(ring.ok(), ring.status().ToString());
  return std::move(ring).value();
}

std::vector<NodeId> NodesOneTo(uint32_t count) {
  std::vector<NodeId> nodes;
  for (NodeId id = 1; id <= count; ++id) nodes.push_back(id);
  return nodes;
}

std::vector<std::vector<NodeId>> AllLists(const Ring& ring) {
  std::vector<std::vector<NodeId>> lists;
  for (PartitionId p = 0; p < ring.partition_count(); ++p) {
    std::span<const NodeId> list = ring.PreferenceList(p);
    lists.emplace_back(list.begin(), list.end());
  }
  return lists;
}

// Replicas present in `after` but not in `before`, summed over partitions:
// each is a partition copy some node must receive.
uint32_t ReplicasMoved(const Ring& before, const Ring& after) {
  MKS_ASSERT_EQ(before.partition_count(), after.partition_count());
  uint32_t moved = 0;
  for (PartitionId p = 0; p < before.partition_count(); ++p) {
    std::span<const NodeId> old_list = before.PreferenceList(p);
    for (NodeId node : after.PreferenceList(p)) {
      if (std::find(old_list.begin(), old_list.end(), node) == old_list.end()) {
        ++moved;
      }
    }
  }
  return moved;
}

uint32_t MaxLoad(const Ring& ring) {
  uint32_t max_load = 0;
  for (NodeId node : ring.members()) {
    max_load = std::max(max_load, ring.ReplicaCountOf(node));
  }
  return max_load;
}

// ---- Key hashing ----

TEST(RingTest, PartitionOfKeyVectorsArePinned) {
  // Pinned: a change here remaps every key of every deployed cluster.
  EXPECT_EQ(Ring::PartitionOfKey("", 256), 199u);
  EXPECT_EQ(Ring::PartitionOfKey("a", 256), 53u);
  EXPECT_EQ(Ring::PartitionOfKey("user:1", 256), 220u);
  EXPECT_EQ(Ring::PartitionOfKey("user:2", 256), 75u);
  EXPECT_EQ(Ring::PartitionOfKey(std::string("\0\xff", 2), 256), 208u);
  EXPECT_EQ(Ring::PartitionOfKey("user:1", 65536), 56386u);
  EXPECT_EQ(Ring::PartitionOfKey("anything", 1), 0u);
}

TEST(RingTest, DoublingPartitionsSplitsEachPartitionInTwo) {
  for (int i = 0; i < 1000; ++i) {
    const std::string key = "key-" + std::to_string(i);
    for (uint32_t q = 1; q < Ring::kMaxPartitionCount; q *= 2) {
      ASSERT_EQ(Ring::PartitionOfKey(key, 2 * q) / 2, Ring::PartitionOfKey(key, q))
          << key << " q=" << q;
    }
  }
}

TEST(RingTest, KeysSpreadOverAllPartitions) {
  std::vector<uint32_t> hits(256, 0);
  for (int i = 0; i < 256 * 64; ++i) {
    ++hits[Ring::PartitionOfKey("k" + std::to_string(i), 256)];
  }
  // 64 expected per partition; a stable hash of this quality stays within
  // a factor of two everywhere.
  for (uint32_t count : hits) {
    EXPECT_GT(count, 32u);
    EXPECT_LT(count, 128u);
  }
}

// ---- Building ----

TEST(RingTest, BuildRejectsBadInput) {
  EXPECT_EQ(Ring::Build(std::vector<NodeId>{}, 1).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(Ring::Build(MemberList(), 1).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(Ring::Build({1, 0, 2}, 1).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(Ring::Build({1, 2, 1}, 1).status().code(),
            StatusCode::kInvalidArgument);
  for (uint32_t q : {0u, 3u, 100u, Ring::kMaxPartitionCount * 2}) {
    EXPECT_EQ(Ring::Build({1, 2, 3}, 1, {q, 3}).status().code(),
              StatusCode::kInvalidArgument)
        << q;
  }
  EXPECT_EQ(Ring::Build({1, 2, 3}, 1, {256, 0}).status().code(),
            StatusCode::kInvalidArgument);
}

TEST(RingTest, ReplicationFactorIsClampedToMemberCount) {
  const Ring ring = BuildOrDie({7, 9}, 4, {16, 3});
  EXPECT_EQ(ring.replication_factor(), 2u);
  EXPECT_EQ(ring.requested_replication_factor(), 3u);
  for (PartitionId p = 0; p < 16; ++p) {
    std::set<NodeId> list(ring.PreferenceList(p).begin(),
                          ring.PreferenceList(p).end());
    EXPECT_EQ(list, (std::set<NodeId>{7, 9}));
  }
}

TEST(RingTest, PreferenceListsArePinned) {
  // Pinned: every node of a cluster must compute the same lists, including
  // nodes running a different build, so placement may never change silently.
  const Ring ring = BuildOrDie({10, 20, 30, 40, 50}, 1, {8, 3});
  const std::vector<std::vector<NodeId>> expected = {
      {40, 10, 30}, {40, 20, 30}, {20, 50, 40}, {50, 40, 10},
      {30, 20, 10}, {30, 50, 20}, {50, 10, 40}, {30, 20, 10},
  };
  EXPECT_EQ(AllLists(ring), expected);
}

// A digest of every preference list, in order.
uint64_t ListsDigest(const Ring& ring) {
  std::string bytes;
  for (PartitionId p = 0; p < ring.partition_count(); ++p) {
    for (NodeId node : ring.PreferenceList(p)) {
      bytes += std::to_string(node);
      bytes += ',';
    }
    bytes += ';';
  }
  return StableHash64(bytes);
}

TEST(RingTest, LargerRingsArePinned) {
  // Pinned like the lists above, over rings where every seat has taken a
  // share: each sample grows by joins of ids that are not in ascending
  // order, so seats and ids differ.
  struct Sample {
    uint32_t members;
    RingOptions options;
    uint64_t digest;
  };
  const Sample samples[] = {
      {7, {256, 3}, 0x6cab2ec6a05835bcULL},
      {16, {256, 3}, 0xcb59e855f7286cf6ULL},
      {64, {256, 3}, 0x78de291587094d30ULL},
      {20, {1024, 5}, 0xd86a6be5110f40e6ULL},
      {100, {16, 2}, 0x28453a612d3a2f8dULL},
  };
  for (const Sample& sample : samples) {
    MemberList members;
    for (uint32_t i = 0; i < sample.members; ++i) {
      ASSERT_TRUE(members.Join(1 + (i * 37) % 101).ok());
    }
    const Ring ring = BuildOrDie(members, 1, sample.options);
    EXPECT_EQ(ListsDigest(ring), sample.digest)
        << sample.members << " members, Q=" << sample.options.partition_count
        << " N=" << sample.options.replication_factor;
  }
}

// The first replica of a partition is its preferred coordinator, so every
// member should lead about as many partitions as any other, whatever its
// seat.
TEST(RingTest, EveryMemberLeadsAboutItsShareOfPartitions) {
  for (uint32_t n : {5u, 16u, 64u}) {
    const Ring ring = BuildOrDie(NodesOneTo(n), 1, {4096, 3});
    std::vector<uint32_t> leads(n + 1, 0);
    for (PartitionId p = 0; p < ring.partition_count(); ++p) {
      ++leads[ring.PreferenceList(p)[0]];
    }
    const uint32_t mean = 4096 / n;
    for (NodeId node = 1; node <= n; ++node) {
      EXPECT_GE(leads[node] * 4, mean * 3) << n << " members, node " << node;
      EXPECT_LE(leads[node] * 4, mean * 5) << n << " members, node " << node;
    }
  }
}

TEST(RingTest, OwnershipQueriesAgree) {
  const Ring ring = BuildOrDie(NodesOneTo(10), 3);
  uint32_t total = 0;
  for (NodeId node : ring.members()) {
    const std::vector<PartitionId> owned = ring.PartitionsOwnedBy(node);
    EXPECT_EQ(owned.size(), ring.ReplicaCountOf(node));
    EXPECT_TRUE(std::is_sorted(owned.begin(), owned.end()));
    for (PartitionId p : owned) EXPECT_TRUE(ring.IsReplica(node, p));
    total += static_cast<uint32_t>(owned.size());
  }
  EXPECT_EQ(total, 256u * 3u);
  EXPECT_TRUE(ring.PartitionsOwnedBy(11).empty());
  EXPECT_FALSE(ring.IsMember(11));
  EXPECT_TRUE(ring.IsMember(10));
  for (const std::string key : {"", "a", "user:17"}) {
    const std::span<const NodeId> by_key = ring.ReplicasForKey(key);
    const std::span<const NodeId> by_partition =
        ring.PreferenceList(ring.PartitionOf(key));
    EXPECT_TRUE(std::equal(by_key.begin(), by_key.end(), by_partition.begin(),
                           by_partition.end()));
  }
}

// ---- Transitions ----

std::vector<NodeId> ToVector(std::span<const NodeId> list) {
  return std::vector<NodeId>(list.begin(), list.end());
}

// A join of node 4 to {1, 2, 3} at Q = 16, N = 3: the rings before and
// after, and the seated members of both.
struct JoinOfFour {
  MemberList from_members = MemberList::FromIds({1, 2, 3}).value();
  MemberList to_members = [] {
    MemberList joined = MemberList::FromIds({1, 2, 3}).value();
    MKS_ASSERT(joined.Join(4).ok());
    return joined;
  }();
  Ring from = BuildOrDie(from_members, 4, {16, 3});
  Ring to = BuildOrDie(to_members, 5, {16, 3});
};

TEST(RingTransitionTest, FlippedPartitionsServeTheNewListOthersTheOld) {
  const JoinOfFour join;
  std::vector<bool> flipped(16, false);
  for (PartitionId p = 0; p < 16; p += 2) flipped[p] = true;
  const Ring ring = Ring::Transitional(join.from, join.to, join.to_members, flipped,
                                       std::vector<uint64_t>(16, 5), 6);
  EXPECT_TRUE(ring.InTransition());
  EXPECT_EQ(ring.epoch(), 6u);
  EXPECT_EQ(ring.members(), (std::vector<NodeId>{1, 2, 3, 4}));
  uint32_t changing = 0;
  for (PartitionId p = 0; p < 16; ++p) {
    const std::vector<NodeId> old_list = ToVector(join.from.PreferenceList(p));
    const std::vector<NodeId> new_list = ToVector(join.to.PreferenceList(p));
    EXPECT_EQ(ToVector(ring.PreferenceList(p)), flipped[p] ? new_list : old_list) << p;
    EXPECT_EQ(ToVector(ring.FutureList(p)), new_list) << p;
    if (old_list != new_list) ++changing;
  }
  // Node 4 takes floor(16 * 3 / 4) replicas, so some partitions do not change.
  EXPECT_EQ(changing, 12u);
  uint32_t served_by_four = 0;
  for (PartitionId p = 0; p < 16; ++p) served_by_four += ring.IsReplica(4, p) ? 1 : 0;
  EXPECT_EQ(ring.ReplicaCountOf(4), served_by_four);
  EXPECT_GT(served_by_four, 0u);
  EXPECT_LT(served_by_four, join.to.ReplicaCountOf(4));
}

TEST(RingTransitionTest, PendingReplicasAreTheFutureListsNewcomersUntilTheFlip) {
  const JoinOfFour join;
  std::vector<bool> flipped(16, false);
  for (PartitionId p = 0; p < 16; p += 2) flipped[p] = true;
  const Ring ring = Ring::Transitional(join.from, join.to, join.to_members, flipped,
                                       std::vector<uint64_t>(16, 5), 6);
  for (PartitionId p = 0; p < 16; ++p) {
    const bool changes = join.to.IsReplica(4, p);
    const bool pending = changes && !flipped[p];
    EXPECT_EQ(ring.PendingReplicas(p), pending ? std::vector<NodeId>{4} : std::vector<NodeId>{})
        << p;
    EXPECT_EQ(ring.IsPending(4, p), pending) << p;
    EXPECT_EQ(ring.Holds(4, p), changes) << p;
    for (NodeId node : {1u, 2u, 3u}) {
      // An old replica is never pending; it holds the partition until the
      // flip takes it away.
      EXPECT_FALSE(ring.IsPending(node, p)) << p << " " << node;
      const bool keeps = join.to.IsReplica(node, p);
      EXPECT_EQ(ring.Holds(node, p), keeps || !flipped[p]) << p << " " << node;
    }
    EXPECT_FALSE(ring.IsPending(9, p));
    EXPECT_FALSE(ring.Holds(9, p));
  }
}

TEST(RingTransitionTest, FenceEpochsArePerPartition) {
  const JoinOfFour join;
  std::vector<uint64_t> fences;
  for (PartitionId p = 0; p < 16; ++p) fences.push_back(100 + p);
  const Ring ring = Ring::Transitional(join.from, join.to, join.to_members,
                                       std::vector<bool>(16, false), fences, 6);
  for (PartitionId p = 0; p < 16; ++p) EXPECT_EQ(ring.FenceEpoch(p), 100u + p);
}

// From 2 members to 3 at N = 3: N is clamped to 2 before and 3 after, so
// an unflipped partition is served by 2 replicas and heads for 3.
TEST(RingTransitionTest, ListsDifferInLengthWhenNWasClampedOnOneSide) {
  const MemberList two = MemberList::FromIds({1, 2}).value();
  MemberList three = two;
  ASSERT_TRUE(three.Join(3).ok());
  const Ring from = BuildOrDie(two, 1, {16, 3});
  const Ring to = BuildOrDie(three, 2, {16, 3});
  ASSERT_EQ(from.replication_factor(), 2u);
  std::vector<bool> flipped(16, false);
  flipped[3] = true;
  const Ring ring =
      Ring::Transitional(from, to, three, flipped, std::vector<uint64_t>(16, 2), 3);
  for (PartitionId p = 0; p < 16; ++p) {
    EXPECT_EQ(ring.PreferenceList(p).size(), flipped[p] ? 3u : 2u) << p;
    EXPECT_EQ(ring.FutureList(p).size(), 3u) << p;
    EXPECT_EQ(ring.PendingReplicas(p), flipped[p] ? std::vector<NodeId>{} : std::vector<NodeId>{3})
        << p;
    EXPECT_EQ(ring.IsReplica(3, p), flipped[p]) << p;
    EXPECT_TRUE(ring.Holds(3, p)) << p;
  }
  EXPECT_EQ(ring.ReplicaCountOf(1), 16u);
  EXPECT_EQ(ring.ReplicaCountOf(3), 1u);
  EXPECT_EQ(ring.PartitionsOwnedBy(3), std::vector<PartitionId>{3});
}

TEST(RingTransitionTest, WithFenceEpochSetsEveryPartitionsFenceAndMovesNothing) {
  Ring built = BuildOrDie(NodesOneTo(5), 9, {32, 3});
  const std::vector<std::vector<NodeId>> lists = AllLists(built);
  EXPECT_EQ(built.FenceEpoch(0), 0u);
  const Ring ring = std::move(built).WithFenceEpoch(7);
  EXPECT_FALSE(ring.InTransition());
  EXPECT_EQ(ring.epoch(), 9u);
  EXPECT_EQ(AllLists(ring), lists);
  for (PartitionId p = 0; p < 32; ++p) {
    EXPECT_EQ(ring.FenceEpoch(p), 7u);
    EXPECT_EQ(ToVector(ring.FutureList(p)), lists[p]);
    EXPECT_TRUE(ring.PendingReplicas(p).empty());
    for (NodeId node : lists[p]) {
      EXPECT_FALSE(ring.IsPending(node, p));
      EXPECT_TRUE(ring.Holds(node, p));
    }
  }
}

// ---- Balance and movement ----

// Q = 256 and N = 3 throughout this section, the sizes the issue measures.
constexpr uint32_t kBalanceQ = 256;
constexpr uint32_t kBalanceN = 3;
constexpr uint32_t kTotalReplicas = kBalanceQ * kBalanceN;


// The movement of one join or leave. "Needed": on a join, the replicas the
// newcomer receives; on a leave, the replicas the leaver held. "Extra" is
// what moves beyond that.
struct Change {
  uint32_t moved = 0;
  uint32_t needed = 0;
  uint32_t Extra() const { return moved - needed; }
};

// The ring after `members` replaced `before`'s member list, one epoch on.
Ring Successor(const Ring& before, const MemberList& members) {
  return BuildOrDie(members, before.epoch() + 1,
                    {before.partition_count(),
                     before.requested_replication_factor()});
}

Change MeasureJoin(const Ring& before, NodeId newcomer) {
  MemberList members = before.member_list();
  MKS_ASSERT(members.Join(newcomer).ok());
  const Ring after = Successor(before, members);
  Change change{ReplicasMoved(before, after), after.ReplicaCountOf(newcomer)};
  MKS_ASSERT_GE(change.moved, change.needed);
  return change;
}

Change MeasureLeave(const Ring& before, NodeId leaver) {
  MemberList members = before.member_list();
  MKS_ASSERT(members.Leave(leaver).ok());
  const Ring after = Successor(before, members);
  MKS_ASSERT(!after.IsMember(leaver));
  Change change{ReplicasMoved(before, after), before.ReplicaCountOf(leaver)};
  MKS_ASSERT_GE(change.moved, change.needed);
  return change;
}

// Extra movement in hundredths of a share, rounded up, a share being 1/n of
// all replicas with n the member count before the change.
uint32_t ExtraPercentOfShare(const Change& change, uint32_t member_count) {
  return (change.Extra() * member_count * 100 + kTotalReplicas - 1) /
         kTotalReplicas;
}

// The extra movement of every member leaving `ring` in turn.
struct LeaveExtras {
  uint32_t worst = 0;          // replicas
  uint32_t worst_percent = 0;  // hundredths of a share
  uint32_t sum = 0;            // replicas
};

// Measures every member leaving `ring` in turn, and checks the bound: the
// replicas that move beyond the leaver's own are those of the member of the
// last seat, which takes over the leaver's seat; it holds at most the mean
// rounded down, so at most one share.
LeaveExtras MeasureEveryLeave(const Ring& ring, const std::string& context) {
  const uint32_t n = static_cast<uint32_t>(ring.members().size());
  const NodeId last_seat = ring.member_list().by_seat().back();
  LeaveExtras extras;
  for (NodeId leaver : ring.member_list().by_seat()) {
    const Change leave = MeasureLeave(ring, leaver);
    EXPECT_LE(leave.Extra(),
              leaver == last_seat ? 0 : ring.ReplicaCountOf(last_seat))
        << context << ", leaver " << leaver;
    EXPECT_LE(ExtraPercentOfShare(leave, n), 100u)
        << context << ", leaver " << leaver;
    extras.worst = std::max(extras.worst, leave.Extra());
    extras.worst_percent =
        std::max(extras.worst_percent, ExtraPercentOfShare(leave, n));
    extras.sum += leave.Extra();
  }
  return extras;
}

// max / mean <= 1.1, in integers: 10 * max * n <= 11 * total.
void ExpectBalanced(const Ring& ring, const std::string& context) {
  const uint32_t n = static_cast<uint32_t>(ring.members().size());
  const uint32_t total = ring.partition_count() * ring.replication_factor();
  EXPECT_LE(10 * MaxLoad(ring) * n, 11 * total) << context;
  for (NodeId node : ring.members()) {
    EXPECT_GE(ring.ReplicaCountOf(node) * n, total - n + 1)
        << context << ", node " << node << " holds less than floor(mean)";
  }
}

// Prints, for every cluster size from 3 to 64, the load of the busiest node
// against the mean, the replicas that move when one node joins, and the
// worst and mean over every member leaving in turn. The cluster grows by
// joins, as a cluster does, so its seats are in join order.
TEST(RingTest, BalanceAndMovementFrom3To64Nodes) {
  std::printf("%5s %6s %5s %6s | %5s %6s %5s | %11s %11s | %5s\n", "nodes",
              "mean", "max", "ratio", "join", "needed", "extra",
              "leave worst", "leave mean", "share");
  MemberList members;
  for (uint32_t i = 0; i < 3; ++i) ASSERT_TRUE(members.Join(100 + 7 * i).ok());
  double worst_ratio = 0;
  uint32_t worst_leave_percent = 0;
  double leave_extra_shares = 0;
  uint32_t leaves_measured = 0;
  for (uint32_t n = 3; n <= 64; ++n) {
    ASSERT_EQ(members.size(), n);
    const Ring ring = BuildOrDie(members, n, {kBalanceQ, kBalanceN});
    const std::string context = std::to_string(n) + " nodes";
    ExpectBalanced(ring, context);
    const uint32_t max_load = MaxLoad(ring);
    worst_ratio = std::max(worst_ratio, double(max_load) * n / kTotalReplicas);

    const NodeId newcomer = 100 + 7 * n;
    const Change join = MeasureJoin(ring, newcomer);
    EXPECT_EQ(join.Extra(), 0u) << context << ", join";
    LeaveExtras leaves;
    // From exactly N members a leave clamps N instead of moving replicas.
    if (n > kBalanceN) leaves = MeasureEveryLeave(ring, context);
    worst_leave_percent = std::max(worst_leave_percent, leaves.worst_percent);
    if (n > kBalanceN) {
      leave_extra_shares += double(leaves.sum) / kTotalReplicas * n;
      leaves_measured += n;
    }
    std::printf("%5u %6.2f %5u %6.3f | %5u %6u %5u | %11u %11.1f | %5.2f\n",
                n, double(kTotalReplicas) / n, max_load,
                double(max_load) * n / kTotalReplicas, join.moved, join.needed,
                join.Extra(), leaves.worst, double(leaves.sum) / n,
                double(kTotalReplicas) / n);
    ASSERT_TRUE(members.Join(newcomer).ok());
  }
  std::printf("busiest node %.3f x mean; extra movement: joins 0; leaves at "
              "most %.2f / n of all replicas, mean %.2f / n over %u leaves\n",
              worst_ratio, worst_leave_percent / 100.0,
              leave_extra_shares / leaves_measured, leaves_measured);
}

// Random joins and leaves of random ids, the cluster staying within 4 to
// 64 members: after each change the ring is balanced, a join moves only
// the newcomer's take and a leave at most one share beyond its own.
TEST(RingTest, MovementOverRandomChanges) {
  Random random(42);
  MemberList members;
  auto fresh_id = [&] {
    NodeId id;
    do {
      id = static_cast<NodeId>(1 + random.Uniform(1u << 30));
    } while (members.Contains(id));
    return id;
  };
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(members.Join(fresh_id()).ok());
  uint32_t worst_leave_percent = 0;
  double leave_extra_shares = 0;
  uint32_t leaves = 0;
  uint32_t joins = 0;
  for (int step = 0; step < 400; ++step) {
    const Ring ring = BuildOrDie(members, step, {kBalanceQ, kBalanceN});
    const uint32_t n = members.size();
    const std::string context =
        "step " + std::to_string(step) + ", " + std::to_string(n) + " nodes";
    ExpectBalanced(ring, context);
    const bool join = n <= 4 || (n < 64 && random.Uniform(2) == 0);
    if (join) {
      const NodeId newcomer = fresh_id();
      EXPECT_EQ(MeasureJoin(ring, newcomer).Extra(), 0u) << context;
      ASSERT_TRUE(members.Join(newcomer).ok());
      ++joins;
    } else {
      const NodeId leaver = members.by_seat()[random.Uniform(n)];
      const Change leave = MeasureLeave(ring, leaver);
      EXPECT_LE(ExtraPercentOfShare(leave, n), 100u)
          << context << ", leaver " << leaver;
      worst_leave_percent =
          std::max(worst_leave_percent, ExtraPercentOfShare(leave, n));
      leave_extra_shares += double(leave.Extra()) * n / kTotalReplicas;
      ++leaves;
      ASSERT_TRUE(members.Leave(leaver).ok());
    }
  }
  EXPECT_GT(joins, 100u);
  EXPECT_GT(leaves, 100u);
  std::printf("%u random joins (extra 0) and %u leaves: worst extra %.2f / n "
              "of all replicas, mean %.2f / n\n",
              joins, leaves, worst_leave_percent / 100.0,
              leave_extra_shares / leaves);
}

TEST(RingTest, EveryMemberHoldsTheMeanRoundedDownOrUp) {
  for (uint32_t q : {1u, 8u, 256u, 1024u}) {
    for (uint32_t n_requested = 1; n_requested <= 5; ++n_requested) {
      for (uint32_t count = 1; count <= 40; ++count) {
        const Ring ring = BuildOrDie(NodesOneTo(count), 1, {q, n_requested});
        const uint32_t total = q * ring.replication_factor();
        for (NodeId node : ring.members()) {
          const uint32_t load = ring.ReplicaCountOf(node);
          ASSERT_LE(load, ring.load_cap()) << q << " " << n_requested;
          ASSERT_GE(load + 1, ring.load_cap()) << q << " " << n_requested;
          ASSERT_EQ(ring.load_cap(), (total + count - 1) / count);
        }
      }
    }
  }
}

// ---- Properties ----

struct RingInput {
  std::vector<NodeId> members;  // unique, non-zero, unsorted
  uint64_t epoch;
  RingOptions options;
};

rc::Gen<RingInput> GenRingInput() {
  return rc::gen::apply(
      [](std::set<NodeId> ids, uint64_t epoch, uint32_t q_log2, uint32_t n,
         uint64_t shuffle_seed) {
        std::vector<NodeId> members(ids.begin(), ids.end());
        // A deterministic shuffle, so order-independence is exercised.
        Random random(shuffle_seed);
        for (size_t i = members.size(); i > 1; --i) {
          std::swap(members[i - 1], members[random.Uniform(i)]);
        }
        return RingInput{members, epoch, RingOptions{1u << q_log2, n}};
      },
      rc::gen::suchThat(
          rc::gen::container<std::set<NodeId>>(
              rc::gen::inRange<NodeId>(1, 1000)),
          [](const std::set<NodeId>& ids) {
            return !ids.empty() && ids.size() <= 40;
          }),
      rc::gen::arbitrary<uint64_t>(), rc::gen::inRange<uint32_t>(0, 9),
      rc::gen::inRange<uint32_t>(1, 6), rc::gen::arbitrary<uint64_t>());
}

RC_GTEST_PROP(RingProperty, PreferenceListsHoldNDistinctMembers, ()) {
  const RingInput input = *GenRingInput();
  const Ring ring = BuildOrDie(input.members, input.epoch, input.options);
  const size_t expected_n = std::min<size_t>(
      input.options.replication_factor, input.members.size());
  RC_ASSERT(ring.replication_factor() == expected_n);
  for (PartitionId p = 0; p < ring.partition_count(); ++p) {
    std::span<const NodeId> list = ring.PreferenceList(p);
    RC_ASSERT(list.size() == expected_n);
    const std::set<NodeId> distinct(list.begin(), list.end());
    RC_ASSERT(distinct.size() == expected_n);
    for (NodeId node : list) RC_ASSERT(ring.IsMember(node));
  }
  for (NodeId node : ring.members()) {
    RC_ASSERT(ring.ReplicaCountOf(node) <= ring.load_cap());
  }
}

RC_GTEST_PROP(RingProperty, RingOfIdsIsAPureFunctionOfTheMemberSet, ()) {
  const RingInput input = *GenRingInput();
  const Ring ring = BuildOrDie(input.members, input.epoch, input.options);
  // Same members in another order, and at another epoch: same placement.
  std::vector<NodeId> reversed(input.members.rbegin(), input.members.rend());
  const uint64_t other_epoch = input.epoch + 1;
  const Ring again = BuildOrDie(reversed, other_epoch, input.options);
  RC_ASSERT(AllLists(ring) == AllLists(again));
  RC_ASSERT(ring.members() == again.members());
  RC_ASSERT(ring.member_list() == again.member_list());
  RC_ASSERT(std::is_sorted(ring.members().begin(), ring.members().end()));
  RC_ASSERT(ring.member_list().by_seat() == ring.members());
  RC_ASSERT(ring.epoch() == input.epoch);
  RC_ASSERT(again.epoch() == other_epoch);
}

// Placement depends on the seats only: the members of another list of the
// same size hold, seat by seat, the same replicas.
RC_GTEST_PROP(RingProperty, SeatsNotIdsDecidePlacement, ()) {
  const RingInput input = *GenRingInput();
  const Result<MemberList> seated = MemberList::FromSeats(input.members);
  RC_ASSERT(seated.ok());
  const Ring ring = BuildOrDie(*seated, input.epoch, input.options);
  std::vector<NodeId> others;
  // Reverses the id order, so ids and seats sort differently.
  for (NodeId id : input.members) others.push_back(5000 - id);
  const Ring relabeled =
      BuildOrDie(MemberList::FromSeats(others).value(), 1, input.options);
  for (PartitionId p = 0; p < ring.partition_count(); ++p) {
    std::span<const NodeId> list = ring.PreferenceList(p);
    std::span<const NodeId> other = relabeled.PreferenceList(p);
    RC_ASSERT(list.size() == other.size());
    for (size_t i = 0; i < list.size(); ++i) RC_ASSERT(other[i] == 5000 - list[i]);
  }
}

// A join changes a list only where the newcomer takes a replica's place, so
// the other replicas keep their places in preference order too. Below N
// members a join adds the newcomer to every list instead.
RC_GTEST_PROP(RingProperty, AJoinMovesOnlyTheNewcomersTake, ()) {
  const RingInput input = *GenRingInput();
  const Result<MemberList> seated = MemberList::FromSeats(input.members);
  RC_ASSERT(seated.ok());
  const Ring before = BuildOrDie(*seated, 1, input.options);
  const NodeId newcomer = *rc::gen::suchThat(
      rc::gen::inRange<NodeId>(1, 2000),
      [&](NodeId id) { return !seated->Contains(id); });
  MemberList joined = *seated;
  RC_ASSERT(joined.Join(newcomer).ok());
  const Ring after = BuildOrDie(joined, 2, input.options);
  RC_ASSERT(ReplicasMoved(before, after) == after.ReplicaCountOf(newcomer));
  const uint32_t total = after.partition_count() * after.replication_factor();
  RC_ASSERT(after.ReplicaCountOf(newcomer) == total / joined.size());
  if (seated->size() < input.options.replication_factor) return;
  for (PartitionId p = 0; p < before.partition_count(); ++p) {
    std::span<const NodeId> old_list = before.PreferenceList(p);
    std::span<const NodeId> new_list = after.PreferenceList(p);
    RC_ASSERT(old_list.size() == new_list.size());
    for (size_t i = 0; i < old_list.size(); ++i) {
      RC_ASSERT(new_list[i] == old_list[i] || new_list[i] == newcomer);
    }
  }
}

// A leave moves the leaver's replicas and, unless the leaver held the last
// seat, at most the last seat's replicas more. At N members or fewer every
// member holds every partition, and a leave moves nothing.
RC_GTEST_PROP(RingProperty, ALeaveMovesAtMostTheLastSeatsShareMore, ()) {
  const RingInput input = *GenRingInput();
  const Result<MemberList> seated = MemberList::FromSeats(input.members);
  RC_ASSERT(seated.ok());
  RC_PRE(seated->size() > 1u);
  const Ring before = BuildOrDie(*seated, 1, input.options);
  const NodeId leaver = *rc::gen::elementOf(seated->by_seat());
  const NodeId last_seat = seated->by_seat().back();
  MemberList left = *seated;
  RC_ASSERT(left.Leave(leaver).ok());
  const Ring after = BuildOrDie(left, 2, input.options);
  const uint32_t moved = ReplicasMoved(before, after);
  if (seated->size() <= input.options.replication_factor) {
    RC_ASSERT(moved == 0u);
    return;
  }
  const uint32_t own = before.ReplicaCountOf(leaver);
  RC_ASSERT(moved >= own);
  RC_ASSERT(moved - own <=
            (leaver == last_seat ? 0 : before.ReplicaCountOf(last_seat)));
}

}  // namespace
}  // namespace mks
