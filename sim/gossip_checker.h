// GossipChecker: what the world holds every node's gossip view to, in
// every scenario whose nodes run gossip (core/gossip).
//
// The world tells it what it does (starts, crashes, pauses, resumes, and
// the network faults that touch a node) and hands it each node's Gossip as
// it starts; the checker listens to every view's changes. Invariants:
//  * Completeness: a member that crashed and stays down is held dead (or
//    left) by every running member within `detect_bound_ns`, unless that
//    member was disturbed (paused, restarted, partitioned, clogged) in the
//    meantime.
//  * Accuracy: a member declares another dead by its own suspicion only
//    when the other was down, paused or disturbed (or the declarer was)
//    within the accuracy window before it. Other declarations are false;
//    more than `max_false_dead` of them is a violation, and the count is
//    in the summary either way.
//  * Incarnations: a member that starts again announces an incarnation
//    above every one seen of it before (in its own view or any other), and
//    no view lets a dead or left member come back alive without a higher
//    incarnation.
//  * Refusal: no view holding the cluster's secret ever lists, as alive, a
//    node holding another one, nor the other way round.
//  * Agreement (liveness): once faults stop, every running member's view
//    holds the same members in the same states and incarnations (nodes of
//    another secret, each a cluster of its own, excepted).
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "core/env.h"
#include "core/gossip/gossip.h"
#include "core/runtime/scheduler.h"
#include "core/status.h"
#include "sim/scenario.h"

namespace mks::sim {

struct GossipCheckOptions {
  int64_t detect_bound_ns = 0;     // > 0
  int64_t accuracy_window_ns = 0;  // > 0
  uint32_t max_false_dead = 0;
  std::set<NodeId> wrong_secret;   // nodes outside the cluster's secret
};

struct GossipCheckStats {
  uint64_t deaths_declared = 0;     // by a member's own suspicion
  uint64_t false_dead = 0;          // ... of members live and reachable
  uint64_t completeness_checks = 0;
  int64_t worst_detection_ns = 0;   // crash to the last member holding it dead
};

// The gossip options a scenario's nodes run with.
gossip::GossipOptions GossipOptionsFor(const GossipSettings& settings);
// What the checker holds a scenario's nodes to: the scenario's bounds, or
// for detection the longest suspicion (no confirmations, at the cluster's
// size) plus ten periods to spread it.
GossipCheckOptions GossipCheckOptionsFor(const Scenario& scenario);

class GossipChecker {
 public:
  // `scheduler` (the world's, in true time) must outlive the checker.
  GossipChecker(const runtime::Scheduler* scheduler, GossipCheckOptions options);

  // A new incarnation of `node` started at `now_ns`; `gossip` (null when
  // the node runs none) lives until NodeCrashed. Checks its incarnation.
  void NodeStarted(NodeId node, gossip::Gossip* gossip, int64_t now_ns);
  void NodeCrashed(NodeId node, int64_t now_ns);
  void NodePaused(NodeId node, int64_t now_ns);
  void NodeResumed(NodeId node, int64_t now_ns);
  // A network fault (partition, cut, clog) cuts `nodes` off from some of the
  // others from `now_ns` until `until_ns` (INT64_MAX: until NetworkHealed).
  void NetworkFault(const std::vector<NodeId>& nodes, int64_t now_ns, int64_t until_ns);
  // Every partition ended at `now_ns`.
  void NetworkHealed(int64_t now_ns);

  // For the world to call detect_bound_ns after NodeCrashed(node) at
  // `crashed_ns`: checks completeness if the node is still down since then.
  void CheckDetected(NodeId node, int64_t crashed_ns, int64_t now_ns);
  // OK when every running member's view agrees; Unavailable naming the
  // first difference otherwise.
  Status CheckAgreement() const;

  const std::vector<std::string>& violations() const { return violations_; }
  const GossipCheckStats& stats() const { return stats_; }
  const GossipCheckOptions& options() const { return options_; }
  // Whether any node started with gossip.
  bool active() const { return active_; }

 private:
  struct NodeState {
    gossip::Gossip* gossip = nullptr;  // null while down
    bool paused = false;
    int64_t down_since_ns = -1;        // -1 while up
    int64_t last_disturbed_ns = -1;    // paused, resumed, started, network fault
    int64_t disturbed_until_ns = -1;   // a network fault in force until then
    uint64_t highest_incarnation = 0;  // seen of this node anywhere
    bool started_once = false;
    // Invariant while up: the XOR of EntryHash over the view's members
    // other than the node itself, kept by the listener, so agreement is
    // checked in O(nodes) however large the views.
    uint64_t view_hash = 0;
  };
  void OnChange(NodeId viewer, const gossip::MemberChange& change);
  // True when `node` was down, paused or disturbed at some time in
  // [since_ns, now].
  bool Troubled(NodeId node, int64_t since_ns) const;
  void NoteIncarnation(NodeId node, uint64_t incarnation);
  static uint64_t EntryHash(NodeId node, gossip::MemberState state, uint64_t incarnation);
  // The hash of `state`'s whole view, its own record included.
  static uint64_t ViewHash(NodeId id, const NodeState& state);
  // The first member on which the views of `a` and `b` differ.
  static NodeId FirstDifference(const NodeState& a, const NodeState& b);

  const runtime::Scheduler* const scheduler_;
  const GossipCheckOptions options_;
  std::map<NodeId, NodeState> nodes_;
  bool active_ = false;
  GossipCheckStats stats_;
  std::vector<std::string> violations_;
};

}  // namespace mks::sim
