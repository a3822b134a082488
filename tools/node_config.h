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
//                                   # member's moves only its own share
//   replication_factor: 3           # N
//   read_consistency: quorum        # default R: one, quorum, all or a count
//   write_consistency: quorum       # default W
//   partition_count: 256            # Q, a power of two
//   timeout_ms: 1000                # per client operation
//   max_waiting_puts: 1024          # replica puts queued behind a sync
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
  uint32_t replication_factor = 3;
  std::string read_consistency = "quorum";
  std::string write_consistency = "quorum";
  uint32_t partition_count = 256;
  int64_t timeout_ms = 1000;
  uint32_t max_waiting_puts = ReplicaOptions{}.max_waiting_puts;
  std::string log_level = "info";
};

// Sets every field of *settings that `yaml_text` names and `keep` does not
// (the options given on the command line win). InvalidArgument naming the
// key for YAML syntax errors, unknown keys and ill-typed values.
Status ApplyYaml(std::string_view yaml_text, const std::vector<std::string>& keep,
                 NodeSettings* settings);

// Parses the peer list into id -> address, adding this node's own listen
// address when the list leaves it out. InvalidArgument for a malformed
// entry, id 0, a duplicate id, or a listed address for this node that
// differs from `listen`.
Result<std::map<NodeId, net::SocketAddress>> ParsePeers(const NodeSettings& settings);

// The Node's options for `settings`: members from `peers`, N, Q, the
// default consistencies and the timeout. InvalidArgument when a level does
// not parse or a number is out of range.
Result<NodeOptions> MakeNodeOptions(const NodeSettings& settings,
                                    const std::map<NodeId, net::SocketAddress>& peers);

}  // namespace mks::tools
