// BroadcastQueue: the membership updates a node still has to spread, each
// piggybacked on a bounded number of outgoing protocol messages.
//
// SWIM disseminates by infection: every update rides on the next pings,
// acks and probe requests, about retransmit_mult * log(n) times in all,
// which reaches every member with high probability in O(log n) periods. A
// newer update of a member replaces the queued one (its count restarts).
// Urgent updates (a change of state: a suspicion, a death, a refutation, a
// newcomer) go before the rest (a new incarnation of a member alive all
// along), then the least sent, then the newest: a node that just learned
// hundreds of incarnations must still pass a death on at once.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <vector>

#include "core/gossip/member_table.h"

namespace mks::gossip {

class BroadcastQueue {
 public:
  // Queues `record`, replacing any queued record of the same member.
  void Push(const MemberRecord& record, bool urgent = true);

  // Returns up to `max_count` records to piggyback on one message, urgent
  // first, then least sent, then newest, and counts the transmission;
  // a record sent `transmit_limit` times leaves the queue. Requires
  // transmit_limit >= 1.
  std::vector<MemberRecord> Take(size_t max_count, uint32_t transmit_limit);

  size_t size() const { return entries_.size(); }
  bool empty() const { return entries_.empty(); }

 private:
  struct Entry {
    MemberRecord record;
    bool urgent = true;
    uint32_t transmits = 0;
    uint64_t order = 0;  // Push order: larger is newer
  };
  // The order Take serves entries in: urgent first, then least sent, then
  // newest.
  struct Rank {
    bool urgent;
    uint32_t transmits;
    uint64_t order;
    NodeId node;
    friend bool operator<(const Rank& a, const Rank& b) {
      if (a.urgent != b.urgent) return a.urgent;
      if (a.transmits != b.transmits) return a.transmits < b.transmits;
      return a.order > b.order;
    }
  };
  static Rank RankOf(const Entry& entry) {
    return Rank{entry.urgent, entry.transmits, entry.order, entry.record.node};
  }
  std::map<NodeId, Entry> entries_;  // by member
  // Invariant: holds RankOf(e) for exactly the entries e of entries_, so a
  // Take costs O(max_count log n), not O(n).
  std::set<Rank> ranks_;
  uint64_t next_order_ = 1;
};

// The number of transmissions of each update in a cluster of `members`:
// retransmit_mult * ceil(log10(members + 1)), at least 1.
uint32_t TransmitLimit(uint32_t retransmit_mult, size_t members);

}  // namespace mks::gossip
