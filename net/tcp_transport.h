// The production Network: peers exchange frames (net/frame.h) over TCP.
//
// Topology: each node keeps one outbound connection to every peer it sends
// to, and accepts the peers' outbound connections on its listening address.
// A connection therefore carries frames in one direction only, which keeps
// the two ends free of any dial-race tie-breaking: node A's messages to B
// always travel on A's connection to B, in the order Send accepted them,
// while that connection lives.
//
// Failure model, matching the Network contract in core/env.h:
// - A connect that fails, or a connection that breaks, is retried after an
//   exponential backoff with jitter; frames handed to a broken connection
//   are lost, frames still queued wait for the next connection.
// - Every peer's queue is bounded in bytes (queued plus unsent in the
//   socket buffer of this process); Send past the bound returns
//   ResourceExhausted, so a dead peer never grows memory.
// - A frame that fails its checksum or has an oversized length closes the
//   inbound connection and is counted; nothing from a damaged stream is
//   delivered.
//
// Peers come and go: the table starts with the configured peers and grows
// as gossip tells the transport where members listen (SetAddress). A seed
// known only by address (SendToAddress) gets a connection of its own, under
// an address-only id at or above kFirstAddressOnlyId that no node may use;
// the seed replies on its own connection to us, by our node id, once it has
// learned our address from the message.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "core/env.h"
#include "core/random.h"
#include "core/runtime/scheduler.h"
#include "net/connection.h"
#include "net/frame.h"
#include "net/peer_auth.h"
#include "net/reactor.h"
#include "net/socket.h"

namespace mks::net {

struct TcpTransportOptions {
  // The largest payload Send accepts and the decoder admits.
  size_t max_message_bytes = 16 * 1024 * 1024;
  // Per peer: bytes of frames accepted by Send and not yet taken by the
  // kernel. Invariant for users: max_queue_bytes >= one maximal frame.
  size_t max_queue_bytes = 64 * 1024 * 1024;
  // Inbound connections beyond this are closed at once (each peer needs
  // one; the rest are strangers or leftovers of dead ones).
  size_t max_inbound_connections = 1024;
  int64_t initial_backoff_ns = 50'000'000;   // 50 ms
  int64_t max_backoff_ns = 5'000'000'000;    // 5 s
  uint64_t random_seed = 1;                  // for backoff jitter only
  // The cluster secret (net/peer_auth.h): every connection must prove it,
  // both ways. Null: peers are not authenticated. Outlives the transport.
  const PeerAuth* auth = nullptr;
  // Told, with a sentence an operator can act on, of every peer this node
  // refused and every refusal it received. Optional.
  std::function<void(const std::string& what)> on_refusal;
};

// Counters for /metrics and tests. Monotonic over the transport's life.
struct TcpTransportStats {
  uint64_t messages_sent = 0;        // accepted by Send
  uint64_t messages_received = 0;    // delivered to the handler
  uint64_t messages_dropped_no_handler = 0;
  uint64_t send_queue_full = 0;      // Sends refused with ResourceExhausted
  uint64_t bad_frames = 0;           // inbound streams closed as corrupt
  uint64_t connects = 0;             // outbound connections established
  uint64_t connect_failures = 0;     // outbound connects that failed
  uint64_t disconnects = 0;          // established outbound connections lost
  uint64_t accepted = 0;             // inbound connections accepted
  uint64_t inbound_refused = 0;      // closed at once: over the limit
  uint64_t peers_refused = 0;        // inbound peers that failed authentication
  uint64_t refusals_received = 0;    // peers that refused this node
};

class TcpTransport final : public Network {
 public:
  // Node ids from here up name address-only peers (seeds), never a node.
  static constexpr NodeId kFirstAddressOnlyId = 0x80000000u;

  // Builds the transport of node `self` listening on peers.at(self).
  // `peers` maps every node (self included) to its peer address. Timers for
  // reconnects belong to `timer_process` of the reactor's scheduler, which
  // must stay alive as long as the transport, and `reactor` must outlive
  // it. Returns InvalidArgument when
  // `self` is not in `peers`, and the errors of ListenTcp.
  static Result<std::unique_ptr<TcpTransport>> Create(
      Reactor* reactor, runtime::ProcessId timer_process, NodeId self,
      std::map<NodeId, SocketAddress> peers, TcpTransportOptions options = {});

  // As Create, but with a socket already listening (so a caller can bind
  // port 0 first and learn the port before building the peer table).
  static Result<std::unique_ptr<TcpTransport>> CreateWithListener(
      Reactor* reactor, runtime::ProcessId timer_process, NodeId self,
      std::map<NodeId, SocketAddress> peers, FileDescriptor listening,
      TcpTransportOptions options = {});

