// World: a whole cluster, its clients and its faults in one OS thread.
//
// The world owns one Scheduler whose timer queue, ordered by (deadline,
// creation sequence), is the simulator's only event queue: network
// deliveries, node timers and fibers, client workloads, scripted faults and
// random fault families are all timers on it. Run() jumps true time to the
// next deadline, fires that timer, runs the fibers it woke, and repeats.
// Every node is a process of the scheduler: a crash kills the process (and
// its pending timers and deliveries) and crashes its SimDisk; a restart
// creates a new process over the same disk and clock; a pause holds the
// process's timers and fibers.
//
// Every random choice derives from the seed through named Random streams:
// "network", "faults", "swarm", "clocks", "buggify", "node/<id>/<incarnation>",
// "disk/<id>", "client/<id>". So the same seed and scenario give the same
// trace hash.
//
// A run has two phases. The safety phase lasts scenario.duration_ms: the
// workload runs, faults fire, and every completed operation is checked. Then
// faults stop (partitions heal, clogs clear, crashed nodes restart, paused
// nodes resume, loss/duplication/reordering stop), clients stop issuing, and
// the cluster must converge within liveness_bound_ms.
#pragma once

#include <array>
#include <map>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/buggify.h"
#include "core/runtime/scheduler.h"
#include "sim/gossip_checker.h"
#include "sim/raft_checker.h"
#include "sim/protocol.h"
#include "sim/scenario.h"
#include "sim/sim_clock.h"
#include "sim/sim_disk.h"
#include "sim/sim_network.h"
#include "sim/trace.h"

namespace mks::sim {

// Endpoint ids of clients start here; node ids are 1..nodes (<= 1000).
inline constexpr NodeId kFirstClientId = 1001;

enum class Verdict : uint8_t { kPass, kSafetyViolation, kLivenessViolation };
std::string_view VerdictName(Verdict verdict);

struct RunSummary {
  Verdict verdict = Verdict::kPass;
  std::vector<std::string> violations;   // safety
  std::string liveness_failure;          // why convergence was not reached
  int64_t simulated_ns = 0;
  int64_t converged_after_ns = -1;       // from the end of the safety phase
  uint64_t events = 0;                   // timers fired
  uint64_t trace_hash = 0;
  uint64_t trace_events = 0;
  NetworkStats network;
  std::array<uint64_t, kFaultFamilyCount> random_faults{};
  std::array<uint64_t, kFaultFamilyCount> scripted_faults{};
  std::array<uint64_t, 4> outcomes{};    // indexed by Outcome
  // ProtocolNode::Counters, summed over every node and incarnation.
  std::map<std::string, uint64_t> protocol_counters;
  GossipCheckStats gossip;  // all zero when no node ran gossip
  RaftCheckStats raft;      // all zero when no node ran Raft
};

class World final : private HistorySink {
 public:
  // `protocol` and `tracer` must outlive the world. The scenario is copied.
  World(const Scenario& scenario, uint64_t seed, Protocol* protocol,
        Tracer* tracer);
  ~World() override;
  World(const World&) = delete;
  World& operator=(const World&) = delete;

  // One line per derived parameter: seed, scenario, clocks, swarm choices,
  // BUGGIFY settings. Printed before a run so any run can be replayed.
  std::string DescribeParameters() const;

  // Starts the nodes, clients, timeline and fault families (once), then runs
  // both phases to a verdict.
  RunSummary Run();

  // ---- For tests and scripted faults ----
  // Starts every node and client and schedules the faults; Run() does it.
  void Start();
  // Advances the world until true time `until_ns` (events at it included),
  // or until the verdict is in. Requires Start().
  void RunUntil(int64_t until_ns);
  // Kills the node's process at once (fibers unwind, its timers and the
  // messages in flight to it vanish), destroys its ProtocolNode and crashes
  // its SimDisk. No-op when the node is already down.
  void CrashNode(NodeId node);
  // Starts a new incarnation over the node's disk and clock. No-op unless
  // the node is down, and for a standby node that never joined.
  void RestartNode(NodeId node);
  // Boots standby node `node` for the first time, joining through `seed`.
  // No-op unless it is a standby node that never started.
  void JoinNode(NodeId node, NodeId seed);
  // Freezes a running node: it runs nothing and receives nothing (its
  // deliveries wait) until ResumeNode. No-op unless the node is running.
  void PauseNode(NodeId node);
  // Thaws a paused node; what waited runs now, in order. No-op unless paused.
  void ResumeNode(NodeId node);
  // True while the node is running or paused.
  bool IsNodeUp(NodeId node) const;

  int64_t now_ns() const { return true_time_.now_ns(); }
  runtime::Scheduler& scheduler() { return scheduler_; }
  SimNetwork& network() { return network_; }
  SimClock& clock(NodeId node);
  SimDisk& disk(NodeId node);
  // The running incarnation of `node`, or null while it is down.
  ProtocolNode* node(NodeId node);
  // True when the seed's swarm choice left `family` on.
  bool family_enabled(FaultFamily family) const {
    return family_on_[static_cast<size_t>(family)];
  }
  const Buggify* buggify() const { return buggify_.get(); }
  const GossipChecker& gossip_checker() const { return gossip_checker_; }
  const RaftChecker& raft_checker() const { return raft_checker_; }
  const RunSummary& summary() const { return summary_; }
  const Scenario& scenario() const { return scenario_; }

