#include "sim/kv_protocol.h"

#include <gtest/gtest.h>

#include <cstdio>

#include <string>
#include <vector>

#include "core/store.h"
#include "sim/scenario.h"
#include "sim/sim_disk.h"
#include "sim/trace.h"
#include "sim/world.h"

namespace mks::sim {
namespace {

const std::string kScenarioDir = MKS_SCENARIO_DIR;

Scenario Load(const std::string& name) {
  Result<Scenario> scenario = LoadScenario(kScenarioDir + "/" + name);
  EXPECT_TRUE(scenario.ok()) << scenario.status();
  return *scenario;
}

RunSummary Simulate(const Scenario& scenario, uint64_t seed, KvCanaries canaries = {}) {
  Result<std::unique_ptr<KvProtocol>> protocol = KvProtocol::Make(scenario);
  EXPECT_TRUE(protocol.ok()) << protocol.status();
  (*protocol)->set_canaries(canaries);
  Tracer tracer;
  World world(scenario, seed, protocol->get(), &tracer);
  return world.Run();
}

std::string Describe(const RunSummary& summary) {
  std::string out = std::string(VerdictName(summary.verdict));
  for (const std::string& violation : summary.violations) out += "\n  " + violation;
  if (!summary.liveness_failure.empty()) out += "\n  liveness: " + summary.liveness_failure;
  return out;
}

// The quorum issue's scenarios: each must pass for 50 seeds (5 under the
// sanitizers, where a seed costs ten times as much; the chaos suite sweeps
// every scenario further).
constexpr uint64_t kScenarioSeeds = MKS_SANITIZED ? 5 : 50;
class KvScenarioTest : public ::testing::TestWithParam<std::string> {};

TEST_P(KvScenarioTest, PassesForEverySeed) {
  const Scenario scenario = Load(GetParam());
  uint64_t operations = 0;
  for (uint64_t seed = 1; seed <= kScenarioSeeds; ++seed) {
    const RunSummary summary = Simulate(scenario, seed);
    ASSERT_EQ(summary.verdict, Verdict::kPass)
        << GetParam() << " seed " << seed << ": " << Describe(summary);
    operations += summary.outcomes[static_cast<size_t>(Outcome::kOk)];
  }
  // The workload really ran: hundreds of acknowledged operations per seed.
  EXPECT_GT(operations, kScenarioSeeds * 300u) << GetParam();
}

INSTANTIATE_TEST_SUITE_P(Scenarios, KvScenarioTest,
                         ::testing::Values("kv_steady.yaml", "kv_crash_restart.yaml",
                                           "kv_partition.yaml", "kv_clock_skew.yaml",
                                           "kv_loss.yaml", "default.yaml"));

TEST(KvProtocolTest, SameSeedSameTraceDifferentSeedDifferentTrace) {
  const Scenario scenario = Load("kv_crash_restart.yaml");
  const RunSummary first = Simulate(scenario, 7);
  const RunSummary again = Simulate(scenario, 7);
  const RunSummary other = Simulate(scenario, 8);
  EXPECT_EQ(first.trace_hash, again.trace_hash);
  EXPECT_NE(first.trace_hash, other.trace_hash);
}

// Each planted bug must be caught within a few seeds of a scenario that
// exercises it; the test prints how many seeds it took.
struct CanaryCase {
  const char* canary;
  const char* scenario;
};

class KvCanaryTest : public ::testing::TestWithParam<CanaryCase> {};

TEST_P(KvCanaryTest, IsCaughtWithinTwentySeeds) {
  const CanaryCase& c = GetParam();
  KvCanaries canaries;
  ASSERT_TRUE(EnableKvCanary(c.canary, &canaries).ok());
  const Scenario scenario = Load(c.scenario);
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    const RunSummary summary = Simulate(scenario, seed, canaries);
    if (summary.verdict == Verdict::kPass) continue;
    std::printf("canary %s caught by %s after %llu seed(s): %s\n", c.canary,
                c.scenario, static_cast<unsigned long long>(seed),
                Describe(summary).substr(0, 400).c_str());
    EXPECT_TRUE(summary.verdict == Verdict::kSafetyViolation ||
                summary.verdict == Verdict::kLivenessViolation)
        << Describe(summary);
    return;
  }
  ADD_FAILURE() << "canary " << c.canary << " survived 20 seeds of " << c.scenario;
}

INSTANTIATE_TEST_SUITE_P(
    Canaries, KvCanaryTest,
    ::testing::Values(CanaryCase{"ack_before_quorum", "kv_partition.yaml"},
                      CanaryCase{"skip_read_repair", "kv_crash_restart.yaml"},
                      CanaryCase{"winner_by_value", "kv_partition.yaml"},
                      CanaryCase{"ignore_tombstones", "kv_steady.yaml"},
                      // Two replicas down together make an unsynced
                      // acknowledgement show at once; kv_crash_restart
                      // (one down at a time) needs about 30 seeds.
                      CanaryCase{"lose_synced_writes", "kv_group_commit.yaml"},
                      CanaryCase{"overlap_commits", "kv_slow_disk.yaml"},
                      CanaryCase{"ack_in_flight", "kv_slow_disk.yaml"},
                      CanaryCase{"ack_shed_puts", "kv_replica_backlog.yaml"},
                      CanaryCase{"ring_by_ids", "kv_split_halves.yaml"},
                      // Causality needs skewed clocks: without skew a later
                      // write is stamped later anyway.
                      CanaryCase{"clock_ignores_reads", "kv_levels_mixed.yaml"},
                      CanaryCase{"reply_before_repair", "kv_crash_restart.yaml"},
                      CanaryCase{"damaged_as_missing", "kv_bit_rot.yaml"},
                      CanaryCase{"raft_vote_before_sync", "raft_leader_crash.yaml"},
                      CanaryCase{"raft_commit_old_term", "raft_churn.yaml"},
                      CanaryCase{"raft_keep_conflicting_suffix", "raft_churn.yaml"},
                      CanaryCase{"write_skip_pending", "elastic_join_cut.yaml"},
                      CanaryCase{"stream_flip_before_last_batch", "elastic_join_cut.yaml"},
                      CanaryCase{"stream_drop_before_flip", "elastic_join_cut.yaml"}),
    [](const auto& info) {
      std::string scenario = info.param.scenario;
      scenario = scenario.substr(0, scenario.find('.'));
      return std::string(info.param.canary) + "_in_" + scenario;
    });

// Runs seeds 1..`seeds` of `file`, each of which must pass, and returns the
// sum over the runs of each protocol counter in `names`, in order.
std::vector<uint64_t> SumCountersOverPassingSeeds(const char* file, uint64_t seeds,
                                                  const std::vector<std::string>& names) {
  const Scenario scenario = Load(file);
  std::vector<uint64_t> sums(names.size(), 0);
  for (uint64_t seed = 1; seed <= seeds; ++seed) {
    const RunSummary summary = Simulate(scenario, seed);
    EXPECT_EQ(summary.verdict, Verdict::kPass) << file << " seed " << seed << ": "
                                               << Describe(summary);
    for (size_t i = 0; i < names.size(); ++i) sums[i] += summary.protocol_counters.at(names[i]);
  }
  return sums;
}

// The group-commit scenario must really commit groups: several puts per
// synced write on average, or it attacks nothing.
TEST(KvProtocolTest, GroupCommitScenarioCommitsGroupsOfPuts) {
  const std::vector<uint64_t> sums = SumCountersOverPassingSeeds(
      "kv_group_commit.yaml", 5, {"group_commits", "group_commit_puts"});
  const uint64_t groups = sums[0];
  const uint64_t puts = sums[1];
  std::printf("kv_group_commit.yaml, seeds 1..5: %llu puts in %llu group commits\n",
              static_cast<unsigned long long>(puts), static_cast<unsigned long long>(groups));
  EXPECT_GT(groups, 0u);
  EXPECT_GT(puts * 10, groups * 13);  // more than 1.3 puts per group
}

// The backlog scenario must really make replicas shed puts, both ways, or
// it attacks nothing.
TEST(KvProtocolTest, BacklogScenarioRefusesAndExpiresPuts) {
  const std::vector<uint64_t> sums = SumCountersOverPassingSeeds(
      "kv_replica_backlog.yaml", 10, {"replica_puts_busy", "replica_puts_expired"});
  std::printf("kv_replica_backlog.yaml, seeds 1..10: %llu puts refused as busy, "
              "%llu expired unwritten\n",
              static_cast<unsigned long long>(sums[0]), static_cast<unsigned long long>(sums[1]));
  EXPECT_GT(sums[0], 0u);
  EXPECT_GT(sums[1], 0u);
}

// Bit rot must really damage records that reads then find and coordinators
// repair, or the scenario attacks nothing.
TEST(KvProtocolTest, BitRotScenarioFindsAndRepairsDamagedRecords) {
  const std::vector<uint64_t> sums = SumCountersOverPassingSeeds(
      "kv_bit_rot.yaml", 5, {"damaged_reads", "damaged_repairs"});
  std::printf("kv_bit_rot.yaml, seeds 1..5: %llu reads found a damaged record, "
              "%llu damaged replicas repaired\n",
              static_cast<unsigned long long>(sums[0]), static_cast<unsigned long long>(sums[1]));
  EXPECT_GT(sums[0], 10u);
  EXPECT_GT(sums[1], 10u);
}

// Replies addressed to an earlier incarnation must reach restarted nodes
// and be dropped as stale, or the scenario attacks nothing.
TEST(KvProtocolTest, FastRestartScenarioDropsStaleReplies) {
  const std::vector<uint64_t> sums =
      SumCountersOverPassingSeeds("kv_fast_restart.yaml", 5, {"rpc_replies_stale"});
  std::printf("kv_fast_restart.yaml, seeds 1..5: %llu stale replies dropped\n",
              static_cast<unsigned long long>(sums[0]));
  EXPECT_GT(sums[0], 50u);
}

TEST(KvProtocolTest, BitRotWithOneReplicaIsRefused) {
  Scenario scenario = Load("kv_one_replica.yaml");
  scenario.family(FaultFamily::kBitRot).enabled = true;
  const Result<std::unique_ptr<KvProtocol>> protocol = KvProtocol::Make(scenario);
  ASSERT_FALSE(protocol.ok());
  EXPECT_NE(protocol.status().message().find("only copy"), std::string::npos);
}

TEST(KvProtocolTest, UnknownCanaryIsRefused) {
  KvCanaries canaries;
  EXPECT_FALSE(EnableKvCanary("no_such_bug", &canaries).ok());
  for (const std::string& name : KvCanaryNames()) {
    EXPECT_TRUE(EnableKvCanary(name, &canaries).ok()) << name;
  }
}

TEST(KvProtocolTest, ImpossibleQuorumsAreRefused) {
  Scenario scenario = Load("kv_steady.yaml");
  scenario.write_consistency = Consistency::Count(4);
  EXPECT_FALSE(KvProtocol::Make(scenario).ok());
}

TEST(KvProtocolTest, SeatsThatAreNotEveryNodeOnceAreRefused) {
  Scenario scenario = Load("kv_steady.yaml");
  ASSERT_EQ(scenario.nodes, 5u);
  for (const std::vector<NodeId>& seats :
       {std::vector<NodeId>{1, 2, 3, 4}, std::vector<NodeId>{1, 2, 3, 4, 6},
        std::vector<NodeId>{1, 2, 3, 4, 4}}) {
    scenario.seats = seats;
    const Result<std::unique_ptr<KvProtocol>> protocol = KvProtocol::Make(scenario);
    ASSERT_FALSE(protocol.ok());
    EXPECT_EQ(protocol.status().code(), StatusCode::kInvalidArgument);
  }
  scenario.seats = {5, 1, 4, 2, 3};
  const Result<std::unique_ptr<KvProtocol>> protocol = KvProtocol::Make(scenario);
  ASSERT_TRUE(protocol.ok()) << protocol.status();
  EXPECT_EQ((*protocol)->members().by_seat(), scenario.seats);
}

Ring RingOf(std::vector<NodeId> by_seat, uint64_t epoch) {
  return Ring::Build(MemberList::FromSeats(std::move(by_seat)).value(), epoch,
                     {16, 3})
      .value();
}

TEST(KvProtocolTest, RingAgreementNamesTheNodeAndTheDifference) {
  KvChecker checker(RingOf({3, 1, 2, 4}, 1));
  checker.CheckRing(2, RingOf({3, 1, 2, 4}, 1));
  EXPECT_TRUE(checker.violations().empty());
  checker.CheckRing(4, RingOf({1, 2, 3, 4}, 1));
  ASSERT_EQ(checker.violations().size(), 1u);
  EXPECT_EQ(checker.violations()[0],
            "ring agreement: node 4 computed another ring at epoch 1: members "
            "in seat order [1, 2, 3, 4], not [3, 1, 2, 4]");
  // The epoch moves with time; placement does not.
  checker.CheckRing(1, RingOf({3, 1, 2, 4}, 2));
  EXPECT_EQ(checker.violations().size(), 1u);
  checker.CheckRing(1, Ring::Build(MemberList::FromSeats({3, 1, 2, 4}).value(), 3, {16, 2})
                           .value());
  ASSERT_EQ(checker.violations().size(), 2u);
  EXPECT_NE(checker.violations()[1].find("node 1 computed another ring at epoch 3: Q or N"),
            std::string::npos)
      << checker.violations()[1];
}

// ---- The checker's invariants, on histories built by hand ----

constexpr int64_t kMs = 1'000'000;

// A checker over nodes 1..3 (N = 3, every key on every node) whose disks
// the test fills directly.
class KvCheckerTest : public ::testing::Test {
 protected:
  KvCheckerTest() : checker_(RingOf({1, 2, 3}, 1)) {
    for (NodeId id = 1; id <= 3; ++id) checker_.AttachDisk(id, &disks_[id - 1]);
  }

