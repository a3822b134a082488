#include "net/tcp_transport.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "net/system_clock.h"

namespace mks::net {
namespace {

constexpr int64_t kTestTimeoutNs = 20'000'000'000;  // a hang guard only
constexpr NodeId kA = 1;
constexpr NodeId kB = 2;
constexpr NodeId kNobody = 3;  // an address where nothing listens

struct Received {
  NodeId from;
  std::string bytes;
  friend bool operator==(const Received&, const Received&) = default;
};

class TcpTransportTest : public ::testing::Test {
 protected:
  void SetUp() override { Start(nullptr, nullptr); }

  // Creates the reactor and transports A and B, each proving `auth_a` or
  // `auth_b` (null: no authentication).
  void Start(const PeerAuth* auth_a, const PeerAuth* auth_b) {
    Result<std::unique_ptr<Reactor>> created = Reactor::Create(&scheduler_);
    ASSERT_TRUE(created.ok()) << created.status();
    reactor_ = std::move(*created);
    process_ = scheduler_.CreateProcess("transport");
    options_.initial_backoff_ns = 2'000'000;
    options_.max_backoff_ns = 20'000'000;
    Result<FileDescriptor> listen_a = ListenTcp({"127.0.0.1", 0});
    Result<FileDescriptor> listen_b = ListenTcp({"127.0.0.1", 0});
    ASSERT_TRUE(listen_a.ok() && listen_b.ok());
    peers_[kA] = {"127.0.0.1", *LocalPort(listen_a->get())};
    peers_[kB] = {"127.0.0.1", *LocalPort(listen_b->get())};
    peers_[kNobody] = {"127.0.0.1", UnusedPort()};
    options_.auth = auth_a;
    options_.on_refusal = [this](const std::string& what) { refusals_a_.push_back(what); };
    a_ = MakeTransport(kA, std::move(*listen_a), &received_by_a_);
    options_.auth = auth_b;
    options_.on_refusal = [this](const std::string& what) { refusals_b_.push_back(what); };
    b_ = MakeTransport(kB, std::move(*listen_b), &received_by_b_);
  }

  // A port that was free a moment ago: connects to it are refused.
  static uint16_t UnusedPort() {
    Result<FileDescriptor> probe = ListenTcp({"127.0.0.1", 0});
    EXPECT_TRUE(probe.ok());
    return *LocalPort(probe->get());
  }

