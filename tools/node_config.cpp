#include "tools/node_config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <random>

#include "core/assertions.h"
#include "core/coordinator.h"
#include "core/crc32c.h"
#include "net/tcp_transport.h"

namespace mks::tools {
namespace {

template <typename T>
Status Read(const YAML::Node& value, std::string_view key, T* out) {
  try {
    *out = value.as<T>();
    return Status::Ok();
  } catch (const YAML::Exception& error) {
    return Status::InvalidArgument("config key '" + std::string(key) +
                                   "': " + error.what());
  }
}

Status ApplyKey(const std::string& key, const YAML::Node& value,
                NodeSettings* s) {
  if (key == "node_id") return Read(value, key, &s->node_id);
  if (key == "listen") return Read(value, key, &s->listen);
  if (key == "client_host") return Read(value, key, &s->client_host);
  if (key == "resp_port") return Read(value, key, &s->resp_port);
  if (key == "http_port") return Read(value, key, &s->http_port);
  if (key == "data_dir") return Read(value, key, &s->data_dir);
  if (key == "peers") return Read(value, key, &s->peers);
  if (key == "join") return Read(value, key, &s->join);
  if (key == "bootstrap") return Read(value, key, &s->bootstrap);
  if (key == "force_join") return Read(value, key, &s->force_join);
  if (key == "dead_remove_after_ms") return Read(value, key, &s->dead_remove_after_ms);
  if (key == "secret_file") return Read(value, key, &s->secret_file);
  if (key == "gossip_probe_interval_ms") return Read(value, key, &s->gossip_probe_interval_ms);
  if (key == "gossip_probe_timeout_ms") return Read(value, key, &s->gossip_probe_timeout_ms);
  if (key == "gossip_push_pull_interval_ms") {
    return Read(value, key, &s->gossip_push_pull_interval_ms);
  }
  if (key == "replication_factor") return Read(value, key, &s->replication_factor);
  if (key == "read_consistency") return Read(value, key, &s->read_consistency);
  if (key == "write_consistency") return Read(value, key, &s->write_consistency);
  if (key == "partition_count") return Read(value, key, &s->partition_count);
  if (key == "timeout_ms") return Read(value, key, &s->timeout_ms);
  if (key == "max_waiting_puts") return Read(value, key, &s->max_waiting_puts);
  if (key == "stream_rate_bytes_per_s") return Read(value, key, &s->stream_rate_bytes_per_s);
  if (key == "log_level") return Read(value, key, &s->log_level);
  return Status::InvalidArgument("unknown config key '" + key + "'");
}

// Gossip: timing, seeds, the configured peers and this node's addresses.
Status SetGossipOptions(const NodeSettings& settings,
                        const std::map<NodeId, net::SocketAddress>& peers, NodeOptions* options) {
  gossip::GossipOptions gossip;
  if (settings.gossip_probe_interval_ms <= 0 || settings.gossip_probe_timeout_ms <= 0 ||
      settings.gossip_probe_timeout_ms >= settings.gossip_probe_interval_ms ||
      settings.gossip_push_pull_interval_ms <= 0) {
    return Status::InvalidArgument(
        "gossip timing: the probe timeout must be positive and below the probe interval");
  }
  gossip.probe_interval_ns = settings.gossip_probe_interval_ms * 1'000'000;
  gossip.probe_timeout_ns = settings.gossip_probe_timeout_ms * 1'000'000;
  gossip.push_pull_interval_ns = settings.gossip_push_pull_interval_ms * 1'000'000;
  gossip.join_retry_ns = gossip.probe_interval_ns;
  for (const std::string& seed : settings.join) {
    Result<net::SocketAddress> address = net::ParseSocketAddress(seed);
    if (!address.ok()) {
      return Status::InvalidArgument("join '" + seed + "': " + address.status().message());
    }
    gossip.seeds.push_back(address->ToString());
  }
  options->gossip = std::move(gossip);
  options->addresses.peer = settings.listen;
  options->addresses.resp = settings.client_host + ":" + std::to_string(settings.resp_port);
  options->addresses.http = settings.client_host + ":" + std::to_string(settings.http_port);
  for (const auto& [id, address] : peers) {
    if (id != settings.node_id) options->known_peers[id].peer = address.ToString();
  }
  return Status::Ok();
}


}  // namespace

Status ApplyYaml(std::string_view yaml_text, const std::vector<std::string>& keep,
                 NodeSettings* settings) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml_text));
  } catch (const YAML::Exception& error) {
    return Status::InvalidArgument(std::string("config: ") + error.what());
  }
  if (root.IsNull()) return Status::Ok();
  if (!root.IsMap()) return Status::InvalidArgument("config: not a mapping");
  for (const auto& entry : root) {
    std::string key;
    MKS_RETURN_IF_ERROR(Read(entry.first, "(a key)", &key));
    if (std::find(keep.begin(), keep.end(), key) != keep.end()) continue;
    MKS_RETURN_IF_ERROR(ApplyKey(key, entry.second, settings));
  }
  return Status::Ok();
}

