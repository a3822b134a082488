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
  EXPECT_EQ(Ring::Build({}, 1).status().code(), StatusCode::kInvalidArgument);
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
      {40, 10, 30}, {50, 40, 30}, {30, 20, 50}, {30, 10, 20},
      {10, 20, 40}, {10, 20, 50}, {10, 50, 40}, {30, 20, 40},
  };
  EXPECT_EQ(AllLists(ring), expected);
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

// ---- Balance and movement ----

// Q = 256 and N = 3 throughout this section, the sizes the issue measures.
constexpr uint32_t kBalanceQ = 256;
constexpr uint32_t kBalanceN = 3;
constexpr uint32_t kTotalReplicas = kBalanceQ * kBalanceN;

// Replicas that nodes above `after`'s load cap held in `before`: the balance
// bound forces them off those nodes.
uint32_t ForcedSheds(const Ring& before, const Ring& after) {
  uint32_t forced = 0;
  for (NodeId node : before.members()) {
    const uint32_t load = before.ReplicaCountOf(node);
    if (load > after.load_cap()) forced += load - after.load_cap();
  }
  return forced;
}

// The movement of one join or leave. "Necessary" movement: on a leave, the
// leaver's replicas; on a join, the newcomer's replicas or, if more, the
// replicas that nodes above the new (smaller) load cap must shed (at best all
// of them go to the newcomer). load_cap() is the uniform balance bound, which
// every node's own limit stays within, so this minimum does not depend on how
// placement chooses below the bound. "Extra" is what moves beyond that.
struct Change {
  uint32_t moved = 0;
  uint32_t needed = 0;
  bool cap_changes = false;
  uint32_t Extra() const { return moved > needed ? moved - needed : 0; }
};

Change Join(const Ring& before, const Ring& after, NodeId newcomer) {
  Change change;
  change.moved = ReplicasMoved(before, after);
  change.needed =
      std::max(after.ReplicaCountOf(newcomer), ForcedSheds(before, after));
  change.cap_changes = after.load_cap() != before.load_cap();
  MKS_ASSERT_GE(change.moved, after.ReplicaCountOf(newcomer));
  return change;
}

Change Leave(const Ring& before, const Ring& after, NodeId leaver) {
  Change change;
  change.moved = ReplicasMoved(before, after);
  change.needed = before.ReplicaCountOf(leaver);
  change.cap_changes = after.load_cap() != before.load_cap();
  MKS_ASSERT_GE(change.moved, change.needed);
  MKS_ASSERT(!after.IsMember(leaver));
  return change;
}

// Extra movement in hundredths of a share, rounded up, a share being 1/n of
// all replicas with n the member count before the change.
uint32_t ExtraPercentOfShare(const Change& change, uint32_t member_count) {
  return (change.Extra() * member_count * 100 + kTotalReplicas - 1) /
         kTotalReplicas;
}

// The worst extra movement seen, in hundredths of a share, over all changes
// and over those that keep the load cap; and the mean over all changes, in
// shares (not rounded).
struct WorstExtra {
  uint32_t any = 0;
  uint32_t same_cap = 0;
  double sum_shares = 0;
  uint32_t changes = 0;
  void Add(const Change& change, uint32_t member_count) {
    const uint32_t percent = ExtraPercentOfShare(change, member_count);
    any = std::max(any, percent);
    if (!change.cap_changes) same_cap = std::max(same_cap, percent);
    sum_shares += double(change.Extra()) * member_count / kTotalReplicas;
    ++changes;
  }
  double MeanShares() const { return changes == 0 ? 0 : sum_shares / changes; }
};

// Measured bounds, in hundredths of a share (see ring.cpp for the
// placement): a join or leave moves at most this much beyond the necessary.
// Measured: 92 and 128 on the cluster of the first test, 170 and 170 over
// the member sets of the second. The placement before stratified scores
// measured 117 and 199, and 189 and 215, so each bound fails on it.
constexpr uint32_t kMaxExtraPercentSameCap = 95;
constexpr uint32_t kMaxExtraPercent = 130;
constexpr uint32_t kMaxExtraPercentSameCapManySets = 170;
constexpr uint32_t kMaxExtraPercentManySets = 170;

