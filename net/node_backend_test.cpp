#include "net/node_backend.h"

#include <gtest/gtest.h>

#include <memory>

#include "disk/leveldb_disk.h"
#include "disk/test_directory.h"
#include "net/metrics.h"
#include "net/system_clock.h"

namespace mks::net {
namespace {

constexpr int64_t kTestTimeoutNs = 20'000'000'000;  // a hang guard only

// Two nodes in one process, each with its own transport, LevelDB and
// scheduler process, talking over 127.0.0.1.
class NodeBackendTest : public ::testing::Test {
 protected:
  struct Member {
    runtime::ProcessId process = 0;
    std::unique_ptr<disk::LevelDbDisk> disk;
    std::unique_ptr<TcpTransport> transport;
    std::unique_ptr<Node> node;
    std::unique_ptr<NodeBackend> backend;
  };

  void SetUp() override {
    Result<std::unique_ptr<Reactor>> created = Reactor::Create(&scheduler_);
    ASSERT_TRUE(created.ok()) << created.status();
    reactor_ = std::move(*created);
    std::map<NodeId, FileDescriptor> listeners;
    for (NodeId id : {1u, 2u}) {
      Result<FileDescriptor> listening = ListenTcp({"127.0.0.1", 0});
      ASSERT_TRUE(listening.ok()) << listening.status();
      peers_[id] = {"127.0.0.1", *LocalPort(listening->get())};
      listeners.emplace(id, std::move(*listening));
    }
    for (NodeId id : {1u, 2u}) {
      Member& member = members_[id];
      member.process = scheduler_.CreateProcess("node " + std::to_string(id));
      Result<std::unique_ptr<disk::LevelDbDisk>> disk =
          disk::LevelDbDisk::Open(directory_.Child(std::to_string(id)));
      ASSERT_TRUE(disk.ok()) << disk.status();
      member.disk = std::move(*disk);
      Result<std::unique_ptr<TcpTransport>> transport = TcpTransport::CreateWithListener(
          reactor_.get(), member.process, id, peers_, std::move(listeners.at(id)));
      ASSERT_TRUE(transport.ok()) << transport.status();
      member.transport = std::move(*transport);
      NodeOptions options;
      options.members = MemberList::FromIds({1, 2}).value();
      options.cluster_id = "test";
      options.ring.partition_count = 16;
      options.ring.replication_factor = 2;
      Environment env{id, &clock_, member.transport.get(), member.disk.get(), Random(id)};
      Result<std::unique_ptr<Node>> node =
          Node::Open(options, env, &scheduler_, member.process);
      ASSERT_TRUE(node.ok()) << node.status();
      member.node = std::move(*node);
      member.backend = std::make_unique<NodeBackend>(
          member.node.get(), member.transport.get(), &clock_, peers_);
    }
  }

  void TearDown() override {
    for (auto& [id, member] : members_) scheduler_.Kill(member.process);
    members_.clear();
  }

  // Runs `body` in a fiber of node `id` and drives the reactor until it ends.
  template <typename F>
  auto RunInFiber(NodeId id, F body) {
    runtime::Future<std::invoke_result_t<F>> future =
        scheduler_.Spawn(members_.at(id).process, "client", std::move(body));
    Result<bool> done = reactor_->RunUntil([&] { return future.IsReady(); }, kTestTimeoutNs);
    EXPECT_TRUE(done.ok() && *done);
    return future.Get();
  }

