#include "core/cluster_state.h"

#include <set>
#include <utility>

#include "core/assertions.h"
#include "core/proto/mks.pb.h"

namespace mks {
namespace {

using StateProto = proto::ClusterMember::State;

StateProto ToProto(MembershipState state) {
  switch (state) {
    case MembershipState::kJoining: return proto::ClusterMember::JOINING;
    case MembershipState::kNormal: return proto::ClusterMember::NORMAL;
    case MembershipState::kLeaving: return proto::ClusterMember::LEAVING;
    case MembershipState::kRemoved: return proto::ClusterMember::REMOVED;
  }
  MKS_UNREACHABLE("bad membership state");
}

std::optional<MembershipState> FromProto(int state) {
  switch (state) {
    case proto::ClusterMember::JOINING: return MembershipState::kJoining;
    case proto::ClusterMember::NORMAL: return MembershipState::kNormal;
    case proto::ClusterMember::LEAVING: return MembershipState::kLeaving;
    case proto::ClusterMember::REMOVED: return MembershipState::kRemoved;
    default: return std::nullopt;
  }
}

void MemberToProto(const ClusterMember& member, proto::ClusterMember* out) {
  out->set_node(member.node);
  out->set_state(ToProto(member.state));
  out->set_peer_address(member.addresses.peer);
  out->set_resp_address(member.addresses.resp);
  out->set_http_address(member.addresses.http);
}

std::optional<ClusterMember> MemberFromProto(const proto::ClusterMember& in) {
  const std::optional<MembershipState> state = FromProto(in.state());
  if (!state.has_value() || in.node() == kNoNode) return std::nullopt;
  return ClusterMember{in.node(), *state,
                       gossip::Addresses{in.peer_address(), in.resp_address(), in.http_address()}};
}

}  // namespace

std::string_view MembershipStateName(MembershipState state) {
  switch (state) {
    case MembershipState::kJoining: return "joining";
    case MembershipState::kNormal: return "normal";
    case MembershipState::kLeaving: return "leaving";
    case MembershipState::kRemoved: return "removed";
  }
  MKS_UNREACHABLE("bad membership state");
}

Result<std::string> ClusterState::Initial(const std::string& cluster_id,
                                          const std::vector<ClusterMember>& seated) {
  if (cluster_id.empty()) return Status::InvalidArgument("a cluster needs an id");
  if (seated.empty()) return Status::InvalidArgument("a cluster needs a member");
  std::vector<NodeId> ids;
  proto::ClusterStateSnapshot snapshot;
  snapshot.set_cluster_id(cluster_id);
  snapshot.set_epoch(1);
  for (ClusterMember member : seated) {
    ids.push_back(member.node);
    member.state = MembershipState::kNormal;
    MemberToProto(member, snapshot.add_members());
  }
  MKS_RETURN_IF_ERROR(MemberList::FromSeats(std::move(ids)).status());
  return snapshot.SerializeAsString();
}

std::string ClusterState::AddCommand(const ClusterMember& member) {
  MKS_ASSERT(member.state == MembershipState::kJoining || member.state == MembershipState::kNormal);
  proto::ClusterCommand command;
  MemberToProto(member, command.mutable_add()->mutable_member());
  return command.SerializeAsString();
}

std::string ClusterState::SetStateCommand(NodeId node, MembershipState from, MembershipState to) {
  MKS_ASSERT(to != MembershipState::kRemoved);
  proto::ClusterCommand command;
  command.mutable_set_state()->set_node(node);
  command.mutable_set_state()->set_from(ToProto(from));
  command.mutable_set_state()->set_to(ToProto(to));
  return command.SerializeAsString();
}

std::string ClusterState::RemoveCommand(NodeId node) {
  proto::ClusterCommand command;
  command.mutable_remove()->set_node(node);
  return command.SerializeAsString();
}

std::string ClusterState::AdvanceEpochCommand(uint64_t if_epoch) {
  proto::ClusterCommand command;
  command.mutable_advance_epoch()->set_if_epoch(if_epoch);
  return command.SerializeAsString();
}

void ClusterState::Apply(raft::Index, const std::string& bytes) {
  MKS_ASSERT_MSG(epoch_ > 0, "a command applied before the state was restored");
  proto::ClusterCommand command;
  bool changed = false;
  if (command.ParseFromString(bytes)) {
    switch (command.command_case()) {
      case proto::ClusterCommand::kAdd: {
        const std::optional<ClusterMember> member = MemberFromProto(command.add().member());
        changed = member.has_value() && ApplyAdd(*member);
        break;
      }
      case proto::ClusterCommand::kSetState: {
        const std::optional<MembershipState> from = FromProto(command.set_state().from());
        const std::optional<MembershipState> to = FromProto(command.set_state().to());
        changed = from.has_value() && to.has_value() &&
                  ApplySetState(command.set_state().node(), *from, *to);
        break;
      }
      case proto::ClusterCommand::kRemove:
        changed = ApplyRemove(command.remove().node());
        break;
      case proto::ClusterCommand::kAdvanceEpoch:
        changed = command.advance_epoch().if_epoch() == epoch_;
        break;
      case proto::ClusterCommand::COMMAND_NOT_SET:
        break;
    }
  }
  if (changed) {
    ++epoch_;
    ++changes_applied_;
  } else {
    ++no_ops_applied_;
  }
  CheckInvariants();
}

bool ClusterState::ApplyAdd(const ClusterMember& member) {
  if (member.state != MembershipState::kJoining && member.state != MembershipState::kNormal) {
    return false;
  }
  if (!members_.Join(member.node).ok()) return false;
  removed_.erase(member.node);
  seated_.push_back(member);
  return true;
}

bool ClusterState::ApplySetState(NodeId node, MembershipState from, MembershipState to) {
  const int64_t seat = members_.SeatOf(node);
  if (seat < 0 || to == MembershipState::kRemoved || from == to) return false;
  ClusterMember& member = seated_[static_cast<size_t>(seat)];
  if (member.state != from) return false;
  member.state = to;
  return true;
}

bool ClusterState::ApplyRemove(NodeId node) {
  const int64_t seat = members_.SeatOf(node);
  if (seat < 0) return false;
  const Status left = members_.Leave(node);
  MKS_ASSERT_MSG(left.ok(), left.ToString());
  ClusterMember gone = seated_[static_cast<size_t>(seat)];
  // MemberList::Leave: the last seat's member takes the leaver's seat.
  seated_[static_cast<size_t>(seat)] = seated_.back();
  seated_.pop_back();
  gone.state = MembershipState::kRemoved;
  removed_[node] = std::move(gone);
  return true;
}

std::string ClusterState::Snapshot() const {
  proto::ClusterStateSnapshot snapshot;
  snapshot.set_cluster_id(cluster_id_);
  snapshot.set_epoch(epoch_);
  for (const ClusterMember& member : seated_) MemberToProto(member, snapshot.add_members());
  for (const auto& [node, member] : removed_) MemberToProto(member, snapshot.add_removed());
  return snapshot.SerializeAsString();
}

Status ClusterState::Restore(const std::string& bytes) {
  proto::ClusterStateSnapshot snapshot;
  if (!snapshot.ParseFromString(bytes)) {
    return Status::Corruption("cluster state snapshot does not parse");
  }
  if (snapshot.cluster_id().empty() || snapshot.epoch() == 0) {
    return Status::Corruption("cluster state snapshot without cluster id or epoch");
  }
  std::vector<ClusterMember> seated;
  std::vector<NodeId> ids;
  for (const proto::ClusterMember& in : snapshot.members()) {
    std::optional<ClusterMember> member = MemberFromProto(in);
    if (!member.has_value() || member->state == MembershipState::kRemoved) {
      return Status::Corruption("cluster state snapshot holds a bad seated member");
    }
    ids.push_back(member->node);
    seated.push_back(std::move(*member));
  }
  Result<MemberList> members = MemberList::FromSeats(std::move(ids));
  if (!members.ok()) return Status::Corruption("cluster state snapshot: " + members.status().message());
  std::map<NodeId, ClusterMember> removed;
  for (const proto::ClusterMember& in : snapshot.removed()) {
    std::optional<ClusterMember> member = MemberFromProto(in);
    if (!member.has_value() || member->state != MembershipState::kRemoved ||
        members->Contains(member->node) || !removed.emplace(member->node, *member).second) {
      return Status::Corruption("cluster state snapshot holds a bad removed member");
    }
  }
  cluster_id_ = snapshot.cluster_id();
  epoch_ = snapshot.epoch();
  members_ = std::move(*members);
  seated_ = std::move(seated);
  removed_ = std::move(removed);
  CheckInvariants();
  return Status::Ok();
}

std::optional<ClusterMember> ClusterState::Seated(NodeId node) const {
  const int64_t seat = members_.SeatOf(node);
  if (seat < 0) return std::nullopt;
  return seated_[static_cast<size_t>(seat)];
}

void ClusterState::CheckInvariants() const {
  MKS_ASSERT_EQ(seated_.size(), members_.size());
  for (size_t seat = 0; seat < seated_.size(); ++seat) {
    MKS_ASSERT_EQ(seated_[seat].node, members_.by_seat()[seat]);
    MKS_ASSERT(seated_[seat].state != MembershipState::kRemoved);
    MKS_ASSERT(removed_.count(seated_[seat].node) == 0);
  }
}

}  // namespace mks
