// An in-memory KvBackend for front-end tests: one map, a version counter,
// and a way to make the next operations fail. It never waits, so the
// front-ends can be called outside any fiber in tests.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/assertions.h"
#include "net/kv_backend.h"

namespace mks::net {

class FakeKvBackend final : public KvBackend {
 public:
  // Seated out of id order, so what shows the ring can tell seats from ids.
  FakeKvBackend()
      : ring_(Ring::Build(MemberList::FromSeats({3, 1, 2}).value(), 7, {8, 3})
                  .value()) {}

  Result<ReadResult> Get(std::string_view key, Consistency consistency) override {
    calls.push_back({"get", std::string(key), consistency});
    if (!fail_with.ok()) return fail_with;
    MKS_RETURN_IF_ERROR(CheckKey(key));
    ReadResult result;
    result.replies = 2;
    const auto found = versions_.find(std::string(key));
    if (found == versions_.end()) return result;
    result.version = found->second;
    result.found = !found->second.tombstone;
    return result;
  }

  Result<WriteResult> Put(std::string_view key, std::string value,
                          Consistency consistency) override {
    calls.push_back({"put", std::string(key), consistency});
    if (!fail_with.ok()) return fail_with;
    MKS_RETURN_IF_ERROR(CheckKey(key));
    return Store(key, Version::Write(NextTimestamp(), 1, std::move(value)));
  }

  Result<WriteResult> Delete(std::string_view key, Consistency consistency) override {
    calls.push_back({"delete", std::string(key), consistency});
    if (!fail_with.ok()) return fail_with;
    MKS_RETURN_IF_ERROR(CheckKey(key));
    return Store(key, Version::Tombstone(NextTimestamp(), 1));
  }

  BackendStatus Describe() const override {
    BackendStatus status;
    status.node_id = 1;
    status.ring_epoch = ring_.epoch();
    status.member_count = 3;
    status.partition_count = ring_.partition_count();
    status.replication_factor = ring_.replication_factor();
    status.default_read = Consistency::Quorum();
    status.default_write = Consistency::Quorum();
    status.uptime_ms = 4'500;
    status.reachable_peers = 2;
    status.cluster_id = "fake-cluster";
    status.leader = 2;
    status.raft_role = "follower";
    status.raft_term = 7;
    status.commit_index = 41;
    status.applied_index = 40;
    status.epoch = ring_.epoch();
    status.voters = {1, 2, 3};
    return status;
  }
  Result<uint64_t> RemoveMember(NodeId node, bool force) override {
    calls.push_back({force ? "remove --force" : "remove", std::to_string(node),
                     Consistency::Default()});
    if (!fail_with.ok()) return fail_with;
    return ring_.epoch() + 1;
  }

  std::vector<MemberStatus> Members() const override {
    return {{1, "127.0.0.1:7001", true, true, "alive", 1, -1, "127.0.0.1:7101",
             "127.0.0.1:7201", true, "normal"},
            {2, "127.0.0.1:7002", false, true, "alive", 1, 120, "", "", true, "normal"},
            {3, "127.0.0.1:7003", false, false, "dead", 7, 4000, "", "", true, "normal"}};
  }

  const Ring* ring() const override { return &ring_; }
  std::string NotReadyReason() const override { return ready ? "" : "no quorum (fake)"; }
  void AppendMetrics(std::string* out) const override {
    out->append("# HELP mks_fake_total A fake counter.\n# TYPE mks_fake_total counter\n"
                "mks_fake_total 3\n");
  }

  struct Call {
    std::string operation;
    std::string key;
    Consistency consistency;
  };
  std::vector<Call> calls;
  Status fail_with;  // when not OK, every operation returns it
  bool ready = true;

 private:
  static Status CheckKey(std::string_view key) {
    if (key.empty()) return Status::InvalidArgument("empty key");
    if (key.size() > 1024) return Status::InvalidArgument("key too large");
    return Status::Ok();
  }
  Timestamp NextTimestamp() { return {1'000, ++logical_}; }
  WriteResult Store(std::string_view key, Version version) {
    versions_[std::string(key)] = version;
    return {std::move(version), 2};
  }

  Ring ring_;
  std::map<std::string, Version> versions_;
  uint32_t logical_ = 0;
};

}  // namespace mks::net
