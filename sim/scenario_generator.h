// A RapidCheck generator of whole scenarios, for property-based replay.
//
// Every generated Scenario is one the parser could have produced, so
// WriteScenario turns it into a file that parses back to the same Scenario
// and that mks-sim replays exactly (the generated seed is the scenario's own
// `seed:`). The generator knows nothing of the protocol beyond its name:
// cluster size, store settings (N from 1 to 5, R and W as levels or counts,
// partitions), per-request consistency levels, the
// workload, the network, clocks, a scripted timeline, the random fault
// families, swarm and BUGGIFY are all drawn here, for any protocol.
//
// Shrinking goes toward small, calm cases: one node, no timeline events,
// families off, rates and offsets zero, a short safety phase. The liveness
// bound is not drawn: a shrunk case must fail for the reason the original
// did, not because it was given too little time to converge.
#pragma once

#include <rapidcheck.h>

#include <cstdint>
#include <string>
#include <vector>

#include "sim/scenario.h"

namespace mks::sim {

struct GeneratorLimits {
  std::string protocol = "counter";
  std::vector<std::string> canaries;   // copied into every scenario
  uint32_t max_nodes = 7;              // >= 1
  uint32_t max_replicas = 5;           // N <= min(nodes, this)
  uint32_t max_clients = 4;            // >= 1
  int64_t max_duration_ms = 4000;      // the safety phase, >= 100
  size_t max_timeline_events = 8;
  int64_t liveness_bound_ms = 10000;   // fixed, see above
  // Clock models: per-node offsets in [-max, max] ms and drift in
  // [-max, max] ppm. A protocol that refuses timestamps from clocks too far
  // apart (the store: 500 ms, see core/hlc.h) cannot converge beyond that by
  // design, so its limits keep the models inside the tolerance; steps
  // (clock_step faults) may exceed it, since the liveness phase undoes them.
  int64_t max_clock_offset_ms = 2000;
  int64_t max_clock_drift_ppm = kMaxDriftPpm;
  // Whether bit rot may be drawn: only for protocols that restore a damaged
  // record from other replicas (the store; not the counter protocol).
  bool bit_rot = false;
};

// Scenarios within `limits`, each with its `seed` set and `path` =
// "generated".
rc::Gen<Scenario> GenScenario(const GeneratorLimits& limits);

}  // namespace mks::sim
