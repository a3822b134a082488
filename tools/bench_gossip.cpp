// bench-gossip: failure detection and dissemination figures of core/gossip
// over simulated clusters, with production's settings (probe every second,
// 500 ms ack timeout, 3 indirect probes, suspicion multiplier 4, retransmit
// multiplier 4, push-pull every 30 s), beside what hashicorp/memberlist's
// LAN defaults give by its own formulas at the same sizes.
//
//  1. Detection: after a 30 s warm-up one member crashes; the time until
//     the first and until the last other member hold it dead, p50 and p99
//     over the seeds, per cluster size.
//  2. Join: a newcomer boots knowing one seed; the time until every member
//     holds it alive.
//  3. Accuracy: 64 members for ten simulated minutes a seed at 1%, 10% and
//     20% loss, and at 1% with one member paused 30 s of every 90: dead
//     declarations of live, undisturbed members per node-hour.
//  4. Load: messages and bytes each member sends per second, steady state.
//
// Usage: bench-gossip [seeds] [max_size]   (defaults: 200, 512)
// Runs seeds on two threads (each World is independent).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/assertions.h"
#include "core/gossip/suspicion.h"
#include "sim/protocol.h"
#include "sim/world.h"
#include "tools/bench_seeds.h"

namespace {

using mks::NodeId;
using mks::gossip::MemberState;
using mks::sim::Scenario;
using mks::sim::World;
using mks::tools::OverSeeds;
using mks::tools::SimRun;
using mks::tools::Percentile;

constexpr int64_t kMs = 1'000'000;
constexpr int64_t kSecond = 1000 * kMs;
constexpr int64_t kWarmUp = 30 * kSecond;
constexpr int64_t kPoll = 100 * kMs;

Scenario Cluster(uint32_t nodes, uint32_t standby, uint32_t loss_ppm) {
  Scenario s;
  s.path = "bench-gossip";
  s.protocol = "gossip";
  s.nodes = nodes;
  s.standby_nodes = standby;
  s.duration_ms = 24 * 3600 * 1000;  // the bench drives the world itself
  s.workload.clients = 0;
  s.network.latency_min_us = 200;
  s.network.latency_max_us = 5000;
  s.network.loss_ppm = loss_ppm;
  s.gossip.probe_interval_ms = 1000;
  s.gossip.probe_timeout_ms = 500;
  s.gossip.push_pull_interval_ms = 30000;
  s.gossip.max_false_dead = 1'000'000;  // counted, not judged
  return s;
}

// How many running members other than `node` hold it in `wanted` (dead or
// left for kDead), and how many run at all.
std::pair<uint32_t, uint32_t> Holding(World& world, uint32_t total, NodeId node,
                                      MemberState wanted) {
  uint32_t holding = 0;
  uint32_t running = 0;
  for (NodeId id = 1; id <= total; ++id) {
    if (id == node || world.node(id) == nullptr) continue;
    mks::gossip::Gossip* gossip = world.node(id)->gossip();
    ++running;
    const mks::gossip::Member* member = gossip->table().Find(node);
    if (member == nullptr) continue;
    const MemberState state = member->record.state;
    const bool down = state == MemberState::kDead || state == MemberState::kLeft;
    if (wanted == MemberState::kDead ? down : state == wanted) ++holding;
  }
  return {holding, running};
}

struct Detection {
  double first_s = -1;
  double last_s = -1;
  double messages_per_node_s = 0;
  double bytes_per_node_s = 0;
};

Detection MeasureDetection(uint32_t nodes, uint64_t seed) {
  SimRun run(Cluster(nodes, 0, 0), seed);
  World& world = *run.world;
  world.RunUntil(kWarmUp / 2);
  const mks::sim::NetworkStats before = world.network().stats();
  world.RunUntil(kWarmUp);
  const mks::sim::NetworkStats after = world.network().stats();
  Detection out;
  const double span_s = static_cast<double>(kWarmUp / 2) / kSecond;
  out.messages_per_node_s = static_cast<double>(after.sent - before.sent) / nodes / span_s;
  out.bytes_per_node_s = static_cast<double>(after.bytes_sent - before.bytes_sent) / nodes / span_s;
  const NodeId victim = static_cast<NodeId>(1 + seed % nodes);
  world.CrashNode(victim);
  for (int64_t t = kWarmUp + kPoll; t <= kWarmUp + 180 * kSecond; t += kPoll) {
    world.RunUntil(t);
    const auto [holding, running] = Holding(world, nodes, victim, MemberState::kDead);
    const double since_s = static_cast<double>(t - kWarmUp) / kSecond;
    if (holding > 0 && out.first_s < 0) out.first_s = since_s;
    if (holding == running) {
      out.last_s = since_s;
      break;
    }
  }
  return out;
}

double MeasureJoin(uint32_t nodes, uint64_t seed) {
  // nodes - 1 members and one newcomer.
  Scenario s = Cluster(nodes - 1, 1, 0);
  mks::sim::TimelineEvent join;
  join.at_ms = kWarmUp / kMs;
  join.action = mks::sim::TimelineAction::kJoin;
  join.nodes = {nodes};
  join.via = 1;
  s.timeline.push_back(join);
  SimRun run(s, seed);
  World& world = *run.world;
  world.RunUntil(kWarmUp);
  for (int64_t t = kWarmUp + kPoll; t <= kWarmUp + 300 * kSecond; t += kPoll) {
    world.RunUntil(t);
    const auto [holding, running] = Holding(world, nodes, nodes, MemberState::kAlive);
    if (holding == running) return static_cast<double>(t - kWarmUp) / kSecond;
  }
  return -1;
}

// False dead declarations and node-hours over one ten-minute run.
std::pair<uint64_t, double> MeasureAccuracy(uint32_t loss_ppm, bool pause, uint64_t seed) {
  constexpr uint32_t kNodes = 64;
  constexpr int64_t kRun = 600 * kSecond;
  Scenario s = Cluster(kNodes, 0, loss_ppm);
  if (pause) {
    for (int64_t at = 60; at < 600; at += 90) {
      mks::sim::TimelineEvent stop;
      stop.at_ms = at * 1000;
      stop.action = mks::sim::TimelineAction::kPause;
      stop.nodes = {7};
      mks::sim::TimelineEvent go = stop;
      go.at_ms = (at + 30) * 1000;
      go.action = mks::sim::TimelineAction::kResume;
      s.timeline.push_back(stop);
      s.timeline.push_back(go);
    }
  }
  SimRun run(s, seed);
  World& world = *run.world;
  world.RunUntil(kRun);
  return {world.gossip_checker().stats().false_dead,
          static_cast<double>(kNodes) * static_cast<double>(kRun) / kSecond / 3600.0};
}

// memberlist's LAN defaults by its own formulas: suspicion timeout
// SuspicionMult * log10(max(1, n)) * ProbeInterval (floored at 1 for the
// log), and at most SuspicionMaxTimeoutMult times that.
double MemberlistSuspicionSeconds(uint32_t nodes) {
  return 4.0 * std::max(1.0, std::log10(static_cast<double>(nodes))) * 1.0;
}

}  // namespace

