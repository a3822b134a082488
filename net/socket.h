// Thin, Status-returning wrappers around the BSD socket calls the reactor,
// the transport and the client front-ends share. Every socket made here is
// nonblocking and close-on-exec.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/status.h"

namespace mks::net {

// Owns one file descriptor and closes it on destruction. Invariant: fd_ is
// either -1 or an open descriptor owned by nobody else.
class FileDescriptor {
 public:
  FileDescriptor() = default;
  explicit FileDescriptor(int fd) : fd_(fd) {}
  ~FileDescriptor() { Reset(); }
  FileDescriptor(FileDescriptor&& other) noexcept : fd_(other.Release()) {}
  FileDescriptor& operator=(FileDescriptor&& other) noexcept;
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  // Gives up ownership without closing; returns the descriptor.
  int Release();
  // Closes the descriptor, if any.
  void Reset();

 private:
  int fd_ = -1;
};

// An IPv4 endpoint. `host` is a dotted-quad address ("127.0.0.1"); names
// are not resolved here, because resolving blocks the reactor thread (a
// tool resolves names before it builds addresses).
struct SocketAddress {
  std::string host;
  uint16_t port = 0;

  std::string ToString() const { return host + ":" + std::to_string(port); }
  friend bool operator==(const SocketAddress&, const SocketAddress&) = default;
};

// Parses "a.b.c.d:port". Returns InvalidArgument for anything else
// (a missing or out-of-range port, a host that is not dotted IPv4).
Result<SocketAddress> ParseSocketAddress(std::string_view text);

// Returns a listening TCP socket bound to `address` (port 0 picks an
// ephemeral port), with SO_REUSEADDR so a restarted node can rebind while old
// connections linger in TIME_WAIT. Returns InvalidArgument for a bad host,
// IOError when the kernel refuses (port in use, no permission).
Result<FileDescriptor> ListenTcp(const SocketAddress& address, int backlog = 511);

// Starts a nonblocking connect to `address` and returns the socket at once;
// the connect completes (or fails) later, reported as writability plus
// SO_ERROR. Returns InvalidArgument for a bad host, IOError when even the
// start fails.
Result<FileDescriptor> ConnectTcp(const SocketAddress& address);

// Turns on TCP keepalive (first probe after 30 s idle, then every 10 s, dead
// after 3 unanswered) and a 30 s TCP_USER_TIMEOUT for unacknowledged data,
// so a peer whose machine vanished without a FIN or RST is noticed within
// about a minute instead of hours. ConnectTcp and TcpListener apply it to
// every connection. Returns IOError when the kernel refuses an option.
Status EnableKeepAlive(int fd);

// Returns the local port a socket is bound to; IOError when it has none.
Result<uint16_t> LocalPort(int fd);

// Returns "what: strerror(errno)" as an IOError, capturing errno now.
Status ErrnoStatus(std::string_view what);

}  // namespace mks::net
