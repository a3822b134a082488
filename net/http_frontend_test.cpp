#include "net/http_frontend.h"

#include <gtest/gtest.h>

#include <string>

#include "net/fake_kv_backend_for_test.h"

namespace mks::net {
namespace {

class HttpFrontEndTest : public ::testing::Test {
 protected:
  http::Response Send(std::string method, std::string target, std::string body = "") {
    http::Request request;
    request.method = std::move(method);
    request.target = std::move(target);
    request.body = std::move(body);
    return front_end_.Handle(request);
  }

  static std::optional<std::string> HeaderOf(const http::Response& response,
                                             std::string_view name) {
    for (const auto& [key, value] : response.headers) {
      if (key == name) return value;
    }
    return std::nullopt;
  }

  FakeKvBackend backend_;
  HttpFrontEnd front_end_{&backend_};
};

TEST_F(HttpFrontEndTest, PutGetDeleteRoundTrip) {
  http::Response put = Send("PUT", "/v1/kv/user%2F1?consistency=all", "hello");
  EXPECT_EQ(put.status, 200);
  EXPECT_EQ(put.body, "{\"acks\":2,\"version\":\"1000.1@1\"}\n");
  EXPECT_EQ(backend_.calls.back().key, "user/1");
  EXPECT_EQ(backend_.calls.back().consistency, Consistency::All());

  http::Response get = Send("GET", "/v1/kv/user%2F1");
  EXPECT_EQ(get.status, 200);
  EXPECT_EQ(get.body, "hello");
  EXPECT_EQ(HeaderOf(get, "Content-Type"), "application/octet-stream");
  EXPECT_EQ(HeaderOf(get, "X-Mks-Version"), "1000.1@1");
  EXPECT_EQ(backend_.calls.back().consistency, Consistency::Default());

  EXPECT_EQ(Send("DELETE", "/v1/kv/user%2F1?consistency=ONE").status, 200);
  EXPECT_EQ(backend_.calls.back().consistency, Consistency::One());
  http::Response gone = Send("GET", "/v1/kv/user%2F1?consistency=2");
  EXPECT_EQ(gone.status, 404);
  EXPECT_EQ(gone.body, "{\"error\":\"not found\"}\n");
  EXPECT_EQ(backend_.calls.back().consistency, Consistency::Count(2));
}

TEST_F(HttpFrontEndTest, BadInputIsRefusedBeforeTheBackend) {
  EXPECT_EQ(Send("GET", "/v1/kv/").status, 400);
  EXPECT_EQ(Send("GET", "/v1/kv/a%2").status, 400);
  EXPECT_EQ(Send("GET", "/v1/kv/a%zz").status, 400);
  http::Response bad_level = Send("PUT", "/v1/kv/a?consistency=most", "v");
  EXPECT_EQ(bad_level.status, 400);
  EXPECT_NE(bad_level.body.find("most"), std::string::npos);
  EXPECT_EQ(Send("GET", "/v1/kv/a?consistency=0").status, 400);
  EXPECT_TRUE(backend_.calls.empty());
  http::Response post = Send("POST", "/v1/kv/a", "v");
  EXPECT_EQ(post.status, 405);
  EXPECT_EQ(HeaderOf(post, "Allow"), "GET, HEAD, PUT, DELETE");
  EXPECT_EQ(Send("DELETE", "/v1/status").status, 405);
  EXPECT_EQ(Send("GET", "/v2/kv/a").status, 404);
  EXPECT_EQ(Send("GET", "/").status, 404);
  EXPECT_EQ(Send("GET", std::string(2000, '/')).status, 404);
  EXPECT_TRUE(backend_.calls.empty());
}

TEST_F(HttpFrontEndTest, BackendErrorsMapToStatusCodes) {
  backend_.fail_with = Status::Unavailable("1 of 2 replicas acknowledged");
  http::Response unavailable = Send("PUT", "/v1/kv/a", "v");
  EXPECT_EQ(unavailable.status, 503);
  EXPECT_EQ(unavailable.body, "{\"error\":\"1 of 2 replicas acknowledged\"}\n");
  backend_.fail_with = Status::TimedOut("late");
  EXPECT_EQ(Send("GET", "/v1/kv/a").status, 504);
  backend_.fail_with = Status::Corruption("bad \"record\"\n");
  http::Response corrupt = Send("DELETE", "/v1/kv/a");
  EXPECT_EQ(corrupt.status, 500);
  EXPECT_EQ(corrupt.body, "{\"error\":\"Corruption: bad \\\"record\\\"\\u000a\"}\n");
  backend_.fail_with = Status::Ok();
  EXPECT_EQ(Send("PUT", "/v1/kv/" + std::string(2000, 'k'), "v").status, 400);
}

TEST_F(HttpFrontEndTest, RemoveNamesTheNodeOrDecommissionsThisOne) {
  EXPECT_EQ(Send("GET", "/v1/cluster/remove").status, 405);
  http::Response removed = Send("POST", "/v1/cluster/remove?node=3");
  EXPECT_EQ(removed.status, 200);
  EXPECT_EQ(removed.body, "{\"removed\":3,\"epoch\":8}\n");
  EXPECT_EQ(Send("POST", "/v1/cluster/remove?force=true").body, "{\"removed\":1,\"epoch\":8}\n");
  ASSERT_EQ(backend_.calls.size(), 2u);
  EXPECT_EQ(backend_.calls[0].operation, "remove");
  EXPECT_EQ(backend_.calls[0].key, "3");
  EXPECT_EQ(backend_.calls[1].operation, "remove --force");
  EXPECT_EQ(Send("POST", "/v1/cluster/remove?node=x").status, 400);
  EXPECT_EQ(Send("POST", "/v1/cluster/remove?node=0").status, 400);
  EXPECT_EQ(Send("POST", "/v1/cluster/remove?force=maybe").status, 400);
  backend_.fail_with = Status::InvalidArgument("removing node 3 refused: the cluster holds data");
  http::Response refused = Send("POST", "/v1/cluster/remove?node=3");
  EXPECT_EQ(refused.status, 400);
  EXPECT_NE(refused.body.find("holds data"), std::string::npos);
  backend_.fail_with = Status::NotFound("node 9 is not a member");
  EXPECT_EQ(Send("POST", "/v1/cluster/remove?node=9").status, 404);
}

TEST_F(HttpFrontEndTest, StatusMembersRing) {
  http::Response status = Send("GET", "/v1/status");
  EXPECT_EQ(status.status, 200);
  EXPECT_EQ(status.body,
            "{\"node_id\":1,\"ready\":true,\"owns_data\":true,\"uptime_ms\":4500,\"ring_epoch\":7,"
            "\"members\":3,\"reachable_peers\":2,\"partition_count\":8,"
            "\"replication_factor\":3,\"default_read\":\"QUORUM\","
            "\"default_write\":\"QUORUM\",\"cluster_id\":\"fake-cluster\",\"leader\":2,"
            "\"raft_role\":\"follower\",\"term\":7,\"commit_index\":41,\"applied_index\":40,"
            "\"epoch\":7,\"voters\":[1,2,3],\"learners\":[]}\n");
  http::Response members = Send("GET", "/v1/members");
  EXPECT_TRUE(members.body.starts_with(
      "[{\"id\":1,\"peer_address\":\"127.0.0.1:7001\",\"self\":true,\"reachable\":true,"
      "\"state\":\"alive\",\"incarnation\":1,\"last_heard_ms_ago\":-1,"
      "\"resp_address\":\"127.0.0.1:7101\",\"http_address\":\"127.0.0.1:7201\","
      "\"owns_data\":true,\"membership\":\"normal\"},{\"id\":2,"))
      << members.body;
  EXPECT_NE(members.body.find("{\"id\":3,\"peer_address\":\"127.0.0.1:7003\",\"self\":false,"
                              "\"reachable\":false,\"state\":\"dead\",\"incarnation\":7,"
                              "\"last_heard_ms_ago\":4000,"),
            std::string::npos)
      << members.body;
  http::Response cluster = Send("GET", "/v1/cluster");
  EXPECT_EQ(cluster.status, 200);
  EXPECT_TRUE(cluster.body.starts_with("{\"node_id\":1,\"cluster_id\":\"fake-cluster\","))
      << cluster.body;
  EXPECT_NE(cluster.body.find(",\"members\":[{\"id\":1,\"membership\":\"normal\","
                              "\"peer_address\":\"127.0.0.1:7001\",\"reachable\":true},"),
            std::string::npos)
      << cluster.body;
  http::Response ring = Send("GET", "/v1/ring");
  EXPECT_EQ(ring.status, 200);
  const std::string head =
      "{\"epoch\":7,\"partition_count\":8,\"replication_factor\":3,\"members\":[3,1,2],"
      "\"partitions\":[[";
  ASSERT_TRUE(ring.body.starts_with(head)) << ring.body;
  // Eight preference lists, each the ring's own.
  std::string expected_lists;
  for (PartitionId partition = 0; partition < 8; ++partition) {
    const std::span<const NodeId> replicas = backend_.ring()->PreferenceList(partition);
    ASSERT_EQ(replicas.size(), 3u);
    expected_lists += (partition == 0 ? "[" : ",[") + std::to_string(replicas[0]) + "," +
                      std::to_string(replicas[1]) + "," + std::to_string(replicas[2]) + "]";
  }
  // At rest: nothing pending, no change, and this node streamed nothing.
  EXPECT_EQ(ring.body.substr(head.size() - 1),
            expected_lists +
                "],\"pending\":[],\"change\":null,\"streams\":{\"partitions_copied\":0,"
                "\"bytes_pulled\":0,\"records_pulled\":0,\"rate_bytes_per_s\":0,"
                "\"bytes_served\":0,\"active\":0,\"partitions_dropped\":0,"
                "\"drops_pending\":0}}\n");
}

TEST_F(HttpFrontEndTest, HealthReadinessMetrics) {
  EXPECT_EQ(Send("GET", "/healthz").status, 200);
  EXPECT_EQ(Send("HEAD", "/readyz").status, 200);
  backend_.ready = false;
  EXPECT_EQ(Send("GET", "/readyz").status, 503);
  EXPECT_EQ(Send("GET", "/healthz").status, 200);
  http::Response metrics = Send("GET", "/metrics");
  EXPECT_EQ(metrics.status, 200);
  EXPECT_EQ(metrics.body, "# HELP mks_fake_total A fake counter.\n"
                          "# TYPE mks_fake_total counter\nmks_fake_total 3\n");
}

TEST(JsonStringTest, EscapesEveryByteThatIsNotPrintableAscii) {
  EXPECT_EQ(JsonString(""), "\"\"");
  EXPECT_EQ(JsonString("a\"b\\c"), "\"a\\\"b\\\\c\"");
  EXPECT_EQ(JsonString(std::string("\0\x1f\x7f\xff", 4)),
            "\"\\u0000\\u001f\\u007f\\u00ff\"");
}

}  // namespace
}  // namespace mks::net
