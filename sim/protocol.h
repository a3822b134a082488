// The seam between the simulated world and the protocol it attacks.
//
// The world knows nothing of what nodes do. It creates each node (at start
// and at every restart) and each workload client through a Protocol, hands
// every client operation to the Protocol's Checker as it is invoked and as
// it completes, and at the end of the run asks the Checker whether the live
// nodes have converged. The built-in protocol (sim/counter_protocol.h) proves
// the world works; the store plugs in the same way.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/assertions.h"
#include "core/cluster_state.h"
#include "core/env.h"
#include "core/gossip/gossip.h"
#include "core/raft/raft.h"
#include "core/runtime/scheduler.h"
#include "core/status.h"
#include "core/timestamp.h"
#include "sim/scenario.h"

namespace mks::sim {

// What a node receives when it starts. The Environment's pointees belong to
// the world and outlive the node.
struct NodeContext {
  Environment env;
  runtime::Scheduler* scheduler = nullptr;
  runtime::ProcessId process = 0;  // spawn the node's fibers here
  std::vector<NodeId> nodes;       // every node of the cluster, ascending
  const Scenario* scenario = nullptr;
  // False for a standby node started by a timeline `join`: it is not in the
  // cluster's member list, and finds the cluster through `seeds`.
  bool member = true;
  std::vector<std::string> seeds;  // addresses (SimNetwork::AddressOf)
  // What a node running Raft reports to from its start (the world's
  // RaftChecker); outlives the node.
  raft::RaftObserver* raft_observer = nullptr;
};

// One running incarnation of a node. Destroyed when the node crashes (after
// its process was killed, so no fiber of it still runs); durable state lives
// only in env.disk.
class ProtocolNode {
 public:
  virtual ~ProtocolNode() = default;
  // A canonical encoding of the state that must agree across replicas once
  // the cluster has converged (e.g. Merkle roots). Never fails.
  virtual std::string ConvergenceDigest() const = 0;
  // Named counters of this incarnation (read repairs, group commits, ...),
  // summed over nodes and incarnations in the run's summary, so a run shows
  // which protocol paths it exercised. Names are stable identifiers.
  virtual std::vector<std::pair<std::string, uint64_t>> Counters() const { return {}; }
  // The node's gossip membership, for the world's gossip checker; null when
  // the node runs none. Lives as long as this incarnation.
  virtual gossip::Gossip* gossip() { return nullptr; }
  // The node's metadata log and its applied state, for the world's Raft
  // checker; null when the node runs none. Live as long as this incarnation.
  virtual const raft::Raft* raft() const { return nullptr; }
  virtual const ClusterState* cluster_state() const { return nullptr; }
  // Asks this node to remove member `node` from the cluster (a timeline
  // `remove`); it retries until the change is applied or refused for good,
  // for as long as this incarnation lives. Protocols without membership
  // ignore it.
  virtual void RequestRemove(NodeId node) { (void)node; }
};

enum class OperationKind : uint8_t { kRead, kWrite, kDelete };
enum class Outcome : uint8_t {
  kPending,   // invoked, not completed
  kOk,        // acknowledged
  kFailed,    // definitely not applied
  kUnknown,   // timed out: may or may not have been applied
};
std::string_view OutcomeName(Outcome outcome);

// One client operation, as the history records it.
struct Operation {
  NodeId client = kNoNode;
  uint64_t id = 0;           // unique per client, increasing
  NodeId node = kNoNode;     // the node it was sent to
  OperationKind kind = OperationKind::kRead;
  std::string key;
  std::string value;         // written value, or the read's answer
  Outcome outcome = Outcome::kPending;
  int64_t invoke_ns = 0;     // true time
  int64_t complete_ns = 0;   // true time; 0 while pending
  // Versioned protocols (kv): the version a write stamped, or the newest
  // version a read returned (a tombstone included). version_origin is
  // kNoNode when there is none (a read that found no version at all).
  Timestamp version_timestamp;
  NodeId version_origin = kNoNode;
  bool version_tombstone = false;
  // Versioned protocols (kv): the replies the request asked for (its R or
  // W, resolved from its consistency level by the client); 0 when unused.
  uint32_t quorum = 0;
};

// Draws an operation's key ("k0" .. "k<key_space - 1>") and then its kind
// from the workload's read/write/delete mix, both from `random`, so every
// protocol's workload means the same thing.
inline void DrawKeyAndKind(const Workload& w, Random& random, Operation* op) {
  MKS_ASSERT(op != nullptr);
  MKS_ASSERT_GT(w.key_space, 0u);
  // Appended, not "k" + ...: GCC 12 at -O3 misreports the latter (-Wrestrict).
  op->key = "k";
  op->key += std::to_string(random.Uniform(w.key_space));
  const uint64_t roll = random.Uniform(100);
  op->kind = roll < w.read_percent ? OperationKind::kRead
             : roll < w.read_percent + w.write_percent ? OperationKind::kWrite
                                                       : OperationKind::kDelete;
}

// Receives the history. Invoke() is called when a client sends an operation,
// Complete() when it learns its outcome (never for operations still pending
// at the end of the run).
class HistorySink {
 public:
  virtual ~HistorySink() = default;
  virtual void Invoke(const Operation& operation) = 0;
  virtual void Complete(const Operation& operation) = 0;
};

struct ClientContext {
  Environment env;  // env.node_id is the client's own endpoint id
  runtime::Scheduler* scheduler = nullptr;
  runtime::ProcessId process = 0;
  std::vector<NodeId> nodes;
  const Workload* workload = nullptr;
  HistorySink* history = nullptr;
};

// A workload client: issues operations at the scenario's rate until Stop().
class WorkloadClient {
 public:
  virtual ~WorkloadClient() = default;
  // Issues no new operation from now on; the one in flight may complete.
  virtual void Stop() = 0;
  // True when stopped and no operation is in flight.
  virtual bool Idle() const = 0;
};

// Judges a history. Safety is checked as operations complete; convergence
// when the world asks.
class Checker : public HistorySink {
 public:
  // Every safety violation seen so far, in order of detection.
  virtual const std::vector<std::string>& violations() const = 0;
  // OK when `digests` (the ConvergenceDigest of every node, all up) show a
  // converged cluster consistent with the history; otherwise Unavailable
  // saying what still differs, or Corruption for a state that can never be
  // right (e.g. an acknowledged write missing after convergence).
  virtual Status CheckConverged(const std::vector<std::string>& digests) = 0;
  // The world damaged the record under `disk_key` on `node`'s disk (bit
  // rot), so that a checker can tell a loss the fault model allows from a
  // bug. Most checkers ignore it.
  virtual void DiskDamaged(NodeId node, std::string_view disk_key, int64_t now_ns) {
    (void)node;
    (void)disk_key;
    (void)now_ns;
  }
};

class Protocol {
 public:
  virtual ~Protocol() = default;
  virtual std::string name() const = 0;
  virtual std::unique_ptr<ProtocolNode> StartNode(const NodeContext& context) = 0;
  virtual std::unique_ptr<WorkloadClient> StartClient(
      const ClientContext& context) = 0;
  virtual Checker& checker() = 0;
};

// Creates the protocol a scenario names. InvalidArgument for unknown names.
Result<std::unique_ptr<Protocol>> MakeProtocol(const Scenario& scenario);

}  // namespace mks::sim
