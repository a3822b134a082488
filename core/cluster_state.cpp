#include "core/cluster_state.h"

#include <algorithm>
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

std::string ClusterState::LeaveCommand(NodeId node) {
  proto::ClusterCommand command;
  command.mutable_leave()->set_node(node);
  return command.SerializeAsString();
}

std::string ClusterState::StreamDoneCommand(uint64_t begin_epoch, NodeId node,
                                            const std::vector<PartitionId>& partitions) {
  proto::ClusterCommand command;
  proto::ClusterCommand::StreamDone* done = command.mutable_stream_done();
  done->set_begin_epoch(begin_epoch);
  done->set_node(node);
  for (PartitionId p : partitions) done->add_partitions(p);
  return command.SerializeAsString();
}

std::string ClusterState::FinishCommand(uint64_t begin_epoch) {
  proto::ClusterCommand command;
  command.mutable_finish()->set_begin_epoch(begin_epoch);
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
  const uint64_t next = epoch_ + 1;
  if (command.ParseFromString(bytes)) {
    switch (command.command_case()) {
      case proto::ClusterCommand::kAdd: {
        const std::optional<ClusterMember> member = MemberFromProto(command.add().member());
        changed = member.has_value() && ApplyAdd(*member, next);
        break;
      }
      case proto::ClusterCommand::kLeave:
        changed = ApplyLeave(command.leave().node(), next);
        break;
      case proto::ClusterCommand::kStreamDone: {
        const auto& done = command.stream_done();
        const std::vector<PartitionId> partitions(done.partitions().begin(),
                                                  done.partitions().end());
        changed = ApplyStreamDone(done.begin_epoch(), done.node(), partitions, next);
        break;
      }
      case proto::ClusterCommand::kFinish:
        changed = ApplyFinish(command.finish().begin_epoch(), next);
        break;
      case proto::ClusterCommand::kSetState: {
        const std::optional<MembershipState> from = FromProto(command.set_state().from());
        const std::optional<MembershipState> to = FromProto(command.set_state().to());
        changed = from.has_value() && to.has_value() &&
                  ApplySetState(command.set_state().node(), *from, *to);
        break;
      }
      case proto::ClusterCommand::kRemove:
        changed = ApplyRemove(command.remove().node(), next);
        break;
      case proto::ClusterCommand::kAdvanceEpoch:
        changed = command.advance_epoch().if_epoch() == epoch_;
        break;
      case proto::ClusterCommand::COMMAND_NOT_SET:
        break;
    }
  }
  if (changed) {
    epoch_ = next;
    ++changes_applied_;
  } else {
    ++no_ops_applied_;
  }
  CheckInvariants();
}

bool ClusterState::ApplyAdd(const ClusterMember& member, uint64_t next_epoch) {
  if (member.state != MembershipState::kJoining && member.state != MembershipState::kNormal) {
    return false;
  }
  if (transition_.has_value() || members_.Contains(member.node) || member.node == kNoNode) {
    return false;
  }
  const MemberList from = members_;
  const Status joined = members_.Join(member.node);
  MKS_ASSERT_MSG(joined.ok(), joined.ToString());
  removed_.erase(member.node);
  seated_.push_back(member);
  if (from.empty()) {
    // Nothing to stream from: the first member of an emptied cluster.
    seated_.back().state = MembershipState::kNormal;
    placement_epoch_ = next_epoch;
  } else if (member.state == MembershipState::kNormal) {
    placement_epoch_ = next_epoch;
  } else {
    Begin(Transition::Kind::kJoin, member.node, from, members_, next_epoch);
  }
  return true;
}

bool ClusterState::ApplySetState(NodeId node, MembershipState from, MembershipState to) {
  const int64_t seat = members_.SeatOf(node);
  if (seat < 0 || to == MembershipState::kRemoved || from == to) return false;
  if (transition_.has_value() && transition_->node == node) return false;
  ClusterMember& member = seated_[static_cast<size_t>(seat)];
  if (member.state != from) return false;
  member.state = to;
  return true;
}

bool ClusterState::ApplyLeave(NodeId node, uint64_t next_epoch) {
  const int64_t seat = members_.SeatOf(node);
  if (transition_.has_value() || seat < 0 || members_.size() == 1) return false;
  ClusterMember& member = seated_[static_cast<size_t>(seat)];
  if (member.state != MembershipState::kNormal) return false;
  member.state = MembershipState::kLeaving;
  MemberList to = members_;
  const Status left = to.Leave(node);
  MKS_ASSERT_MSG(left.ok(), left.ToString());
  Begin(Transition::Kind::kLeave, node, members_, std::move(to), next_epoch);
  return true;
}

