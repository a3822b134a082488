// The simulator's built-in protocol: a replicated, keyed grow-only counter.
//
// It exists to prove the world works before the store does, so it is small
// but real: bytes on the network (sim.proto), durable state on the node's
// Disk, fibers and timers, BUGGIFY sites, and a checker with invariants that
// faults can break.
//
//  * Each node holds, per key, one count per origin node (a G-counter).
//  * A client's write or delete sends Increment(key) to one node, which adds
//    one to its own component, persists it with sync together with the
//    client's request id (so a duplicated or replayed request is applied at
//    most once), and replies with its component's new value. When the disk
//    refuses the write, it replies "not applied", and copies of that request
//    stay refused.
//  * A read returns the node's vector for the key.
//  * Every node gossips its whole state to a random peer periodically; a
//    receiver merges by per-component maximum and persists without sync
//    (others' components can be relearned, so losing them is legal).
//  * Every stored record carries a checksum; a record that fails it is
//    skipped at start and counted, never served.
//
// Invariants the checker enforces:
//  * Durability and read-your-acks: a read from node i returns at least as
//    many of i's increments as i had acknowledged before the read began.
//  * No phantoms: no component ever exceeds the increments sent to that
//    origin.
//  * Convergence (liveness): once faults stop, every node holds the same
//    vectors, and every acknowledged increment is in them.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>  // here, not in the .cpp: its BUGGIFY sites are keyed by line
#include <vector>

#include "sim/protocol.h"

namespace mks::sim {

// Encodes counts as 8 bytes little-endian each (the history's read values
// and the node's convergence digest use this form).
std::string EncodeCounts(const std::vector<uint64_t>& counts);
std::vector<uint64_t> DecodeCounts(std::string_view bytes);

class CounterChecker final : public Checker {
 public:
  explicit CounterChecker(uint32_t node_count) : node_count_(node_count) {}
  void Invoke(const Operation& operation) override;
  void Complete(const Operation& operation) override;
  const std::vector<std::string>& violations() const override {
    return violations_;
  }
  Status CheckConverged(const std::vector<std::string>& digests) override;

 private:
  struct KeyHistory {
    std::vector<uint64_t> invoked;  // increments sent, per origin index
    std::vector<uint64_t> acked;    // increments acknowledged, per origin
  };
  KeyHistory& HistoryOf(const std::string& key);
  void Violation(const Operation& operation, const std::string& what);

  const uint32_t node_count_;
  std::map<std::string, KeyHistory> keys_;
  // For each pending read, by (client, id): its node's acknowledged count
  // when the read began, the least the read may return.
  std::map<std::pair<NodeId, uint64_t>, uint64_t> read_floor_;
  std::vector<std::string> violations_;
};

class CounterProtocol final : public Protocol {
 public:
  explicit CounterProtocol(const Scenario& scenario)
      : checker_(scenario.nodes) {}
  std::string name() const override { return "counter"; }
  std::unique_ptr<ProtocolNode> StartNode(const NodeContext& context) override;
  std::unique_ptr<WorkloadClient> StartClient(
      const ClientContext& context) override;
  Checker& checker() override { return checker_; }

 private:
  CounterChecker checker_;
};

// Canaries (scenario field `canaries:`), bugs planted on purpose so tests
// can prove the checker catches them:
//  * ack_without_persist: a node acknowledges an increment it keeps only in
//    memory, so a crash forgets an acknowledged write.
inline constexpr std::array<std::string_view, 1> kCounterCanaries = {
    "ack_without_persist"};

// OK when every canary the scenario names is one of kCounterCanaries;
// InvalidArgument naming the first unknown one otherwise.
Status CheckCounterCanaries(const Scenario& scenario);

// Introspection for tests: the records a counter node skipped at start
// because their checksum failed. Requires a node made by CounterProtocol.
uint64_t CounterNodeCorruptRecords(const ProtocolNode& node);

}  // namespace mks::sim
