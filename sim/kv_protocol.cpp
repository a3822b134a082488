#include "sim/kv_protocol.h"

#include <algorithm>
#include <span>
#include <utility>

#include "core/assertions.h"
#include "core/node.h"
#include "core/proto/mks.pb.h"
#include "core/rpc.h"
#include "sim/gossip_checker.h"
#include "sim/gossip_protocol.h"
#include "sim/rpc_auditor.h"
#include "sim/sim_network.h"
#include "sim/world.h"

namespace mks::sim {
namespace {

constexpr int64_t kMsNanos = 1'000'000;
// Between two attempts of a liveness-phase read that failed.
constexpr int64_t kSweepRetryNanos = 50 * kMsNanos;
// Between two liveness-phase passes over the key space.
constexpr int64_t kSweepPauseNanos = 200 * kMsNanos;

// ---- Digest encoding: the records a node holds, partition by partition ----

void PutFixed32(std::string* out, uint32_t value) {
  for (int shift = 24; shift >= 0; shift -= 8) out->push_back(static_cast<char>(value >> shift));
}
void PutFixed64(std::string* out, uint64_t value) {
  for (int shift = 56; shift >= 0; shift -= 8) out->push_back(static_cast<char>(value >> shift));
}
uint64_t GetFixed(std::string_view* in, int bytes) {
  MKS_ASSERT_GE(in->size(), static_cast<size_t>(bytes));
  uint64_t value = 0;
  for (int i = 0; i < bytes; ++i) value = (value << 8) | static_cast<uint8_t>((*in)[static_cast<size_t>(i)]);
  in->remove_prefix(static_cast<size_t>(bytes));
  return value;
}
std::string GetBytes(std::string_view* in) {
  const auto size = static_cast<size_t>(GetFixed(in, 4));
  MKS_ASSERT_GE(in->size(), size);
  std::string out(in->substr(0, size));
  in->remove_prefix(size);
  return out;
}

// One record of a digest.
struct DigestRecord {
  std::string key;
  Timestamp timestamp;
  NodeId origin = kNoNode;
  bool tombstone = false;
  std::string value;
  friend bool operator==(const DigestRecord&, const DigestRecord&) = default;
};

// partition -> its records in key order, as one node holds them.
using NodeRecords = std::map<PartitionId, std::vector<DigestRecord>>;

NodeRecords DecodeDigest(std::string_view digest) {
  NodeRecords out;
  while (!digest.empty()) {
    const auto partition = static_cast<PartitionId>(GetFixed(&digest, 4));
    DigestRecord record;
    record.key = GetBytes(&digest);
    record.timestamp.physical_ms = GetFixed(&digest, 8);
    record.timestamp.logical = static_cast<uint32_t>(GetFixed(&digest, 4));
    record.origin = static_cast<NodeId>(GetFixed(&digest, 4));
    record.tombstone = GetFixed(&digest, 1) != 0;
    record.value = GetBytes(&digest);
    out[partition].push_back(std::move(record));
  }
  return out;
}

// ---- Nodes ----

raft::RaftOptions RaftOptionsFor(const RaftSettings& settings) {
  raft::RaftOptions options;
  options.election_timeout_min_ns = settings.election_timeout_ms * kMsNanos;
  options.heartbeat_interval_ns = settings.heartbeat_ms * kMsNanos;
  options.snapshot_every_entries = settings.snapshot_every;
  options.max_entries_per_append = settings.max_entries_per_append;
  options.pre_vote = settings.pre_vote;
  options.check_quorum = settings.check_quorum;
  return options;
}

class KvNode final : public ProtocolNode {
 public:
  // Checks the node's ring against the cluster's with `checker`.
  KvNode(const NodeContext& context, const MemberList& members,
         const KvCanaries& canaries, KvChecker* checker) {
    MKS_ASSERT(checker != nullptr);
    MKS_ASSERT_EQ(members.size(), context.nodes.size());
    const Scenario& scenario = *context.scenario;
    NodeOptions options;
    const bool by_ids = canaries.ring_by_ids && context.env.node_id % 2 == 0;
    // A standby node is no first member: it joins through its seed.
    if (context.member) {
      options.members = by_ids ? MemberList::FromIds(members.by_seat()).value() : members;
    }
    options.ring.partition_count = scenario.partitions;
    options.ring.replication_factor = scenario.replicas;
    options.coordinator.default_read = scenario.read_consistency;
    options.coordinator.default_write = scenario.write_consistency;
    // Answer the client before it gives up, so a slow quorum is reported as
    // a failure rather than lost as a client timeout.
    options.coordinator.timeout_ns = scenario.workload.request_timeout_ms * kMsNanos * 3 / 4;
    if (scenario.gossip.enabled) {
      options.gossip = GossipOptionsFor(scenario.gossip);
      options.gossip->seeds = context.seeds;
      options.addresses.peer = SimNetwork::AddressOf(context.env.node_id);
      options.gossip_canaries = canaries.gossip;
      if (context.member) {
        for (NodeId peer : context.nodes) {
          options.known_peers[peer].peer = SimNetwork::AddressOf(peer);
        }
      }
    }
    options.cluster_id = "sim";
    options.raft = RaftOptionsFor(scenario.raft);
    options.raft_canaries = canaries.raft;
    options.raft_observer = context.raft_observer;
    options.epoch_interval_ms = static_cast<uint64_t>(scenario.raft.epoch_interval_ms);
    options.dead_remove_after_ms = static_cast<uint64_t>(scenario.raft.dead_remove_after_ms);
    options.stream.batch_records = scenario.stream.batch_records;
    options.stream.rate_bytes_per_s = scenario.stream.rate_bytes_per_s;
    options.stream.max_transfers = scenario.stream.max_transfers;
    // The node's network goes through the auditor, which judges every
    // reply its endpoint accepts.
    Environment env = context.env;
    auditor_ = std::make_unique<RpcAuditor>(
        env.network, env.node_id,
        [checker](const std::string& violation) { checker->Report(violation); });
    env.network = auditor_.get();
    Result<std::unique_ptr<Node>> node =
        Node::Open(std::move(options), env, context.scheduler, context.process);
    MKS_ASSERT_MSG(node.ok(), node.status().ToString());
    node_ = std::move(*node);
    scheduler_ = context.scheduler;
    process_ = context.process;
    auditor_->Watch(&node_->rpc());
    checker_ = checker;
    checker->AttachDisk(context.env.node_id, context.env.disk);
    checker->NodeStarted(context.env.node_id, node_.get());
    // A node whose metadata was lost to damage has no ring until the
    // leader sends its snapshot.
    if (node_->ring() != nullptr) checker->CheckRing(context.env.node_id, *node_->ring());
    node_->set_on_ring([checker, id = context.env.node_id](const Ring& ring) {
      checker->CheckRing(id, ring);
    });
    node_->coordinator().set_canaries(canaries.coordinator);
    node_->replica().set_canaries(canaries.replica);
    node_->stream().set_canaries(canaries.stream);
  }

