// Property-based replay: RapidCheck generates whole scenarios, the world runs
// each over a protocol, and the protocol's checker must pass. A failure is
// shrunk by RapidCheck and written under scenarios/regressions/ as a file
// that mks-sim replays exactly; every such file is replayed here too.
//
// The protocols under test are those the shipped scenarios name, so a
// protocol is covered as soon as a scenario for it lands.
#include <gtest/gtest.h>
#include <rapidcheck.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <set>
#include <sstream>
#include <string>

#include "sim/counter_protocol.h"
#include "sim/regression.h"
#include "sim/scenario_generator.h"
#include "sim/scenario_writer.h"

namespace mks::sim {
namespace {

const std::string kScenarioDir = MKS_SCENARIO_DIR;

std::set<std::string> ShippedProtocols() {
  std::set<std::string> out;
  for (const auto& entry : std::filesystem::directory_iterator(kScenarioDir)) {
    if (entry.path().extension() != ".yaml") continue;
    Result<Scenario> scenario = LoadScenario(entry.path().string());
    EXPECT_TRUE(scenario.ok()) << scenario.status().ToString();
    if (scenario.ok()) out.insert(scenario->protocol);
  }
  return out;
}

std::vector<std::string> RegressionFiles() {
  std::vector<std::string> out;
  const std::filesystem::path dir = kScenarioDir + "/regressions";
  if (!std::filesystem::is_directory(dir)) return out;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() == ".yaml") out.push_back(entry.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

// An environment setting as a number, or `fallback`.
int EnvInt(const char* name, int fallback) {
  const char* value = std::getenv(name);
  return value == nullptr ? fallback : std::atoi(value);
}

// What the property saw fail last. RapidCheck only moves to a smaller case
// when that case fails too, so once it returns, this is the shrunk case.
struct Failure {
  Scenario scenario;
  RunSummary summary;
};

struct CheckResult {
  std::optional<Failure> failure;
  int shrink_steps = 0;   // smaller failing cases RapidCheck moved to
  int shrinks_tried = 0;
  int cases_passed = 0;   // before the first failure
  std::string message;    // RapidCheck's report
};

// Counts RapidCheck's shrinking steps, and keeps the failures a test expects
// out of RapidCheck's end-of-run "reproduce" report.
class ShrinkCounter final : public rc::detail::TestListener {
 public:
  void onTestCaseFinished(const rc::detail::CaseDescription&) override {}
  void onShrinkTried(const rc::detail::CaseDescription&, bool accepted) override {
    ++tried;
    accepted_steps += accepted ? 1 : 0;
  }
  void onTestFinished(const rc::detail::TestMetadata&,
                      const rc::detail::TestResult&) override {}
  int tried = 0;
  int accepted_steps = 0;
};

// Runs the property "the checker passes" over `cases` generated scenarios.
CheckResult CheckTheChecker(const GeneratorLimits& limits, int cases,
                            uint64_t rapidcheck_seed) {
  CheckResult out;
  const auto property = [&limits, &out] {
    const Scenario scenario = *GenScenario(limits);
    Result<RunSummary> summary = RunScenario(scenario, scenario.seed.value());
    RC_ASSERT(summary.ok());
    RC_CLASSIFY(summary->events > 1000, "over 1000 events");
    RC_CLASSIFY(summary->outcomes[static_cast<size_t>(Outcome::kOk)] > 20,
                "over 20 acknowledged operations");
    if (summary->verdict != Verdict::kPass) {
      out.failure = Failure{scenario, *summary};
      RC_FAIL(std::string(VerdictName(summary->verdict)) + ": " +
              (summary->violations.empty() ? summary->liveness_failure
                                           : summary->violations.front()));
    }
  };
  rc::detail::TestParams params = rc::detail::configuration().testParams;
  params.maxSuccess = cases;
  params.seed = rapidcheck_seed;
  rc::detail::TestMetadata metadata;
  metadata.id = "checker passes: " + limits.protocol;
  ShrinkCounter shrinks;
  const rc::detail::TestResult result = rc::detail::checkProperty(
      rc::detail::toProperty(property), metadata, params, shrinks);
  out.shrink_steps = shrinks.accepted_steps;
  out.shrinks_tried = shrinks.tried;
  std::ostringstream message;
  rc::detail::printResultMessage(result, message);
  out.message = message.str();
  rc::detail::FailureResult failure;
  if (result.match(failure)) {
    out.cases_passed = failure.numSuccess;
  } else {
    out.failure.reset();  // a failure RapidCheck did not keep (e.g. an error)
  }
  return out;
}

TEST(ReplayPropertyTest, GeneratedScenariosPassForEveryShippedProtocol) {
  const std::set<std::string> protocols = ShippedProtocols();
  ASSERT_FALSE(protocols.empty());
  // MKS_PROPERTY_CASES trades time for reach; the sanitizer build runs fewer.
  const int cases = EnvInt("MKS_PROPERTY_CASES", MKS_DEFAULT_PROPERTY_CASES);
  const char* directory = std::getenv("MKS_REGRESSION_DIR");
  const std::string regressions =
      directory != nullptr ? directory : kScenarioDir + "/regressions";
  for (const std::string& protocol : protocols) {
    GeneratorLimits limits;
    limits.protocol = protocol;
    if (protocol == "kv") {
      // Replicas refuse timestamps 500 ms ahead of their clock (core/hlc.h):
      // two models 100 ms off each way, drifting 10 ms in 10 s, stay inside.
      limits.max_clock_offset_ms = 100;
      limits.max_clock_drift_ppm = 1000;
      limits.bit_rot = true;
    }
    const uint64_t seed = rc::detail::configuration().testParams.seed;
    const CheckResult result = CheckTheChecker(limits, cases, seed);
    if (!result.failure.has_value()) {
      EXPECT_EQ(result.message.find("Falsifiable"), std::string::npos) << result.message;
      std::cout << protocol << ": " << result.message << "\n";
      continue;
    }
    std::filesystem::create_directories(regressions);
    Result<std::string> path = WriteRegression(
        regressions, result.failure->scenario, result.failure->scenario.seed.value(),
        "Found by ReplayPropertyTest (sim/replay_property_test.cpp), RapidCheck\n"
        "seed " + std::to_string(seed) + ", after " +
            std::to_string(result.cases_passed) +
            " passing cases; shrunk in " + std::to_string(result.shrink_steps) +
            " steps.");
    ADD_FAILURE() << protocol << ": " << result.message << "\nshrunk case written to "
                  << (path.ok() ? *path : path.status().ToString())
                  << "\nreplay: mks-sim " << (path.ok() ? *path : "");
  }
}

// A planted bug must be found, shrunk, and written as a file that replays to
// the same failure. MKS_REGRESSION_DIR keeps the file; by default it goes to
// a temporary directory.
TEST(ReplayPropertyTest, PlantedBugIsFoundShrunkAndWrittenReplayably) {
  GeneratorLimits limits;
  limits.protocol = "counter";
  limits.canaries = {"ack_without_persist"};
  constexpr uint64_t kRapidCheckSeed = 6;
  const CheckResult result = CheckTheChecker(limits, 200, kRapidCheckSeed);
  ASSERT_TRUE(result.failure.has_value()) << result.message;
  EXPECT_GT(result.shrink_steps, 0) << result.message;
  std::cout << "found after " << result.cases_passed << " passing cases; shrunk in "
            << result.shrink_steps << " steps (" << result.shrinks_tried
            << " smaller cases tried)\n";
  const Failure& found = *result.failure;
  EXPECT_NE(found.summary.verdict, Verdict::kPass);

  const char* keep = std::getenv("MKS_REGRESSION_DIR");
  const std::filesystem::path directory =
      keep != nullptr ? std::filesystem::path(keep)
                      : std::filesystem::temp_directory_path() / "mks_replay_property_test";
  std::filesystem::create_directories(directory);
  Result<std::string> path = WriteRegression(
      directory.string(), found.scenario, found.scenario.seed.value(),
      "Found by ReplayPropertyTest.PlantedBugIsFoundShrunkAndWrittenReplayably\n"
      "(sim/replay_property_test.cpp), RapidCheck seed " +
          std::to_string(kRapidCheckSeed) + ", after " +
          std::to_string(result.cases_passed) + " passing cases, then shrunk in " +
          std::to_string(result.shrink_steps) + " steps.\n"
          "The canary ack_without_persist acknowledges increments it never\n"
          "writes to disk; the checker must keep catching it, so this file\n"
          "expects the failure.");
  ASSERT_TRUE(path.ok()) << path.status().ToString();
  std::ifstream file(*path);
  std::cout << "---- " << *path << " ----\n" << file.rdbuf() << "----\n";

  // The file replays exactly: same scenario, same seed, same run.
  Result<Scenario> loaded = LoadScenario(*path);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ(loaded->seed, found.scenario.seed);
  EXPECT_EQ(loaded->expect, VerdictName(found.summary.verdict));
  Result<RunSummary> replayed = RunScenario(*loaded, ReplaySeed(*loaded, std::nullopt));
  ASSERT_TRUE(replayed.ok());
  EXPECT_EQ(replayed->verdict, found.summary.verdict);
  EXPECT_EQ(replayed->trace_hash, found.summary.trace_hash);
  EXPECT_EQ(replayed->violations, found.summary.violations);
  if (keep == nullptr) std::filesystem::remove_all(directory);
}

TEST(ReplayPropertyTest, EveryRegressionReplaysToItsRecordedVerdict) {
  const std::vector<std::string> files = RegressionFiles();
  ASSERT_FALSE(files.empty()) << "no files under " << kScenarioDir << "/regressions";
  for (const std::string& path : files) {
    SCOPED_TRACE(path);
    Result<Scenario> scenario = LoadScenario(path);
    ASSERT_TRUE(scenario.ok()) << scenario.status().ToString();
    ASSERT_TRUE(scenario->seed.has_value()) << "a regression records its seed";
    ASSERT_FALSE(scenario->expect.empty()) << "a regression records its verdict";
    Result<RunSummary> first = RunScenario(*scenario, *scenario->seed);
    ASSERT_TRUE(first.ok()) << first.status().ToString();
    EXPECT_EQ(VerdictName(first->verdict), scenario->expect)
        << (first->violations.empty() ? first->liveness_failure : first->violations[0]);
    Result<RunSummary> second = RunScenario(*scenario, *scenario->seed);
    EXPECT_EQ(first->trace_hash, second->trace_hash);
  }
}

// The shipped scenarios must catch every counter canary within a bounded
// number of seeds; how many each took is printed. A scenario without crashes
// cannot catch ack_without_persist, so the bound applies to the suite, not
// to each scenario.
TEST(ReplayPropertyTest, ShippedScenariosCatchEveryCounterCanaryWithinBoundedSeeds) {
  constexpr uint64_t kSeedBound = MKS_CANARY_SEED_BOUND;
  for (std::string_view canary : kCounterCanaries) {
    uint64_t fewest = 0;  // seeds the quickest scenario took; 0: none caught it
    for (const auto& entry : std::filesystem::directory_iterator(kScenarioDir)) {
      if (entry.path().extension() != ".yaml") continue;
      Result<Scenario> scenario = LoadScenario(entry.path().string());
      ASSERT_TRUE(scenario.ok()) << scenario.status().ToString();
      if (scenario->protocol != "counter") continue;
      scenario->canaries = {std::string(canary)};
      uint64_t seeds = 0;
      for (uint64_t seed = 1; seed <= kSeedBound && seeds == 0; ++seed) {
        Result<RunSummary> run = RunScenario(*scenario, seed);
        ASSERT_TRUE(run.ok()) << run.status().ToString();
        if (run->verdict != Verdict::kPass) seeds = seed;
      }
      std::cout << "canary " << canary << ", " << entry.path().filename().string()
                << ": " << (seeds == 0 ? "not caught in " + std::to_string(kSeedBound)
                                       : "caught at seed " + std::to_string(seeds))
                << "\n";
      if (seeds != 0 && (fewest == 0 || seeds < fewest)) fewest = seeds;
    }
    EXPECT_NE(fewest, 0u) << "no shipped scenario catches canary " << canary
                          << " within " << kSeedBound << " seeds";
  }
}

TEST(ReplayPropertyTest, ReplaySeedPrefersTheFlagThenTheFile) {
  Scenario s;
  EXPECT_EQ(ReplaySeed(s, std::nullopt), 1u);
  s.seed = 77;
  EXPECT_EQ(ReplaySeed(s, std::nullopt), 77u);
  EXPECT_EQ(ReplaySeed(s, 5), 5u);
}

TEST(ReplayPropertyTest, UnknownCanaryIsRefused) {
  Scenario s;
  s.canaries = {"no_such_canary"};
  Result<RunSummary> run = RunScenario(s, 1);
  ASSERT_FALSE(run.ok());
  EXPECT_NE(run.status().message().find("no_such_canary"), std::string::npos);
}

}  // namespace
}  // namespace mks::sim