 private:
  enum class NodeState : uint8_t { kDown, kRunning, kPaused };
  // Adds `node`'s counters to the summary: before a crash destroys an
  // incarnation, and for the live ones at the end of the run.
  void HarvestCounters(const ProtocolNode& node);
  struct NodeSlot {
    NodeId id = kNoNode;
    std::unique_ptr<SimClock> clock;
    std::unique_ptr<SimDisk> disk;
    Network* endpoint = nullptr;
    runtime::ProcessId process = 0;  // 0 while down
    NodeState state = NodeState::kDown;
    uint32_t incarnation = 0;
    std::unique_ptr<ProtocolNode> node;  // null while down
    bool member = true;      // false for a standby node (id > scenario.nodes)
    NodeId seed = kNoNode;   // a joined standby node's seed
    int64_t down_since_ns = -1;  // true time of the last crash; -1 while up
  };
  struct ClientSlot {
    NodeId id = kNoNode;
    std::unique_ptr<SimClock> clock;
    Network* endpoint = nullptr;
    runtime::ProcessId process = 0;
    std::unique_ptr<WorkloadClient> client;
  };

  NodeSlot& SlotOf(NodeId node);
  void StartNode(NodeSlot& slot);
  void StartClient(ClientSlot& slot);
  void ChooseSwarm();
  void ScheduleTimeline();
  void ApplyTimelineEvent(const TimelineEvent& event);
  void ScheduleNextFault(FaultFamily family);
  void InjectRandomFault(FaultFamily family);
  void InjectRandomPartition(int64_t duration_ns);
  void InjectRandomCrashOrPause(FaultFamily family, int64_t duration_ns);
  void InjectRandomClog(int64_t until_ns);
  // Flips a bit of one record at rest on a random node, within the bounds
  // the cluster must survive, and tells the checker.
  void InjectBitRot();
  void InjectRateBurst(FaultFamily family, int64_t duration_ns);
  // Tells the gossip checker that a network fault cuts `nodes` off until
  // `until_ns` (INT64_MAX: until healed).
  // With raft.dead_remove_after_ms: members down long enough at the end of
  // the safety phase must have been removed, those down a shorter while
  // past the setting may have been.
  void ExpectLongDeadRemoved();
  // With the family's leader_percent, the metadata log's leader when it
  // is among `candidates`; nullopt otherwise (pick at random).
  std::optional<NodeId> AimAtLeader(FaultFamily family, const std::vector<NodeId>& candidates);
  void NoteNetworkFault(const std::vector<NodeId>& nodes, int64_t until_ns);
  // What a reader of a violation needs to know of the world right now: the
  // nodes down or paused, the network's rates, and the latest faults.
  std::string FaultsInForce() const;
  void RecordFault(FaultFamily family, bool scripted, uint64_t a, uint64_t b,
                   std::string_view what);
  void EndSafetyPhase();
  void CheckLiveness();
  void Finish(Verdict verdict);
  // Copies the checker's violations not yet seen into the summary and, if
  // there were any, finishes the run as a safety violation. Returns whether
  // there were.
  bool TakeCheckerViolations();
  uint32_t CountInState(NodeState state) const;
  std::vector<NodeId> NodesInState(NodeState state) const;
  int64_t DrawMs(int64_t low_ms, int64_t high_ms);

  // HistorySink: clients report here; the world counts, traces, and checks.
  void Invoke(const Operation& operation) override;
  void Complete(const Operation& operation) override;

  const Scenario scenario_;
  const uint64_t seed_;
  Protocol* const protocol_;
  Tracer* const tracer_;
  Random root_;
  Random fault_random_;
  TrueTime true_time_;
  runtime::Scheduler scheduler_;
  SimNetwork network_;
  std::unique_ptr<Buggify> buggify_;
  runtime::ProcessId world_process_ = 0;  // faults and phases; never dies
  std::vector<NodeSlot> nodes_;           // index = id - 1
  std::vector<ClientSlot> clients_;
  std::vector<NodeId> node_ids_;    // every slot, standby nodes included
  std::vector<NodeId> member_ids_;  // the cluster's initial members
  GossipChecker gossip_checker_;
  RaftChecker raft_checker_;
  // The members the cluster must hold once converged: the first members,
  // plus timeline joins, minus timeline removals; and each removal with
  // the node asked to make it.
  std::set<NodeId> expected_members_;
  std::vector<std::pair<NodeId, NodeId>> pending_removals_;
  std::array<bool, kFaultFamilyCount> family_on_{};
  // The base rates that bursts return to (scripted changes move them).
  uint32_t base_loss_ppm_ = 0;
  uint32_t base_duplicate_ppm_ = 0;
  uint32_t base_reorder_ppm_ = 0;
  bool started_ = false;
  bool faults_active_ = true;   // false once the safety phase ended
  bool done_ = false;
  int64_t safety_end_ns_ = 0;
  size_t checker_violations_seen_ = 0;  // copied into summary_.violations
  size_t gossip_violations_seen_ = 0;
  size_t raft_violations_seen_ = 0;
  // The latest faults, oldest first, at most kRecentFaults of them.
  std::deque<std::string> recent_faults_;
  // Why the last convergence check with every client idle failed.
  std::string last_idle_failure_;
  RunSummary summary_;
};

}  // namespace mks::sim
