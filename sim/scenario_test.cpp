#include "sim/scenario.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <string>

namespace mks::sim {
namespace {

// Expects `text` to be refused with a message starting "test.yaml:<line>:"
// and containing `fragment`.
void ExpectError(const std::string& text, int line, const std::string& fragment) {
  Result<Scenario> parsed = ParseScenario(text, "test.yaml");
  ASSERT_FALSE(parsed.ok()) << text;
  EXPECT_EQ(parsed.status().code(), StatusCode::kInvalidArgument);
  const std::string& message = parsed.status().message();
  EXPECT_EQ(message.rfind("test.yaml:" + std::to_string(line) + ":", 0), 0u) << message;
  EXPECT_NE(message.find(fragment), std::string::npos) << message;
}

TEST(ScenarioTest, EveryShippedScenarioParses) {
  int count = 0;
  for (const auto& entry : std::filesystem::directory_iterator(MKS_SCENARIO_DIR)) {
    if (entry.path().extension() != ".yaml") continue;
    Result<Scenario> parsed = LoadScenario(entry.path().string());
    EXPECT_TRUE(parsed.ok()) << parsed.status().ToString();
    ++count;
  }
  EXPECT_GE(count, 5);
}

TEST(ScenarioTest, ParsesEveryKindOfField) {
  Result<Scenario> parsed = ParseScenario(R"(
protocol: counter
nodes: 5
store: {replicas: 3, read_quorum: 1, write_quorum: 3, partitions: 128, seats: [2, 5, 1, 3, 4]}
duration_ms: 1234
liveness_bound_ms: 999
workload: {clients: 7, ops_per_second: 10, key_space: 3, read_percent: 20, write_percent: 30, delete_percent: 50}
network: {latency_min_us: 5, latency_max_us: 6, slow_tail_ppm: 1, slow_tail_max_us: 7, loss_ppm: 8}
disk: {write_latency_min_us: 11, write_latency_max_us: 12, report_delay_max_us: 13}
clocks: {max_offset_ms: 9, nodes: [{node: 2, offset_ms: -3, drift_ppm: 40}]}
timeline:
  - {at_ms: 50, heal: true}
  - {at_ms: 10, bridge: {sides: [[1], [4, 5]], via: 3}}
  - {at_ms: 20, clog: {from: 1, to: 2, duration_ms: 5}}
  - {at_ms: 30, clock_step: {node: [1, 2], step_ms: -70}}
faults:
  crash: {interval_ms: [10, 20], duration_ms: [1, 2], max_down: 2}
  loss: {ppm: 5}
swarm: {may_disable: [crash, loss], disable_percent: 100}
buggify: {enabled: false}
)", "test.yaml");
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  const Scenario& s = *parsed;
  EXPECT_EQ(s.nodes, 5u);
  EXPECT_EQ(s.read_consistency, Consistency::Count(1));
  EXPECT_EQ(s.write_consistency, Consistency::Count(3));
  EXPECT_EQ(s.partitions, 128u);
  EXPECT_EQ(s.seats, (std::vector<NodeId>{2, 5, 1, 3, 4}));
  EXPECT_EQ(s.workload.delete_percent, 50u);
  EXPECT_EQ(s.network.slow_tail_max_us, 7);
  EXPECT_EQ(s.disk.write_latency_min_us, 11);
  EXPECT_EQ(s.disk.write_latency_max_us, 12);
  EXPECT_EQ(s.disk.report_delay_max_us, 13);
  ASSERT_EQ(s.clocks.size(), 1u);
  EXPECT_EQ(s.clocks[0].model.offset_us, -3000);
  ASSERT_EQ(s.timeline.size(), 4u);
  EXPECT_EQ(s.timeline[0].action, TimelineAction::kBridge);  // sorted by time
  EXPECT_EQ(s.timeline[0].via, 3u);
  EXPECT_EQ(s.timeline[1].action, TimelineAction::kClogLink);
  EXPECT_EQ(s.timeline[2].nodes.size(), 2u);
  EXPECT_EQ(s.timeline[2].step_ms, -70);
  EXPECT_TRUE(s.family(FaultFamily::kCrash).enabled);
  EXPECT_EQ(s.family(FaultFamily::kCrash).max_down, 2u);
  EXPECT_FALSE(s.family(FaultFamily::kPause).enabled);
  EXPECT_EQ(s.swarm_may_disable.size(), 2u);
  EXPECT_FALSE(s.buggify_enabled);
}

TEST(ScenarioTest, UnknownFieldsAreNamedWithTheirLine) {
  ExpectError("nodes: 3\nnodez: 4\n", 2, "unknown field 'nodez'");
  ExpectError("nodes: 3\nworkload:\n  clients: 1\n  speed: 4\n", 4, "unknown field 'speed' in workload");
  ExpectError("timeline:\n  - {at_ms: 1, heal: true, colour: red}\n", 2, "colour");
}

TEST(ScenarioTest, BadValuesAreRefused) {
  ExpectError("nodes: 0\n", 1, "nodes = 0 is outside");
  ExpectError("nodes: three\n", 1, "must be an integer");
  ExpectError("protocol: raft\n", 1, "unknown protocol");
  ExpectError("nodes: 3\nstore: {replicas: 5}\n", 2, "replicas exceeds nodes");
  ExpectError("store: {partitions: 12}\n", 1, "power of two");
  ExpectError("nodes: 3\nstore: {seats: [1, 2]}\n", 2, "every node 1..3 once");
  ExpectError("nodes: 3\nstore: {seats: [1, 2, 2]}\n", 2, "every node 1..3 once");
  ExpectError("nodes: 3\nstore: {seats: [1, 2, 4]}\n", 2, "outside [1, 3]");
  ExpectError("nodes: 1\nstore: {seats: 1}\n", 2, "must be a list of node ids");
  ExpectError("nodes: 3\nstore: {seats: []}\n", 2, "must be a list of node ids");
  ExpectError("\n\nworkload: {read_percent: 50, write_percent: 10}\n", 3, "must be 100");
  ExpectError("nodes: 3\ntimeline:\n  - {at_ms: 1, crash: 4}\n", 3, "outside [1, 3]");
  ExpectError("timeline:\n  - {at_ms: 1, crash: 1, restart: 1}\n", 2, "exactly one action");
  ExpectError("timeline:\n  - {crash: 1}\n", 2, "needs at_ms");
  ExpectError("faults:\n  loss: {interval_ms: [5, 1]}\n", 2, "min > max");
  ExpectError("faults:\n  loss: {interval_ms: [1, 5]}\n", 2, "needs ppm");
  ExpectError("faults:\n  meteor: {}\n", 2, "unknown field 'meteor'");
  ExpectError("swarm: {may_disable: [crash, meteor]}\n", 1, "unknown fault family");
  ExpectError("disk: {write_latency_min_us: 9, write_latency_max_us: 8}\n", 1,
              "write_latency_min_us exceeds");
  ExpectError("disk: {sync_ms: 1}\n", 1, "unknown field 'sync_ms' in disk");
  ExpectError("nodes: [1\n", 2, "");  // YAML syntax error
}

TEST(ScenarioTest, MissingFileIsAnIOError) {
  Result<Scenario> parsed = LoadScenario("/nonexistent/scenario.yaml");
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.status().code(), StatusCode::kIOError);
}

}  // namespace
}  // namespace mks::sim