  SystemClock clock_;
  runtime::Scheduler scheduler_{&clock_};
  std::unique_ptr<Reactor> reactor_;
  disk::TestDirectory directory_;
  std::map<NodeId, SocketAddress> peers_;
  std::map<NodeId, Member> members_;
};

TEST_F(NodeBackendTest, WritesThroughOneNodeAreReadThroughTheOther) {
  NodeBackend& first = *members_.at(1).backend;
  NodeBackend& second = *members_.at(2).backend;
  EXPECT_FALSE(first.Ready());  // QUORUM of 2 needs the peer
  members_.at(1).transport->ConnectAll();
  ASSERT_TRUE(*reactor_->RunUntil([&] { return first.Ready(); }, kTestTimeoutNs));

  Result<Result<WriteResult>> put = RunInFiber(1, [&] {
    return first.Put("k", "v1", Consistency::All());
  });
  ASSERT_TRUE(put.ok() && put->ok()) << put.status();
  EXPECT_EQ((*put)->acks, 2u);
  Result<Result<ReadResult>> get = RunInFiber(2, [&] {
    return second.Get("k", Consistency::One());
  });
  ASSERT_TRUE(get.ok() && get->ok());
  ASSERT_TRUE((*get)->found);
  EXPECT_EQ((*get)->version->value, "v1");
  Result<Result<WriteResult>> deleted = RunInFiber(2, [&] {
    return second.Delete("k", Consistency::Default());
  });
  ASSERT_TRUE(deleted.ok() && deleted->ok());
  Result<Result<ReadResult>> gone = RunInFiber(1, [&] {
    return first.Get("k", Consistency::Quorum());
  });
  ASSERT_TRUE(gone.ok() && gone->ok());
  EXPECT_FALSE((*gone)->found);

  std::string metrics;
  first.AppendMetrics(&metrics);
  EXPECT_NE(metrics.find("mks_coordinator_writes_total{outcome=\"ok\"} 1\n"), std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("mks_coordinator_reads_total{outcome=\"not_found\"} 1\n"),
            std::string::npos);
  EXPECT_NE(metrics.find("mks_peers_reachable 1\n"), std::string::npos);
  EXPECT_NE(metrics.find("# TYPE mks_messages_total counter\n"), std::string::npos);
  // The write and the delete each reached this replica in a group of its own.
  EXPECT_NE(metrics.find("mks_storage_group_commits_total 2\n"), std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("mks_storage_group_commit_puts_total 2\n"), std::string::npos);
}

TEST_F(NodeBackendTest, DescribesTheNodeAndItsMembers) {
  NodeBackend& second = *members_.at(2).backend;
  const BackendStatus status = second.Describe();
  EXPECT_EQ(status.node_id, 2u);
  EXPECT_EQ(status.member_count, 2u);
  EXPECT_EQ(status.partition_count, 16u);
  EXPECT_EQ(status.replication_factor, 2u);
  EXPECT_EQ(status.default_write, Consistency::Quorum());
  EXPECT_EQ(status.reachable_peers, 0u);
  const std::vector<MemberStatus> members = second.Members();
  ASSERT_EQ(members.size(), 2u);
  EXPECT_EQ(members[0].id, 1u);
  EXPECT_FALSE(members[0].self);
  EXPECT_FALSE(members[0].reachable);
  EXPECT_EQ(members[0].peer_address, peers_.at(1).ToString());
  EXPECT_TRUE(members[1].self);
  EXPECT_TRUE(members[1].reachable);
  EXPECT_EQ(second.ring(), members_.at(2).node->ring().get());
}

TEST_F(NodeBackendTest, QuorumShortOfPeersIsUnavailableNotSuccess) {
  // Node 2 is gone: its process and transport stop answering.
  scheduler_.Kill(members_.at(2).process);
  members_.at(2).transport.reset();
  NodeBackend& first = *members_.at(1).backend;
  Result<Result<WriteResult>> put = RunInFiber(1, [&] {
    return first.Put("k", "v", Consistency::All());
  });
  ASSERT_TRUE(put.ok());
  ASSERT_FALSE(put->ok());
  EXPECT_EQ(put->status().code(), StatusCode::kUnavailable) << put->status();
  Result<Result<WriteResult>> one = RunInFiber(1, [&] {
    return first.Put("k", "v", Consistency::One());
  });
  ASSERT_TRUE(one.ok() && one->ok());
}

}  // namespace
}  // namespace mks::net
