#include "net/node_backend.h"

#include "core/assertions.h"
#include "net/metrics.h"

namespace mks::net {

NodeBackend::NodeBackend(Node* node, const TcpTransport* transport,
                         Clock* clock, std::map<NodeId, SocketAddress> peers)
    : node_(node),
      transport_(transport),
      clock_(clock),
      peers_(std::move(peers)),
      start_ns_(clock->MonotonicNanos()) {
  MKS_ASSERT(node_ != nullptr && transport_ != nullptr);
  MKS_ASSERT(peers_.empty() || peers_.contains(node_->id()));
}

Result<ReadResult> NodeBackend::Get(std::string_view key,
                                    Consistency consistency) {
  return node_->coordinator().Get(key, consistency);
}

Result<WriteResult> NodeBackend::Put(std::string_view key, std::string value,
                                     Consistency consistency) {
  return node_->coordinator().Put(key, std::move(value), consistency);
}

Result<WriteResult> NodeBackend::Delete(std::string_view key,
                                        Consistency consistency) {
  return node_->coordinator().Delete(key, consistency);
}

bool NodeBackend::IsReachable(NodeId id) const {
  if (id == node_->id()) return true;
  const gossip::Gossip* gossip = node_->gossip();
  if (gossip == nullptr) return transport_->connected_to(id);
  const gossip::Member* member = gossip->table().Find(id);
  // Incarnation 0 is a configured peer not heard of yet.
  return member != nullptr && member->record.incarnation > 0 &&
         (member->record.state == gossip::MemberState::kAlive ||
          member->record.state == gossip::MemberState::kSuspect);
}

uint32_t NodeBackend::ReachablePeers() const {
  uint32_t reachable = 0;
  if (node_->ring() == nullptr) return 0;
  for (NodeId id : node_->ring()->members()) {
    if (id != node_->id() && IsReachable(id)) ++reachable;
  }
  return reachable;
}

BackendStatus NodeBackend::Describe() const {
  const std::shared_ptr<const Ring> ring = node_->ring();
  BackendStatus status;
  status.node_id = node_->id();
  status.ring_epoch = ring != nullptr ? ring->epoch() : 0;
  status.member_count = ring != nullptr ? static_cast<uint32_t>(ring->members().size()) : 0;
  status.partition_count = node_->options().ring.partition_count;
  status.replication_factor = ring != nullptr ? ring->replication_factor() : 0;
  status.default_read = node_->options().coordinator.default_read;
  status.default_write = node_->options().coordinator.default_write;
  status.uptime_ms = (clock_->MonotonicNanos() - start_ns_) / 1'000'000;
  status.reachable_peers = ReachablePeers();
  status.owns_data = ring != nullptr && ring->IsMember(node_->id());
  const raft::Raft& raft = node_->raft();
  status.cluster_id = raft.cluster_id();
  status.leader = raft.leader().value_or(kNoNode);
  status.raft_role = std::string(raft::RoleName(raft.role()));
  status.raft_term = raft.term();
  status.commit_index = raft.commit_index();
  status.applied_index = raft.last_applied();
  status.epoch = node_->cluster().epoch();
  status.voters = raft.config().voters;
  status.learners = raft.config().learners;
  if (const Transition* transition = node_->cluster().transition()) {
    BackendStatus::Change change;
    change.kind = transition->kind == Transition::Kind::kJoin ? "join" : "leave";
    change.node = transition->node;
    change.begin_epoch = transition->begin_epoch;
    change.partitions_changing = transition->changing;
    change.partitions_moved = static_cast<uint32_t>(transition->flipped_at.size());
    for (PartitionId p = 0; p < transition->pending.size(); ++p) {
      if (transition->pending[p].empty() || transition->Flipped(p)) continue;
      std::vector<NodeId> waiting;
      for (NodeId pending : transition->pending[p]) {
        if (!transition->Done(p, pending)) waiting.push_back(pending);
      }
      change.waiting.emplace_back(p, std::move(waiting));
    }
    status.change = std::move(change);
  }
  const StreamStats& streamed = node_->stream().stats();
  status.stream_partitions_copied = streamed.partitions_copied;
  status.stream_bytes_pulled = streamed.bytes_pulled;
  status.stream_records_pulled = streamed.records_pulled;
  status.stream_bytes_served = streamed.bytes_served;
  status.stream_partitions_dropped = streamed.partitions_dropped;
  status.stream_active = static_cast<uint32_t>(node_->stream().active_transfers());
  status.stream_drops_pending = static_cast<uint32_t>(node_->stream().pending_drops());
  const int64_t pulling_ns = streamed.last_pull_ns - streamed.first_pull_ns;
  status.stream_rate_bytes_per_s =
      pulling_ns > 0 ? static_cast<uint64_t>(static_cast<double>(streamed.bytes_pulled) * 1e9 /
                                             static_cast<double>(pulling_ns))
                     : 0;
  MKS_ASSERT_GE(status.uptime_ms, 0);
  return status;
}

Result<uint64_t> NodeBackend::RemoveMember(NodeId node, bool force) {
  return node_->RemoveMember(node, force);
}

std::vector<MemberStatus> NodeBackend::Members() const {
  std::map<NodeId, MemberStatus> members;
  const std::shared_ptr<const Ring> ring = node_->ring();
  const int64_t now_ns = clock_->MonotonicNanos();
  for (const auto& [id, address] : peers_) {
    MemberStatus& member = members[id];
    member.id = id;
    member.peer_address = address.ToString();
    member.state = node_->gossip() != nullptr ? "unknown" : "";
  }
  if (const gossip::Gossip* gossip = node_->gossip()) {
    for (const auto& [id, known] : gossip->table().members()) {
      MemberStatus& member = members[id];
      member.id = id;
      member.peer_address = known.record.addresses.peer;
      member.resp_address = known.record.addresses.resp;
      member.http_address = known.record.addresses.http;
      member.state = known.record.incarnation == 0
                         ? "unknown"
                         : std::string(gossip::MemberStateName(known.record.state));
      member.incarnation = known.record.incarnation;
      member.last_heard_ms_ago =
          known.last_heard_ns == 0 ? -1 : (now_ns - known.last_heard_ns) / 1'000'000;
    }
  }
  for (const ClusterMember& seated : node_->cluster().seated()) {
    MemberStatus& member = members[seated.node];
    member.id = seated.node;
    if (member.peer_address.empty()) member.peer_address = seated.addresses.peer;
    if (member.resp_address.empty()) member.resp_address = seated.addresses.resp;
    if (member.http_address.empty()) member.http_address = seated.addresses.http;
    member.membership = std::string(MembershipStateName(seated.state));
  }
  std::vector<MemberStatus> out;
  for (auto& [id, member] : members) {
    member.self = id == node_->id();
    member.reachable = IsReachable(id);
    member.owns_data = ring != nullptr && ring->IsMember(id);
    if (member.self) member.last_heard_ms_ago = -1;
    out.push_back(std::move(member));
  }
  MKS_ASSERT_GE(out.size(), peers_.size());
  return out;
}

std::string NodeBackend::NotReadyReason() const {
  const std::shared_ptr<const Ring> ring = node_->ring();
  if (ring == nullptr || !ring->IsMember(node_->id())) {
    return "node " + std::to_string(node_->id()) +
           " is not in the member list, so it owns no data and coordinates no request "
           "(it has not joined a cluster yet, or was removed)";
  }
  Result<uint32_t> needed = RequiredReplies(node_->options().coordinator.default_write,
                                            ring->replication_factor());
  // A default that is itself "default" or out of range cannot be met.
  if (!needed.ok()) return "the default write consistency cannot be met: " +
                           needed.status().message();
  const uint32_t alive = 1 + ReachablePeers();
  if (alive >= *needed) return "";
  return std::to_string(alive) + " of " + std::to_string(ring->members().size()) +
         " members alive, the default write consistency needs " + std::to_string(*needed);
}

void NodeBackend::AppendMetrics(std::string* out) const {
  const CoordinatorStats& c = node_->coordinator().stats();
  AppendMetric(out, "mks_coordinator_reads_total", "counter",
               "Reads coordinated by this node, by outcome.",
               {{"outcome=\"ok\"", c.reads_ok},
                {"outcome=\"not_found\"", c.reads_not_found},
                {"outcome=\"failed\"", c.reads_failed}});
  AppendMetric(out, "mks_coordinator_writes_total", "counter",
               "Puts and deletes coordinated by this node, by outcome.",
               {{"outcome=\"ok\"", c.writes_ok}, {"outcome=\"failed\"", c.writes_failed}});
  AppendMetric(out, "mks_quorum_failures_total", "counter",
               "Reads and writes that did not reach their quorum.",
               {{"", c.quorum_failures}});
  AppendMetric(out, "mks_read_repairs_total", "counter",
               "Read repair messages sent, before or after the reply.",
               {{"when=\"foreground\"", c.read_repairs_foreground},
                {"when=\"background\"", c.read_repairs_background}});
  AppendMetric(out, "mks_replica_messages_total", "counter",
               "Replica requests sent by the coordinator (local ones included).",
               {{"", c.replica_messages}});

  const ReplicaStats& r = node_->replica().stats();
  AppendMetric(out, "mks_storage_puts_total", "counter",
               "Versions offered to this replica, by outcome.",
               {{"outcome=\"applied\"", r.puts_applied},
                {"outcome=\"not_newer\"", r.puts - r.puts_applied},
                {"outcome=\"refused\"", r.puts_refused},
                {"outcome=\"busy\"", r.puts_busy},
                {"outcome=\"expired\"", r.puts_expired}});
  AppendMetric(out, "mks_storage_group_commits_total", "counter",
               "Synced writes that made concurrent puts durable together.",
               {{"", r.group_commits}});
  AppendMetric(out, "mks_storage_group_commit_puts_total", "counter",
               "Puts those synced writes carried.", {{"", r.group_commit_puts}});
  AppendMetric(out, "mks_storage_gets_total", "counter",
               "Reads served by this replica, by outcome.",
               {{"outcome=\"ok\"", r.gets}, {"outcome=\"failed\"", r.gets_failed}});
  AppendMetric(out, "mks_replica_fenced_total", "counter",
               "Requests refused as routed by a ring older than their partition's change.",
               {{"", r.fenced}});
  AppendMetric(out, "mks_coordinator_stale_retries_total", "counter",
               "Operations redone on a newer ring after a replica fenced them.",
               {{"", c.stale_retries}});
  const StreamStats& streamed = node_->stream().stats();
  AppendMetric(out, "mks_stream_bytes_total", "counter",
               "Key and value bytes of partitions streamed, by direction.",
               {{"direction=\"pulled\"", streamed.bytes_pulled},
                {"direction=\"served\"", streamed.bytes_served}});
  AppendMetric(out, "mks_stream_records_total", "counter", "Records pulled by this node.",
               {{"", streamed.records_pulled}});
  AppendMetric(out, "mks_stream_partitions_total", "counter",
               "Partitions this node copied (reported done) and dropped.",
               {{"event=\"copied\"", streamed.partitions_copied},
                {"event=\"dropped\"", streamed.partitions_dropped}});
  AppendMetric(out, "mks_stream_active_transfers", "gauge",
               "Partitions this node is copying now.",
               {{"", node_->stream().active_transfers()}});
  const Transition* transition = node_->cluster().transition();
  AppendMetric(out, "mks_membership_change_partitions", "gauge",
               "Partitions of the membership change in progress, by state.",
               {{"state=\"changing\"", transition == nullptr ? 0 : transition->changing},
                {"state=\"moved\"", transition == nullptr ? 0 : transition->flipped_at.size()}});
  AppendMetric(out, "mks_timestamp_ceiling_raises_total", "counter",
               "Synced writes of the durable timestamp ceiling.",
               {{"", node_->stats().ceiling_raises}});

  const RpcStats& rpc = node_->rpc().stats();
  AppendMetric(out, "mks_rpc_calls_total", "counter", "RPC calls made, by outcome.",
               {{"outcome=\"succeeded\"", rpc.calls_succeeded},
                {"outcome=\"failed_remotely\"", rpc.calls_failed_remotely},
                {"outcome=\"timed_out\"", rpc.calls_timed_out},
                {"outcome=\"send_failed\"", rpc.calls_send_failed},
                {"outcome=\"cancelled\"", rpc.calls_cancelled}});
  AppendMetric(out, "mks_rpc_requests_received_total", "counter",
               "RPC requests dispatched to a handler.", {{"", rpc.requests_received}});

  const TcpTransportStats& t = transport_->stats();
  AppendMetric(out, "mks_messages_total", "counter",
               "Peer messages by direction.",
               {{"direction=\"sent\"", t.messages_sent},
                {"direction=\"received\"", t.messages_received}});
  AppendMetric(out, "mks_messages_dropped_total", "counter",
               "Peer messages dropped, by reason.",
               {{"reason=\"send_queue_full\"", t.send_queue_full},
                {"reason=\"no_handler\"", t.messages_dropped_no_handler}});
  AppendMetric(out, "mks_peer_bad_frames_total", "counter",
               "Inbound peer streams closed as corrupt.", {{"", t.bad_frames}});
  AppendMetric(out, "mks_peer_connects_total", "counter",
               "Outbound peer connection attempts, by outcome.",
               {{"outcome=\"ok\"", t.connects}, {"outcome=\"failed\"", t.connect_failures}});
  AppendMetric(out, "mks_peers_reachable", "gauge",
               "Members other than this node alive now.", {{"", ReachablePeers()}});
  if (const gossip::Gossip* gossip = node_->gossip()) {
    const gossip::GossipStats& g = gossip->stats();
    const gossip::MemberTable& table = gossip->table();
    AppendMetric(out, "mks_gossip_members", "gauge", "Members in this node's view, by state.",
                 {{"state=\"alive\"", table.InState(gossip::MemberState::kAlive).size()},
                  {"state=\"suspect\"", table.InState(gossip::MemberState::kSuspect).size()},
                  {"state=\"dead\"", table.InState(gossip::MemberState::kDead).size()},
                  {"state=\"left\"", table.InState(gossip::MemberState::kLeft).size()}});
    AppendMetric(out, "mks_gossip_probes_total", "counter", "Probes sent, by outcome.",
                 {{"outcome=\"acked\"", g.probes - g.probe_failures},
                  {"outcome=\"failed\"", g.probe_failures}});
    AppendMetric(out, "mks_gossip_indirect_probes_total", "counter",
                 "Indirect probes asked of other members.", {{"", g.indirect_probes}});
    AppendMetric(out, "mks_gossip_declarations_total", "counter",
                 "Members this node suspected or declared dead itself.",
                 {{"kind=\"suspect\"", g.suspicions}, {"kind=\"dead\"", g.deaths_declared}});
    AppendMetric(out, "mks_gossip_refutations_total", "counter",
                 "Suspicions of this node it refuted.", {{"", g.refutations}});
    AppendMetric(out, "mks_gossip_local_health", "gauge",
                 "Lifeguard local health score (0 healthy).", {{"", gossip->local_health()}});
  }
}

}  // namespace mks::net
