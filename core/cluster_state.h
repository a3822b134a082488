// ClusterState: the cluster's metadata, the state machine of its Raft log
// (core/raft, DESIGN section 7): the cluster id, the member list in seat
// order (core/member_list.h), each member's addresses and state, and the
// epoch. Every node applies the same commands in the same order, so nodes
// that applied the same index hold equal states and compute the same ring
// (Ring::Build(members(), epoch(), ...)).
//
// Transitions. Joins and leaves move data, so each is a transition: begun
// by one entry, advanced by entries that say which pending replicas hold
// which partitions, ended by a finish entry. One transition at a time.
// While it runs, `from` is the seat list before it and `to` the one after
// (a join seats the newcomer after every member, a leave hands the
// leaver's seat to the last seat's member: MemberList). A partition
// *changes* when its replicas differ between the rings of the two lists;
// its *pending* replicas are those of `to` that are not of `from`. It
// *flips* (its replicas become to's) when every pending replica reported
// that it holds the partition's data (StreamDone); the transition finishes
// once every changing partition flipped. BuildRing() gives the ring of
// this state: per partition the serving list and the pending replicas,
// and the fence epochs (core/ring.h).
//
// Commands (ClusterCommand in core/proto/mks.proto) are conditional, so a
// proposal retried after an unknown outcome, or a stale one, is harmless:
//  - Add JOINING seats a node that is not seated (after every member) and
//    begins its join; a no-op during a transition or for a seated node. Add
//    NORMAL seats it at once, without a transition (no data moves to it;
//    for clusters that hold none). A removed node may be added again.
//  - Leave turns a NORMAL member LEAVING and begins its leave; a no-op
//    during a transition, for the last member, or for a node not seated.
//  - StreamDone marks partitions as held by a pending replica, and flips
//    those whose pending replicas all hold them; a no-op for another
//    transition.
//  - Finish ends the transition once every changing partition flipped:
//    the joiner turns NORMAL, or the leaver leaves its seat as REMOVED.
//  - SetState moves a seated member from `from` to `to`, else no-op (never
//    the member of a transition).
//  - Remove unseats a member at once (the member of the last seat takes
//    its seat, MemberList::Leave) and keeps it as REMOVED; no-op when not
//    seated. During a transition only its own node may be removed: a
//    joiner's join is abandoned, a leaver's leave ends as if finished. Data
//    that only it held, or that had not streamed yet, is lost to the ring:
//    a forced removal is for a node that is gone with its disk.
//  - AdvanceEpoch raises the epoch when it is still `if_epoch`.
// Every command that changes the state raises the epoch by one; the others
// change nothing at all. A command that does not decode is a no-op too (a
// newer node's command on an older node must not stop the log).
//
// Invariants: members() and the seated records agree seat by seat; a node
// is seated or removed, never both; the epoch never decreases; during a
// transition members() is the larger of its two lists (to for a join,
// from for a leave), its node is JOINING or LEAVING, and a flipped
// partition is one whose pending replicas are all done.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/env.h"
#include "core/gossip/member_table.h"
#include "core/member_list.h"
#include "core/raft/raft.h"
#include "core/ring.h"
#include "core/status.h"

namespace mks {

namespace proto {
class ClusterTransition;
}

enum class MembershipState : uint8_t { kJoining, kNormal, kLeaving, kRemoved };
std::string_view MembershipStateName(MembershipState state);

struct ClusterMember {
  NodeId node = kNoNode;
  MembershipState state = MembershipState::kJoining;
  gossip::Addresses addresses;
  friend bool operator==(const ClusterMember&, const ClusterMember&) = default;
};

// A membership change in progress.
struct Transition {
  enum class Kind : uint8_t { kJoin, kLeave };
  Kind kind = Kind::kJoin;
  NodeId node = kNoNode;  // the joiner or the leaver
  MemberList from;
  MemberList to;
  uint64_t begin_epoch = 0;  // names it
  // Per partition: its pending replicas (empty: it does not change).
  std::vector<std::vector<NodeId>> pending;
  uint32_t changing = 0;  // partitions with pending replicas
  std::map<PartitionId, uint64_t> flipped_at;  // partition -> epoch
  std::set<std::pair<PartitionId, NodeId>> done;

