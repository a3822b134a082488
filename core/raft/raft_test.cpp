#include "core/raft/raft.h"

#include <gtest/gtest.h>

#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>

#include "core/loopback_cluster_for_test.h"

namespace mks::raft {
namespace {

constexpr int64_t kMs = 1'000'000;

// Appends every command to a string: equal strings, equal histories.
class LogMachine final : public StateMachine {
 public:
  void Apply(Index, const std::string& command) override { state += command + ";"; }
  std::string Snapshot() const override { return state; }
  Status Restore(const std::string& snapshot) override {
    state = snapshot;
    return Status::Ok();
  }
  std::string state;
};

class RaftCluster {
 public:
  // Nodes 1..voters are the bootstrap voters; nodes up to `nodes` exist
  // on the network and start empty.
  explicit RaftCluster(uint32_t voters, RaftOptions options = {}, uint32_t nodes = 0)
      : net_(std::max(voters, nodes), 1000 * kMs), options_(options) {
    for (NodeId id = 1; id <= voters; ++id) config_.voters.push_back(id);
  }
  ~RaftCluster() {
    for (auto& [id, slot] : slots_) Crash(id);
  }
  // Start, expecting it to succeed.
  void Start(NodeId id, bool bootstrap, const std::string& cluster_id = "c1") {
    const Status started = TryStart(id, bootstrap, cluster_id);
    ASSERT_TRUE(started.ok()) << started;
  }
  Status TryStart(NodeId id, bool bootstrap, const std::string& cluster_id = "c1") {
    Slot& slot = slots_[id];
    const Environment env = net_.Boot(id);
    slot.machine = std::make_unique<LogMachine>();
    slot.raft = std::make_unique<Raft>(net_.scheduler(), net_.process(id), net_.rpc(id),
                                       slot.machine.get(), env, options_);
    const Status started = slot.raft->Start();
    if (!started.ok()) {
      Crash(id);
      return started;
    }
    if (bootstrap) {
      Config config = config_;
      if (!config.IsVoter(id)) config = Config{{id}, {}};
      MKS_RETURN_IF_ERROR(slot.raft->Bootstrap(cluster_id, config, ""));
    }
    return Status::Ok();
  }
  void Crash(NodeId id) {
    Slot& slot = slots_.at(id);
    if (slot.raft == nullptr) return;
    net_.Kill(id);
    slot.raft.reset();
  }
  void CutOff(NodeId id, bool cut) { net_.CutOff(id, cut); }
  void RunFor(int64_t duration_ns) { net_.RunFor(duration_ns); }
  void RunOn(NodeId id, std::function<void()> body) { net_.RunOn(id, std::move(body)); }
  // The one leader of cluster c1 among running nodes of the highest term,
  // or kNoNode.
  NodeId Leader() {
    NodeId leader = kNoNode;
    Term best = 0;
    for (auto& [id, slot] : slots_) {
      if (slot.raft == nullptr || slot.raft->role() != Role::kLeader) continue;
      if (slot.raft->cluster_id() != "c1") continue;
      if (slot.raft->term() >= best) {
        best = slot.raft->term();
        leader = id;
      }
    }
    return leader;
  }
  Raft& raft(NodeId id) { return *slots_.at(id).raft; }
  MapDisk& disk(NodeId id) { return net_.disk(id); }
  // Proposes on `on` and waits for the outcome.
  Result<Index> Propose(NodeId on, const std::string& command) {
    Result<Index> outcome = Status::Internal("not run");
    RunOn(on, [&] { outcome = raft(on).Propose(command).Get(); });
    return outcome;
  }
  // Runs a membership change on the leader `on` and waits for it.
  Status Change(NodeId on, const std::function<runtime::Future<Index>(Raft&)>& change) {
    Status outcome = Status::Internal("not run");
    RunOn(on, [&] { outcome = change(raft(on)).Get().status(); });
    return outcome;
  }
  const std::string& state(NodeId id) { return slots_.at(id).machine->state; }