  ~KvNode() override { checker_->NodeStopped(node_->id()); }

  std::vector<std::pair<std::string, uint64_t>> Counters() const override {
    const CoordinatorStats& c = node_->coordinator().stats();
    const ReplicaStats& r = node_->replica().stats();
    return {{"read_repairs", c.read_repairs_foreground + c.read_repairs_background},
            {"quorum_failures", c.quorum_failures},
            {"damaged_reads", r.gets_damaged},
            {"damaged_repairs", c.damaged_repairs},
            {"damaged_dropped", r.damaged_dropped},
            {"rpc_replies_stale", node_->rpc().stats().replies_stale},
            {"gossip_deaths_declared",
             node_->gossip() != nullptr ? node_->gossip()->stats().deaths_declared : 0},
            {"gossip_refutations",
             node_->gossip() != nullptr ? node_->gossip()->stats().refutations : 0},
            {"replica_puts", r.puts},
            {"replica_puts_refused", r.puts_refused},
            {"replica_puts_busy", r.puts_busy},
            {"replica_puts_expired", r.puts_expired},
            {"group_commits", r.group_commits},
            {"group_commit_puts", r.group_commit_puts},
            {"raft_elections", node_->raft().stats().elections_started},
            {"raft_terms_led", node_->raft().stats().terms_led},
            {"raft_step_downs_check_quorum", node_->raft().stats().step_downs_check_quorum},
            {"raft_snapshots_installed", node_->raft().stats().snapshots_installed},
            {"raft_entries_truncated", node_->raft().stats().entries_truncated},
            {"epoch_advances_proposed", node_->stats().epoch_advances_proposed},
            {"stream_partitions_copied", node_->stream().stats().partitions_copied},
            {"stream_records_pulled", node_->stream().stats().records_pulled},
            {"stream_resumed", node_->stream().stats().resumed},
            {"stream_partitions_dropped", node_->stream().stats().partitions_dropped},
            {"replica_fenced", r.fenced},
            {"coordinator_stale_retries", c.stale_retries},
            {"coordinator_pending_writes", c.pending_writes},
            {"transitions_finished", node_->stats().finishes_applied}};
  }

  gossip::Gossip* gossip() override { return node_->gossip(); }
  const raft::Raft* raft() const override { return &node_->raft(); }
  void RequestRemove(NodeId member) override {
    Node* const node = node_.get();
    runtime::Scheduler* const scheduler = scheduler_;
    scheduler_->Spawn(process_, "sim.remove", [node, scheduler, member] {
      for (;;) {
        const Result<uint64_t> removed = node->RemoveMember(member, /*force=*/false);
        // Refused for good: it is the last member.
        if (removed.ok() || removed.status().IsInvalidArgument()) return;
        scheduler->SleepFor(200 * kMsNanos);
      }
    });
  }
  const ClusterState* cluster_state() const override { return &node_->cluster(); }

