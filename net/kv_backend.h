// KvBackend: what the client front-ends (RESP, HTTP) need from a node.
//
// The front-ends speak to this interface rather than to core's Node, so
// their command handling is tested against a small in-memory backend
// (net/fake_kv_backend_for_test.h) and runs in production over a Node
// (net/node_backend.h). Get/Put/Delete keep the coordinator's contract
// (core/coordinator.h): success only with the quorum, Unavailable saying how
// many replicas answered, InvalidArgument for bad input, "not found" as a
// successful read with found == false.
//
// Threading: every method is called on the node's scheduler thread; Get,
// Put and Delete only from a fiber of the node's process, since they wait.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/coordinator.h"
#include "core/env.h"
#include "core/ring.h"
#include "core/status.h"

namespace mks::net {

// A summary of the node for /v1/status and INFO.
struct BackendStatus {
  NodeId node_id = kNoNode;
  uint64_t ring_epoch = 0;
  uint32_t member_count = 0;
  uint32_t partition_count = 0;
  uint32_t replication_factor = 0;  // the effective N
  Consistency default_read;
  Consistency default_write;
  int64_t uptime_ms = 0;
  uint32_t reachable_peers = 0;  // members other than this node alive now
  // In the member list: holds partitions. False for a newcomer found by
  // gossip, which coordinates nothing until membership places it.
  bool owns_data = true;
  // The cluster's metadata log as this node holds it (core/cluster_state.h,
  // core/raft): "" and zeros before the node belongs to a cluster.
  std::string cluster_id;
  NodeId leader = kNoNode;  // kNoNode: none known
  std::string raft_role;    // follower, pre-candidate, candidate, leader
  uint64_t raft_term = 0;
  uint64_t commit_index = 0;
  uint64_t applied_index = 0;
  uint64_t epoch = 0;
  std::vector<NodeId> voters;    // ascending
  std::vector<NodeId> learners;  // ascending
  // The membership change in progress (core/cluster_state.h), if any.
  struct Change {
    std::string kind;  // "join" or "leave"
    NodeId node = kNoNode;
    uint64_t begin_epoch = 0;
    uint32_t partitions_changing = 0;
    uint32_t partitions_moved = 0;  // flipped
    // Partitions not flipped yet, each with its pending replicas that have
    // not reported their copy.
    std::vector<std::pair<uint32_t, std::vector<NodeId>>> waiting;
  };
  std::optional<Change> change;
  // This node's streaming (core/stream.h).
  uint64_t stream_partitions_copied = 0;
  uint64_t stream_bytes_pulled = 0;
  uint64_t stream_records_pulled = 0;
  uint64_t stream_bytes_served = 0;
  uint64_t stream_partitions_dropped = 0;
  uint32_t stream_active = 0;
  uint32_t stream_drops_pending = 0;
  uint64_t stream_rate_bytes_per_s = 0;  // while it pulled
};

// One member of the cluster as this node sees it.
struct MemberStatus {
  NodeId id = kNoNode;
  std::string peer_address;  // "host:port"
  bool self = false;
  bool reachable = false;  // self, or heard of and alive (or suspect) in this node's view
  // This node's gossip view of it: "alive", "suspect", "dead", "left", or
  // "unknown" (configured, not heard of yet); "" when gossip is off.
  std::string state;
  uint64_t incarnation = 0;
  int64_t last_heard_ms_ago = -1;  // -1: never heard from it directly
  std::string resp_address;        // "" when it did not say
  std::string http_address;
  bool owns_data = false;  // in the member list (holds partitions)
  // Its state in the cluster's metadata: "joining", "normal", "leaving", or
  // "" when not seated.
  std::string membership;
};

class KvBackend {
 public:
  virtual ~KvBackend() = default;

  // Reads `key` at `consistency`. Fails as Coordinator::Get.
  virtual Result<ReadResult> Get(std::string_view key,
                                 Consistency consistency) = 0;
  // Writes `value` under `key`. Fails as Coordinator::Put.
  virtual Result<WriteResult> Put(std::string_view key, std::string value,
                                  Consistency consistency) = 0;
  // Writes a tombstone for `key`. Fails as Coordinator::Delete.
  virtual Result<WriteResult> Delete(std::string_view key,
                                     Consistency consistency) = 0;

  // The node's summary now. Never fails.
  virtual BackendStatus Describe() const = 0;
  // Every member, ascending by id, this node included.
  virtual std::vector<MemberStatus> Members() const = 0;
  // The ring requests are routed by, living as long as the backend; null
  // when the node knows no member list (it joined through gossip).
  virtual const Ring* ring() const = 0;
  // Why the node cannot serve requests at the default consistency now (it
  // owns no data, or too few members are alive for the quorum); "" when it
  // can. Liveness is separate: a backend that exists is alive.
  virtual std::string NotReadyReason() const = 0;
  bool Ready() const { return NotReadyReason().empty(); }
  // Makes `node` leave the cluster (through the metadata log's leader):
  // its data streams to the members taking its partitions over; with
  // `force` it is unseated at once, its data not moved. Returns the epoch
  // after the change began. Inside a fiber.
  virtual Result<uint64_t> RemoveMember(NodeId node, bool force) = 0;
  // Appends the node's counters in Prometheus text exposition format
  // (HELP and TYPE lines, then samples), every name prefixed "mks_".
  virtual void AppendMetrics(std::string* out) const = 0;
};

}  // namespace mks::net
