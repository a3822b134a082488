#include "net/socket.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <charconv>

#include "core/assertions.h"

namespace mks::net {
namespace {

Result<sockaddr_in> ToSockaddr(const SocketAddress& address) {
  sockaddr_in result{};
  result.sin_family = AF_INET;
  result.sin_port = htons(address.port);
  if (inet_pton(AF_INET, address.host.c_str(), &result.sin_addr) != 1) {
    return Status::InvalidArgument("not a dotted IPv4 address: '" +
                                   address.host + "'");
  }
  return result;
}

Result<FileDescriptor> NewTcpSocket() {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return ErrnoStatus("socket");
  FileDescriptor socket_fd(fd);
  // Frames and replies are small and latency matters more than packet count.
  const int one = 1;
  if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0) {
    return ErrnoStatus("setsockopt(TCP_NODELAY)");
  }
  return socket_fd;
}

Status SetIntOption(int fd, int level, int name, int value, std::string_view what) {
  if (setsockopt(fd, level, name, &value, sizeof(value)) != 0) {
    return ErrnoStatus(what);
  }
  return Status::Ok();
}

}  // namespace

Status EnableKeepAlive(int fd) {
  MKS_ASSERT_GE(fd, 0);
  MKS_RETURN_IF_ERROR(SetIntOption(fd, SOL_SOCKET, SO_KEEPALIVE, 1, "SO_KEEPALIVE"));
  MKS_RETURN_IF_ERROR(SetIntOption(fd, IPPROTO_TCP, TCP_KEEPIDLE, 30, "TCP_KEEPIDLE"));
  MKS_RETURN_IF_ERROR(SetIntOption(fd, IPPROTO_TCP, TCP_KEEPINTVL, 10, "TCP_KEEPINTVL"));
  MKS_RETURN_IF_ERROR(SetIntOption(fd, IPPROTO_TCP, TCP_KEEPCNT, 3, "TCP_KEEPCNT"));
  return SetIntOption(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, 30'000, "TCP_USER_TIMEOUT");
}

FileDescriptor& FileDescriptor::operator=(FileDescriptor&& other) noexcept {
  if (this != &other) {
    Reset();
    fd_ = other.Release();
  }
  return *this;
}

int FileDescriptor::Release() {
  const int fd = fd_;
  fd_ = -1;
  return fd;
}

void FileDescriptor::Reset() {
  if (fd_ < 0) return;
  // close() may report an error (EINTR, or EIO on NFS) but the descriptor is
  // released in every case on Linux; there is nothing to retry.
  ::close(fd_);
  fd_ = -1;
}

Status ErrnoStatus(std::string_view what) {
  const int error = errno;
  return Status::IOError(std::string(what) + ": " + strerror(error));
}

Result<SocketAddress> ParseSocketAddress(std::string_view text) {
  const size_t colon = text.rfind(':');
  if (colon == std::string_view::npos || colon == 0) {
    return Status::InvalidArgument("address must be host:port, got '" +
                                   std::string(text) + "'");
  }
  const std::string_view port_text = text.substr(colon + 1);
  unsigned port = 0;
  const auto [end, error] = std::from_chars(
      port_text.data(), port_text.data() + port_text.size(), port);
  if (error != std::errc() || end != port_text.data() + port_text.size() ||
      port_text.empty() || port > 65535) {
    return Status::InvalidArgument("bad port in '" + std::string(text) + "'");
  }
  SocketAddress address{std::string(text.substr(0, colon)),
                        static_cast<uint16_t>(port)};
  MKS_RETURN_IF_ERROR(ToSockaddr(address).status());
  return address;
}

Result<FileDescriptor> ListenTcp(const SocketAddress& address, int backlog) {
  MKS_ASSERT_GT(backlog, 0);
  Result<sockaddr_in> native = ToSockaddr(address);
  MKS_RETURN_IF_ERROR(native.status());
  Result<FileDescriptor> socket_fd = NewTcpSocket();
  MKS_RETURN_IF_ERROR(socket_fd.status());
  const int fd = socket_fd->get();
  const int one = 1;
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0) {
    return ErrnoStatus("setsockopt(SO_REUSEADDR)");
  }
  if (bind(fd, reinterpret_cast<const sockaddr*>(&*native),
           sizeof(sockaddr_in)) != 0) {
    return ErrnoStatus("bind " + address.ToString());
  }
  if (listen(fd, backlog) != 0) return ErrnoStatus("listen " + address.ToString());
  return std::move(*socket_fd);
}

Result<FileDescriptor> ConnectTcp(const SocketAddress& address) {
  Result<sockaddr_in> native = ToSockaddr(address);
  MKS_RETURN_IF_ERROR(native.status());
  Result<FileDescriptor> socket_fd = NewTcpSocket();
  MKS_RETURN_IF_ERROR(socket_fd.status());
  MKS_RETURN_IF_ERROR(EnableKeepAlive(socket_fd->get()));
  const int result = connect(socket_fd->get(),
                             reinterpret_cast<const sockaddr*>(&*native),
                             sizeof(sockaddr_in));
  if (result != 0 && errno != EINPROGRESS) {
    return ErrnoStatus("connect " + address.ToString());
  }
  MKS_ASSERT(socket_fd->valid());
  return std::move(*socket_fd);
}

Result<uint16_t> LocalPort(int fd) {
  MKS_ASSERT_GE(fd, 0);
  sockaddr_in local{};
  socklen_t length = sizeof(local);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&local), &length) != 0) {
    return ErrnoStatus("getsockname");
  }
  MKS_ASSERT_EQ(local.sin_family, AF_INET);
  return static_cast<uint16_t>(ntohs(local.sin_port));
}

}  // namespace mks::net
