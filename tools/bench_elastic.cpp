// bench-elastic: what one join costs a simulated kv cluster (core/cluster_state.h,
// core/stream.h, core/coordinator.h) that already holds data: 3 -> 4 and
// 16 -> 17 members, Q = 256 partitions, N = 3, R = W = QUORUM, no faults.
//
// A run: loader clients write each key of a key space of 100000 keys once
// (the bench's own client, below: key after key of its slice, one request
// in flight, retried until acknowledged), as fast as the cluster answers;
// steady clients read and write the same keys at a fixed rate all along
// (the store's KvClient, the scenario's workload). At kJoin, well after the
// loaders finished, a timeline `join` boots one standby node through node
// 1, and the bench polls the metadata log's leader every 5 ms until the
// join's transition is over (no transition, the newcomer NORMAL). Measured:
//
//  1. Replicas moved against the minimum: the partitions every node
//     streamed (stream_partitions_copied, summed over the nodes) against
//     the newcomer's share of the final ring (Ring::ReplicaCountOf), the
//     fewest partition replicas any join can move (the target: <= 1.1);
//     and the records the streams pulled (each pending replica copies a
//     partition from every serving replica, core/stream.h).
//  2. The change's duration: simulated seconds from the join event to the
//     transition's end on the leader; and, within it, until the leader
//     seated the newcomer JOINING (the transition's begin).
//  3. The steady clients' p99 latency and error rate (not OK: failed or
//     unknown) during the change (operations invoked between the join and
//     the end) against the steady state before it (invoked from kSettle
//     after the last loader finished until the join).
//
// The figures per case are the p50 over the seeds (the ratio's max too).
// The bench gives the clients their roles by wrapping the store's protocol,
// and sees every completed operation of the steady clients by standing
// between them and the world's history; the world and the checkers run as
// in mks-sim (the loaders' writes are checked like any other), and a run
// that breaks an invariant aborts.
//
// Usage: bench-elastic [seeds]   (default 3). Runs seeds on two threads.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/assertions.h"
#include "core/cluster_state.h"
#include "core/proto/mks.pb.h"
#include "core/ring.h"
#include "core/rpc.h"
#include "sim/protocol.h"
#include "sim/trace.h"
#include "sim/world.h"
#include "tools/bench_seeds.h"

