#include "core/cluster_state.h"

#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

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

// Commands drawn from a small id space, so that they often collide.
std::string DrawCommand() {
  const NodeId node = *rc::gen::inRange<NodeId>(1, 7);
  const auto state = static_cast<MembershipState>(*rc::gen::inRange(0, 3));
  const auto other = static_cast<MembershipState>(*rc::gen::inRange(0, 3));
  switch (*rc::gen::inRange(0, 4)) {
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
