// Ring lookups: key hashing (PartitionOf), preference-list lookup by key,
// and building a ring (which every node does once per membership change).
//
//   ./build-release/tools/bench-ring
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "core/assertions.h"
#include "core/ring.h"

namespace mks {
namespace {

std::vector<std::string> MakeKeys(size_t count, size_t length) {
  std::vector<std::string> keys;
  for (size_t i = 0; i < count; ++i) {
    std::string key = "user:" + std::to_string(i * 7919);
    key.resize(length, 'x');
    keys.push_back(std::move(key));
  }
  return keys;
}

Ring MakeRing(uint32_t node_count, uint32_t partition_count = 256) {
  std::vector<NodeId> members;
  for (NodeId id = 1; id <= node_count; ++id) members.push_back(id);
  Result<Ring> ring = Ring::Build(members, 1, {partition_count, 3});
  MKS_ASSERT(ring.ok());
  return std::move(ring).value();
}

// Argument: key length in bytes.
void BM_PartitionOf(benchmark::State& state) {
  const Ring ring = MakeRing(8);
  const std::vector<std::string> keys =
      MakeKeys(1024, static_cast<size_t>(state.range(0)));
  size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(ring.PartitionOf(keys[i++ & 1023]));
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_PartitionOf)->Arg(16)->Arg(64)->Arg(256);

// Argument: member count. Key of 16 bytes; reads the whole list.
void BM_ReplicasForKey(benchmark::State& state) {
  const Ring ring = MakeRing(static_cast<uint32_t>(state.range(0)));
  const std::vector<std::string> keys = MakeKeys(1024, 16);
  size_t i = 0;
  for (auto _ : state) {
    NodeId sum = 0;
    for (NodeId node : ring.ReplicasForKey(keys[i++ & 1023])) sum += node;
    benchmark::DoNotOptimize(sum);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ReplicasForKey)->Arg(3)->Arg(16)->Arg(64);

// Argument: partition number; the list only, hashing excluded.
void BM_PreferenceList(benchmark::State& state) {
  const Ring ring = MakeRing(16);
  PartitionId p = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(ring.PreferenceList(p).data());
    p = (p + 1) & (ring.partition_count() - 1);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_PreferenceList);

// Arguments: member count, Q. N = 3. Building replays the seating of every
// member (core/ring.cpp), so it grows with both.
void BM_BuildRing(benchmark::State& state) {
  const uint32_t node_count = static_cast<uint32_t>(state.range(0));
  const uint32_t partition_count = static_cast<uint32_t>(state.range(1));
  for (auto _ : state) {
    benchmark::DoNotOptimize(MakeRing(node_count, partition_count).load_cap());
  }
}
BENCHMARK(BM_BuildRing)
    ->Args({3, 256})
    ->Args({16, 256})
    ->Args({64, 256})
    ->Args({256, 256})
    ->Args({64, 4096})
    ->Args({64, 65536})
    ->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace mks

BENCHMARK_MAIN();