  // Node `id` holds `key` at version (stamp_ms, origin) with `value`.
  void Hold(NodeId id, const std::string& key, uint64_t stamp_ms, NodeId origin,
            const std::string& value) {
    Store store(&disks_[id - 1],
                [](std::string_view k) { return Ring::PartitionOfKey(k, 16); }, {});
    ASSERT_TRUE(store
                    .Apply(key, Version::Write(Timestamp{stamp_ms, 0}, origin, value),
                           WriteOptions{.sync = true})
                    .ok());
  }

  static std::string DiskKeyOf(const std::string& key) {
    const PartitionId partition = Ring::PartitionOfKey(key, 16);
    std::string out = "v";
    out.push_back(static_cast<char>(partition >> 8));
    out.push_back(static_cast<char>(partition & 0xff));
    return out + key;
  }

  // An acknowledged write of `value` at W = `quorum` through node 1, over
  // [invoke_ms, complete_ms], stamped (stamp_ms, 1).
  void AckedWrite(uint64_t id, const std::string& key, const std::string& value,
                  uint32_t quorum, uint64_t stamp_ms, int64_t invoke_ms, int64_t complete_ms) {
    Operation op;
    op.client = 1001;
    op.id = id;
    op.node = 1;
    op.kind = OperationKind::kWrite;
    op.key = key;
    op.value = value;
    op.quorum = quorum;
    op.invoke_ns = invoke_ms * kMs;
    checker_.Invoke(op);
    op.outcome = Outcome::kOk;
    op.complete_ns = complete_ms * kMs;
    op.version_timestamp = Timestamp{stamp_ms, 0};
    op.version_origin = 1;
    checker_.Complete(op);
  }

