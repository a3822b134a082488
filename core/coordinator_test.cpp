#include "core/coordinator.h"

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "core/loopback_network_for_test.h"
#include "core/map_disk_for_test.h"
#include "core/node.h"
#include "core/replica.h"
#include "core/runtime/manual_clock.h"

namespace mks {
namespace {

using runtime::Future;
using runtime::ManualClock;
using runtime::ProcessId;

constexpr int64_t kMsNanos = 1'000'000;
// A realistic wall clock: 2023-11-14, in nanoseconds.
constexpr int64_t kStartNanos = 1'700'000'000'000 * kMsNanos;

// A node's own view of the shared clock: the same monotonic time, a wall
// clock shifted by an offset (skew).
class OffsetClock final : public Clock {
 public:
  explicit OffsetClock(ManualClock* base) : base_(base) {}
  int64_t WallMicros() override { return base_->WallMicros() + offset_us_; }
  int64_t MonotonicNanos() override { return base_->MonotonicNanos(); }
  void set_offset_ms(int64_t offset_ms) { offset_us_ = offset_ms * 1000; }

 private:
  ManualClock* base_;
  int64_t offset_us_ = 0;
};

// Nodes 1..size on one scheduler and one loopback network. Messages to a
// crashed node are dropped; messages to a "slow" node are held until
// released.
class TestCluster {
 public:
  TestCluster(uint32_t size, uint32_t replication_factor) {
    clock_.AdvanceTo(kStartNanos);
    for (NodeId id = 1; id <= size; ++id) {
      members_.push_back(id);
      slots_[id].clock = std::make_unique<OffsetClock>(&clock_);
      hub_.NetworkOf(id);
    }
    hub_.NetworkOf(kOutsider);
    options_.members = MemberList::FromIds(members_).value();
    options_.cluster_id = "test";
    options_.ring.partition_count = 16;
    options_.ring.replication_factor = replication_factor;
    options_.coordinator.timeout_ns = 500 * kMsNanos;
    // The metadata log stays quiet: these tests count messages, writes and
    // time of the data path alone.
    options_.raft.election_timeout_min_ns = 3600'000 * kMsNanos;
    options_.epoch_interval_ms = 0;
    options_.voter_check_interval_ms = 0;
    for (NodeId id : members_) Start(id);
    Settle();  // the bootstrap snapshots' writes
  }
  ~TestCluster() {
    for (auto& [id, slot] : slots_) Crash(id);
  }

  void Start(NodeId id) {
    const Status started = TryStart(id);
    MKS_ASSERT_MSG(started.ok(), started.ToString());
  }
  // Start, returning what Node::Open said (the node stays down on error).
  Status TryStart(NodeId id) {
    Slot& slot = slots_.at(id);
    MKS_ASSERT(slot.node == nullptr);
    slot.process = scheduler_.CreateProcess("node" + std::to_string(id));
    Environment env;
    env.node_id = id;
    env.clock = slot.clock.get();
    env.network = hub_.NetworkOf(id);
    env.disk = &slot.disk;
    env.random = Random(id * 7919 + slot.incarnations++);
    Result<std::unique_ptr<Node>> node =
        Node::Open(options_, std::move(env), &scheduler_, slot.process);
    if (!node.ok()) {
      scheduler_.Kill(slot.process);
      return node.status();
    }
    slot.node = std::move(*node);
    down_.erase(id);
    return Status::Ok();
  }
  void Crash(NodeId id) {
    Slot& slot = slots_.at(id);
    if (slot.node == nullptr) return;
    scheduler_.Kill(slot.process);
    slot.node.reset();
    down_.insert(id);
  }
  void Slow(NodeId id) { slow_.insert(id); }
  void Release(NodeId id) {
    slow_.erase(id);
    for (auto& message : held_) hub_.Inject(message.from, message.to, std::move(message.bytes));
    held_.clear();
  }

  // Runs fibers, delivers messages and fires timers for `window_ns` of
  // simulated time: past every request's timeout, so what an operation left
  // behind (repairs, late replies) is done. The nodes' Raft keeps a timer
  // forever, so "until nothing is left" would never come.
  void Settle(int64_t window_ns = 600 * kMsNanos) {
    const int64_t until_ns = clock_.MonotonicNanos() + window_ns;
    for (;;) {
      scheduler_.RunReady();
      bool delivered = false;
      for (auto& message : hub_.TakeAll()) {
        delivered = true;
        if (down_.count(message.to) > 0) continue;
        if (slow_.count(message.to) > 0) {
          held_.push_back(std::move(message));
          continue;
        }
        hub_.Deliver(std::move(message));
      }
      if (delivered) continue;
      const std::optional<int64_t> next = scheduler_.NextDeadlineNanos();
      if (!next || *next > until_ns) {
        clock_.AdvanceTo(std::max(until_ns, clock_.MonotonicNanos()));
        return;
      }
      if (*next > clock_.MonotonicNanos()) clock_.AdvanceTo(*next);
      scheduler_.FireNextTimer();
    }
  }

