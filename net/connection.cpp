#include "net/connection.h"

#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>

#include "core/assertions.h"

namespace mks::net {
namespace {

constexpr size_t kReadChunkBytes = 64 * 1024;
// Reads per readiness event: bounded so one busy peer cannot starve others
// (epoll is level-triggered, so the rest is picked up next turn).
constexpr int kMaxReadsPerEvent = 16;

}  // namespace

Result<std::unique_ptr<Connection>> Connection::Connect(
    Reactor* reactor, const SocketAddress& address, ConnectionHandlers handlers) {
  MKS_ASSERT(reactor != nullptr);
  Result<FileDescriptor> socket = ConnectTcp(address);
  MKS_RETURN_IF_ERROR(socket.status());
  std::unique_ptr<Connection> connection(new Connection(
      reactor, std::move(*socket), /*connected=*/false, std::move(handlers)));
  MKS_RETURN_IF_ERROR(connection->Register());
  return connection;
}

Result<std::unique_ptr<Connection>> Connection::Adopt(Reactor* reactor,
                                                      FileDescriptor socket,
                                                      ConnectionHandlers handlers) {
  MKS_ASSERT(reactor != nullptr);
  MKS_ASSERT(socket.valid());
  std::unique_ptr<Connection> connection(new Connection(
      reactor, std::move(socket), /*connected=*/true, std::move(handlers)));
  MKS_RETURN_IF_ERROR(connection->Register());
  return connection;
}

Connection::Connection(Reactor* reactor, FileDescriptor socket, bool connected,
                       ConnectionHandlers handlers)
    : reactor_(reactor),
      socket_(std::move(socket)),
      connected_(connected),
      handlers_(std::move(handlers)) {}

Connection::~Connection() { Close(); }

Status Connection::Register() {
  // Until connected, writability means "the connect finished".
  interest_ = connected_ ? kReadable : kWritable;
  return reactor_->Watch(socket_.get(), interest_,
                         [this](uint32_t events) { OnEvents(events); });
}

void Connection::Close() {
  if (!socket_.valid()) return;
  reactor_->Unwatch(socket_.get());
  socket_.Reset();
  connected_ = false;
  MKS_ASSERT(closed());
}

void Connection::ReportClose(Status reason) {
  Close();
  // Moved out first: the handler may destroy this connection.
  std::function<void(Status)> on_close = std::move(handlers_.on_close);
  if (on_close) on_close(std::move(reason));
}

void Connection::Write(std::string_view bytes) {
  if (closed() || close_when_flushed_) return;
  if (output_sent_ > 0 && output_sent_ >= output_.size() / 2) {
    output_.erase(0, output_sent_);
    output_sent_ = 0;
  }
  output_.append(bytes);
  if (flush_scheduled_) return;
  // Sent at the end of the turn, with whatever else the turn writes: one
  // system call carries a burst of messages.
  flush_scheduled_ = true;
  reactor_->AtEndOfTurn([this, alive = std::weak_ptr<int>(alive_)] {
    if (alive.expired()) return;
    FlushAtEndOfTurn();
  });
}

void Connection::FlushAtEndOfTurn() {
  MKS_ASSERT(flush_scheduled_);
  flush_scheduled_ = false;
  if (closed()) return;
  if (connected_ && write_error_.ok() && Flush() && pending_output_bytes() == 0 &&
      handlers_.on_drained) {
    // A failed send surfaces through the next event instead.
    const std::weak_ptr<int> alive = alive_;
    handlers_.on_drained();
    if (alive.expired() || closed()) return;
  }
  UpdateInterest();
}

void Connection::PauseReading(bool paused) {
  if (paused == reading_paused_) return;
  reading_paused_ = paused;
  UpdateInterest();
}

void Connection::CloseWhenFlushed() {
  if (closed()) return;
  close_when_flushed_ = true;
  UpdateInterest();  // writability triggers the close once drained
}

void Connection::UpdateInterest() {
  if (closed()) return;
  uint32_t interest = 0;
  if (!connected_ || pending_output_bytes() > 0 || !write_error_.ok() ||
      close_when_flushed_) {
    interest |= kWritable;
  }
  if (connected_ && !reading_paused_ && !close_when_flushed_ && !input_ended_) {
    interest |= kReadable;
  }
  if (interest == interest_) return;
  const Status status = reactor_->SetInterest(socket_.get(), interest);
  MKS_ASSERT_MSG(status.ok(), status.ToString());
  interest_ = interest;
}

void Connection::OnEvents(uint32_t events) {
  MKS_ASSERT(!closed());
  if (!connected_) {
    if (!FinishConnect()) return;
  }
  if (!write_error_.ok()) return ReportClose(write_error_);
  if ((events & (kReadable | kHangup)) && !close_when_flushed_ && !input_ended_) {
    if (!ReadAvailable()) return;
  } else if ((events & kHangup) && input_ended_ && pending_output_bytes() == 0) {
    // Both directions are closed now: nothing left to read or to send.
    return ReportClose(Status::Ok());
  }
  if (events & (kWritable | kHangup)) {
    const bool had_pending = pending_output_bytes() > 0;
    if (!Flush()) return ReportClose(write_error_);
    if (close_when_flushed_ && pending_output_bytes() == 0) {
      return ReportClose(Status::Ok());
    }
    if (had_pending && pending_output_bytes() == 0 && handlers_.on_drained) {
      const std::weak_ptr<int> alive = alive_;
      handlers_.on_drained();
      if (alive.expired() || closed()) return;
    }
  }
  UpdateInterest();
}

bool Connection::FinishConnect() {
  int error = 0;
  socklen_t length = sizeof(error);
  if (getsockopt(socket_.get(), SOL_SOCKET, SO_ERROR, &error, &length) != 0) {
    ReportClose(ErrnoStatus("getsockopt(SO_ERROR)"));
    return false;
  }
  if (error != 0) {
    errno = error;
    ReportClose(ErrnoStatus("connect"));
    return false;
  }
  connected_ = true;
  UpdateInterest();
  if (!handlers_.on_connected) return true;
  const std::weak_ptr<int> alive = alive_;
  handlers_.on_connected();
  return !alive.expired() && !closed();
}

bool Connection::EndInput() {
  if (!handlers_.on_input_end) {
    ReportClose(Status::Ok());
    return false;
  }
  input_ended_ = true;
  UpdateInterest();
  const std::weak_ptr<int> alive = alive_;
  handlers_.on_input_end();
  return !alive.expired() && !closed();
}

bool Connection::ReadAvailable() {
  const std::weak_ptr<int> alive = alive_;
  std::array<char, kReadChunkBytes> buffer;
  for (int reads = 0; reads < kMaxReadsPerEvent; ++reads) {
    const ssize_t count = recv(socket_.get(), buffer.data(), buffer.size(), 0);
    if (count == 0) return EndInput();
    if (count < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return true;
      if (errno == EINTR) continue;
      ReportClose(ErrnoStatus("recv"));
      return false;
    }
    MKS_ASSERT_LE(static_cast<size_t>(count), buffer.size());
    bytes_read_ += static_cast<uint64_t>(count);
    if (handlers_.on_data) {
      handlers_.on_data(std::string_view(buffer.data(), static_cast<size_t>(count)));
      if (alive.expired() || closed()) return false;
    }
    if (close_when_flushed_ || reading_paused_) return true;
    // A short read drained the socket: the recv that would say EAGAIN is
    // skipped. Epoll is level-triggered, so bytes (or an EOF) that arrive
    // meanwhile are reported on the next turn.
    if (static_cast<size_t>(count) < buffer.size()) return true;
  }
  return true;
}

bool Connection::Flush() {
  MKS_ASSERT(connected_);
  MKS_ASSERT_LE(output_sent_, output_.size());
  while (pending_output_bytes() > 0) {
    const ssize_t count = send(socket_.get(), output_.data() + output_sent_,
                               pending_output_bytes(), MSG_NOSIGNAL);
    if (count < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return true;
      if (errno == EINTR) continue;
      write_error_ = ErrnoStatus("send");
      return false;
    }
    output_sent_ += static_cast<size_t>(count);
    bytes_written_ += static_cast<uint64_t>(count);
    ++send_calls_;
  }
  output_.clear();
  output_sent_ = 0;
  return true;
}

// ---- TcpListener ----

Result<std::unique_ptr<TcpListener>> TcpListener::Listen(
    Reactor* reactor, const SocketAddress& address, AcceptHandler on_accept) {
  Result<FileDescriptor> listening = ListenTcp(address);
  MKS_RETURN_IF_ERROR(listening.status());
  return Adopt(reactor, std::move(*listening), std::move(on_accept));
}

Result<std::unique_ptr<TcpListener>> TcpListener::Adopt(
    Reactor* reactor, FileDescriptor listening, AcceptHandler on_accept) {
  MKS_ASSERT(reactor != nullptr);
  MKS_ASSERT(listening.valid());
  MKS_ASSERT(on_accept != nullptr);
  Result<uint16_t> port = LocalPort(listening.get());
  MKS_RETURN_IF_ERROR(port.status());
  std::unique_ptr<TcpListener> listener(new TcpListener(
      reactor, std::move(listening), *port, std::move(on_accept)));
  MKS_RETURN_IF_ERROR(reactor->Watch(
      listener->listening_.get(), kReadable,
      [raw = listener.get()](uint32_t) { raw->AcceptPending(); }));
  return listener;
}

TcpListener::TcpListener(Reactor* reactor, FileDescriptor listening,
                         uint16_t port, AcceptHandler on_accept)
    : reactor_(reactor),
      listening_(std::move(listening)),
      port_(port),
      on_accept_(std::move(on_accept)) {}

TcpListener::~TcpListener() { reactor_->Unwatch(listening_.get()); }

void TcpListener::AcceptPending() {
  const std::weak_ptr<int> alive = alive_;
  for (int accepted = 0; accepted < kMaxReadsPerEvent; ++accepted) {
    const int fd = accept4(listening_.get(), nullptr, nullptr,
                           SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      if (errno == EINTR || errno == ECONNABORTED) continue;
      // EMFILE and friends: the connection stays in the backlog and is
      // retried next turn; count it so an operator can see the pressure.
      ++accept_errors_;
      return;
    }
    FileDescriptor socket(fd);
    if (!EnableKeepAlive(fd).ok()) {
      ++accept_errors_;
      continue;  // `socket` closes; a socket that refuses options is unusable
    }
    on_accept_(std::move(socket));
    if (alive.expired()) return;
  }
}

}  // namespace mks::net
