#include "net/resp_frontend.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <string>
#include <string_view>
#include <vector>

#include "core/assertions.h"

namespace mks::net {
namespace {

std::string Upper(std::string_view text) {
  std::string upper(text);
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return upper;
}

std::string Lower(std::string_view text) {
  std::string lower(text);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return lower;
}

// What COMMAND reports for each command, as Redis describes its own: arity
// (negative: at least that many words), flags, and where the keys are.
struct CommandSpec {
  std::string_view name;
  int arity;
  std::string_view flag;  // "write", "readonly" or "fast"
  int first_key;
  int last_key;
  int key_step;
};

constexpr std::array<CommandSpec, 15> kCommands = {{
    {"get", -2, "readonly", 1, 1, 1},
    {"set", -3, "write", 1, 1, 1},
    {"del", -2, "write", 1, -1, 1},
    {"exists", -2, "readonly", 1, -1, 1},
    {"mget", -2, "readonly", 1, -1, 1},
    {"mset", -3, "write", 1, -1, 2},
    {"consistency", -1, "fast", 0, 0, 0},
    {"ping", -1, "fast", 0, 0, 0},
    {"echo", 2, "fast", 0, 0, 0},
    {"info", -1, "fast", 0, 0, 0},
    {"quit", -1, "fast", 0, 0, 0},
    {"command", -1, "fast", 0, 0, 0},
    {"config", -2, "fast", 0, 0, 0},
    {"hello", -1, "fast", 0, 0, 0},
    {"client", -2, "fast", 0, 0, 0},
}};

const CommandSpec* FindSpec(std::string_view lower_name) {
  for (const CommandSpec& spec : kCommands) {
    if (spec.name == lower_name) return &spec;
  }
  return nullptr;
}

bool ArityMatches(const CommandSpec& spec, size_t words) {
  const auto arity = static_cast<size_t>(spec.arity < 0 ? -spec.arity : spec.arity);
  return spec.arity < 0 ? words >= arity : words == arity;
}

void AppendArityError(std::string* reply, std::string_view lower_name) {
  resp::AppendError(reply, "ERR wrong number of arguments for '" +
                               std::string(lower_name) + "' command");
}

void AppendUnknownCommand(std::string* reply, const resp::Command& command) {
  std::string message = "ERR unknown command '" + command[0] +
                        "', with args beginning with: ";
  for (size_t i = 1; i < command.size() && i < 4; ++i) {
    message += "'" + command[i].substr(0, 64) + "' ";
  }
  resp::AppendError(reply, message);
}

void AppendSpec(std::string* reply, const CommandSpec& spec) {
  resp::AppendArrayHeader(reply, 6);
  resp::AppendBulkString(reply, spec.name);
  resp::AppendInteger(reply, spec.arity);
  resp::AppendArrayHeader(reply, 1);
  resp::AppendSimpleString(reply, spec.flag);
  resp::AppendInteger(reply, spec.first_key);
  resp::AppendInteger(reply, spec.last_key);
  resp::AppendInteger(reply, spec.key_step);
}

}  // namespace

void AppendStatusError(std::string* reply, const Status& status) {
  MKS_ASSERT(!status.ok());
  switch (status.code()) {
    case StatusCode::kUnavailable:
      resp::AppendError(reply, "UNAVAILABLE " + status.message());
      return;
    case StatusCode::kTimedOut:
      resp::AppendError(reply, "TIMEOUT " + status.message());
      return;
    case StatusCode::kInvalidArgument:
      resp::AppendError(reply, "ERR " + status.message());
      return;
    default:
      resp::AppendError(reply, "ERR " + status.ToString());
      return;
  }
}

RespConnection::RespConnection(KvBackend* backend) : backend_(backend) {
  MKS_ASSERT(backend_ != nullptr);
}

AfterReply RespConnection::Execute(const resp::Command& command,
                                   std::string* reply) {
  MKS_ASSERT(!command.empty());
  const size_t reply_bytes_before = reply->size();
  const std::string name = Lower(command[0]);
  const CommandSpec* spec = FindSpec(name);
  if (spec == nullptr) {
    AppendUnknownCommand(reply, command);
    return AfterReply::kContinue;
  }
  if (!ArityMatches(*spec, command.size())) {
    AppendArityError(reply, name);
    return AfterReply::kContinue;
  }
  AfterReply after = AfterReply::kContinue;
  if (name == "get") {
    Get(command, reply);
  } else if (name == "set") {
    Set(command, reply);
  } else if (name == "del") {
    Del(command, reply);
  } else if (name == "exists") {
    Exists(command, reply);
  } else if (name == "mget") {
    MultiGet(command, reply);
  } else if (name == "mset") {
    MultiSet(command, reply);
  } else if (name == "consistency") {
    SetConsistency(command, reply);
  } else if (name == "ping") {
    if (command.size() == 1) {
      resp::AppendSimpleString(reply, "PONG");
    } else if (command.size() == 2) {
      resp::AppendBulkString(reply, command[1]);
    } else {
      AppendArityError(reply, name);
    }
  } else if (name == "echo") {
    resp::AppendBulkString(reply, command[1]);
  } else if (name == "info") {
    Info(command, reply);
  } else if (name == "quit") {
    resp::AppendSimpleString(reply, "OK");
    after = AfterReply::kClose;
  } else if (name == "command") {
    CommandIntrospection(command, reply);
  } else if (name == "config" && Upper(command[1]) == "GET") {
    resp::AppendArrayHeader(reply, 0);
  } else {
    // HELLO, CLIENT and CONFIG's other subcommands: clients probe them and
    // cope with a refusal.
    resp::AppendError(reply, "ERR unsupported: " + std::string(name) +
                                 (command.size() > 1 ? " " + command[1].substr(0, 64) : ""));
  }
  MKS_ASSERT_GT(reply->size(), reply_bytes_before);
  return after;
}

std::optional<Consistency> RespConnection::OptionalLevel(
    const resp::Command& command, size_t index, std::string* reply) {
  MKS_ASSERT_LE(index, command.size());
  if (index == command.size()) return consistency_;
  if (command.size() != index + 2 || Upper(command[index]) != "CONSISTENCY") {
    resp::AppendError(reply, "ERR syntax error");
    return std::nullopt;
  }
  Result<Consistency> level = ParseConsistency(command[index + 1]);
  if (!level.ok()) {
    AppendStatusError(reply, level.status());
    return std::nullopt;
  }
  return *level;
}

void RespConnection::Get(const resp::Command& command, std::string* reply) {
  const std::optional<Consistency> level = OptionalLevel(command, 2, reply);
  if (!level) return;
  Result<ReadResult> read = backend_->Get(command[1], *level);
  if (!read.ok()) return AppendStatusError(reply, read.status());
  if (!read->found) return resp::AppendNullBulkString(reply);
  MKS_ASSERT(read->version.has_value() && !read->version->tombstone);
  resp::AppendBulkString(reply, read->version->value);
}

void RespConnection::Set(const resp::Command& command, std::string* reply) {
  const std::optional<Consistency> level = OptionalLevel(command, 3, reply);
  if (!level) return;
  Result<WriteResult> written = backend_->Put(command[1], command[2], *level);
  if (!written.ok()) return AppendStatusError(reply, written.status());
  resp::AppendSimpleString(reply, "OK");
}

void RespConnection::Del(const resp::Command& command, std::string* reply) {
  int64_t found = 0;
  for (size_t i = 1; i < command.size(); ++i) {
    // Redis answers how many keys were removed; a tombstone write cannot
    // tell, so a read just before says whether the key was there.
    Result<ReadResult> read = backend_->Get(command[i], consistency_);
    if (!read.ok()) return AppendStatusError(reply, read.status());
    if (read->found) ++found;
    Result<WriteResult> deleted = backend_->Delete(command[i], consistency_);
    if (!deleted.ok()) return AppendStatusError(reply, deleted.status());
  }
  MKS_ASSERT_LE(found, static_cast<int64_t>(command.size()) - 1);
  resp::AppendInteger(reply, found);
}

void RespConnection::Exists(const resp::Command& command, std::string* reply) {
  int64_t found = 0;
  for (size_t i = 1; i < command.size(); ++i) {
    Result<ReadResult> read = backend_->Get(command[i], consistency_);
    if (!read.ok()) return AppendStatusError(reply, read.status());
    if (read->found) ++found;
  }
  MKS_ASSERT_LE(found, static_cast<int64_t>(command.size()) - 1);
  resp::AppendInteger(reply, found);
}

void RespConnection::MultiGet(const resp::Command& command, std::string* reply) {
  // All reads first: an error replaces the whole array.
  std::vector<ReadResult> reads;
  for (size_t i = 1; i < command.size(); ++i) {
    Result<ReadResult> read = backend_->Get(command[i], consistency_);
    if (!read.ok()) return AppendStatusError(reply, read.status());
    reads.push_back(std::move(*read));
  }
  MKS_ASSERT_EQ(reads.size(), command.size() - 1);
  resp::AppendArrayHeader(reply, reads.size());
  for (const ReadResult& read : reads) {
    if (read.found) {
      resp::AppendBulkString(reply, read.version->value);
    } else {
      resp::AppendNullBulkString(reply);
    }
  }
}

void RespConnection::MultiSet(const resp::Command& command, std::string* reply) {
  if (command.size() % 2 != 1) return AppendArityError(reply, "mset");
  for (size_t i = 1; i + 1 < command.size(); i += 2) {
    Result<WriteResult> written =
        backend_->Put(command[i], command[i + 1], consistency_);
    if (!written.ok()) return AppendStatusError(reply, written.status());
  }
  resp::AppendSimpleString(reply, "OK");
}

void RespConnection::SetConsistency(const resp::Command& command,
                                    std::string* reply) {
  if (command.size() == 1) {
    return resp::AppendBulkString(reply, ToString(consistency_));
  }
  if (command.size() != 2) return AppendArityError(reply, "consistency");
  Result<Consistency> level = ParseConsistency(command[1]);
  if (!level.ok()) return AppendStatusError(reply, level.status());
  consistency_ = *level;
  resp::AppendSimpleString(reply, "OK");
}

void RespConnection::Info(const resp::Command& command, std::string* reply) {
  if (command.size() > 2) return AppendArityError(reply, "info");
  const BackendStatus status = backend_->Describe();
  MKS_ASSERT_NE(status.node_id, kNoNode);
  std::string text;
  text += "# Server\r\n";
  text += "mks_version:0.1.0\r\n";
  text += "node_id:" + std::to_string(status.node_id) + "\r\n";
  text += "uptime_in_seconds:" + std::to_string(status.uptime_ms / 1000) + "\r\n";
  text += "\r\n# Cluster\r\n";
  text += "ring_epoch:" + std::to_string(status.ring_epoch) + "\r\n";
  text += "members:" + std::to_string(status.member_count) + "\r\n";
  text += "reachable_peers:" + std::to_string(status.reachable_peers) + "\r\n";
  text += "replication_factor:" + std::to_string(status.replication_factor) + "\r\n";
  text += "partition_count:" + std::to_string(status.partition_count) + "\r\n";
  text += "default_read_consistency:" + ToString(status.default_read) + "\r\n";
  text += "default_write_consistency:" + ToString(status.default_write) + "\r\n";
  const std::string not_ready = backend_->NotReadyReason();
  text += "ready:" + std::string(not_ready.empty() ? "1" : "0") + "\r\n";
  if (!not_ready.empty()) text += "not_ready_reason:" + not_ready + "\r\n";
  text += "owns_data:" + std::string(status.owns_data ? "1" : "0") + "\r\n";
  text += "cluster_id:" + status.cluster_id + "\r\n";
  text += "leader:" + std::to_string(status.leader) + "\r\n";
  text += "raft_role:" + status.raft_role + "\r\n";
  text += "raft_term:" + std::to_string(status.raft_term) + "\r\n";
  text += "commit_index:" + std::to_string(status.commit_index) + "\r\n";
  text += "applied_index:" + std::to_string(status.applied_index) + "\r\n";
  text += "epoch:" + std::to_string(status.epoch) + "\r\n";
  auto ids = [](const std::vector<NodeId>& list) {
    std::string out;
    for (NodeId id : list) out += (out.empty() ? "" : ",") + std::to_string(id);
    return out;
  };
  text += "voters:" + ids(status.voters) + "\r\n";
  text += "learners:" + ids(status.learners) + "\r\n";
  text += "\r\n# Members\r\n";
  for (const MemberStatus& member : backend_->Members()) {
    text += "member_" + std::to_string(member.id) + ":state=" +
            (member.state.empty() ? std::string(member.reachable ? "reachable" : "unreachable")
                                  : member.state) +
            ",incarnation=" + std::to_string(member.incarnation) +
            ",last_heard_ms_ago=" + std::to_string(member.last_heard_ms_ago) +
            ",peer=" + member.peer_address + ",resp=" + member.resp_address +
            ",http=" + member.http_address + ",owns_data=" + (member.owns_data ? "1" : "0") +
            (member.membership.empty() ? "" : ",membership=" + member.membership) +
            (member.self ? ",self=1" : "") + "\r\n";
  }
  text += "\r\n# Connection\r\n";
  text += "consistency:" + ToString(consistency_) + "\r\n";
  resp::AppendBulkString(reply, text);
}

void RespConnection::CommandIntrospection(const resp::Command& command,
                                          std::string* reply) {
  const std::string sub = command.size() > 1 ? Upper(command[1]) : "";
  if (command.size() == 1) {
    resp::AppendArrayHeader(reply, kCommands.size());
    for (const CommandSpec& spec : kCommands) AppendSpec(reply, spec);
  } else if (sub == "COUNT") {
    resp::AppendInteger(reply, static_cast<int64_t>(kCommands.size()));
  } else if (sub == "DOCS") {
    // redis-cli asks for documentation to show hints; having none is fine.
    resp::AppendArrayHeader(reply, 0);
  } else if (sub == "INFO") {
    resp::AppendArrayHeader(reply, command.size() - 2);
    for (size_t i = 2; i < command.size(); ++i) {
      const CommandSpec* spec = FindSpec(Lower(command[i]));
      if (spec == nullptr) {
        resp::AppendNullArray(reply);
      } else {
        AppendSpec(reply, *spec);
      }
    }
  } else {
    resp::AppendError(reply, "ERR unknown subcommand '" + command[1].substr(0, 64) +
                                 "'. Try COMMAND, COMMAND COUNT, COMMAND INFO, COMMAND DOCS.");
  }
}

}  // namespace mks::net
