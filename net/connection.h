// A buffered, nonblocking TCP byte stream driven by the Reactor: the piece the
// peer transport and the RESP and HTTP servers share.
//
// Reads are delivered as they arrive; writes are queued and flushed as the
// socket accepts them. The owner learns about the end of the stream once,
// through on_close, and may destroy the Connection inside any handler.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "core/status.h"
#include "net/reactor.h"
#include "net/socket.h"

namespace mks::net {

struct ConnectionHandlers {
  // Outbound connections only: the connect completed. Optional.
  std::function<void()> on_connected;
  // Bytes read from the peer, in order. The view is valid only during the
  // call. Optional (bytes are then discarded).
  std::function<void(std::string_view bytes)> on_data;
  // The stream ended: OK when the peer closed it cleanly or CloseWhenFlushed
  // finished; IOError/Unavailable for connect failures, resets and other
  // errors. Called at most once, never after Close(), and last: the
  // connection is already closed when it runs. Optional.
  std::function<void(Status reason)> on_close;
  // The peer finished sending but may still read (a TCP half-close, as
  // `printf ... | nc -N` does). When set, the connection stays open for
  // Writes and on_close follows later; when unset, the end of input ends the
  // connection through on_close(OK). Optional.
  std::function<void()> on_input_end;
  // Every byte queued by Write has been handed to the kernel, at the end of
  // the turn that wrote them or after some had to wait for the socket. Only
  // called from the loop (readiness events, end-of-turn flushes), never from
  // inside Write.
  // Lets a writer that stopped on a full buffer resume. Optional.
  std::function<void()> on_drained;
};

class Connection {
 public:
  // Starts connecting to `address`. Returns InvalidArgument for a bad
  // address; IOError when the connect cannot even start. A connect that fails
  // later is reported through on_close.
  static Result<std::unique_ptr<Connection>> Connect(Reactor* reactor,
                                                     const SocketAddress& address,
                                                     ConnectionHandlers handlers);
  // Wraps an accepted, connected, nonblocking socket. Returns IOError when
  // the reactor cannot watch it.
  static Result<std::unique_ptr<Connection>> Adopt(Reactor* reactor,
                                                   FileDescriptor socket,
                                                   ConnectionHandlers handlers);
  // Closes the socket without calling on_close; unsent bytes are dropped.
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Queues `bytes` for sending; at the end of the reactor's turn (see
  // Reactor::AtEndOfTurn) everything queued is sent as far as the socket
  // accepts, the rest as it becomes writable. Write errors are reported later
  // through on_close, never from inside Write, so callers need not expect
  // re-entry. Writing to a closed connection drops the bytes.
  void Write(std::string_view bytes);

  // Stops reading (true) or resumes (false), for backpressure when the
  // owner's replies pile up. Reading is on at the start.
  void PauseReading(bool paused);

  // Closes the socket once every queued byte is sent, then reports OK
  // through on_close. Further reads are ignored.
  void CloseWhenFlushed();

  // Closes now, dropping unsent bytes, without calling on_close. Idempotent.
  void Close();

  bool connected() const { return connected_; }
  bool closed() const { return !socket_.valid(); }
  // Bytes queued by Write and not yet accepted by the kernel.
  size_t pending_output_bytes() const { return output_.size() - output_sent_; }
  uint64_t bytes_read() const { return bytes_read_; }
  uint64_t bytes_written() const { return bytes_written_; }
  // send() calls that handed bytes to the kernel.
  uint64_t send_calls() const { return send_calls_; }

 private:
  Connection(Reactor* reactor, FileDescriptor socket, bool connected,
             ConnectionHandlers handlers);
  Status Register();
  void OnEvents(uint32_t events);
  // Each returns false when the connection was closed or destroyed while it
  // ran, in which case the caller must return without touching members.
  bool FinishConnect();
  bool ReadAvailable();
  bool EndInput();
  bool Flush();
  void FlushAtEndOfTurn();
  void UpdateInterest();
  void ReportClose(Status reason);

  Reactor* const reactor_;
  FileDescriptor socket_;  // invalid once closed
  bool connected_;
  bool reading_paused_ = false;
  bool input_ended_ = false;  // the peer half-closed; nothing more to read
  // The interest last given to the reactor; changed only when it differs,
  // which saves an epoll_ctl per Write on the common path.
  uint32_t interest_ = 0;
  bool close_when_flushed_ = false;
  // An end-of-turn flush is queued with the reactor; Writes until it runs
  // only append.
  bool flush_scheduled_ = false;
  ConnectionHandlers handlers_;
  // Invariant: output_sent_ <= output_.size(); bytes before output_sent_ are
  // already with the kernel and are dropped lazily.
  std::string output_;
  size_t output_sent_ = 0;
  Status write_error_;  // a failed send, reported on the next event
  uint64_t bytes_read_ = 0;
  uint64_t bytes_written_ = 0;
  uint64_t send_calls_ = 0;
  // Expires when the connection is destroyed: handlers may delete it, and the
  // event code checks this before touching members again.
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);
};

// Accepts connections on a listening socket and hands each new socket over.
class TcpListener {
 public:
  using AcceptHandler =
      std::function<void(FileDescriptor socket)>;

  // Listens on `address` (port 0: an ephemeral port). Returns the errors of
  // ListenTcp, or IOError when the reactor cannot watch the socket.
  static Result<std::unique_ptr<TcpListener>> Listen(Reactor* reactor,
                                                     const SocketAddress& address,
                                                     AcceptHandler on_accept);
  // Takes over an already listening socket (see ListenTcp).
  static Result<std::unique_ptr<TcpListener>> Adopt(Reactor* reactor,
                                                    FileDescriptor listening,
                                                    AcceptHandler on_accept);
  ~TcpListener();
  TcpListener(const TcpListener&) = delete;
  TcpListener& operator=(const TcpListener&) = delete;

  uint16_t port() const { return port_; }
  // accept() failures other than "nothing pending" (for example EMFILE).
  uint64_t accept_errors() const { return accept_errors_; }

 private:
  TcpListener(Reactor* reactor, FileDescriptor listening, uint16_t port,
              AcceptHandler on_accept);
  void AcceptPending();

  Reactor* const reactor_;
  const FileDescriptor listening_;
  const uint16_t port_;
  AcceptHandler on_accept_;
  uint64_t accept_errors_ = 0;
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);
};

}  // namespace mks::net
