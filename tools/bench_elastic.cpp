// bench-elastic: what one join costs a simulated kv cluster (core/cluster_state.h,
// core/stream.h, core/coordinator.h) that already holds data: 3 -> 4 and
// 16 -> 17 members, Q = 256 partitions, N = 3, R = W = QUORUM, no faults.
//
// A run: loader clients write a key space of 100000 keys as fast as they
// can for kLoad simulated seconds (about three writes a key, so nearly every
// key holds a record), then stop; steady clients read and write the same
// keys at a fixed rate all along. At kJoin a timeline `join` boots one
// standby node through node 1, and the bench polls the metadata log's
// leader every 5 ms until the join's transition is over (no transition,
// the newcomer NORMAL). Measured:
//
//  1. Replicas moved against the minimum: the partitions every node
//     streamed (stream_partitions_copied, summed over the nodes) against
//     the newcomer's share of the final ring (Ring::ReplicaCountOf), the
//     fewest partition replicas any join can move (the target: <= 1.1).
//  2. The change's duration: simulated seconds from the join event to the
//     transition's end on the leader.
//  3. The steady clients' p99 latency and error rate (not OK: failed or
//     unknown) during the change (operations invoked between the join and
//     the end) against the steady state before it (invoked in
//     [kLoad + kSettle, kJoin), after the loaders stopped).
//
// The figures per case are the p50 over the seeds (the ratio's max too).
// The bench gives each client its own workload by wrapping the store's
// protocol (loaders write only, fast; steady clients at a steady mix and
// rate), and sees every completed operation of the steady clients by
// standing between them and the world's history; the world and the
// checkers run as in mks-sim, and a run that breaks an invariant aborts.
//
// Usage: bench-elastic [seeds]   (default 3). Runs seeds on two threads.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include "core/assertions.h"
#include "core/cluster_state.h"
#include "core/ring.h"
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
// Loaders: write-only, each with one request in flight, about 330 writes
// a second each at the network's and disks' latencies.
constexpr uint32_t kLoaders = 96;
constexpr uint32_t kLoaderOpsPerSecond = 1000;
// Steady clients: half reads, half writes, kSteadyClients * kSteadyOpsPerSecond
// requests a second in all, before, during and after the change.
constexpr uint32_t kSteadyClients = 4;
constexpr uint32_t kSteadyOpsPerSecond = 200;
constexpr int64_t kLoad = 10 * kSecond;   // the loaders stop here
constexpr int64_t kSettle = 500 * kMs;    // then the steady state is measured
constexpr int64_t kJoin = 12 * kSecond;   // the timeline's join
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

// The store's protocol, with a workload of its own for each client: the
// first kSteadyClients clients (the first of which, in mks-sim, would
// sweep the keys after the run) run the scenario's workload, the others
// are loaders. It records what the steady clients complete and which keys
// the loaders wrote, and passes the whole history on to the world.
class BenchProtocol final : public mks::sim::Protocol, private mks::sim::HistorySink {
 public:
  explicit BenchProtocol(const Scenario& scenario) : steady_(scenario.workload) {
    auto made = mks::sim::MakeProtocol(scenario);
    MKS_ASSERT_MSG(made.ok(), made.status().ToString());
    inner_ = std::move(*made);
    loader_ = steady_;
    loader_.ops_per_second = kLoaderOpsPerSecond;
    loader_.read_percent = 0;
    loader_.write_percent = 100;
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
    const bool loader = context.env.node_id >= mks::sim::kFirstClientId + kSteadyClients;
    mine.workload = loader ? &loader_ : &steady_;
    std::unique_ptr<mks::sim::WorkloadClient> client = inner_->StartClient(mine);
    if (loader) loaders_.push_back(client.get());
    return client;
  }
  mks::sim::Checker& checker() override { return inner_->checker(); }

  // Loaders issue nothing more (the one in flight completes).
  void StopLoaders() {
    for (mks::sim::WorkloadClient* loader : loaders_) loader->Stop();
  }
  const std::vector<Sample>& samples() const { return samples_; }
  size_t keys_written() const { return keys_written_.size(); }

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
    if (op.kind == OperationKind::kWrite && op.outcome == Outcome::kOk) {
      keys_written_.insert(op.key);
    }
  }

  std::unique_ptr<mks::sim::Protocol> inner_;
  Workload steady_;
  Workload loader_;
  mks::sim::HistorySink* world_ = nullptr;
  std::vector<mks::sim::WorkloadClient*> loaders_;
  std::vector<Sample> samples_;
  std::unordered_set<std::string> keys_written_;
};

