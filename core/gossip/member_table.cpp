#include "core/gossip/member_table.h"

#include "core/assertions.h"

namespace mks::gossip {

std::string_view MemberStateName(MemberState state) {
  switch (state) {
    case MemberState::kAlive: return "alive";
    case MemberState::kSuspect: return "suspect";
    case MemberState::kDead: return "dead";
    case MemberState::kLeft: return "left";
  }
  return "unknown";
}

namespace {

bool IsLive(MemberState state) {
  return state == MemberState::kAlive || state == MemberState::kSuspect;
}

}  // namespace

bool Overrides(const MemberRecord& incoming, const MemberRecord& held) {
  MKS_ASSERT_EQ(incoming.node, held.node);
  if (incoming.incarnation != held.incarnation) {
    return incoming.incarnation > held.incarnation;
  }
  return static_cast<uint8_t>(incoming.state) > static_cast<uint8_t>(held.state);
}

MemberTable::MemberTable(MemberRecord self_record) : self_(self_record.node) {
  MKS_ASSERT_NE(self_, kNoNode);
  MKS_ASSERT(self_record.state == MemberState::kAlive);
  members_[self_] = Member{std::move(self_record), 0, 0};
  live_count_ = 1;
}

Applied MemberTable::Apply(const MemberRecord& record, int64_t now_ns) {
  MKS_ASSERT_NE(record.node, kNoNode);
  Applied applied;
  auto [it, inserted] = members_.try_emplace(record.node);
  Member& member = it->second;
  if (inserted) {
    member.record = record;
    member.state_since_ns = now_ns;
    applied.changed = true;
    applied.is_new = true;
    live_count_ += IsLive(record.state) ? 1 : 0;
    return applied;
  }
  applied.previous_state = member.record.state;
  applied.previous_incarnation = member.record.incarnation;
  if (!Overrides(record, member.record)) return applied;
  const Addresses kept = member.record.addresses;
  const MemberState before = member.record.state;
  member.record = record;
  if (record.addresses.peer.empty()) member.record.addresses = kept;
  if (before != record.state) member.state_since_ns = now_ns;
  live_count_ = live_count_ - (IsLive(before) ? 1 : 0) + (IsLive(record.state) ? 1 : 0);
  applied.changed = true;
  MKS_ASSERT_GE(member.record.incarnation, applied.previous_incarnation);
  return applied;
}

void MemberTable::Heard(NodeId node, int64_t now_ns) {
  auto it = members_.find(node);
  if (it != members_.end()) it->second.last_heard_ns = now_ns;
}

const Member* MemberTable::Find(NodeId node) const {
  auto it = members_.find(node);
  return it == members_.end() ? nullptr : &it->second;
}

std::vector<NodeId> MemberTable::InState(MemberState state) const {
  std::vector<NodeId> out;
  for (const auto& [id, member] : members_) {
    if (member.record.state == state) out.push_back(id);
  }
  return out;
}



}  // namespace mks::gossip