void ClusterState::Begin(Transition::Kind kind, NodeId node, MemberList from, MemberList to,
                         uint64_t begin_epoch) {
  MKS_ASSERT(!transition_.has_value());
  Transition transition;
  transition.kind = kind;
  transition.node = node;
  transition.from = std::move(from);
  transition.to = std::move(to);
  transition.begin_epoch = begin_epoch;
  FillPending(&transition);
  transition_ = std::move(transition);
}

void ClusterState::FillPending(Transition* transition) const {
  Result<Ring> from = Ring::Build(transition->from, 1, ring_options_);
  Result<Ring> to = Ring::Build(transition->to, 1, ring_options_);
  MKS_ASSERT_MSG(from.ok() && to.ok(), "a transition between unbuildable rings");
  transition->pending.assign(to->partition_count(), {});
  transition->changing = 0;
  for (PartitionId p = 0; p < to->partition_count(); ++p) {
    const std::span<const NodeId> before = from->PreferenceList(p);
    for (NodeId node : to->PreferenceList(p)) {
      if (std::find(before.begin(), before.end(), node) == before.end()) {
        transition->pending[p].push_back(node);
      }
    }
    if (!transition->pending[p].empty()) ++transition->changing;
  }
}

bool ClusterState::ApplyStreamDone(uint64_t begin_epoch, NodeId node,
                                   const std::vector<PartitionId>& partitions,
                                   uint64_t next_epoch) {
  if (!transition_.has_value() || transition_->begin_epoch != begin_epoch) return false;
  Transition& transition = *transition_;
  bool changed = false;
  for (PartitionId p : partitions) {
    if (p >= transition.pending.size() || transition.Flipped(p)) continue;
    const std::vector<NodeId>& pending = transition.pending[p];
    if (std::find(pending.begin(), pending.end(), node) == pending.end()) continue;
    if (!transition.done.insert({p, node}).second) continue;
    changed = true;
    const bool all_done = std::all_of(pending.begin(), pending.end(),
                                      [&](NodeId n) { return transition.Done(p, n); });
    if (all_done) transition.flipped_at[p] = next_epoch;
  }
  return changed;
}

bool ClusterState::TransitionComplete() const {
  return transition_.has_value() && transition_->flipped_at.size() == transition_->changing;
}

bool ClusterState::ApplyFinish(uint64_t begin_epoch, uint64_t next_epoch) {
  if (!TransitionComplete() || transition_->begin_epoch != begin_epoch) return false;
  const Transition transition = std::move(*transition_);
  transition_.reset();
  placement_epoch_ = next_epoch;
  if (transition.kind == Transition::Kind::kJoin) {
    seated_[static_cast<size_t>(members_.SeatOf(transition.node))].state =
        MembershipState::kNormal;
  } else {
    Unseat(transition.node);
    MKS_ASSERT(members_ == transition.to);
  }
  return true;
}

bool ClusterState::ApplyRemove(NodeId node, uint64_t next_epoch) {
  if (!members_.Contains(node)) return false;
  if (transition_.has_value()) {
    if (transition_->node != node) return false;
    // The joiner holds the last seat, so unseating it restores `from`; a
    // leaver's unseating gives `to`.
    transition_.reset();
  }
  Unseat(node);
  placement_epoch_ = next_epoch;
  return true;
}

void ClusterState::Unseat(NodeId node) {
  const int64_t seat = members_.SeatOf(node);
  MKS_ASSERT_GE(seat, 0);
  const Status left = members_.Leave(node);
  MKS_ASSERT_MSG(left.ok(), left.ToString());
  ClusterMember gone = seated_[static_cast<size_t>(seat)];
  // MemberList::Leave: the last seat's member takes the leaver's seat.
  seated_[static_cast<size_t>(seat)] = seated_.back();
  seated_.pop_back();
  gone.state = MembershipState::kRemoved;
  removed_[node] = std::move(gone);
}

Ring ClusterState::BuildRing() const {
  MKS_ASSERT(epoch_ > 0 && !members_.empty());
  if (!transition_.has_value()) {
    Result<Ring> ring = Ring::Build(members_, epoch_, ring_options_);
    MKS_ASSERT_MSG(ring.ok(), ring.status().ToString());
    return std::move(*ring).WithFenceEpoch(placement_epoch_);
  }
  const Transition& transition = *transition_;
  Result<Ring> from = Ring::Build(transition.from, epoch_, ring_options_);
  Result<Ring> to = Ring::Build(transition.to, epoch_, ring_options_);
  MKS_ASSERT_MSG(from.ok() && to.ok(), "a transition between unbuildable rings");
  const uint32_t q = to->partition_count();
  std::vector<bool> flipped(q, false);
  std::vector<uint64_t> fences(q, placement_epoch_);
  for (PartitionId p = 0; p < q; ++p) {
    if (transition.pending[p].empty()) continue;
    auto at = transition.flipped_at.find(p);
    flipped[p] = at != transition.flipped_at.end();
    fences[p] = flipped[p] ? at->second : transition.begin_epoch;
  }
  return Ring::Transitional(*from, *to, members_, flipped, std::move(fences), epoch_);
}

