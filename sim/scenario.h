// Scenario: what one simulated run attacks, as read from a YAML file.
//
// A scenario names the protocol under test, the cluster, the store's
// replication settings, the workload, the network's base behaviour, the
// nodes' clocks, a timeline of scripted faults, random fault families with
// their rates, swarm settings and BUGGIFY settings, and the two phase
// lengths (safety phase, then the liveness bound). scenarios/default.yaml
// documents every field. An unknown field or a bad value is an
// InvalidArgument whose message starts with "file:line:".
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/coordinator.h"
#include "core/env.h"
#include "core/status.h"
#include "sim/sim_clock.h"
#include "sim/sim_disk.h"
#include "sim/sim_network.h"

namespace mks::sim {

// The random fault families; each may run, and swarm may switch it off.
enum class FaultFamily : uint8_t {
  kPartition = 0,
  kCrash,
  kPause,
  kClog,
  kClockStep,
  kLoss,
  kDuplicate,
  kReorder,
  kDiskError,  // a node's disk fails writes and syncs with IOError
  kBitRot,     // one bit of one record at rest flips (SimDisk::CorruptRandomRecord)
};
inline constexpr size_t kFaultFamilyCount = 10;
std::string_view FaultFamilyName(FaultFamily family);
std::optional<FaultFamily> ParseFaultFamily(std::string_view name);
// Whether a family's faults last (duration_ms) or happen at an instant
// (clock_step, bit_rot).
bool FamilyHasDuration(FaultFamily family);

// A random fault family: a fault every interval, undone after a duration.
struct FamilyConfig {
  bool enabled = false;
  int64_t interval_min_ms = 1000;
  int64_t interval_max_ms = 5000;
  int64_t duration_min_ms = 100;
  int64_t duration_max_ms = 1000;
  uint32_t ppm = 0;        // loss, duplicate, reorder, disk_error: the rate
  int64_t step_max_ms = 0; // clock_step: steps are uniform in [-max, max]
  uint32_t max_down = 1;   // crash, pause: nodes down or paused at once
  // partition, crash, pause, clock_step, disk_error: the percentage of
  // faults aimed at the metadata log's current leader (when there is one
  // it can hit) instead of a random node; a partition then isolates it,
  // cuts it off from one node, puts it on one side of a split, or makes it
  // the bridge.
  uint32_t leader_percent = 0;
  friend bool operator==(const FamilyConfig&, const FamilyConfig&) = default;
};

enum class TimelineAction : uint8_t {
  kIsolate,    // nodes
  kSplit,      // side_a, side_b
  kCut,        // from, to (one way)
  kBridge,     // side_a, side_b, via: the sides are cut, `via` reaches both
  kHeal,
  kCrash,      // nodes
  kRestart,    // nodes
  kPause,      // nodes
  kResume,     // nodes
  kClogNode,   // nodes, duration_ms
  kClogLink,   // from, to, duration_ms
  kClockStep,  // nodes, step_ms
  kLossPpm,    // ppm
  kDuplicatePpm,
  kReorderPpm,
  kJoin,       // nodes (standby ones), via: the seed they join through
  kRemove,     // nodes (members to remove), via: the member asked to remove them
  kDecommission,  // nodes (members), each asked to make itself leave
};
std::string_view TimelineActionName(TimelineAction action);
// The family a scripted action counts under.
FaultFamily FamilyOf(TimelineAction action);

struct TimelineEvent {
  int64_t at_ms = 0;
  TimelineAction action = TimelineAction::kHeal;
  std::vector<NodeId> nodes;
  std::vector<NodeId> side_a;
  std::vector<NodeId> side_b;
  NodeId from = kNoNode;
  NodeId to = kNoNode;
  NodeId via = kNoNode;
  int64_t duration_ms = 0;
  int64_t step_ms = 0;
  uint32_t ppm = 0;
  int line = 0;  // in the scenario file, for messages
  friend bool operator==(const TimelineEvent&, const TimelineEvent&) = default;
};

struct Workload {
  uint32_t clients = 2;
  uint32_t ops_per_second = 50;  // per client
  uint32_t key_space = 16;
  uint32_t read_percent = 50;    // read + write + delete == 100
  uint32_t write_percent = 50;
  uint32_t delete_percent = 0;
  uint32_t value_bytes_min = 8;
  uint32_t value_bytes_max = 64;
  int64_t request_timeout_ms = 1000;
  // Per-request consistency (kv): each read, and each write or delete,
  // draws its level uniformly from these lists; an empty list means the
  // cluster's default (Scenario::read_consistency / write_consistency)
  // for every request. Counts must be <= replicas.
  std::vector<Consistency> read_levels;
  std::vector<Consistency> write_levels;
  friend bool operator==(const Workload&, const Workload&) = default;
};

// Whether faults of `kind` pick a node, so they can aim at the leader.
inline bool FamilyTargetsNode(FaultFamily kind) {
  return kind == FaultFamily::kPartition || kind == FaultFamily::kCrash ||
         kind == FaultFamily::kPause || kind == FaultFamily::kClockStep ||
         kind == FaultFamily::kDiskError;
}

// Gossip membership (core/gossip) in the simulated nodes, and what the
// world's gossip checker holds them to (sim/gossip_checker.h). The defaults
// are short periods, so store scenarios converge within their bounds;
// gossip scenarios give production's (probe_interval_ms: 1000, ...).
struct GossipSettings {
  bool enabled = true;  // store nodes run gossip (gossip nodes always do)
  int64_t probe_interval_ms = 200;
  int64_t probe_timeout_ms = 100;
  uint32_t indirect_checks = 3;
  uint32_t suspicion_mult = 4;
  uint32_t retransmit_mult = 4;
  int64_t push_pull_interval_ms = 2000;
  // Every live member must hold a crashed one dead within this bound;
  // 0: derived from the settings (the longest suspicion plus dissemination).
  int64_t detect_bound_ms = 0;
  // Dead declarations of live, reachable, running members tolerated (a
  // scenario above 10% loss may allow a few).
  uint32_t max_false_dead = 0;
  // Nodes holding other cluster secrets (each its own): everyone else must
  // refuse them.
  std::vector<NodeId> wrong_secret;
  friend bool operator==(const GossipSettings&, const GossipSettings&) = default;
};

// The cluster metadata log (core/raft) of store nodes, which every kv
// scenario runs: the scenario's members bootstrap it. Defaults are etcd's
// (heartbeat 100 ms, election timeout 1000 ms); the epoch advances faster
// than production's so that runs see it move.
struct RaftSettings {
  int64_t election_timeout_ms = 1000;  // drawn from [this, 2 * this)
  int64_t heartbeat_ms = 100;
  int64_t epoch_interval_ms = 5000;    // 0: only membership changes
  uint64_t snapshot_every = 64;        // applied entries between snapshots
  // Entries per append message: a small cap makes a leader replicate an
  // older term's entries apart from its own (Raft's figure 8).
  uint32_t max_entries_per_append = 64;
  bool pre_vote = true;
  bool check_quorum = true;
  // The leader removes a member dead in gossip this long; 0: never.
  int64_t dead_remove_after_ms = 0;
  friend bool operator==(const RaftSettings&, const RaftSettings&) = default;
};

// Streaming of partitions to new replicas (core/stream.h).
struct StreamSettings {
  uint32_t batch_records = 512;
  uint64_t rate_bytes_per_s = 0;  // 0: no limit
  uint32_t max_transfers = 2;
  friend bool operator==(const StreamSettings&, const StreamSettings&) = default;
};

struct NodeClock {
  NodeId node = kNoNode;
  ClockModel model;
  friend bool operator==(const NodeClock&, const NodeClock&) = default;
};

struct Scenario {
  std::string path;               // where it was read from
  std::string protocol = "counter";
  uint32_t nodes = 3;
  // Nodes nodes+1 .. nodes+standby_nodes exist but start only when a
  // timeline `join` event boots them, knowing one seed address; they are
  // not in the store's member list (they own nothing).
  uint32_t standby_nodes = 0;
  GossipSettings gossip;
  RaftSettings raft;
  StreamSettings stream;
  uint32_t replicas = 3;          // N
  // The cluster's default R and W: a count (<= replicas) or a level (ONE,
  // QUORUM, ALL); never kDefault. YAML: read_quorum / write_quorum.
  Consistency read_consistency = Consistency::Count(2);
  Consistency write_consistency = Consistency::Count(2);
  uint32_t partitions = 64;       // Q, a power of two
  // The member list in seat order (core/member_list.h), as if the cluster
  // had grown by joins in this order: a permutation of 1..nodes, or empty
  // for ascending ids. Placement follows the seats.
  std::vector<NodeId> seats;
  int64_t duration_ms = 10000;    // the safety phase
  int64_t liveness_bound_ms = 10000;
  Workload workload;
  NetworkConfig network;
  DiskConfig disk;
  int64_t clock_max_offset_ms = 0;  // random offsets in [-max, max]
  int64_t clock_max_drift_ppm = 0;  // random drift in [-max, max]
  std::vector<NodeClock> clocks;    // explicit models override random ones
  std::vector<TimelineEvent> timeline;  // sorted by at_ms, stable
  std::array<FamilyConfig, kFaultFamilyCount> faults;
  std::vector<FaultFamily> swarm_may_disable;
  uint32_t swarm_disable_percent = 50;
  bool buggify_enabled = true;
  uint32_t buggify_site_percent = 25;
  uint32_t buggify_fire_ppm = 20000;
  // Replay: the seed mks-sim uses when no --seed is given (a regression
  // file carries its own), and the verdict a regression file records
  // (one of kExpectableVerdicts; empty when none is recorded).
  std::optional<uint64_t> seed;
  std::string expect;
  // How many seeds the chaos suite sweeps this file for (tools/chaos_suite.sh);
  // absent: the suite's own count. For scenarios costing seconds a seed.
  std::optional<uint32_t> suite_seeds;
  // Bugs the protocol plants on purpose, by name, to prove the checker
  // catches them. The protocol refuses names it does not know.
  std::vector<std::string> canaries;

