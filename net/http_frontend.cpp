#include "net/http_frontend.h"

#include <cstdint>
#include <cstdlib>
#include <optional>
#include <vector>

#include "core/assertions.h"
#include "core/coordinator.h"

namespace mks::net {
namespace {

constexpr std::string_view kKeyPrefix = "/v1/kv/";

http::Response Json(int status, std::string body) {
  body += "\n";
  return {status, {{"Content-Type", "application/json"}}, std::move(body)};
}

http::Response Text(int status, std::string body) {
  return {status, {{"Content-Type", "text/plain; charset=utf-8"}}, std::move(body)};
}

http::Response Error(int status, std::string_view message) {
  return Json(status, "{\"error\":" + JsonString(message) + "}");
}

http::Response StatusError(const mks::Status& status) {
  MKS_ASSERT(!status.ok());
  switch (status.code()) {
    case StatusCode::kInvalidArgument: return Error(400, status.message());
    case StatusCode::kUnavailable: return Error(503, status.message());
    case StatusCode::kTimedOut: return Error(504, status.message());
    case StatusCode::kNotFound: return Error(404, status.message());
    default: return Error(500, status.ToString());
  }
}

std::string JsonIds(const std::vector<NodeId>& ids) {
  std::string out = "[";
  for (size_t i = 0; i < ids.size(); ++i) out += (i > 0 ? "," : "") + std::to_string(ids[i]);
  return out + "]";
}

// The metadata log's fields of `status`, as JSON members (no braces).
std::string ClusterFields(const BackendStatus& status) {
  return "\"cluster_id\":" + JsonString(status.cluster_id) +
         ",\"leader\":" + std::to_string(status.leader) +
         ",\"raft_role\":" + JsonString(status.raft_role) +
         ",\"term\":" + std::to_string(status.raft_term) +
         ",\"commit_index\":" + std::to_string(status.commit_index) +
         ",\"applied_index\":" + std::to_string(status.applied_index) +
         ",\"epoch\":" + std::to_string(status.epoch) +
         ",\"voters\":" + JsonIds(status.voters) + ",\"learners\":" + JsonIds(status.learners);
}

http::Response MethodNotAllowed(std::string_view allow) {
  http::Response response = Error(405, "method not allowed");
  response.headers.push_back({"Allow", std::string(allow)});
  return response;
}

std::string VersionText(const Version& version) {
  return std::to_string(version.timestamp.physical_ms) + "." +
         std::to_string(version.timestamp.logical) + "@" +
         std::to_string(version.origin);
}

http::Response WriteAnswer(const Result<WriteResult>& written) {
  if (!written.ok()) return StatusError(written.status());
  MKS_ASSERT_GT(written->acks, 0u);
  return Json(200, "{\"acks\":" + std::to_string(written->acks) +
                       ",\"version\":" + JsonString(VersionText(written->version)) + "}");
}

}  // namespace

std::string JsonString(std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "\"";
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (byte < 0x20 || byte >= 0x7f) {
      out += "\\u00";
      out += kHex[byte >> 4];
      out += kHex[byte & 0xf];
    } else {
      out += c;
    }
  }
  out += '"';
  MKS_ASSERT_GE(out.size(), text.size() + 2);
  return out;
}

HttpFrontEnd::HttpFrontEnd(KvBackend* backend) : backend_(backend) {
  MKS_ASSERT(backend_ != nullptr);
}

http::Response HttpFrontEnd::Handle(const http::Request& request) {
  const std::string_view path = request.path();
  if (path.starts_with(kKeyPrefix)) {
    Result<std::string> key = http::PercentDecode(path.substr(kKeyPrefix.size()));
    if (!key.ok()) return Error(400, key.status().message());
    if (key->empty()) return Error(400, "empty key");
    return HandleKey(request, std::move(*key));
  }
  const bool read_only = request.method == "GET" || request.method == "HEAD";
  if (path == "/v1/cluster/remove") {
    if (request.method != "POST") return MethodNotAllowed("POST");
    return Remove(request);
  }
  if (path == "/v1/status" || path == "/v1/members" || path == "/v1/ring" ||
      path == "/v1/cluster" || path == "/metrics" || path == "/healthz" || path == "/readyz") {
    if (!read_only) return MethodNotAllowed("GET, HEAD");
  } else {
    return Error(404, "no such path: " + std::string(path));
  }
  if (path == "/v1/status") return Status();
  if (path == "/v1/cluster") return Cluster();
  if (path == "/v1/members") return Members();
  if (path == "/v1/ring") return RingJson();
  if (path == "/metrics") return Metrics();
  if (path == "/healthz") return Text(200, "ok\n");
  MKS_ASSERT(path == "/readyz");
  const std::string reason = backend_->NotReadyReason();
  return reason.empty() ? Text(200, "ready\n") : Text(503, "not ready: " + reason + "\n");
}

