#include "sim/counter_protocol.h"

#include "sim/gossip_protocol.h"
#include "sim/kv_protocol.h"

#include <algorithm>
#include <optional>
#include <utility>

#include "core/assertions.h"
#include "core/buggify.h"
#include "sim.pb.h"

namespace mks::sim {
namespace {

constexpr int64_t kMsNanos = 1000000;
constexpr int64_t kGossipIntervalNanos = 50 * kMsNanos;

void PutFixed64(std::string* out, uint64_t value) {
  for (int i = 0; i < 8; ++i) out->push_back(static_cast<char>(value >> (8 * i)));
}

uint64_t GetFixed64(std::string_view bytes) {
  MKS_ASSERT_GE(bytes.size(), 8u);
  uint64_t value = 0;
  for (int i = 7; i >= 0; --i) {
    value = (value << 8) | static_cast<uint8_t>(bytes[static_cast<size_t>(i)]);
  }
  return value;
}

void PutBigEndian32(std::string* out, uint32_t value) {
  for (int i = 3; i >= 0; --i) out->push_back(static_cast<char>(value >> (8 * i)));
}

uint32_t GetBigEndian32(std::string_view bytes) {
  MKS_ASSERT_GE(bytes.size(), 4u);
  uint32_t value = 0;
  for (size_t i = 0; i < 4; ++i) value = (value << 8) | static_cast<uint8_t>(bytes[i]);
  return value;
}

// A stored number: 8 bytes of value, then 8 bytes of checksum over the
// record's key and value, so a flipped bit or a value moved to another key
// is caught.
std::string EncodeRecord(std::string_view disk_key, uint64_t value) {
  std::string out;
  PutFixed64(&out, value);
  PutFixed64(&out, StableHash64(out, StableHash64(disk_key)));
  return out;
}

Result<uint64_t> DecodeRecord(std::string_view disk_key, std::string_view bytes) {
  if (bytes.size() != 16) return Status::Corruption("record of wrong length");
  const uint64_t expected = StableHash64(bytes.substr(0, 8), StableHash64(disk_key));
  if (GetFixed64(bytes.substr(8)) != expected) {
    return Status::Corruption("record checksum mismatch");
  }
  return GetFixed64(bytes);
}

// Disk layout: "c/" + origin (4 bytes big-endian) + key -> count;
// "d/" + client (4 bytes big-endian) -> last applied request id.
std::string CountKey(NodeId origin, std::string_view key) {
  std::string out = "c/";
  PutBigEndian32(&out, origin);
  out.append(key);
  return out;
}

std::string DedupKey(NodeId client) {
  std::string out = "d/";
  PutBigEndian32(&out, client);
  return out;
}

constexpr std::string_view kCanaryAckWithoutPersist = kCounterCanaries[0];

bool HasCanary(const NodeContext& context, std::string_view name) {
  MKS_ASSERT(context.scenario != nullptr);
  const std::vector<std::string>& canaries = context.scenario->canaries;
  return std::find(canaries.begin(), canaries.end(), name) != canaries.end();
}

class CounterNode final : public ProtocolNode {
 public:
  explicit CounterNode(const NodeContext& context)
      : context_(context),
        env_(context.env),
        ack_without_persist_(HasCanary(context, kCanaryAckWithoutPersist)) {
    MKS_ASSERT(env_.disk != nullptr && env_.network != nullptr);
    MKS_ASSERT_GE(env_.node_id, 1u);
    Load();
    env_.network->SetHandler(
        [this](NodeId from, std::string bytes) { OnMessage(from, bytes); });
    context_.scheduler->Spawn(context_.process, "gossip", [this] { GossipLoop(); });
  }

  std::string ConvergenceDigest() const override {
    std::string out;
    for (const auto& [key, counts] : counts_) {
      // A key only read here holds zeros: the same state as no entry at all.
      if (std::all_of(counts.begin(), counts.end(), [](uint64_t c) { return c == 0; })) {
        continue;
      }
      PutFixed64(&out, key.size());
      out += key;
      out += EncodeCounts(counts);
    }
    return out;
  }

  uint64_t corrupt_records() const { return corrupt_records_; }

 private:
  size_t node_count() const { return context_.nodes.size(); }

