#include "core/gossip/broadcast_queue.h"

#include <algorithm>

#include "core/assertions.h"

namespace mks::gossip {

void BroadcastQueue::Push(const MemberRecord& record, bool urgent) {
  MKS_ASSERT_NE(record.node, kNoNode);
  auto it = entries_.find(record.node);
  if (it != entries_.end()) ranks_.erase(RankOf(it->second));
  Entry& entry = entries_[record.node];
  entry = Entry{record, urgent, 0, next_order_++};
  ranks_.insert(RankOf(entry));
  MKS_ASSERT_EQ(ranks_.size(), entries_.size());
}

std::vector<MemberRecord> BroadcastQueue::Take(size_t max_count,
                                               uint32_t transmit_limit) {
  MKS_ASSERT_GE(transmit_limit, 1u);
  std::vector<MemberRecord> taken;
  std::vector<NodeId> sent;
  while (taken.size() < max_count && !ranks_.empty()) {
    const Rank first = *ranks_.begin();
    ranks_.erase(ranks_.begin());
    Entry& entry = entries_.at(first.node);
    if (entry.transmits >= transmit_limit) {
      entries_.erase(first.node);  // the cluster shrank below its count
      continue;
    }
    taken.push_back(entry.record);
    ++entry.transmits;
    sent.push_back(first.node);
  }
  // Ranked again only now, so one message never carries a record twice.
  for (NodeId node : sent) {
    auto it = entries_.find(node);
    if (it->second.transmits >= transmit_limit) {
      entries_.erase(it);
    } else {
      ranks_.insert(RankOf(it->second));
    }
  }
  MKS_ASSERT_EQ(ranks_.size(), entries_.size());
  MKS_ASSERT_LE(taken.size(), max_count);
  return taken;
}

uint32_t TransmitLimit(uint32_t retransmit_mult, size_t members) {
  MKS_ASSERT_GE(retransmit_mult, 1u);
  // ceil(log10(members + 1)) by integer steps.
  uint32_t digits = 0;
  for (uint64_t power = 1; power < members + 1; power *= 10) ++digits;
  return retransmit_mult * std::max<uint32_t>(digits, 1);
}

}  // namespace mks::gossip