  bool Flipped(PartitionId p) const { return flipped_at.count(p) > 0; }
  bool Done(PartitionId p, NodeId node) const { return done.count({p, node}) > 0; }
};

class ClusterState final : public raft::StateMachine {
 public:
  // `ring` must be the cluster's ring options on every node (valid).
  explicit ClusterState(RingOptions ring = {}) : ring_options_(ring) {}

  // The snapshot of a new cluster `cluster_id` whose members are `seated`
  // in seat order (each NORMAL), at epoch 1: what every bootstrapping node
  // of the cluster hands to raft::Raft::Bootstrap. InvalidArgument for an
  // empty id, no member, kNoNode or a node twice.
  static Result<std::string> Initial(const std::string& cluster_id,
                                     const std::vector<ClusterMember>& seated);

  // Commands, encoded for raft::Raft::Propose.
  static std::string AddCommand(const ClusterMember& member);
  static std::string SetStateCommand(NodeId node, MembershipState from, MembershipState to);
  static std::string RemoveCommand(NodeId node);
  static std::string AdvanceEpochCommand(uint64_t if_epoch);
  static std::string LeaveCommand(NodeId node);
  static std::string StreamDoneCommand(uint64_t begin_epoch, NodeId node,
                                       const std::vector<PartitionId>& partitions);
  static std::string FinishCommand(uint64_t begin_epoch);

  // The ring of this state (see above); requires a restored state with a
  // member (asserted).
  Ring BuildRing() const;
  // The transition in progress, or null.
  const Transition* transition() const {
    return transition_.has_value() ? &*transition_ : nullptr;
  }
  // Whether the transition in progress may finish (every changing
  // partition flipped).
  bool TransitionComplete() const;

  // raft::StateMachine.
  void Apply(raft::Index index, const std::string& command) override;
  std::string Snapshot() const override;
  Status Restore(const std::string& snapshot) override;

  const std::string& cluster_id() const { return cluster_id_; }
  // 0 before the first Restore; >= 1 after.
  uint64_t epoch() const { return epoch_; }
  const MemberList& members() const { return members_; }
  // The seated member `node`, or nullopt.
  std::optional<ClusterMember> Seated(NodeId node) const;
  // Seated records in seat order.
  const std::vector<ClusterMember>& seated() const { return seated_; }
  const std::map<NodeId, ClusterMember>& removed() const { return removed_; }
  // Commands that changed the state, and those that were no-ops.
  uint64_t changes_applied() const { return changes_applied_; }
  uint64_t no_ops_applied() const { return no_ops_applied_; }

 private:
  // Whether the command changed the state.
  bool ApplyAdd(const ClusterMember& member, uint64_t next_epoch);
  bool ApplySetState(NodeId node, MembershipState from, MembershipState to);
  bool ApplyRemove(NodeId node, uint64_t next_epoch);
  bool ApplyLeave(NodeId node, uint64_t next_epoch);
  bool ApplyStreamDone(uint64_t begin_epoch, NodeId node,
                       const std::vector<PartitionId>& partitions, uint64_t next_epoch);
  bool ApplyFinish(uint64_t begin_epoch, uint64_t next_epoch);
  // Unseats `node` and keeps it as removed.
  void Unseat(NodeId node);
  // Starts a transition from `from` to members_ (a join) or from members_
  // to `to` (a leave), filling in its pending replicas.
  void Begin(Transition::Kind kind, NodeId node, MemberList from, MemberList to,
             uint64_t begin_epoch);
  void FillPending(Transition* transition) const;
  Result<Transition> RestoreTransition(const proto::ClusterTransition& in,
                                       const MemberList& members) const;
  void CheckInvariants() const;

  RingOptions ring_options_;
  std::optional<Transition> transition_;
  // The epoch of the last change of placement while no transition ran.
  uint64_t placement_epoch_ = 0;

  std::string cluster_id_;
  uint64_t epoch_ = 0;
  MemberList members_;
  std::vector<ClusterMember> seated_;  // seated_[i].node == members_.by_seat()[i]
  std::map<NodeId, ClusterMember> removed_;
  uint64_t changes_applied_ = 0;
  uint64_t no_ops_applied_ = 0;
};

}  // namespace mks
