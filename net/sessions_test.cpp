#include "net/sessions.h"

#include <gtest/gtest.h>

#include <string>

#include "net/system_clock.h"

namespace mks::net {
namespace {

constexpr int64_t kTestTimeoutNs = 20'000'000'000;  // a hang guard only

class TestClient {
 public:
  TestClient(Reactor* reactor, uint16_t port) {
    ConnectionHandlers handlers;
    handlers.on_data = [this](std::string_view bytes) { received_.append(bytes); };
    handlers.on_close = [this](Status reason) {
      reason.IgnoreError();
      closed_ = true;
    };
    Result<std::unique_ptr<Connection>> connection =
        Connection::Connect(reactor, {"127.0.0.1", port}, std::move(handlers));
    EXPECT_TRUE(connection.ok()) << connection.status();
    connection_ = std::move(*connection);
  }
  void Write(std::string_view bytes) { connection_->Write(bytes); }
  const std::string& received() const { return received_; }
  bool closed() const { return closed_; }

 private:
  std::string received_;
  bool closed_ = false;
  std::unique_ptr<Connection> connection_;
};

// PING, ECHO and QUIT: enough protocol to exercise the loop.
AfterReply TinyRedis(const resp::Command& command, std::string* reply) {
  if (command[0] == "PING") {
    resp::AppendSimpleString(reply, "PONG");
  } else if (command[0] == "ECHO" && command.size() == 2) {
    resp::AppendBulkString(reply, command[1]);
  } else if (command[0] == "QUIT") {
    resp::AppendSimpleString(reply, "OK");
    return AfterReply::kClose;
  } else {
    resp::AppendError(reply, "ERR unknown command '" + command[0] + "'");
  }
  return AfterReply::kContinue;
}

http::Response EchoTarget(const http::Request& request) {
  return {200, {{"Content-Type", "text/plain"}}, request.method + " " + request.target +
                                                     " " + request.body};
}

class SessionsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Result<std::unique_ptr<Reactor>> created = Reactor::Create(&scheduler_);
    ASSERT_TRUE(created.ok()) << created.status();
    reactor_ = std::move(*created);
    process_ = scheduler_.CreateProcess("front-end");
  }

  void StartResp(RespSessionOptions options = {}) {
    StartServer([this, options](ClientStream& stream) {
      last_end_ = ServeResp(stream, TinyRedis, options);
    });
  }

  void StartHttp(HttpSessionOptions options = {}) {
    StartServer([this, options](ClientStream& stream) {
      last_end_ = ServeHttp(stream, EchoTarget, options);
    });
  }

  void StartServer(StreamServer::Handler handler) {
    Result<std::unique_ptr<StreamServer>> server = StreamServer::Listen(
        reactor_.get(), process_, {"127.0.0.1", 0}, std::move(handler));
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
  }

  bool RunUntil(const std::function<bool()>& done) {
    Result<bool> result = reactor_->RunUntil(done, kTestTimeoutNs);
    EXPECT_TRUE(result.ok()) << result.status();
    return result.ok() && *result;
  }

  SystemClock clock_;
  runtime::Scheduler scheduler_{&clock_};
  std::unique_ptr<Reactor> reactor_;
  runtime::ProcessId process_ = 0;
  std::unique_ptr<StreamServer> server_;
  Status last_end_;
};

TEST_F(SessionsTest, RespAnswersPipelinedCommandsInOrder) {
  StartResp();
  TestClient client(reactor_.get(), server_->port());
  std::string pipeline;
  resp::AppendCommand(&pipeline, {"PING"});
  resp::AppendCommand(&pipeline, {"ECHO", std::string("bin\0\r\n", 6)});
  pipeline += "NOPE\r\n";
  client.Write(pipeline);
  client.Write("ECHO last\r\n");
  const std::string expected = std::string("+PONG\r\n$6\r\nbin\0\r\n\r\n", 19) +
                               "-ERR unknown command 'NOPE'\r\n$4\r\nlast\r\n";
  ASSERT_TRUE(RunUntil([&] { return client.received().size() >= expected.size(); }));
  EXPECT_EQ(client.received(), expected);
  EXPECT_FALSE(client.closed());
}

