// Request/response between nodes over the unreliable Network.
//
// One RpcEndpoint per node owns the node's Network handler. Every message is
// a mks.proto.RpcEnvelope (core/proto/mks.proto); the method's own request
// and response travel as serialized bytes in its payload, so this layer
// knows nothing of what the methods mean.
//
// Server side: RegisterHandler binds a method name to a handler. Each
// incoming request runs its handler in a fresh fiber of the endpoint's
// process, and the handler's Result becomes the reply (payload or error).
// An unknown method is answered with InvalidArgument.
//
// Client side: Call sends a request and returns a Future that completes with
// the reply's payload, the remote handler's error, or TimedOut at the
// deadline. Requests are never retried here: a call may have run on the
// remote node although the caller saw TimedOut (the outcome is unknown).
//
// Matching replies to calls: each call gets a request id that one endpoint
// never reuses, plus the endpoint's random incarnation, which a restarted
// node draws afresh. A reply whose (id, incarnation) matches no pending call
// (it came after the deadline, is a duplicate, or was addressed to an
// earlier incarnation) is counted and dropped. A reply from a node other
// than the one called is also dropped. Bytes that do not parse as a valid
// envelope are counted and dropped; nothing received can crash the node.
//
// Process death and ownership: the endpoint belongs to one scheduler
// process. When that process is killed (Scheduler::Kill), its timers and
// fibers are gone, so no call times out and no handler runs any more; the
// endpoint then ignores the network. Pending calls are released (their
// futures fail with Cancelled, which wakes only fibers still alive, that is,
// of other processes) when the endpoint next hears a message or is
// destroyed. The endpoint may be destroyed after its process was killed,
// or while it is alive with no handler fiber running; it must be destroyed
// before the Scheduler. The destructor leaves the Network's handler
// installed but inert, because a restarted node may already have installed
// its own.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "core/env.h"
#include "core/runtime/scheduler.h"
#include "core/status.h"

namespace mks {

// now_ns + delta_ns, or INT64_MAX where that would overflow (a peer controls
// the delta). Both must be non-negative.
int64_t SaturatingDeadline(int64_t now_ns, int64_t delta_ns);

// What a handler learns about the request it serves.
struct RpcRequest {
  NodeId from = kNoNode;
  std::string method;
  std::string payload;
  // When the caller stops waiting, on this node's monotonic clock: arrival
  // time plus the caller's timeout (network delay makes it a little late,
  // never early). A handler may give up after it; its reply would be dropped.
  int64_t deadline_ns = 0;
};

// Serves one method. Runs in its own fiber and may wait. Returns the response
// payload, or an error that the caller receives with the same code.
using RpcHandler = std::function<Result<std::string>(RpcRequest request)>;

// Counters; every message the endpoint receives lands in exactly one of the
// "received" buckets.
struct RpcStats {
  uint64_t calls_started = 0;
  uint64_t calls_succeeded = 0;
  uint64_t calls_failed_remotely = 0;   // the handler (or dispatch) erred
  uint64_t calls_timed_out = 0;
  uint64_t calls_send_failed = 0;
  uint64_t calls_cancelled = 0;         // released after the process died
  uint64_t requests_received = 0;       // dispatched to a handler
  uint64_t requests_unknown_method = 0; // answered with an error
  uint64_t replies_matched = 0;
  uint64_t replies_stale = 0;           // late, duplicate, or old incarnation
  uint64_t replies_from_wrong_node = 0;
  uint64_t malformed_dropped = 0;
  uint64_t dropped_after_death = 0;     // anything received once the process died
  uint64_t replies_skipped_past_deadline = 0;  // handler finished too late
  uint64_t reply_send_failures = 0;
};

struct RpcOptions {
  // Random, non-zero, and different for every endpoint instance of a node
  // (draw it from the node's Random). Tells this incarnation's replies from
  // an earlier one's.
  uint64_t incarnation = 0;
};

class RpcEndpoint {
 public:
  // Installs this endpoint as `network`'s handler. `scheduler` and `network`
  // must outlive the endpoint; `process` is the node's process and must be
  // alive. `self` is this node's id.
  RpcEndpoint(runtime::Scheduler* scheduler, runtime::ProcessId process,
              Network* network, NodeId self, RpcOptions options);
  ~RpcEndpoint();
  RpcEndpoint(const RpcEndpoint&) = delete;
  RpcEndpoint& operator=(const RpcEndpoint&) = delete;