int main(int argc, char** argv) {
  const uint64_t seeds = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 200;
  const uint32_t max_size = argc > 2 ? static_cast<uint32_t>(std::atoi(argv[2])) : 512;
  std::printf("bench-gossip: %llu seeds per figure, probe 1 s, timeout 500 ms, 3 indirect, "
              "suspicion x4 (max x6), retransmit x4, push-pull 30 s\n\n",
              static_cast<unsigned long long>(seeds));
  std::printf("%6s | %-23s | %-23s | %-15s | %-10s | %-9s %-9s | %s\n", "nodes",
              "first dead p50 / p99 s", "last dead p50 / p99 s", "join all p50/p99",
              "3log2(n) s", "msgs/s", "bytes/s", "memberlist suspicion s (min, max)");
  for (uint32_t nodes : {8u, 64u, 256u, 512u}) {
    if (nodes > max_size) break;
    const std::vector<Detection> runs =
        OverSeeds<Detection>(seeds, [nodes](uint64_t seed) { return MeasureDetection(nodes, seed); });
    std::vector<double> first, last;
    double messages = 0, bytes = 0;
    for (const Detection& run : runs) {
      first.push_back(run.first_s);
      last.push_back(run.last_s);
      messages += run.messages_per_node_s / static_cast<double>(runs.size());
      bytes += run.bytes_per_node_s / static_cast<double>(runs.size());
    }
    const std::vector<double> joins =
        OverSeeds<double>(seeds, [nodes](uint64_t seed) { return MeasureJoin(nodes, seed); });
    const double memberlist = MemberlistSuspicionSeconds(nodes);
    std::printf("%6u | %9.1f / %9.1f   | %9.1f / %9.1f   | %5.1f / %5.1f   | %8.1f   | %7.2f "
                "%9.0f | %.1f, %.1f\n",
                nodes, Percentile(first, 0.5), Percentile(first, 0.99), Percentile(last, 0.5),
                Percentile(last, 0.99), Percentile(joins, 0.5), Percentile(joins, 0.99),
                3 * std::log2(static_cast<double>(nodes)), messages, bytes, memberlist,
                6 * memberlist);
    std::fflush(stdout);
  }
  std::printf("\nfalse dead declarations of live, undisturbed members, 64 nodes, ten minutes "
              "a seed, %llu seeds:\n",
              static_cast<unsigned long long>(std::max<uint64_t>(seeds / 10, 4)));
  struct Case {
    const char* name;
    uint32_t loss_ppm;
    bool pause;
  };
  for (const Case& c : {Case{"1% loss", 10000, false}, Case{"10% loss", 100000, false},
                        Case{"20% loss", 200000, false},
                        Case{"1% loss, one member paused 30 s of 90", 10000, true}}) {
    const auto runs = OverSeeds<std::pair<uint64_t, double>>(
        std::max<uint64_t>(seeds / 10, 4),
        [c](uint64_t seed) { return MeasureAccuracy(c.loss_ppm, c.pause, seed); });
    uint64_t false_dead = 0;
    double node_hours = 0;
    for (const auto& [count, hours] : runs) {
      false_dead += count;
      node_hours += hours;
    }
    std::printf("  %-40s %llu in %.0f node-hours: %.3f per node-hour\n", c.name,
                static_cast<unsigned long long>(false_dead), node_hours,
                static_cast<double>(false_dead) / node_hours);
    std::fflush(stdout);
  }
  return 0;
}