namespace {

using mks::ClusterState;
using mks::MembershipState;
using mks::NodeId;
using mks::Ring;
using mks::RingOptions;
using mks::Result;
using mks::sim::ClientContext;
using mks::sim::Operation;
using mks::sim::OperationKind;
using mks::sim::Outcome;
using mks::sim::Scenario;
using mks::sim::TimelineAction;
using mks::sim::TimelineEvent;
using mks::sim::Workload;
using mks::sim::World;
using mks::tools::OverSeeds;
using mks::tools::Percentile;

constexpr int64_t kMs = 1'000'000;
constexpr int64_t kSecond = 1000 * kMs;
constexpr int64_t kPoll = 5 * kMs;
constexpr uint32_t kPartitions = 256;
constexpr uint32_t kReplicas = 3;
constexpr uint32_t kKeys = 100'000;
// Loaders: each writes every kLoaders-th key, one request in flight.
constexpr uint32_t kLoaders = 128;
// Steady clients: half reads, half writes, kSteadyClients * kSteadyOpsPerSecond
// requests a second in all, before, during and after the change.
constexpr uint32_t kSteadyClients = 4;
constexpr uint32_t kSteadyOpsPerSecond = 200;
constexpr int64_t kSettle = 500 * kMs;  // after the loaders, then the steady state
constexpr int64_t kJoin = 8 * kSecond;  // the timeline's join
constexpr int64_t kLoadBound = kJoin - 1 * kSecond;  // the loaders must be done by then
constexpr int64_t kChangeBound = 120 * kSecond;

Scenario Cluster(uint32_t members) {
  Scenario s;
  s.path = "bench-elastic";
  s.protocol = "kv";
  s.nodes = members;
  s.standby_nodes = 1;
  s.replicas = kReplicas;
  s.partitions = kPartitions;
  s.read_consistency = mks::Consistency::Quorum();
  s.write_consistency = mks::Consistency::Quorum();
  s.duration_ms = 24 * 3600 * 1000;  // the bench drives the world itself
  s.workload.clients = kSteadyClients + kLoaders;
  s.workload.ops_per_second = kSteadyOpsPerSecond;
  s.workload.key_space = kKeys;
  s.workload.read_percent = 50;
  s.workload.write_percent = 50;
  s.workload.delete_percent = 0;
  s.workload.value_bytes_min = 32;
  s.workload.value_bytes_max = 96;
  s.workload.request_timeout_ms = 1000;
  s.network.latency_min_us = 200;
  s.network.latency_max_us = 2000;
  // Production's stream settings (core/stream.h), etcd's Raft defaults.
  s.stream.batch_records = 512;
  s.stream.rate_bytes_per_s = 64ull << 20;
  s.stream.max_transfers = 2;
  s.raft.election_timeout_ms = 1000;
  s.raft.heartbeat_ms = 100;
  s.buggify_enabled = false;
  TimelineEvent join;
  join.at_ms = kJoin / kMs;
  join.action = TimelineAction::kJoin;
  join.nodes = {members + 1};
  join.via = 1;
  s.timeline = {join};
  return s;
}

// One completed operation of a steady client.
struct Sample {
  int64_t invoke_ns = 0;
  int64_t latency_ns = 0;
  bool ok = false;
};

// A loader: writes "k<i>" for i = first, first + stride, ... < kKeys, each
// until acknowledged, at the cluster's default W, and reports each write
// to the history as the store's KvClient does (sim/kv_protocol.cpp: a
// unique value "c<client>.<op>." padded, the stamped version), so the
// checker judges these writes like any other.
class LoaderClient final : public mks::sim::WorkloadClient {
 public:
  LoaderClient(const ClientContext& context, uint32_t first, uint32_t stride,
               uint32_t write_quorum)
      : context_(context),
        env_(context.env),
        rpc_(context.scheduler, context.process, env_.network, env_.node_id,
             mks::RpcOptions{env_.random.Next64() | 1}),
        first_(first),
        stride_(stride),
        write_quorum_(write_quorum) {
    context_.scheduler->Spawn(context_.process, "loader", [this] { Loop(); });
  }
  void Stop() override { stopped_ = true; }
  bool Idle() const override { return (stopped_ || done_ns_ >= 0) && !in_flight_; }
  // When it acknowledged its last key; -1 before.
  int64_t done_ns() const { return done_ns_; }

 private:
  void Loop() {
    const Workload& w = *context_.workload;
    for (uint32_t k = first_; k < kKeys && !stopped_;) {
      Operation op;
      op.client = env_.node_id;
      op.id = ++next_id_;
      op.node = context_.nodes[env_.random.Uniform(context_.nodes.size())];
      op.kind = OperationKind::kWrite;
      op.key = "k";
      op.key += std::to_string(k);
      op.quorum = write_quorum_;
      op.value = "c" + std::to_string(op.client) + "." + std::to_string(op.id) + ".";
      const auto size = static_cast<size_t>(
          env_.random.Range(w.value_bytes_min, w.value_bytes_max));
      if (op.value.size() < size) op.value.append(size - op.value.size(), 'v');
      mks::proto::ClientRequest request;
      request.set_key(op.key);
      request.set_value(op.value);
      op.invoke_ns = context_.scheduler->NowNanos();
      context_.history->Invoke(op);
      in_flight_ = true;
      Result<std::string> reply = rpc_.CallAndWait(op.node, "client.put",
                                                   request.SerializeAsString(),
                                                   w.request_timeout_ms * kMs);
      in_flight_ = false;
      op.complete_ns = context_.scheduler->NowNanos();
      if (reply.ok()) {
        mks::proto::ClientResponse response;
        MKS_ASSERT(response.ParseFromString(*reply));
        op.outcome = Outcome::kOk;
        if (response.has_version()) {
          const mks::proto::Version& version = response.version();
          op.version_timestamp = mks::Timestamp{version.timestamp().physical_ms(),
                                                version.timestamp().logical()};
          op.version_origin = version.origin_node();
          op.version_tombstone = version.tombstone();
        }
      } else {
        // Refused: not applied; short of W or no reply: maybe applied.
        op.outcome = reply.status().IsInvalidArgument() ? Outcome::kFailed : Outcome::kUnknown;
      }
      context_.history->Complete(op);
      if (op.outcome == Outcome::kOk) {
        k += stride_;
      } else {
        context_.scheduler->SleepFor(10 * kMs);  // then the same key again
      }
    }
    if (!stopped_) done_ns_ = context_.scheduler->NowNanos();
  }