Result<std::map<NodeId, net::SocketAddress>> ParsePeers(const NodeSettings& settings) {
  if (settings.node_id == kNoNode) return Status::InvalidArgument("node id must be positive");
  Result<net::SocketAddress> listen = net::ParseSocketAddress(settings.listen);
  if (!listen.ok()) return Status::InvalidArgument("listen: " + listen.status().message());
  std::map<NodeId, net::SocketAddress> peers;
  for (const std::string& entry : settings.peers) {
    const size_t equals = entry.find('=');
    NodeId id = 0;
    const char* end = entry.data() + (equals == std::string::npos ? 0 : equals);
    if (equals == std::string::npos ||
        std::from_chars(entry.data(), end, id).ptr != end || id == kNoNode) {
      return Status::InvalidArgument("peer '" + entry + "' is not id=host:port");
    }
    if (id >= net::TcpTransport::kFirstAddressOnlyId) {
      return Status::InvalidArgument("peer '" + entry + "': node ids must stay below " +
                                     std::to_string(net::TcpTransport::kFirstAddressOnlyId));
    }
    Result<net::SocketAddress> address = net::ParseSocketAddress(entry.substr(equals + 1));
    if (!address.ok()) {
      return Status::InvalidArgument("peer '" + entry + "': " + address.status().message());
    }
    if (!peers.emplace(id, *address).second) {
      return Status::InvalidArgument("peer " + std::to_string(id) + " listed twice");
    }
  }
  if (settings.node_id >= net::TcpTransport::kFirstAddressOnlyId) {
    return Status::InvalidArgument("node id must stay below " +
                                   std::to_string(net::TcpTransport::kFirstAddressOnlyId));
  }
  // A newcomer with seeds and no list learns the cluster through gossip.
  if (peers.empty() && !settings.join.empty()) return peers;
  const auto self = peers.find(settings.node_id);
  if (self == peers.end()) {
    peers.emplace(settings.node_id, *listen);
  } else if (!(self->second == *listen)) {
    return Status::InvalidArgument("peer list gives this node " + self->second.ToString() +
                                   " but it listens on " + listen->ToString());
  }
  MKS_ASSERT(peers.contains(settings.node_id));
  return peers;
}

Result<NodeOptions> MakeNodeOptions(const NodeSettings& settings,
                                    const std::map<NodeId, net::SocketAddress>& peers) {
  MKS_ASSERT(!peers.empty() || !settings.join.empty());
  NodeOptions options;
  if (!peers.empty()) {
    std::vector<NodeId> ids;
    for (const auto& [id, address] : peers) ids.push_back(id);
    // Seated by ascending id: the configuration names no seats, and every
    // node must agree whatever order its file lists the peers in.
    Result<MemberList> members = MemberList::FromIds(std::move(ids));
    if (!members.ok()) return members.status();
    options.members = std::move(*members);
    // Nodes configured with the same peers bootstrap the same cluster.
    std::string peer_list;
    for (const auto& [id, address] : peers) {
      peer_list += std::to_string(id) + "=" + address.ToString() + ";";
    }
    char id_hex[9];
    std::snprintf(id_hex, sizeof(id_hex), "%08x", Crc32c(peer_list));
    options.cluster_id = std::string("static-") + id_hex;
  }
  if (settings.bootstrap) {
    if (peers.size() > 1) {
      return Status::InvalidArgument(
          "bootstrap creates a cluster of this node alone: give no other peers (they join)");
    }
    options.members = MemberList::FromIds({settings.node_id}).value();
    std::random_device entropy;
    char id_hex[17];
    std::snprintf(id_hex, sizeof(id_hex), "%08x%08x", entropy(), entropy());
    options.cluster_id = id_hex;
  }
  options.join_force = settings.force_join;
  if (settings.dead_remove_after_ms < 0) {
    return Status::InvalidArgument("dead_remove_after_ms must be 0 (never) or positive");
  }
  options.dead_remove_after_ms = static_cast<uint64_t>(settings.dead_remove_after_ms);
  MKS_RETURN_IF_ERROR(SetGossipOptions(settings, peers, &options));
  options.ring.partition_count = settings.partition_count;
  options.ring.replication_factor = settings.replication_factor;
  Result<Consistency> read = ParseConsistency(settings.read_consistency);
  if (!read.ok()) return Status::InvalidArgument("read consistency: " + read.status().message());
  Result<Consistency> write = ParseConsistency(settings.write_consistency);
  if (!write.ok()) return Status::InvalidArgument("write consistency: " + write.status().message());
  if (read->level == ConsistencyLevel::kDefault || write->level == ConsistencyLevel::kDefault) {
    return Status::InvalidArgument("a node's default consistency cannot be DEFAULT");
  }
  const uint32_t effective_n =
      std::min<uint32_t>(settings.replication_factor, static_cast<uint32_t>(peers.size()));
  for (const Consistency level : {*read, *write}) {
    if (effective_n == 0) break;
    Result<uint32_t> needed = RequiredReplies(level, effective_n);
    if (!needed.ok()) return Status::InvalidArgument("consistency: " + needed.status().message());
  }
  options.coordinator.default_read = *read;
  options.coordinator.default_write = *write;
  if (settings.timeout_ms <= 0) return Status::InvalidArgument("timeout_ms must be positive");
  options.coordinator.timeout_ns = settings.timeout_ms * 1'000'000;
  if (settings.max_waiting_puts == 0) {
    return Status::InvalidArgument("max_waiting_puts must be positive");
  }
  options.replica.max_waiting_puts = settings.max_waiting_puts;
  options.stream.rate_bytes_per_s = settings.stream_rate_bytes_per_s;
  MKS_ASSERT(settings.bootstrap || options.members.size() == peers.size());
  return options;
}

}  // namespace mks::tools
