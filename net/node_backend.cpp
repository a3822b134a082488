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
  MKS_ASSERT_EQ(peers_.size(), node_->ring().members().size());
  MKS_ASSERT(peers_.contains(node_->id()));
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

uint32_t NodeBackend::ReachablePeers() const {
  uint32_t reachable = 0;
  for (const auto& [id, address] : peers_) {
    if (id != node_->id() && transport_->connected_to(id)) ++reachable;
  }
  MKS_ASSERT_LT(reachable, peers_.size());
  return reachable;
}

BackendStatus NodeBackend::Describe() const {
  const Ring& ring = node_->ring();
  BackendStatus status;
  status.node_id = node_->id();
  status.ring_epoch = ring.epoch();
  status.member_count = static_cast<uint32_t>(ring.members().size());
  status.partition_count = ring.partition_count();
  status.replication_factor = ring.replication_factor();
  status.default_read = node_->options().coordinator.default_read;
  status.default_write = node_->options().coordinator.default_write;
  status.uptime_ms = (clock_->MonotonicNanos() - start_ns_) / 1'000'000;
  status.reachable_peers = ReachablePeers();
  MKS_ASSERT_GE(status.uptime_ms, 0);
  return status;
}

std::vector<MemberStatus> NodeBackend::Members() const {
  std::vector<MemberStatus> members;
  for (const auto& [id, address] : peers_) {
    const bool self = id == node_->id();
    members.push_back(
        {id, address.ToString(), self, self || transport_->connected_to(id)});
  }
  MKS_ASSERT_EQ(members.size(), peers_.size());
  return members;
}

bool NodeBackend::Ready() const {
  Result<uint32_t> needed = RequiredReplies(
      node_->options().coordinator.default_write, node_->ring().replication_factor());
  // A default that is itself "default" or out of range cannot be met.
  if (!needed.ok()) return false;
  return 1 + ReachablePeers() >= *needed;
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
               "Peers whose outbound connection is up now.", {{"", ReachablePeers()}});
}

}  // namespace mks::net