  // Serves `method` with `handler` from now on. A method may be registered
  // once; `method` must be non-empty (both asserted).
  void RegisterHandler(std::string method, RpcHandler handler);

  // Sends `payload` to `method` on node `to` and returns a future for the
  // reply payload. The future fails with: TimedOut (message names the peer
  // and method) when no reply arrives within `timeout_ns`; the remote
  // handler's status (code kept, message prefixed with peer and method)
  // when it failed, including InvalidArgument for an unknown method; the
  // Network's status when it refused to send; Cancelled when the endpoint's
  // process is dead. Requires timeout_ns > 0. Callable inside or outside a
  // fiber; never waits.
  runtime::Future<std::string> Call(NodeId to, std::string_view method,
                                    std::string payload, int64_t timeout_ns);

  // Call, sent to whichever node listens at `address` (a seed known only by
  // address, Network::SendToAddress): the reply is accepted from any node,
  // which names itself as its sender. Fails like Call.
  runtime::Future<std::string> CallAddress(std::string_view address,
                                           std::string_view method,
                                           std::string payload, int64_t timeout_ns);

  // Call, then wait for the reply. Only inside a fiber.
  Result<std::string> CallAndWait(NodeId to, std::string_view method,
                                  std::string payload, int64_t timeout_ns) {
    return Call(to, method, std::move(payload), timeout_ns).Get();
  }

  NodeId self() const { return self_; }
  // This endpoint instance's incarnation (RpcOptions::incarnation).
  uint64_t incarnation() const { return incarnation_; }
  const RpcStats& stats() const { return stats_; }
  // Calls awaiting a reply (or a deadline).
  size_t pending_call_count() const { return pending_.size(); }

 private:
  // One call awaiting its reply. Invariant: present in pending_ from the
  // send until the reply, the deadline, or the release after death, whichever
  // comes first; its promise is fulfilled exactly when it leaves.
  struct PendingCall {
    NodeId to;            // kNoNode for a call to an address
    std::string address;  // ... which is this one
    std::string method;
    runtime::Promise<std::string> promise;
    runtime::TimerId deadline_timer;
  };

  // Call and CallAddress: sends to `to`, or to `address` when `to` is
  // kNoNode.
  runtime::Future<std::string> StartCall(NodeId to, std::string_view address,
                                         std::string_view method,
                                         std::string payload, int64_t timeout_ns);
  void OnMessage(NodeId from, std::string bytes);
  void OnRequest(NodeId from, std::string method, uint64_t request_id,
                 uint64_t caller_incarnation, int64_t timeout_ns,
                 std::string payload);
  void OnReply(NodeId from, uint64_t request_id, uint32_t error_code,
               std::string error_message, std::string payload);
  void OnDeadline(uint64_t request_id);
  void SendReply(NodeId to, uint64_t request_id, uint64_t caller_incarnation,
                 const Result<std::string>& result);
  void ReleasePendingCalls();
  bool ProcessAlive() const { return scheduler_->IsAlive(process_); }

  runtime::Scheduler* const scheduler_;
  const runtime::ProcessId process_;
  Network* const network_;
  const NodeId self_;
  const uint64_t incarnation_;  // non-zero
  std::map<std::string, RpcHandler, std::less<>> handlers_;
  std::map<uint64_t, PendingCall> pending_;  // by request id
  uint64_t next_request_id_ = 1;  // strictly increasing, never reused
  // Handler fibers spawned and not yet finished or destroyed.
  uint64_t running_handlers_ = 0;
  RpcStats stats_;
  // The Network handler holds a weak reference: once the endpoint is gone,
  // the handler does nothing.
  std::shared_ptr<int> liveness_ = std::make_shared<int>(0);
};

}  // namespace mks
