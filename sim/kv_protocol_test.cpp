#include "sim/kv_protocol.h"

#include <gtest/gtest.h>

#include <cstdio>

#include <string>
#include <vector>

#include "sim/scenario.h"
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

// The quorum issue's scenarios: each must pass for 50 seeds.
class KvScenarioTest : public ::testing::TestWithParam<std::string> {};

TEST_P(KvScenarioTest, PassesForFiftySeeds) {
  const Scenario scenario = Load(GetParam());
  uint64_t operations = 0;
  for (uint64_t seed = 1; seed <= 50; ++seed) {
    const RunSummary summary = Simulate(scenario, seed);
    ASSERT_EQ(summary.verdict, Verdict::kPass)
        << GetParam() << " seed " << seed << ": " << Describe(summary);
    operations += summary.outcomes[static_cast<size_t>(Outcome::kOk)];
  }
  // The workload really ran: hundreds of acknowledged operations per seed.
  EXPECT_GT(operations, 50u * 300u) << GetParam();
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
                      CanaryCase{"ring_by_ids", "kv_split_halves.yaml"}),
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

TEST(KvProtocolTest, UnknownCanaryIsRefused) {
  KvCanaries canaries;
  EXPECT_FALSE(EnableKvCanary("no_such_bug", &canaries).ok());
  for (const std::string& name : KvCanaryNames()) {
    EXPECT_TRUE(EnableKvCanary(name, &canaries).ok()) << name;
  }
}

TEST(KvProtocolTest, ImpossibleQuorumsAreRefused) {
  Scenario scenario = Load("kv_steady.yaml");
  scenario.write_quorum = 4;
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
  KvChecker checker(RingOf({3, 1, 2, 4}, 1), true);
  checker.CheckRing(2, RingOf({3, 1, 2, 4}, 1));
  EXPECT_TRUE(checker.violations().empty());
  checker.CheckRing(4, RingOf({1, 2, 3, 4}, 1));
  ASSERT_EQ(checker.violations().size(), 1u);
  EXPECT_EQ(checker.violations()[0],
            "ring agreement: node 4 computed another ring at epoch 1: members "
            "in seat order [1, 2, 3, 4], not [3, 1, 2, 4]");
  checker.CheckRing(1, RingOf({3, 1, 2, 4}, 2));
  ASSERT_EQ(checker.violations().size(), 2u);
  EXPECT_NE(checker.violations()[1].find("node 1 computed another ring at epoch 2"),
            std::string::npos)
      << checker.violations()[1];
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
