#include "sim/regression.h"

#include <cstdio>
#include <memory>

#include "core/assertions.h"
#include "core/random.h"
#include "sim/protocol.h"
#include "sim/scenario_writer.h"
#include "sim/trace.h"

namespace mks::sim {
namespace {

// "safety violation" -> "safety": a file name without spaces.
std::string_view VerdictWord(Verdict verdict) {
  const std::string_view name = VerdictName(verdict);
  return name.substr(0, name.find(' '));
}

std::string Hex64(uint64_t value) {
  char buffer[24];
  std::snprintf(buffer, sizeof(buffer), "%016llx",
                static_cast<unsigned long long>(value));
  return buffer;
}

}  // namespace

Result<RunSummary> RunScenario(const Scenario& scenario, uint64_t seed) {
  Result<std::unique_ptr<Protocol>> protocol = MakeProtocol(scenario);
  if (!protocol.ok()) return protocol.status();
  MKS_ASSERT(*protocol != nullptr);
  Tracer tracer;
  World world(scenario, seed, protocol->get(), &tracer);
  RunSummary summary = world.Run();
  MKS_ASSERT_EQ(summary.verdict == Verdict::kSafetyViolation,
                !summary.violations.empty());
  return summary;
}

uint64_t ReplaySeed(const Scenario& scenario, std::optional<uint64_t> flag) {
  if (flag.has_value()) return *flag;
  return scenario.seed.value_or(1);
}

Result<std::string> WriteRegression(const std::string& directory,
                                    Scenario scenario, uint64_t seed,
                                    std::string_view how_found) {
  MKS_ASSERT(!directory.empty());
  scenario.seed = seed;
  // What the file replays to is what counts: run the case as written and
  // parsed back, so the recorded verdict and trace hash are the replay's.
  Result<Scenario> reparsed = ParseScenario(WriteScenario(scenario, ""), scenario.path);
  MKS_RETURN_IF_ERROR(reparsed.status());
  Result<RunSummary> replayed = RunScenario(*reparsed, seed);
  MKS_RETURN_IF_ERROR(replayed.status());
  const RunSummary& outcome = *replayed;
  scenario.expect = std::string(VerdictName(outcome.verdict));
  std::string what = outcome.violations.empty() ? outcome.liveness_failure
                                                : outcome.violations.front();
  if (what.empty()) what = "nothing (the run passed)";
  // The name hashes the scenario alone, so rewriting the same case with a
  // different comment still lands on the same file.
  const std::string body = WriteScenario(scenario, "");
  const std::string name = scenario.protocol + "-" +
                           std::string(VerdictWord(outcome.verdict)) + "-" +
                           Hex64(StableHash64(body)).substr(0, 12) + ".yaml";
  const std::string path = directory + "/" + name;
  const std::string comment =
      std::string(how_found) + "\nSeed " + std::to_string(seed) +
      " (in the file); verdict when written: " + scenario.expect +
      "; trace hash " + Hex64(outcome.trace_hash) + ".\nFirst failure: " + what +
      "\nReplay: mks-sim scenarios/regressions/" + name +
      "\nWhen the bug is fixed, change `expect:` to pass and keep the file.";
  MKS_RETURN_IF_ERROR(WriteScenarioFile(scenario, comment, path));
  return path;
}

}  // namespace mks::sim
