// The hash ring: which nodes hold which keys.
//
// The key space is cut into Q partitions (Q a power of two). A key's
// partition comes from StableHash64 of its bytes, so it is the same on every
// platform and in every version. Each partition has a preference list of N
// distinct nodes, its replicas; the first is the partition's preferred
// coordinator, and the list is ordered by preference.
//
// A Ring is a pure function of (member list, epoch, options): every node that
// has applied the same membership computes the same Ring, which is the ring
// agreement invariant. The member list (core/member_list.h) gives each
// member a seat, and placement depends on the seats only: the ring of n seats
// is the same table for every cluster of n members, with seat i's replicas
// held by the member in seat i. A ring built from bare node ids seats them in
// ascending id order, so there the order they are passed in does not matter.
// Placement does not depend on the epoch: the epoch advances periodically
// without membership changes, and such an advance must move nothing. The
// epoch is carried so that messages and streams can say which ring they were
// computed against.
//
// Placement (see ring.cpp for why it is built this way): with n seats and
// N <= n, the table is built by seating members one at a time. The first N
// seats hold every partition. Each further seat s takes floor(Q*N / (s+1))
// replicas, in its own hash order of the partitions, from the seats that
// hold the most, so that afterwards every seat holds floor or ceil of the
// mean; it takes a replica's place in its partition's preference list.
// Hence:
// - Balance: every member holds the mean number of replicas, rounded down
//   or up (with Q = 256 and N = 3, the most-loaded member holds at most
//   1.076x the mean for 3 to 64 members).
// - A join (MemberList::Join) moves only the replicas the newcomer takes.
// - A leave (MemberList::Leave) moves the leaver's replicas and at most one
//   share more: the member of the last seat takes over the leaver's seat,
//   and the last seat's replicas go back where they came from.
// ring_test prints these figures for 3 to 64 members.
//
// N larger than the member count is clamped: with fewer members than
// requested replicas every partition lives on every member. Callers that
// compute quorums must use replication_factor() (the effective N), never the
// requested one.
//
// A Ring is immutable after Build and cheap to share by const reference;
// lookups are O(1) and allocate nothing.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "core/env.h"
#include "core/member_list.h"
#include "core/status.h"

namespace mks {

using PartitionId = uint32_t;

struct RingOptions {
  // Q. A power of two in [1, kMaxPartitionCount]. Fixed for the life of a
  // cluster: changing it remaps every key.
  uint32_t partition_count = 256;
  // The requested N, >= 1; clamped to the member count (see above).
  uint32_t replication_factor = 3;
};

class Ring {
 public:
  static constexpr uint32_t kMaxPartitionCount = 1u << 16;

  // Returns the ring of `members` at `epoch`. Returns InvalidArgument when
  // `members` is empty or the options are out of range.
  static Result<Ring> Build(const MemberList& members, uint64_t epoch,
                            RingOptions options = {});

  // Returns the ring of the members `ids` seated in ascending id order (see
  // MemberList::FromIds), at `epoch`. `ids` may come in any order. Returns
  // InvalidArgument when `ids` is empty, contains kNoNode or a duplicate, or
  // when the options are out of range.
  static Result<Ring> Build(std::vector<NodeId> ids, uint64_t epoch,
                            RingOptions options = {});

  // Returns the partition of `key` in a ring of `partition_count`
  // partitions: the top log2(partition_count) bits of the key's stable hash.
  // Because the top bits are used, doubling Q splits partition p into 2p and
  // 2p+1. Requires a power-of-two partition_count (asserted).
  static PartitionId PartitionOfKey(std::string_view key,
                                    uint32_t partition_count);

  // Returns the partition of `key` in this ring.
  PartitionId PartitionOf(std::string_view key) const {
    return PartitionOfKey(key, partition_count_);
  }

  // Returns the replicas of `partition`, in preference order: exactly
  // replication_factor() distinct members. Requires partition <
  // partition_count() (asserted). The span lives as long as this Ring.
  std::span<const NodeId> PreferenceList(PartitionId partition) const;

  // Returns the replicas of the partition of `key`.
  std::span<const NodeId> ReplicasForKey(std::string_view key) const {
    return PreferenceList(PartitionOf(key));
  }

