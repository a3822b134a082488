// ClusterState: the cluster's metadata, the state machine of its Raft log
// (core/raft, DESIGN section 7): the cluster id, the member list in seat
// order (core/member_list.h), each member's addresses and state, and the
// epoch. Every node applies the same commands in the same order, so nodes
// that applied the same index hold equal states and compute the same ring
// (Ring::Build(members(), epoch(), ...)).
//
// Commands (ClusterCommand in core/proto/mks.proto) are conditional, so a
// proposal retried after an unknown outcome, or a stale one, is harmless:
//  - Add seats a node that is not seated (after every member, as JOINING
//    or NORMAL); a seated node makes it a no-op. A removed node may be
//    added again.
//  - SetState moves a seated member from `from` to `to`, else no-op.
//  - Remove unseats a member (the member of the last seat takes its seat,
//    MemberList::Leave) and keeps it as REMOVED; no-op when not seated.
//  - AdvanceEpoch raises the epoch when it is still `if_epoch`.
// Every command that changes the state raises the epoch by one; the others
// change nothing at all. A command that does not decode is a no-op too (a
// newer node's command on an older node must not stop the log).
//
// Invariants: members() and the seated records agree seat by seat; a node
// is seated or removed, never both; the epoch never decreases.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/env.h"
#include "core/gossip/member_table.h"
#include "core/member_list.h"
#include "core/raft/raft.h"
#include "core/status.h"

namespace mks {

enum class MembershipState : uint8_t { kJoining, kNormal, kLeaving, kRemoved };
std::string_view MembershipStateName(MembershipState state);

struct ClusterMember {
  NodeId node = kNoNode;
  MembershipState state = MembershipState::kJoining;
  gossip::Addresses addresses;
  friend bool operator==(const ClusterMember&, const ClusterMember&) = default;
};

class ClusterState final : public raft::StateMachine {
 public:
  ClusterState() = default;

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
  bool ApplyAdd(const ClusterMember& member);
  bool ApplySetState(NodeId node, MembershipState from, MembershipState to);
  bool ApplyRemove(NodeId node);
  void CheckInvariants() const;

  std::string cluster_id_;
  uint64_t epoch_ = 0;
  MemberList members_;
  std::vector<ClusterMember> seated_;  // seated_[i].node == members_.by_seat()[i]
  std::map<NodeId, ClusterMember> removed_;
  uint64_t changes_applied_ = 0;
  uint64_t no_ops_applied_ = 0;
};

}  // namespace mks
