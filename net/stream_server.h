// A TCP server that gives each client connection its own fiber, with
// blocking-style Read and Write: the frame on which the RESP and HTTP
// front-ends are built.
//
// A handler runs as a fiber of the server's process, so it can call the
// coordinator and wait on futures between a Read and the matching Write;
// pipelined requests are answered in order simply because one fiber handles
// them one after another. Flow control is built in: a client whose input
// piles up beyond max_input_bytes is no longer read from until the handler
// catches up, and a Write that finds more than max_output_bytes unsent
// suspends until the client has taken them. A slow or hostile client
// therefore costs bounded memory.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "core/runtime/scheduler.h"
#include "core/status.h"
#include "net/connection.h"
#include "net/reactor.h"
#include "net/socket.h"

namespace mks::net {

struct StreamServerOptions {
  size_t max_connections = 4096;          // beyond it, accepted and closed
  size_t max_input_bytes = 1024 * 1024;   // unread input before reading pauses
  size_t max_output_bytes = 4 * 1024 * 1024;  // unsent output before Write waits
  // How long a finished handler's last replies may take to leave.
  int64_t linger_ns = 5'000'000'000;
};

// One client connection, seen from its handler fiber. Every method must be
// called from that fiber.
class ClientStream {
 public:
  ~ClientStream();
  ClientStream(const ClientStream&) = delete;
  ClientStream& operator=(const ClientStream&) = delete;

  // Returns the bytes received since the last Read (never empty), suspending
  // until some arrive. Returns Unavailable once the client closed the
  // connection, finished sending (a half-close: Writes still reach it), or
  // the connection failed, TimedOut when `timeout_ns` (>= 0) passes with
  // nothing received, Cancelled when the server shut down. Bytes received
  // before the end are still returned first.
  Result<std::string> Read(int64_t timeout_ns = -1);

  // Queues `bytes` for the client; suspends while more than
  // max_output_bytes are unsent. Returns Unavailable when the connection
  // has ended (the bytes are dropped).
  Status Write(std::string_view bytes);

  // Ends the connection once queued bytes are sent; further Writes fail and
  // Read reports Unavailable. The handler may simply return instead.
  void Close();

  uint64_t id() const { return id_; }

 private:
  friend class StreamServer;
  ClientStream(runtime::Scheduler* scheduler, runtime::ProcessId process,
               uint64_t id, const StreamServerOptions& options);
  void OnData(std::string_view bytes);
  void OnEnd(Status reason);
  void OnInputEnd();
  void Wake();
  // Suspends the fiber until Wake() or `deadline_ns` (negative: none).
  void WaitForEvent(int64_t deadline_ns);
  // Called after the handler returned: sends what is queued, then closes.
  void Finish();
  void Shutdown();

  runtime::Scheduler* const scheduler_;
  const runtime::ProcessId process_;
  const uint64_t id_;
  const StreamServerOptions options_;
  std::unique_ptr<Connection> connection_;
  // Received and not yet returned by Read. Invariant: reading is paused
  // whenever input_.size() > options_.max_input_bytes.
  std::string input_;
  bool closing_ = false;  // Close() was called; Writes are refused
  bool input_ended_ = false;  // the client half-closed; Writes still go out
  bool ended_ = false;  // the connection is gone; end_ says why
  Status end_;
  std::optional<runtime::WaitToken> waiter_;  // set while the fiber waits
};

class StreamServer {
 public:
  // Runs in a new fiber for every accepted connection; the connection is
  // closed (after its queued bytes are sent) when the handler returns.
  using Handler = std::function<void(ClientStream& stream)>;

  // Listens on `address`; handler fibers belong to `process`, which must
  // outlive the server's connections. Returns the errors of ListenTcp.
  static Result<std::unique_ptr<StreamServer>> Listen(
      Reactor* reactor, runtime::ProcessId process, const SocketAddress& address,
      Handler handler, StreamServerOptions options = {});

  // Stops accepting and closes every connection at once; handler fibers see
  // Cancelled from their next Read or Write and end when next scheduled.
  ~StreamServer();
  StreamServer(const StreamServer&) = delete;
  StreamServer& operator=(const StreamServer&) = delete;

  uint16_t port() const { return listener_->port(); }
  // Connections whose handler is still running.
  size_t active_connections() const;
  uint64_t accepted_connections() const { return accepted_; }
  uint64_t refused_connections() const { return refused_; }

 private:
  using LiveStreams = std::map<uint64_t, std::weak_ptr<ClientStream>>;

  StreamServer(Reactor* reactor, runtime::ProcessId process, Handler handler,
               StreamServerOptions options);
  void OnAccept(FileDescriptor socket);

  Reactor* const reactor_;
  const runtime::ProcessId process_;
  const std::shared_ptr<Handler> handler_;
  const StreamServerOptions options_;
  // Shared with the handler fibers, which remove themselves when they end,
  // even after the server is gone.
  const std::shared_ptr<LiveStreams> live_ = std::make_shared<LiveStreams>();
  std::unique_ptr<TcpListener> listener_;
  uint64_t next_stream_id_ = 1;
  uint64_t accepted_ = 0;
  uint64_t refused_ = 0;
};

}  // namespace mks::net
