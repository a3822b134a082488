// What the simulated benchmarks (bench-gossip, bench-raft) share: a started
// world of one scenario and seed, one measurement per seed on two threads
// (each World is independent), and percentiles of the results.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>
#include <thread>
#include <utility>
#include <vector>

#include "core/assertions.h"
#include "sim/protocol.h"
#include "sim/trace.h"
#include "sim/world.h"

namespace mks::tools {

// A started world of `scenario` and `seed`, and what it needs to live.
struct SimRun {
  SimRun(const sim::Scenario& scenario, uint64_t seed) {
    auto made = sim::MakeProtocol(scenario);
    MKS_ASSERT_MSG(made.ok(), made.status().ToString());
    protocol = std::move(*made);
    world = std::make_unique<sim::World>(scenario, seed, protocol.get(), &tracer);
    world->Start();
  }
  std::unique_ptr<sim::Protocol> protocol;
  sim::Tracer tracer;
  std::unique_ptr<sim::World> world;
};

// The p-quantile (0..1, nearest rank) of `values`, leaving out -1 (a run
// that measured nothing); -1 when nothing is left.
inline double Percentile(std::vector<double> values, double p) {
  values.erase(std::remove(values.begin(), values.end(), -1.0), values.end());
  if (values.empty()) return -1;
  std::sort(values.begin(), values.end());
  const size_t index = static_cast<size_t>(p * static_cast<double>(values.size() - 1) + 0.5);
  return values[std::min(index, values.size() - 1)];
}

// Runs `body(seed)` for seeds 1..count on two threads; results by seed.
template <typename T, typename F>
std::vector<T> OverSeeds(uint64_t count, F body) {
  std::vector<T> results(count);
  std::atomic<uint64_t> next{0};
  auto worker = [&] {
    for (uint64_t i = next++; i < count; i = next++) results[i] = body(i + 1);
  };
  std::thread other(worker);
  worker();
  other.join();
  return results;
}

}  // namespace mks::tools