  // Runs fibers and delivers messages, but fires no timer: time stands
  // still, so held messages can still be released before any deadline.
  void Pump() {
    for (;;) {
      scheduler_.RunReady();
      std::vector<LoopbackHub::Message> messages = hub_.TakeAll();
      if (messages.empty()) return;
      for (auto& message : messages) {
        if (down_.count(message.to) > 0) continue;
        if (slow_.count(message.to) > 0) {
          held_.push_back(std::move(message));
          continue;
        }
        hub_.Deliver(std::move(message));
      }
    }
  }
  // Starts `body` on node `id` and pumps; the future may not be ready.
  template <typename F>
  auto StartOn(NodeId id, F body) {
    auto future = scheduler_.Spawn(slots_.at(id).process, "test", std::move(body));
    Pump();
    return future;
  }

  template <typename F>
  auto RunOn(NodeId id, F body) {
    auto future = scheduler_.Spawn(slots_.at(id).process, "test", std::move(body));
    Settle();
    MKS_ASSERT(future.IsReady());
    return *future.Get();
  }
  Result<WriteResult> Put(NodeId via, std::string key, std::string value,
                          Consistency consistency = Consistency::Default()) {
    return RunOn(via, [&] { return node(via).coordinator().Put(key, value, consistency); });
  }
  Result<WriteResult> Delete(NodeId via, std::string key,
                             Consistency consistency = Consistency::Default()) {
    return RunOn(via, [&] { return node(via).coordinator().Delete(key, consistency); });
  }
  Result<ReadResult> Get(NodeId via, std::string key,
                         Consistency consistency = Consistency::Default()) {
    return RunOn(via, [&] { return node(via).coordinator().Get(key, consistency); });
  }
  // What `id` stores for `key`, read straight from its store.
  std::optional<Version> Stored(NodeId id, const std::string& key) {
    Result<Version> version = node(id).store().Get(key);
    if (!version.ok()) return std::nullopt;
    return *version;
  }

  Node& node(NodeId id) { return *slots_.at(id).node; }
  MapDisk& disk(NodeId id) { return slots_.at(id).disk; }
  OffsetClock& clock_of(NodeId id) { return *slots_.at(id).clock; }
  ManualClock& clock() { return clock_; }
  LoopbackHub& hub() { return hub_; }
  runtime::Scheduler& scheduler() { return scheduler_; }
  const std::vector<NodeId>& members() const { return members_; }

  static constexpr NodeId kOutsider = 99;

