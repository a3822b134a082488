#include "core/cluster_state.h"

#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <map>
#include <string>
#include <vector>

namespace mks {
namespace {

ClusterMember Normal(NodeId node) {
  return ClusterMember{node, MembershipState::kNormal,
                       {"10.0.0." + std::to_string(node) + ":7000", "", ""}};
}

ClusterState Started(const std::vector<NodeId>& seats) {
  std::vector<ClusterMember> seated;
  for (NodeId node : seats) seated.push_back(Normal(node));
  Result<std::string> initial = ClusterState::Initial("c1", seated);
  MKS_ASSERT_MSG(initial.ok(), initial.status().ToString());
  ClusterState state;
  MKS_ASSERT(state.Restore(*initial).ok());
  return state;
}

TEST(ClusterStateTest, InitialStateSeatsTheFirstMembersAtEpochOne) {
  const ClusterState state = Started({3, 1, 2});
  EXPECT_EQ(state.cluster_id(), "c1");
  EXPECT_EQ(state.epoch(), 1u);
  EXPECT_EQ(state.members().by_seat(), (std::vector<NodeId>{3, 1, 2}));
  ASSERT_TRUE(state.Seated(1).has_value());
  EXPECT_EQ(state.Seated(1)->state, MembershipState::kNormal);
  EXPECT_EQ(state.Seated(1)->addresses.peer, "10.0.0.1:7000");
  EXPECT_FALSE(state.Seated(4).has_value());
}

TEST(ClusterStateTest, InitialRefusesWhatNoClusterCanBe) {
  EXPECT_TRUE(ClusterState::Initial("", {Normal(1)}).status().IsInvalidArgument());
  EXPECT_TRUE(ClusterState::Initial("c1", {}).status().IsInvalidArgument());
  EXPECT_TRUE(ClusterState::Initial("c1", {Normal(1), Normal(1)}).status().IsInvalidArgument());
  EXPECT_TRUE(ClusterState::Initial("c1", {Normal(kNoNode)}).status().IsInvalidArgument());
}

TEST(ClusterStateTest, AddSeatsANewcomerLastAndOnlyOnce) {
  ClusterState state = Started({1, 2, 3});
  ClusterMember joiner = Normal(7);
  joiner.state = MembershipState::kJoining;
  state.Apply(2, ClusterState::AddCommand(joiner));
  EXPECT_EQ(state.epoch(), 2u);
  EXPECT_EQ(state.members().by_seat(), (std::vector<NodeId>{1, 2, 3, 7}));
  EXPECT_EQ(state.Seated(7)->state, MembershipState::kJoining);
  // A retried proposal changes nothing, the epoch included.
  state.Apply(3, ClusterState::AddCommand(joiner));
  EXPECT_EQ(state.epoch(), 2u);
  EXPECT_EQ(state.no_ops_applied(), 1u);
  EXPECT_EQ(state.changes_applied(), 1u);
}

TEST(ClusterStateTest, SetStateAppliesOnlyFromTheStateItNames) {
  ClusterState state = Started({1, 2, 3});
  state.Apply(2, ClusterState::SetStateCommand(2, MembershipState::kJoining,
                                               MembershipState::kNormal));
  EXPECT_EQ(state.epoch(), 1u);  // 2 is normal, not joining
  state.Apply(3, ClusterState::SetStateCommand(2, MembershipState::kNormal,
                                               MembershipState::kLeaving));
  EXPECT_EQ(state.epoch(), 2u);
  EXPECT_EQ(state.Seated(2)->state, MembershipState::kLeaving);
  state.Apply(4, ClusterState::SetStateCommand(9, MembershipState::kNormal,
                                               MembershipState::kLeaving));
  EXPECT_EQ(state.epoch(), 2u);  // not a member
}

TEST(ClusterStateTest, RemoveHandsTheSeatToTheLastMember) {
  ClusterState state = Started({1, 2, 3, 4});
  state.Apply(2, ClusterState::RemoveCommand(2));
  EXPECT_EQ(state.epoch(), 2u);
  EXPECT_EQ(state.members().by_seat(), (std::vector<NodeId>{1, 4, 3}));
  EXPECT_EQ(state.Seated(4)->addresses.peer, "10.0.0.4:7000");
  ASSERT_EQ(state.removed().count(2), 1u);
  EXPECT_EQ(state.removed().at(2).state, MembershipState::kRemoved);
  state.Apply(3, ClusterState::RemoveCommand(2));
  EXPECT_EQ(state.epoch(), 2u);
  // A removed node may come back, seated last.
  state.Apply(4, ClusterState::AddCommand(Normal(2)));
  EXPECT_EQ(state.members().by_seat(), (std::vector<NodeId>{1, 4, 3, 2}));
  EXPECT_EQ(state.removed().count(2), 0u);
}

TEST(ClusterStateTest, AdvanceEpochIsConditional) {
  ClusterState state = Started({1});
  state.Apply(2, ClusterState::AdvanceEpochCommand(1));
  EXPECT_EQ(state.epoch(), 2u);
  state.Apply(3, ClusterState::AdvanceEpochCommand(1));  // stale
  EXPECT_EQ(state.epoch(), 2u);
}

TEST(ClusterStateTest, UndecodableCommandsAreNoOps) {
  ClusterState state = Started({1, 2});
  const std::string before = state.Snapshot();
  state.Apply(2, "\xff\xff garbage");
  state.Apply(3, "");
  EXPECT_EQ(state.Snapshot(), before);
  EXPECT_EQ(state.no_ops_applied(), 2u);
}

TEST(ClusterStateTest, BadSnapshotIsCorruptionAndChangesNothing) {
  ClusterState state = Started({1, 2});
  const std::string before = state.Snapshot();
  EXPECT_TRUE(state.Restore("\xff\xff not a snapshot").IsCorruption());
  EXPECT_TRUE(state.Restore("").IsCorruption());
  EXPECT_EQ(state.Snapshot(), before);
}

ClusterMember Joining(NodeId node) {
  ClusterMember member = Normal(node);
  member.state = MembershipState::kJoining;
  return member;
}

// Reports every pending replica of every changing partition done.
void StreamEverything(ClusterState* state, raft::Index* index) {
  const Transition* transition = state->transition();
  ASSERT_NE(transition, nullptr);
  const uint64_t begin = transition->begin_epoch;
  std::map<NodeId, std::vector<PartitionId>> by_node;
  for (PartitionId p = 0; p < transition->pending.size(); ++p) {
    for (NodeId node : transition->pending[p]) by_node[node].push_back(p);
  }
  for (const auto& [node, partitions] : by_node) {
    state->Apply((*index)++, ClusterState::StreamDoneCommand(begin, node, partitions));
  }
}

TEST(ClusterStateTest, AJoinFlipsEachPartitionOnceItsPendingReplicasHoldIt) {
  ClusterState state = Started({1, 2, 3});
  state.Apply(2, ClusterState::AddCommand(Joining(4)));
  const Transition* transition = state.transition();
  ASSERT_NE(transition, nullptr);
  EXPECT_EQ(transition->begin_epoch, 2u);
  EXPECT_GT(transition->changing, 0u);
  // The joiner's share changes: it is the only pending replica anywhere.
  PartitionId moving = 0;
  for (PartitionId p = 0; p < transition->pending.size(); ++p) {
    for (NodeId node : transition->pending[p]) EXPECT_EQ(node, 4u);
    if (!transition->pending[p].empty()) moving = p;
  }
  Ring ring = state.BuildRing();
  EXPECT_TRUE(ring.InTransition());
  EXPECT_TRUE(ring.IsPending(4, moving));
  EXPECT_FALSE(ring.IsReplica(4, moving));
  EXPECT_EQ(ring.FenceEpoch(moving), 2u);
  // A finish before every partition flipped is a no-op.
  state.Apply(3, ClusterState::FinishCommand(2));
  EXPECT_EQ(state.epoch(), 2u);
  // One partition done: it flips (its replicas become the new ones).
  state.Apply(4, ClusterState::StreamDoneCommand(2, 4, {moving}));
  EXPECT_EQ(state.epoch(), 3u);
  ring = state.BuildRing();
  EXPECT_TRUE(ring.IsReplica(4, moving));
  EXPECT_FALSE(ring.IsPending(4, moving));
  EXPECT_EQ(ring.FenceEpoch(moving), 3u);
  // A report for another transition, or by a node not pending, changes nothing.
  state.Apply(5, ClusterState::StreamDoneCommand(9, 4, {0, 1, 2}));
  state.Apply(6, ClusterState::StreamDoneCommand(2, 1, {0, 1, 2}));
  EXPECT_EQ(state.epoch(), 3u);
  raft::Index index = 7;
  StreamEverything(&state, &index);
  EXPECT_TRUE(state.TransitionComplete());
  state.Apply(index++, ClusterState::FinishCommand(2));
  EXPECT_EQ(state.transition(), nullptr);
  EXPECT_EQ(state.Seated(4)->state, MembershipState::kNormal);
  ring = state.BuildRing();
  EXPECT_FALSE(ring.InTransition());
  const Ring expected = Ring::Build(state.members(), 1).value();
  for (PartitionId p = 0; p < ring.partition_count(); ++p) {
    EXPECT_TRUE(std::ranges::equal(ring.PreferenceList(p), expected.PreferenceList(p)));
    EXPECT_EQ(ring.FenceEpoch(p), state.epoch());
  }
}

TEST(ClusterStateTest, OneChangeRunsAtATime) {
  ClusterState state = Started({1, 2, 3});
  state.Apply(2, ClusterState::AddCommand(Joining(4)));
  const uint64_t epoch = state.epoch();
  state.Apply(3, ClusterState::AddCommand(Joining(5)));
  state.Apply(4, ClusterState::LeaveCommand(2));
  state.Apply(5, ClusterState::RemoveCommand(2));
  EXPECT_EQ(state.epoch(), epoch);
  EXPECT_FALSE(state.Seated(5).has_value());
  EXPECT_EQ(state.Seated(2)->state, MembershipState::kNormal);
}

TEST(ClusterStateTest, ALeaveHandsTheLeaversSeatOverOnlyWhenFinished) {
  ClusterState state = Started({1, 2, 3, 4});
  state.Apply(2, ClusterState::LeaveCommand(2));
  ASSERT_NE(state.transition(), nullptr);
  EXPECT_EQ(state.Seated(2)->state, MembershipState::kLeaving);
  EXPECT_EQ(state.members().by_seat(), (std::vector<NodeId>{1, 2, 3, 4}));
  raft::Index index = 3;
  StreamEverything(&state, &index);
  EXPECT_EQ(state.members().size(), 4u);  // not before the finish
  state.Apply(index++, ClusterState::FinishCommand(2));
  EXPECT_EQ(state.members().by_seat(), (std::vector<NodeId>{1, 4, 3}));
  EXPECT_EQ(state.removed().count(2), 1u);
  const Ring ring = state.BuildRing();
  EXPECT_EQ(ring.ReplicaCountOf(2), 0u);
}

TEST(ClusterStateTest, ForcedRemovalOfTheJoinerAbandonsItsJoin) {
  ClusterState state = Started({1, 2, 3});
  state.Apply(2, ClusterState::AddCommand(Joining(4)));
  state.Apply(3, ClusterState::StreamDoneCommand(2, 4, {0, 1, 2, 3, 4, 5, 6, 7}));
  state.Apply(4, ClusterState::RemoveCommand(4));
  EXPECT_EQ(state.transition(), nullptr);
  EXPECT_EQ(state.members().by_seat(), (std::vector<NodeId>{1, 2, 3}));
  EXPECT_EQ(state.BuildRing().ReplicaCountOf(4), 0u);
}

TEST(ClusterStateTest, ATransitionSurvivesSnapshotAndRestore) {
  ClusterState state = Started({1, 2, 3});
  state.Apply(2, ClusterState::AddCommand(Joining(4)));
  state.Apply(3, ClusterState::StreamDoneCommand(2, 4, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
  ClusterState restored;
  ASSERT_TRUE(restored.Restore(state.Snapshot()).ok());
  EXPECT_EQ(restored.Snapshot(), state.Snapshot());
  ASSERT_NE(restored.transition(), nullptr);
  EXPECT_EQ(restored.transition()->flipped_at, state.transition()->flipped_at);
  const Ring a = state.BuildRing();
  const Ring b = restored.BuildRing();
  for (PartitionId p = 0; p < a.partition_count(); ++p) {
    EXPECT_TRUE(std::ranges::equal(a.PreferenceList(p), b.PreferenceList(p)));
    EXPECT_EQ(a.PendingReplicas(p), b.PendingReplicas(p));
    EXPECT_EQ(a.FenceEpoch(p), b.FenceEpoch(p));
  }
}

// Commands drawn from a small id space, so that they often collide.
std::string DrawCommand() {
  const NodeId node = *rc::gen::inRange<NodeId>(1, 7);
  const auto state = static_cast<MembershipState>(*rc::gen::inRange(0, 3));
  const auto other = static_cast<MembershipState>(*rc::gen::inRange(0, 3));
  switch (*rc::gen::inRange(0, 7)) {
    case 4: return ClusterState::LeaveCommand(node);
    case 5: {
      std::vector<PartitionId> partitions =
          *rc::gen::container<std::vector<PartitionId>>(rc::gen::inRange<PartitionId>(0, 256));
      return ClusterState::StreamDoneCommand(*rc::gen::inRange<uint64_t>(1, 8), node, partitions);
    }
    case 6: return ClusterState::FinishCommand(*rc::gen::inRange<uint64_t>(1, 8));
    case 0: {
      ClusterMember member = Normal(node);
      member.state = *rc::gen::arbitrary<bool>() ? MembershipState::kJoining
                                                 : MembershipState::kNormal;
      return ClusterState::AddCommand(member);
    }
    case 1: return ClusterState::SetStateCommand(node, state, other);
    case 2: return ClusterState::RemoveCommand(node);
    default: return ClusterState::AdvanceEpochCommand(*rc::gen::inRange<uint64_t>(1, 6));
  }
}

RC_GTEST_PROP(ClusterStateProperty, ReplicasThatApplyTheSameCommandsAgreeWhereverTheySnapshot,
              ()) {
  const std::vector<std::string> commands =
      *rc::gen::container<std::vector<std::string>>(rc::gen::exec(DrawCommand));
  const size_t cut = *rc::gen::inRange<size_t>(0, commands.size() + 1);
  ClusterState straight = Started({1, 2, 3});
  ClusterState restarted = Started({1, 2, 3});
  uint64_t epoch = straight.epoch();
  for (size_t i = 0; i < commands.size(); ++i) {
    straight.Apply(i + 2, commands[i]);
    RC_ASSERT(straight.epoch() >= epoch);
    epoch = straight.epoch();
    if (i == cut) {
      ClusterState fresh;
      RC_ASSERT(fresh.Restore(restarted.Snapshot()).ok());
      restarted = fresh;
    }
    restarted.Apply(i + 2, commands[i]);
    RC_ASSERT(restarted.Snapshot() == straight.Snapshot());
  }
  RC_ASSERT(straight.epoch() == 1 + straight.changes_applied());
}

}  // namespace
}  // namespace mks