  std::string ConvergenceDigest() const override {
    std::string digest;
    // Every partition the store holds records of, owned or not: the
    // checker wants each key on its replicas and nowhere else.
    for (PartitionId partition = 0; partition < node_->options().ring.partition_count;
         ++partition) {
      const Status visited = node_->store().ForEachInPartition(
          partition, [&](std::string_view key, const Version& version) {
            PutFixed32(&digest, partition);
            PutFixed32(&digest, static_cast<uint32_t>(key.size()));
            digest.append(key);
            PutFixed64(&digest, version.timestamp.physical_ms);
            PutFixed32(&digest, version.timestamp.logical);
            PutFixed32(&digest, version.origin);
            digest.push_back(version.tombstone ? 1 : 0);
            PutFixed32(&digest, static_cast<uint32_t>(version.value.size()));
            digest.append(version.value);
            return true;
          });
      // A node that cannot read its own records has not converged; the
      // digest says so with a record no other replica can hold.
      if (!visited.ok()) {
        PutFixed32(&digest, partition);
        const std::string what = "unreadable: " + visited.ToString();
        PutFixed32(&digest, static_cast<uint32_t>(what.size()));
        digest.append(what);
        digest.append(std::string(8 + 4 + 4 + 1 + 4, '\0'));
      }
    }
    return digest;
  }

 private:
  // Declared first: outlives the node, whose endpoint sends through it.
  std::unique_ptr<RpcAuditor> auditor_;
  std::unique_ptr<Node> node_;
  runtime::Scheduler* scheduler_ = nullptr;
  runtime::ProcessId process_ = 0;
  KvChecker* checker_ = nullptr;
};

// ---- Clients ----

class KvClient final : public WorkloadClient {
 public:
  // `replicas` is the ring's N; `default_read` and `default_write` the
  // cluster's default levels, which requests without a level get.
  KvClient(const ClientContext& context, uint32_t replicas,
           Consistency default_read, Consistency default_write)
      : context_(context),
        replicas_(replicas),
        default_read_(default_read),
        default_write_(default_write),
        env_(context.env),
        rpc_(context.scheduler, context.process, env_.network, env_.node_id,
             RpcOptions{env_.random.Next64() | 1}) {
    MKS_ASSERT(context.workload != nullptr && context.history != nullptr);
    MKS_ASSERT(!context.nodes.empty());
    context_.scheduler->Spawn(context_.process, "workload", [this] { Loop(); });
  }

  void Stop() override { stopped_ = true; }
  bool Idle() const override { return stopped_ && swept_ && !in_flight_; }

 private:
  void Loop() {
    const Workload& w = *context_.workload;
    const int64_t interval_ns = 1'000'000'000LL / w.ops_per_second;
    while (!stopped_) {
      context_.scheduler->SleepFor(
          env_.random.Range(interval_ns / 2, interval_ns + interval_ns / 2));
      if (stopped_) break;
      Operation op = RandomOperation(w);
      const std::vector<Consistency>& levels =
          op.kind == OperationKind::kRead ? w.read_levels : w.write_levels;
      const Consistency level = levels.empty()
                                    ? Consistency::Default()
                                    : levels[env_.random.Uniform(levels.size())];
      RunOne(std::move(op), level);
    }
    // One client sweeps for all: the world checks convergence only when
    // every client is idle, and staggered passes of several clients could
    // leave no such moment.
    if (env_.node_id != kFirstClientId) {
      swept_ = true;
      return;
    }
    // Pass after pass: a write still in flight when one pass read its key
    // (a clogged or slow message) lands after it, and only a later pass
    // repairs it. The world checks convergence between passes.
    for (;;) {
      Sweep(w);
      swept_ = true;
      context_.scheduler->SleepFor(kSweepPauseNanos);
    }
  }

  Operation RandomOperation(const Workload& w) {
    Operation op;
    DrawKeyAndKind(w, env_.random, &op);
    return op;
  }

  // Reads every key at ALL until each read succeeds (see the file comment).
  void Sweep(const Workload& w) {
    for (uint32_t k = 0; k < w.key_space; ++k) {
      for (;;) {
        Operation op;
        op.key = "k";
        op.key += std::to_string(k);
        op.kind = OperationKind::kRead;
        if (RunOne(std::move(op), Consistency::All()) == Outcome::kOk) break;
        context_.scheduler->SleepFor(kSweepRetryNanos);
      }
    }
  }

  Outcome RunOne(Operation op, Consistency level) {
    const Workload& w = *context_.workload;
    op.client = env_.node_id;
    op.id = ++next_id_;
    op.node = context_.nodes[env_.random.Uniform(context_.nodes.size())];
    const bool is_read = op.kind == OperationKind::kRead;
    const bool is_default = level.level == ConsistencyLevel::kDefault;
    op.quorum = RequiredCount(
        is_default ? (is_read ? default_read_ : default_write_) : level, replicas_);
    proto::ClientRequest request;
    request.set_key(op.key);
    if (!is_default) request.set_consistency(ToString(level));
    if (op.kind == OperationKind::kWrite) {
      op.value = "c" + std::to_string(op.client) + "." + std::to_string(op.id) + ".";
      const auto size = static_cast<size_t>(
          env_.random.Range(w.value_bytes_min, w.value_bytes_max));
      if (op.value.size() < size) op.value.append(size - op.value.size(), 'v');
      request.set_value(op.value);
    }
    const char* method = op.kind == OperationKind::kRead    ? "client.get"
                         : op.kind == OperationKind::kWrite ? "client.put"
                                                            : "client.delete";
    op.invoke_ns = context_.scheduler->NowNanos();
    context_.history->Invoke(op);
    in_flight_ = true;
    Result<std::string> reply = rpc_.CallAndWait(
        op.node, method, request.SerializeAsString(), w.request_timeout_ms * kMsNanos);
    in_flight_ = false;
    op.complete_ns = context_.scheduler->NowNanos();
    Finish(&op, reply);
    context_.history->Complete(op);
    return op.outcome;
  }