 private:
  struct Slot {
    MapDisk disk;
    std::unique_ptr<OffsetClock> clock;
    ProcessId process = 0;
    uint64_t incarnations = 0;
    std::unique_ptr<Node> node;
  };
  ManualClock clock_;
  runtime::Scheduler scheduler_{&clock_};
  LoopbackHub hub_;
  NodeOptions options_;
  std::vector<NodeId> members_;
  std::map<NodeId, Slot> slots_;
  std::set<NodeId> down_;
  std::set<NodeId> slow_;
  std::vector<LoopbackHub::Message> held_;
};

// ---- Consistency arithmetic ----

TEST(ConsistencyTest, RequiredRepliesForEveryLevelAndReplicationFactor) {
  for (uint32_t n = 1; n <= 5; ++n) {
    EXPECT_EQ(*RequiredReplies(Consistency::One(), n), 1u);
    EXPECT_EQ(*RequiredReplies(Consistency::Quorum(), n), n / 2 + 1);
    EXPECT_EQ(*RequiredReplies(Consistency::All(), n), n);
    for (uint32_t count = 1; count <= n; ++count) {
      EXPECT_EQ(*RequiredReplies(Consistency::Count(count), n), count);
    }
    EXPECT_TRUE(RequiredReplies(Consistency::Count(n + 1), n).status().IsInvalidArgument());
    EXPECT_TRUE(RequiredReplies(Consistency::Count(0), n).status().IsInvalidArgument());
    // A majority for reads and writes always overlaps: R + W > N.
    EXPECT_GT(2 * *RequiredReplies(Consistency::Quorum(), n), n);
  }
  EXPECT_TRUE(RequiredReplies(Consistency::Default(), 3).status().IsInvalidArgument());
}

TEST(ConsistencyTest, ParsesNamesAndCounts) {
  EXPECT_EQ(*ParseConsistency("one"), Consistency::One());
  EXPECT_EQ(*ParseConsistency("QUORUM"), Consistency::Quorum());
  EXPECT_EQ(*ParseConsistency("All"), Consistency::All());
  EXPECT_EQ(*ParseConsistency("default"), Consistency::Default());
  EXPECT_EQ(*ParseConsistency("2"), Consistency::Count(2));
  for (const char* bad : {"", "0", "-1", "two", "2x", "99999999999"}) {
    Result<Consistency> parsed = ParseConsistency(bad);
    EXPECT_TRUE(parsed.status().IsInvalidArgument()) << bad;
  }
  EXPECT_EQ(ToString(Consistency::Count(3)), "3");
  EXPECT_EQ(ToString(Consistency::Quorum()), "QUORUM");
}

// For every N from 1 to 5, every level and every number of dead replicas: a
// write or read succeeds exactly when enough replicas are alive, and a
// success counts at least the required answers.
TEST(ConsistencyTest, OutcomesFollowTheArithmeticForEveryNAndLevel) {
  for (uint32_t n = 1; n <= 5; ++n) {
    std::vector<Consistency> levels = {Consistency::One(), Consistency::Quorum(),
                                       Consistency::All()};
    for (uint32_t count = 1; count <= n; ++count) levels.push_back(Consistency::Count(count));
    for (uint32_t dead = 0; dead < n; ++dead) {
      TestCluster cluster(n, n);
      // Node 1 coordinates and stays up; the highest ids die.
      for (uint32_t i = 0; i < dead; ++i) cluster.Crash(static_cast<NodeId>(n - i));
      for (const Consistency& level : levels) {
        const uint32_t needed = *RequiredReplies(level, n);
        const bool possible = n - dead >= needed;
        Result<WriteResult> put = cluster.Put(1, "k", "v", level);
        EXPECT_EQ(put.ok(), possible) << "N=" << n << " dead=" << dead << " "
                                      << ToString(level) << ": " << put.status();
        if (put.ok()) {
          EXPECT_GE(put->acks, needed);
        } else {
          EXPECT_TRUE(put.status().IsUnavailable()) << put.status();
        }
        Result<ReadResult> got = cluster.Get(1, "k", level);
        EXPECT_EQ(got.ok(), possible) << "N=" << n << " dead=" << dead << " "
                                      << ToString(level) << ": " << got.status();
        if (got.ok()) {
          EXPECT_GE(got->replies, needed);
        }
      }
    }
  }
}

// ---- Reads and writes ----

TEST(CoordinatorTest, WriteThroughOneNodeIsReadThroughAnother) {
  TestCluster cluster(3, 3);
  Result<WriteResult> put = cluster.Put(1, "apple", "red");
  ASSERT_TRUE(put.ok()) << put.status();
  EXPECT_GE(put->acks, 2u);
  EXPECT_EQ(put->version.origin, 1u);
  Result<ReadResult> got = cluster.Get(3, "apple");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_TRUE(got->found);
  EXPECT_EQ(got->version->value, "red");
  EXPECT_EQ(got->version->timestamp, put->version.timestamp);
  // Every replica applied it, those after the quorum included.
  for (NodeId id : cluster.members()) {
    EXPECT_EQ(cluster.Stored(id, "apple"), put->version) << "node " << id;
  }
}

// The coordinator's own replica gets the same deadline as the remote ones:
// a local put still waiting behind a slow group when the coordinator's
// timeout passed is dropped unwritten, like a remote one.
TEST(CoordinatorTest, ALocalPutWaitingPastTheTimeoutIsNotWritten) {
  TestCluster cluster(3, 3);
  cluster.disk(1).set_hold_async_writes(true);
  ASSERT_TRUE(cluster.Put(1, "first", "1", Consistency::Quorum()).ok());
  ASSERT_EQ(cluster.disk(1).held_count(), 1u);  // node 1's group is in flight
  ASSERT_TRUE(cluster.Put(1, "late", "1", Consistency::Quorum()).ok());  // nodes 2, 3
  EXPECT_EQ(cluster.disk(1).held_count(), 1u);  // "late" waits behind it
  cluster.clock().AdvanceTo(cluster.clock().MonotonicNanos() + 600 * kMsNanos);
  cluster.disk(1).CompleteOldestHeldWrite();
  cluster.Settle();
  EXPECT_EQ(cluster.disk(1).held_count(), 0u);  // nothing left to write
  EXPECT_TRUE(cluster.Stored(1, "first").has_value());
  EXPECT_FALSE(cluster.Stored(1, "late").has_value());
  EXPECT_TRUE(cluster.Stored(2, "late").has_value());
  EXPECT_EQ(cluster.node(1).replica().stats().puts_expired, 1u);
}

TEST(CoordinatorTest, NotFoundIsAnAnswerNotAnError) {
  TestCluster cluster(3, 3);
  Result<ReadResult> missing = cluster.Get(2, "nothing");
  ASSERT_TRUE(missing.ok()) << missing.status();
  EXPECT_FALSE(missing->found);
  EXPECT_FALSE(missing->version.has_value());
  EXPECT_EQ(cluster.node(2).coordinator().stats().reads_not_found, 1u);

  ASSERT_TRUE(cluster.Put(1, "k", "v").ok());
  Result<WriteResult> deleted = cluster.Delete(2, "k");
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  Result<ReadResult> after = cluster.Get(3, "k", Consistency::All());
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_FALSE(after->found);
  ASSERT_TRUE(after->version.has_value());
  EXPECT_TRUE(after->version->tombstone);
  EXPECT_EQ(after->version->timestamp, deleted->version.timestamp);
}

TEST(CoordinatorTest, TheGreatestVersionWinsAcrossCoordinators) {
  TestCluster cluster(4, 3);
  std::optional<Version> greatest;
  for (int i = 0; i < 20; ++i) {
    const NodeId via = static_cast<NodeId>(i % 4 + 1);
    Result<WriteResult> put = cluster.Put(via, "counter", std::to_string(i));
    ASSERT_TRUE(put.ok()) << put.status();
    if (!greatest || Supersedes(put->version, *greatest)) greatest = put->version;
    // No time passes here, so coordinators that have not heard of each
    // other's stamps may issue smaller ones: last-writer-wins then keeps
    // the greatest stamp, not the last write in real time.
    Result<ReadResult> got = cluster.Get(static_cast<NodeId>((i + 2) % 4 + 1), "counter");
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(got->version, greatest);
  }
}

TEST(CoordinatorTest, WithSynchronizedClocksTheLastWriteInRealTimeWins) {
  TestCluster cluster(4, 3);
  for (int i = 0; i < 20; ++i) {
    cluster.clock().AdvanceTo(cluster.clock().MonotonicNanos() + kMsNanos);
    ASSERT_TRUE(cluster.Put(static_cast<NodeId>(i % 4 + 1), "counter", std::to_string(i)).ok());
    Result<ReadResult> got = cluster.Get(static_cast<NodeId>((i + 2) % 4 + 1), "counter");
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(got->version->value, std::to_string(i));
  }
}

// ---- Dead and slow replicas ----

TEST(CoordinatorTest, QuorumWritesSurviveOneDeadReplicaButAllDoesNot) {
  TestCluster cluster(3, 3);
  cluster.Crash(3);
  Result<WriteResult> quorum = cluster.Put(1, "k", "v1", Consistency::Quorum());
  ASSERT_TRUE(quorum.ok()) << quorum.status();
  EXPECT_EQ(quorum->acks, 2u);

  Result<WriteResult> all = cluster.Put(1, "k", "v2", Consistency::All());
  ASSERT_TRUE(all.status().IsUnavailable()) << all.status();
  EXPECT_NE(all.status().message().find("2 of 3 replicas answered, 3 needed"),
            std::string::npos) << all.status();

  Result<ReadResult> read_all = cluster.Get(2, "k", Consistency::All());
  ASSERT_TRUE(read_all.status().IsUnavailable()) << read_all.status();
  EXPECT_NE(read_all.status().message().find("2 of 3 replicas answered, 3 needed"),
            std::string::npos) << read_all.status();
  EXPECT_GE(cluster.node(1).coordinator().stats().quorum_failures, 1u);
}

TEST(CoordinatorTest, TwoDeadReplicasFailQuorumWithCounts) {
  TestCluster cluster(3, 3);
  cluster.Crash(2);
  cluster.Crash(3);
  Result<WriteResult> put = cluster.Put(1, "k", "v");
  ASSERT_TRUE(put.status().IsUnavailable()) << put.status();
  EXPECT_NE(put.status().message().find("1 of 3 replicas answered, 2 needed"),
            std::string::npos) << put.status();
  Result<ReadResult> got = cluster.Get(1, "k");
  ASSERT_TRUE(got.status().IsUnavailable()) << got.status();
  // ONE still works: the coordinator is a replica itself.
  EXPECT_TRUE(cluster.Put(1, "k", "v", Consistency::One()).ok());
  EXPECT_TRUE(cluster.Get(1, "k", Consistency::Count(1)).ok());
}

TEST(CoordinatorTest, SlowReplicaDoesNotDelayAQuorumButFailsAll) {
  TestCluster cluster(3, 3);
  cluster.Slow(3);
  const int64_t start_ns = cluster.clock().MonotonicNanos();
  ASSERT_TRUE(cluster.Put(1, "k", "v").ok());
  Result<ReadResult> all = cluster.Get(2, "k", Consistency::All());
  EXPECT_TRUE(all.status().IsUnavailable()) << all.status();
  // The ALL read waited for its deadline; the quorum write had not.
  EXPECT_GE(cluster.clock().MonotonicNanos() - start_ns,
            cluster.node(2).coordinator().options().timeout_ns);
  cluster.Release(3);
  cluster.Settle();
  // The held write arrived late and was applied anyway.
  EXPECT_TRUE(cluster.Stored(3, "k").has_value());
}

// ---- Read repair ----

TEST(CoordinatorTest, ReadRepairConvergesAStaleReplicaBeforeTheReply) {
  TestCluster cluster(3, 3);
  ASSERT_TRUE(cluster.Put(1, "k", "old").ok());
  cluster.Crash(3);
  Result<WriteResult> newer = cluster.Put(1, "k", "new");
  ASSERT_TRUE(newer.ok());
  cluster.Start(3);
  EXPECT_EQ(cluster.Stored(3, "k")->value, "old");

  Result<ReadResult> got = cluster.Get(3, "k", Consistency::All());
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->version->value, "new");
  EXPECT_EQ(cluster.node(3).coordinator().stats().read_repairs_foreground, 1u);
  EXPECT_EQ(cluster.Stored(3, "k"), newer->version);
}

TEST(CoordinatorTest, ReadRepairOfLateAnswersRunsInTheBackground) {
  TestCluster cluster(3, 3);
  cluster.Crash(3);
  Result<WriteResult> put = cluster.Put(1, "k", "v");
  ASSERT_TRUE(put.ok());
  cluster.Start(3);
  EXPECT_FALSE(cluster.Stored(3, "k").has_value());
  // ONE from node 1: its own answer suffices; node 3's empty answer comes
  // later and is repaired after the reply.
  Result<ReadResult> got = cluster.Get(1, "k", Consistency::One());
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->version->value, "v");
  cluster.Settle();
  const CoordinatorStats& stats = cluster.node(1).coordinator().stats();
  EXPECT_EQ(stats.read_repairs_foreground, 0u);
  EXPECT_EQ(stats.read_repairs_background, 1u);
  EXPECT_EQ(cluster.Stored(3, "k"), put->version);
}

