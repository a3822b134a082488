#include "sim/scenario_writer.h"

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <filesystem>
#include <string>

#include "sim/scenario_generator.h"

namespace mks::sim {
namespace {

// What a file cannot say: where it was read from.
Scenario WithoutOrigin(Scenario s) {
  s.path.clear();
  for (TimelineEvent& e : s.timeline) e.line = 0;
  return s;
}

// Writes `s`, parses the text back, and expects the same scenario.
void ExpectRoundTrip(const Scenario& s) {
  const std::string text = WriteScenario(s, "round trip\nof a scenario");
  Result<Scenario> parsed = ParseScenario(text, "written.yaml");
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString() << "\n" << text;
  EXPECT_TRUE(WithoutOrigin(*parsed) == WithoutOrigin(s)) << text;
  EXPECT_EQ(WriteScenario(*parsed, "round trip\nof a scenario"), text);
}

TEST(ScenarioWriterTest, EveryShippedScenarioAndRegressionRoundTrips) {
  int count = 0;
  for (const auto& entry :
       std::filesystem::recursive_directory_iterator(MKS_SCENARIO_DIR)) {
    if (entry.path().extension() != ".yaml") continue;
    Result<Scenario> parsed = LoadScenario(entry.path().string());
    ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
    SCOPED_TRACE(entry.path().string());
    ExpectRoundTrip(*parsed);
    ++count;
  }
  EXPECT_GE(count, 5);
}

TEST(ScenarioWriterTest, EveryActionAndReplayFieldRoundTrips) {
  Result<Scenario> parsed = ParseScenario(R"(
protocol: counter
seed: 18446744073709551615
expect: liveness violation
canaries: [ack_without_persist, "needs: quoting", "a \"quoted\" name"]
nodes: 5
store: {replicas: 3, read_quorum: 1, write_quorum: 3, partitions: 128}
duration_ms: 1234
liveness_bound_ms: 999
clocks:
  max_offset_ms: 7
  nodes:
    - {node: 2, offset_ms: -40, drift_ppm: -300}
timeline:
  - {at_ms: 1, isolate: 3}
  - {at_ms: 2, split: [[1, 2], [3, 4, 5]]}
  - {at_ms: 3, cut: {from: 1, to: 2}}
  - {at_ms: 4, bridge: {sides: [[1, 2], [4, 5]], via: 3}}
  - {at_ms: 5, heal: true}
  - {at_ms: 6, crash: [1, 2]}
  - {at_ms: 7, restart: [1, 2]}
  - {at_ms: 8, pause: 4}
  - {at_ms: 9, resume: 4}
  - {at_ms: 10, clog: {node: 5, duration_ms: 100}}
  - {at_ms: 10, clog: {from: 2, to: 1, duration_ms: 50}}
  - {at_ms: 11, clock_step: {node: [1, 3], step_ms: -2000}}
  - {at_ms: 12, loss_ppm: 1000}
  - {at_ms: 13, duplicate_ppm: 2000}
  - {at_ms: 14, reorder_ppm: 3000}
faults:
  partition: {interval_ms: [10, 20], duration_ms: [5, 6]}
  crash: {enabled: false, interval_ms: [100, 200], max_down: 2}
  clock_step: {interval_ms: [10, 20], step_max_ms: 30}
  disk_error: {interval_ms: [10, 20], duration_ms: [1, 2], ppm: 5}
swarm: {may_disable: [crash, loss], disable_percent: 10}
buggify: {enabled: false, site_percent: 3, fire_ppm: 4}
)", "every.yaml");
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->seed, std::optional<uint64_t>(18446744073709551615ULL));
  EXPECT_EQ(parsed->expect, "liveness violation");
  ASSERT_EQ(parsed->canaries.size(), 3u);
  EXPECT_EQ(parsed->canaries[2], "a \"quoted\" name");
  EXPECT_EQ(parsed->timeline.size(), 15u);
  ExpectRoundTrip(*parsed);
}

TEST(ScenarioWriterTest, DefaultScenarioWritesNoOptionalSections) {
  const std::string text = WriteScenario(Scenario{}, "");
  EXPECT_EQ(text.find("seed:"), std::string::npos) << text;
  EXPECT_EQ(text.find("timeline:"), std::string::npos) << text;
  EXPECT_EQ(text.find("faults:"), std::string::npos) << text;
  EXPECT_EQ(text.find("clocks:"), std::string::npos) << text;
  EXPECT_EQ(text.rfind("protocol: counter\n", 0), 0u) << text;
  ExpectRoundTrip(Scenario{});
}

TEST(ScenarioWriterTest, ReplayFieldsAreValidated) {
  EXPECT_FALSE(ParseScenario("seed: -1\n", "t.yaml").ok());
  EXPECT_FALSE(ParseScenario("seed: 1.5\n", "t.yaml").ok());
  EXPECT_FALSE(ParseScenario("expect: fail\n", "t.yaml").ok());
  EXPECT_FALSE(ParseScenario("canaries: ack_without_persist\n", "t.yaml").ok());
  EXPECT_FALSE(ParseScenario("canaries: [[a]]\n", "t.yaml").ok());
  Result<Scenario> parsed = ParseScenario("seed: 0\nexpect: pass\n", "t.yaml");
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->seed, std::optional<uint64_t>(0));
  EXPECT_TRUE(ParseScenario("nodes: 3\n", "t.yaml")->seed == std::nullopt);
}

TEST(ScenarioWriterTest, CommentLinesAreYamlComments) {
  const std::string text = WriteScenario(Scenario{}, "first\n\nthird");
  EXPECT_EQ(text.rfind("# first\n#\n# third\nprotocol:", 0), 0u) << text;
}

TEST(ScenarioWriterTest, WritesAFile) {
  const std::string path =
      (std::filesystem::temp_directory_path() / "mks_scenario_writer_test.yaml").string();
  Scenario s;
  s.seed = 42;
  ASSERT_TRUE(WriteScenarioFile(s, "a file", path).ok());
  Result<Scenario> loaded = LoadScenario(path);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ(loaded->seed, std::optional<uint64_t>(42));
  std::filesystem::remove(path);
  EXPECT_FALSE(WriteScenarioFile(s, "", "/nonexistent-dir/x.yaml").ok());
}

// Whatever the generator makes, the writer writes and the parser reads back.
RC_GTEST_PROP(ScenarioWriterProperty, GeneratedScenariosRoundTrip, ()) {
  GeneratorLimits limits;
  limits.bit_rot = true;
  // Printable names, some of which need quoting.
  limits.canaries = *rc::gen::container<std::vector<std::string>>(rc::gen::nonEmpty(
      rc::gen::container<std::string>(rc::gen::inRange<char>(32, 127))));
  const Scenario s = *GenScenario(limits);
  const std::string text = WriteScenario(s, "generated");
  Result<Scenario> parsed = ParseScenario(text, "generated.yaml");
  RC_ASSERT(parsed.ok());
  RC_ASSERT(WithoutOrigin(*parsed) == WithoutOrigin(s));
  RC_ASSERT(s.replicas >= 1 && s.replicas <= 5);
  RC_TAG(s.seats.empty() ? "seats by id" : "seats drawn");
  RC_TAG(s.workload.read_levels.empty() && s.workload.write_levels.empty()
             ? "default levels only"
             : "per-request levels");
}

}  // namespace
}  // namespace mks::sim
