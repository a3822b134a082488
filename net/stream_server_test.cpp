#include "net/stream_server.h"

#include <gtest/gtest.h>
#include <sys/socket.h>

#include <string>

#include "net/system_clock.h"

namespace mks::net {
namespace {

constexpr int64_t kTestTimeoutNs = 20'000'000'000;  // a hang guard only

// A client that records what it receives and whether the server hung up.
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
  void Close() { connection_->Close(); }
  uint64_t send_calls() const { return connection_->send_calls(); }
  const std::string& received() const { return received_; }
  bool closed() const { return closed_; }

 private:
  std::string received_;
  bool closed_ = false;
  std::unique_ptr<Connection> connection_;
};

class StreamServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Result<std::unique_ptr<Reactor>> created = Reactor::Create(&scheduler_);
    ASSERT_TRUE(created.ok()) << created.status();
    reactor_ = std::move(*created);
    process_ = scheduler_.CreateProcess("server");
  }

  void StartServer(StreamServer::Handler handler, StreamServerOptions options = {}) {
    Result<std::unique_ptr<StreamServer>> server = StreamServer::Listen(
        reactor_.get(), process_, {"127.0.0.1", 0}, std::move(handler), options);
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
};

// Echoes upper-cased input until the client closes; remembers how it ended.
StreamServer::Handler EchoHandler(Status* ended) {
  return [ended](ClientStream& stream) {
    for (;;) {
      Result<std::string> bytes = stream.Read();
      if (!bytes.ok()) {
        *ended = bytes.status();
        return;
      }
      for (char& c : *bytes) c = static_cast<char>(toupper(c));
      if (!stream.Write(*bytes).ok()) return;
    }
  };
}

TEST_F(StreamServerTest, EachClientGetsItsOwnFiber) {
  Status ended;
  StartServer(EchoHandler(&ended));
  TestClient first(reactor_.get(), server_->port());
  TestClient second(reactor_.get(), server_->port());
  first.Write("hello ");
  second.Write("other");
  first.Write("world");
  ASSERT_TRUE(RunUntil([&] {
    return first.received() == "HELLO WORLD" && second.received() == "OTHER";
  }));
  EXPECT_EQ(server_->active_connections(), 2u);
  first.Close();
  ASSERT_TRUE(RunUntil([&] { return server_->active_connections() == 1; }));
  EXPECT_EQ(ended.code(), StatusCode::kUnavailable);
  EXPECT_EQ(server_->accepted_connections(), 2u);
}

TEST_F(StreamServerTest, WritesOfOneTurnLeaveInOneSend) {
  Status ended;
  StartServer(EchoHandler(&ended));
  TestClient client(reactor_.get(), server_->port());
  client.Write("warm ");
  ASSERT_TRUE(RunUntil([&] { return client.received() == "WARM "; }));
  const uint64_t sends_before = client.send_calls();
  client.Write("one ");
  client.Write("two ");
  client.Write("three");
  ASSERT_TRUE(RunUntil([&] { return client.received() == "WARM ONE TWO THREE"; }));
  EXPECT_EQ(client.send_calls(), sends_before + 1);
}

TEST_F(StreamServerTest, RepliesWrittenBeforeReturningReachTheClient) {
  StreamServerOptions options;
  options.max_output_bytes = 64 * 1024;  // the big Write must wait for the client
  StartServer([](ClientStream& stream) {
    Result<std::string> request = stream.Read();
    if (!request.ok()) return;
    EXPECT_TRUE(stream.Write(std::string(3 * 1024 * 1024, 'r')).ok());
    EXPECT_TRUE(stream.Write("END").ok());
  }, options);
  TestClient client(reactor_.get(), server_->port());
  client.Write("QUIT\r\n");
  ASSERT_TRUE(RunUntil([&] { return client.closed(); }));
  EXPECT_EQ(client.received().size(), 3u * 1024 * 1024 + 3);
  EXPECT_EQ(client.received().substr(client.received().size() - 3), "END");
}