  std::vector<uint64_t>& CountsOf(const std::string& key) {
    std::vector<uint64_t>& counts = counts_[key];
    if (counts.empty()) counts.assign(node_count(), 0);
    MKS_ASSERT_EQ(counts.size(), node_count());
    return counts;
  }

  void Load() {
    std::unique_ptr<DiskIterator> it = env_.disk->NewIterator();
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      const std::string_view disk_key = it->key();
      Result<uint64_t> value = DecodeRecord(disk_key, it->value());
      if (!value.ok() || disk_key.size() < 6) {
        ++corrupt_records_;
        continue;
      }
      const uint32_t id = GetBigEndian32(disk_key.substr(2));
      if (disk_key.starts_with("c/") && id >= 1 && id <= node_count()) {
        CountsOf(std::string(disk_key.substr(6)))[id - 1] = *value;
      } else if (disk_key.starts_with("d/")) {
        last_request_[id] = *value;
      } else {
        ++corrupt_records_;
      }
    }
    MKS_ASSERT_MSG(it->status().ok(), it->status().ToString());
  }

  void OnMessage(NodeId from, const std::string& bytes) {
    proto::Envelope envelope;
    if (!envelope.ParseFromString(bytes)) return;  // garbage is loss
    switch (envelope.body_case()) {
      case proto::Envelope::kIncrement: OnIncrement(from, envelope.increment()); break;
      case proto::Envelope::kRead: OnRead(from, envelope.read()); break;
      case proto::Envelope::kGossip: OnGossip(envelope.gossip()); break;
      default: break;  // replies are for clients
    }
  }

  void OnIncrement(NodeId client, const proto::Increment& request) {
    uint64_t& last = last_request_[client];
    std::vector<uint64_t>& counts = CountsOf(request.key());
    const size_t self = env_.node_id - 1;
    if (request.request_id() < last) return;  // a stale copy: already answered
    bool ok = true;
    if (request.request_id() == failed_request_[client]) {
      // A copy of a write this node refused: it stays refused, so the
      // client's "failed" means "not applied". (Copies never outlive the
      // incarnation: deliveries die with the process.)
      ok = false;
    } else if (request.request_id() > last && ack_without_persist_) {
      // The planted bug: acknowledged, but only in memory.
      ++counts[self];
      last = request.request_id();
    } else if (request.request_id() > last) {
      WriteBatch batch;
      const std::string count_key = CountKey(env_.node_id, request.key());
      const std::string dedup_key = DedupKey(client);
      batch.Put(count_key, EncodeRecord(count_key, counts[self] + 1));
      batch.Put(dedup_key, EncodeRecord(dedup_key, request.request_id()));
      ok = env_.disk->Write(batch, WriteOptions{.sync = true}).ok();
      if (ok) {
        ++counts[self];
        last = request.request_id();
      } else {
        failed_request_[client] = request.request_id();
      }
    }
    proto::Envelope reply;
    reply.mutable_increment_reply()->set_request_id(request.request_id());
    reply.mutable_increment_reply()->set_count(counts[self]);
    reply.mutable_increment_reply()->set_ok(ok);
    (void)env_.network->Send(client, reply.SerializeAsString());
  }

  void OnRead(NodeId client, const proto::Read& request) {
    // Look up without inserting: reading must not change the state.
    auto it = counts_.find(request.key());
    proto::Envelope reply;
    proto::ReadReply* read = reply.mutable_read_reply();
    read->set_request_id(request.request_id());
    for (size_t i = 0; i < node_count(); ++i) {
      read->add_counts(it == counts_.end() ? 0 : it->second[i]);
    }
    (void)env_.network->Send(client, reply.SerializeAsString());
  }

  void OnGossip(const proto::Gossip& gossip) {
    WriteBatch batch;
    for (const proto::Entry& entry : gossip.entries()) {
      if (entry.origin() < 1 || entry.origin() > node_count()) continue;
      uint64_t& mine = CountsOf(entry.key())[entry.origin() - 1];
      if (entry.count() <= mine) continue;
      mine = entry.count();
      const std::string disk_key = CountKey(entry.origin(), entry.key());
      batch.Put(disk_key, EncodeRecord(disk_key, mine));
    }
    // Unsynced: a crash may forget it, and the next gossip brings it back.
    // A failed write leaves memory ahead of disk, which is also just a
    // forgettable copy of someone else's count.
    if (!batch.empty()) (void)env_.disk->Write(batch, WriteOptions{});
  }

