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
// agreement invariant. The order in which members are passed does not matter
// (they are sorted). Placement depends on the member set only, not on the
// epoch: the epoch advances periodically without membership changes, and such
// an advance must move nothing. The epoch is carried so that messages and
// streams can say which ring they were computed against.
//
// Placement (see ring.cpp for why it is built this way): each partition
// first takes its N members of highest rendezvous score. A score depends on
// the partition and the node id only: its high bits are the partition's
// place in the node's own hash order of all Q partitions (so every node has
// exactly one partition at each level), its low bits a hash of both. A node
// with more of these than its keep limit keeps only its best-scored ones;
// the keep limit is floor(1.1 * mean + 0.3125 - f) for a fixed per-node
// fraction f in [0, 1) (a hash of the node id), at most the load cap. The
// freed slots go, in one global score order, to the best-scored member that
// kept all its own and holds fewer replicas than the load cap,
// floor(1.1 * Q*N/members) (at least the mean rounded up). With Q = 256,
// N = 3 and 3 to 64 members the most-loaded node stays within 1.1x of the
// mean; ring_test prints that figure and the replicas moved by a join or
// leave.
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

  // Returns the ring of `members` at `epoch`. `members` may come in any
  // order. Returns InvalidArgument when `members` is empty, contains kNoNode
  // or a duplicate, or when the options are out of range.
  static Result<Ring> Build(std::vector<NodeId> members, uint64_t epoch,
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
  uint64_t epoch() const { return epoch_; }
  uint32_t partition_count() const { return partition_count_; }
  // The effective N: min(requested N, member count).
  uint32_t replication_factor() const { return replication_factor_; }
  // The most replicas placement lets one node hold (see above); every
  // node's keep limit is at most this. Exceeded only if no member with room
  // could take a replica even by exchange, which the property tests show
  // does not happen.
  uint32_t load_cap() const { return load_cap_; }
  // The N that was asked for in RingOptions.
  uint32_t requested_replication_factor() const {
    return requested_replication_factor_;
  }

 private:
  Ring(std::vector<NodeId> members, uint64_t epoch, uint32_t partition_count,
       uint32_t replication_factor, uint32_t requested_replication_factor,
       uint32_t load_cap, std::vector<NodeId> replicas);

  std::vector<NodeId> members_;  // sorted ascending, unique, no kNoNode
  uint64_t epoch_;
  uint32_t partition_count_;     // a power of two
  uint32_t replication_factor_;  // in [1, members_.size()]
  uint32_t requested_replication_factor_;
  // At least the mean load rounded up, so the caps leave room for every
  // replica.
  uint32_t load_cap_;
  // replicas_[p * replication_factor_ + i] is the i-th replica of partition
  // p. Invariant: size is partition_count_ * replication_factor_, and the
  // replicas of one partition are distinct members.
  std::vector<NodeId> replicas_;
};

}  // namespace mks
