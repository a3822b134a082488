#include "core/raft/raft.h"

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <set>

#include "core/loopback_network_for_test.h"
#include "core/map_disk_for_test.h"
#include "core/runtime/manual_clock.h"

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
  explicit RaftCluster(uint32_t size) {
    clock_.AdvanceTo(1000 * kMs);
    for (NodeId id = 1; id <= size; ++id) {
      hub_.NetworkOf(id);
      config_.voters.push_back(id);
    }
  }
  ~RaftCluster() {
    for (auto& [id, slot] : slots_) Crash(id);
  }
  void Start(NodeId id, bool bootstrap) {
    Slot& slot = slots_[id];
    slot.process = scheduler_.CreateProcess("node" + std::to_string(id));
    Environment env;
    env.node_id = id;
    env.clock = &clock_;
    env.network = hub_.NetworkOf(id);
    env.disk = &slot.disk;
    env.random = Random(id * 7919 + slot.starts++);
    slot.rpc = std::make_unique<RpcEndpoint>(&scheduler_, slot.process, env.network, id,
                                             RpcOptions{env.random.Next64() | 1});
    slot.machine = std::make_unique<LogMachine>();
    slot.raft = std::make_unique<Raft>(&scheduler_, slot.process, slot.rpc.get(),
                                       slot.machine.get(), env, RaftOptions{});
    ASSERT_TRUE(slot.raft->Start().ok());
    if (bootstrap) {
      RunOn(id, [&] { ASSERT_TRUE(slot.raft->Bootstrap("c1", config_, "").ok()); });
    }
    down_.erase(id);
  }
  void Crash(NodeId id) {
    Slot& slot = slots_.at(id);
    if (slot.raft == nullptr) return;
    scheduler_.Kill(slot.process);
    slot.raft.reset();
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
  void RunOn(NodeId id, std::function<void()> body) {
    auto done = scheduler_.Spawn(slots_.at(id).process, "test", std::move(body));
    while (!done.IsReady()) RunFor(10 * kMs);
  }
  // The one leader among running nodes of the highest term, or kNoNode.
  NodeId Leader() {
    NodeId leader = kNoNode;
    Term best = 0;
    for (auto& [id, slot] : slots_) {
      if (slot.raft == nullptr || slot.raft->role() != Role::kLeader) continue;
      if (slot.raft->term() >= best) {
        best = slot.raft->term();
        leader = id;
      }
    }
    return leader;
  }
  Raft& raft(NodeId id) { return *slots_.at(id).raft; }
  const std::string& state(NodeId id) { return slots_.at(id).machine->state; }

 private:
  struct Slot {
    MapDisk disk;
    runtime::ProcessId process = 0;
    uint64_t starts = 0;
    std::unique_ptr<RpcEndpoint> rpc;
    std::unique_ptr<LogMachine> machine;
    std::unique_ptr<Raft> raft;
  };
  Config config_;
  runtime::ManualClock clock_;
  runtime::Scheduler scheduler_{&clock_};
  LoopbackHub hub_;
  std::map<NodeId, Slot> slots_;
  std::set<NodeId> down_;
  std::set<NodeId> cut_;
  std::vector<std::pair<int64_t, LoopbackHub::Message>> in_flight_;
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

}  // namespace
}  // namespace mks::raft