TEST(CoordinatorTest, ReadRepairSpreadsTombstones) {
  TestCluster cluster(3, 3);
  ASSERT_TRUE(cluster.Put(1, "k", "v").ok());
  cluster.Crash(2);
  ASSERT_TRUE(cluster.Delete(1, "k").ok());
  cluster.Start(2);
  EXPECT_FALSE(cluster.Stored(2, "k")->tombstone);
  Result<ReadResult> got = cluster.Get(2, "k", Consistency::All());
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_FALSE(got->found);
  EXPECT_TRUE(cluster.Stored(2, "k")->tombstone);
}

// A late answer newer than the reply (here: newer than "not found")
// repairs the replicas the reply was built from.
TEST(CoordinatorTest, ALateNewerAnswerRepairsTheRepliesBeforeIt) {
  TestCluster cluster(3, 3);
  cluster.Crash(1);
  cluster.Crash(2);
  Result<WriteResult> put = cluster.Put(3, "k", "v", Consistency::One());
  ASSERT_TRUE(put.ok()) << put.status();
  cluster.Start(1);
  cluster.Start(2);
  cluster.Slow(3);
  auto read = cluster.StartOn(1, [&] {
    return cluster.node(1).coordinator().Get("k", Consistency::Quorum());
  });
  ASSERT_TRUE(read.IsReady());
  Result<ReadResult> got = *read.Get();
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_FALSE(got->version.has_value());
  cluster.Release(3);  // before the read's deadline
  cluster.Settle();
  EXPECT_EQ(cluster.node(1).coordinator().stats().read_repairs_background, 2u);
  EXPECT_EQ(cluster.Stored(1, "k"), put->version);
  EXPECT_EQ(cluster.Stored(2, "k"), put->version);
}

