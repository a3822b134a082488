#include "sim/gossip_protocol.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <string>

#include "sim/kv_protocol.h"
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

RunSummary Simulate(const Scenario& scenario, uint64_t seed) {
  Result<std::unique_ptr<Protocol>> protocol = MakeProtocol(scenario);
  EXPECT_TRUE(protocol.ok()) << protocol.status();
  Tracer tracer;
  World world(scenario, seed, protocol->get(), &tracer);
  return world.Run();
}

std::string Describe(const RunSummary& summary) {
  std::string out(VerdictName(summary.verdict));
  for (const std::string& violation : summary.violations) out += "\n  " + violation;
  if (!summary.liveness_failure.empty()) out += "\n  liveness: " + summary.liveness_failure;
  return out;
}

// Each planted gossip bug must be caught by a shipped scenario within a
// few seeds; the test prints how many it took.
struct CanaryCase {
  const char* canary;
  const char* scenario;
};

class GossipCanaryTest : public ::testing::TestWithParam<CanaryCase> {};

TEST_P(GossipCanaryTest, IsCaughtWithinTenSeeds) {
  const CanaryCase& c = GetParam();
  Scenario scenario = Load(c.scenario);
  scenario.canaries = {c.canary};
  for (uint64_t seed = 1; seed <= 10; ++seed) {
    const RunSummary summary = Simulate(scenario, seed);
    if (summary.verdict == Verdict::kPass) continue;
    std::printf("canary %s caught by %s after %llu seed(s): %s\n", c.canary, c.scenario,
                static_cast<unsigned long long>(seed), Describe(summary).substr(0, 300).c_str());
    return;
  }
  ADD_FAILURE() << "canary " << c.canary << " survived 10 seeds of " << c.scenario;
}

INSTANTIATE_TEST_SUITE_P(
    Canaries, GossipCanaryTest,
    ::testing::Values(CanaryCase{"no_refute", "gossip_flapping.yaml"},
                      CanaryCase{"no_indirect_probes", "gossip_loss_10.yaml"},
                      CanaryCase{"restart_incarnation_zero", "gossip_rolling_restart.yaml"},
                      // The store's nodes run the same gossip.
                      CanaryCase{"restart_incarnation_zero", "kv_crash_restart.yaml"}),
    [](const auto& info) {
      std::string scenario = info.param.scenario;
      scenario = scenario.substr(0, scenario.find('.'));
      return std::string(info.param.canary) + "_in_" + scenario;
    });

// The loss scenario must really declare crashed members dead, refute false
// suspicions and route probes through helpers, or it attacks nothing.
TEST(GossipScenarioTest, LossScenarioDetectsCrashesAndRefutesSuspicions) {
  const Scenario scenario = Load("gossip_loss_10.yaml");
  uint64_t checks = 0;
  uint64_t refutations = 0;
  uint64_t indirect = 0;
  for (uint64_t seed = 1; seed <= 3; ++seed) {
    const RunSummary summary = Simulate(scenario, seed);
    ASSERT_EQ(summary.verdict, Verdict::kPass) << Describe(summary);
    EXPECT_EQ(summary.gossip.false_dead, 0u);
    checks += summary.gossip.completeness_checks;
    refutations += summary.protocol_counters.at("gossip_refutations");
    indirect += summary.protocol_counters.at("gossip_indirect_probes");
  }
  std::printf("gossip_loss_10.yaml, seeds 1..3: %llu crashes checked, %llu refutations, "
              "%llu indirect probes\n",
              static_cast<unsigned long long>(checks), static_cast<unsigned long long>(refutations),
              static_cast<unsigned long long>(indirect));
  EXPECT_GT(checks, 0u);
  EXPECT_GT(refutations, 10u);
  EXPECT_GT(indirect, 1000u);
}

// A node of another secret is refused: its messages are dropped.
TEST(GossipScenarioTest, NodesOfAnotherSecretAreRefused) {
  const RunSummary summary = Simulate(Load("gossip_wrong_secret.yaml"), 1);
  ASSERT_EQ(summary.verdict, Verdict::kPass) << Describe(summary);
  EXPECT_GT(summary.network.dropped_auth, 10u);
}

TEST(GossipScenarioTest, UnknownGossipCanaryIsRefused) {
  Scenario scenario = Load("gossip_flapping.yaml");
  scenario.canaries = {"no_such_bug"};
  EXPECT_FALSE(MakeProtocol(scenario).ok());
  gossip::GossipCanaries canaries;
  for (const std::string& name : GossipCanaryNames()) {
    EXPECT_TRUE(EnableGossipCanary(name, &canaries).ok()) << name;
  }
}

}  // namespace
}  // namespace mks::sim