TEST_F(StreamServerTest, SlowHandlerBoundsBufferedInput) {
  StreamServerOptions options;
  options.max_input_bytes = 100 * 1024;
  size_t largest_read = 0;
  size_t total = 0;
  StartServer([&](ClientStream& stream) {
    // Falls behind first, so input piles up against the bound.
    scheduler_.SleepFor(50'000'000);
    for (;;) {
      Result<std::string> bytes = stream.Read();
      if (!bytes.ok()) return;
      largest_read = std::max(largest_read, bytes->size());
      total += bytes->size();
      if (total == 4u * 1024 * 1024) {
        EXPECT_TRUE(stream.Write("done").ok());
      }
    }
  }, options);
  TestClient client(reactor_.get(), server_->port());
  client.Write(std::string(4 * 1024 * 1024, 'x'));
  ASSERT_TRUE(RunUntil([&] { return client.received() == "done"; }));
  // At most one socket read lands past the bound before reading pauses.
  EXPECT_GT(largest_read, 0u);
  EXPECT_LE(largest_read, options.max_input_bytes + 64 * 1024);
}

TEST_F(StreamServerTest, CloseSendsWhatWasWrittenAndRefusesMore) {
  Status late_write;
  StartServer([&](ClientStream& stream) {
    EXPECT_TRUE(stream.Write("bye").ok());
    stream.Close();
    late_write = stream.Write("more");
    EXPECT_EQ(stream.Read().status().code(), StatusCode::kUnavailable);
  });
  TestClient client(reactor_.get(), server_->port());
  ASSERT_TRUE(RunUntil([&] { return client.closed() && server_->active_connections() == 0; }));
  EXPECT_EQ(client.received(), "bye");
  EXPECT_EQ(late_write.code(), StatusCode::kUnavailable);
}

TEST_F(StreamServerTest, HalfClosedClientStillGetsItsReply) {
  StartServer([](ClientStream& stream) {
    std::string request;
    for (;;) {
      Result<std::string> bytes = stream.Read();
      if (!bytes.ok()) break;
      request += *bytes;
    }
    EXPECT_TRUE(stream.Write("got " + request).ok());
  });
  // A raw socket, so the test can shut down only its sending side.
  Result<FileDescriptor> socket = ConnectTcp({"127.0.0.1", server_->port()});
  ASSERT_TRUE(socket.ok()) << socket.status();
  ASSERT_TRUE(RunUntil([&] { return server_->active_connections() == 1; }));
  ASSERT_EQ(send(socket->get(), "PING", 4, MSG_NOSIGNAL), 4);
  ASSERT_EQ(shutdown(socket->get(), SHUT_WR), 0);
  std::string received;
  bool eof = false;
  ASSERT_TRUE(reactor_->Watch(socket->get(), kReadable, [&](uint32_t) {
    char buffer[64];
    const ssize_t count = recv(socket->get(), buffer, sizeof(buffer), MSG_DONTWAIT);
    if (count > 0) received.append(buffer, static_cast<size_t>(count));
    if (count == 0) eof = true;
  }).ok());
  const bool done = RunUntil([&] { return eof; });
  reactor_->Unwatch(socket->get());
  ASSERT_TRUE(done);
  EXPECT_EQ(received, "got PING");
}

TEST_F(StreamServerTest, ReadTimesOutWhenTheClientIsIdle) {
  Status ended;
  StartServer([&](ClientStream& stream) {
    ended = stream.Read(5'000'000).status();
  });
  TestClient client(reactor_.get(), server_->port());
  ASSERT_TRUE(RunUntil([&] { return client.closed(); }));
  EXPECT_EQ(ended.code(), StatusCode::kTimedOut);
}

TEST_F(StreamServerTest, RefusesConnectionsBeyondTheLimit) {
  StreamServerOptions options;
  options.max_connections = 1;
  Status ended;
  StartServer(EchoHandler(&ended), options);
  TestClient first(reactor_.get(), server_->port());
  first.Write("a");
  ASSERT_TRUE(RunUntil([&] { return first.received() == "A"; }));
  TestClient second(reactor_.get(), server_->port());
  ASSERT_TRUE(RunUntil([&] { return second.closed(); }));
  EXPECT_EQ(server_->refused_connections(), 1u);
  EXPECT_FALSE(first.closed());
}

TEST_F(StreamServerTest, ShutdownCancelsWaitingHandlers) {
  Status ended;
  StartServer(EchoHandler(&ended));
  TestClient client(reactor_.get(), server_->port());
  client.Write("x");
  ASSERT_TRUE(RunUntil([&] { return client.received() == "X"; }));
  server_.reset();
  ASSERT_TRUE(RunUntil([&] { return client.closed() && scheduler_.fiber_count() == 0; }));
  EXPECT_EQ(ended.code(), StatusCode::kCancelled);
}

}  // namespace
}  // namespace mks::net
