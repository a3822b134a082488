// RpcAuditor: the simulator's witness of one node's RPC matching.
//
// Sits between a node and its simulated Network and reads the envelope of
// every message (core/proto/mks.proto RpcEnvelope) without changing any.
// It remembers the requests the node sends (id and destination); when the
// node's RpcEndpoint accepts a reply (its replies_matched counter moves
// while the message is handled), the reply must be addressed to this
// endpoint's incarnation and answer a request of it to the node that
// replied. Anything else is a reply matched to a call it does not answer,
// which the auditor reports. Replies the endpoint drops are its business
// (counted as stale): the auditor only judges what it accepts.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include "core/env.h"
#include "core/rpc.h"

namespace mks::sim {

class RpcAuditor final : public Network {
 public:
  using Report = std::function<void(const std::string& violation)>;

  // Wraps `inner` (which must outlive the auditor) for node `self`.
  RpcAuditor(Network* inner, NodeId self, Report report);

  // From now on judges replies accepted by `endpoint` (which must outlive
  // the auditor, or be unwatched first with nullptr).
  void Watch(const RpcEndpoint* endpoint) { endpoint_ = endpoint; }

  Status Send(NodeId to, std::string bytes) override;
  void SetHandler(MessageHandler handler) override;
  Status SendToAddress(std::string_view address, std::string bytes) override;
  Status SetAddress(NodeId id, std::string_view address) override {
    return inner_->SetAddress(id, address);
  }

 private:
  // Notes a request of this node's endpoint in `bytes`, sent to `to`.
  void NoteRequest(NodeId to, std::string_view bytes);
  void OnMessage(const MessageHandler& handler, NodeId from, std::string bytes);

  Network* const inner_;
  const NodeId self_;
  const Report report_;
  const RpcEndpoint* endpoint_ = nullptr;
  // Requests sent and not yet answered: (incarnation, id) -> destination
  // (kNoNode: sent to an address, any node may answer).
  std::map<std::pair<uint64_t, uint64_t>, NodeId> requests_;
};

}  // namespace mks::sim