  static void Finish(Operation* op, const Result<std::string>& reply) {
    const bool is_read = op->kind == OperationKind::kRead;
    if (!reply.ok()) {
      // A refused request changed nothing. A write short of its quorum, or
      // one whose reply never came, may still have been applied somewhere.
      const bool refused = reply.status().IsInvalidArgument();
      op->outcome = is_read || refused ? Outcome::kFailed : Outcome::kUnknown;
      if (is_read) op->value.clear();
      return;
    }
    proto::ClientResponse response;
    MKS_ASSERT(response.ParseFromString(*reply));
    op->outcome = Outcome::kOk;
    if (response.has_version()) {
      const proto::Version& version = response.version();
      op->version_timestamp = Timestamp{version.timestamp().physical_ms(),
                                        version.timestamp().logical()};
      op->version_origin = version.origin_node();
      op->version_tombstone = version.tombstone();
      if (is_read) op->value = version.value();
    } else if (is_read) {
      op->value.clear();
    }
  }

  ClientContext context_;
  const uint32_t replicas_;
  const Consistency default_read_;
  const Consistency default_write_;
  Environment env_;
  RpcEndpoint rpc_;
  bool stopped_ = false;
  bool swept_ = false;     // at least one liveness pass completed
  bool in_flight_ = false;  // an operation awaits its reply
  uint64_t next_id_ = 0;
};

}  // namespace

// ---- Checker ----

KvChecker::KvChecker(Ring ring)
    : ring_(std::move(ring)),
      // The answers a damaged replica's repair needs (core/coordinator.h),
      // by the checker's own arithmetic.
      repair_answers_(std::min(ring_.replication_factor() - 1,
                               RequiredCount(Consistency::Quorum(), ring_.replication_factor()))) {}

std::string KvChecker::Story(const Operation& op) {
  static constexpr const char* kKinds[] = {"read", "write", "delete"};
  std::string story = std::string(kKinds[static_cast<int>(op.kind)]) + " of " +
                      op.key + " by client " + std::to_string(op.client) +
                      " op " + std::to_string(op.id) + " via node " +
                      std::to_string(op.node);
  if (op.quorum != 0) {
    story += (op.kind == OperationKind::kRead ? " at R=" : " at W=") +
             std::to_string(op.quorum);
  }
  story += " [" + std::to_string(op.invoke_ns / kMsNanos) + " ms";
  if (op.complete_ns != 0) story += ".." + std::to_string(op.complete_ns / kMsNanos) + " ms";
  story += "]";
  if (op.version_origin != kNoNode) {
    story += " version " + ToString(op.version_timestamp) + "@" +
             std::to_string(op.version_origin) +
             (op.version_tombstone ? " (tombstone)" : "");
  }
  return story;
}

void KvChecker::Violation(const Operation& op, const std::string& what) {
  violations_.push_back(Story(op) + ": " + what);
}

namespace {

std::string ListString(std::span<const NodeId> nodes) {
  std::string out = "[";
  for (size_t i = 0; i < nodes.size(); ++i) {
    out += (i > 0 ? ", " : "") + std::to_string(nodes[i]);
  }
  return out + "]";
}

// Returns how `ring` differs from `reference`, or "" when it does not.
std::string RingDifference(const Ring& ring, const Ring& reference) {
  if (ring.member_list() != reference.member_list()) {
    return "members in seat order " + ListString(ring.member_list().by_seat()) +
           ", not " + ListString(reference.member_list().by_seat());
  }
  // The epoch advances with time (core/cluster_state.h); placement does not
  // depend on it, and nodes that applied the same index agree on it (the
  // RaftChecker's ring agreement).
  if (ring.partition_count() != reference.partition_count() ||
      ring.replication_factor() != reference.replication_factor()) {
    return "Q or N differ";
  }
  for (PartitionId p = 0; p < reference.partition_count(); ++p) {
    const std::span<const NodeId> list = ring.PreferenceList(p);
    const std::span<const NodeId> expected = reference.PreferenceList(p);
    if (!std::equal(list.begin(), list.end(), expected.begin(), expected.end())) {
      return "partition " + std::to_string(p) + " lists " + ListString(list) +
             ", not " + ListString(expected);
    }
  }
  return "";
}

// A store over `disk` for reading what a node holds; never writes. The
// partitioner must be the nodes' own.
Store ReaderOf(Disk* disk, uint32_t partition_count) {
  return Store(disk,
               [partition_count](std::string_view key) {
                 return Ring::PartitionOfKey(key, partition_count);
               },
               StoreOptions{});
}

// The user key of a store record's disk key, or nullopt for the store's
// other keys (its ceiling) and for other users of the disk.
std::optional<std::string> UserKeyOfRecord(std::string_view disk_key) {
  const std::string key_space = StoreOptions{}.key_space;
  constexpr size_t kPartitionBytes = 2;
  if (!disk_key.starts_with(key_space) ||
      disk_key.size() <= key_space.size() + kPartitionBytes) {
    return std::nullopt;
  }
  return std::string(disk_key.substr(key_space.size() + kPartitionBytes));
}

}  // namespace

void KvChecker::CheckRing(NodeId node, const Ring& ring) {
  if (latest_ring_ == nullptr || ring.epoch() > latest_ring_->epoch()) {
    latest_ring_ = std::make_shared<const Ring>(ring);
  }
  if (membership_changes_ && ring.partition_count() == ring_.partition_count() &&
      ring.replication_factor() == std::min<uint32_t>(ring_.replication_factor(),
                                                      ring.member_list().size())) {
    return;
  }
  const std::string difference = RingDifference(ring, ring_);
  if (difference.empty()) return;
  violations_.push_back("ring agreement: node " + std::to_string(node) +
                        " computed another ring at epoch " +
                        std::to_string(ring.epoch()) + ": " + difference);
}

void KvChecker::AttachDisk(NodeId id, Disk* disk) {
  MKS_ASSERT(disk != nullptr);
  NodeView& view = nodes_[id];
  MKS_ASSERT(view.disk == nullptr || view.disk == disk);
  view.disk = disk;
}

void KvChecker::NodeStarted(NodeId id, const Node* node) {
  MKS_ASSERT(node != nullptr);
  NodeView& view = nodes_[id];
  MKS_ASSERT_MSG(view.node == nullptr, "node " + std::to_string(id) + " started twice");
  MKS_ASSERT_MSG(view.disk != nullptr, "node " + std::to_string(id) + " has no disk");
  view.node = node;
  ++view.incarnation;
  // A restarted node forgets what its reads taught its clock beyond its
  // durable ceiling; causality holds per incarnation.
  view.causal_floor.reset();
  view.causal_story.clear();
  CheckStampCeiling(id, "at start of incarnation " + std::to_string(view.incarnation));
}

void KvChecker::NodeStopped(NodeId id) {
  auto it = nodes_.find(id);
  MKS_ASSERT(it != nodes_.end() && it->second.node != nullptr);
  it->second.node = nullptr;
}

void KvChecker::CheckStampCeiling(NodeId id, std::string_view when) {
  const NodeView& view = nodes_.at(id);
  Store reader = ReaderOf(view.disk, ring_.partition_count());
  const Status ceiling = reader.CheckCeiling();
  if (ceiling.ok()) return;
  violations_.push_back("stamp ceiling: node " + std::to_string(id) + " " +
                        std::string(when) + ": " + ceiling.message());
}

uint64_t KvChecker::ClockRejections(NodeId id) const {
  auto it = nodes_.find(id);
  if (it == nodes_.end() || it->second.node == nullptr) return 0;
  return it->second.node->hlc().stats().remote_rejections;
}

void KvChecker::DiskDamaged(NodeId node, std::string_view disk_key, int64_t now_ns) {
  (void)node;
  const std::optional<std::string> key = UserKeyOfRecord(disk_key);
  if (!key.has_value()) return;
  keys_[*key].damaged_ns.push_back(now_ns);
}

void KvChecker::Invoke(const Operation& op) {
  KeyHistory& history = keys_[op.key];
  const uint32_t n = ring_.replication_factor();
  MKS_ASSERT_GE(op.quorum, 1u);
  MKS_ASSERT_LE(op.quorum, n);
  auto node = nodes_.find(op.node);
  const uint64_t incarnation =
      node == nodes_.end() || node->second.node == nullptr ? 0 : node->second.incarnation;
  if (op.kind == OperationKind::kRead) {
    ReadStart start{{}, incarnation, ClockRejections(op.node), Current().epoch()};
    for (const auto& [w, floor] : history.acked_by_quorum) {
      if (op.quorum + w > n) start.floors.push_back(floor);
    }
    reads_[{op.client, op.id}] = std::move(start);
    return;
  }
  WriteStart start;
  start.incarnation = incarnation;
  if (incarnation != 0) {
    start.floor = node->second.causal_floor;
    start.story = node->second.causal_story;
  }
  writes_[{op.client, op.id}] = std::move(start);
  if (op.kind == OperationKind::kDelete) {
    history.delete_invoked = true;
  } else {
    history.invoked_values.emplace(op.value, KeyHistory::Invoked{Story(op), op.node});
  }
}

void KvChecker::Complete(const Operation& op) {
  KeyHistory& history = keys_[op.key];
  if (op.kind == OperationKind::kRead) {
    auto start = reads_.find({op.client, op.id});
    MKS_ASSERT(start != reads_.end());
    if (op.outcome == Outcome::kOk) {
      CheckRead(op, start->second);
      CheckReadRepaired(op, start->second);
      NoteCausalFloor(op, start->second);
    }
    reads_.erase(start);
    return;
  }
  if (op.outcome == Outcome::kOk) CheckWrite(op);
  writes_.erase({op.client, op.id});
  if (op.outcome != Outcome::kOk || op.version_origin == kNoNode) return;
  const Stamp stamp{op.version_timestamp, op.version_origin};
  const std::string value = op.kind == OperationKind::kDelete ? "" : op.value;
  auto [it, inserted] = history.stamped.emplace(stamp, std::make_pair(value, Story(op)));
  if (!inserted) {
    Violation(op, "reused the version of " + it->second.second);
  }
  Floor& floor = history.acked_by_quorum[op.quorum];
  if (floor.story.empty() || floor.stamp < stamp) {
    floor = Floor{stamp, Story(op), op.invoke_ns, op.quorum};
  }
}

void KvChecker::CheckWrite(const Operation& write) {
  if (write.version_origin == kNoNode) {
    Violation(write, "acknowledged without a version");
    return;
  }
  auto start = writes_.find({write.client, write.id});
  MKS_ASSERT(start != writes_.end());
  const WriteStart& before = start->second;
  if (!before.floor.has_value()) return;
  // Its coordinator answered, so the incarnation that took the write is
  // the one it was invoked on (a restart would have lost the reply).
  const Stamp stamp{write.version_timestamp, write.version_origin};
  if (stamp > *before.floor) return;
  Violation(write, "causality: stamped at or below the version " +
                       ToString(before.floor->timestamp) + "@" +
                       std::to_string(before.floor->origin) + " that " + before.story +
                       " returned through the same node before this write began");
}

std::string KvChecker::PhantomCheck(const std::string& key, const Stamp& stamp,
                                    bool tombstone,
                                    const std::string& value) const {
  auto history = keys_.find(key);
  if (history == keys_.end()) return "no write of the key was ever invoked";
  if (tombstone) {
    if (!history->second.delete_invoked) return "a tombstone, but no delete was invoked";
  } else if (history->second.invoked_values.count(value) == 0) {
    return "a value no write ever carried";
  }
  auto known = history->second.stamped.find(stamp);
  if (known != history->second.stamped.end() &&
      known->second.first != (tombstone ? "" : value)) {
    return "a value that differs from the one " + known->second.second + " wrote";
  }
  if (!tombstone) {
    const KeyHistory::Invoked& write = history->second.invoked_values.at(value);
    if (write.coordinator != stamp.origin) {
      return "the value of " + write.story + " stamped by node " +
             std::to_string(stamp.origin) + ", not by the node it was sent to";
    }
  }
  return "";
}

bool KvChecker::WaivedForBitRot(const KeyHistory& history, const Floor& floor) const {
  if (floor.quorum + repair_answers_ > ring_.replication_factor()) return false;
  for (int64_t damaged_ns : history.damaged_ns) {
    if (damaged_ns >= floor.invoke_ns) return true;
  }
  return false;
}

void KvChecker::CheckRead(const Operation& read, const ReadStart& start) {
  const bool returned = read.version_origin != kNoNode;
  const Stamp stamp{read.version_timestamp, read.version_origin};
  if (returned) {
    const std::string phantom =
        PhantomCheck(read.key, stamp, read.version_tombstone, read.value);
    if (!phantom.empty()) Violation(read, "phantom read: " + phantom);
  }
  const KeyHistory& history = keys_.at(read.key);
  for (const Floor& floor : start.floors) {
    if (returned && !(stamp < floor.stamp)) continue;
    if (WaivedForBitRot(history, floor)) {
      ++waived_for_bit_rot_;
      continue;
    }
    Violation(read, std::string("stale read: ") +
                        (returned ? "returned an older version than "
                                  : "found no version, but ") +
                        floor.story + " was acknowledged before the read began");
  }
}

void KvChecker::CheckReadRepaired(const Operation& read, const ReadStart& start) {
  if (read.version_origin == kNoNode) return;
  const Ring& ring = Current();
  // The key's replicas changed while the read ran: the ones it repaired
  // may not be the ones that serve it now.
  if (ring.FenceEpoch(ring.PartitionOf(read.key)) > start.ring_epoch) return;
  const Stamp returned{read.version_timestamp, read.version_origin};
  uint32_t holders = 0;
  std::string held;
  for (NodeId replica : ring.ReplicasForKey(read.key)) {
    auto node = nodes_.find(replica);
    if (node == nodes_.end() || node->second.disk == nullptr) continue;  // holds nothing
    Store reader = ReaderOf(node->second.disk, ring_.partition_count());
    const Result<Version> version = reader.Get(read.key);
    if (version.status().IsCorruption()) {
      ++holders;  // rotted since: whatever it held, the read is not to blame
      held += " " + std::to_string(replica) + ":damaged";
      continue;
    }
    if (!version.ok()) {
      held += " " + std::to_string(replica) + ":none";
      continue;
    }
    const Stamp stamp{version->timestamp, version->origin};
    held += " " + std::to_string(replica) + ":" + ToString(stamp.timestamp) + "@" +
            std::to_string(stamp.origin);
    if (stamp >= returned) ++holders;
  }
  if (holders >= read.quorum) return;
  Violation(read, "read repair: the version returned is held by " +
                      std::to_string(holders) + " replicas, R=" +
                      std::to_string(read.quorum) + " needed (replicas hold" + held + ")");
}

void KvChecker::NoteCausalFloor(const Operation& read, const ReadStart& start) {
  if (read.version_origin == kNoNode || start.incarnation == 0) return;
  NodeView& view = nodes_.at(read.node);
  // Restarted since, or its clock refused a timestamp as too far ahead
  // (which the coordinator may not fold in): no promise to check.
  if (view.node == nullptr || view.incarnation != start.incarnation) return;
  if (ClockRejections(read.node) != start.clock_rejections) return;
  const Stamp stamp{read.version_timestamp, read.version_origin};
  if (view.causal_floor.has_value() && stamp <= *view.causal_floor) return;
  view.causal_floor = stamp;
  view.causal_story = Story(read);
}

Status KvChecker::CheckConverged(const std::vector<std::string>& digests) {
  MKS_ASSERT_GE(digests.size(), Current().members().back());
  for (const auto& [id, view] : nodes_) {
    if (view.disk != nullptr) CheckStampCeiling(id, "at a convergence check");
  }
  std::vector<NodeRecords> nodes;
  for (const std::string& digest : digests) nodes.push_back(DecodeDigest(digest));
  const Ring& ring = Current();
  if (ring.InTransition()) return Status::Unavailable("a membership change is in progress");
  // Each partition: held by its replicas and no other node.
  for (size_t index = 0; index < nodes.size(); ++index) {
    const NodeId id = static_cast<NodeId>(index + 1);
    for (const auto& [partition, records] : nodes[index]) {
      if (records.empty() || ring.IsReplica(id, partition)) continue;
      return Status::Unavailable("node " + std::to_string(id) + " holds " +
                                 std::to_string(records.size()) + " records of partition " +
                                 std::to_string(partition) + ", which it does not replicate");
    }
  }
  // Each partition: every replica holds the same records.
  std::map<std::string, DigestRecord> converged;  // key -> its one version
  for (PartitionId partition = 0; partition < ring.partition_count(); ++partition) {
    const std::span<const NodeId> replicas = ring.PreferenceList(partition);
    const NodeRecords& first = nodes.at(replicas[0] - 1);
    const auto first_it = first.find(partition);
    const std::vector<DigestRecord> empty;
    const std::vector<DigestRecord>& reference = first_it == first.end() ? empty : first_it->second;
    for (NodeId replica : replicas.subspan(1)) {
      const NodeRecords& other = nodes.at(replica - 1);
      const auto it = other.find(partition);
      const std::vector<DigestRecord>& held = it == other.end() ? empty : it->second;
      if (held != reference) {
        return Status::Unavailable(
            "partition " + std::to_string(partition) + ": node " +
            std::to_string(replica) + " holds " + std::to_string(held.size()) +
            " records, node " + std::to_string(replicas[0]) + " " +
            std::to_string(reference.size()) + ", or they differ");
      }
    }
    for (const DigestRecord& record : reference) converged[record.key] = record;
  }
  // The converged state against the history.
  for (const auto& [key, history] : keys_) {
    auto it = converged.find(key);
    if (it != converged.end()) {
      const DigestRecord& record = it->second;
      const Stamp stamp{record.timestamp, record.origin};
      const std::string phantom = PhantomCheck(key, stamp, record.tombstone, record.value);
      if (!phantom.empty()) {
        return Status::Corruption("phantom: key " + key + " converged on " + phantom);
      }
    }
    for (const auto& [w, floor] : history.acked_by_quorum) {
      if (it != converged.end()) {
        const Stamp stamp{it->second.timestamp, it->second.origin};
        if (!(stamp < floor.stamp)) continue;
      }
      if (WaivedForBitRot(history, floor)) continue;
      if (it == converged.end()) {
        return Status::Corruption("lost acknowledged write: key " + key +
                                  " converged with no version, but " + floor.story +
                                  " was acknowledged");
      }
      return Status::Corruption(
          "lost acknowledged write: key " + key + " converged on version " +
          ToString(it->second.timestamp) + "@" + std::to_string(it->second.origin) +
          ", older than " + floor.story);
    }
  }
  return Status::Ok();
}

// ---- Protocol ----

namespace {

// Every canary: its name and the flag it sets. The one list both
// KvCanaryNames and EnableKvCanary read.
struct CanaryFlag {
  const char* name;
  bool& (*flag)(KvCanaries&);
};
constexpr CanaryFlag kCanaryFlags[] = {
    {"ack_before_quorum", [](KvCanaries& c) -> bool& { return c.coordinator.ack_before_quorum; }},
    {"skip_read_repair", [](KvCanaries& c) -> bool& { return c.coordinator.skip_read_repair; }},
    {"winner_by_value", [](KvCanaries& c) -> bool& { return c.coordinator.winner_by_value; }},
    {"ignore_tombstones", [](KvCanaries& c) -> bool& { return c.coordinator.ignore_tombstones; }},
    {"lose_synced_writes", [](KvCanaries& c) -> bool& { return c.replica.no_sync; }},
    {"overlap_commits", [](KvCanaries& c) -> bool& { return c.replica.overlap_commits; }},
    {"ack_in_flight", [](KvCanaries& c) -> bool& { return c.replica.ack_in_flight; }},
    {"ack_shed_puts", [](KvCanaries& c) -> bool& { return c.replica.ack_shed_puts; }},
    {"ring_by_ids", [](KvCanaries& c) -> bool& { return c.ring_by_ids; }},
    {"clock_ignores_reads", [](KvCanaries& c) -> bool& { return c.coordinator.clock_ignores_reads; }},
    {"reply_before_repair", [](KvCanaries& c) -> bool& { return c.coordinator.reply_before_repair; }},
    {"damaged_as_missing", [](KvCanaries& c) -> bool& { return c.replica.damaged_as_missing; }},
    {"raft_vote_before_sync", [](KvCanaries& c) -> bool& { return c.raft.vote_before_sync; }},
    {"raft_commit_old_term", [](KvCanaries& c) -> bool& { return c.raft.commit_old_term; }},
    {"raft_keep_conflicting_suffix",
     [](KvCanaries& c) -> bool& { return c.raft.keep_conflicting_suffix; }},
    {"write_skip_pending",
     [](KvCanaries& c) -> bool& { return c.coordinator.skip_pending_replicas; }},
    {"stream_flip_before_last_batch",
     [](KvCanaries& c) -> bool& { return c.stream.report_after_first_batch; }},
    {"stream_drop_before_flip", [](KvCanaries& c) -> bool& { return c.stream.drop_before_flip; }},
};

}  // namespace

const std::vector<std::string>& KvCanaryNames() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> all;
    for (const CanaryFlag& canary : kCanaryFlags) all.emplace_back(canary.name);
    return all;
  }();
  return names;
}