  std::unique_ptr<TcpTransport> MakeTransport(NodeId self, FileDescriptor listening,
                                              std::vector<Received>* inbox) {
    Result<std::unique_ptr<TcpTransport>> transport = TcpTransport::CreateWithListener(
        reactor_.get(), process_, self, peers_, std::move(listening), options_);
    EXPECT_TRUE(transport.ok()) << transport.status();
    if (!transport.ok()) return nullptr;
    (*transport)->SetHandler([inbox](NodeId from, std::string bytes) {
      inbox->push_back({from, std::move(bytes)});
    });
    return std::move(*transport);
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
  TcpTransportOptions options_;
  std::map<NodeId, SocketAddress> peers_;
  std::vector<Received> received_by_a_;
  std::vector<Received> received_by_b_;
  std::vector<std::string> refusals_a_;
  std::vector<std::string> refusals_b_;
  std::unique_ptr<TcpTransport> a_;
  std::unique_ptr<TcpTransport> b_;
};

TEST_F(TcpTransportTest, DeliversBothWaysInOrderAndToItself) {
  std::vector<Received> expected_by_b;
  for (int index = 0; index < 100; ++index) {
    const std::string message = "a-to-b " + std::to_string(index);
    ASSERT_TRUE(a_->Send(kB, message).ok());
    expected_by_b.push_back({kA, message});
  }
  const std::string binary("\0\r\n\xff big", 8);
  ASSERT_TRUE(b_->Send(kA, binary).ok());
  ASSERT_TRUE(a_->Send(kA, "to myself").ok());
  ASSERT_TRUE(RunUntil([&] {
    return received_by_b_.size() == 100 && received_by_a_.size() == 2;
  }));
  EXPECT_EQ(received_by_b_, expected_by_b);
  // Two senders: the relative order of their messages is unspecified.
  EXPECT_NE(std::find(received_by_a_.begin(), received_by_a_.end(),
                      Received{kB, binary}), received_by_a_.end());
  EXPECT_NE(std::find(received_by_a_.begin(), received_by_a_.end(),
                      Received{kA, "to myself"}), received_by_a_.end());
  EXPECT_EQ(a_->stats().connects, 2u);  // to B and to itself
  EXPECT_EQ(b_->stats().messages_received, 100u);
  EXPECT_EQ(b_->stats().bad_frames, 0u);
}

TEST_F(TcpTransportTest, ConnectAllDialsEveryOtherPeerBeforeAnyMessage) {
  EXPECT_FALSE(a_->connected_to(kB));
  a_->ConnectAll();
  a_->ConnectAll();  // already connecting: no second connection
  ASSERT_TRUE(RunUntil([&] { return a_->connected_to(kB); }));
  EXPECT_FALSE(a_->connected_to(kA));      // never to itself
  EXPECT_FALSE(a_->connected_to(kNobody));  // refused, retried with backoff
  EXPECT_EQ(a_->stats().connects, 1u);
  EXPECT_GE(a_->stats().connect_failures, 1u);
  EXPECT_EQ(a_->stats().messages_sent, 0u);
}

TEST_F(TcpTransportTest, ReconnectsAfterThePeersListenerRestarts) {
  ASSERT_TRUE(a_->Send(kB, "before").ok());
  ASSERT_TRUE(RunUntil([&] { return received_by_b_.size() == 1; }));
  b_.reset();  // B's node goes away: listener and connections close
  ASSERT_TRUE(RunUntil([&] { return !a_->connected_to(kB); }));
  EXPECT_EQ(a_->stats().disconnects, 1u);

  Result<FileDescriptor> relisten = ListenTcp(peers_[kB]);
  ASSERT_TRUE(relisten.ok()) << relisten.status();
  std::vector<Received> received_by_new_b;
  b_ = MakeTransport(kB, std::move(*relisten), &received_by_new_b);
  // Messages sent while the connection was down may be lost, so keep sending
  // until one gets through the re-established connection.
  int sent = 0;
  ASSERT_TRUE(RunUntil([&] {
    if (!received_by_new_b.empty()) return true;
    if (a_->queued_bytes(kB) == 0) {
      EXPECT_TRUE(a_->Send(kB, "after " + std::to_string(sent++)).ok());
    }
    return false;
  }));
  EXPECT_EQ(received_by_new_b.front().from, kA);
  EXPECT_EQ(received_by_new_b.front().bytes.rfind("after ", 0), 0u);
  EXPECT_GE(a_->stats().connects, 2u);
}

TEST_F(TcpTransportTest, FullQueueRefusesInsteadOfGrowing) {
  a_.reset();
  options_.max_message_bytes = 100;
  options_.max_queue_bytes = 1000;
  Result<FileDescriptor> listening = ListenTcp({"127.0.0.1", 0});
  ASSERT_TRUE(listening.ok());
  a_ = MakeTransport(kA, std::move(*listening), &received_by_a_);

  const std::string message(84, 'q');  // 100-byte frames
  int accepted = 0;
  Status status;
  while ((status = a_->Send(kNobody, message)).ok()) ++accepted;
  EXPECT_EQ(status.code(), StatusCode::kResourceExhausted) << status;
  EXPECT_EQ(accepted, 10);
  EXPECT_EQ(a_->queued_bytes(kNobody), 1000u);
  EXPECT_EQ(a_->stats().send_queue_full, 1u);

  // Reconnect attempts keep failing, and the queue stays bounded.
  ASSERT_TRUE(RunUntil([&] { return a_->stats().connect_failures >= 3; }));
  EXPECT_EQ(a_->Send(kNobody, message).code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(a_->queued_bytes(kNobody), 1000u);
  EXPECT_EQ(a_->Send(kNobody, std::string(101, 'x')).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(a_->Send(99, "who").code(), StatusCode::kInvalidArgument);
}

// Writes raw bytes to B's listener and waits for B to hang up.
class RawClient {
 public:
  RawClient(Reactor* reactor, const SocketAddress& address) {
    ConnectionHandlers handlers;
    handlers.on_close = [this](Status reason) {
      closed_ = true;
      reason.IgnoreError();
    };
    Result<std::unique_ptr<Connection>> connection =
        Connection::Connect(reactor, address, std::move(handlers));
    EXPECT_TRUE(connection.ok()) << connection.status();
    connection_ = std::move(*connection);
  }
  void Write(std::string_view bytes) { connection_->Write(bytes); }
  bool closed() const { return closed_; }

 private:
  bool closed_ = false;
  std::unique_ptr<Connection> connection_;
};

TEST_F(TcpTransportTest, CorruptFrameIsCountedAndDropsTheConnection) {
  RawClient client(reactor_.get(), peers_[kB]);
  std::string stream;
  AppendFrame(kA, "good", &stream);
  std::string bad;
  AppendFrame(kA, "damaged", &bad);
  bad.back() ^= 0x01;
  stream += bad;
  AppendFrame(kA, "never delivered", &stream);
  client.Write(stream);
  ASSERT_TRUE(RunUntil([&] { return client.closed(); }));
  EXPECT_EQ(b_->stats().bad_frames, 1u);
  EXPECT_EQ(b_->inbound_connections(), 0u);
  ASSERT_EQ(received_by_b_.size(), 1u);
  EXPECT_EQ(received_by_b_[0], (Received{kA, "good"}));

  // The node keeps serving its peers.
  ASSERT_TRUE(a_->Send(kB, "still here").ok());
  ASSERT_TRUE(RunUntil([&] { return received_by_b_.size() == 2; }));
}

// A node the table does not know yet (a joiner) is heard; a sender that
// claims an address-only id, and garbage, are bad frames.
TEST_F(TcpTransportTest, NewcomersAreHeardImpostorsAndGarbageAreBadFrames) {
  RawClient newcomer(reactor_.get(), peers_[kB]);
  std::string hello;
  AppendFrame(77, "new here", &hello);
  newcomer.Write(hello);
  ASSERT_TRUE(RunUntil([&] { return received_by_b_.size() == 1; }));
  EXPECT_EQ(received_by_b_[0], (Received{77, "new here"}));
  RawClient impostor(reactor_.get(), peers_[kB]);
  std::string stream;
  AppendFrame(TcpTransport::kFirstAddressOnlyId, "who am I", &stream);
  impostor.Write(stream);
  RawClient garbage(reactor_.get(), peers_[kB]);
  garbage.Write("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  ASSERT_TRUE(RunUntil([&] { return impostor.closed() && garbage.closed(); }));
  EXPECT_EQ(b_->stats().bad_frames, 2u);
  EXPECT_EQ(received_by_b_.size(), 1u);
}

// A seed known only by its address is reached, and answers by our id once
// it learns where we listen.
TEST_F(TcpTransportTest, ASeedKnownByAddressIsReachedAndAnswers) {
  ASSERT_TRUE(a_->SendToAddress(peers_[kB].ToString(), "hello seed").ok());
  ASSERT_TRUE(RunUntil([&] { return received_by_b_.size() == 1; }));
  EXPECT_EQ(received_by_b_[0], (Received{kA, "hello seed"}));
  EXPECT_TRUE(a_->SendToAddress("not an address", "x").IsInvalidArgument());
  EXPECT_TRUE(a_->SetAddress(TcpTransport::kFirstAddressOnlyId, "127.0.0.1:1").IsInvalidArgument());
  EXPECT_TRUE(a_->Send(TcpTransport::kFirstAddressOnlyId, "x").IsInvalidArgument());
}

TEST_F(TcpTransportTest, InboundConnectionsAreBounded) {
  b_.reset();
  options_.max_inbound_connections = 2;
  Result<FileDescriptor> listening = ListenTcp(peers_[kB]);
  ASSERT_TRUE(listening.ok()) << listening.status();
  b_ = MakeTransport(kB, std::move(*listening), &received_by_b_);
  RawClient first(reactor_.get(), peers_[kB]);
  RawClient second(reactor_.get(), peers_[kB]);
  ASSERT_TRUE(RunUntil([&] { return b_->inbound_connections() == 2; }));
  RawClient third(reactor_.get(), peers_[kB]);
  ASSERT_TRUE(RunUntil([&] { return third.closed(); }));
  EXPECT_EQ(b_->stats().inbound_refused, 1u);
  EXPECT_FALSE(first.closed());
  EXPECT_FALSE(second.closed());
}

TEST_F(TcpTransportTest, OversizedMessageIsRefused) {
  EXPECT_EQ(a_->Send(kB, std::string(options_.max_message_bytes + 1, 'x')).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(a_->stats().messages_sent, 0u);
}

}  // namespace
}  // namespace mks::net

namespace mks::net {
namespace {

// The same two transports, each proving a cluster secret.
class AuthenticatedTransportTest : public TcpTransportTest {
 protected:
  void SetUp() override {}

  // Builds A and B with secrets `a_secret` and `b_secret`.
  void Build(const std::string& a_secret, const std::string& b_secret) {
    secret_a_ = std::make_unique<PeerAuth>(*PeerAuth::FromSecret(a_secret));
    secret_b_ = std::make_unique<PeerAuth>(*PeerAuth::FromSecret(b_secret));
    Start(secret_a_.get(), secret_b_.get());
  }

  std::unique_ptr<PeerAuth> secret_a_;
  std::unique_ptr<PeerAuth> secret_b_;
};

TEST_F(AuthenticatedTransportTest, PeersSharingTheSecretTalk) {
  Build("the cluster secret, long enough", "the cluster secret, long enough");
  for (int i = 0; i < 50; ++i) ASSERT_TRUE(a_->Send(kB, "m" + std::to_string(i)).ok());
  ASSERT_TRUE(b_->Send(kA, "back").ok());
  ASSERT_TRUE(RunUntil([&] { return received_by_b_.size() == 50 && received_by_a_.size() == 1; }));
  EXPECT_EQ(received_by_b_[49], (Received{kA, "m49"}));
  EXPECT_EQ(b_->stats().peers_refused, 0u);
  EXPECT_TRUE(refusals_a_.empty() && refusals_b_.empty());
}

TEST_F(AuthenticatedTransportTest, AnotherSecretIsRefusedAndBothSidesSaySo) {
  Build("the cluster secret, long enough", "another secret, also long enough");
  ASSERT_TRUE(a_->Send(kB, "let me in").ok());
  ASSERT_TRUE(RunUntil([&] { return !refusals_a_.empty() && !refusals_b_.empty(); }));
  EXPECT_TRUE(received_by_b_.empty());
  EXPECT_GE(b_->stats().peers_refused, 1u);
  EXPECT_GE(a_->stats().refusals_received, 1u);
  EXPECT_NE(refusals_b_[0].find("does not hold this cluster's secret"), std::string::npos)
      << refusals_b_[0];
  EXPECT_NE(refusals_a_[0].find("node 2 at 127.0.0.1:"), std::string::npos) << refusals_a_[0];
  EXPECT_NE(refusals_a_[0].find("refused this node"), std::string::npos) << refusals_a_[0];
}

TEST_F(AuthenticatedTransportTest, AFrameWithoutTheHandshakeIsRefused) {
  Build("the cluster secret, long enough", "the cluster secret, long enough");
  RawClient stranger(reactor_.get(), peers_[kB]);
  std::string frame;
  AppendFrame(kA, "forged replica.put", &frame);
  stranger.Write(frame);
  ASSERT_TRUE(RunUntil([&] { return stranger.closed(); }));
  EXPECT_TRUE(received_by_b_.empty());
  EXPECT_EQ(b_->stats().peers_refused, 1u);
}

TEST(PeerAuthTest, HelloProvesTheSecretAndBindsTheChallenge) {
  const PeerAuth auth = *PeerAuth::FromSecret("a secret of sixteen+\n");
  const PeerAuth other = *PeerAuth::FromSecret("a different secret here");
  EXPECT_TRUE(PeerAuth::FromSecret("short").status().IsInvalidArgument());
  const std::string challenge = auth.NewChallenge();
  EXPECT_NE(challenge, auth.NewChallenge());
  PeerSession client;
  PeerSession server;
  Result<std::string> hello = auth.Hello(challenge, 7, &client);
  ASSERT_TRUE(hello.ok());
  Result<NodeId> sender = auth.CheckHello(challenge, *hello, &server);
  ASSERT_TRUE(sender.ok()) << sender.status();
  EXPECT_EQ(*sender, 7u);
  // The sessions agree, in order, once each.
  const std::string first = client.NextTag("frame one");
  const std::string second = client.NextTag("frame two");
  EXPECT_FALSE(server.CheckNextTag("frame two", second));  // out of order
  EXPECT_TRUE(server.CheckNextTag("frame one", first));
  EXPECT_FALSE(server.CheckNextTag("frame 2!!", second));  // altered
  EXPECT_TRUE(server.CheckNextTag("frame two", second));
  // Another secret, or a replayed hello answering an old challenge, fails.
  PeerSession ignored;
  EXPECT_FALSE(other.CheckHello(challenge, *hello, &ignored).ok());
  EXPECT_FALSE(auth.CheckHello(auth.NewChallenge(), *hello, &ignored).ok());
  EXPECT_FALSE(auth.Hello("no challenge here at all", 7, &ignored).ok());
}

}  // namespace
}  // namespace mks::net
