#include "net/tcp_transport.h"

#include <utility>

#include "core/assertions.h"

namespace mks::net {

Result<std::unique_ptr<TcpTransport>> TcpTransport::Create(
    Reactor* reactor, runtime::ProcessId timer_process, NodeId self,
    std::map<NodeId, SocketAddress> peers, TcpTransportOptions options) {
  const auto found = peers.find(self);
  if (found == peers.end()) {
    return Status::InvalidArgument("node " + std::to_string(self) +
                                   " has no address in the peer table");
  }
  Result<FileDescriptor> listening = ListenTcp(found->second);
  MKS_RETURN_IF_ERROR(listening.status());
  return CreateWithListener(reactor, timer_process, self, std::move(peers),
                            std::move(*listening), options);
}

Result<std::unique_ptr<TcpTransport>> TcpTransport::CreateWithListener(
    Reactor* reactor, runtime::ProcessId timer_process, NodeId self,
    std::map<NodeId, SocketAddress> peers, FileDescriptor listening,
    TcpTransportOptions options) {
  MKS_ASSERT(reactor != nullptr);
  MKS_ASSERT(reactor->scheduler()->IsAlive(timer_process));
  if (self == kNoNode || peers.count(self) == 0 || peers.count(kNoNode) != 0) {
    return Status::InvalidArgument("peer table must hold node " +
                                   std::to_string(self) + " and never node 0");
  }
  if (options.max_queue_bytes < options.max_message_bytes + kFrameHeaderBytes ||
      options.initial_backoff_ns <= 0 ||
      options.max_backoff_ns < options.initial_backoff_ns) {
    return Status::InvalidArgument("inconsistent transport options");
  }
  std::unique_ptr<TcpTransport> transport(
      new TcpTransport(reactor, timer_process, self, std::move(peers), options));
  Result<std::unique_ptr<TcpListener>> listener = TcpListener::Adopt(
      reactor, std::move(listening), [raw = transport.get()](FileDescriptor socket) {
        raw->OnAccept(std::move(socket));
      });
  MKS_RETURN_IF_ERROR(listener.status());
  transport->listener_ = std::move(*listener);
  return transport;
}

TcpTransport::TcpTransport(Reactor* reactor, runtime::ProcessId timer_process,
                           NodeId self, std::map<NodeId, SocketAddress> peers,
                           TcpTransportOptions options)
    : reactor_(reactor),
      scheduler_(reactor->scheduler()),
      timer_process_(timer_process),
      self_(self),
      options_(options),
      random_(options.random_seed) {
  for (auto& [node, address] : peers) {
    Peer& peer = peers_[node];
    peer.address = std::move(address);
    peer.backoff_ns = options_.initial_backoff_ns;
  }
  MKS_ASSERT_EQ(peers_.count(self_), 1u);
}

TcpTransport::~TcpTransport() {
  for (auto& [node, peer] : peers_) {
    if (peer.reconnect_timer.sequence != 0) scheduler_->Cancel(peer.reconnect_timer);
  }
}

void TcpTransport::SetHandler(MessageHandler handler) {
  handler_ = std::move(handler);
}

size_t TcpTransport::PendingBytes(const Peer& peer) const {
  const size_t in_connection =
      peer.connection ? peer.connection->pending_output_bytes() : 0;
  return peer.queued_bytes + in_connection;
}

size_t TcpTransport::queued_bytes(NodeId peer_id) const {
  const auto found = peers_.find(peer_id);
  MKS_ASSERT(found != peers_.end());
  return PendingBytes(found->second);
}

bool TcpTransport::connected_to(NodeId peer_id) const {
  const auto found = peers_.find(peer_id);
  return found != peers_.end() && found->second.connected;
}

Status TcpTransport::Send(NodeId to, std::string bytes) {
  const auto found = peers_.find(to);
  if (found == peers_.end() || to >= kFirstAddressOnlyId) {
    return Status::InvalidArgument("unknown node " + std::to_string(to));
  }
  return Enqueue(to, found->second, std::move(bytes));
}

Status TcpTransport::SendToAddress(std::string_view address, std::string bytes) {
  auto known = address_only_ids_.find(address);
  if (known == address_only_ids_.end()) {
    Result<SocketAddress> parsed = ParseSocketAddress(address);
    MKS_RETURN_IF_ERROR(parsed.status());
    MKS_ASSERT_LT(next_address_only_id_, UINT32_MAX);
    const NodeId id = next_address_only_id_++;
    Peer& peer = peers_[id];
    peer.address = *parsed;
    peer.backoff_ns = options_.initial_backoff_ns;
    known = address_only_ids_.emplace(std::string(address), id).first;
  }
  return Enqueue(known->second, peers_.at(known->second), std::move(bytes));
}

Status TcpTransport::SetAddress(NodeId id, std::string_view address) {
  if (id == kNoNode || id >= kFirstAddressOnlyId) {
    return Status::InvalidArgument("node id " + std::to_string(id) + " cannot name a node");
  }
  Result<SocketAddress> parsed = ParseSocketAddress(address);
  MKS_RETURN_IF_ERROR(parsed.status());
  auto [it, inserted] = peers_.try_emplace(id);
  Peer& peer = it->second;
  if (inserted) {
    peer.address = *parsed;
    peer.backoff_ns = options_.initial_backoff_ns;
    return Status::Ok();
  }
  if (peer.address == *parsed || id == self_) return Status::Ok();
  // Moved (a restart on another port, a replaced machine): what was queued
  // or sent for the old address is lost, as on any broken connection.
  peer.address = *parsed;
  peer.connection.reset();
  peer.connected = false;
  peer.queue.clear();
  peer.queued_bytes = 0;
  if (peer.reconnect_timer.sequence != 0) scheduler_->Cancel(peer.reconnect_timer);
  peer.reconnect_timer = runtime::TimerId{};
  peer.backoff_ns = options_.initial_backoff_ns;
  return Status::Ok();
}

Status TcpTransport::Enqueue(NodeId to, Peer& peer, std::string bytes) {
  if (bytes.size() > options_.max_message_bytes) {
    return Status::InvalidArgument(
        "message of " + std::to_string(bytes.size()) + " bytes exceeds the " +
        std::to_string(options_.max_message_bytes) + "-byte maximum");
  }
  const size_t frame_bytes = kFrameHeaderBytes + bytes.size();
  if (PendingBytes(peer) + frame_bytes > options_.max_queue_bytes) {
    ++stats_.send_queue_full;
    return Status::ResourceExhausted("send queue to node " + std::to_string(to) +
                                     " is full");
  }
  std::string frame;
  AppendFrame(self_, bytes, &frame);
  MKS_ASSERT_EQ(frame.size(), frame_bytes);
  ++stats_.messages_sent;
  if (peer.connected) {
    MKS_ASSERT(peer.queue.empty());
    WriteFrame(peer, frame);
    return Status::Ok();
  }
  peer.queued_bytes += frame.size();
  peer.queue.push_back(std::move(frame));
  if (!peer.connection && peer.reconnect_timer.sequence == 0) StartConnect(to);
  return Status::Ok();
}

void TcpTransport::ConnectAll() {
  for (auto& [peer_id, peer] : peers_) {
    if (peer_id == self_ || peer_id >= kFirstAddressOnlyId || peer.connection ||
        peer.reconnect_timer.sequence != 0) {
      continue;
    }
    StartConnect(peer_id);
    MKS_ASSERT(peer.connection || peer.reconnect_timer.sequence != 0);
  }
}

void TcpTransport::StartConnect(NodeId peer_id) {
  Peer& peer = peers_.at(peer_id);
  MKS_ASSERT(!peer.connection);
  MKS_ASSERT(!peer.connected);
  ConnectionHandlers handlers;
  handlers.on_connected = [this, peer_id] { OnConnected(peer_id); };
  handlers.on_close = [this, peer_id](Status reason) {
    OnOutboundClosed(peer_id, std::move(reason));
  };
  // Peers send on our outbound connection only their challenge, or a
  // refusal; without a secret anything that arrives is ignored.
  handlers.on_data = [this, peer_id](std::string_view bytes) { OnOutboundData(peer_id, bytes); };
  Result<std::unique_ptr<Connection>> connection =
      Connection::Connect(reactor_, peer.address, std::move(handlers));
  if (!connection.ok()) {
    ++stats_.connect_failures;
    ScheduleReconnect(peer_id);
    return;
  }
  peer.connection = std::move(*connection);
}

void TcpTransport::OnConnected(NodeId peer_id) {
  Peer& peer = peers_.at(peer_id);
  MKS_ASSERT(peer.connection);
  MKS_ASSERT(!peer.connected);
  ++stats_.connects;
  // With a secret, frames wait for the peer's challenge and our hello.
  if (options_.auth == nullptr) FinishConnect(peer_id);
}

void TcpTransport::FinishConnect(NodeId peer_id) {
  Peer& peer = peers_.at(peer_id);
  MKS_ASSERT(peer.connection);
  MKS_ASSERT(!peer.connected);
  peer.connected = true;
  peer.backoff_ns = options_.initial_backoff_ns;
  while (!peer.queue.empty()) {
    WriteFrame(peer, peer.queue.front());
    peer.queued_bytes -= peer.queue.front().size();
    peer.queue.pop_front();
  }
  MKS_ASSERT_EQ(peer.queued_bytes, 0u);
}

void TcpTransport::WriteFrame(Peer& peer, const std::string& frame) {
  MKS_ASSERT(peer.connected);
  peer.connection->Write(frame);
  if (options_.auth != nullptr) peer.connection->Write(peer.session.NextTag(frame));
}

void TcpTransport::Report(const std::string& what) {
  if (options_.on_refusal) options_.on_refusal(what);
}

void TcpTransport::OnOutboundData(NodeId peer_id, std::string_view bytes) {
  Peer& peer = peers_.at(peer_id);
  if (options_.auth == nullptr || !peer.connection) return;
  peer.handshake.append(bytes);
  const std::string who = peer_id >= kFirstAddressOnlyId
                              ? "the seed at " + peer.address.ToString()
                              : "node " + std::to_string(peer_id) + " at " +
                                    peer.address.ToString();
  if (peer.handshake.size() >= kRefusalMagic.size() && peer.handshake.starts_with(kRefusalMagic)) {
    // The reason follows; the peer closes once it is sent. Reported once
    // per connection, with what arrived in this read.
    if (!peer.refusal_reported) {
      peer.refusal_reported = true;
      ++stats_.refusals_received;
      Report(who + " refused this node: " + peer.handshake.substr(kRefusalMagic.size()));
    }
    return;
  }
  if (peer.connected || peer.handshake.size() < kChallengeBytes) return;
  Result<std::string> hello =
      options_.auth->Hello(peer.handshake.substr(0, kChallengeBytes), self_, &peer.session);
  if (!hello.ok()) {
    Report("cannot authenticate to " + who + ": " + hello.status().message());
    peer.connection->Close();
    OnOutboundClosed(peer_id, hello.status());
    return;
  }
  // What follows the challenge can only be a refusal.
  peer.handshake.erase(0, kChallengeBytes);
  peer.connection->Write(*hello);
  FinishConnect(peer_id);
}

void TcpTransport::OnOutboundClosed(NodeId peer_id, Status reason) {
  Peer& peer = peers_.at(peer_id);
  MKS_ASSERT(peer.connection);
  if (peer.connected) {
    ++stats_.disconnects;
  } else {
    ++stats_.connect_failures;
  }
  reason.IgnoreError();  // loss is the contract; the counters tell the story
  peer.connected = false;
  peer.handshake.clear();
  peer.session = PeerSession();
  peer.refusal_reported = false;
  // Destroying the connection inside its own on_close is allowed (see
  // Connection); its unsent bytes are lost.
  peer.connection.reset();
  ScheduleReconnect(peer_id);
}

void TcpTransport::ScheduleReconnect(NodeId peer_id) {
  Peer& peer = peers_.at(peer_id);
  MKS_ASSERT(!peer.connection);
  MKS_ASSERT_EQ(peer.reconnect_timer.sequence, 0u);
  // Full backoff in [backoff/2, backoff]: spreads the reconnects of many
  // nodes after a shared failure.
  const int64_t delay_ns = random_.Range(peer.backoff_ns / 2, peer.backoff_ns);
  peer.backoff_ns = std::min(peer.backoff_ns * 2, options_.max_backoff_ns);
  peer.reconnect_timer = scheduler_->After(timer_process_, delay_ns, [this, peer_id] {
    Peer& waiting = peers_.at(peer_id);
    waiting.reconnect_timer = runtime::TimerId{};
    StartConnect(peer_id);
  });
  MKS_ASSERT_NE(peer.reconnect_timer.sequence, 0u);
}

void TcpTransport::OnAccept(FileDescriptor socket) {
  if (inbound_.size() >= options_.max_inbound_connections) {
    ++stats_.inbound_refused;
    return;  // `socket` closes here
  }
  const uint64_t inbound_id = next_inbound_id_++;
  ConnectionHandlers handlers;
  handlers.on_data = [this, inbound_id](std::string_view bytes) {
    OnInboundData(inbound_id, bytes);
  };
  handlers.on_close = [this, inbound_id](Status reason) {
    reason.IgnoreError();  // the sender reconnects; nothing to do here
    inbound_.erase(inbound_id);
  };
  Result<std::unique_ptr<Connection>> connection =
      Connection::Adopt(reactor_, std::move(socket), std::move(handlers));
  if (!connection.ok()) return;  // the socket closes; the peer will retry
  ++stats_.accepted;
  const size_t trailer = options_.auth != nullptr ? kTagBytes : 0;
  Inbound accepted{std::move(*connection), FrameDecoder(options_.max_message_bytes, trailer),
                   "", "", false, kNoNode, PeerSession()};
  auto [it, inserted] = inbound_.emplace(inbound_id, std::move(accepted));
  MKS_ASSERT(inserted);
  if (options_.auth != nullptr) {
    it->second.challenge = options_.auth->NewChallenge();
    it->second.connection->Write(it->second.challenge);
  }
  MKS_ASSERT_LE(inbound_.size(), options_.max_inbound_connections);
}

void TcpTransport::Refuse(uint64_t inbound_id, const std::string& reason) {
  auto found = inbound_.find(inbound_id);
  MKS_ASSERT(found != inbound_.end());
  ++stats_.peers_refused;
  Report("refused a peer connection: " + reason);
  found->second.connection->Write(std::string(kRefusalMagic) + reason);
  // Closed once the refusal is sent; on_close then erases it.
  found->second.connection->CloseWhenFlushed();
}

bool TcpTransport::CheckInboundHello(Inbound& inbound) {
  MKS_ASSERT(options_.auth != nullptr);
  MKS_ASSERT(!inbound.authenticated);
  Result<NodeId> sender =
      options_.auth->CheckHello(inbound.challenge, inbound.hello.substr(0, kHelloBytes),
                                &inbound.session);
  if (!sender.ok()) return false;
  if (*sender >= kFirstAddressOnlyId) return false;
  inbound.sender = *sender;
  inbound.authenticated = true;
  return true;
}

void TcpTransport::OnInboundData(uint64_t inbound_id, std::string_view bytes) {
  const auto found = inbound_.find(inbound_id);
  MKS_ASSERT(found != inbound_.end());
  Inbound& inbound = found->second;
  if (options_.auth != nullptr && !inbound.authenticated) {
    if (inbound.connection->closed()) return;
    inbound.hello.append(bytes);
    const bool looks_wrong = inbound.hello.size() >= kHelloMagic.size() &&
                             !inbound.hello.starts_with(kHelloMagic);
    if (!looks_wrong && inbound.hello.size() < kHelloBytes) return;
    if (looks_wrong || !CheckInboundHello(inbound)) {
      Refuse(inbound_id, looks_wrong ? "no authentication hello (a peer without the cluster "
                                       "secret, or not an mks node)"
                                     : "authentication failed: the peer does not hold this "
                                       "cluster's secret");
      return;
    }
    bytes = std::string_view(inbound.hello).substr(kHelloBytes);
  }
  FrameDecoder& decoder = inbound.decoder;
  decoder.Feed(bytes);
  for (;;) {
    Result<std::optional<Frame>> next = decoder.Next();
    // A sender the table does not know yet is fine (a joiner); one that
    // claims an address-only id is not a node.
    const bool bad = !next.ok() ||
                     (next->has_value() && (*next)->sender >= kFirstAddressOnlyId);
    if (bad) {
      ++stats_.bad_frames;
      inbound_.erase(found);  // closes the connection; return at once
      return;
    }
    if (!next->has_value()) return;
    Frame& frame = **next;
    if (options_.auth != nullptr) {
      std::string framed;
      AppendFrame(frame.sender, frame.payload, &framed);
      if (frame.sender != inbound.sender || !inbound.session.CheckNextTag(framed, frame.trailer)) {
        ++stats_.bad_frames;
        Report("closed the connection of node " + std::to_string(inbound.sender) +
               ": a frame failed its authentication tag");
        inbound_.erase(found);
        return;
      }
    }
    if (!handler_) {
      ++stats_.messages_dropped_no_handler;
      continue;
    }
    ++stats_.messages_received;
    // The handler may send (even to itself) but must not destroy the
    // transport; `found` stays valid because only this connection's own
    // events erase it.
    handler_(frame.sender, std::move(frame.payload));
  }
}

}  // namespace mks::net
