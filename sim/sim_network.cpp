#include "sim/sim_network.h"

#include <algorithm>
#include <utility>

#include "core/assertions.h"

namespace mks::sim {

class SimNetwork::Endpoint final : public Network {
 public:
  Endpoint(SimNetwork* network, NodeId id, uint32_t index)
      : network_(network), id_(id), index_(index) {}

  Status Send(NodeId to, std::string bytes) override {
    return network_->Send(index_, to, std::move(bytes));
  }
  void SetHandler(MessageHandler handler) override {
    handler_ = std::move(handler);
  }
  Status SendToAddress(std::string_view address, std::string bytes) override {
    auto it = network_->id_by_address_.find(address);
    if (it == network_->id_by_address_.end()) {
      return Status::InvalidArgument("no endpoint listens at '" + std::string(address) + "'");
    }
    return network_->Send(index_, it->second, std::move(bytes));
  }
  Status SetAddress(NodeId id, std::string_view address) override {
    auto it = network_->id_by_address_.find(address);
    if (it == network_->id_by_address_.end() || it->second != id) {
      return Status::InvalidArgument("'" + std::string(address) + "' is not the address of node " +
                                     std::to_string(id));
    }
    return Status::Ok();
  }

  SimNetwork* const network_;
  const NodeId id_;
  const uint32_t index_;
  runtime::ProcessId process_ = 0;  // 0 while down
  MessageHandler handler_;
  int64_t clog_until_ns_ = 0;
  // Invariant: deliveries scheduled to the current process and not yet made.
  uint64_t in_flight_ = 0;
};

SimNetwork::SimNetwork(runtime::Scheduler* scheduler, Random random,
                       NetworkConfig config, Tracer* tracer)
    : scheduler_(scheduler), random_(random), config_(config), tracer_(tracer) {
  MKS_ASSERT(scheduler != nullptr);
  MKS_ASSERT(tracer != nullptr);
  MKS_ASSERT_LE(config.latency_min_us, config.latency_max_us);
  MKS_ASSERT_GE(config.latency_min_us, 0);
}

SimNetwork::~SimNetwork() {
  for (Endpoint* endpoint : endpoints_) delete endpoint;
}

std::string SimNetwork::AddressOf(NodeId id) { return "sim-" + std::to_string(id) + ":7000"; }

Network* SimNetwork::AddEndpoint(NodeId id) {
  MKS_ASSERT_NE(id, kNoNode);
  MKS_ASSERT(id_by_address_.emplace(AddressOf(id), id).second);
  if (index_by_id_.size() <= id) index_by_id_.resize(id + 1, 0);
  MKS_ASSERT_EQ(index_by_id_[id], 0u);
  const auto index = static_cast<uint32_t>(endpoints_.size());
  endpoints_.push_back(new Endpoint(this, id, index));
  index_by_id_[id] = index + 1;
  ResizeLinks();
  return endpoints_.back();
}

void SimNetwork::SetSecretGroup(NodeId id, uint32_t group) {
  MKS_ASSERT_LT(id, kAnyClientId);
  secret_group_[id] = group;
}

void SimNetwork::ResizeLinks() {
  // The matrices have room for `stride_` endpoints a side; past it they are
  // re-laid at twice the room, keeping what old links held, so adding n
  // endpoints costs O(n^2) in all rather than O(n^3).
  const size_t size = endpoints_.size();
  if (size <= stride_) return;
  const size_t old_stride = stride_;
  const size_t stride = std::max<size_t>(16, 2 * stride_);
  std::vector<uint8_t> cut(stride * stride, 0);
  std::vector<int64_t> clog(stride * stride, 0);
  std::vector<int64_t> last(stride * stride, 0);
  for (size_t from = 0; from < old_stride; ++from) {
    for (size_t to = 0; to < old_stride; ++to) {
      cut[from * stride + to] = cut_[from * old_stride + to];
      clog[from * stride + to] = link_clog_until_ns_[from * old_stride + to];
      last[from * stride + to] = last_delivery_ns_[from * old_stride + to];
    }
  }
  cut_ = std::move(cut);
  link_clog_until_ns_ = std::move(clog);
  last_delivery_ns_ = std::move(last);
  stride_ = stride;
  MKS_ASSERT_EQ(cut_.size(), stride_ * stride_);
  MKS_ASSERT_GE(stride_, size);
}

uint32_t SimNetwork::IndexOf(NodeId id) const {
  MKS_ASSERT_MSG(id < index_by_id_.size() && index_by_id_[id] != 0,
                 "unknown endpoint " + std::to_string(id));
  return index_by_id_[id] - 1;
}

void SimNetwork::Up(NodeId id, runtime::ProcessId process) {
  Endpoint* endpoint = endpoints_[IndexOf(id)];
  MKS_ASSERT_EQ(endpoint->process_, 0u);
  MKS_ASSERT(scheduler_->IsAlive(process));
  endpoint->process_ = process;
  endpoint->in_flight_ = 0;
}

void SimNetwork::Down(NodeId id) {
  Endpoint* endpoint = endpoints_[IndexOf(id)];
  MKS_ASSERT_NE(endpoint->process_, 0u);
  // The process's delivery timers died with it: count them as drops.
  stats_.dropped_down += endpoint->in_flight_;
  endpoint->in_flight_ = 0;
  endpoint->process_ = 0;
  endpoint->handler_ = nullptr;
}

bool SimNetwork::IsUp(NodeId id) const {
  return endpoints_[IndexOf(id)]->process_ != 0;
}

void SimNetwork::Cut(NodeId from, NodeId to) {
  const uint32_t from_index = IndexOf(from);
  const uint32_t to_index = IndexOf(to);
  MKS_ASSERT_NE(from_index, to_index);
  cut_[LinkSlot(from_index, to_index)] = 1;
}

void SimNetwork::Isolate(NodeId node) {
  for (Endpoint* other : endpoints_) {
    if (other->id_ == node) continue;
    Cut(node, other->id_);
    Cut(other->id_, node);
  }
}

void SimNetwork::Split(const std::vector<NodeId>& side_a,
                       const std::vector<NodeId>& side_b) {
  for (NodeId a : side_a) {
    for (NodeId b : side_b) {
      MKS_ASSERT_NE(a, b);
      Cut(a, b);
      Cut(b, a);
    }
  }
}

void SimNetwork::Heal() { std::fill(cut_.begin(), cut_.end(), 0); }

bool SimNetwork::Reachable(NodeId from, NodeId to) const {
  return cut_[LinkSlot(IndexOf(from), IndexOf(to))] == 0;
}

void SimNetwork::ClogNode(NodeId node, int64_t until_ns) {
  Endpoint* endpoint = endpoints_[IndexOf(node)];
  endpoint->clog_until_ns_ = std::max(endpoint->clog_until_ns_, until_ns);
}

void SimNetwork::ClogLink(NodeId from, NodeId to, int64_t until_ns) {
  int64_t& slot = link_clog_until_ns_[LinkSlot(IndexOf(from), IndexOf(to))];
  slot = std::max(slot, until_ns);
}

void SimNetwork::Unclog() {
  for (Endpoint* endpoint : endpoints_) endpoint->clog_until_ns_ = 0;
  std::fill(link_clog_until_ns_.begin(), link_clog_until_ns_.end(), 0);
}

int64_t SimNetwork::DrawLatencyNanos() {
  if (config_.slow_tail_ppm != 0 && random_.ChancePpm(config_.slow_tail_ppm)) {
    ++stats_.slow;
    return 1000 * random_.Range(config_.latency_max_us + 1,
                                std::max(config_.slow_tail_max_us,
                                         config_.latency_max_us + 1));
  }
  return 1000 * random_.Range(config_.latency_min_us, config_.latency_max_us);
}

Status SimNetwork::Send(uint32_t from_index, NodeId to, std::string bytes) {
  if (to >= index_by_id_.size() || index_by_id_[to] == 0) {
    return Status::InvalidArgument("unknown node " + std::to_string(to));
  }
  if (bytes.size() > config_.max_message_bytes) {
    return Status::InvalidArgument("message of " + std::to_string(bytes.size()) +
                                   " bytes exceeds the frame limit");
  }
  const uint32_t to_index = index_by_id_[to] - 1;
  const int64_t now_ns = scheduler_->NowNanos();
  const NodeId from = endpoints_[from_index]->id_;
  ++stats_.sent;
  stats_.bytes_sent += bytes.size();
  tracer_->Record(now_ns, TraceKind::kSend, from, to, bytes.size());
  if (from < kAnyClientId && to < kAnyClientId && !secret_group_.empty()) {
    const auto group_of = [this](NodeId id) {
      auto it = secret_group_.find(id);
      return it == secret_group_.end() ? 0u : it->second;
    };
    if (group_of(from) != group_of(to)) {
      ++stats_.dropped_auth;
      tracer_->Record(now_ns, TraceKind::kDrop, from, to, 4);
      return Status::Ok();
    }
  }
  if (cut_[LinkSlot(from_index, to_index)] != 0) {
    ++stats_.dropped_cut;
    tracer_->Record(now_ns, TraceKind::kDrop, from, to, 1);
    return Status::Ok();
  }
  if (config_.loss_ppm != 0 && random_.ChancePpm(config_.loss_ppm)) {
    ++stats_.dropped_loss;
    tracer_->Record(now_ns, TraceKind::kDrop, from, to, 2);
    return Status::Ok();
  }
  // Clogs hold the message until they end; latency counts from there.
  int64_t depart_ns = now_ns;
  const int64_t clog_ns =
      std::max({endpoints_[from_index]->clog_until_ns_,
                endpoints_[to_index]->clog_until_ns_,
                link_clog_until_ns_[LinkSlot(from_index, to_index)]});
  if (clog_ns > now_ns) {
    ++stats_.clogged;
    depart_ns = clog_ns;
  }
  int64_t deliver_ns = depart_ns + DrawLatencyNanos();
  int64_t& last_ns = last_delivery_ns_[LinkSlot(from_index, to_index)];
  if (config_.reorder_ppm != 0 && random_.ChancePpm(config_.reorder_ppm)) {
    ++stats_.reordered;  // exempt from FIFO: may pass or be passed
  } else {
    deliver_ns = std::max(deliver_ns, last_ns);
    last_ns = deliver_ns;
  }
  if (config_.duplicate_ppm != 0 && random_.ChancePpm(config_.duplicate_ppm)) {
    ++stats_.duplicated;
    const int64_t copy_ns = deliver_ns + DrawLatencyNanos();
    tracer_->Record(now_ns, TraceKind::kDuplicate, from, to, copy_ns);
    Schedule(from_index, to_index, copy_ns, bytes);
  }
  Schedule(from_index, to_index, deliver_ns, std::move(bytes));
  return Status::Ok();
}

void SimNetwork::Schedule(uint32_t from_index, uint32_t to_index,
                          int64_t deliver_ns, std::string bytes) {
  Endpoint* receiver = endpoints_[to_index];
  if (receiver->process_ == 0) {
    ++stats_.dropped_down;
    tracer_->Record(scheduler_->NowNanos(), TraceKind::kDrop,
                    endpoints_[from_index]->id_, receiver->id_, 3);
    return;
  }
  MKS_ASSERT_GE(deliver_ns, scheduler_->NowNanos());
  ++receiver->in_flight_;
  scheduler_->At(receiver->process_, deliver_ns,
                 [this, from_index, to_index, bytes = std::move(bytes)]() mutable {
                   Deliver(from_index, to_index, std::move(bytes));
                 });
}

void SimNetwork::Deliver(uint32_t from_index, uint32_t to_index,
                         std::string bytes) {
  Endpoint* receiver = endpoints_[to_index];
  // The timer belonged to the receiver's process, so it is up.
  MKS_ASSERT_NE(receiver->process_, 0u);
  MKS_ASSERT_GT(receiver->in_flight_, 0u);
  --receiver->in_flight_;
  const NodeId from = endpoints_[from_index]->id_;
  if (!receiver->handler_) {
    ++stats_.dropped_no_handler;
    tracer_->Record(scheduler_->NowNanos(), TraceKind::kDrop, from,
                    receiver->id_, 4);
    return;
  }
  ++stats_.delivered;
  tracer_->Record(scheduler_->NowNanos(), TraceKind::kDeliver, from,
                  receiver->id_, bytes.size());
  receiver->handler_(from, std::move(bytes));
}

}  // namespace mks::sim
