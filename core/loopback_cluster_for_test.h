// LoopbackCluster: the ground core's multi-node tests run on: one manual
// clock, one scheduler, one loopback network delivering every message after
// a fixed millisecond, and per node a process, an RPC endpoint and a MapDisk
// that outlives the node's incarnations. A test builds what each node runs
// (gossip, Raft) on Boot()'s environment and endpoint, and drops it after
// Kill(): a killed node's process is gone (its fibers never run again) and
// messages to it are dropped, while its endpoint lives until the next Boot,
// so what the test drops may still unregister from it. A cut-off node loses
// every message to or from it.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "core/assertions.h"
#include "core/env.h"
#include "core/loopback_network_for_test.h"
#include "core/map_disk_for_test.h"
#include "core/rpc.h"
#include "core/runtime/manual_clock.h"
#include "core/runtime/scheduler.h"

namespace mks {

class LoopbackCluster {
 public:
  static constexpr int64_t kLatencyNs = 1'000'000;

  // Nodes 1..size exist on the network; the clock starts at `start_ns`.
  LoopbackCluster(uint32_t size, int64_t start_ns) {
    clock_.AdvanceTo(start_ns);
    for (NodeId id = 1; id <= size; ++id) hub_.NetworkOf(id);
  }

  // Starts an incarnation of node `id`: a new process and endpoint, and its
  // environment (its disk kept, a fresh random stream).
  Environment Boot(NodeId id) {
    Slot& slot = slots_[id];
    MKS_ASSERT(!slot.running);
    slot.running = true;
    slot.process = scheduler_.CreateProcess("node" + std::to_string(id));
    Environment env;
    env.node_id = id;
    env.clock = &clock_;
    env.network = hub_.NetworkOf(id);
    env.disk = &slot.disk;
    env.random = Random(id * 7919 + slot.starts++);
    slot.rpc.reset();  // the previous incarnation's goes before its successor installs itself
    slot.rpc = std::make_unique<RpcEndpoint>(&scheduler_, slot.process, env.network, id,
                                             RpcOptions{env.random.Next64() | 1});
    down_.erase(id);
    return env;
  }
  // Ends node `id`'s incarnation: its process dies and messages to it are
  // dropped. No-op when it is not running.
  void Kill(NodeId id) {
    auto slot = slots_.find(id);
    if (slot == slots_.end() || !slot->second.running) return;
    scheduler_.Kill(slot->second.process);
    slot->second.running = false;
    down_.insert(id);
  }
  void CutOff(NodeId id, bool cut) {
    if (cut) {
      cut_.insert(id);
    } else {
      cut_.erase(id);
    }
  }

  // Runs the nodes for `duration_ns` of simulated time.
  void RunFor(int64_t duration_ns) {
    const int64_t until_ns = clock_.MonotonicNanos() + duration_ns;
    for (;;) {
      scheduler_.RunReady();
      for (auto& message : hub_.TakeAll()) {
        if (down_.count(message.to) > 0) continue;
        if (cut_.count(message.to) > 0 || cut_.count(message.from) > 0) continue;
        in_flight_.push_back({clock_.MonotonicNanos() + kLatencyNs, std::move(message)});
      }
      std::optional<int64_t> next = scheduler_.NextDeadlineNanos();
      if (!in_flight_.empty() && (!next || in_flight_.front().first <= *next)) {
        next = in_flight_.front().first;
      }
      if (!next || *next > until_ns) break;
      if (*next > clock_.MonotonicNanos()) clock_.AdvanceTo(*next);
      if (!in_flight_.empty() && in_flight_.front().first <= clock_.MonotonicNanos()) {
        LoopbackHub::Message message = std::move(in_flight_.front().second);
        in_flight_.erase(in_flight_.begin());
        if (down_.count(message.to) == 0) hub_.Deliver(std::move(message));
        continue;
      }
      scheduler_.FireNextTimer();
    }
    clock_.AdvanceTo(until_ns);
  }

  // Runs `body` in a fiber of node `id`, and the nodes until it is done.
  void RunOn(NodeId id, std::function<void()> body) {
    auto done = scheduler_.Spawn(slots_.at(id).process, "test", std::move(body));
    while (!done.IsReady()) RunFor(10 * kLatencyNs);
  }

  runtime::Scheduler* scheduler() { return &scheduler_; }
  runtime::ManualClock& clock() { return clock_; }
  runtime::ProcessId process(NodeId id) { return slots_.at(id).process; }
  RpcEndpoint* rpc(NodeId id) { return slots_.at(id).rpc.get(); }
  MapDisk& disk(NodeId id) { return slots_[id].disk; }

 private:
  struct Slot {
    MapDisk disk;
    runtime::ProcessId process = 0;
    uint64_t starts = 0;
    bool running = false;
    std::unique_ptr<RpcEndpoint> rpc;  // the latest incarnation's
  };
  runtime::ManualClock clock_;
  runtime::Scheduler scheduler_{&clock_};
  LoopbackHub hub_;
  std::map<NodeId, Slot> slots_;
  std::set<NodeId> down_;
  std::set<NodeId> cut_;
  std::vector<std::pair<int64_t, LoopbackHub::Message>> in_flight_;
};

}  // namespace mks