  // Closes every connection and cancels every reconnect timer; queued
  // messages are lost.
  ~TcpTransport() override;

  // See Network::Send. InvalidArgument for an unknown node or a message
  // above max_message_bytes; ResourceExhausted when the peer's queue is full.
  Status Send(NodeId to, std::string bytes) override;
  void SetHandler(MessageHandler handler) override;
  // See Network. InvalidArgument for an address that is not "a.b.c.d:port".
  Status SendToAddress(std::string_view address, std::string bytes) override;
  // See Network. Adds the peer, or moves it: a changed address drops the
  // connection to the old one (its unsent frames are lost) and dials anew
  // on the next send. InvalidArgument for a malformed address or an id
  // that cannot name a node (0, or an address-only id).
  Status SetAddress(NodeId id, std::string_view address) override;

  // Starts connecting to every other peer not connected or connecting yet,
  // so reachability (connected_to) is known before the first message; as
  // always, a lost connection is re-dialled with backoff.
  void ConnectAll();

  uint16_t listen_port() const { return listener_->port(); }
  const TcpTransportStats& stats() const { return stats_; }
  // Bytes accepted for `peer` and not yet taken by the kernel.
  size_t queued_bytes(NodeId peer) const;
  // Whether the outbound connection to `peer` is established now (false for
  // a node the transport does not know).
  bool connected_to(NodeId peer) const;
  size_t inbound_connections() const { return inbound_.size(); }

 private:
  struct Peer {
    SocketAddress address;
    // Frames waiting for a connection. Invariant: queued_bytes is the sum of
    // their sizes.
    std::deque<std::string> queue;
    size_t queued_bytes = 0;
    // Null while disconnected. Once `connected`, the queue is empty: new
    // frames go straight to the connection's buffer.
    std::unique_ptr<Connection> connection;
    bool connected = false;  // and, with a secret, authenticated
    int64_t backoff_ns = 0;
    runtime::TimerId reconnect_timer;  // sequence 0 when none pending
    // With a secret: what the peer sent (its challenge, or a refusal), and
    // this direction's session once the hello is sent.
    std::string handshake;
    PeerSession session;
    bool refusal_reported = false;
  };
  struct Inbound {
    std::unique_ptr<Connection> connection;
    FrameDecoder decoder;
    // With a secret: the challenge sent, the hello as it arrives, and once
    // it checked, the session and the node it names.
    std::string challenge;
    std::string hello;
    bool authenticated = false;
    NodeId sender = kNoNode;
    PeerSession session;
  };

  TcpTransport(Reactor* reactor, runtime::ProcessId timer_process, NodeId self,
               std::map<NodeId, SocketAddress> peers, TcpTransportOptions options);
  Status Enqueue(NodeId to, Peer& peer, std::string bytes);
  void StartConnect(NodeId peer_id);
  void OnConnected(NodeId peer_id);
  // With a secret: the peer's challenge (or refusal) on an outbound
  // connection.
  void OnOutboundData(NodeId peer_id, std::string_view bytes);
  // Marks `peer` connected and writes what waited for it.
  void FinishConnect(NodeId peer_id);
  // Writes one frame (and its tag, with a secret) to `peer`'s connection.
  void WriteFrame(Peer& peer, const std::string& frame);
  // Answers an inbound hello; false when the connection was refused.
  bool CheckInboundHello(Inbound& inbound);
  void Refuse(uint64_t inbound_id, const std::string& reason);
  void Report(const std::string& what);
  void OnOutboundClosed(NodeId peer_id, Status reason);
  void ScheduleReconnect(NodeId peer_id);
  void OnAccept(FileDescriptor socket);
  void OnInboundData(uint64_t inbound_id, std::string_view bytes);
  size_t PendingBytes(const Peer& peer) const;

  Reactor* const reactor_;
  runtime::Scheduler* const scheduler_;
  const runtime::ProcessId timer_process_;
  const NodeId self_;
  const TcpTransportOptions options_;
  Random random_;
  // Nodes, and address-only peers (ids >= kFirstAddressOnlyId). Entries are
  // never removed, so a Peer's address in the map is stable.
  std::map<NodeId, Peer> peers_;
  std::map<std::string, NodeId, std::less<>> address_only_ids_;
  NodeId next_address_only_id_ = kFirstAddressOnlyId;
  std::map<uint64_t, Inbound> inbound_;
  uint64_t next_inbound_id_ = 1;
  std::unique_ptr<TcpListener> listener_;
  MessageHandler handler_;
  TcpTransportStats stats_;
};

}  // namespace mks::net
