#include "core/gossip/gossip.h"

#include <gtest/gtest.h>

#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "core/loopback_cluster_for_test.h"

namespace mks::gossip {
namespace {

constexpr int64_t kMs = 1'000'000;
constexpr int64_t kSecond = 1000 * kMs;
// A realistic wall clock, so boot numbers look like the wall clock's seconds.
constexpr int64_t kStartNanos = 1'700'000'000'000 * kMs;

// Nodes 1..size, each running Gossip over a LoopbackCluster: crashed,
// restarted over its disk, or cut off.
class GossipCluster {
 public:
  GossipCluster(uint32_t size, GossipOptions options)
      : net_(size, kStartNanos), options_(std::move(options)) {}
  ~GossipCluster() {
    for (auto& [id, gossip] : gossips_) Crash(id);
  }

  // Starts node `id`, joining through `seeds` (node ids).
  void Start(NodeId id, const std::vector<NodeId>& seeds) {
    std::unique_ptr<Gossip>& gossip = gossips_[id];
    MKS_ASSERT(gossip == nullptr);
    const Environment env = net_.Boot(id);
    GossipOptions options = options_;
    for (NodeId seed : seeds) options.seeds.push_back(LoopbackHub::AddressOf(seed));
    gossip = std::make_unique<Gossip>(net_.scheduler(), net_.process(id), net_.rpc(id), env,
                                      Addresses{LoopbackHub::AddressOf(id), "", ""}, options);
    gossip->set_canaries(canaries_);
    ASSERT_TRUE(gossip->Start().ok());
  }
  void Crash(NodeId id) {
    std::unique_ptr<Gossip>& gossip = gossips_.at(id);
    if (gossip == nullptr) return;
    net_.Kill(id);
    gossip.reset();
  }
  void CutOff(NodeId id, bool cut) { net_.CutOff(id, cut); }
  // Runs the cluster for `duration_ns` of simulated time.
  void RunFor(int64_t duration_ns) { net_.RunFor(duration_ns); }
  // Runs `body` in a fiber of node `id` and the cluster until it is done.
  void RunOn(NodeId id, std::function<void()> body) { net_.RunOn(id, std::move(body)); }

  Gossip& gossip(NodeId id) { return *gossips_.at(id); }
  // The state `viewer` holds of `node`, or nullopt when it does not know it.
  std::optional<MemberState> StateIn(NodeId viewer, NodeId node) {
    const Member* member = gossip(viewer).table().Find(node);
    if (member == nullptr) return std::nullopt;
    return member->record.state;
  }
  uint64_t IncarnationIn(NodeId viewer, NodeId node) {
    return gossip(viewer).table().Find(node)->record.incarnation;
  }
  void set_canaries(GossipCanaries canaries) { canaries_ = canaries; }

