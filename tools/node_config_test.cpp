#include "tools/node_config.h"

#include <gtest/gtest.h>

namespace mks::tools {
namespace {

TEST(NodeConfigTest, YamlSetsEverythingTheCommandLineDidNot) {
  NodeSettings settings;
  settings.node_id = 9;  // as if given on the command line
  const Status applied = ApplyYaml(R"(
node_id: 2
listen: 127.0.0.1:7002
resp_port: 6380
http_port: 8081
data_dir: /tmp/n2
peers: ["1=127.0.0.1:7001", "2=127.0.0.1:7002"]
replication_factor: 2
read_consistency: one
write_consistency: all
partition_count: 64
timeout_ms: 250
max_waiting_puts: 64
log_level: debug
bootstrap: true
force_join: true
dead_remove_after_ms: 600000
stream_rate_bytes_per_s: 0
)", {"node_id"}, &settings);
  ASSERT_TRUE(applied.ok()) << applied;
  EXPECT_EQ(settings.node_id, 9u);
  EXPECT_EQ(settings.listen, "127.0.0.1:7002");
  EXPECT_EQ(settings.resp_port, 6380);
  EXPECT_EQ(settings.http_port, 8081);
  EXPECT_EQ(settings.data_dir, "/tmp/n2");
  EXPECT_EQ(settings.peers.size(), 2u);
  EXPECT_EQ(settings.replication_factor, 2u);
  EXPECT_EQ(settings.read_consistency, "one");
  EXPECT_EQ(settings.write_consistency, "all");
  EXPECT_EQ(settings.partition_count, 64u);
  EXPECT_EQ(settings.timeout_ms, 250);
  EXPECT_TRUE(settings.bootstrap);
  EXPECT_TRUE(settings.force_join);
  EXPECT_EQ(settings.dead_remove_after_ms, 600000);
  EXPECT_EQ(settings.max_waiting_puts, 64u);
  EXPECT_EQ(settings.log_level, "debug");
  EXPECT_EQ(settings.stream_rate_bytes_per_s, 0u);
}

TEST(NodeConfigTest, BadYamlIsInvalidArgumentNamingTheKey) {
  NodeSettings settings;
  Status unknown = ApplyYaml("colour: blue\n", {}, &settings);
  EXPECT_EQ(unknown.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(unknown.message().find("colour"), std::string::npos);
  Status ill_typed = ApplyYaml("resp_port: lots\n", {}, &settings);
  EXPECT_EQ(ill_typed.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(ill_typed.message().find("resp_port"), std::string::npos);
  EXPECT_EQ(ApplyYaml("[1, 2", {}, &settings).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ApplyYaml("- 1\n- 2\n", {}, &settings).code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(ApplyYaml("", {}, &settings).ok());
}

TEST(NodeConfigTest, PeersIncludeThisNodeAndRefuseContradictions) {
  NodeSettings settings;
  settings.node_id = 3;
  settings.listen = "127.0.0.1:7003";
  settings.peers = {"1=127.0.0.1:7001", "2=10.0.0.2:7002"};
  Result<std::map<NodeId, net::SocketAddress>> peers = ParsePeers(settings);
  ASSERT_TRUE(peers.ok()) << peers.status();
  ASSERT_EQ(peers->size(), 3u);
  EXPECT_EQ(peers->at(3).ToString(), "127.0.0.1:7003");
  EXPECT_EQ(peers->at(2).ToString(), "10.0.0.2:7002");

  for (const std::string bad : {"1127.0.0.1:7001", "0=127.0.0.1:1", "x=127.0.0.1:1",
                                "1=localhost:1", "1=127.0.0.1", "3=127.0.0.1:9999"}) {
    NodeSettings wrong = settings;
    wrong.peers = {bad};
    EXPECT_EQ(ParsePeers(wrong).status().code(), StatusCode::kInvalidArgument) << bad;
  }
  NodeSettings twice = settings;
  twice.peers = {"1=127.0.0.1:7001", "1=127.0.0.1:7005"};
  EXPECT_FALSE(ParsePeers(twice).ok());
}

TEST(NodeConfigTest, NodeOptionsFollowTheSettings) {
  NodeSettings settings;
  settings.node_id = 1;
  settings.listen = "127.0.0.1:7001";
  settings.peers = {"2=127.0.0.1:7002", "3=127.0.0.1:7003"};
  settings.read_consistency = "ONE";
  settings.write_consistency = "2";
  settings.partition_count = 32;
  Result<NodeOptions> options = MakeNodeOptions(settings, ParsePeers(settings).value());
  ASSERT_TRUE(options.ok()) << options.status();
  EXPECT_EQ(options->members.by_seat(), (std::vector<NodeId>{1, 2, 3}));
  EXPECT_EQ(options->ring.partition_count, 32u);
  EXPECT_EQ(options->ring.replication_factor, 3u);
  EXPECT_EQ(options->coordinator.default_read, Consistency::One());
  EXPECT_EQ(options->coordinator.default_write, Consistency::Count(2));
  EXPECT_EQ(options->coordinator.timeout_ns, 1'000'000'000);
  EXPECT_EQ(options->replica.max_waiting_puts, ReplicaOptions{}.max_waiting_puts);
  EXPECT_EQ(options->stream.rate_bytes_per_s, StreamOptions{}.rate_bytes_per_s);

  settings.write_consistency = "4";  // more than N = 3
  EXPECT_FALSE(MakeNodeOptions(settings, ParsePeers(settings).value()).ok());
  settings.write_consistency = "default";
  EXPECT_FALSE(MakeNodeOptions(settings, ParsePeers(settings).value()).ok());
  settings.write_consistency = "quorum";
  settings.timeout_ms = 0;
  EXPECT_FALSE(MakeNodeOptions(settings, ParsePeers(settings).value()).ok());
  settings.timeout_ms = 100;
  settings.max_waiting_puts = 0;
  EXPECT_FALSE(MakeNodeOptions(settings, ParsePeers(settings).value()).ok());
  settings.max_waiting_puts = 8;
  EXPECT_EQ(MakeNodeOptions(settings, ParsePeers(settings).value())->replica.max_waiting_puts,
            8u);
  settings.stream_rate_bytes_per_s = 0;  // no limit
  EXPECT_EQ(MakeNodeOptions(settings, ParsePeers(settings).value())->stream.rate_bytes_per_s, 0u);
  settings.stream_rate_bytes_per_s = 1u << 20;
  EXPECT_EQ(MakeNodeOptions(settings, ParsePeers(settings).value())->stream.rate_bytes_per_s,
            1u << 20);
}

TEST(NodeConfigTest, PeersBootstrapOneClusterBootstrapMakesANewOne) {
  NodeSettings settings;
  settings.node_id = 1;
  settings.listen = "127.0.0.1:7001";
  settings.peers = {"2=127.0.0.1:7002", "3=127.0.0.1:7003"};
  const std::string from_peers =
      MakeNodeOptions(settings, ParsePeers(settings).value()).value().cluster_id;
  EXPECT_TRUE(from_peers.starts_with("static-")) << from_peers;
  // Every node of the list derives the same id.
  NodeSettings other = settings;
  other.node_id = 2;
  other.listen = "127.0.0.1:7002";
  other.peers = {"1=127.0.0.1:7001", "3=127.0.0.1:7003"};
  EXPECT_EQ(MakeNodeOptions(other, ParsePeers(other).value()).value().cluster_id, from_peers);

  // Bootstrap: this node alone, under a fresh id each time.
  EXPECT_FALSE(MakeNodeOptions(
                   [&] {
                     NodeSettings both = settings;
                     both.bootstrap = true;
                     return both;
                   }(),
                   ParsePeers(settings).value())
                   .ok());
  settings.peers.clear();
  settings.bootstrap = true;
  const NodeOptions first = MakeNodeOptions(settings, ParsePeers(settings).value()).value();
  const NodeOptions second = MakeNodeOptions(settings, ParsePeers(settings).value()).value();
  EXPECT_EQ(first.members.by_seat(), (std::vector<NodeId>{1}));
  EXPECT_EQ(first.cluster_id.size(), 16u);
  EXPECT_NE(first.cluster_id, second.cluster_id);

  // A joiner: no first members, seeds, and the force flag passed on.
  settings.bootstrap = false;
  settings.join = {"127.0.0.1:7002"};
  settings.force_join = true;
  const NodeOptions joiner = MakeNodeOptions(settings, ParsePeers(settings).value()).value();
  EXPECT_TRUE(joiner.members.empty());
  EXPECT_TRUE(joiner.cluster_id.empty());
  EXPECT_TRUE(joiner.join_force);
  EXPECT_EQ(joiner.dead_remove_after_ms, 0u);  // off unless configured
  settings.dead_remove_after_ms = -1;
  EXPECT_TRUE(MakeNodeOptions(settings, ParsePeers(settings).value()).status().IsInvalidArgument());
  settings.dead_remove_after_ms = 0;
  EXPECT_EQ(joiner.gossip->seeds, (std::vector<std::string>{"127.0.0.1:7002"}));
}

}  // namespace
}  // namespace mks::tools