  // A read at R = `quorum` through node 2 over [invoke_ms, complete_ms]
  // that returned (stamp_ms, origin, value), or nothing when origin is 0.
  void Read(uint64_t id, const std::string& key, uint32_t quorum, int64_t invoke_ms,
            int64_t complete_ms, uint64_t stamp_ms, NodeId origin, const std::string& value) {
    Operation op;
    op.client = 1002;
    op.id = id;
    op.node = 2;
    op.kind = OperationKind::kRead;
    op.key = key;
    op.quorum = quorum;
    op.invoke_ns = invoke_ms * kMs;
    checker_.Invoke(op);
    op.outcome = Outcome::kOk;
    op.complete_ns = complete_ms * kMs;
    if (origin != kNoNode) {
      op.version_timestamp = Timestamp{stamp_ms, 0};
      op.version_origin = origin;
      op.value = value;
    }
    checker_.Complete(op);
  }

  const std::vector<std::string>& violations() const { return checker_.violations(); }

  SimDisk disks_[3] = {SimDisk(Random(1)), SimDisk(Random(2)), SimDisk(Random(3))};
  KvChecker checker_;
};

TEST_F(KvCheckerTest, FreshnessIsOwedOnlyWhereTheLevelsOverlap) {
  AckedWrite(1, "k", "one", /*W=*/1, 100, 1, 2);
  Read(1, "k", /*R=*/2, 3, 4, 0, kNoNode, "");  // 2 + 1 = N: no promise
  EXPECT_TRUE(violations().empty());
  Read(2, "k", /*R=*/3, 5, 6, 0, kNoNode, "");  // 3 + 1 > N: stale
  ASSERT_EQ(violations().size(), 1u);
  EXPECT_NE(violations()[0].find("stale read: found no version"), std::string::npos)
      << violations()[0];
  EXPECT_NE(violations()[0].find("at W=1"), std::string::npos) << violations()[0];
}

TEST_F(KvCheckerTest, AReadMustLeaveWhatItReturnedOnRReplicas) {
  for (NodeId id : {1, 2, 3}) Hold(id, "k", 50, 1, "old");
  AckedWrite(1, "k", "new", 2, 100, 1, 2);
  Hold(1, "k", 100, 1, "new");
  Hold(2, "k", 100, 1, "new");
  Read(1, "k", 2, 3, 4, 100, 1, "new");  // two replicas hold it
  EXPECT_TRUE(violations().empty()) << violations()[0];
  Read(2, "k", 3, 5, 6, 100, 1, "new");  // R = 3, but node 3 is stale
  ASSERT_EQ(violations().size(), 1u);
  EXPECT_NE(violations()[0].find("read repair: the version returned is held by 2 replicas, "
                                 "R=3 needed"),
            std::string::npos)
      << violations()[0];
  // A record damaged since the read is not the read's fault.
  ASSERT_TRUE(disks_[2].CorruptRandomRecord([](std::string_view key) {
    return key == DiskKeyOf("k");
  }).has_value());
  Read(3, "k", 3, 7, 8, 100, 1, "new");
  EXPECT_EQ(violations().size(), 1u);
}

TEST_F(KvCheckerTest, BitRotWaivesOnlyWritesAFewReplicasAcknowledged) {
  AckedWrite(1, "a", "a1", /*W=*/1, 100, 1, 2);
  AckedWrite(2, "b", "b1", /*W=*/2, 100, 1, 2);
  checker_.DiskDamaged(1, DiskKeyOf("a"), 5 * kMs);
  checker_.DiskDamaged(1, DiskKeyOf("b"), 5 * kMs);
  checker_.DiskDamaged(1, "m/timestamp_ceiling/a", 5 * kMs);  // not a record
  Read(1, "a", 3, 6, 7, 0, kNoNode, "");  // W + K = 1 + 2 <= 3: waived
  EXPECT_TRUE(violations().empty());
  EXPECT_EQ(checker_.waived_for_bit_rot(), 1u);
  Read(2, "b", 3, 6, 7, 0, kNoNode, "");  // 2 + 2 > 3: owed
  EXPECT_EQ(violations().size(), 1u);
}

TEST_F(KvCheckerTest, AValueUnderAnotherNodesStampIsAPhantom) {
  for (NodeId id : {1, 2, 3}) Hold(id, "k", 100, 3, "v1");
  AckedWrite(1, "k", "v1", 2, 100, 1, 2);  // sent to node 1, stamped by it
  Read(1, "k", 2, 3, 4, 100, 3, "v1");     // ... but read back from node 3
  ASSERT_FALSE(violations().empty());
  EXPECT_NE(violations()[0].find("phantom read: the value of write of k"), std::string::npos)
      << violations()[0];
}

TEST_F(KvCheckerTest, AStoreWhoseRecordPassedItsCeilingFailsTheCheck) {
  Hold(1, "k", 100, 1, "v");
  // Node 1's stamp ceiling, put back below a record written after it.
  std::string ceiling;
  ASSERT_TRUE(disks_[0].Get("v", &ceiling).ok());
  Hold(1, "j", 900'000, 1, "later");
  ASSERT_TRUE(disks_[0].Put("v", ceiling, WriteOptions{}).ok());
  (void)checker_.CheckConverged({"", "", ""});
  ASSERT_FALSE(violations().empty());
  EXPECT_NE(violations()[0].find("stamp ceiling: node 1"), std::string::npos) << violations()[0];
}

// The canary's nodes disagree from their first start: the run ends on the
// ring agreement violations, before any operation could complete.
TEST(KvProtocolTest, RingByIdsIsCaughtAsRingAgreementAtStart) {
  KvCanaries canaries;
  canaries.ring_by_ids = true;
  const RunSummary summary = Simulate(Load("kv_split_halves.yaml"), 1, canaries);
  ASSERT_EQ(summary.verdict, Verdict::kSafetyViolation) << Describe(summary);
  ASSERT_FALSE(summary.violations.empty());
  EXPECT_EQ(summary.violations[0].rfind("ring agreement: node 2 ", 0), 0u)
      << Describe(summary);
  EXPECT_EQ(summary.outcomes[static_cast<size_t>(Outcome::kOk)], 0u);
}

}  // namespace
}  // namespace mks::sim
