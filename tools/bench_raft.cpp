// bench-raft: election figures of the cluster's metadata log (core/raft)
// over simulated 5-node clusters with etcd's defaults (heartbeat 100 ms,
// election timeout 1000 ms, drawn from [1000, 2000) ms).
//
//  1. Failover: after a 5 s warm-up the leader crashes; the time until
//     another node leads, p50, p99 and max over the seeds (the target: p99
//     at most twice the election timeout).
//  2. Stability: 60 simulated seconds under 10% message loss with one
//     follower flapping (isolated 1.5 s of every 3 s); leader changes per
//     run, with PreVote and CheckQuorum on and off.
//
// Usage: bench-raft [seeds]   (default 1000 for failover; a tenth of that,
// at least 20, for stability). Runs seeds on two threads.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <vector>

#include "core/assertions.h"
#include "sim/protocol.h"
#include "sim/world.h"
#include "tools/bench_seeds.h"

namespace {

using mks::NodeId;
using mks::sim::Scenario;
using mks::sim::World;
using mks::tools::OverSeeds;
using mks::tools::SimRun;
using mks::tools::Percentile;

constexpr int64_t kMs = 1'000'000;
constexpr int64_t kSecond = 1000 * kMs;
constexpr int64_t kWarmUp = 5 * kSecond;
constexpr int64_t kPoll = 5 * kMs;

Scenario Cluster(uint32_t loss_ppm, bool refinements) {
  Scenario s;
  s.path = "bench-raft";
  s.protocol = "kv";
  s.nodes = 5;
  s.duration_ms = 24 * 3600 * 1000;  // the bench drives the world itself
  s.workload.clients = 0;
  s.network.latency_min_us = 200;
  s.network.latency_max_us = 2000;
  s.network.loss_ppm = loss_ppm;
  s.raft.election_timeout_ms = 1000;
  s.raft.heartbeat_ms = 100;
  s.raft.pre_vote = refinements;
  s.raft.check_quorum = refinements;
  return s;
}

// Seconds from the leader's crash to another leader; -1 if none in 30 s.
double MeasureFailover(uint64_t seed) {
  SimRun run(Cluster(0, true), seed);
  World& world = *run.world;
  world.RunUntil(kWarmUp);
  const std::optional<NodeId> first = world.raft_checker().Leader();
  if (!first.has_value()) return -1;
  world.CrashNode(*first);
  for (int64_t t = kWarmUp + kPoll; t <= kWarmUp + 30 * kSecond; t += kPoll) {
    world.RunUntil(t);
    const std::optional<NodeId> now = world.raft_checker().Leader();
    if (now.has_value() && *now != *first) return static_cast<double>(t - kWarmUp) / kSecond;
  }
  return -1;
}

// Leaders elected over 60 s of loss while one follower flaps (isolated
// 1.5 s of every 3 s), after the first leader of the warm-up.
double MeasureChanges(bool refinements, uint64_t seed) {
  SimRun run(Cluster(100'000, refinements), seed);
  World& world = *run.world;
  world.RunUntil(kWarmUp);
  const std::optional<NodeId> leader = world.raft_checker().Leader();
  MKS_ASSERT(leader.has_value());
  const NodeId flapping = static_cast<NodeId>(*leader % 5 + 1);  // another node
  const uint64_t before = world.raft_checker().stats().leaders_elected;
  for (int64_t at = kWarmUp; at < kWarmUp + 60 * kSecond; at += 3 * kSecond) {
    world.network().Isolate(flapping);
    world.RunUntil(at + 1500 * kMs);
    world.network().Heal();
    world.RunUntil(at + 3 * kSecond);
  }
  MKS_ASSERT_MSG(world.raft_checker().violations().empty(),
                 world.raft_checker().violations().front());
  return static_cast<double>(world.raft_checker().stats().leaders_elected - before);
}

}  // namespace

int main(int argc, char** argv) {
  const uint64_t seeds = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 1000;
  if (seeds == 0) {
    std::fprintf(stderr, "usage: bench-raft [seeds > 0]\n");
    return 2;
  }
  std::printf("bench-raft: 5 voters, heartbeat 100 ms, election timeout [1000, 2000) ms "
              "(etcd's defaults), PreVote and CheckQuorum on\n\n");
  const std::vector<double> failover = OverSeeds<double>(seeds, MeasureFailover);
  const auto failed = std::count(failover.begin(), failover.end(), -1.0);
  std::printf("failover after the leader crashes, %llu seeds: p50 %.3f s, p99 %.3f s, "
              "max %.3f s; %lld without a new leader in 30 s (target p99 <= 2.000 s)\n",
              static_cast<unsigned long long>(seeds), Percentile(failover, 0.5),
              Percentile(failover, 0.99), Percentile(failover, 1.0),
              static_cast<long long>(failed));
  const uint64_t stability_seeds = std::max<uint64_t>(20, seeds / 10);
  std::printf("\nleader changes in 60 s, 10%% loss, one follower isolated 1.5 s of every 3 s, "
              "%llu seeds:\n",
              static_cast<unsigned long long>(stability_seeds));
  for (const bool refinements : {true, false}) {
    const std::vector<double> changes = OverSeeds<double>(
        stability_seeds, [refinements](uint64_t seed) { return MeasureChanges(refinements, seed); });
    double total = 0;
    for (double c : changes) total += c;
    std::printf("  PreVote and CheckQuorum %s: mean %.2f, p50 %.0f, max %.0f\n",
                refinements ? "on " : "off", total / static_cast<double>(changes.size()),
                Percentile(changes, 0.5), Percentile(changes, 1.0));
  }
  return 0;
}
