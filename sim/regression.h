// Regressions: failing cases kept as scenario files that replay exactly.
//
// A regression file is an ordinary scenario that also records its seed
// (`seed:`) and the verdict it gave when it was written (`expect:`). mks-sim
// replays it with `mks-sim FILE` (the file's seed is used when --seed is not
// given); the regression test replays every file under scenarios/regressions/
// and requires the recorded verdict. When the bug a file caught is fixed, its
// `expect:` becomes "pass" and the file stays, so the bug stays fixed. A file
// whose scenario plants a canary keeps expecting the failure: it proves the
// checker still catches that bug.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/status.h"
#include "sim/scenario.h"
#include "sim/world.h"

namespace mks::sim {

// Runs `scenario` with `seed` over the protocol the scenario names (see
// MakeProtocol), with no trace file. InvalidArgument when the protocol
// refuses the scenario (unknown protocol or canary).
Result<RunSummary> RunScenario(const Scenario& scenario, uint64_t seed);

// The seed a run of `scenario` uses: `flag` (mks-sim --seed) when given,
// else the scenario's own `seed:`, else 1.
uint64_t ReplaySeed(const Scenario& scenario, std::optional<uint64_t> flag);

// Writes `scenario` as a regression file in `directory` (which must exist):
// with `seed:` = seed, `expect:` = the verdict the written case replays to
// (it is parsed back and run once, so the file's recorded verdict and trace
// hash are exactly what `mks-sim FILE` reproduces), and a comment
// that says how it was found (`how_found`), what it broke, and how to replay
// it. The name is "<protocol>-<verdict>-<hash of the content>.yaml", so
// writing the same case twice gives the same file. Returns the path, or
// IOError.
Result<std::string> WriteRegression(const std::string& directory,
                                    Scenario scenario, uint64_t seed,
                                    std::string_view how_found);

}  // namespace mks::sim