  // The ring in the middle of a membership change from `from` to `to`
  // (core/cluster_state.h): partition p is served by to's list once
  // flipped[p], by from's before; to's replicas that do not serve it yet
  // are its pending replicas (writes reach them too, core/coordinator.h).
  // `members` are the seated members, every member of both. Requires equal
  // partition counts, and flipped and fence_epochs of that size (asserted).
  static Ring Transitional(const Ring& from, const Ring& to, const MemberList& members,
                           const std::vector<bool>& flipped,
                           std::vector<uint64_t> fence_epochs, uint64_t epoch);
  // This ring with every partition's fence epoch `fence_epoch`: what a ring
  // at rest carries (the epoch of the change that last moved data).
  Ring WithFenceEpoch(uint64_t fence_epoch) &&;

  // Whether some partition has pending replicas.
  bool InTransition() const { return !future_.empty(); }
  // The replicas `partition` has once its change completes, in preference
  // order: its preference list when it is not changing.
  std::span<const NodeId> FutureList(PartitionId partition) const;
  // FutureList's members not in PreferenceList: the replicas that receive
  // the partition's data now and serve it after the flip.
  std::vector<NodeId> PendingReplicas(PartitionId partition) const;
  bool IsPending(NodeId node, PartitionId partition) const;
  // Whether `node` serves or is about to serve `partition`.
  bool Holds(NodeId node, PartitionId partition) const {
    return IsReplica(node, partition) || IsPending(node, partition);
  }
  // The epoch at which the placement of `partition` (its replicas or
  // pending replicas) last changed. A replica refuses requests for the
  // partition computed on a ring older than this (epoch fencing): their
  // coordinator would count answers of the wrong replicas.
  uint64_t FenceEpoch(PartitionId partition) const;

  // Returns the partitions whose preference list contains `node`, in
  // ascending order; empty when `node` is not a member.
  std::vector<PartitionId> PartitionsOwnedBy(NodeId node) const;

  // Returns whether `node` is a replica of `partition`.
  bool IsReplica(NodeId node, PartitionId partition) const;

  // Returns the number of partition replicas `node` holds.
  uint32_t ReplicaCountOf(NodeId node) const;

  // Returns whether `node` is in the member list.
  bool IsMember(NodeId node) const;

  // The members, sorted ascending, without duplicates.
  const std::vector<NodeId>& members() const { return members_; }
  // The members in seat order, as the ring was built from.
  const MemberList& member_list() const { return member_list_; }
  uint64_t epoch() const { return epoch_; }
  uint32_t partition_count() const { return partition_count_; }
  // The effective N: min(requested N, member count).
  uint32_t replication_factor() const { return replication_factor_; }
  // The most replicas one member holds: the mean, Q * replication_factor()
  // / members, rounded up. Every member holds this or one less.
  uint32_t load_cap() const { return load_cap_; }
  // The N that was asked for in RingOptions.
  uint32_t requested_replication_factor() const {
    return requested_replication_factor_;
  }

 private:
  Ring(MemberList member_list, uint64_t epoch, uint32_t partition_count,
       uint32_t replication_factor, uint32_t requested_replication_factor,
       uint32_t load_cap, std::vector<NodeId> replicas,
       std::vector<uint32_t> offsets);

  MemberList member_list_;       // not empty
  std::vector<NodeId> members_;  // member_list_'s ids, sorted ascending
  uint64_t epoch_;
  uint32_t partition_count_;     // a power of two
  uint32_t replication_factor_;  // in [1, members_.size()]
  uint32_t requested_replication_factor_;
  // The mean load rounded up. Invariant: every member holds load_cap_ or
  // load_cap_ - 1 replicas.
  uint32_t load_cap_;
  // replicas_[p * replication_factor_ + i] is the i-th replica of partition
  // p, unless offsets_ is set: then partition p's replicas are
  // replicas_[offsets_[p] .. offsets_[p + 1]) (a transition, where lists
  // differ in length when N was clamped on one side). Invariant: the
  // replicas of one partition are distinct members.
  std::vector<NodeId> replicas_;
  std::vector<uint32_t> offsets_;  // empty, or partition_count_ + 1 entries
  // Transitions only (empty at rest): the future lists, laid out likewise.
  std::vector<NodeId> future_;
  std::vector<uint32_t> future_offsets_;
  // Per partition, or empty: then every partition's is fence_epoch_.
  std::vector<uint64_t> fence_epochs_;
  uint64_t fence_epoch_ = 0;
};

}  // namespace mks