std::string ClusterState::Snapshot() const {
  proto::ClusterStateSnapshot snapshot;
  snapshot.set_cluster_id(cluster_id_);
  snapshot.set_epoch(epoch_);
  for (const ClusterMember& member : seated_) MemberToProto(member, snapshot.add_members());
  for (const auto& [node, member] : removed_) MemberToProto(member, snapshot.add_removed());
  snapshot.set_placement_epoch(placement_epoch_);
  if (transition_.has_value()) {
    proto::ClusterTransition* out = snapshot.mutable_transition();
    out->set_kind(transition_->kind == Transition::Kind::kJoin ? proto::ClusterTransition::JOIN
                                                               : proto::ClusterTransition::LEAVE);
    out->set_node(transition_->node);
    for (NodeId node : transition_->from.by_seat()) out->add_from_seats(node);
    for (NodeId node : transition_->to.by_seat()) out->add_to_seats(node);
    out->set_begin_epoch(transition_->begin_epoch);
    for (const auto& [partition, epoch] : transition_->flipped_at) {
      proto::ClusterTransition::Flip* flip = out->add_flipped();
      flip->set_partition(partition);
      flip->set_epoch(epoch);
    }
    for (const auto& [partition, node] : transition_->done) {
      proto::ClusterTransition::Done* done = out->add_done();
      done->set_partition(partition);
      done->set_node(node);
    }
  }
  return snapshot.SerializeAsString();
}

Result<Transition> ClusterState::RestoreTransition(const proto::ClusterTransition& in,
                                                   const MemberList& members) const {
  Transition transition;
  transition.kind = in.kind() == proto::ClusterTransition::JOIN ? Transition::Kind::kJoin
                                                                : Transition::Kind::kLeave;
  transition.node = in.node();
  Result<MemberList> from =
      MemberList::FromSeats(std::vector<NodeId>(in.from_seats().begin(), in.from_seats().end()));
  Result<MemberList> to =
      MemberList::FromSeats(std::vector<NodeId>(in.to_seats().begin(), in.to_seats().end()));
  if (!from.ok() || !to.ok() || from->empty() || to->empty() ||
      (transition.kind == Transition::Kind::kJoin ? *to : *from) != members ||
      in.begin_epoch() == 0) {
    return Status::Corruption("cluster state snapshot holds a bad transition");
  }
  transition.from = std::move(*from);
  transition.to = std::move(*to);
  transition.begin_epoch = in.begin_epoch();
  FillPending(&transition);
  for (const auto& flip : in.flipped()) {
    if (flip.partition() >= transition.pending.size() ||
        transition.pending[flip.partition()].empty()) {
      return Status::Corruption("cluster state snapshot flips a partition that does not change");
    }
    transition.flipped_at[flip.partition()] = flip.epoch();
  }
  for (const auto& done : in.done()) transition.done.insert({done.partition(), done.node()});
  return transition;
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
  std::optional<Transition> transition;
  if (snapshot.has_transition()) {
    Result<Transition> restored = RestoreTransition(snapshot.transition(), *members);
    if (!restored.ok()) return restored.status();
    transition = std::move(*restored);
  }
  cluster_id_ = snapshot.cluster_id();
  epoch_ = snapshot.epoch();
  placement_epoch_ = snapshot.placement_epoch();
  transition_ = std::move(transition);
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
  if (transition_.has_value()) {
    const Transition& transition = *transition_;
    const bool join = transition.kind == Transition::Kind::kJoin;
    MKS_ASSERT(members_ == (join ? transition.to : transition.from));
    const std::optional<ClusterMember> node = Seated(transition.node);
    MKS_ASSERT(node.has_value());
    MKS_ASSERT(node->state == (join ? MembershipState::kJoining : MembershipState::kLeaving));
    MKS_ASSERT_LE(transition.flipped_at.size(), transition.changing);
  }
  for (size_t seat = 0; seat < seated_.size(); ++seat) {
    MKS_ASSERT_EQ(seated_[seat].node, members_.by_seat()[seat]);
    MKS_ASSERT(seated_[seat].state != MembershipState::kRemoved);
    MKS_ASSERT(removed_.count(seated_[seat].node) == 0);
  }
}

}  // namespace mks