// Prints, for every cluster size from 3 to 64, the load of the busiest node
// against the mean, and the replicas that move when one node joins or the
// middle node leaves. The target is about one share beyond the necessary;
// it is not reached everywhere (docs/ring-and-rpc.md says why): a change
// reroutes chains of freed slots when receivers are nearly full, and as the
// mean shrinks some nodes' keep limits drop by one, each such node handing
// one replica to a node with room (or on a leave taking one back).
TEST(RingTest, BalanceAndMovementFrom3To64Nodes) {
  std::printf("%5s %6s %5s %6s | %6s %6s %6s | %6s %6s %6s | %6s\n", "nodes",
              "mean", "max", "ratio", "join", "needed", "extra", "leave",
              "needed", "extra", "share");
  WorstExtra worst;
  for (uint32_t n = 3; n <= 64; ++n) {
    std::vector<NodeId> members;
    for (uint32_t i = 0; i < n; ++i) members.push_back(100 + 7 * i);
    const Ring ring = BuildOrDie(members, 1, {kBalanceQ, kBalanceN});
    const uint32_t max_load = MaxLoad(ring);
    // max / mean <= 1.1, in integers: 10 * max * n <= 11 * total.
    EXPECT_LE(10 * max_load * n, 11 * kTotalReplicas) << n << " nodes";
    const uint32_t share = (kTotalReplicas + n - 1) / n;

    std::vector<NodeId> joined = members;
    joined.push_back(99999);
    const Change join =
        Join(ring, BuildOrDie(joined, 2, {kBalanceQ, kBalanceN}), 99999);
    worst.Add(join, n);
    // A leave from exactly N nodes clamps N instead of moving anything.
    Change leave;
    if (n > kBalanceN) {
      std::vector<NodeId> left = members;
      const NodeId leaver = left[n / 2];
      left.erase(left.begin() + n / 2);
      leave = Leave(ring, BuildOrDie(left, 2, {kBalanceQ, kBalanceN}), leaver);
      worst.Add(leave, n);
    }
    std::printf("%5u %6.2f %5u %6.3f | %6u %6u %6u | %6u %6u %6u | %6u\n", n,
                double(kTotalReplicas) / n, max_load,
                double(max_load) * n / kTotalReplicas, join.moved,
                join.needed, join.Extra(), leave.moved, leave.needed,
                leave.Extra(), share);
    EXPECT_LE(ExtraPercentOfShare(join, n),
              join.cap_changes ? kMaxExtraPercent : kMaxExtraPercentSameCap)
        << n << " nodes, join";
    EXPECT_LE(ExtraPercentOfShare(leave, n),
              leave.cap_changes ? kMaxExtraPercent : kMaxExtraPercentSameCap)
        << n << " nodes, leave";
  }
  std::printf("worst extra movement: %.2f / n of all replicas; "
              "%.2f / n when the load cap does not change; mean %.2f / n\n",
              worst.any / 100.0, worst.same_cap / 100.0, worst.MeanShares());
}

// The same measure over other member ids (random 30-bit ids from three
// seeds) and three leavers per size: the smallest, the middle and the
// largest id. Placement depends on the ids through the hashes, so one
// cluster alone can look better or worse than the typical case.
TEST(RingTest, MovementOverSeveralMemberSets) {
  WorstExtra worst;
  uint32_t worst_ratio_per_mille = 0;
  for (uint64_t seed = 1; seed <= 3; ++seed) {
    Random random(seed);
    std::vector<NodeId> pool;
    while (pool.size() < 65) {
      const NodeId id = static_cast<NodeId>(1 + random.Uniform(1u << 30));
      if (std::find(pool.begin(), pool.end(), id) == pool.end()) {
        pool.push_back(id);
      }
    }
    const NodeId newcomer = pool.back();
    for (uint32_t n = 3; n <= 64; ++n) {
      const std::vector<NodeId> members(pool.begin(), pool.begin() + n);
      const Ring ring = BuildOrDie(members, 1, {kBalanceQ, kBalanceN});
      const uint32_t max_load = MaxLoad(ring);
      EXPECT_LE(10 * max_load * n, 11 * kTotalReplicas) << n << " nodes";
      worst_ratio_per_mille = std::max(
          worst_ratio_per_mille, max_load * n * 1000 / kTotalReplicas);
      std::vector<NodeId> joined = members;
      joined.push_back(newcomer);
      worst.Add(
          Join(ring, BuildOrDie(joined, 2, {kBalanceQ, kBalanceN}), newcomer),
          n);
      if (n <= kBalanceN) continue;
      for (size_t index : {size_t{0}, size_t{n / 2}, size_t{n - 1}}) {
        const NodeId leaver = ring.members()[index];
        std::vector<NodeId> left = ring.members();
        left.erase(left.begin() + static_cast<std::ptrdiff_t>(index));
        const Change leave =
            Leave(ring, BuildOrDie(left, 2, {kBalanceQ, kBalanceN}), leaver);
        worst.Add(leave, n);
        EXPECT_LE(ExtraPercentOfShare(leave, n),
                  leave.cap_changes ? kMaxExtraPercentManySets
                                    : kMaxExtraPercentSameCapManySets)
            << "seed " << seed << ", " << n << " nodes, leaver " << leaver;
      }
    }
  }
  EXPECT_LE(worst.any, kMaxExtraPercentManySets);
  EXPECT_LE(worst.same_cap, kMaxExtraPercentSameCapManySets);
  std::printf("3 member sets: busiest node %.3f x mean; worst extra movement "
              "%.2f / n of all replicas; %.2f / n when the load cap does not "
              "change; mean %.2f / n\n",
              worst_ratio_per_mille / 1000.0, worst.any / 100.0,
              worst.same_cap / 100.0, worst.MeanShares());
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

RC_GTEST_PROP(RingProperty, RingIsAPureFunctionOfTheMemberSet, ()) {
  const RingInput input = *GenRingInput();
  const Ring ring = BuildOrDie(input.members, input.epoch, input.options);
  // Same members in another order, and at another epoch: same placement.
  std::vector<NodeId> reversed(input.members.rbegin(), input.members.rend());
  const uint64_t other_epoch = input.epoch + 1;
  const Ring again = BuildOrDie(reversed, other_epoch, input.options);
  RC_ASSERT(AllLists(ring) == AllLists(again));
  RC_ASSERT(ring.members() == again.members());
  RC_ASSERT(std::is_sorted(ring.members().begin(), ring.members().end()));
  RC_ASSERT(ring.epoch() == input.epoch);
  RC_ASSERT(again.epoch() == other_epoch);
}

}  // namespace
}  // namespace mks