Status EnableKvCanary(std::string_view name, KvCanaries* canaries) {
  MKS_ASSERT(canaries != nullptr);
  for (const CanaryFlag& canary : kCanaryFlags) {
    if (name != canary.name) continue;
    canary.flag(*canaries) = true;
    return Status::Ok();
  }
  if (EnableGossipCanary(name, &canaries->gossip).ok()) return Status::Ok();
  return Status::InvalidArgument("unknown kv canary '" + std::string(name) + "'");
}

bool ChangesMembership(const Scenario& scenario) {
  if (scenario.raft.dead_remove_after_ms > 0) return true;
  return std::any_of(scenario.timeline.begin(), scenario.timeline.end(),
                     [](const TimelineEvent& event) {
                       return event.action == TimelineAction::kJoin ||
                              event.action == TimelineAction::kRemove ||
                              event.action == TimelineAction::kDecommission;
                     });
}

Result<std::unique_ptr<KvProtocol>> KvProtocol::Make(const Scenario& scenario) {
  Result<std::vector<NodeId>> seats = SeatOrder(scenario);
  if (!seats.ok()) {
    return Status::InvalidArgument(scenario.path + ": " + seats.status().message());
  }
  Result<MemberList> members = MemberList::FromSeats(std::move(*seats));
  MKS_RETURN_IF_ERROR(members.status());
  Result<Ring> ring = Ring::Build(*members, 1,
                                  RingOptions{scenario.partitions, scenario.replicas});
  MKS_RETURN_IF_ERROR(ring.status());
  const uint32_t n = ring->replication_factor();
  std::vector<Consistency> levels = scenario.workload.read_levels;
  levels.insert(levels.end(), scenario.workload.write_levels.begin(),
                scenario.workload.write_levels.end());
  for (const Consistency& level : {scenario.read_consistency, scenario.write_consistency}) {
    if (level.level == ConsistencyLevel::kDefault) {
      return Status::InvalidArgument(scenario.path + ": the default R and W need a level");
    }
    levels.push_back(level);
  }
  for (const Consistency& level : levels) {
    if (level.level == ConsistencyLevel::kCount && (level.count < 1 || level.count > n)) {
      return Status::InvalidArgument(scenario.path + ": R and W must be in 1.." +
                                     std::to_string(n));
    }
  }
  if (ChangesMembership(scenario) && scenario.nodes < scenario.replicas) {
    return Status::InvalidArgument(
        scenario.path + ": joins and removals need at least `replicas` first members (the "
                        "checker counts quorums on a fixed N)");
  }
  if (n == 1 && scenario.family(FaultFamily::kBitRot).enabled) {
    return Status::InvalidArgument(
        scenario.path + ": bit_rot with one replica destroys the only copy of a "
                        "record, which no store survives; use replicas >= 2");
  }
  KvCanaries canaries;
  for (const std::string& name : scenario.canaries) {
    MKS_RETURN_IF_ERROR(EnableKvCanary(name, &canaries));
  }
  std::unique_ptr<KvProtocol> protocol(new KvProtocol(std::move(*ring), scenario));
  protocol->set_canaries(canaries);
  return protocol;
}

std::unique_ptr<ProtocolNode> KvProtocol::StartNode(const NodeContext& context) {
  return std::make_unique<KvNode>(context, members_, canaries_, &checker_);
}

std::unique_ptr<WorkloadClient> KvProtocol::StartClient(const ClientContext& context) {
  return std::make_unique<KvClient>(context, replicas_, default_read_, default_write_);
}

}  // namespace mks::sim
