#include "core/rpc.h"

#include <limits>
#include <utility>

#include "core/assertions.h"
#include "core/proto/mks.pb.h"

namespace mks {
namespace {

std::string Describe(NodeId peer, std::string_view method) {
  return "rpc '" + std::string(method) + "' to node " + std::to_string(peer);
}

// A call to an address names the address until a reply names the node.
std::string Describe(NodeId peer, std::string_view address, std::string_view method) {
  if (peer != kNoNode) return Describe(peer, method);
  return "rpc '" + std::string(method) + "' to " + std::string(address);
}

// A status code from the wire; codes this build does not know become
// Internal rather than being trusted.
StatusCode StatusCodeFromWire(uint32_t code) {
  MKS_ASSERT_NE(code, 0u);
  if (code > static_cast<uint32_t>(StatusCode::kStaleEpoch)) {
    return StatusCode::kInternal;
  }
  return static_cast<StatusCode>(code);
}

// Decrements a counter when destroyed: rides along with a handler fiber's
// body, so the count drops whether the body finishes or its fiber is
// destroyed by a kill before or while running.
class RunningHandlerGuard {
 public:
  explicit RunningHandlerGuard(uint64_t* counter) : counter_(counter) {
    ++*counter_;
  }
  RunningHandlerGuard(RunningHandlerGuard&& other) noexcept
      : counter_(std::exchange(other.counter_, nullptr)) {}
  RunningHandlerGuard& operator=(RunningHandlerGuard&&) = delete;
  RunningHandlerGuard(const RunningHandlerGuard&) = delete;
  RunningHandlerGuard& operator=(const RunningHandlerGuard&) = delete;
  ~RunningHandlerGuard() {
    if (counter_ == nullptr) return;
    MKS_ASSERT_GT(*counter_, 0u);
    --*counter_;
  }

