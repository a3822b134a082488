// The scenario writer: the inverse of the parser in sim/scenario.h.
//
// Generated and shrunk cases become files a person can read and mks-sim can
// replay, so what is written must parse back to the very same Scenario
// (except `path` and the timeline events' `line`, which say where a scenario
// was read from). Every field the parser knows is written when it differs
// from its default; a scenario's own `seed`, `expect` and `canaries` go
// first, so a regression file says at its top how to replay it.
#pragma once

#include <string>
#include <string_view>

#include "core/status.h"
#include "sim/scenario.h"

namespace mks::sim {

// Returns `scenario` as YAML that ParseScenario reads back to an equal
// Scenario. `comment` (any number of lines) is written first, each line
// prefixed with "# ". Requires a scenario the parser could have produced
// (asserted where cheap: node ids in range, quorums within replicas,
// rate families with a rate).
std::string WriteScenario(const Scenario& scenario, std::string_view comment);

// Writes WriteScenario(scenario, comment) to `path`, replacing any file
// there. IOError when the file cannot be written.
Status WriteScenarioFile(const Scenario& scenario, std::string_view comment,
                         const std::string& path);

}  // namespace mks::sim
