// RaftChecker: what the world holds every node's Raft (core/raft) to, in
// every scenario whose nodes run the cluster's metadata log.
//
// Every node's Raft reports to observer() from its start (facts as they
// become true: a leader, a granted vote, an applied entry, an installed
// snapshot, a durable hard state), and the world tells the checker which
// incarnation runs. What the checker remembers outlives every incarnation,
// so a fact forgotten by a crash is still held against the node.
// Invariants (DESIGN invariant 10):
//  * Election safety: at most one node becomes leader in a term.
//  * One vote per term, across restarts: a node grants at most one
//    candidate per term, and its durable vote in a term names that one;
//    a vote is durable (term and candidate synced) before it is granted.
//  * Own-term commit (Raft's figure 8 rule): a leader commits by counting
//    replicas only an entry of its own term.
//  * Durable term: a node's durable term never decreases, across restarts
//    (lost unsynced writes included).
//  * State-machine safety: every node applies the same entry (term and
//    bytes) at each index, each index once per incarnation and in order; a
//    snapshot installed at an index carries that index's term.
//  * Ring agreement: nodes that applied the same index hold the same
//    metadata (member list in seat order, states, epoch), hence compute the
//    same ring.
//  * Leader completeness: a new leader's log holds every entry any node
//    has applied, with its term (or covers it by its snapshot).
//  * Log matching (at convergence): every running node's log agrees with
//    the leader's on every index both hold up to the leader's commit.
// Liveness (CheckConverged): once faults stop, one leader leads the highest
// term among running nodes, and every entry its log held when the first
// check saw it lead is committed and applied by every running member of
// its configuration; its metadata seats the expected members (the first
// ones, plus joins, minus removals) and its configuration holds exactly
// them.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "core/cluster_state.h"
#include "core/env.h"
#include "core/raft/raft.h"
#include "core/status.h"

namespace mks::sim {

struct RaftCheckStats {
  uint64_t leaders_elected = 0;  // BecameLeader, over all terms
  uint64_t highest_term = 0;
  uint64_t entries_applied = 0;  // over all nodes
  uint64_t snapshots_installed = 0;
  uint64_t highest_index = 0;    // applied anywhere
};

class RaftChecker {
 public:
  RaftChecker();
  RaftChecker(const RaftChecker&) = delete;
  RaftChecker& operator=(const RaftChecker&) = delete;

  // What every node's Raft reports to (NodeOptions::raft_observer).
  raft::RaftObserver* observer() { return &observer_; }

  // A new incarnation of `node` runs `raft` over `state` (both live until
  // NodeCrashed). Its replay of its own log, reported before this call,
  // was checked against the entries, not yet against the states.
  void NodeStarted(NodeId node, const raft::Raft* raft, const ClusterState* state);
  void NodeCrashed(NodeId node);

  // OK once the cluster's metadata log has settled (see the liveness rule
  // above); Unavailable saying what is missing otherwise, Corruption for a
  // log that does not match the leader's. The leader keeps appending, so
  // "its last entry" is the last it held when a call first saw its
  // leadership: call it repeatedly (the world polls).
  Status CheckConverged();

  // The members the leader's metadata must seat once converged, and those
  // it may seat or not (a removal that may or may not have happened).
  void ExpectMembers(std::set<NodeId> members, std::set<NodeId> optional = {}) {
    expected_members_ = std::move(members);
    optional_members_ = std::move(optional);
  }

  // The running leader of the highest term, if any (for faults that aim
  // at it).
  std::optional<NodeId> Leader() const;

  const std::vector<std::string>& violations() const { return violations_; }
  const RaftCheckStats& stats() const { return stats_; }
  // Whether any node reported.
  bool active() const { return active_; }

 private:
  class Observer final : public raft::RaftObserver {
   public:
    explicit Observer(RaftChecker* checker) : checker_(checker) {}
    void BecameLeader(NodeId node, raft::Term term) override;
    void VoteGranted(NodeId node, raft::Term term, NodeId candidate) override;
    void CommittedByCount(NodeId node, raft::Term term, raft::Index index,
                          raft::Term entry_term) override;
    void Applied(NodeId node, const raft::Entry& entry) override;
    void SnapshotInstalled(NodeId node, raft::Index index, raft::Term term) override;
    void HardStateDurable(NodeId node, const raft::HardState& hard) override;

   private:
    RaftChecker* const checker_;
  };
  struct EntryFact {
    raft::Term term = 0;
    uint32_t crc = 0;  // of the entry's type and bytes
    NodeId first = kNoNode;
  };
  struct NodeFacts {
    const raft::Raft* raft = nullptr;  // null while down
    const ClusterState* state = nullptr;
    // This incarnation's last applied index; nullopt before its first.
    std::optional<raft::Index> applied;
    raft::Term durable_term = 0;  // over all incarnations
    std::map<raft::Term, NodeId> votes;  // over all incarnations
  };

  void OnLeader(NodeId node, raft::Term term);
  void OnGrant(NodeId node, raft::Term term, NodeId candidate);
  void OnVote(NodeId node, raft::Term term, NodeId candidate, const char* how);
  void OnApplied(NodeId node, const raft::Entry& entry);
  void OnSnapshot(NodeId node, raft::Index index, raft::Term term);
  void OnDurable(NodeId node, const raft::HardState& hard);
  void CheckState(NodeId node, raft::Index index);
  const raft::Raft* LeaderRaft() const;
  void Violation(std::string what) { violations_.push_back("raft: " + std::move(what)); }

  Observer observer_;
  std::map<NodeId, NodeFacts> nodes_;
  std::map<raft::Term, NodeId> leaders_;
  std::map<raft::Index, EntryFact> entries_;  // applied somewhere
  // The metadata after applying each index (CRC of its snapshot), where a
  // registered node applied it.
  std::map<raft::Index, std::pair<uint32_t, NodeId>> states_;
  bool active_ = false;
  std::set<NodeId> expected_members_;
  std::set<NodeId> optional_members_;
  // The leadership CheckConverged last saw, and its last index then.
  std::pair<NodeId, raft::Term> settle_leadership_{kNoNode, 0};
  raft::Index settle_target_ = 0;
  RaftCheckStats stats_;
  std::vector<std::string> violations_;
};

}  // namespace mks::sim