  ClientContext context_;
  mks::Environment env_;
  mks::RpcEndpoint rpc_;
  const uint32_t first_;
  const uint32_t stride_;
  const uint32_t write_quorum_;
  uint64_t next_id_ = 0;
  bool stopped_ = false;
  bool in_flight_ = false;
  int64_t done_ns_ = -1;
};

// The store's protocol, whose clients are the scenario's workload for the
// first kSteadyClients (the first of which, in mks-sim, would sweep the
// keys after the run) and loaders for the others. It records what the
// steady clients complete, and passes the whole history on to the world.
class BenchProtocol final : public mks::sim::Protocol, private mks::sim::HistorySink {
 public:
  explicit BenchProtocol(const Scenario& scenario)
      : write_quorum_(mks::sim::RequiredCount(scenario.write_consistency, scenario.replicas)) {
    auto made = mks::sim::MakeProtocol(scenario);
    MKS_ASSERT_MSG(made.ok(), made.status().ToString());
    inner_ = std::move(*made);
  }

  std::string name() const override { return inner_->name(); }
  std::unique_ptr<mks::sim::ProtocolNode> StartNode(
      const mks::sim::NodeContext& context) override {
    return inner_->StartNode(context);
  }
  std::unique_ptr<mks::sim::WorkloadClient> StartClient(const ClientContext& context) override {
    MKS_ASSERT(world_ == nullptr || world_ == context.history);
    world_ = context.history;
    ClientContext mine = context;
    mine.history = this;
    const uint32_t index = context.env.node_id - mks::sim::kFirstClientId;
    if (index < kSteadyClients) return inner_->StartClient(mine);
    auto loader = std::make_unique<LoaderClient>(mine, index - kSteadyClients, kLoaders,
                                                 write_quorum_);
    loaders_.push_back(loader.get());
    return loader;
  }
  mks::sim::Checker& checker() override { return inner_->checker(); }

  // When the last loader acknowledged its last key; -1 while one has not.
  int64_t loaded_ns() const {
    int64_t last = 0;
    for (const LoaderClient* loader : loaders_) {
      if (loader->done_ns() < 0) return -1;
      last = std::max(last, loader->done_ns());
    }
    return last;
  }
  const std::vector<Sample>& samples() const { return samples_; }

 private:
  static bool IsSteady(const Operation& op) {
    return op.client < mks::sim::kFirstClientId + kSteadyClients;
  }
  void Invoke(const Operation& op) override { world_->Invoke(op); }
  void Complete(const Operation& op) override {
    world_->Complete(op);
    if (IsSteady(op)) {
      samples_.push_back(Sample{op.invoke_ns, op.complete_ns - op.invoke_ns,
                                op.outcome == Outcome::kOk});
    }
  }

