// What the simulated benchmarks (bench-gossip, bench-raft) share: running
// one measurement per seed on two threads (each World is independent), and
// percentiles of the results.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

namespace mks::tools {

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
