// NodeBackend: the production KvBackend, a core Node reached over TCP.
//
// Client operations go straight to the node's coordinator. Members and
// their reachability come from the node's gossip view (alive or suspect is
// reachable), or, for a node without gossip, from the transport (a peer is
// reachable while this node's outbound connection to it is up). The
// metrics are the counters of the node's parts: coordinator (operations,
// quorum failures, read repairs), replica service and store (storage),
// gossip (membership), RPC endpoint and transport (messages).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/node.h"
#include "net/kv_backend.h"
#include "net/socket.h"
#include "net/tcp_transport.h"

namespace mks::net {

class NodeBackend final : public KvBackend {
 public:
  // `node`, `transport` and `clock` must outlive the backend; `peers` maps
  // the configured members to their peer addresses (empty for a node that
  // joined through gossip). Uptime counts from construction.
  NodeBackend(Node* node, const TcpTransport* transport, Clock* clock,
              std::map<NodeId, SocketAddress> peers);

  Result<ReadResult> Get(std::string_view key, Consistency consistency) override;
  Result<WriteResult> Put(std::string_view key, std::string value,
                          Consistency consistency) override;
  Result<WriteResult> Delete(std::string_view key,
                             Consistency consistency) override;
  BackendStatus Describe() const override;
  std::vector<MemberStatus> Members() const override;
  const Ring* ring() const override { return node_->ring().get(); }
  // Ready when this node is in the member list and it plus the members
  // alive are at least the replies the default write consistency needs from
  // N replicas. A coarse test: it does not check every partition's own
  // replicas.
  Result<uint64_t> RemoveMember(NodeId node, bool force) override;
  std::string NotReadyReason() const override;
  void AppendMetrics(std::string* out) const override;

 private:
  // Members of the member list other than this node that are alive now.
  uint32_t ReachablePeers() const;
  bool IsReachable(NodeId id) const;

  Node* const node_;
  const TcpTransport* const transport_;
  Clock* const clock_;
  const std::map<NodeId, SocketAddress> peers_;
  const int64_t start_ns_;
};

}  // namespace mks::net