// Flips a bit of `key`'s record on `id`, so its checksum fails.
void Damage(TestCluster& cluster, NodeId id, std::string_view key) {
  for (auto& [disk_key, value] : cluster.disk(id).table()) {
    if (disk_key.size() == key.size() + 3 && disk_key.ends_with(key)) {
      value.back() = static_cast<char>(value.back() ^ 0x10);
      return;
    }
  }
  FAIL() << "no record of " << key << " on node " << id;
}

TEST(CoordinatorTest, ADamagedReplicaIsRepairedOnceAMajorityOfTheOthersAnswered) {
  TestCluster cluster(3, 3);
  Result<WriteResult> put = cluster.Put(1, "k", "v");
  ASSERT_TRUE(put.ok());
  cluster.Settle();
  Damage(cluster, 2, "k");
  ASSERT_TRUE(cluster.node(2).store().Get("k").status().IsCorruption());
  // ALL cannot count the damaged replica, but its two healthy peers are a
  // majority: their version replaces the damaged record.
  Result<ReadResult> all = cluster.Get(1, "k", Consistency::All());
  EXPECT_TRUE(all.status().IsUnavailable()) << all.status();
  cluster.Settle();
  EXPECT_EQ(cluster.node(1).coordinator().stats().damaged_repairs, 1u);
  EXPECT_EQ(cluster.Stored(2, "k"), put->version);
  Result<ReadResult> again = cluster.Get(1, "k", Consistency::All());
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->version, put->version);
}

TEST(CoordinatorTest, ADamagedRecordIsDroppedWhenAMajorityHoldsNoVersion) {
  TestCluster cluster(3, 3);
  cluster.Crash(1);
  cluster.Crash(3);
  ASSERT_TRUE(cluster.Put(2, "k", "v", Consistency::One()).ok());
  cluster.Start(1);
  cluster.Start(3);
  Damage(cluster, 2, "k");
  Result<ReadResult> got = cluster.Get(1, "k", Consistency::Quorum());
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_FALSE(got->version.has_value());
  cluster.Settle();
  EXPECT_TRUE(cluster.node(2).store().Get("k").status().IsNotFound());
  EXPECT_EQ(cluster.node(2).replica().stats().damaged_dropped, 1u);
}

// One answer is no majority: the damaged record stays, failing reads.
TEST(CoordinatorTest, ADamagedRecordStaysWhenFewerThanAMajorityAnswered) {
  TestCluster cluster(3, 3);
  ASSERT_TRUE(cluster.Put(1, "k", "v").ok());
  cluster.Settle();
  Damage(cluster, 2, "k");
  cluster.Crash(3);
  EXPECT_TRUE(cluster.Get(1, "k", Consistency::All()).status().IsUnavailable());
  cluster.Settle();
  EXPECT_EQ(cluster.node(1).coordinator().stats().damaged_repairs, 0u);
  EXPECT_TRUE(cluster.node(2).store().Get("k").status().IsCorruption());
}

TEST(CoordinatorTest, SkippingReadRepairLeavesTheReplicaStale) {
  TestCluster cluster(3, 3);
  cluster.Crash(3);
  ASSERT_TRUE(cluster.Put(1, "k", "v").ok());
  cluster.Start(3);
  cluster.node(3).coordinator().set_canaries({.skip_read_repair = true});
  ASSERT_TRUE(cluster.Get(3, "k", Consistency::All()).ok());
  cluster.Settle();
  EXPECT_FALSE(cluster.Stored(3, "k").has_value());
}

// ---- Bad input ----