  void GossipLoop() {
    for (;;) {
      int64_t interval_ns = kGossipIntervalNanos;
      // A rare, legal slow gossiper: convergence must not depend on speed.
      if (MKS_BUGGIFY(env_)) interval_ns *= 20;
      context_.scheduler->SleepFor(interval_ns);
      if (node_count() < 2) continue;
      proto::Envelope envelope;
      proto::Gossip* gossip = envelope.mutable_gossip();
      for (const auto& [key, counts] : counts_) {
        for (size_t i = 0; i < counts.size(); ++i) {
          if (counts[i] == 0) continue;
          proto::Entry* entry = gossip->add_entries();
          entry->set_key(key);
          entry->set_origin(static_cast<uint32_t>(i + 1));
          entry->set_count(counts[i]);
        }
      }
      const std::string bytes = envelope.SerializeAsString();
      // Usually one random peer; rarely everyone at once, a burst.
      if (MKS_BUGGIFY(env_)) {
        for (NodeId peer : context_.nodes) {
          if (peer != env_.node_id) (void)env_.network->Send(peer, bytes);
        }
        continue;
      }
      NodeId peer = env_.node_id;
      while (peer == env_.node_id) {
        peer = context_.nodes[env_.random.Uniform(context_.nodes.size())];
      }
      (void)env_.network->Send(peer, bytes);
    }
  }

  NodeContext context_;
  Environment env_;  // a copy: its Random stream is this incarnation's own
  // Invariant: every vector has node_count() entries; index = origin - 1.
  std::map<std::string, std::vector<uint64_t>> counts_;
  // Both only looked up per client, never iterated: hash order cannot
  // reach behaviour, and a lookup is one probe instead of a tree walk.
  std::unordered_map<NodeId, uint64_t> last_request_;  // client -> last applied id
  // client -> the latest request id this incarnation refused (disk error).
  std::unordered_map<NodeId, uint64_t> failed_request_;
  uint64_t corrupt_records_ = 0;
  const bool ack_without_persist_;  // canary: see kCounterCanaries
};

class CounterClient final : public WorkloadClient {
 public:
  explicit CounterClient(const ClientContext& context)
      : context_(context), env_(context.env) {
    MKS_ASSERT(context.workload != nullptr && context.history != nullptr);
    MKS_ASSERT(!context.nodes.empty());
    env_.network->SetHandler(
        [this](NodeId, std::string bytes) { OnReply(bytes); });
    context_.scheduler->Spawn(context_.process, "workload", [this] { Loop(); });
  }

  void Stop() override { stopped_ = true; }
  bool Idle() const override { return stopped_ && !pending_.has_value(); }

 private:
  void OnReply(const std::string& bytes) {
    proto::Envelope envelope;
    if (!envelope.ParseFromString(bytes) || !pending_.has_value()) return;
    uint64_t id = 0;
    if (envelope.has_increment_reply()) id = envelope.increment_reply().request_id();
    if (envelope.has_read_reply()) id = envelope.read_reply().request_id();
    if (id != pending_id_ || pending_->IsFulfilled()) return;  // late or duplicate
    pending_->SetValue(std::move(envelope));
  }

  void Loop() {
    const Workload& w = *context_.workload;
    const int64_t interval_ns = 1000000000LL / w.ops_per_second;
    while (!stopped_) {
      context_.scheduler->SleepFor(
          env_.random.Range(interval_ns / 2, interval_ns + interval_ns / 2));
      if (stopped_) break;
      RunOne(w);
    }
  }

  void RunOne(const Workload& w) {
    Operation op;
    op.client = env_.node_id;
    op.id = ++next_id_;
    op.node = context_.nodes[env_.random.Uniform(context_.nodes.size())];
    DrawKeyAndKind(w, env_.random, &op);
    proto::Envelope request;
    if (op.kind == OperationKind::kRead) {
      request.mutable_read()->set_request_id(op.id);
      request.mutable_read()->set_key(op.key);
    } else {
      const auto size = static_cast<size_t>(
          env_.random.Range(w.value_bytes_min, w.value_bytes_max));
      request.mutable_increment()->set_request_id(op.id);
      request.mutable_increment()->set_key(op.key);
      request.mutable_increment()->set_payload(std::string(size, 'v'));
    }
    runtime::Promise<proto::Envelope> promise(context_.scheduler);
    runtime::Future<proto::Envelope> future = promise.GetFuture();
    pending_.emplace(std::move(promise));
    pending_id_ = op.id;
    op.invoke_ns = context_.scheduler->NowNanos();
    context_.history->Invoke(op);
    const Status sent = env_.network->Send(op.node, request.SerializeAsString());
    MKS_ASSERT_MSG(sent.ok(), sent.ToString());
    Result<proto::Envelope> reply = future.GetFor(w.request_timeout_ms * kMsNanos);
    pending_.reset();
    op.complete_ns = context_.scheduler->NowNanos();
    Finish(&op, reply);
    context_.history->Complete(op);
  }