 private:
  struct Slot {
    std::unique_ptr<LogMachine> machine;
    std::unique_ptr<Raft> raft;
  };
  LoopbackCluster net_;  // first: outlives every node's Raft
  const RaftOptions options_;
  Config config_;
  std::map<NodeId, Slot> slots_;
};

TEST(RaftTest, ElectsOneLeaderAndReplicatesInOrder) {
  RaftCluster cluster(3);
  for (NodeId id = 1; id <= 3; ++id) cluster.Start(id, true);
  cluster.RunFor(5000 * kMs);
  const NodeId leader = cluster.Leader();
  ASSERT_NE(leader, kNoNode);
  for (int i = 0; i < 5; ++i) {
    cluster.RunOn(leader, [&] {
      EXPECT_TRUE(cluster.raft(leader).Propose("c" + std::to_string(i)).Get().ok());
    });
  }
  cluster.RunFor(1000 * kMs);
  for (NodeId id = 1; id <= 3; ++id) EXPECT_EQ(cluster.state(id), "c0;c1;c2;c3;c4;") << id;
}

TEST(RaftTest, NewLeaderAfterCrashKeepsCommittedEntries) {
  RaftCluster cluster(3);
  for (NodeId id = 1; id <= 3; ++id) cluster.Start(id, true);
  cluster.RunFor(5000 * kMs);
  const NodeId first = cluster.Leader();
  ASSERT_NE(first, kNoNode);
  const Term term = cluster.raft(first).term();
  cluster.RunOn(first, [&] { EXPECT_TRUE(cluster.raft(first).Propose("a").Get().ok()); });
  cluster.Crash(first);
  cluster.RunFor(5000 * kMs);
  const NodeId second = cluster.Leader();
  ASSERT_NE(second, kNoNode);
  EXPECT_NE(second, first);
  EXPECT_GT(cluster.raft(second).term(), term);
  cluster.RunOn(second, [&] { EXPECT_TRUE(cluster.raft(second).Propose("b").Get().ok()); });
  cluster.Start(first, false);  // back with its log
  cluster.RunFor(3000 * kMs);
  for (NodeId id = 1; id <= 3; ++id) EXPECT_EQ(cluster.state(id), "a;b;") << id;
  EXPECT_EQ(cluster.Leader(), second);
}

TEST(RaftTest, ReturningIsolatedNodeDoesNotUnseatTheLeader) {
  RaftCluster cluster(3);
  for (NodeId id = 1; id <= 3; ++id) cluster.Start(id, true);
  cluster.RunFor(5000 * kMs);
  const NodeId leader = cluster.Leader();
  ASSERT_NE(leader, kNoNode);
  const Term term = cluster.raft(leader).term();
  const NodeId other = leader == 1 ? 2 : 1;
  cluster.CutOff(other, true);
  cluster.RunFor(10000 * kMs);
  cluster.CutOff(other, false);
  cluster.RunFor(5000 * kMs);
  EXPECT_EQ(cluster.Leader(), leader);
  EXPECT_EQ(cluster.raft(leader).term(), term);
  EXPECT_EQ(cluster.raft(other).term(), term);
}

TEST(RaftTest, LeaderSnapshotsAndALaggingFollowerCatchesUpFromIt) {
  RaftOptions options;
  options.snapshot_every_entries = 4;
  RaftCluster cluster(3, options);
  for (NodeId id = 1; id <= 3; ++id) cluster.Start(id, true);
  cluster.RunFor(5000 * kMs);
  const NodeId leader = cluster.Leader();
  ASSERT_NE(leader, kNoNode);
  const NodeId lagging = leader == 3 ? 2 : 3;
  cluster.Crash(lagging);
  std::string expected;
  for (int i = 0; i < 12; ++i) {
    ASSERT_TRUE(cluster.Propose(leader, "e" + std::to_string(i)).ok());
    expected += "e" + std::to_string(i) + ";";
  }
  EXPECT_GT(cluster.raft(leader).stats().snapshots_taken, 0u);
  EXPECT_GT(cluster.raft(leader).store().snapshot().index, 4u);
  cluster.Start(lagging, false);
  cluster.RunFor(3000 * kMs);
  EXPECT_GE(cluster.raft(lagging).stats().snapshots_installed, 1u);
  EXPECT_EQ(cluster.state(lagging), expected);
  EXPECT_EQ(cluster.raft(lagging).last_applied(), cluster.raft(leader).commit_index());
}

TEST(RaftTest, MembershipChangesOneServerAtATime) {
  RaftCluster cluster(3, RaftOptions{}, 4);
  for (NodeId id = 1; id <= 3; ++id) cluster.Start(id, true);
  cluster.Start(4, false);
  cluster.RunFor(5000 * kMs);
  const NodeId leader = cluster.Leader();
  ASSERT_NE(leader, kNoNode);
  ASSERT_TRUE(cluster.Propose(leader, "x").ok());
  // Node 4 starts with nothing and receives the log as a learner.
  ASSERT_TRUE(cluster.Change(leader, [](Raft& r) { return r.AddLearner(4); }).ok());
  cluster.RunFor(1000 * kMs);
  EXPECT_EQ(cluster.state(4), "x;");
  EXPECT_EQ(cluster.raft(4).cluster_id(), "c1");
  EXPECT_TRUE(cluster.raft(leader).config().IsLearner(4));
  EXPECT_TRUE(cluster.Change(leader, [](Raft& r) { return r.AddLearner(4); }).IsInvalidArgument());
  ASSERT_TRUE(cluster.Change(leader, [](Raft& r) { return r.Promote(4); }).ok());
  EXPECT_EQ(cluster.raft(leader).config().voters.size(), 4u);
  // The leader neither demotes nor removes itself: it hands over first.
  EXPECT_TRUE(cluster.Change(leader, [leader](Raft& r) { return r.Demote(leader); })
                  .IsInvalidArgument());
  const NodeId other = leader == 1 ? 2 : 1;
  ASSERT_TRUE(cluster.Change(leader, [other](Raft& r) { return r.Demote(other); }).ok());
  ASSERT_TRUE(cluster.Change(leader, [other](Raft& r) { return r.Remove(other); }).ok());
  EXPECT_FALSE(cluster.raft(leader).config().Contains(other));
  EXPECT_EQ(cluster.raft(leader).config().voters.size(), 3u);
  // The remaining voters still commit without the removed node.
  cluster.Crash(other);
  ASSERT_TRUE(cluster.Propose(leader, "y").ok());
  cluster.RunFor(1000 * kMs);
  EXPECT_EQ(cluster.state(4), "x;y;");
}

TEST(RaftTest, TransferLeadershipHandsOverToTheTarget) {
  RaftCluster cluster(3);
  for (NodeId id = 1; id <= 3; ++id) cluster.Start(id, true);
  cluster.RunFor(5000 * kMs);
  const NodeId leader = cluster.Leader();
  ASSERT_NE(leader, kNoNode);
  const NodeId target = leader == 3 ? 1 : leader + 1;
  Status transferred = Status::Internal("not run");
  cluster.RunOn(leader, [&] { transferred = cluster.raft(leader).TransferLeadership(target); });
  ASSERT_TRUE(transferred.ok()) << transferred;
  cluster.RunFor(500 * kMs);
  EXPECT_EQ(cluster.Leader(), target);
  EXPECT_TRUE(cluster.Propose(target, "after").ok());
}

TEST(RaftTest, TermAndVoteSurviveARestart) {
  RaftCluster cluster(3);
  for (NodeId id = 1; id <= 3; ++id) cluster.Start(id, true);
  cluster.RunFor(5000 * kMs);
  const NodeId leader = cluster.Leader();
  ASSERT_NE(leader, kNoNode);
  const NodeId follower = leader == 1 ? 2 : 1;
  const HardState before = cluster.raft(follower).store().hard();
  EXPECT_GT(before.term, 1u);
  cluster.Crash(follower);
  cluster.Start(follower, false);
  EXPECT_EQ(cluster.raft(follower).store().hard().term, before.term);
  EXPECT_EQ(cluster.raft(follower).store().hard().vote, before.vote);
}

TEST(RaftTest, NodesOfAnotherClusterAreRefused) {
  RaftCluster cluster(3, RaftOptions{}, 4);
  for (NodeId id = 1; id <= 3; ++id) cluster.Start(id, true);
  cluster.Start(4, true, "c2");  // a cluster of its own
  cluster.RunFor(5000 * kMs);
  const NodeId leader = cluster.Leader();
  ASSERT_NE(leader, kNoNode);
  ASSERT_TRUE(cluster.Propose(leader, "x").ok());
  const Status added = cluster.Change(leader, [](Raft& r) { return r.AddLearner(4); });
  ASSERT_TRUE(added.ok()) << added;
  cluster.RunFor(2000 * kMs);
  EXPECT_GT(cluster.raft(4).stats().foreign_cluster_refused, 0u);
  EXPECT_EQ(cluster.raft(4).cluster_id(), "c2");
  EXPECT_EQ(cluster.state(4), "");
  EXPECT_EQ(cluster.raft(leader).MatchOf(4), 0u);
}

TEST(RaftTest, WriteErrorsAreRetriedUntilDurable) {
  RaftCluster cluster(3);
  for (NodeId id = 1; id <= 3; ++id) cluster.Start(id, true);
  cluster.RunFor(5000 * kMs);
  const NodeId leader = cluster.Leader();
  ASSERT_NE(leader, kNoNode);
  cluster.disk(leader).FailNextWrites(3);
  // The followers' copies commit it; the leader's own follows once a
  // write succeeds.
  ASSERT_TRUE(cluster.Propose(leader, "x").ok());
  cluster.RunFor(1000 * kMs);
  EXPECT_EQ(cluster.raft(leader).store().stats().write_errors, 3u);
  EXPECT_EQ(cluster.raft(leader).store().durable_last_index(), cluster.raft(leader).last_index());
  for (NodeId id = 1; id <= 3; ++id) EXPECT_EQ(cluster.state(id), "x;") << id;
}

TEST(RaftTest, FollowerTruncatesAConflictingSuffix) {
  RaftCluster cluster(3);
  for (NodeId id = 1; id <= 3; ++id) cluster.Start(id, true);
  cluster.RunFor(5000 * kMs);
  const NodeId old_leader = cluster.Leader();
  ASSERT_NE(old_leader, kNoNode);
  ASSERT_TRUE(cluster.Propose(old_leader, "a").ok());
  // Cut off, the old leader appends entries that can never commit.
  cluster.CutOff(old_leader, true);
  cluster.RunOn(old_leader, [&] {
    for (int i = 0; i < 3; ++i) (void)cluster.raft(old_leader).Propose("lost");
  });
  EXPECT_EQ(cluster.raft(old_leader).last_index(), cluster.raft(old_leader).commit_index() + 3);
  cluster.RunFor(5000 * kMs);
  const NodeId new_leader = cluster.Leader();
  ASSERT_NE(new_leader, old_leader);
  ASSERT_NE(new_leader, kNoNode);
  ASSERT_TRUE(cluster.Propose(new_leader, "b").ok());
  cluster.CutOff(old_leader, false);
  cluster.RunFor(3000 * kMs);
  EXPECT_GT(cluster.raft(old_leader).stats().entries_truncated, 0u);
  for (NodeId id = 1; id <= 3; ++id) EXPECT_EQ(cluster.state(id), "a;b;") << id;
}

// Flips one bit of the value stored under the first key with `prefix`.
void Damage(MapDisk& disk, const std::string& prefix, bool last = false) {
  auto it = last ? disk.table().lower_bound(prefix + "\xff") : disk.table().lower_bound(prefix);
  if (last) --it;
  ASSERT_TRUE(it != disk.table().end() && it->first.starts_with(prefix)) << prefix;
  it->second[it->second.size() / 2] ^= 0x10;
}

TEST(RaftTest, DamagedLogEntryIsDroppedAndRestoredFromTheLeader) {
  RaftCluster cluster(3);
  for (NodeId id = 1; id <= 3; ++id) cluster.Start(id, true);
  cluster.RunFor(5000 * kMs);
  const NodeId leader = cluster.Leader();
  ASSERT_NE(leader, kNoNode);
  for (const char* command : {"a", "b", "c"}) ASSERT_TRUE(cluster.Propose(leader, command).ok());
  cluster.RunFor(500 * kMs);
  const NodeId follower = leader == 1 ? 2 : 1;
  const Index held = cluster.raft(follower).last_index();
  cluster.Crash(follower);
  Damage(cluster.disk(follower), "r/log/", /*last=*/true);
  cluster.Start(follower, false);
  const LogStore& store = cluster.raft(follower).store();
  EXPECT_EQ(store.stats().entries_damaged, 1u);
  EXPECT_EQ(store.last_index(), held - 1);
  EXPECT_EQ(store.hard().recover_through, held);
  cluster.RunFor(2000 * kMs);
  EXPECT_EQ(cluster.raft(follower).last_index(), held);
  EXPECT_EQ(cluster.raft(follower).store().hard().recover_through, 0u);
  EXPECT_EQ(cluster.state(follower), "a;b;c;");
}

TEST(RaftTest, OneDamagedHardStateCopyIsSurvivedTwoAreCorruption) {
  RaftCluster cluster(3);
  for (NodeId id = 1; id <= 3; ++id) cluster.Start(id, true);
  cluster.RunFor(5000 * kMs);
  const Term term = cluster.raft(1).term();
  cluster.Crash(1);
  Damage(cluster.disk(1), "r/hard/a");
  cluster.Start(1, false);
  EXPECT_EQ(cluster.raft(1).term(), term);
  EXPECT_EQ(cluster.raft(1).store().stats().hard_copies_damaged, 1u);
  cluster.Crash(1);
  cluster.disk(1).table()["r/hard/a"] = "rot";
  cluster.disk(1).table()["r/hard/b"] = "rot";
  EXPECT_TRUE(cluster.TryStart(1, false).IsCorruption());
}

TEST(RaftTest, NodeThatLostItsSnapshotGetsTheLeadersBack) {
  RaftCluster cluster(3);
  for (NodeId id = 1; id <= 3; ++id) cluster.Start(id, true);
  cluster.RunFor(5000 * kMs);
  const NodeId leader = cluster.Leader();
  ASSERT_NE(leader, kNoNode);
  ASSERT_TRUE(cluster.Propose(leader, "a").ok());
  cluster.RunFor(500 * kMs);
  const NodeId follower = leader == 1 ? 2 : 1;
  cluster.Crash(follower);
  Damage(cluster.disk(follower), "r/snap");
  cluster.Start(follower, false);
  EXPECT_EQ(cluster.raft(follower).store().stats().snapshots_damaged, 1u);
  EXPECT_EQ(cluster.raft(follower).store().snapshot().index, 0u);
  cluster.RunFor(3000 * kMs);
  EXPECT_EQ(cluster.state(follower), "a;");
  EXPECT_EQ(cluster.raft(follower).store().hard().recover_through, 0u);
}

}  // namespace
}  // namespace mks::raft