  const uint32_t write_quorum_;
  std::unique_ptr<mks::sim::Protocol> inner_;
  mks::sim::HistorySink* world_ = nullptr;
  std::vector<LoaderClient*> loaders_;
  std::vector<Sample> samples_;
};

struct Figures {
  double loaded_s = -1;   // when the last loader was done
  double moved = -1;      // partition replicas streamed, all nodes
  double records = -1;    // records pulled by the streams, all nodes
  double share = -1;      // the newcomer's replicas in the final ring
  double ratio = -1;      // moved / share
  double seat_s = -1;     // join event to the newcomer seated (the transition's begin)
  double change_s = -1;   // join event to the transition's end; -1: not in kChangeBound
  double p99_before_ms = -1;
  double p99_during_ms = -1;
  double errors_before = -1;  // fraction of steady operations not OK
  double errors_during = -1;
};

uint64_t CounterOf(const mks::sim::ProtocolNode& node, const std::string& name) {
  for (const auto& [counter, value] : node.Counters()) {
    if (counter == name) return value;
  }
  MKS_ASSERT_MSG(false, "no counter " + name);
  return 0;
}

// p99 latency (ms) and error fraction of the samples invoked in [from, to).
std::pair<double, double> Window(const std::vector<Sample>& samples, int64_t from, int64_t to) {
  std::vector<double> latencies;
  uint64_t errors = 0;
  for (const Sample& s : samples) {
    if (s.invoke_ns < from || s.invoke_ns >= to) continue;
    latencies.push_back(static_cast<double>(s.latency_ns) / kMs);
    if (!s.ok) ++errors;
  }
  if (latencies.empty()) return {-1, -1};
  return {Percentile(latencies, 0.99),
          static_cast<double>(errors) / static_cast<double>(latencies.size())};
}

Figures Measure(uint32_t members, uint64_t seed) {
  const Scenario scenario = Cluster(members);
  BenchProtocol protocol(scenario);
  mks::sim::Tracer tracer;
  World world(scenario, seed, &protocol, &tracer);
  world.Start();
  const NodeId newcomer = members + 1;
  Figures f;

  world.RunUntil(kLoadBound);
  MKS_ASSERT_MSG(world.summary().violations.empty(), world.summary().violations.front());
  const int64_t loaded = protocol.loaded_ns();
  if (loaded < 0) {
    std::fprintf(stderr, "bench-elastic: %u -> %u, seed %llu: the loaders were not done in %lld s\n",
                 members, members + 1, static_cast<unsigned long long>(seed),
                 static_cast<long long>(kLoadBound / kSecond));
    return f;
  }
  f.loaded_s = static_cast<double>(loaded) / kSecond;
  world.RunUntil(kJoin);

  // The join event fired at kJoin; poll the leader until its transition ended.
  int64_t seated_at = -1;  // when the leader first seated the newcomer (JOINING)
  int64_t finished = -1;
  const ClusterState* final_state = nullptr;
  for (int64_t t = kJoin + kPoll; t <= kJoin + kChangeBound; t += kPoll) {
    world.RunUntil(t);
    MKS_ASSERT_MSG(world.summary().violations.empty(), world.summary().violations.front());
    const std::optional<NodeId> leader = world.raft_checker().Leader();
    if (!leader.has_value() || world.node(*leader) == nullptr) continue;
    const ClusterState* state = world.node(*leader)->cluster_state();
    const std::optional<mks::ClusterMember> seated = state->Seated(newcomer);
    if (seated.has_value() && seated_at < 0) seated_at = t;
    if (state->transition() == nullptr && seated.has_value() &&
        seated->state == MembershipState::kNormal) {
      finished = t;
      final_state = state;
      break;
    }
  }
  if (finished < 0) {
    std::fprintf(stderr, "bench-elastic: %u -> %u, seed %llu: the join did not finish in %lld s\n",
                 members, members + 1, static_cast<unsigned long long>(seed),
                 static_cast<long long>(kChangeBound / kSecond));
    return f;
  }
  f.change_s = static_cast<double>(finished - kJoin) / kSecond;
  f.seat_s = static_cast<double>(seated_at - kJoin) / kSecond;

  uint64_t moved = 0;
  uint64_t records = 0;
  for (NodeId id = 1; id <= newcomer; ++id) {
    const mks::sim::ProtocolNode* node = world.node(id);
    MKS_ASSERT(node != nullptr);  // no faults: every node is up
    moved += CounterOf(*node, "stream_partitions_copied");
    records += CounterOf(*node, "stream_records_pulled");
  }
  Result<Ring> ring = Ring::Build(final_state->members(), final_state->epoch(),
                                  RingOptions{kPartitions, kReplicas});
  MKS_ASSERT_MSG(ring.ok(), ring.status().ToString());
  f.moved = static_cast<double>(moved);
  f.records = static_cast<double>(records);
  f.share = ring->ReplicaCountOf(newcomer);
  f.ratio = f.moved / f.share;

  const auto [p99_before, errors_before] = Window(protocol.samples(), loaded + kSettle, kJoin);
  const auto [p99_during, errors_during] = Window(protocol.samples(), kJoin, finished);
  f.p99_before_ms = p99_before;
  f.errors_before = errors_before;
  f.p99_during_ms = p99_during;
  f.errors_during = errors_during;
  return f;
}

template <typename F>
std::vector<double> Each(const std::vector<Figures>& runs, F field) {
  std::vector<double> values;
  for (const Figures& f : runs) values.push_back(field(f));
  return values;
}

}  // namespace