  // Every node id the run may start: the cluster and the standby nodes.
  uint32_t total_nodes() const { return nodes + standby_nodes; }
  FamilyConfig& family(FaultFamily f) { return faults[static_cast<size_t>(f)]; }
  const FamilyConfig& family(FaultFamily f) const {
    return faults[static_cast<size_t>(f)];
  }
  // Every field, `path` and the events' `line` included.
  friend bool operator==(const Scenario&, const Scenario&) = default;
};

// The values `expect:` may take: the verdict names of sim/world.h.
inline constexpr std::array<std::string_view, 3> kExpectableVerdicts = {
    "pass", "safety violation", "liveness violation"};

// Parses `text` as a scenario; `path` is used in messages. Returns
// InvalidArgument ("path:line: what is wrong") for YAML syntax errors,
// unknown fields, missing or out-of-range values.
Result<Scenario> ParseScenario(std::string_view text, const std::string& path);

// Reads and parses the file at `path`. IOError when it cannot be read.
Result<Scenario> LoadScenario(const std::string& path);

// The replies `consistency` needs from `replicas` replicas, by the
// simulator's own arithmetic (ONE 1, QUORUM floor(N/2)+1, ALL N, a count
// itself), kept apart from core's so that a wrong formula there cannot
// fool the checker. Requires a resolved level and a count within 1..N.
uint32_t RequiredCount(Consistency consistency, uint32_t replicas);

// Returns the members of `scenario` in seat order: its `seats`, or 1..nodes
// when it gives none. InvalidArgument when `seats` does not name every node
// 1..nodes exactly once (a scenario built in code skips the parser's check).
Result<std::vector<NodeId>> SeatOrder(const Scenario& scenario);

}  // namespace mks::sim
