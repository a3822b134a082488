// MemberTable: one node's view of the cluster's members, and the rule by
// which two records of one member merge (SWIM's incarnation precedence).
//
// core/gossip/ owns failure detection and discovery (SWIM with the Lifeguard
// refinements): who is alive, at which addresses. It calls only core's
// runtime, RpcEndpoint and the Environment; nothing in it decides where
// data lives (the ring and, later, Raft do).
//
// Precedence. Every record carries the member's incarnation, which only the
// member itself raises (at every start, durably, and to refute). A record
// replaces the one held when its incarnation is higher, or when it is equal
// and its state ranks higher: alive < suspect < dead < left. So a suspicion
// or a death at incarnation i is final for i, and only the member, by
// announcing itself alive at a higher incarnation, undoes it. Merging is
// therefore commutative and idempotent: nodes that saw the same records in
// any order hold the same view.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/env.h"

namespace mks::gossip {

enum class MemberState : uint8_t { kAlive = 0, kSuspect = 1, kDead = 2, kLeft = 3 };

// "alive", "suspect", "dead", "left".
std::string_view MemberStateName(MemberState state);

// Where a member listens: for peers, and for clients (RESP, HTTP). Fixed
// for one incarnation.
struct Addresses {
  std::string peer;
  std::string resp;
  std::string http;
  friend bool operator==(const Addresses&, const Addresses&) = default;
};

// One record of one member, as gossip carries it.
struct MemberRecord {
  NodeId node = kNoNode;
  uint64_t incarnation = 0;
  MemberState state = MemberState::kAlive;
  Addresses addresses;
  // Suspect and dead records: the node that declared it; kNoNode otherwise.
  NodeId from = kNoNode;
  friend bool operator==(const MemberRecord&, const MemberRecord&) = default;
};

// True when `incoming` must replace `held` (records of the same member).
bool Overrides(const MemberRecord& incoming, const MemberRecord& held);

// What this node knows of one member.
struct Member {
  MemberRecord record;
  int64_t state_since_ns = 0;  // local monotonic time the state last changed
  int64_t last_heard_ns = 0;   // last message from the member itself; 0: never
};

// The result of MemberTable::Apply.
struct Applied {
  bool changed = false;  // the record replaced what was held (or was new)
  bool is_new = false;   // the member was unknown before
  // The state held before, when the member was known.
  std::optional<MemberState> previous_state;
  uint64_t previous_incarnation = 0;
};

class MemberTable {
 public:
  // The table of node `self`, holding `self_record` (alive) from the start.
  explicit MemberTable(MemberRecord self_record);

  // Merges `record` by precedence at local time `now_ns`. Addresses are
  // taken from a record that wins; a dead or left record without addresses
  // keeps the ones held. Requires record.node != kNoNode.
  Applied Apply(const MemberRecord& record, int64_t now_ns);

  // Notes that a message from `node` itself arrived now.
  void Heard(NodeId node, int64_t now_ns);

  // Null when `node` is unknown.
  const Member* Find(NodeId node) const;
  const MemberRecord& self() const { return members_.at(self_).record; }
  NodeId self_id() const { return self_; }
  // Every member, self included, by id.
  const std::map<NodeId, Member>& members() const { return members_; }
  // Members in `state`, self included when it is in it, ascending.
  std::vector<NodeId> InState(MemberState state) const;
  // Alive and suspect members: those still probed and counted. O(1).
  size_t LiveCount() const { return live_count_; }

 private:
  const NodeId self_;
  // Invariant: holds self_, whose record only the owner of this table
  // changes (through Apply, at a higher incarnation or as left).
  std::map<NodeId, Member> members_;
  // Invariant: the members of members_ alive or suspect.
  size_t live_count_ = 0;
};

}  // namespace mks::gossip