  static void Finish(Operation* op, const Result<proto::Envelope>& reply) {
    if (!reply.ok()) {
      op->outcome = Outcome::kUnknown;
      return;
    }
    if (op->kind == OperationKind::kRead) {
      const auto& counts = reply->read_reply().counts();
      op->value = EncodeCounts(std::vector<uint64_t>(counts.begin(), counts.end()));
      op->outcome = Outcome::kOk;
      return;
    }
    op->outcome = reply->increment_reply().ok() ? Outcome::kOk : Outcome::kFailed;
    op->value = EncodeCounts({reply->increment_reply().count()});
  }

  ClientContext context_;
  Environment env_;
  bool stopped_ = false;
  uint64_t next_id_ = 0;
  // Invariant: set exactly while an operation is in flight.
  std::optional<runtime::Promise<proto::Envelope>> pending_;
  uint64_t pending_id_ = 0;
};

}  // namespace

std::string EncodeCounts(const std::vector<uint64_t>& counts) {
  std::string out;
  out.reserve(counts.size() * 8);
  for (uint64_t count : counts) PutFixed64(&out, count);
  return out;
}

std::vector<uint64_t> DecodeCounts(std::string_view bytes) {
  MKS_ASSERT_EQ(bytes.size() % 8, 0u);
  std::vector<uint64_t> out;
  for (size_t i = 0; i < bytes.size(); i += 8) out.push_back(GetFixed64(bytes.substr(i)));
  return out;
}

CounterChecker::KeyHistory& CounterChecker::HistoryOf(const std::string& key) {
  KeyHistory& history = keys_[key];
  if (history.invoked.empty()) {
    history.invoked.assign(node_count_, 0);
    history.acked.assign(node_count_, 0);
  }
  return history;
}

void CounterChecker::Violation(const Operation& op, const std::string& what) {
  violations_.push_back("client " + std::to_string(op.client) + " op " +
                        std::to_string(op.id) + " on node " +
                        std::to_string(op.node) + " key " + op.key + ": " + what);
}

void CounterChecker::Invoke(const Operation& op) {
  MKS_ASSERT_GE(op.node, 1u);
  MKS_ASSERT_LE(op.node, node_count_);
  KeyHistory& history = HistoryOf(op.key);
  if (op.kind == OperationKind::kRead) {
    read_floor_[{op.client, op.id}] = history.acked[op.node - 1];
  } else {
    ++history.invoked[op.node - 1];
  }
}

void CounterChecker::Complete(const Operation& op) {
  KeyHistory& history = HistoryOf(op.key);
  const size_t origin = op.node - 1;
  if (op.kind != OperationKind::kRead) {
    if (op.outcome != Outcome::kOk) return;
    ++history.acked[origin];
    const uint64_t count = DecodeCounts(op.value).at(0);
    if (count > history.invoked[origin]) {
      Violation(op, "acknowledged count " + std::to_string(count) +
                        " exceeds the " + std::to_string(history.invoked[origin]) +
                        " increments ever sent to that node");
    }
    return;
  }
  auto floor = read_floor_.find({op.client, op.id});
  MKS_ASSERT(floor != read_floor_.end());
  const uint64_t least = floor->second;
  read_floor_.erase(floor);
  if (op.outcome != Outcome::kOk) return;
  const std::vector<uint64_t> counts = DecodeCounts(op.value);
  if (counts.size() != node_count_) {
    Violation(op, "read returned " + std::to_string(counts.size()) + " counts");
    return;
  }
  if (counts[origin] < least) {
    Violation(op, "read returned " + std::to_string(counts[origin]) +
                      " of the node's own increments, but it had acknowledged " +
                      std::to_string(least) + " before the read began");
  }
  for (size_t i = 0; i < counts.size(); ++i) {
    if (counts[i] > history.invoked[i]) {
      Violation(op, "phantom: component of node " + std::to_string(i + 1) +
                        " is " + std::to_string(counts[i]) + " but only " +
                        std::to_string(history.invoked[i]) + " were sent");
    }
  }
}

