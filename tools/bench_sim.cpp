// bench-sim: how fast the simulated world runs.
//
// 1. The built-in counter protocol on 5 nodes with a heavy workload and no
//    faults: simulated messages delivered per wall-clock second, and
//    simulated time per wall time.
// 2. The bare network: 5 endpoints bouncing small messages with a trivial
//    handler, to separate the world's cost (timer queue, delivery) from the
//    protocol's (Protobuf, disk, fibers).
//
// 3. The store (kv protocol) on a 3-node cluster, N=3 R=2 W=2, 50/50
//    reads and writes, no faults: client operations per wall-clock second
//    and messages per operation.
//
// Usage: bench-sim [simulated_seconds]
#include <chrono>
#include <cstdio>
#include <ctime>
#include <cstdlib>
#include <memory>
#include <string>

#include "core/assertions.h"
#include "sim/protocol.h"
#include "sim/sim_clock.h"
#include "sim/sim_network.h"
#include "sim/world.h"

namespace {

using WallClock = std::chrono::steady_clock;

double SecondsSince(WallClock::time_point start) {
  return std::chrono::duration<double>(WallClock::now() - start).count();
}

// CPU seconds of this process: on a shared machine, the fairer measure of
// what one core does.
double CpuSecondsSince(std::clock_t start) {
  return static_cast<double>(std::clock() - start) / CLOCKS_PER_SEC;
}

struct TimedRun {
  mks::sim::RunSummary summary;
  double wall_seconds = 0;
  double cpu_seconds = 0;
};

// Runs `scenario` at seed 1, timing the run alone (not setup).
TimedRun RunTimed(const mks::sim::Scenario& scenario) {
  mks::Result<std::unique_ptr<mks::sim::Protocol>> protocol =
      mks::sim::MakeProtocol(scenario);
  MKS_ASSERT_MSG(protocol.ok(), protocol.status().ToString());
  mks::sim::Tracer tracer;
  mks::sim::World world(scenario, 1, protocol->get(), &tracer);
  TimedRun out;
  const WallClock::time_point start = WallClock::now();
  const std::clock_t cpu_start = std::clock();
  out.summary = world.Run();
  out.wall_seconds = SecondsSince(start);
  out.cpu_seconds = CpuSecondsSince(cpu_start);
  return out;
}

void BenchWorld(int64_t simulated_seconds) {
  mks::sim::Scenario s;
  s.path = "bench";
  s.nodes = 5;
  s.duration_ms = simulated_seconds * 1000;
  s.liveness_bound_ms = 10000;
  s.workload.clients = 200;
  s.workload.ops_per_second = 1000;
  s.workload.key_space = 64;
  s.workload.value_bytes_min = 8;
  s.workload.value_bytes_max = 64;
  s.buggify_enabled = false;
  const TimedRun run = RunTimed(s);
  const mks::sim::RunSummary& summary = run.summary;
  const double wall = run.wall_seconds;
  const double cpu = run.cpu_seconds;
  const double simulated = static_cast<double>(summary.simulated_ns) / 1e9;
  std::printf(
      "counter protocol, 5 nodes, %u clients: %s, %.1f s simulated in %.3f s wall\n"
      "  messages delivered: %llu  -> %.0f messages/s wall, %.0f per CPU second\n"
      "  events (timers): %llu  -> %.0f events/s wall\n"
      "  simulated time / wall time: %.1fx\n",
      s.workload.clients, std::string(mks::sim::VerdictName(summary.verdict)).c_str(),
      simulated, wall, static_cast<unsigned long long>(summary.network.delivered),
      static_cast<double>(summary.network.delivered) / wall,
      static_cast<double>(summary.network.delivered) / cpu,
      static_cast<unsigned long long>(summary.events),
      static_cast<double>(summary.events) / wall, simulated / wall);
}

void BenchStore(int64_t simulated_seconds) {
  mks::sim::Scenario s;
  s.path = "bench-kv";
  s.protocol = "kv";
  s.nodes = 3;
  s.replicas = 3;
  s.read_consistency = mks::Consistency::Count(2);
  s.write_consistency = mks::Consistency::Count(2);
  s.duration_ms = simulated_seconds * 1000;
  s.liveness_bound_ms = 10000;
  s.workload.clients = 100;
  s.workload.ops_per_second = 200;
  s.workload.key_space = 1000;
  s.workload.read_percent = 50;
  s.workload.write_percent = 50;
  s.workload.delete_percent = 0;
  s.workload.value_bytes_min = 100;
  s.workload.value_bytes_max = 100;
  s.buggify_enabled = false;
  const TimedRun run = RunTimed(s);
  const mks::sim::RunSummary& summary = run.summary;
  const double wall = run.wall_seconds;
  const double cpu = run.cpu_seconds;
  uint64_t operations = 0;
  for (uint64_t count : summary.outcomes) operations += count;
  const uint64_t ok = summary.outcomes[static_cast<size_t>(mks::sim::Outcome::kOk)];
  std::printf(
      "store (kv), 3 nodes, N=3 R=2 W=2, %u clients, 50/50 read/write, 100-byte values: %s\n"
      "  operations: %llu (%llu ok) in %.3f s wall -> %.0f ops/s wall, %.0f per CPU second\n"
      "  messages: %llu sent -> %.2f per operation (client request and reply included)\n"
      "  simulated time / wall time: %.2fx\n",
      s.workload.clients, std::string(mks::sim::VerdictName(summary.verdict)).c_str(),
      static_cast<unsigned long long>(operations), static_cast<unsigned long long>(ok), wall,
      static_cast<double>(operations) / wall, static_cast<double>(operations) / cpu,
      static_cast<unsigned long long>(summary.network.sent),
      static_cast<double>(summary.network.sent) / static_cast<double>(operations),
      static_cast<double>(summary.simulated_ns) / 1e9 / wall);
}

void BenchNetwork(uint64_t messages) {
  mks::sim::TrueTime time;
  mks::runtime::Scheduler scheduler(&time);
  mks::sim::Tracer tracer;
  mks::sim::SimNetwork network(&scheduler, mks::Random(1), mks::sim::NetworkConfig{},
                               &tracer);
  constexpr mks::NodeId kNodes = 5;
  mks::Network* endpoints[kNodes + 1] = {};
  uint64_t delivered = 0;
  for (mks::NodeId id = 1; id <= kNodes; ++id) {
    endpoints[id] = network.AddEndpoint(id);
    network.Up(id, scheduler.CreateProcess(std::to_string(id)));
  }
  for (mks::NodeId id = 1; id <= kNodes; ++id) {
    // Each delivery answers to the next node: a constant population in flight.
    endpoints[id]->SetHandler([&, id](mks::NodeId, std::string bytes) {
      ++delivered;
      if (delivered + 64 <= messages) {
        (void)endpoints[id]->Send(id % kNodes + 1, std::move(bytes));
      }
    });
  }
  for (int i = 0; i < 64; ++i) {
    (void)endpoints[i % kNodes + 1]->Send((i + 1) % kNodes + 1, std::string(48, 'x'));
  }
  const WallClock::time_point start = WallClock::now();
  const std::clock_t cpu_start = std::clock();
  for (;;) {
    const std::optional<int64_t> next = scheduler.NextDeadlineNanos();
    if (!next) break;
    if (*next > time.now_ns()) time.AdvanceTo(*next);
    scheduler.FireNextTimer();
  }
  const double wall = SecondsSince(start);
  const double cpu = CpuSecondsSince(cpu_start);
  std::printf("bare network, 5 endpoints, 48-byte messages: %llu delivered in %.3f s"
              " -> %.0f messages/s wall, %.0f per CPU second\n",
              static_cast<unsigned long long>(delivered), wall,
              static_cast<double>(delivered) / wall,
              static_cast<double>(delivered) / cpu);
}

}  // namespace

int main(int argc, char** argv) {
  const int64_t simulated_seconds = argc > 1 ? std::atoll(argv[1]) : 10;
  BenchWorld(simulated_seconds);
  BenchStore(simulated_seconds);
  BenchNetwork(2000000);
  return 0;
}
