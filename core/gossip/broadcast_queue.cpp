#include "core/gossip/broadcast_queue.h"

#include <algorithm>

#include "core/assertions.h"

namespace mks::gossip {

void BroadcastQueue::Push(const MemberRecord& record) {
  MKS_ASSERT_NE(record.node, kNoNode);
  entries_[record.node] = Entry{record, 0, next_order_++};
}

std::vector<MemberRecord> BroadcastQueue::Take(size_t max_count,
                                               uint32_t transmit_limit) {
  MKS_ASSERT_GE(transmit_limit, 1u);
  std::vector<Entry*> candidates;
  candidates.reserve(entries_.size());
  for (auto& [node, entry] : entries_) candidates.push_back(&entry);
  const size_t count = std::min(max_count, candidates.size());
  std::partial_sort(candidates.begin(), candidates.begin() + static_cast<long>(count),
                    candidates.end(), [](const Entry* a, const Entry* b) {
                      if (a->transmits != b->transmits) return a->transmits < b->transmits;
                      return a->order > b->order;
                    });
  std::vector<MemberRecord> taken;
  taken.reserve(count);
  for (size_t i = 0; i < count; ++i) {
    Entry* entry = candidates[i];
    taken.push_back(entry->record);
    ++entry->transmits;
  }
  std::erase_if(entries_, [transmit_limit](const auto& item) {
    return item.second.transmits >= transmit_limit;
  });
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
