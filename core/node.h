// Node: one member of the cluster, wired from the parts in core/.
//
// A node owns its hybrid logical clock, its store (on the environment's
// Disk), the ring computed from the static member list, its RPC endpoint,
// the replica service that serves other coordinators, and its own
// coordinator. The same Node runs in the simulator (on simulated clock,
// network and disk) and in mks-node (on the machine's clock, TCP and
// LevelDB); only the Environment differs.
//
// Besides the replica methods, a node serves the client methods
// "client.get", "client.put" and "client.delete" (ClientRequest /
// ClientResponse in core/proto/mks.proto) over RPC, so a client that speaks
// the cluster's own protocol (the simulator's workload clients) can use any
// node as its coordinator. Production front-ends (RESP, HTTP) call
// coordinator() directly.
//
// Recovery: everything durable is on the Disk. Open() reads the node's
// timestamp ceiling (see below) so that a restarted node never issues a
// timestamp at or below one it may have issued before, even when its wall
// clock went backwards across the restart. The ceiling is kept in two
// checksummed copies written in one batch; one damaged copy is survived,
// two fail Open() with Corruption (the node cannot know its past stamps).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/coordinator.h"
#include "core/env.h"
#include "core/gossip/gossip.h"
#include "core/hlc.h"
#include "core/replica.h"
#include "core/ring.h"
#include "core/rpc.h"
#include "core/runtime/scheduler.h"
#include "core/status.h"
#include "core/store.h"

namespace mks {

struct NodeOptions {
  // Every member of the cluster in seat order (static membership). Every
  // node of a cluster must be given the same list: it decides the ring. A
  // node outside the list (a newcomer found by gossip) owns no partition:
  // it coordinates requests but is no replica. Empty: the node knows no
  // list (it joined through gossip seeds, which it then requires), has no
  // ring, and fails every request with Unavailable saying so.
  MemberList members;
  // The epoch of the static ring.
  uint64_t ring_epoch = 1;
  RingOptions ring;
  CoordinatorOptions coordinator;
  StoreOptions store;
  ReplicaOptions replica;
  HlcOptions hlc;
  // Gossip membership (core/gossip): failure detection and discovery. Absent:
  // the node runs without (every replica counts as up). Does not change
  // where data lives: the ring comes from `members` alone.
  std::optional<gossip::GossipOptions> gossip;
  // Where this node listens, as gossip announces it to the others.
  gossip::Addresses addresses;
  // Members known from configuration, probed from the start (no seed
  // needed): id -> where it listens.
  std::map<NodeId, gossip::Addresses> known_peers;
  // Planted gossip bugs, in effect from the gossip's start (the simulator's
  // canaries only; all false in production).
  gossip::GossipCanaries gossip_canaries;
  // How far ahead of the issued timestamps the durable ceiling is raised
  // each time it is reached: at most one synced write per step of wall time.
  // A restarted node's timestamps start up to this far ahead of its wall
  // clock, and replicas refuse timestamps more than hlc.max_offset_ms ahead
  // of theirs, so the step must stay well below that offset (Open() requires
  // step * 4 <= max_offset_ms).
  uint64_t timestamp_ceiling_step_ms = 100;
};

struct NodeStats {
  uint64_t ceiling_raises = 0;  // synced writes of the timestamp ceiling
  // 1 when a copy of the ceiling failed its checksum at start (the other
  // one served; the next raise rewrites both).
  uint64_t ceiling_copies_damaged = 0;
};

class Node {
 public:
  // Opens the node `env.node_id` over `env` (whose pointees, with
  // `scheduler`, must outlive the node) and registers its RPC methods.
  // `process` is the node's scheduler process. InvalidArgument when the
  // options are inconsistent (a bad ring);
  // Corruption or IOError when its durable state cannot be read.
  static Result<std::unique_ptr<Node>> Open(NodeOptions options,
                                            Environment env,
                                            runtime::Scheduler* scheduler,
                                            runtime::ProcessId process);
  ~Node();
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  NodeId id() const { return env_.node_id; }
  Coordinator& coordinator() { return *coordinator_; }
  // Null when the node runs without gossip.
  gossip::Gossip* gossip() { return gossip_.get(); }
  const gossip::Gossip* gossip() const { return gossip_.get(); }
  ReplicaService& replica() { return *replica_; }
  Store& store() { return *store_; }
  // The ring of the member list; null when the node was given none (it
  // joined through gossip and owns no data yet).
  const Ring* ring() const { return ring_.has_value() ? &*ring_ : nullptr; }
  const RpcEndpoint& rpc() const { return *rpc_; }
  const HybridLogicalClock& hlc() const { return hlc_; }
  const NodeOptions& options() const { return options_; }
  const NodeStats& stats() const { return stats_; }

 private:
  Node(NodeOptions options, Environment env, runtime::Scheduler* scheduler,
       runtime::ProcessId process, std::optional<Ring> ring);
  Status Recover();
  void RegisterClientMethods();
  // Issues the next write timestamp, raising the durable ceiling first when
  // the timestamp would reach it.
  Result<Timestamp> NextTimestamp();

  const NodeOptions options_;
  Environment env_;
  runtime::Scheduler* const scheduler_;
  const runtime::ProcessId process_;
  const std::optional<Ring> ring_;
  HybridLogicalClock hlc_;
  // Invariant: every timestamp this node has issued, before or after any
  // restart, has physical_ms < ceiling_ms_, and ceiling_ms_ is durable.
  uint64_t ceiling_ms_ = 0;
  std::unique_ptr<Store> store_;
  std::unique_ptr<RpcEndpoint> rpc_;
  std::unique_ptr<gossip::Gossip> gossip_;  // may be null
  std::unique_ptr<ReplicaService> replica_;
  std::unique_ptr<Coordinator> coordinator_;
  NodeStats stats_;
};

}  // namespace mks