TEST(CoordinatorTest, BadInputIsRefusedAndNothingIsSent) {
  TestCluster cluster(3, 3);
  const uint64_t sent_before = cluster.hub().sent_count();
  EXPECT_TRUE(cluster.Put(1, "", "v").status().IsInvalidArgument());
  EXPECT_TRUE(cluster.Put(1, std::string(1025, 'k'), "v").status().IsInvalidArgument());
  EXPECT_TRUE(cluster.Put(1, "k", std::string(1024 * 1024 + 1, 'v')).status().IsInvalidArgument());
  EXPECT_TRUE(cluster.Put(1, "k", "v", Consistency::Count(4)).status().IsInvalidArgument());
  EXPECT_TRUE(cluster.Get(1, "", Consistency::One()).status().IsInvalidArgument());
  EXPECT_TRUE(cluster.Get(1, "k", Consistency::Count(4)).status().IsInvalidArgument());
  EXPECT_EQ(cluster.hub().sent_count(), sent_before);
  for (NodeId id : cluster.members()) EXPECT_FALSE(cluster.Stored(id, "k").has_value());
  // Binary keys and values are fine.
  std::string binary;
  for (int b = 0; b < 256; ++b) binary.push_back(static_cast<char>(b));
  ASSERT_TRUE(cluster.Put(2, binary, binary).ok());
  EXPECT_EQ(cluster.Get(3, binary)->version->value, binary);
}

// ---- Clocks ----