int main(int argc, char** argv) {
  const uint64_t seeds = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 3;
  if (seeds == 0) {
    std::fprintf(stderr, "usage: bench-elastic [seeds > 0]\n");
    return 2;
  }
  std::printf("bench-elastic: one standby node joins through node 1 at %lld s; Q=%u, N=%u, "
              "R=W=QUORUM; %u keys written once each by %u loaders before the join, %u "
              "clients at %u ops/s in all (50%% reads) throughout; no faults; production's "
              "stream settings, etcd's Raft defaults\n\n",
              static_cast<long long>(kJoin / kSecond), kPartitions, kReplicas, kKeys, kLoaders,
              kSteadyClients, kSteadyClients * kSteadyOpsPerSecond);
  for (const uint32_t members : {3u, 16u}) {
    const std::vector<Figures> runs = OverSeeds<Figures>(
        seeds, [members](uint64_t seed) { return Measure(members, seed); });
    const auto p50 = [&runs](auto field) { return Percentile(Each(runs, field), 0.5); };
    const std::vector<double> changes = Each(runs, [](const Figures& f) { return f.change_s; });
    const auto unfinished = std::count(changes.begin(), changes.end(), -1.0);
    std::printf(
        "%2u -> %2u, %llu seeds (keys loaded by %.2f s): moved %.0f partition replicas for "
        "the newcomer's %.0f (%.0f records pulled), ratio p50 %.3f, max %.3f (target <= 1.100); change p50 %.3f s, "
        "max %.3f s, %lld unfinished in %lld s (seated JOINING after p50 %.3f s); client p99 %.2f ms steady, %.2f ms during "
        "the change; errors %.3f%% steady, %.3f%% during\n",
        members, members + 1, static_cast<unsigned long long>(seeds),
        p50([](const Figures& f) { return f.loaded_s; }),
        p50([](const Figures& f) { return f.moved; }),
        p50([](const Figures& f) { return f.share; }),
        p50([](const Figures& f) { return f.records; }),
        p50([](const Figures& f) { return f.ratio; }),
        Percentile(Each(runs, [](const Figures& f) { return f.ratio; }), 1.0),
        Percentile(changes, 0.5), Percentile(changes, 1.0), static_cast<long long>(unfinished),
        static_cast<long long>(kChangeBound / kSecond),
        p50([](const Figures& f) { return f.seat_s; }),
        p50([](const Figures& f) { return f.p99_before_ms; }),
        p50([](const Figures& f) { return f.p99_during_ms; }),
        100 * p50([](const Figures& f) { return f.errors_before; }),
        100 * p50([](const Figures& f) { return f.errors_during; }));
    std::fflush(stdout);
  }
  return 0;
}
