// The cluster's member list: which nodes are members, and the seat each holds.
//
// Seats are 0 .. size()-1, one member each; a member's seat is its place in
// by_seat(). The ring places partitions by seat, not by node id (see
// core/ring.h): the ring of n seats is the ring of n-1 seats plus the share
// that seat n-1 takes when it joins. So the two changes below are the ones
// that move the fewest replicas:
//
// - Join seats the newcomer after every member. Only the newcomer's share
//   moves (to the newcomer).
// - Leave hands the leaver's seat to the member of the last seat, and the
//   last seat goes away. The leaver's replicas move to that member, and that
//   member's old replicas go back to the seats they came from: one share
//   beyond the leaver's own (none when the leaver held the last seat).
//
// A membership protocol (Raft, later) replicates the list in seat order and
// changes it only by these two, in one agreed order, so every node that
// applied the same changes holds the same list and computes the same ring.
// A static configuration names members without seats; FromIds seats them by
// ascending id, which every node agrees on whatever order its file lists
// them in.
//
// Invariant: no kNoNode, no node twice.
#pragma once

#include <cstdint>
#include <vector>

#include "core/env.h"
#include "core/status.h"

namespace mks {

class MemberList {
 public:
  // The empty list.
  MemberList() = default;

  // Returns the list that seats `ids` in ascending id order, whatever order
  // they come in: what a static configuration, which names members but not
  // seats, agrees on. Returns InvalidArgument for kNoNode or a duplicate.
  static Result<MemberList> FromIds(std::vector<NodeId> ids);

  // Returns the list that seats `by_seat[i]` at seat i. Returns
  // InvalidArgument for kNoNode or a duplicate.
  static Result<MemberList> FromSeats(std::vector<NodeId> by_seat);

  // Seats `node` after every member. Returns InvalidArgument when `node` is
  // kNoNode or already a member; the list is then unchanged.
  Status Join(NodeId node);

  // Removes `node`; the member of the last seat takes its seat. Returns
  // NotFound when `node` is not a member; the list is then unchanged.
  Status Leave(NodeId node);

  // Returns the seat of `node`, or -1 when it is not a member.
  int64_t SeatOf(NodeId node) const;

  bool Contains(NodeId node) const { return SeatOf(node) >= 0; }
  bool empty() const { return by_seat_.empty(); }
  uint32_t size() const { return static_cast<uint32_t>(by_seat_.size()); }

  // The members, by_seat()[i] holding seat i.
  const std::vector<NodeId>& by_seat() const { return by_seat_; }

  friend bool operator==(const MemberList&, const MemberList&) = default;

 private:
  explicit MemberList(std::vector<NodeId> by_seat)
      : by_seat_(std::move(by_seat)) {}

  std::vector<NodeId> by_seat_;
};

}  // namespace mks