http::Response HttpFrontEnd::HandleKey(const http::Request& request,
                                       std::string key) {
  MKS_ASSERT(!key.empty());
  Consistency consistency = Consistency::Default();
  const std::optional<std::string> level =
      http::QueryParameter(request.query(), "consistency");
  if (level.has_value()) {
    Result<Consistency> parsed = ParseConsistency(*level);
    if (!parsed.ok()) return StatusError(parsed.status());
    consistency = *parsed;
  }
  if (request.method == "PUT") {
    return WriteAnswer(backend_->Put(key, request.body, consistency));
  }
  if (request.method == "DELETE") {
    return WriteAnswer(backend_->Delete(key, consistency));
  }
  if (request.method != "GET" && request.method != "HEAD") {
    return MethodNotAllowed("GET, HEAD, PUT, DELETE");
  }
  Result<ReadResult> read = backend_->Get(key, consistency);
  if (!read.ok()) return StatusError(read.status());
  if (!read->found) return Error(404, "not found");
  MKS_ASSERT(read->version.has_value() && !read->version->tombstone);
  return {200,
          {{"Content-Type", "application/octet-stream"},
           {"X-Mks-Version", VersionText(*read->version)}},
          read->version->value};
}

http::Response HttpFrontEnd::Status() const {
  const BackendStatus status = backend_->Describe();
  MKS_ASSERT_NE(status.node_id, kNoNode);
  return Json(
      200,
      "{\"node_id\":" + std::to_string(status.node_id) +
          ",\"ready\":" + (backend_->Ready() ? "true" : "false") +
          ",\"owns_data\":" + (status.owns_data ? "true" : "false") +
          ",\"uptime_ms\":" + std::to_string(status.uptime_ms) +
          ",\"ring_epoch\":" + std::to_string(status.ring_epoch) +
          ",\"members\":" + std::to_string(status.member_count) +
          ",\"reachable_peers\":" + std::to_string(status.reachable_peers) +
          ",\"partition_count\":" + std::to_string(status.partition_count) +
          ",\"replication_factor\":" + std::to_string(status.replication_factor) +
          ",\"default_read\":" + JsonString(ToString(status.default_read)) +
          ",\"default_write\":" + JsonString(ToString(status.default_write)) + "," +
          ClusterFields(status) + "}");
}

http::Response HttpFrontEnd::Cluster() const {
  const BackendStatus status = backend_->Describe();
  std::string members = "[";
  for (const MemberStatus& member : backend_->Members()) {
    if (member.membership.empty()) continue;
    if (members.size() > 1) members += ",";
    members += "{\"id\":" + std::to_string(member.id) +
               ",\"membership\":" + JsonString(member.membership) +
               ",\"peer_address\":" + JsonString(member.peer_address) +
               ",\"reachable\":" + (member.reachable ? "true" : "false") + "}";
  }
  return Json(200, "{\"node_id\":" + std::to_string(status.node_id) + "," +
                       ClusterFields(status) + ",\"members\":" + members + "]}");
}

http::Response HttpFrontEnd::Remove(const http::Request& request) {
  const BackendStatus status = backend_->Describe();
  NodeId node = status.node_id;  // no node named: decommission this one
  if (const std::optional<std::string> named = http::QueryParameter(request.query(), "node")) {
    char* end = nullptr;
    const unsigned long parsed = std::strtoul(named->c_str(), &end, 10);
    if (named->empty() || *end != '\0' || parsed == 0 || parsed > UINT32_MAX) {
      return Error(400, "node must be a node id, not '" + *named + "'");
    }
    node = static_cast<NodeId>(parsed);
  }
  const std::optional<std::string> force = http::QueryParameter(request.query(), "force");
  if (force.has_value() && *force != "true" && *force != "false") {
    return Error(400, "force must be true or false");
  }
  Result<uint64_t> epoch = backend_->RemoveMember(node, force.has_value() && *force == "true");
  if (!epoch.ok()) return StatusError(epoch.status());
  return Json(200, "{\"removed\":" + std::to_string(node) +
                       ",\"epoch\":" + std::to_string(*epoch) + "}");
}