TEST_F(SessionsTest, RespQuitRepliesThenCloses) {
  StartResp();
  TestClient client(reactor_.get(), server_->port());
  client.Write("*1\r\n$4\r\nQUIT\r\n*1\r\n$4\r\nPING\r\n");
  ASSERT_TRUE(RunUntil([&] { return client.closed(); }));
  EXPECT_EQ(client.received(), "+OK\r\n");
  EXPECT_TRUE(last_end_.ok()) << last_end_;
}

TEST_F(SessionsTest, RespProtocolErrorIsAnsweredAndOthersKeepBeingServed) {
  RespSessionOptions options;
  options.limits.max_bulk_bytes = 1000;
  StartResp(options);
  TestClient bad(reactor_.get(), server_->port());
  TestClient oversized(reactor_.get(), server_->port());
  TestClient good(reactor_.get(), server_->port());
  bad.Write("PING\r\n*1\r\n:5\r\n");
  oversized.Write("*2\r\n$3\r\nSET\r\n$1001\r\n");
  ASSERT_TRUE(RunUntil([&] { return bad.closed() && oversized.closed(); }));
  EXPECT_EQ(bad.received(), "+PONG\r\n-ERR Protocol error: expected '$', got ':'\r\n");
  EXPECT_EQ(oversized.received(), "-ERR Protocol error: invalid bulk length\r\n");
  good.Write("PING\r\n");
  ASSERT_TRUE(RunUntil([&] { return good.received() == "+PONG\r\n"; }));
}

TEST_F(SessionsTest, RespIdleClientIsDisconnected) {
  RespSessionOptions options;
  options.idle_timeout_ns = 5'000'000;
  StartResp(options);
  TestClient client(reactor_.get(), server_->port());
  ASSERT_TRUE(RunUntil([&] { return client.closed(); }));
  EXPECT_EQ(last_end_.code(), StatusCode::kTimedOut);
}

TEST_F(SessionsTest, HttpKeepsAliveUntilTheClientCloses) {
  StartHttp();
  TestClient client(reactor_.get(), server_->port());
  client.Write("GET /a HTTP/1.1\r\n\r\nHEAD /b HTTP/1.1\r\n\r\n");
  const std::string first =
      "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 7\r\n"
      "Connection: keep-alive\r\n\r\nGET /a "
      "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 8\r\n"
      "Connection: keep-alive\r\n\r\n";
  ASSERT_TRUE(RunUntil([&] { return client.received().size() >= first.size(); }));
  EXPECT_EQ(client.received(), first);
  client.Write("PUT /c HTTP/1.1\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi");
  ASSERT_TRUE(RunUntil([&] { return client.closed(); }));
  EXPECT_EQ(client.received().substr(first.size()),
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 9\r\n"
            "Connection: close\r\n\r\nPUT /c hi");
}

TEST_F(SessionsTest, HttpMalformedRequestGets400AndClose) {
  StartHttp();
  TestClient client(reactor_.get(), server_->port());
  client.Write("BROKEN\r\n\r\n");
  ASSERT_TRUE(RunUntil([&] { return client.closed(); }));
  EXPECT_EQ(client.received().rfind("HTTP/1.1 400 Bad Request\r\n", 0), 0u)
      << client.received();
  EXPECT_NE(client.received().find("Connection: close"), std::string::npos);
  EXPECT_EQ(last_end_.code(), StatusCode::kInvalidArgument);
}

TEST_F(SessionsTest, HttpOversizedBodyGets413) {
  HttpSessionOptions options;
  options.limits.max_body_bytes = 10;
  StartHttp(options);
  TestClient client(reactor_.get(), server_->port());
  client.Write("PUT /k HTTP/1.1\r\nContent-Length: 11\r\n\r\n");
  ASSERT_TRUE(RunUntil([&] { return client.closed(); }));
  EXPECT_EQ(client.received().rfind("HTTP/1.1 413 Payload Too Large\r\n", 0), 0u)
      << client.received();
}

TEST_F(SessionsTest, HttpAnswersExpectContinueBeforeTheBody) {
  StartHttp();
  TestClient client(reactor_.get(), server_->port());
  client.Write("PUT /k HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n");
  const std::string interim = "HTTP/1.1 100 Continue\r\n\r\n";
  ASSERT_TRUE(RunUntil([&] { return client.received() == interim; }));
  client.Write("abc");
  ASSERT_TRUE(RunUntil([&] { return client.received().size() > interim.size(); }));
  EXPECT_NE(client.received().find("PUT /k abc"), std::string::npos);
}

}  // namespace
}  // namespace mks::net
