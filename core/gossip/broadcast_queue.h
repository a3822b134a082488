// BroadcastQueue: the membership updates a node still has to spread, each
// piggybacked on a bounded number of outgoing protocol messages.
//
// SWIM disseminates by infection: every update rides on the next pings,
// acks and probe requests, about retransmit_mult * log(n) times in all,
// which reaches every member with high probability in O(log n) periods. A
// newer update of a member replaces the queued one (its count restarts),
// and the least-sent updates go first, so fresh news overtakes old.
#pragma once

#include <cstdint>
#include <map>
#include <vector>

#include "core/gossip/member_table.h"

namespace mks::gossip {

class BroadcastQueue {
 public:
  // Queues `record`, replacing any queued record of the same member.
  void Push(const MemberRecord& record);

  // Returns up to `max_count` records to piggyback on one message, least
  // sent first (newest first among equals), and counts the transmission;
  // a record sent `transmit_limit` times leaves the queue. Requires
  // transmit_limit >= 1.
  std::vector<MemberRecord> Take(size_t max_count, uint32_t transmit_limit);

  size_t size() const { return entries_.size(); }
  bool empty() const { return entries_.empty(); }

 private:
  struct Entry {
    MemberRecord record;
    uint32_t transmits = 0;
    uint64_t order = 0;  // Push order: larger is newer
  };
  std::map<NodeId, Entry> entries_;  // by member
  uint64_t next_order_ = 1;
};

// The number of transmissions of each update in a cluster of `members`:
// retransmit_mult * ceil(log10(members + 1)), at least 1.
uint32_t TransmitLimit(uint32_t retransmit_mult, size_t members);

}  // namespace mks::gossip