 private:
  uint64_t* counter_;
};

}  // namespace

int64_t SaturatingDeadline(int64_t now_ns, int64_t delta_ns) {
  MKS_ASSERT_GE(delta_ns, 0);
  MKS_ASSERT_GE(now_ns, 0);
  if (delta_ns > std::numeric_limits<int64_t>::max() - now_ns) {
    return std::numeric_limits<int64_t>::max();
  }
  return now_ns + delta_ns;
}

RpcEndpoint::RpcEndpoint(runtime::Scheduler* scheduler,
                         runtime::ProcessId process, Network* network,
                         NodeId self, RpcOptions options)
    : scheduler_(scheduler),
      process_(process),
      network_(network),
      self_(self),
      incarnation_(options.incarnation) {
  MKS_ASSERT(scheduler_ != nullptr);
  MKS_ASSERT(network_ != nullptr);
  MKS_ASSERT_NE(self_, kNoNode);
  MKS_ASSERT_MSG(incarnation_ != 0, "RpcOptions::incarnation must be drawn");
  MKS_ASSERT(scheduler_->IsAlive(process_));
  std::weak_ptr<int> liveness = liveness_;
  network_->SetHandler([this, liveness](NodeId from, std::string bytes) {
    if (liveness.expired()) return;
    OnMessage(from, std::move(bytes));
  });
}

RpcEndpoint::~RpcEndpoint() {
  MKS_ASSERT_MSG(running_handlers_ == 0,
                 "endpoint of node " + std::to_string(self_) + " destroyed with " +
                     std::to_string(running_handlers_) +
                     " handler fibers alive; kill its process first");
  ReleasePendingCalls();
  MKS_ASSERT(pending_.empty());
}

void RpcEndpoint::RegisterHandler(std::string method, RpcHandler handler) {
  MKS_ASSERT(!method.empty());
  MKS_ASSERT(handler != nullptr);
  const bool inserted = handlers_.emplace(method, std::move(handler)).second;
  MKS_ASSERT_MSG(inserted, "rpc method '" + method + "' registered twice");
}

runtime::Future<std::string> RpcEndpoint::Call(NodeId to,
                                               std::string_view method,
                                               std::string payload,
                                               int64_t timeout_ns) {
  MKS_ASSERT_NE(to, kNoNode);
  return StartCall(to, "", method, std::move(payload), timeout_ns);
}

runtime::Future<std::string> RpcEndpoint::CallAddress(std::string_view address,
                                                      std::string_view method,
                                                      std::string payload,
                                                      int64_t timeout_ns) {
  MKS_ASSERT(!address.empty());
  return StartCall(kNoNode, address, method, std::move(payload), timeout_ns);
}

runtime::Future<std::string> RpcEndpoint::StartCall(NodeId to, std::string_view address,
                                                    std::string_view method,
                                                    std::string payload,
                                                    int64_t timeout_ns) {
  MKS_ASSERT_GT(timeout_ns, 0);
  MKS_ASSERT(!method.empty());
  MKS_ASSERT((to == kNoNode) != address.empty());
  runtime::Promise<std::string> promise(scheduler_);
  runtime::Future<std::string> future = promise.GetFuture();
  if (!ProcessAlive()) {
    ++stats_.calls_cancelled;
    promise.SetError(Status::Cancelled(Describe(to, address, method) + ": node " +
                                       std::to_string(self_) + " is dead"));
    return future;
  }
  const uint64_t request_id = next_request_id_++;
  ++stats_.calls_started;
  proto::RpcEnvelope envelope;
  envelope.set_request_id(request_id);
  envelope.set_caller_incarnation(incarnation_);
  envelope.set_method(std::string(method));
  envelope.set_timeout_ns(timeout_ns);
  envelope.set_payload(std::move(payload));
  std::string bytes;
  MKS_ASSERT(envelope.SerializeToString(&bytes));
  // Registered before sending, so even a Network that delivered the reply
  // synchronously inside Send would find the call.
  const runtime::TimerId timer = scheduler_->After(
      process_, timeout_ns, [this, request_id] { OnDeadline(request_id); });
  pending_.emplace(request_id, PendingCall{to, std::string(address), std::string(method),
                                           std::move(promise), timer});
  const Status sent = to != kNoNode ? network_->Send(to, std::move(bytes))
                                    : network_->SendToAddress(address, std::move(bytes));
  if (!sent.ok()) {
    auto it = pending_.find(request_id);
    MKS_ASSERT(it != pending_.end());
    PendingCall call = std::move(it->second);
    pending_.erase(it);
    scheduler_->Cancel(call.deadline_timer);
    ++stats_.calls_send_failed;
    call.promise.SetError(Status(sent.code(), Describe(to, address, method) +
                                                  ": send failed: " +
                                                  sent.message()));
  }
  return future;
}

void RpcEndpoint::OnMessage(NodeId from, std::string bytes) {
  if (!ProcessAlive()) {
    ++stats_.dropped_after_death;
    ReleasePendingCalls();
    return;
  }
  proto::RpcEnvelope envelope;
  if (!envelope.ParseFromString(bytes) || envelope.request_id() == 0 ||
      envelope.caller_incarnation() == 0) {
    ++stats_.malformed_dropped;
    return;
  }
  if (envelope.is_response()) {
    if (envelope.caller_incarnation() != incarnation_) {
      ++stats_.replies_stale;
      return;
    }
    OnReply(from, envelope.request_id(), envelope.error_code(),
            std::move(*envelope.mutable_error_message()),
            std::move(*envelope.mutable_payload()));
    return;
  }
  if (envelope.method().empty() || envelope.timeout_ns() <= 0 ||
      envelope.error_code() != 0) {
    ++stats_.malformed_dropped;
    return;
  }
  OnRequest(from, std::move(*envelope.mutable_method()), envelope.request_id(),
            envelope.caller_incarnation(), envelope.timeout_ns(),
            std::move(*envelope.mutable_payload()));
}

void RpcEndpoint::OnRequest(NodeId from, std::string method,
                            uint64_t request_id, uint64_t caller_incarnation,
                            int64_t timeout_ns, std::string payload) {
  MKS_ASSERT_GT(timeout_ns, 0);
  MKS_ASSERT_NE(request_id, 0u);
  auto handler = handlers_.find(method);
  if (handler == handlers_.end()) {
    ++stats_.requests_unknown_method;
    SendReply(from, request_id, caller_incarnation,
              Status::InvalidArgument("node " + std::to_string(self_) +
                                      " has no rpc method '" + method + "'"));
    return;
  }
  ++stats_.requests_received;
  RpcRequest request{from, method,
                     std::move(payload),
                     SaturatingDeadline(scheduler_->NowNanos(), timeout_ns)};
  // The returned future is not needed: the fiber replies over the network.
  (void)scheduler_->Spawn(
      process_, "rpc " + method,
      [this, serve = handler->second, request = std::move(request), request_id,
       caller_incarnation,
       guard = RunningHandlerGuard(&running_handlers_)]() mutable {
        const NodeId caller = request.from;
        const int64_t deadline_ns = request.deadline_ns;
        Result<std::string> result = serve(std::move(request));
        if (scheduler_->NowNanos() > deadline_ns) {
          // The caller has given up; a reply would only be counted as stale.
          ++stats_.replies_skipped_past_deadline;
          return;
        }
        SendReply(caller, request_id, caller_incarnation, result);
      });
}

void RpcEndpoint::OnReply(NodeId from, uint64_t request_id,
                          uint32_t error_code, std::string error_message,
                          std::string payload) {
  auto it = pending_.find(request_id);
  if (it == pending_.end()) {
    ++stats_.replies_stale;
    return;
  }
  if (it->second.to != kNoNode && it->second.to != from) {
    ++stats_.replies_from_wrong_node;
    return;
  }
  PendingCall call = std::move(it->second);
  pending_.erase(it);
  scheduler_->Cancel(call.deadline_timer);
  ++stats_.replies_matched;
  if (error_code == 0) {
    ++stats_.calls_succeeded;
    call.promise.SetValue(std::move(payload));
    return;
  }
  ++stats_.calls_failed_remotely;
  call.promise.SetError(Status(StatusCodeFromWire(error_code),
                               Describe(from, call.method) + ": " +
                                   error_message));
}

void RpcEndpoint::OnDeadline(uint64_t request_id) {
  auto it = pending_.find(request_id);
  // A completed call cancels its timer, so the call must still be pending.
  MKS_ASSERT_MSG(it != pending_.end(),
                 "deadline of unknown request " + std::to_string(request_id));
  PendingCall call = std::move(it->second);
  pending_.erase(it);
  ++stats_.calls_timed_out;
  call.promise.SetError(Status::TimedOut(Describe(call.to, call.address, call.method) +
                                         ": no reply within deadline"));
}

void RpcEndpoint::SendReply(NodeId to, uint64_t request_id,
                            uint64_t caller_incarnation,
                            const Result<std::string>& result) {
  MKS_ASSERT_NE(request_id, 0u);
  MKS_ASSERT_NE(caller_incarnation, 0u);
  proto::RpcEnvelope envelope;
  envelope.set_request_id(request_id);
  envelope.set_caller_incarnation(caller_incarnation);
  envelope.set_is_response(true);
  if (result.ok()) {
    envelope.set_payload(result.value());
  } else {
    envelope.set_error_code(static_cast<uint32_t>(result.status().code()));
    envelope.set_error_message(result.status().message());
  }
  std::string bytes;
  MKS_ASSERT(envelope.SerializeToString(&bytes));
  const Status sent = network_->Send(to, std::move(bytes));
  // A reply the network refuses is a lost message: the caller times out.
  if (!sent.ok()) ++stats_.reply_send_failures;
}

void RpcEndpoint::ReleasePendingCalls() {
  // Moved out first: fulfilling a promise must not run into a map we edit.
  std::map<uint64_t, PendingCall> released;
  released.swap(pending_);
  for (auto& [request_id, call] : released) {
    scheduler_->Cancel(call.deadline_timer);
    ++stats_.calls_cancelled;
    call.promise.SetError(Status::Cancelled(
        Describe(call.to, call.address, call.method) + ": abandoned by node " +
        std::to_string(self_)));
  }
  MKS_ASSERT(pending_.empty());
}

}  // namespace mks
