#include "core/node.h"

#include <algorithm>
#include <array>
#include <optional>
#include <utility>

#include "core/assertions.h"
#include "core/crc32c.h"
#include "core/proto/mks.pb.h"

namespace mks {
namespace {

// Outside the store's key space ("v"): see StoreOptions::key_space. Two
// copies, written together, each with its own checksum: a node that lost its
// only copy to bit rot could not know which timestamps it already issued.
constexpr std::array<std::string_view, 2> kCeilingKeys = {"m/timestamp_ceiling/a",
                                                          "m/timestamp_ceiling/b"};
constexpr size_t kCeilingValueBytes = 8 + 4;  // big-endian ms, crc32c
constexpr int64_t kNanosPerMs = 1'000'000;
// How long a member waits for the leader's answer to a forwarded change.
constexpr int64_t kForwardTimeoutNs = 2'000 * kNanosPerMs;
// A change request is forwarded toward the leader at most this many times:
// a member's idea of the leader may be stale (it was removed, or the
// leader changed), and the next member's is fresher.
constexpr uint32_t kMaxForwardHops = 3;
// How often the leader tells one removed node, still alive, that it is.
constexpr int64_t kRemovedNoticeIntervalNs = 2'000 * kNanosPerMs;

std::string EncodeCeiling(std::string_view key, uint64_t ceiling_ms) {
  std::string out(kCeilingValueBytes, '\0');
  for (int i = 0; i < 8; ++i) {
    out[static_cast<size_t>(i)] = static_cast<char>(ceiling_ms >> (56 - 8 * i));
  }
  const uint32_t crc = Crc32c(std::string_view(out).substr(0, 8), Crc32c(key));
  for (int i = 0; i < 4; ++i) {
    out[static_cast<size_t>(8 + i)] = static_cast<char>(crc >> (24 - 8 * i));
  }
  return out;
}

// The ceiling stored under `key`; nullopt when it fails its checksum.
std::optional<uint64_t> DecodeCeiling(std::string_view key, std::string_view bytes) {
  if (bytes.size() != kCeilingValueBytes) return std::nullopt;
  uint64_t ceiling_ms = 0;
  for (size_t i = 0; i < 8; ++i) ceiling_ms = (ceiling_ms << 8) | static_cast<uint8_t>(bytes[i]);
  uint32_t crc = 0;
  for (size_t i = 8; i < kCeilingValueBytes; ++i) crc = (crc << 8) | static_cast<uint8_t>(bytes[i]);
  if (crc != Crc32c(bytes.substr(0, 8), Crc32c(key))) return std::nullopt;
  return ceiling_ms;
}

Result<Consistency> ConsistencyOf(const proto::ClientRequest& request) {
  if (request.consistency().empty()) return Consistency::Default();
  return ParseConsistency(request.consistency());
}

}  // namespace

uint32_t VoterTarget(uint32_t members) {
  if (members >= 5) return 5;
  return std::min<uint32_t>(members, 3);
}

Result<std::unique_ptr<Node>> Node::Open(NodeOptions options, Environment env,
                                         runtime::Scheduler* scheduler,
                                         runtime::ProcessId process) {
  MKS_ASSERT(scheduler != nullptr);
  MKS_ASSERT(env.clock != nullptr && env.network != nullptr && env.disk != nullptr);
  if (!options.members.empty() && options.cluster_id.empty()) {
    return Status::InvalidArgument("a cluster's first members need its cluster id");
  }
  // Every ring this node builds later uses these options.
  MKS_RETURN_IF_ERROR(Ring::Build(options.members.empty() ? MemberList::FromIds({env.node_id}).value()
                                                          : options.members,
                                  1, options.ring)
                          .status());
  if (options.timestamp_ceiling_step_ms == 0 ||
      options.timestamp_ceiling_step_ms * 4 > options.hlc.max_offset_ms) {
    return Status::InvalidArgument(
        "timestamp_ceiling_step_ms must be in 1..max_offset_ms/4 (" +
        std::to_string(options.hlc.max_offset_ms / 4) + ")");
  }
  std::unique_ptr<Node> node(new Node(std::move(options), std::move(env), scheduler, process));
  MKS_RETURN_IF_ERROR(node->Recover());
  MKS_RETURN_IF_ERROR(node->stream_->Start());
  MKS_RETURN_IF_ERROR(node->StartRaft());
  const NodeOptions& opened = node->options_;
  // A node of a cluster whose metadata was lost to damage waits for the
  // leader's snapshot; a node of no cluster must find one.
  if (node->raft_->cluster_id().empty() &&
      (!opened.gossip.has_value() || opened.gossip->seeds.empty())) {
    return Status::InvalidArgument(
        "node " + std::to_string(node->id()) +
        " holds no cluster state and is not one of the cluster's first members: it needs "
        "seeds to join through");
  }
  if (node->gossip_ != nullptr) {
    for (const auto& [peer, addresses] : opened.known_peers) {
      node->gossip_->Seed(peer, addresses);
    }
    // A restarted member knows where the members it applied listen (those
    // that joined said so), seeds or not.
    for (const ClusterMember& member : node->cluster_.seated()) {
      if (!member.addresses.peer.empty() && opened.known_peers.count(member.node) == 0) {
        node->gossip_->Seed(member.node, member.addresses);
      }
    }
    MKS_RETURN_IF_ERROR(node->gossip_->Start());
  }
  Node* self = node.get();
  if (opened.gossip.has_value() && !opened.gossip->seeds.empty()) {
    scheduler->Spawn(process, "cluster.join", [self] { self->JoinLoop(); });
  }
  if (opened.epoch_interval_ms > 0) {
    scheduler->Spawn(process, "cluster.epoch", [self] { self->EpochLoop(); });
  }
  if (opened.voter_check_interval_ms > 0) {
    scheduler->Spawn(process, "cluster.voters", [self] { self->VoterLoop(); });
  }
  return node;
}

Node::Node(NodeOptions options, Environment env, runtime::Scheduler* scheduler,
           runtime::ProcessId process)
    : options_(std::move(options)),
      env_(std::move(env)),
      scheduler_(scheduler),
      process_(process),
      hlc_(env_.clock, options_.hlc),
      cluster_(options_.ring) {
  static_assert(Ring::kMaxPartitionCount <= kMaxStorePartitions,
                "the store's disk keys hold every partition of the ring");
  store_ = std::make_unique<Store>(
      env_.disk,
      [partition_count = options_.ring.partition_count](std::string_view key) {
        return Ring::PartitionOfKey(key, partition_count);
      },
      options_.store);
  // Any non-zero draw: a restarted node draws afresh (core/rpc.h).
  const uint64_t incarnation = env_.random.Next64() | 1;
  rpc_ = std::make_unique<RpcEndpoint>(scheduler_, process_, env_.network,
                                       env_.node_id, RpcOptions{incarnation});
  if (options_.gossip.has_value()) {
    gossip_ = std::make_unique<gossip::Gossip>(scheduler_, process_, rpc_.get(), env_,
                                               options_.addresses, *options_.gossip);
    gossip_->set_canaries(options_.gossip_canaries);
  }
  replica_ = std::make_unique<ReplicaService>(store_.get(), &hlc_, rpc_.get(),
                                              scheduler_, &env_, options_.replica);
  DownSource known_down;
  if (gossip_ != nullptr) {
    known_down = [gossip = gossip_.get()](NodeId node) { return gossip->IsDown(node); };
  }
  coordinator_ = std::make_unique<Coordinator>(
      scheduler_, process_, rpc_.get(), replica_.get(), &hlc_,
      [this] { return ring_; }, [this] { return NextTimestamp(); }, options_.coordinator,
      known_down);
  replica_->set_fence([this](std::string_view key) -> uint64_t {
    // A removed node answers no coordinator: whatever it acknowledged, it drops.
    if (evicted_) return UINT64_MAX;
    return ring_ == nullptr ? 0 : ring_->FenceEpoch(ring_->PartitionOf(key));
  });
  stream_ = std::make_unique<StreamService>(
      scheduler_, process_, rpc_.get(), replica_.get(), store_.get(), env_.disk, &cluster_,
      [this] { return ring_; }, std::move(known_down),
      [this](uint64_t begin_epoch, const std::vector<PartitionId>& partitions) {
        return ReportStreamed(begin_epoch, partitions);
      },
      options_.stream);
  raft_ = std::make_unique<raft::Raft>(scheduler_, process_, rpc_.get(), &cluster_, env_,
                                       options_.raft);
  RegisterClientMethods();
  RegisterClusterMethods();
}

Node::~Node() = default;

Status Node::StartRaft() {
  raft_->set_observer(options_.raft_observer);
  raft_->set_canaries(options_.raft_canaries);
  raft_->set_on_applied([this] { OnMetadataApplied(); });
  MKS_RETURN_IF_ERROR(raft_->Start());
  // A node that holds cluster state keeps it: the first members and the
  // cluster id only ever create a cluster.
  const std::string& held = raft_->cluster_id();
  if (!options_.members.Contains(id()) || !held.empty() || !raft_->store().empty()) {
    return Status::Ok();
  }
  // Without addresses: the first members' configurations name them each
  // its own way, and every founder must write the same state. Gossip
  // carries them.
  std::vector<ClusterMember> seated;
  for (NodeId node : options_.members.by_seat()) {
    seated.push_back(ClusterMember{node, MembershipState::kNormal, {}});
  }
  Result<std::string> initial = ClusterState::Initial(options_.cluster_id, seated);
  MKS_RETURN_IF_ERROR(initial.status());
  const uint32_t voters = VoterTarget(options_.members.size());
  raft::Config config;
  for (uint32_t seat = 0; seat < options_.members.size(); ++seat) {
    const NodeId node = options_.members.by_seat()[seat];
    (seat < voters ? config.voters : config.learners).push_back(node);
  }
  return raft_->Bootstrap(options_.cluster_id, config, *initial);
}

void Node::OnMetadataApplied() {
  if (cluster_.epoch() == 0) return;
  if (evicted_) {
    if (cluster_.epoch() <= evicted_epoch_ || !cluster_.members().Contains(id())) return;
    evicted_ = false;  // seated again, by a later change
  }
  if (ring_ != nullptr && ring_->epoch() == cluster_.epoch()) return;
  if (cluster_.members().empty()) {
    ring_.reset();
    return;
  }
  // Open() validated the ring options, and a non-empty list builds.
  std::shared_ptr<const Ring> previous = std::move(ring_);
  ring_ = std::make_shared<const Ring>(cluster_.BuildRing());
  ++stats_.rings_built;
  MKS_ASSERT_EQ(ring_->epoch(), cluster_.epoch());
  stream_->OnRing(previous.get(), *ring_);
  if (on_ring_) on_ring_(*ring_);
  // The leader finishes a transition as soon as its last partition flipped.
  if (cluster_.TransitionComplete() && raft_->role() == raft::Role::kLeader && !finishing_) {
    finishing_ = true;
    scheduler_->Spawn(process_, "cluster.finish", [this] {
      FinishTransition();
      finishing_ = false;
    });
  }
}

void Node::EpochLoop() {
  for (;;) {
    scheduler_->SleepFor(static_cast<int64_t>(options_.epoch_interval_ms) * kNanosPerMs);
    if (raft_->role() != raft::Role::kLeader) continue;
    ++stats_.epoch_advances_proposed;
    // Conditional: a stale or repeated proposal is a no-op.
    raft_->Propose(ClusterState::AdvanceEpochCommand(cluster_.epoch())).Get().status().IgnoreError();
  }
}

void Node::JoinLoop() {
  for (;;) {
    const Status joined = TryJoin();
    ++stats_.join_attempts;
    if (on_join_) on_join_(joined);
    if (joined.ok() || joined.IsInvalidArgument()) return;
    scheduler_->SleepFor(static_cast<int64_t>(options_.join_retry_ms) * kNanosPerMs);
  }
}

Status Node::TryJoin() {
  proto::ClusterJoinRequest request;
  request.set_node(id());
  request.set_peer_address(options_.addresses.peer);
  request.set_resp_address(options_.addresses.resp);
  request.set_http_address(options_.addresses.http);
  // A node of a cluster says which: a seed of another one refuses it.
  request.set_cluster_id(raft_->cluster_id());
  request.set_force(options_.join_force);
  const std::string payload = request.SerializeAsString();
  // Room for every hop toward the leader.
  const int64_t timeout_ns = (kMaxForwardHops + 1) * kForwardTimeoutNs;
  Status last = Status::Unavailable("no seed to join through");
  for (const std::string& seed : options_.gossip->seeds) {
    Result<std::string> reply = rpc_->CallAddress(seed, "cluster.join", payload, timeout_ns).Get();
    if (reply.ok()) return Status::Ok();
    last = reply.status();
    if (last.IsInvalidArgument()) return last;
  }
  MKS_ASSERT(gossip_ != nullptr);  // JoinLoop runs only with seeds
  // The seeds may be gone or cut off from the leader (a removed seed knows
  // none): then any other node gossip holds alive.
  for (const auto& [node, member] : gossip_->table().members()) {
    if (node == id() || member.record.state != gossip::MemberState::kAlive) continue;
    Result<std::string> reply = rpc_->Call(node, "cluster.join", payload, timeout_ns).Get();
    if (reply.ok()) return Status::Ok();
    last = reply.status();
    if (last.IsInvalidArgument()) return last;
  }
  return last;
}

void Node::VoterLoop() {
  for (;;) {
    scheduler_->SleepFor(static_cast<int64_t>(options_.voter_check_interval_ms) * kNanosPerMs);
    if (raft_->role() != raft::Role::kLeader) continue;
    FinishTransition();
    NotifyRemoved();
    ReconcileVoters();
    if (options_.dead_remove_after_ms > 0 && raft_->role() == raft::Role::kLeader) {
      RemoveLongDead();
    }
  }
}

void Node::NotifyRemoved() {
  const int64_t now_ns = scheduler_->NowNanos();
  for (const auto& [node, member] : cluster_.removed()) {
    if (gossip_ == nullptr || !IsAlive(node) || node == id()) continue;
    int64_t& last_ns = removed_notified_ns_[node];
    if (last_ns != 0 && now_ns - last_ns < kRemovedNoticeIntervalNs) continue;
    last_ns = now_ns;
    proto::ClusterRemovedNotice notice;
    notice.set_cluster_id(cluster_.cluster_id());
    notice.set_epoch(cluster_.epoch());
    (void)rpc_->Call(node, "cluster.removed", notice.SerializeAsString(), kForwardTimeoutNs);
  }
}

Result<std::string> Node::ServeRemovedNotice(const RpcRequest& request) {
  proto::ClusterRemovedNotice notice;
  if (!notice.ParseFromString(request.payload)) {
    return Status::InvalidArgument("malformed cluster.removed notice");
  }
  if (notice.cluster_id() != raft_->cluster_id() || evicted_) return std::string();
  // A seating newer than the notice stands (a forced rejoin).
  if (cluster_.epoch() > notice.epoch() && cluster_.members().Contains(id())) {
    return std::string();
  }
  evicted_ = true;
  evicted_epoch_ = notice.epoch();
  ring_.reset();
  stream_->DropAll(options_.ring.partition_count);
  return std::string();
}

void Node::FinishTransition() {
  if (!cluster_.TransitionComplete()) return;
  const uint64_t begin_epoch = cluster_.transition()->begin_epoch;
  if (raft_->Propose(ClusterState::FinishCommand(begin_epoch)).Get().ok()) {
    ++stats_.finishes_applied;
  }
}

Status Node::ReportStreamed(uint64_t begin_epoch, const std::vector<PartitionId>& partitions) {
  return raft_->ProposeAnywhere(ClusterState::StreamDoneCommand(begin_epoch, id(), partitions),
                                kForwardTimeoutNs)
      .status();
}

Status Node::RefuseIfChanging(NodeId node) const {
  const Transition* transition = cluster_.transition();
  if (transition == nullptr || transition->node == node) return Status::Ok();
  return Status::Unavailable(
      "a membership change is in progress (node " + std::to_string(transition->node) +
      (transition->kind == Transition::Kind::kJoin ? " joining" : " leaving") + ", " +
      std::to_string(transition->flipped_at.size()) + " of " +
      std::to_string(transition->changing) + " partitions moved); one runs at a time, retry");
}

void Node::RemoveLongDead() {
  if (gossip_ == nullptr) return;
  const int64_t now_ns = scheduler_->NowNanos();
  const int64_t after_ns = static_cast<int64_t>(options_.dead_remove_after_ms) * kNanosPerMs;
  for (NodeId node : cluster_.members().by_seat()) {
    if (node == id()) continue;
    const gossip::Member* member = gossip_->table().Find(node);
    if (member == nullptr || member->record.state != gossip::MemberState::kDead ||
        now_ns - member->state_since_ns < after_ns) {
      continue;
    }
    // A dead joiner cannot take its data: its join is abandoned instead.
    const Transition* transition = cluster_.transition();
    const bool dead_joiner = transition != nullptr && transition->node == node &&
                             transition->kind == Transition::Kind::kJoin;
    if (RemoveMember(node, /*force=*/dead_joiner).ok()) ++stats_.dead_removed;
    return;  // one change at a time
  }
}

bool Node::IsAlive(NodeId node) const {
  if (node == id() || gossip_ == nullptr) return true;
  const gossip::Member* known = gossip_->table().Find(node);
  return known != nullptr && known->record.state == gossip::MemberState::kAlive;
}

void Node::ReconcileVoters() {
  const raft::Config config = raft_->config();
  const MemberList& seated = cluster_.members();
  auto change = [this](runtime::Future<raft::Index> future) {
    if (future.Get().ok()) ++stats_.voter_changes;
  };
  // Removed members leave the configuration, a voter by a demotion first.
  for (NodeId node : config.Members()) {
    if (seated.Contains(node)) continue;
    if (node == id()) {
      raft_->TransferLeadership().IgnoreError();
      return;
    }
    change(config.IsVoter(node) ? raft_->Demote(node) : raft_->Remove(node));
    return;
  }
  // Every member applies the log.
  for (NodeId node : seated.by_seat()) {
    if (!config.Contains(node)) {
      change(raft_->AddLearner(node));
      return;
    }
  }
  uint32_t alive = 0;
  for (NodeId node : seated.by_seat()) alive += IsAlive(node) ? 1 : 0;
  const uint32_t target = alive >= 5 ? 5 : std::min<uint32_t>(seated.size(), 3);
  std::vector<NodeId> dead_voters;
  for (NodeId node : config.voters) {
    if (!IsAlive(node)) dead_voters.push_back(node);
  }
  std::optional<NodeId> live_learner;
  for (NodeId node : seated.by_seat()) {
    if (config.IsLearner(node) && IsAlive(node)) {
      live_learner = node;
      break;
    }
  }
  const size_t voters = config.voters.size();
  // A dead voter is replaced by promoting first, then demoting: the voter
  // set never shrinks below what it had while a replacement is at hand.
  if (live_learner.has_value() && (voters < target || !dead_voters.empty())) {
    change(raft_->Promote(*live_learner));
  } else if (voters > target && !dead_voters.empty()) {
    change(raft_->Demote(dead_voters.front()));
  }
}

std::optional<Result<std::string>> Node::ForwardToLeader(const std::string& method,
                                                         const std::string& payload,
                                                         uint32_t hops) {
  if (raft_->role() == raft::Role::kLeader) return std::nullopt;
  const std::optional<NodeId> leader = raft_->leader();
  if (!leader.has_value() || *leader == id()) {
    return Status::Unavailable("node " + std::to_string(id()) +
                               " does not lead the cluster's metadata and knows no leader; retry");
  }
  if (hops >= kMaxForwardHops) {
    return Status::Unavailable("node " + std::to_string(id()) + " does not lead the cluster's "
                               "metadata, and the request went through " +
                               std::to_string(hops) + " members already; retry");
  }
  return rpc_->CallAndWait(*leader, method, payload, kForwardTimeoutNs);
}

std::string Node::ChangeResponse(raft::Index index) const {
  proto::ClusterChangeResponse response;
  response.set_index(index);
  response.set_epoch(cluster_.epoch());
  return response.SerializeAsString();
}

Result<std::string> Node::ServeJoin(const RpcRequest& request) {
  proto::ClusterJoinRequest message;
  if (!message.ParseFromString(request.payload) || message.node() == kNoNode) {
    return Status::InvalidArgument("malformed cluster.join request");
  }
  const std::string name = "node " + std::to_string(message.node());
  if (cluster_.epoch() == 0) {
    return Status::Unavailable("node " + std::to_string(id()) +
                               " holds no cluster state yet; ask a member");
  }
  if (!message.cluster_id().empty() && message.cluster_id() != cluster_.cluster_id()) {
    return Status::InvalidArgument(name + " belongs to cluster " + message.cluster_id() +
                                   ", not to cluster " + cluster_.cluster_id() +
                                   ": clusters bootstrapped apart never merge");
  }
  proto::ClusterJoinRequest forward = message;
  forward.set_hops(message.hops() + 1);
  std::optional<Result<std::string>> forwarded =
      ForwardToLeader("cluster.join", forward.SerializeAsString(), message.hops());
  if (forwarded.has_value()) return std::move(*forwarded);
  std::optional<ClusterMember> seated = cluster_.Seated(message.node());
  if (seated.has_value()) return ChangeResponse(raft_->last_applied());
  if (!seated.has_value() && cluster_.removed().count(message.node()) > 0 && !message.force()) {
    return Status::InvalidArgument(name + " was removed from cluster " + cluster_.cluster_id() +
                                   "; it rejoins only when forced");
  }
  if (!IsAlive(message.node())) {
    return Status::Unavailable(name + " is not yet alive in the leader's gossip view; retry");
  }
  MKS_RETURN_IF_ERROR(RefuseIfChanging(message.node()));
  // Joining: the newcomer's partitions stream to it, then it turns normal.
  const ClusterMember member{message.node(), MembershipState::kJoining,
                             {message.peer_address(), message.resp_address(),
                              message.http_address()}};
  Result<raft::Index> added = raft_->Propose(ClusterState::AddCommand(member)).Get();
  MKS_RETURN_IF_ERROR(added.status());
  if (!cluster_.Seated(message.node()).has_value()) {
    return Status::Unavailable(name + " was not seated; retry");
  }
  ++stats_.joins_applied;
  return ChangeResponse(*added);
}

Result<std::string> Node::ServeRemove(const RpcRequest& request) {
  proto::ClusterRemoveRequest message;
  if (!message.ParseFromString(request.payload) || message.node() == kNoNode) {
    return Status::InvalidArgument("malformed cluster.remove request");
  }
  proto::ClusterRemoveRequest forward = message;
  forward.set_hops(message.hops() + 1);
  std::optional<Result<std::string>> forwarded =
      ForwardToLeader("cluster.remove", forward.SerializeAsString(), message.hops());
  if (forwarded.has_value()) return std::move(*forwarded);
  const std::string name = "node " + std::to_string(message.node());
  if (!cluster_.members().Contains(message.node())) {
    if (cluster_.removed().count(message.node()) > 0) {
      return ChangeResponse(raft_->last_applied());
    }
    return Status::NotFound(name + " is not a member of cluster " + cluster_.cluster_id());
  }
  if (cluster_.members().size() == 1) {
    return Status::InvalidArgument(name + " is the cluster's last member");
  }
  MKS_RETURN_IF_ERROR(RefuseIfChanging(message.node()));
  const Transition* transition = cluster_.transition();
  if (!message.force()) {
    if (transition != nullptr && transition->kind == Transition::Kind::kLeave) {
      return ChangeResponse(raft_->last_applied());  // leaving already
    }
    if (transition != nullptr) {
      return Status::Unavailable(name + " is still joining; retry once it joined, or force "
                                        "the removal to abandon its join");
    }
    Result<raft::Index> begun = raft_->Propose(ClusterState::LeaveCommand(message.node())).Get();
    MKS_RETURN_IF_ERROR(begun.status());
    if (cluster_.transition() == nullptr || cluster_.transition()->node != message.node()) {
      return Status::Unavailable(name + "'s leave did not begin; retry");
    }
    ++stats_.removes_applied;
    return ChangeResponse(*begun);
  }
  if (message.node() == id()) {
    // The leader does not unseat itself: it hands over, and the caller retries.
    MKS_RETURN_IF_ERROR(raft_->TransferLeadership());
    return Status::Unavailable(name + " leads the cluster's metadata and hands over first; retry");
  }
  Result<raft::Index> removed =
      raft_->Propose(ClusterState::RemoveCommand(message.node())).Get();
  MKS_RETURN_IF_ERROR(removed.status());
  ++stats_.removes_applied;
  return ChangeResponse(*removed);
}

Result<uint64_t> Node::RemoveMember(NodeId node, bool force) {
  proto::ClusterRemoveRequest message;
  message.set_node(node);
  message.set_force(force);
  RpcRequest request;
  request.from = id();
  request.method = "cluster.remove";
  request.payload = message.SerializeAsString();
  Result<std::string> reply = ServeRemove(request);
  MKS_RETURN_IF_ERROR(reply.status());
  proto::ClusterChangeResponse response;
  if (!response.ParseFromString(*reply)) {
    return Status::Internal("malformed cluster.remove response");
  }
  return response.epoch();
}

void Node::RegisterClusterMethods() {
  rpc_->RegisterHandler("cluster.join",
                        [this](RpcRequest request) { return ServeJoin(request); });
  rpc_->RegisterHandler("cluster.remove",
                        [this](RpcRequest request) { return ServeRemove(request); });
  rpc_->RegisterHandler("cluster.removed",
                        [this](RpcRequest request) { return ServeRemovedNotice(request); });
}

Status Node::Recover() {
  bool found = false;
  bool damaged = false;
  for (std::string_view key : kCeilingKeys) {
    std::string stored;
    const Status read = env_.disk->Get(key, &stored);
    if (read.IsNotFound()) continue;
    found = true;
    if (!read.ok() && !read.IsCorruption()) return read;
    const std::optional<uint64_t> ceiling_ms =
        read.ok() ? DecodeCeiling(key, stored) : std::nullopt;
    if (!ceiling_ms.has_value()) {
      damaged = true;
      continue;
    }
    // The copies are written together; after a crash between the two
    // LevelDB keeps both or neither (one batch), so the larger is the last.
    ceiling_ms_ = std::max(ceiling_ms_, *ceiling_ms);
  }
  if (found && ceiling_ms_ == 0) {
    return Status::Corruption(
        "both copies of the timestamp ceiling are damaged: this node cannot "
        "tell which timestamps it issued; restore its data directory or "
        "replace the node");
  }
  if (damaged) ++stats_.ceiling_copies_damaged;
  // Every timestamp issued before the crash is below the ceiling, so
  // starting at it keeps this incarnation's timestamps above all of them.
  hlc_.AdvanceTo(Timestamp{ceiling_ms_, 0});
  return Status::Ok();
}

Result<Timestamp> Node::NextTimestamp() {
  const Timestamp stamp = hlc_.Now();
  if (stamp.physical_ms < ceiling_ms_) return stamp;
  const uint64_t raised_ms = stamp.physical_ms + options_.timestamp_ceiling_step_ms;
  WriteBatch batch;
  for (std::string_view key : kCeilingKeys) batch.Put(key, EncodeCeiling(key, raised_ms));
  MKS_RETURN_IF_ERROR(env_.disk->Write(batch, WriteOptions{.sync = true}));
  ceiling_ms_ = raised_ms;
  ++stats_.ceiling_raises;
  MKS_ASSERT_LT(stamp.physical_ms, ceiling_ms_);
  MKS_ASSERT_EQ(batch.size(), kCeilingKeys.size());
  return stamp;
}

void Node::RegisterClientMethods() {
  rpc_->RegisterHandler("client.get", [this](RpcRequest request) -> Result<std::string> {
    proto::ClientRequest message;
    if (!message.ParseFromString(request.payload)) {
      return Status::InvalidArgument("malformed client.get request");
    }
    Result<Consistency> consistency = ConsistencyOf(message);
    MKS_RETURN_IF_ERROR(consistency.status());
    Result<ReadResult> read = coordinator_->Get(message.key(), *consistency);
    MKS_RETURN_IF_ERROR(read.status());
    proto::ClientResponse response;
    response.set_found(read->found);
    response.set_replies(read->replies);
    if (read->version.has_value()) {
      VersionToProto(message.key(), *read->version, response.mutable_version());
    }
    return response.SerializeAsString();
  });
  for (const bool is_delete : {false, true}) {
    const std::string method = is_delete ? "client.delete" : "client.put";
    rpc_->RegisterHandler(method, [this, is_delete, method](
                                      RpcRequest request) -> Result<std::string> {
      proto::ClientRequest message;
      if (!message.ParseFromString(request.payload)) {
        return Status::InvalidArgument("malformed " + method + " request");
      }
      Result<Consistency> consistency = ConsistencyOf(message);
      MKS_RETURN_IF_ERROR(consistency.status());
      Result<WriteResult> written =
          is_delete ? coordinator_->Delete(message.key(), *consistency)
                    : coordinator_->Put(message.key(), message.value(), *consistency);
      MKS_RETURN_IF_ERROR(written.status());
      proto::ClientResponse response;
      response.set_replies(written->acks);
      VersionToProto(message.key(), written->version, response.mutable_version());
      return response.SerializeAsString();
    });
  }
}

}  // namespace mks
