// mks-sim: runs one seeded simulation of a scenario and prints its verdict.
//
//   mks-sim [--seed N] scenario.yaml [--trace FILE] [-v]
//   mks-sim --seeds A..B scenario.yaml [--jobs J] [-v]
//                             sweep: stop at the first failing seed
//   mks-sim --diff A B        compare two trace files
//
// Without --seed, a scenario's own `seed:` is used (regression files carry
// one), else seed 1.
//
// Exit codes: 0 pass, 2 invalid scenario or usage, 3 safety violation,
// 4 liveness violation, 5 internal assertion (an MKS_ASSERT aborted).
#include <CLI/CLI.hpp>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <optional>
#include <string>
#include <unistd.h>
#include <vector>

#include "sim/protocol.h"
#include "sim/regression.h"
#include "sim/scenario.h"
#include "sim/trace.h"
#include "sim/world.h"
#include "tools/mks_sim_sweep.h"

namespace {

constexpr int kExitPass = 0;
constexpr int kExitInvalid = 2;
constexpr int kExitSafety = 3;
constexpr int kExitLiveness = 4;
constexpr int kExitAssertion = 5;

// An assertion prints its message to stderr and aborts; a run that aborts is
// a bug in the database or the simulator, reported with its own exit code.
extern "C" void OnAbort(int) {
  std::fflush(stdout);
  std::fflush(stderr);
  _exit(kExitAssertion);
}

std::string Seconds(int64_t ns) {
  char buffer[64];
  std::snprintf(buffer, sizeof(buffer), "%lld.%03lld s",
                static_cast<long long>(ns / 1000000000),
                static_cast<long long>((ns / 1000000) % 1000));
  return buffer;
}

void PrintSummary(const mks::sim::World& world, const mks::sim::RunSummary& s,
                  bool verbose) {
  using mks::sim::FaultFamily;
  const mks::sim::NetworkStats& n = s.network;
  std::cout << "---- summary ----\n"
            << "simulated time: " << Seconds(s.simulated_ns) << "\n"
            << "events: " << s.events << " timers, " << s.trace_events
            << " traced\n"
            << "messages: sent " << n.sent << ", delivered " << n.delivered
            << ", dropped " << (n.dropped_cut + n.dropped_loss + n.dropped_down +
                                n.dropped_no_handler + n.dropped_auth)
            << " (partition " << n.dropped_cut << ", loss " << n.dropped_loss
            << ", receiver down " << n.dropped_down << ", no handler "
            << n.dropped_no_handler << ", refused peer " << n.dropped_auth
            << "), duplicated " << n.duplicated
            << ", reordered " << n.reordered << ", slow " << n.slow
            << ", clogged " << n.clogged << "\n";
  std::cout << "faults (random/scripted):";
  for (size_t i = 0; i < mks::sim::kFaultFamilyCount; ++i) {
    std::cout << " " << FaultFamilyName(static_cast<FaultFamily>(i)) << " "
              << s.random_faults[i] << "/" << s.scripted_faults[i];
  }
  std::cout << "\noperations:";
  for (size_t i = 1; i < s.outcomes.size(); ++i) {
    std::cout << " " << OutcomeName(static_cast<mks::sim::Outcome>(i)) << " "
              << s.outcomes[i];
  }
  std::cout << "\n";
  if (world.gossip_checker().active()) {
    const mks::sim::GossipCheckStats& g = s.gossip;
    std::cout << "gossip: " << g.deaths_declared << " deaths declared, " << g.false_dead
              << " false (" << world.gossip_checker().options().max_false_dead
              << " tolerated), " << g.completeness_checks
              << " crashes checked for detection, slowest detection "
              << Seconds(g.worst_detection_ns) << " (bound "
              << Seconds(world.gossip_checker().options().detect_bound_ns) << ")\n";
  }
  if (world.raft_checker().active()) {
    const mks::sim::RaftCheckStats& r = s.raft;
    std::cout << "raft: " << r.leaders_elected << " leaders elected, highest term "
              << r.highest_term << ", highest index applied " << r.highest_index << ", "
              << r.entries_applied << " entries applied, " << r.snapshots_installed
              << " snapshots installed\n";
  }
  if (!s.protocol_counters.empty()) {
    std::cout << "protocol counters:";
    for (const auto& [name, value] : s.protocol_counters) std::cout << " " << name << " " << value;
    std::cout << "\n";
  }
  if (world.buggify() != nullptr) {
    uint64_t enabled = 0;
    uint64_t firings = 0;
    for (const auto& [site, stats] : world.buggify()->sites()) {
      enabled += stats.enabled ? 1 : 0;
      firings += stats.firings;
      if (verbose || stats.enabled) {
        std::cout << "buggify site " << site << ": "
                  << (stats.enabled ? "enabled" : "disabled") << ", fired "
                  << stats.firings << " of " << stats.evaluations << "\n";
      }
    }
    std::cout << "buggify: " << world.buggify()->sites().size() << " sites met, "
              << enabled << " enabled, " << firings << " firings\n";
  }
  const size_t shown = verbose ? s.violations.size() : std::min<size_t>(s.violations.size(), 10);
  std::cout << "violations: " << s.violations.size() << "\n";
  for (size_t i = 0; i < shown; ++i) std::cout << "  " << s.violations[i] << "\n";
  if (!s.liveness_failure.empty()) {
    std::cout << "not converged: " << s.liveness_failure << "\n";
  }
  if (s.converged_after_ns >= 0) {
    std::cout << "converged " << Seconds(s.converged_after_ns)
              << " after faults stopped\n";
  }
  char hash[32];
  std::snprintf(hash, sizeof(hash), "%016llx", static_cast<unsigned long long>(s.trace_hash));
  std::cout << "verdict: " << VerdictName(s.verdict) << "\n"
            << "trace hash: " << hash << "\n";
}

int Diff(const std::vector<std::string>& files) {
  mks::Result<std::string> diff = mks::sim::DiffTraceFiles(files[0], files[1]);
  if (!diff.ok()) {
    std::cerr << "mks-sim: " << diff.status().ToString() << "\n";
    return kExitInvalid;
  }
  if (diff->empty()) {
    std::cout << "traces are identical\n";
    return kExitPass;
  }
  std::cout << *diff << "\n";
  return 1;
}

// A scenario file and the protocol it names, or nullopt after printing why
// either is invalid.
struct LoadedScenario {
  mks::sim::Scenario scenario;
  std::unique_ptr<mks::sim::Protocol> protocol;
};
std::optional<LoadedScenario> Load(const std::string& path) {
  mks::Result<mks::sim::Scenario> scenario = mks::sim::LoadScenario(path);
  if (!scenario.ok()) {
    std::cerr << "mks-sim: invalid scenario: " << scenario.status().message() << "\n";
    return std::nullopt;
  }
  mks::Result<std::unique_ptr<mks::sim::Protocol>> protocol =
      mks::sim::MakeProtocol(*scenario);
  if (!protocol.ok()) {
    std::cerr << "mks-sim: " << protocol.status().message() << "\n";
    return std::nullopt;
  }
  return LoadedScenario{std::move(*scenario), std::move(*protocol)};
}

int Simulate(std::optional<uint64_t> seed_flag, const std::string& path,
             const std::string& trace_path, bool verbose) {
  std::optional<LoadedScenario> loaded = Load(path);
  if (!loaded.has_value()) return kExitInvalid;
  mks::sim::Tracer tracer;
  if (!trace_path.empty()) {
    const mks::Status opened = tracer.OpenFile(trace_path);
    if (!opened.ok()) {
      std::cerr << "mks-sim: " << opened.message() << "\n";
      return kExitInvalid;
    }
  }
  const uint64_t seed = mks::sim::ReplaySeed(loaded->scenario, seed_flag);
  mks::sim::World world(loaded->scenario, seed, loaded->protocol.get(), &tracer);
  std::cout << world.DescribeParameters() << std::flush;
  const mks::sim::RunSummary summary = world.Run();
  tracer.Flush();
  PrintSummary(world, summary, verbose);
  switch (summary.verdict) {
    case mks::sim::Verdict::kPass: return kExitPass;
    case mks::sim::Verdict::kSafetyViolation: return kExitSafety;
    case mks::sim::Verdict::kLivenessViolation: return kExitLiveness;
  }
  return kExitAssertion;
}

// Checks the scenario once here, so that a bad file is one error, not one
// per seed.
int Sweep(const std::string& seeds_text, int jobs, const std::string& path,
          const std::string& invoked_as, bool verbose) {
  const std::optional<mks::tools::SeedRange> range = mks::tools::ParseSeedRange(seeds_text);
  if (!range.has_value()) {
    std::cerr << "mks-sim: --seeds wants A..B with A <= B, got '" << seeds_text << "'\n";
    return kExitInvalid;
  }
  if (!Load(path).has_value()) return kExitInvalid;
  mks::tools::SweepOptions options;
  options.seeds = *range;
  options.jobs = jobs;
  options.scenario_path = path;
  options.invoked_as = invoked_as;
  options.verbose = verbose;
  std::cout << "sweep: " << path << ", seeds " << range->first << ".." << range->last
            << ", " << jobs << " job" << (jobs == 1 ? "" : "s") << "\n"
            << std::flush;
  return mks::tools::RunSweep(options);
}

}  // namespace

