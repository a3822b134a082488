#include "net/socket.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

namespace mks::net {
namespace {

int IntOption(int fd, int level, int name) {
  int value = -1;
  socklen_t length = sizeof(value);
  EXPECT_EQ(getsockopt(fd, level, name, &value, &length), 0);
  return value;
}

TEST(SocketAddressTest, ParsesHostAndPort) {
  Result<SocketAddress> address = ParseSocketAddress("127.0.0.1:7000");
  ASSERT_TRUE(address.ok()) << address.status();
  EXPECT_EQ(address->host, "127.0.0.1");
  EXPECT_EQ(address->port, 7000);
  EXPECT_EQ(address->ToString(), "127.0.0.1:7000");
  EXPECT_EQ(ParseSocketAddress("0.0.0.0:0")->port, 0);
}

TEST(SocketAddressTest, RejectsMalformedAddresses) {
  for (const char* text : {"", "127.0.0.1", ":80", "127.0.0.1:", "127.0.0.1:65536",
                           "127.0.0.1:-1", "127.0.0.1:80x", "localhost:80",
                           "1.2.3:80", "127.0.0.1: 80"}) {
    EXPECT_EQ(ParseSocketAddress(text).status().code(), StatusCode::kInvalidArgument)
        << text;
  }
}

TEST(SocketTest, ListensConnectsAndConfiguresTheSocket) {
  Result<FileDescriptor> listening = ListenTcp({"127.0.0.1", 0});
  ASSERT_TRUE(listening.ok()) << listening.status();
  Result<uint16_t> port = LocalPort(listening->get());
  ASSERT_TRUE(port.ok());
  EXPECT_NE(*port, 0);
  Result<FileDescriptor> client = ConnectTcp({"127.0.0.1", *port});
  ASSERT_TRUE(client.ok()) << client.status();
  const int fd = client->get();
  EXPECT_EQ(IntOption(fd, IPPROTO_TCP, TCP_NODELAY), 1);
  EXPECT_EQ(IntOption(fd, SOL_SOCKET, SO_KEEPALIVE), 1);
  EXPECT_EQ(IntOption(fd, IPPROTO_TCP, TCP_KEEPIDLE), 30);
  EXPECT_EQ(IntOption(fd, IPPROTO_TCP, TCP_USER_TIMEOUT), 30'000);
  // Binding the same port twice while it listens fails cleanly.
  EXPECT_EQ(ListenTcp({"127.0.0.1", *port}).status().code(), StatusCode::kIOError);
  EXPECT_EQ(ListenTcp({"no.such.host", 0}).status().code(),
            StatusCode::kInvalidArgument);
}

TEST(FileDescriptorTest, OwnsAndReleases) {
  Result<FileDescriptor> listening = ListenTcp({"127.0.0.1", 0});
  ASSERT_TRUE(listening.ok());
  FileDescriptor moved = std::move(*listening);
  EXPECT_FALSE(listening->valid());
  EXPECT_TRUE(moved.valid());
  const int raw = moved.Release();
  EXPECT_FALSE(moved.valid());
  FileDescriptor adopted(raw);
  adopted.Reset();
  EXPECT_FALSE(adopted.valid());
}

}  // namespace
}  // namespace mks::net
