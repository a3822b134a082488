#include "net/stream_server.h"

#include <utility>

#include "core/assertions.h"

namespace mks::net {

// ---- ClientStream ----

ClientStream::ClientStream(runtime::Scheduler* scheduler,
                           runtime::ProcessId process, uint64_t id,
                           const StreamServerOptions& options)
    : scheduler_(scheduler), process_(process), id_(id), options_(options) {}

ClientStream::~ClientStream() = default;

void ClientStream::OnData(std::string_view bytes) {
  MKS_ASSERT(!ended_);
  input_.append(bytes);
  if (input_.size() > options_.max_input_bytes) connection_->PauseReading(true);
  Wake();
}

void ClientStream::OnEnd(Status reason) {
  MKS_ASSERT(!ended_);
  ended_ = true;
  end_ = reason.ok() ? Status::Unavailable("the client closed the connection")
                     : Status::Unavailable("connection failed: " + reason.ToString());
  Wake();
}

void ClientStream::OnInputEnd() {
  MKS_ASSERT(!ended_);
  input_ended_ = true;
  Wake();
}

void ClientStream::Wake() {
  if (waiter_) scheduler_->Wake(*waiter_);
}

void ClientStream::WaitForEvent(int64_t deadline_ns) {
  MKS_ASSERT(scheduler_->InFiber());
  MKS_ASSERT(!waiter_.has_value());
  const runtime::WaitToken token = scheduler_->PrepareWait();
  waiter_ = token;
  runtime::TimerId timer;
  if (deadline_ns >= 0) {
    runtime::Scheduler* scheduler = scheduler_;
    timer = scheduler_->At(process_, deadline_ns,
                           [scheduler, token] { scheduler->Wake(token); });
  }
  scheduler_->Wait();
  waiter_.reset();
  if (timer.sequence != 0) scheduler_->Cancel(timer);
}

Result<std::string> ClientStream::Read(int64_t timeout_ns) {
  const int64_t deadline_ns =
      timeout_ns < 0 ? -1 : scheduler_->NowNanos() + timeout_ns;
  for (;;) {
    if (!input_.empty()) {
      std::string bytes;
      bytes.swap(input_);
      if (!ended_) connection_->PauseReading(false);
      MKS_ASSERT(input_.empty());
      return bytes;
    }
    if (ended_) return end_;
    if (input_ended_) return Status::Unavailable("the client finished sending");
    if (deadline_ns >= 0 && scheduler_->NowNanos() >= deadline_ns) {
      return Status::TimedOut("no request within the idle timeout");
    }
    WaitForEvent(deadline_ns);
  }
}

Status ClientStream::Write(std::string_view bytes) {
  if (ended_) return end_;
  if (closing_) return Status::Unavailable("the stream was closed");
  connection_->Write(bytes);
  while (!ended_ && connection_->pending_output_bytes() > options_.max_output_bytes) {
    WaitForEvent(-1);
  }
  return ended_ ? end_ : Status::Ok();
}

void ClientStream::Close() {
  if (ended_ || closing_) return;
  closing_ = true;
  connection_->CloseWhenFlushed();
}

void ClientStream::Finish() {
  const int64_t deadline_ns = scheduler_->NowNanos() + options_.linger_ns;
  while (!ended_ && !connection_->closed() &&
         connection_->pending_output_bytes() > 0 &&
         scheduler_->NowNanos() < deadline_ns) {
    WaitForEvent(deadline_ns);
  }
  connection_->Close();
  MKS_ASSERT(connection_->closed());
}

void ClientStream::Shutdown() {
  connection_->Close();
  if (!ended_) {
    ended_ = true;
    end_ = Status::Cancelled("the server is shutting down");
  }
  Wake();
}

// ---- StreamServer ----

Result<std::unique_ptr<StreamServer>> StreamServer::Listen(
    Reactor* reactor, runtime::ProcessId process, const SocketAddress& address,
    Handler handler, StreamServerOptions options) {
  MKS_ASSERT(reactor != nullptr);
  MKS_ASSERT(handler != nullptr);
  MKS_ASSERT(reactor->scheduler()->IsAlive(process));
  std::unique_ptr<StreamServer> server(
      new StreamServer(reactor, process, std::move(handler), options));
  Result<std::unique_ptr<TcpListener>> listener = TcpListener::Listen(
      reactor, address, [raw = server.get()](FileDescriptor socket) {
        raw->OnAccept(std::move(socket));
      });
  MKS_RETURN_IF_ERROR(listener.status());
  server->listener_ = std::move(*listener);
  return server;
}

StreamServer::StreamServer(Reactor* reactor, runtime::ProcessId process,
                           Handler handler, StreamServerOptions options)
    : reactor_(reactor),
      process_(process),
      handler_(std::make_shared<Handler>(std::move(handler))),
      options_(options) {
  MKS_ASSERT_GT(options_.max_connections, 0u);
  MKS_ASSERT_GT(options_.max_input_bytes, 0u);
}

StreamServer::~StreamServer() {
  listener_.reset();
  for (auto& [id, weak] : *live_) {
    if (std::shared_ptr<ClientStream> stream = weak.lock()) stream->Shutdown();
  }
}

size_t StreamServer::active_connections() const {
  size_t active = 0;
  for (const auto& [id, weak] : *live_) active += weak.expired() ? 0 : 1;
  return active;
}

void StreamServer::OnAccept(FileDescriptor socket) {
  std::erase_if(*live_, [](const auto& entry) { return entry.second.expired(); });
  if (live_->size() >= options_.max_connections) {
    ++refused_;
    return;  // `socket` closes here: the client sees the connection drop
  }
  const uint64_t id = next_stream_id_++;
  runtime::Scheduler* scheduler = reactor_->scheduler();
  std::shared_ptr<ClientStream> stream(
      new ClientStream(scheduler, process_, id, options_));
  ConnectionHandlers handlers;
  ClientStream* raw = stream.get();  // the stream owns the connection
  handlers.on_data = [raw](std::string_view bytes) { raw->OnData(bytes); };
  handlers.on_close = [raw](Status reason) { raw->OnEnd(std::move(reason)); };
  handlers.on_drained = [raw] { raw->Wake(); };
  handlers.on_input_end = [raw] { raw->OnInputEnd(); };
  Result<std::unique_ptr<Connection>> connection =
      Connection::Adopt(reactor_, std::move(socket), std::move(handlers));
  if (!connection.ok()) {
    ++refused_;
    return;
  }
  stream->connection_ = std::move(*connection);
  ++accepted_;
  (*live_)[id] = stream;
  scheduler->Spawn(process_, "client " + std::to_string(id),
                   [stream, handler = handler_, live = live_, id] {
                     // Runs on normal return and on unwinding alike.
                     struct Deregister {
                       LiveStreams* live;
                       uint64_t id;
                       ~Deregister() { live->erase(id); }
                     } deregister{live.get(), id};
                     (*handler)(*stream);
                     stream->Finish();
                   });
  MKS_ASSERT_LE(live_->size(), options_.max_connections);
}

}  // namespace mks::net
