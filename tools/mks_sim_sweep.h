// Seed sweeps for mks-sim: `mks-sim --seeds A..B scenario.yaml [--jobs J]`.
//
// Each seed runs in its own worker process (this same executable, spawned
// with --seed N), so a seed that aborts on an assertion is a verdict like
// any other and cannot take the sweep down. Seeds are handed out in
// ascending order to at most `jobs` workers. When a seed fails, no higher
// seed is started and the higher ones still running are killed; the lower
// ones run to the end, and the lowest failing seed is reported. So the
// result does not depend on `jobs` or on timing: it is the first failing
// seed of the range, or none.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace mks::tools {

struct SeedRange {
  uint64_t first = 0;
  uint64_t last = 0;  // inclusive, >= first
};

// Parses "A..B" (decimal, A <= B). nullopt when malformed.
std::optional<SeedRange> ParseSeedRange(const std::string& text);

struct SweepOptions {
  SeedRange seeds;
  int jobs = 1;                  // worker processes at once, >= 1
  std::string scenario_path;     // as given on the command line
  std::string invoked_as;        // argv[0], for the replay command
  bool verbose = false;          // a line per seed, in seed order
};

// Runs the sweep and prints, on stdout: the failing seed with its verdict,
// the worker's full output, and the command that replays it; then the seeds
// run, the time taken and seeds per minute. Returns mks-sim's exit code for
// the failing seed's verdict (3 safety, 4 liveness, 5 assertion), 0 when
// every seed passed, 2 when a worker could not be started.
int RunSweep(const SweepOptions& options);

}  // namespace mks::tools