Status CounterChecker::CheckConverged(const std::vector<std::string>& digests) {
  MKS_ASSERT(!digests.empty());
  for (size_t i = 1; i < digests.size(); ++i) {
    if (digests[i] != digests[0]) {
      return Status::Unavailable("node " + std::to_string(i + 1) +
                                 " differs from node 1");
    }
  }
  // Parse node 1's digest (all are equal) and hold it against the history.
  std::map<std::string, std::vector<uint64_t>> state;
  std::string_view rest = digests[0];
  while (!rest.empty()) {
    const uint64_t key_size = GetFixed64(rest);
    rest.remove_prefix(8);
    std::string key(rest.substr(0, key_size));
    rest.remove_prefix(key_size);
    state[key] = DecodeCounts(rest.substr(0, node_count_ * 8));
    rest.remove_prefix(node_count_ * 8);
  }
  for (const auto& [key, history] : keys_) {
    auto it = state.find(key);
    for (size_t i = 0; i < node_count_; ++i) {
      const uint64_t held = it == state.end() ? 0 : it->second[i];
      if (held < history.acked[i]) {
        return Status::Corruption("key " + key + ": converged on " +
                                  std::to_string(held) + " increments of node " +
                                  std::to_string(i + 1) + " but " +
                                  std::to_string(history.acked[i]) +
                                  " were acknowledged");
      }
      if (held > history.invoked[i]) {
        return Status::Corruption("key " + key + ": phantom increments of node " +
                                  std::to_string(i + 1));
      }
    }
  }
  return Status::Ok();
}

std::unique_ptr<ProtocolNode> CounterProtocol::StartNode(const NodeContext& context) {
  return std::make_unique<CounterNode>(context);
}

std::unique_ptr<WorkloadClient> CounterProtocol::StartClient(
    const ClientContext& context) {
  return std::make_unique<CounterClient>(context);
}

Status CheckCounterCanaries(const Scenario& scenario) {
  for (const std::string& canary : scenario.canaries) {
    if (std::find(kCounterCanaries.begin(), kCounterCanaries.end(), canary) ==
        kCounterCanaries.end()) {
      std::string known;
      for (std::string_view name : kCounterCanaries) {
        known += (known.empty() ? "" : ", ") + std::string(name);
      }
      return Status::InvalidArgument("unknown canary '" + canary +
                                     "' for protocol counter (known: " + known + ")");
    }
  }
  return Status::Ok();
}

uint64_t CounterNodeCorruptRecords(const ProtocolNode& node) {
  const auto* counter = dynamic_cast<const CounterNode*>(&node);
  MKS_ASSERT(counter != nullptr);
  return counter->corrupt_records();
}

std::string_view OutcomeName(Outcome outcome) {
  switch (outcome) {
    case Outcome::kPending: return "pending";
    case Outcome::kOk: return "ok";
    case Outcome::kFailed: return "failed";
    case Outcome::kUnknown: return "unknown";
  }
  return "invalid";
}

Result<std::unique_ptr<Protocol>> MakeProtocol(const Scenario& scenario) {
  if (scenario.protocol == "counter") {
    MKS_RETURN_IF_ERROR(CheckCounterCanaries(scenario));
    return std::unique_ptr<Protocol>(std::make_unique<CounterProtocol>(scenario));
  }
  if (scenario.protocol == "gossip") {
    Result<std::unique_ptr<GossipProtocol>> made = GossipProtocol::Make(scenario);
    MKS_RETURN_IF_ERROR(made.status());
    return std::unique_ptr<Protocol>(std::move(*made));
  }
  if (scenario.protocol == "kv") {
    Result<std::unique_ptr<KvProtocol>> kv = KvProtocol::Make(scenario);
    MKS_RETURN_IF_ERROR(kv.status());
    return std::unique_ptr<Protocol>(std::move(*kv));
  }
  return Status::InvalidArgument("unknown protocol '" + scenario.protocol + "'");
}

}  // namespace mks::sim