 private:
  LoopbackCluster net_;  // first: outlives every node's gossip
  GossipOptions options_;
  GossipCanaries canaries_;
  std::map<NodeId, std::unique_ptr<Gossip>> gossips_;
};

// Short periods so the tests cover many of them.
GossipOptions FastOptions() {
  GossipOptions options;
  options.probe_interval_ns = 100 * kMs;
  options.probe_timeout_ns = 40 * kMs;
  options.push_pull_interval_ns = 2 * kSecond;
  options.join_retry_ns = 100 * kMs;
  return options;
}

TEST(GossipTest, NodesJoiningThroughOneSeedLearnEveryMember) {
  GossipCluster cluster(5, FastOptions());
  cluster.Start(1, {});
  for (NodeId id = 2; id <= 5; ++id) cluster.Start(id, {1});
  cluster.RunFor(3 * kSecond);
  for (NodeId viewer = 1; viewer <= 5; ++viewer) {
    for (NodeId node = 1; node <= 5; ++node) {
      EXPECT_EQ(cluster.StateIn(viewer, node), MemberState::kAlive)
          << "node " << viewer << " of " << node;
    }
    EXPECT_EQ(cluster.gossip(viewer).table().LiveCount(), 5u);
  }
  EXPECT_GE(cluster.gossip(3).stats().joins, 1u);
  EXPECT_EQ(cluster.gossip(3).table().Find(5)->record.addresses.peer, "node-5");
}

TEST(GossipTest, ACrashedMemberIsSuspectedThenDeclaredDeadEverywhere) {
  GossipCluster cluster(4, FastOptions());
  cluster.Start(1, {});
  for (NodeId id = 2; id <= 4; ++id) cluster.Start(id, {1});
  cluster.RunFor(2 * kSecond);
  cluster.Crash(4);
  // Four members: the suspicion lasts its minimum, 4 periods (log10 of a
  // small cluster is floored at 1), after at most a round of probes.
  cluster.RunFor(2 * kSecond);
  uint64_t declared = 0;
  for (NodeId viewer = 1; viewer <= 3; ++viewer) {
    EXPECT_EQ(cluster.StateIn(viewer, 4), MemberState::kDead) << "node " << viewer;
    declared += cluster.gossip(viewer).stats().deaths_declared;
    EXPECT_TRUE(cluster.gossip(viewer).IsDown(4));
  }
  EXPECT_GE(declared, 1u);
  EXPECT_EQ(cluster.StateIn(1, 2), MemberState::kAlive);
}

TEST(GossipTest, ASuspectedMemberThatIsAliveRefutes) {
  GossipCluster cluster(4, FastOptions());
  cluster.Start(1, {});
  for (NodeId id = 2; id <= 4; ++id) cluster.Start(id, {1});
  cluster.RunFor(2 * kSecond);
  const uint64_t before = cluster.IncarnationIn(1, 4);
  // Cut off for three periods: long enough to be suspected, shorter than
  // the suspicion.
  cluster.CutOff(4, true);
  cluster.RunFor(300 * kMs);
  cluster.CutOff(4, false);
  cluster.RunFor(2 * kSecond);
  for (NodeId viewer = 1; viewer <= 3; ++viewer) {
    EXPECT_EQ(cluster.StateIn(viewer, 4), MemberState::kAlive) << "node " << viewer;
    EXPECT_GT(cluster.IncarnationIn(viewer, 4), before);
  }
  EXPECT_GE(cluster.gossip(4).stats().refutations, 1u);
}

// A suspect that answers its last probes is not declared dead, but one
// that never refutes stays suspect everywhere, against its own view.
TEST(GossipTest, WithoutRefutationASuspectedMemberStaysSuspect) {
  GossipCluster cluster(4, FastOptions());
  cluster.set_canaries({.no_refute = true});
  cluster.Start(1, {});
  for (NodeId id = 2; id <= 4; ++id) cluster.Start(id, {1});
  cluster.RunFor(2 * kSecond);
  cluster.CutOff(4, true);
  cluster.RunFor(300 * kMs);
  cluster.CutOff(4, false);
  cluster.RunFor(2 * kSecond);
  EXPECT_EQ(cluster.StateIn(1, 4), MemberState::kSuspect);
  EXPECT_EQ(cluster.StateIn(4, 4), MemberState::kAlive);
  EXPECT_GE(cluster.gossip(1).stats().last_probe_refutations, 1u);
}

TEST(GossipTest, ALeavingMemberIsLeftEverywhere) {
  GossipCluster cluster(4, FastOptions());
  cluster.Start(1, {});
  for (NodeId id = 2; id <= 4; ++id) cluster.Start(id, {1});
  cluster.RunFor(2 * kSecond);
  cluster.RunOn(3, [&cluster] { cluster.gossip(3).Leave(); });
  cluster.Crash(3);
  cluster.RunFor(kSecond);
  for (NodeId viewer : {1u, 2u, 4u}) {
    EXPECT_EQ(cluster.StateIn(viewer, 3), MemberState::kLeft) << "node " << viewer;
  }
}

TEST(GossipTest, ARestartedMemberComesBackAboveItsEarlierIncarnation) {
  GossipCluster cluster(3, FastOptions());
  cluster.Start(1, {});
  cluster.Start(2, {1});
  cluster.Start(3, {1});
  cluster.RunFor(2 * kSecond);
  cluster.Crash(3);
  cluster.RunFor(2 * kSecond);
  ASSERT_EQ(cluster.StateIn(1, 3), MemberState::kDead);
  const uint64_t dead_at = cluster.IncarnationIn(1, 3);
  cluster.Start(3, {1});
  cluster.RunFor(2 * kSecond);
  EXPECT_EQ(cluster.StateIn(1, 3), MemberState::kAlive);
  EXPECT_GT(cluster.IncarnationIn(1, 3), dead_at);
}

TEST(GossipTest, AMemberThatCannotHearItsHelpersLosesLocalHealth) {
  GossipCluster cluster(4, FastOptions());
  cluster.Start(1, {});
  for (NodeId id = 2; id <= 4; ++id) cluster.Start(id, {1});
  cluster.RunFor(2 * kSecond);
  cluster.CutOff(1, true);
  cluster.RunFor(500 * kMs);
  EXPECT_GT(cluster.gossip(1).local_health(), 0u);
  EXPECT_EQ(cluster.gossip(2).local_health(), 0u);
  cluster.CutOff(1, false);
  cluster.RunFor(5 * kSecond);
  EXPECT_EQ(cluster.gossip(1).local_health(), 0u);
}

}  // namespace
}  // namespace mks::gossip
