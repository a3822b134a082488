#include "core/gossip/gossip.h"

#include <gtest/gtest.h>

#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "core/loopback_network_for_test.h"
#include "core/map_disk_for_test.h"
#include "core/runtime/manual_clock.h"

namespace mks::gossip {
namespace {

constexpr int64_t kMs = 1'000'000;
constexpr int64_t kSecond = 1000 * kMs;
// A realistic wall clock, so boot numbers look like the wall clock's seconds.
constexpr int64_t kStartNanos = 1'700'000'000'000 * kMs;

// Nodes 1..size, each with its RpcEndpoint, Gossip and disk, on one
// scheduler and one loopback network with a fixed one-millisecond latency.
// A node can be crashed (its process killed, messages to it dropped),
// restarted over its disk, or cut off (every message to or from it lost).
class GossipCluster {
 public:
  GossipCluster(uint32_t size, GossipOptions options) : options_(std::move(options)) {
    clock_.AdvanceTo(kStartNanos);
    for (NodeId id = 1; id <= size; ++id) hub_.NetworkOf(id);
  }
  ~GossipCluster() {
    for (auto& [id, slot] : slots_) Crash(id);
  }

  // Starts node `id`, joining through `seeds` (node ids).
  void Start(NodeId id, const std::vector<NodeId>& seeds) {
    Slot& slot = slots_[id];
    MKS_ASSERT(slot.gossip == nullptr);
    slot.process = scheduler_.CreateProcess("node" + std::to_string(id));
    Environment env;
    env.node_id = id;
    env.clock = &clock_;
    env.network = hub_.NetworkOf(id);
    env.disk = &slot.disk;
    env.random = Random(id * 7919 + slot.starts++);
    slot.rpc = std::make_unique<RpcEndpoint>(&scheduler_, slot.process, env.network, id,
                                             RpcOptions{env.random.Next64() | 1});
    GossipOptions options = options_;
    for (NodeId seed : seeds) options.seeds.push_back(LoopbackHub::AddressOf(seed));
    slot.gossip = std::make_unique<Gossip>(&scheduler_, slot.process, slot.rpc.get(), env,
                                           Addresses{LoopbackHub::AddressOf(id), "", ""},
                                           options);
    slot.gossip->set_canaries(canaries_);
    ASSERT_TRUE(slot.gossip->Start().ok());
    down_.erase(id);
  }
  void Crash(NodeId id) {
    Slot& slot = slots_.at(id);
    if (slot.gossip == nullptr) return;
    scheduler_.Kill(slot.process);
    slot.gossip.reset();
    slot.rpc.reset();
    down_.insert(id);
  }
  void CutOff(NodeId id, bool cut) {
    if (cut) {
      cut_.insert(id);
    } else {
      cut_.erase(id);
    }
  }

  // Runs the cluster for `duration_ns` of simulated time.
  void RunFor(int64_t duration_ns) {
    const int64_t until_ns = clock_.MonotonicNanos() + duration_ns;
    for (;;) {
      scheduler_.RunReady();
      for (auto& message : hub_.TakeAll()) {
        if (down_.count(message.to) > 0) continue;
        if (cut_.count(message.to) > 0 || cut_.count(message.from) > 0) continue;
        in_flight_.push_back({clock_.MonotonicNanos() + kMs, std::move(message)});
      }
      std::optional<int64_t> next = scheduler_.NextDeadlineNanos();
      if (!in_flight_.empty() && (!next || in_flight_.front().first <= *next)) {
        next = in_flight_.front().first;
      }
      if (!next || *next > until_ns) break;
      if (*next > clock_.MonotonicNanos()) clock_.AdvanceTo(*next);
      if (!in_flight_.empty() && in_flight_.front().first <= clock_.MonotonicNanos()) {
        LoopbackHub::Message message = std::move(in_flight_.front().second);
        in_flight_.erase(in_flight_.begin());
        if (down_.count(message.to) == 0) hub_.Deliver(std::move(message));
        continue;
      }
      scheduler_.FireNextTimer();
    }
    clock_.AdvanceTo(until_ns);
  }

  // Runs `body` in a fiber of node `id` and the cluster until it is done.
  void RunOn(NodeId id, std::function<void()> body) {
    auto done = scheduler_.Spawn(slots_.at(id).process, "test", std::move(body));
    while (!done.IsReady()) RunFor(10 * kMs);
  }

  Gossip& gossip(NodeId id) { return *slots_.at(id).gossip; }
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
  struct Slot {
    MapDisk disk;
    runtime::ProcessId process = 0;
    uint64_t starts = 0;
    std::unique_ptr<RpcEndpoint> rpc;
    std::unique_ptr<Gossip> gossip;
  };
  GossipOptions options_;
  GossipCanaries canaries_;
  runtime::ManualClock clock_;
  runtime::Scheduler scheduler_{&clock_};
  LoopbackHub hub_;
  std::map<NodeId, Slot> slots_;
  std::set<NodeId> down_;
  std::set<NodeId> cut_;
  // Messages on their way, by delivery time (FIFO: equal latency).
  std::vector<std::pair<int64_t, LoopbackHub::Message>> in_flight_;
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
