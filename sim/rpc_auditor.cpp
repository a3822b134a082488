#include "sim/rpc_auditor.h"

#include <optional>
#include <utility>

#include "core/assertions.h"

namespace mks::sim {
namespace {

// The envelope fields the auditor reads (RpcEnvelope numbers 1, 2 and 6).
struct EnvelopeHead {
  uint64_t request_id = 0;
  uint64_t caller_incarnation = 0;
  bool is_response = false;
};

bool ReadVarint(std::string_view* in, uint64_t* value) {
  *value = 0;
  for (int shift = 0; shift < 64 && !in->empty(); shift += 7) {
    const auto byte = static_cast<uint8_t>(in->front());
    in->remove_prefix(1);
    *value |= static_cast<uint64_t>(byte & 0x7f) << shift;
    if ((byte & 0x80) == 0) return true;
  }
  return false;
}

// Reads the head of a serialized RpcEnvelope by walking its wire format,
// skipping the payload without copying it; nullopt for bytes that are no
// envelope (the endpoint drops those itself).
std::optional<EnvelopeHead> ReadHead(std::string_view bytes) {
  EnvelopeHead head;
  while (!bytes.empty()) {
    uint64_t tag = 0;
    uint64_t value = 0;
    if (!ReadVarint(&bytes, &tag)) return std::nullopt;
    const uint64_t field = tag >> 3;
    switch (tag & 7) {
      case 0:  // varint
        if (!ReadVarint(&bytes, &value)) return std::nullopt;
        if (field == 1) head.request_id = value;
        if (field == 2) head.caller_incarnation = value;
        if (field == 6) head.is_response = value != 0;
        break;
      case 2:  // length-delimited
        if (!ReadVarint(&bytes, &value) || value > bytes.size()) return std::nullopt;
        bytes.remove_prefix(static_cast<size_t>(value));
        break;
      default: return std::nullopt;  // RpcEnvelope has no other wire types
    }
  }
  return head;
}

}  // namespace

RpcAuditor::RpcAuditor(Network* inner, NodeId self, Report report)
    : inner_(inner), self_(self), report_(std::move(report)) {
  MKS_ASSERT(inner_ != nullptr);
  MKS_ASSERT(report_ != nullptr);
}

void RpcAuditor::NoteRequest(NodeId to, std::string_view bytes) {
  const std::optional<EnvelopeHead> head = ReadHead(bytes);
  if (!head.has_value() || head->is_response) return;
  requests_[{head->caller_incarnation, head->request_id}] = to;
}

Status RpcAuditor::Send(NodeId to, std::string bytes) {
  NoteRequest(to, bytes);
  return inner_->Send(to, std::move(bytes));
}

Status RpcAuditor::SendToAddress(std::string_view address, std::string bytes) {
  NoteRequest(kNoNode, bytes);
  return inner_->SendToAddress(address, std::move(bytes));
}

void RpcAuditor::SetHandler(MessageHandler handler) {
  inner_->SetHandler([this, handler = std::move(handler)](NodeId from, std::string bytes) {
    OnMessage(handler, from, std::move(bytes));
  });
}

void RpcAuditor::OnMessage(const MessageHandler& handler, NodeId from, std::string bytes) {
  const std::optional<EnvelopeHead> head = ReadHead(bytes);
  const uint64_t matched_before =
      endpoint_ != nullptr ? endpoint_->stats().replies_matched : 0;
  handler(from, std::move(bytes));
  if (endpoint_ == nullptr || endpoint_->stats().replies_matched == matched_before) return;
  MKS_ASSERT_EQ(endpoint_->stats().replies_matched, matched_before + 1);
  if (!head.has_value() || !head->is_response) {
    report_("rpc: node " + std::to_string(self_) + " counted a reply it could not read");
    return;
  }
  const uint64_t incarnation = endpoint_->incarnation();
  auto request = requests_.find({incarnation, head->request_id});
  std::string wrong;
  if (head->caller_incarnation != incarnation) {
    wrong = "addressed to incarnation " + std::to_string(head->caller_incarnation) +
            ", not this one (" + std::to_string(incarnation) + ")";
  } else if (request == requests_.end()) {
    wrong = "for request " + std::to_string(head->request_id) +
            ", which this incarnation never sent or already had answered";
  } else if (request->second != kNoNode && request->second != from) {
    wrong = "from node " + std::to_string(from) + " for request " +
            std::to_string(head->request_id) + " sent to node " + std::to_string(request->second);
  }
  if (request != requests_.end()) requests_.erase(request);
  if (wrong.empty()) return;
  report_("rpc: node " + std::to_string(self_) + " accepted a reply " + wrong);
}

}  // namespace mks::sim