TEST(CoordinatorTest, ReplicasRefuseVersionsFromAWildClock) {
  TestCluster cluster(3, 3);
  cluster.clock_of(1).set_offset_ms(60'000);  // a minute ahead: beyond 500 ms
  Result<WriteResult> put = cluster.Put(1, "k", "v");
  ASSERT_TRUE(put.status().IsUnavailable()) << put.status();
  EXPECT_NE(put.status().message().find("refused"), std::string::npos) << put.status();
  EXPECT_FALSE(cluster.Stored(2, "k").has_value());
  EXPECT_EQ(cluster.node(2).replica().stats().puts_refused, 1u);
}

// A version stamped while a clock stood far ahead, already held by one
// replica, must still converge: repairs are applied whatever their stamp.
TEST(CoordinatorTest, RepairsSpreadVersionsStampedAheadOfTheReplicasClocks) {
  TestCluster cluster(3, 3);
  cluster.clock_of(1).set_offset_ms(2'000);
  Result<WriteResult> ahead = cluster.Put(1, "k", "ahead", Consistency::One());
  ASSERT_TRUE(ahead.ok()) << ahead.status();
  cluster.Settle();
  EXPECT_FALSE(cluster.Stored(2, "k").has_value());  // refused as a new write
  cluster.clock_of(1).set_offset_ms(0);
  Result<ReadResult> got = cluster.Get(2, "k", Consistency::All());
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->version, ahead->version);
  for (NodeId id : cluster.members()) EXPECT_EQ(cluster.Stored(id, "k"), ahead->version);
  EXPECT_GE(cluster.node(2).replica().stats().repairs_from_ahead, 1u);
}

// Bit rot in one copy of the ceiling is survived; in both, the node refuses
// to start rather than risk reissuing a timestamp.
TEST(CoordinatorTest, OneDamagedCeilingCopyIsSurvivedTwoAreRefused) {
  TestCluster cluster(3, 3);
  Result<WriteResult> before = cluster.Put(1, "k", "before");
  ASSERT_TRUE(before.ok());
  cluster.Crash(1);
  MapDisk::Table& table = cluster.disk(1).table();
  ASSERT_EQ(table.count("m/timestamp_ceiling/a"), 1u);
  table["m/timestamp_ceiling/a"][3] ^= 0x40;
  cluster.clock_of(1).set_offset_ms(-400);
  cluster.Start(1);
  EXPECT_EQ(cluster.node(1).stats().ceiling_copies_damaged, 1u);
  Result<WriteResult> after = cluster.Put(1, "k", "after");
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_GT(after->version.timestamp, before->version.timestamp);
  cluster.Crash(1);
  table["m/timestamp_ceiling/a"][0] ^= 0x01;
  table["m/timestamp_ceiling/b"][9] ^= 0x01;
  const Status refused = cluster.TryStart(1);
  EXPECT_TRUE(refused.IsCorruption()) << refused.ToString();
}

TEST(CoordinatorTest, ARestartedNodeStampsAboveEverythingItStampedBefore) {
  TestCluster cluster(3, 3);
  Result<WriteResult> before = cluster.Put(1, "k", "before");
  ASSERT_TRUE(before.ok());
  cluster.Crash(1);
  // The wall clock went back across the restart, within the tolerated
  // offset: without the durable ceiling the node would reissue stamps.
  cluster.clock_of(1).set_offset_ms(-400);
  cluster.Start(1);
  Result<WriteResult> after = cluster.Put(1, "k", "after");
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_GT(after->version.timestamp, before->version.timestamp);
  EXPECT_EQ(cluster.Get(2, "k")->version->value, "after");
  EXPECT_GE(cluster.node(1).stats().ceiling_raises, 1u);
}

// ---- Transitions and epoch fencing ----

// A coordinator on the outsider node, routing by whatever ring the test
// publishes (the cluster's nodes serve it as replicas). The rings below do
// not place the outsider, so its own replica service is never asked.
class OutsideCoordinator {
 public:
  OutsideCoordinator(TestCluster* cluster, std::shared_ptr<const Ring> ring)
      : cluster_(cluster),
        ring_(std::move(ring)),
        store_(&disk_, [](std::string_view) { return 0u; }, StoreOptions{}),
        hlc_(&cluster->clock(), HlcOptions{}) {
    runtime::Scheduler& scheduler = cluster->scheduler();
    process_ = scheduler.CreateProcess("outsider");
    rpc_ = std::make_unique<RpcEndpoint>(&scheduler, process_,
                                         cluster->hub().NetworkOf(TestCluster::kOutsider),
                                         TestCluster::kOutsider, RpcOptions{.incarnation = 3});
    replica_ = std::make_unique<ReplicaService>(&store_, &hlc_, rpc_.get(), &scheduler);
    CoordinatorOptions options;
    options.timeout_ns = 500 * kMsNanos;
    coordinator_ = std::make_unique<Coordinator>(
        &scheduler, process_, rpc_.get(), replica_.get(), &hlc_, [this] { return ring_; },
        [this]() -> Result<Timestamp> { return hlc_.Now(); }, options,
        [this](NodeId node) { return down_.count(node) > 0; });
  }
  ~OutsideCoordinator() { cluster_->scheduler().Kill(process_); }

  // Runs `body` in a fiber of the outsider and settles the cluster.
  template <typename F>
  auto Run(F body) {
    auto future = cluster_->scheduler().Spawn(process_, "test", std::move(body));
    cluster_->Settle();
    MKS_ASSERT(future.IsReady());
    return *future.Get();
  }
  Result<WriteResult> Put(const std::string& key, Consistency consistency) {
    return Run([&] { return coordinator_->Put(key, "v", consistency); });
  }
  // Publishes `ring` after `delay_ns`, from a fiber of the outsider.
  void PublishLater(std::shared_ptr<const Ring> ring, int64_t delay_ns) {
    cluster_->scheduler().Spawn(process_, "publish", [this, ring, delay_ns] {
      cluster_->scheduler().SleepFor(delay_ns);
      ring_ = ring;
    });
  }

  Coordinator& coordinator() { return *coordinator_; }
  void set_down(NodeId node) { down_.insert(node); }

 private:
  TestCluster* cluster_;
  std::shared_ptr<const Ring> ring_;
  MapDisk disk_;
  Store store_;
  HybridLogicalClock hlc_;
  ProcessId process_ = 0;
  std::unique_ptr<RpcEndpoint> rpc_;
  std::unique_ptr<ReplicaService> replica_;
  std::unique_ptr<Coordinator> coordinator_;
  std::set<NodeId> down_;
};

// Node 4 joining {1, 2, 3} at Q = 16, N = 3, no partition flipped yet.
struct JoinOfFour {
  Ring from = Ring::Build(MemberList::FromIds({1, 2, 3}).value(), 5, {16, 3}).value();
  MemberList to_members = [] {
    MemberList joined = MemberList::FromIds({1, 2, 3}).value();
    MKS_ASSERT(joined.Join(4).ok());
    return joined;
  }();
  Ring to = Ring::Build(to_members, 5, {16, 3}).value();
  std::shared_ptr<const Ring> ring = std::make_shared<const Ring>(Ring::Transitional(
      from, to, to_members, std::vector<bool>(16, false), std::vector<uint64_t>(16, 5), 5));

  // A key whose partition changes (node 4 is pending) when `changing`,
  // else one whose partition does not.
  std::string Key(bool changing) const {
    for (int i = 0;; ++i) {
      std::string key = "k" + std::to_string(i);
      if (ring->IsPending(4, ring->PartitionOf(key)) == changing) return key;
    }
  }
  // The serving replica of `key` that leaves its list, and one that stays.
  NodeId Leaving(const std::string& key) const {
    for (NodeId node : ring->ReplicasForKey(key)) {
      if (!to.IsReplica(node, ring->PartitionOf(key))) return node;
    }
    return kNoNode;
  }
  NodeId Staying(const std::string& key) const {
    for (NodeId node : ring->ReplicasForKey(key)) {
      if (to.IsReplica(node, ring->PartitionOf(key))) return node;
    }
    return kNoNode;
  }
};

TEST(CoordinatorTransitionTest, AWriteDuringATransitionAlsoReachesThePendingReplica) {
  TestCluster cluster(4, 3);
  const JoinOfFour join;
  OutsideCoordinator outsider(&cluster, join.ring);
  const std::string moving = join.Key(true);
  const std::string staying = join.Key(false);
  ASSERT_TRUE(outsider.Put(moving, Consistency::Quorum()).ok());
  EXPECT_TRUE(cluster.Stored(4, moving).has_value());
  EXPECT_EQ(outsider.coordinator().stats().pending_writes, 1u);
  ASSERT_TRUE(outsider.Put(staying, Consistency::Quorum()).ok());
  EXPECT_FALSE(cluster.Stored(4, staying).has_value());  // not one of its replicas
  EXPECT_EQ(outsider.coordinator().stats().pending_writes, 1u);
}

TEST(CoordinatorTransitionTest, AnAllWriteFailsWhileThePendingReplicaIsUnreachable) {
  TestCluster cluster(4, 3);
  const JoinOfFour join;
  OutsideCoordinator outsider(&cluster, join.ring);
  const std::string key = join.Key(true);
  ASSERT_TRUE(outsider.Put(key, Consistency::All()).ok());
  cluster.Crash(4);
  const Result<WriteResult> put = outsider.Put(key, Consistency::All());
  ASSERT_TRUE(put.status().IsUnavailable()) << put.status();
  // Every serving replica acknowledged; the future list is one short.
  EXPECT_NE(put.status().message().find("(pending replicas)"), std::string::npos)
      << put.status();
  EXPECT_NE(put.status().message().find("2 of 3 replicas answered, 3 needed"), std::string::npos)
      << put.status();
}

TEST(CoordinatorTransitionTest, AnAllWriteFailsAtOnceWhenThePendingReplicaIsKnownDown) {
  TestCluster cluster(4, 3);
  const JoinOfFour join;
  OutsideCoordinator outsider(&cluster, join.ring);
  outsider.set_down(4);
  const std::string key = join.Key(true);
  const Result<WriteResult> put = outsider.Put(key, Consistency::All());
  ASSERT_TRUE(put.status().IsUnavailable()) << put.status();
  for (NodeId node : {1u, 2u, 3u}) EXPECT_FALSE(cluster.Stored(node, key).has_value()) << node;
  // A key whose partition has no pending replica is not held up by node 4.
  EXPECT_TRUE(outsider.Put(join.Key(false), Consistency::All()).ok());
}

// The serving quorum is met by a replica that is leaving the partition, so
// the future list holds the write only once: not acknowledged.
TEST(CoordinatorTransitionTest, AcksFromALeavingReplicaDoNotMakeTheFutureQuorum) {
  TestCluster cluster(4, 3);
  const JoinOfFour join;
  OutsideCoordinator outsider(&cluster, join.ring);
  const std::string key = join.Key(true);
  ASSERT_NE(join.Leaving(key), kNoNode);
  cluster.Crash(4);
  cluster.Crash(join.Staying(key));
  const Result<WriteResult> put = outsider.Put(key, Consistency::Quorum());
  ASSERT_TRUE(put.status().IsUnavailable()) << put.status();
  EXPECT_NE(put.status().message().find("(pending replicas)"), std::string::npos)
      << put.status();
  EXPECT_NE(put.status().message().find("1 of 3 replicas answered, 2 needed"), std::string::npos)
      << put.status();
  EXPECT_TRUE(cluster.Stored(join.Leaving(key), key).has_value());  // it did acknowledge
  // The canary that counts W on the serving list alone acknowledges it.
  outsider.coordinator().set_canaries(CoordinatorCanaries{.skip_pending_replicas = true});
  EXPECT_TRUE(outsider.Put(key, Consistency::Quorum()).ok());
}

std::shared_ptr<const Ring> RingOfThreeAt(uint64_t epoch) {
  return std::make_shared<const Ring>(
      Ring::Build(MemberList::FromIds({1, 2, 3}).value(), epoch, {16, 3}).value());
}

TEST(CoordinatorTransitionTest, AStaleEpochRefusalIsRetriedOnTheNextRing) {
  TestCluster cluster(3, 3);
  OutsideCoordinator outsider(&cluster, RingOfThreeAt(5));
  cluster.node(3).replica().set_fence([](std::string_view) -> uint64_t { return 6; });
  outsider.PublishLater(RingOfThreeAt(6), 100 * kMsNanos);
  const Result<WriteResult> put = outsider.Put("k", Consistency::All());
  ASSERT_TRUE(put.ok()) << put.status();
  EXPECT_EQ(put->acks, 3u);
  EXPECT_EQ(cluster.node(3).replica().stats().fenced, 1u);
  EXPECT_EQ(outsider.coordinator().stats().stale_retries, 1u);
  EXPECT_EQ(outsider.coordinator().stats().writes_ok, 1u);
  EXPECT_EQ(outsider.coordinator().stats().writes_failed, 0u);
  EXPECT_TRUE(cluster.Stored(3, "k").has_value());

  // Reads are fenced and retried alike.
  cluster.node(3).replica().set_fence([](std::string_view) -> uint64_t { return 7; });
  outsider.PublishLater(RingOfThreeAt(7), 100 * kMsNanos);
  const Result<ReadResult> got =
      outsider.Run([&] { return outsider.coordinator().Get("k", Consistency::All()); });
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->replies, 3u);
  EXPECT_EQ(outsider.coordinator().stats().stale_retries, 2u);
}

TEST(CoordinatorTransitionTest, AStaleEpochRefusalFailsAtTheDeadlineWithoutANewerRing) {
  TestCluster cluster(3, 3);
  OutsideCoordinator outsider(&cluster, RingOfThreeAt(5));
  cluster.node(3).replica().set_fence([](std::string_view) -> uint64_t { return 6; });
  int64_t elapsed_ns = 0;
  const Result<WriteResult> put = outsider.Run([&] {
    const int64_t start_ns = cluster.scheduler().NowNanos();
    Result<WriteResult> result = outsider.coordinator().Put("k", "v", Consistency::All());
    elapsed_ns = cluster.scheduler().NowNanos() - start_ns;
    return result;
  });
  ASSERT_TRUE(put.status().IsUnavailable()) << put.status();
  EXPECT_GE(elapsed_ns, outsider.coordinator().options().timeout_ns);
  EXPECT_GE(cluster.node(3).replica().stats().fenced, 1u);
  EXPECT_EQ(outsider.coordinator().stats().stale_retries, 0u);
  EXPECT_EQ(outsider.coordinator().stats().writes_failed, 1u);
}

}  // namespace
}  // namespace mks