int main(int argc, char** argv) {
  std::signal(SIGABRT, OnAbort);
  CLI::App app{"mks-sim: deterministic simulation of a my-key-store cluster"};
  uint64_t seed = 1;
  std::string scenario_path;
  std::string trace_path;
  std::vector<std::string> diff_files;
  bool verbose = false;
  std::string seeds_text;
  int jobs = 1;
  CLI::Option* seed_option =
      app.add_option("--seed", seed,
                     "the seed every random choice derives from (default: the "
                     "scenario's seed: field, else 1)");
  CLI::Option* seeds_option =
      app.add_option("--seeds", seeds_text, "sweep the seeds A..B, stopping at the first failure");
  CLI::Option* jobs_option =
      app.add_option("--jobs", jobs, "worker processes for --seeds (default 1)")
          ->check(CLI::Range(1, 256));
  seeds_option->excludes(seed_option);
  app.add_option("scenario", scenario_path, "the scenario file (YAML)");
  CLI::Option* trace_option =
      app.add_option("--trace", trace_path, "write every traced event to this file");
  app.add_option("--diff", diff_files, "compare two trace files: --diff A B")
      ->expected(2);
  app.add_flag("-v,--verbose", verbose,
               "print every violation and BUGGIFY site; with --seeds, a line per seed");
  seeds_option->excludes(trace_option);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& help) {
    return app.exit(help);
  } catch (const CLI::ParseError& error) {
    app.exit(error);
    return kExitInvalid;
  }
  if (!diff_files.empty()) return Diff(diff_files);
  if (scenario_path.empty()) {
    std::cerr << "mks-sim: a scenario file is required\n" << app.help();
    return kExitInvalid;
  }
  std::optional<uint64_t> seed_flag;
  if (seed_option->count() > 0) seed_flag = seed;
  if (seeds_text.empty()) {
    if (jobs_option->count() > 0) {
      std::cerr << "mks-sim: --jobs needs --seeds A..B\n";
      return kExitInvalid;
    }
    return Simulate(seed_flag, scenario_path, trace_path, verbose);
  }
  return Sweep(seeds_text, jobs, scenario_path, argv[0], verbose);
}