struct Figures {
  double keys = -1;       // distinct keys written (acknowledged) before the join
  double moved = -1;      // partition replicas streamed, all nodes
  double share = -1;      // the newcomer's replicas in the final ring
  double ratio = -1;      // moved / share
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

  world.RunUntil(kLoad);
  protocol.StopLoaders();
  world.RunUntil(kJoin);
  f.keys = static_cast<double>(protocol.keys_written());

  // The join event fired at kJoin; poll the leader until its transition ended.
  int64_t finished = -1;
  const ClusterState* final_state = nullptr;
  for (int64_t t = kJoin + kPoll; t <= kJoin + kChangeBound; t += kPoll) {
    world.RunUntil(t);
    MKS_ASSERT_MSG(world.summary().violations.empty(), world.summary().violations.front());
    const std::optional<NodeId> leader = world.raft_checker().Leader();
    if (!leader.has_value() || world.node(*leader) == nullptr) continue;
    const ClusterState* state = world.node(*leader)->cluster_state();
    const std::optional<mks::ClusterMember> seated = state->Seated(newcomer);
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

  uint64_t moved = 0;
  for (NodeId id = 1; id <= newcomer; ++id) {
    const mks::sim::ProtocolNode* node = world.node(id);
    MKS_ASSERT(node != nullptr);  // no faults: every node is up
    moved += CounterOf(*node, "stream_partitions_copied");
  }
  Result<Ring> ring = Ring::Build(final_state->members(), final_state->epoch(),
                                  RingOptions{kPartitions, kReplicas});
  MKS_ASSERT_MSG(ring.ok(), ring.status().ToString());
  f.moved = static_cast<double>(moved);
  f.share = ring->ReplicaCountOf(newcomer);
  f.ratio = f.moved / f.share;

  const auto [p99_before, errors_before] = Window(protocol.samples(), kLoad + kSettle, kJoin);
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
  std::printf("bench-elastic: one standby node joins a loaded cluster; Q=%u, N=%u, "
              "R=W=QUORUM, %u keys written by %u loaders before the join, then %u clients "
              "at %u ops/s (50%% reads) throughout; no faults; p50 over %llu seeds\n\n",
              kPartitions, kReplicas, kKeys, kLoaders, kSteadyClients,
              kSteadyClients * kSteadyOpsPerSecond, static_cast<unsigned long long>(seeds));
  for (const uint32_t members : {3u, 16u}) {
    const std::vector<Figures> runs = OverSeeds<Figures>(
        seeds, [members](uint64_t seed) { return Measure(members, seed); });
    const auto p50 = [&runs](auto field) { return Percentile(Each(runs, field), 0.5); };
    const std::vector<double> changes = Each(runs, [](const Figures& f) { return f.change_s; });
    const auto unfinished = std::count(changes.begin(), changes.end(), -1.0);
    std::printf(
        "%2u -> %2u, %.0f keys: moved %.0f partition replicas for a share of %.0f, "
        "ratio p50 %.3f, max %.3f (target <= 1.100); change %.3f s (max %.3f s, "
        "%lld unfinished); p99 %.2f ms before, %.2f ms during; errors %.3f%% before, "
        "%.3f%% during\n",
        members, members + 1, p50([](const Figures& f) { return f.keys; }),
        p50([](const Figures& f) { return f.moved; }),
        p50([](const Figures& f) { return f.share; }),
        p50([](const Figures& f) { return f.ratio; }),
        Percentile(Each(runs, [](const Figures& f) { return f.ratio; }), 1.0),
        Percentile(changes, 0.5), Percentile(changes, 1.0), static_cast<long long>(unfinished),
        p50([](const Figures& f) { return f.p99_before_ms; }),
        p50([](const Figures& f) { return f.p99_during_ms; }),
        100 * p50([](const Figures& f) { return f.errors_before; }),
        100 * p50([](const Figures& f) { return f.errors_during; }));
    std::fflush(stdout);
  }
  return 0;
}
