// A Network for unit tests: every node's messages go into one FIFO queue
// that the test drains, inspects, drops from, duplicates or delays by hand.
// Nothing is lost, reordered or delayed unless the test does it. Test-only:
// the simulator's network (sim/) is the model of a real network.
#pragma once

#include <deque>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/assertions.h"
#include "core/env.h"

namespace mks {

class LoopbackHub {
 public:
  struct Message {
    NodeId from = kNoNode;
    NodeId to = kNoNode;
    std::string bytes;
  };

  // Returns the Network of `node`, creating it on first use. The hub owns it.
  Network* NetworkOf(NodeId node) {
    MKS_ASSERT_NE(node, kNoNode);
    std::unique_ptr<NodeNetwork>& slot = nodes_[node];
    if (slot == nullptr) slot = std::make_unique<NodeNetwork>(this, node);
    return slot.get();
  }

  // Delivers queued messages, oldest first, including any sent while
  // delivering, until the queue is empty. Returns how many were delivered.
  size_t DeliverAll() {
    size_t delivered = 0;
    while (!queue_.empty()) {
      Message message = std::move(queue_.front());
      queue_.pop_front();
      Deliver(std::move(message));
      ++delivered;
    }
    return delivered;
  }

  // Hands `message` to its destination's handler, if one is installed.
  void Deliver(Message message) {
    auto it = nodes_.find(message.to);
    MKS_ASSERT(it != nodes_.end());
    if (it->second->handler) {
      // A copy: the handler may replace itself while running.
      MessageHandler handler = it->second->handler;
      handler(message.from, std::move(message.bytes));
    }
  }

  // Removes and returns every queued message (to hold, drop or replay).
  std::vector<Message> TakeAll() {
    std::vector<Message> taken(std::make_move_iterator(queue_.begin()),
                               std::make_move_iterator(queue_.end()));
    queue_.clear();
    return taken;
  }

  // Queues a message as if `from` had sent it.
  void Inject(NodeId from, NodeId to, std::string bytes) {
    queue_.push_back({from, to, std::move(bytes)});
  }

  std::deque<Message>& queue() { return queue_; }
  // The address of `node` on this hub, and the node at an address (kNoNode
  // when it names none).
  static std::string AddressOf(NodeId node) { return "node-" + std::to_string(node); }
  static NodeId NodeAt(std::string_view address) {
    if (!address.starts_with("node-")) return kNoNode;
    NodeId id = 0;
    for (char c : address.substr(5)) {
      if (c < '0' || c > '9' || id > 100'000'000) return kNoNode;
      id = id * 10 + static_cast<NodeId>(c - '0');
    }
    return id;
  }
  uint64_t sent_count() const { return sent_count_; }

 private:
  class NodeNetwork final : public Network {
   public:
    NodeNetwork(LoopbackHub* hub, NodeId self) : hub_(hub), self_(self) {}
    Status Send(NodeId to, std::string bytes) override {
      if (hub_->nodes_.count(to) == 0) {
        return Status::InvalidArgument("unknown node " + std::to_string(to));
      }
      ++hub_->sent_count_;
      hub_->queue_.push_back({self_, to, std::move(bytes)});
      return Status::Ok();
    }
    void SetHandler(MessageHandler new_handler) override {
      handler = std::move(new_handler);
    }
    // Addresses are "node-<id>" (LoopbackHub::AddressOf).
    Status SendToAddress(std::string_view address, std::string bytes) override {
      const NodeId to = LoopbackHub::NodeAt(address);
      if (to == kNoNode) return Status::InvalidArgument("unknown address");
      return Send(to, std::move(bytes));
    }
    Status SetAddress(NodeId id, std::string_view address) override {
      if (LoopbackHub::NodeAt(address) != id) {
        return Status::InvalidArgument("address does not name node " + std::to_string(id));
      }
      return Status::Ok();
    }
    MessageHandler handler;

   private:
    LoopbackHub* hub_;
    NodeId self_;
  };

  std::map<NodeId, std::unique_ptr<NodeNetwork>> nodes_;
  std::deque<Message> queue_;  // in send order
  uint64_t sent_count_ = 0;
};

}  // namespace mks