http::Response HttpFrontEnd::Members() const {
  std::string body = "[";
  for (const MemberStatus& member : backend_->Members()) {
    MKS_ASSERT_NE(member.id, kNoNode);
    if (body.size() > 1) body += ",";
    body += "{\"id\":" + std::to_string(member.id) +
            ",\"peer_address\":" + JsonString(member.peer_address) +
            ",\"self\":" + (member.self ? "true" : "false") +
            ",\"reachable\":" + (member.reachable ? "true" : "false") +
            ",\"state\":" + JsonString(member.state) +
            ",\"incarnation\":" + std::to_string(member.incarnation) +
            ",\"last_heard_ms_ago\":" + std::to_string(member.last_heard_ms_ago) +
            ",\"resp_address\":" + JsonString(member.resp_address) +
            ",\"http_address\":" + JsonString(member.http_address) +
            ",\"owns_data\":" + (member.owns_data ? "true" : "false") +
            ",\"membership\":" + JsonString(member.membership) + "}";
  }
  return Json(200, body + "]");
}

namespace {

std::string NodeList(std::span<const NodeId> nodes) {
  std::string out = "[";
  for (size_t i = 0; i < nodes.size(); ++i) out += (i > 0 ? "," : "") + std::to_string(nodes[i]);
  return out + "]";
}

}  // namespace

http::Response HttpFrontEnd::RingJson() const {
  if (backend_->ring() == nullptr) {
    return Error(503, "this node knows no member list yet (it joined through gossip)");
  }
  const Ring& ring = *backend_->ring();
  std::string body = "{\"epoch\":" + std::to_string(ring.epoch()) +
                     ",\"partition_count\":" + std::to_string(ring.partition_count()) +
                     ",\"replication_factor\":" +
                     std::to_string(ring.replication_factor()) + ",\"members\":[";
  // In seat order: placement follows the seats (core/member_list.h).
  const std::vector<NodeId>& by_seat = ring.member_list().by_seat();
  for (size_t i = 0; i < by_seat.size(); ++i) {
    if (i > 0) body += ",";
    body += std::to_string(by_seat[i]);
  }
  body += "],\"partitions\":[";
  for (PartitionId partition = 0; partition < ring.partition_count(); ++partition) {
    if (partition > 0) body += ",";
    body += NodeList(ring.PreferenceList(partition));
  }
  body += "],\"pending\":[";
  bool first = true;
  for (PartitionId partition = 0; partition < ring.partition_count(); ++partition) {
    const std::vector<NodeId> pending = ring.PendingReplicas(partition);
    if (pending.empty()) continue;
    body += std::string(first ? "" : ",") + "{\"partition\":" + std::to_string(partition) +
            ",\"pending\":" + NodeList(pending) + "}";
    first = false;
  }
  const BackendStatus status = backend_->Describe();
  body += "],\"change\":";
  if (status.change.has_value()) {
    const BackendStatus::Change& change = *status.change;
    body += "{\"kind\":" + JsonString(change.kind) + ",\"node\":" + std::to_string(change.node) +
            ",\"begin_epoch\":" + std::to_string(change.begin_epoch) +
            ",\"partitions_changing\":" + std::to_string(change.partitions_changing) +
            ",\"partitions_moved\":" + std::to_string(change.partitions_moved) +
            ",\"waiting\":[";
    for (size_t i = 0; i < change.waiting.size(); ++i) {
      body += std::string(i > 0 ? "," : "") + "{\"partition\":" +
              std::to_string(change.waiting[i].first) +
              ",\"copying\":" + NodeList(change.waiting[i].second) + "}";
    }
    body += "]}";
  } else {
    body += "null";
  }
  body += ",\"streams\":{\"partitions_copied\":" + std::to_string(status.stream_partitions_copied) +
          ",\"bytes_pulled\":" + std::to_string(status.stream_bytes_pulled) +
          ",\"records_pulled\":" + std::to_string(status.stream_records_pulled) +
          ",\"rate_bytes_per_s\":" + std::to_string(status.stream_rate_bytes_per_s) +
          ",\"bytes_served\":" + std::to_string(status.stream_bytes_served) +
          ",\"active\":" + std::to_string(status.stream_active) +
          ",\"partitions_dropped\":" + std::to_string(status.stream_partitions_dropped) +
          ",\"drops_pending\":" + std::to_string(status.stream_drops_pending) + "}";
  return Json(200, body + "}");
}

http::Response HttpFrontEnd::Metrics() const {
  std::string body;
  backend_->AppendMetrics(&body);
  return {200, {{"Content-Type", "text/plain; version=0.0.4; charset=utf-8"}},
          std::move(body)};
}

}  // namespace mks::net
