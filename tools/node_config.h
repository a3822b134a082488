// mks-node's settings: what a YAML config file and the command line both
// set, and how they become the options of a Node and its servers.
//
// YAML keys (all optional in the file; the command line overrides them):
//   node_id: 1
//   listen: 127.0.0.1:7001          # peer address of this node
//   client_host: 127.0.0.1          # where RESP and HTTP listen
//   resp_port: 6379
//   http_port: 8080
//   data_dir: /var/lib/mks/1
//   peers: ["1=127.0.0.1:7001", "2=127.0.0.1:7002", "3=127.0.0.1:7003"]
//                                   # the members, in any order; the ring
//                                   # seats them by ascending id, so a node
//                                   # added with a larger id than every
//                                   # member's moves only its own share.
//                                   # The list only bootstraps a cluster.
//                                   # Absent with join: the node asks to be
//                                   # seated; absent without join: a
//                                   # one-node cluster
//   join: ["127.0.0.1:7001"]        # seed addresses: gossip joins through
//                                   # them, and the node asks them to seat
//                                   # it in their cluster
//   bootstrap: false                # true: create a new cluster of this
//                                   # node alone (first start only)
//   force_join: false               # join a cluster that holds data
//   dead_remove_after_ms: 0         # the leader removes a member dead in
//                                   # gossip this long; 0: never
//   secret_file: /etc/mks/secret    # the cluster secret (16 bytes or more):
//                                   # peers must prove it on every
//                                   # connection; absent: not authenticated
//   gossip_probe_interval_ms: 1000  # SWIM protocol period
//   gossip_probe_timeout_ms: 500    # ack timeout of a probe
//   gossip_push_pull_interval_ms: 30000
//   replication_factor: 3           # N
//   read_consistency: quorum        # default R: one, quorum, all or a count
//   write_consistency: quorum       # default W
//   partition_count: 256            # Q, a power of two
//   timeout_ms: 1000                # per client operation
//   max_waiting_puts: 1024          # replica puts queued behind a sync
//   stream_rate_bytes_per_s: 67108864
//                                   # bytes a joining (pending) replica
//                                   # pulls per second over all its
//                                   # partition streams; 0: no limit
//   log_level: info                 # debug, info, warn, error
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/node.h"
#include "core/status.h"
#include "net/socket.h"

namespace mks::tools {

struct NodeSettings {
  uint32_t node_id = 0;
  std::string listen;
  std::string client_host = "127.0.0.1";
  uint16_t resp_port = 6379;
  uint16_t http_port = 8080;
  std::string data_dir;
  std::vector<std::string> peers;  // "id=host:port"
  std::vector<std::string> join;   // seed addresses, "host:port"
  std::string secret_file;          // "": peers are not authenticated
  int64_t gossip_probe_interval_ms = 1000;
  int64_t gossip_probe_timeout_ms = 500;
  int64_t gossip_push_pull_interval_ms = 30000;
  uint32_t replication_factor = 3;
  std::string read_consistency = "quorum";
  std::string write_consistency = "quorum";
  uint32_t partition_count = 256;
  int64_t timeout_ms = 1000;
  uint32_t max_waiting_puts = ReplicaOptions{}.max_waiting_puts;
  // Bytes pulled per second by this node's partition streams; 0: no limit.
  uint64_t stream_rate_bytes_per_s = StreamOptions{}.rate_bytes_per_s;
  std::string log_level = "info";
  // Create a new cluster of this node alone (a fresh cluster id), when the
  // data directory holds none yet.
  bool bootstrap = false;
  // Join even though the cluster holds data (it does not move yet).
  bool force_join = false;
  // Remove a member dead in gossip this long; 0: never (the default).
  int64_t dead_remove_after_ms = 0;
};

// Sets every field of *settings that `yaml_text` names and `keep` does not
// (the options given on the command line win). InvalidArgument naming the
// key for YAML syntax errors, unknown keys and ill-typed values.
Status ApplyYaml(std::string_view yaml_text, const std::vector<std::string>& keep,
                 NodeSettings* settings);

// Parses the peer list into id -> address, adding this node's own listen
// address when the list leaves it out; empty when the node joins through
// seeds without a list (it then owns no data). InvalidArgument for a
// malformed entry, id 0 or one reserved by the transport, a duplicate id,
// or a listed address for this node that differs from `listen`.
Result<std::map<NodeId, net::SocketAddress>> ParsePeers(const NodeSettings& settings);

// The Node's options for `settings`: members from `peers`, N, Q, the
// default consistencies, the timeout, the stream rate, and gossip (seeds from `join`, the
// configured peers known from the start, this node's addresses).
// InvalidArgument when a level or seed does not parse or a number is out
// of range.
Result<NodeOptions> MakeNodeOptions(const NodeSettings& settings,
                                    const std::map<NodeId, net::SocketAddress>& peers);

}  // namespace mks::tools
