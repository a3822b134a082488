// Node: one member of the cluster, wired from the parts in core/.
//
// A node owns its hybrid logical clock, its store (on the environment's
// Disk), its RPC endpoint, gossip (who is alive), the Raft log of the
// cluster's metadata with its state machine (core/cluster_state.h: member
// list, member states, epoch, cluster id), the ring computed from the
// applied metadata, the replica service that serves other coordinators, and
// its own coordinator. The same Node runs in the simulator (on simulated
// clock, network and disk) and in mks-node (on the machine's clock, TCP and
// LevelDB); only the Environment differs.
//
// The ring: after every applied metadata entry that changed the state (the
// epoch moved), the node rebuilds its ring from the applied metadata
// (ClusterState::BuildRing: each partition's serving and pending replicas
// and fence epoch) and publishes it as a new shared_ptr; an operation
// holds the ring it started with. Nodes that applied the same index
// compute the same ring. Its stream service (core/stream.h) copies the
// partitions this node is pending for and drops those it stopped holding.
//
// Cluster duties, on whichever node leads the metadata log:
//  - every epoch_interval_ms it proposes "advance the epoch if it is still
//    E" (a stale proposal is a no-op);
//  - every voter_check_interval_ms it reconciles Raft's configuration with
//    the member list: each member a learner at least, a voter set of 3 (5
//    once 5 or more members are alive in gossip), a voter that gossip holds
//    dead replaced by a live learner, one change at a time, removed members
//    out of the configuration;
//  - "cluster.join" and "cluster.remove" (served by any member, forwarded
//    to the leader) begin a join or a leave (core/cluster_state.h), one at
//    a time; data streams to the new replicas (core/stream.h) and the
//    leader proposes the finish once every changing partition flipped. A
//    forced removal unseats at once, for a node that is gone with its data.
//  - a member gossip has held dead for dead_remove_after_ms (when set)
//    leaves like a decommission, its partitions copied from the survivors.
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
// Open() also replays the metadata log, so a restarted member has its ring
// before it serves.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/cluster_state.h"
#include "core/coordinator.h"
#include "core/env.h"
#include "core/gossip/gossip.h"
#include "core/hlc.h"
#include "core/raft/raft.h"
#include "core/replica.h"
#include "core/ring.h"
#include "core/rpc.h"
#include "core/runtime/scheduler.h"
#include "core/status.h"
#include "core/store.h"
#include "core/stream.h"

namespace mks {

struct NodeOptions {
  // The cluster's first members in seat order: a node that holds no
  // cluster state yet and is one of them bootstraps the cluster
  // `cluster_id` with them (all normal, epoch 1, the first VoterTarget of
  // them voters), exactly as every other of them does. Empty, or a node not
  // in it: the node starts without cluster state (it joins through gossip
  // seeds and "cluster.join"), has no ring until a leader adds it, and
  // fails every request with Unavailable saying so. A node with cluster
  // state ignores both (its metadata log says who the members are).
  MemberList members;
  std::string cluster_id;
  raft::RaftOptions raft;
  // Planted Raft bugs (the simulator's canaries only).
  raft::RaftCanaries raft_canaries;
  // Watches this node's Raft from its start (the simulator's checker); may
  // be null. Must outlive the node.
  raft::RaftObserver* raft_observer = nullptr;
  // How often the leader advances the epoch; 0: only membership changes do.
  uint64_t epoch_interval_ms = 60'000;
  // How often the leader reconciles Raft's voters and learners.
  uint64_t voter_check_interval_ms = 1'000;
  // A node started with gossip seeds asks them ("cluster.join") to seat it,
  // every join_retry_ms until a member accepts or refuses for good (another
  // cluster's node, or a removed node without `join_force`); while another
  // membership change runs, the members answer "retry".
  uint64_t join_retry_ms = 1'000;
  bool join_force = false;
  // The leader makes a member that its gossip view has held dead this long
  // leave, its data re-replicated from the survivors (as Cassandra, off by
  // default: 0; a down node keeps its seat).
  uint64_t dead_remove_after_ms = 0;
  // Streaming of partitions to new replicas (core/stream.h).
  StreamOptions stream;
  RingOptions ring;
  CoordinatorOptions coordinator;
  StoreOptions store;
  ReplicaOptions replica;
  HlcOptions hlc;
  // Gossip membership (core/gossip): failure detection and discovery. Absent:
  // the node runs without (every replica counts as up, no voter is
  // replaced). Does not change where data lives: the ring comes from the
  // applied metadata alone.
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

// The voters a cluster of `members` members keeps: all of 1 to 3, 3 of 4,
// 5 of 5 or more.
uint32_t VoterTarget(uint32_t members);

struct NodeStats {
  uint64_t ceiling_raises = 0;  // synced writes of the timestamp ceiling
  // 1 when a copy of the ceiling failed its checksum at start (the other
  // one served; the next raise rewrites both).
  uint64_t ceiling_copies_damaged = 0;
  uint64_t rings_built = 0;
  uint64_t epoch_advances_proposed = 0;
  uint64_t voter_changes = 0;  // config changes this node made as leader
  uint64_t joins_applied = 0;  // members this node seated as leader
  uint64_t join_attempts = 0;  // as a joiner, rounds over the seeds
  uint64_t removes_applied = 0;  // leaves begun and forced removals, as leader
  uint64_t finishes_applied = 0;  // transitions this node finished as leader
  uint64_t dead_removed = 0;  // removals of long-dead members (dead_remove_after_ms)
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
  // The ring of the applied metadata; null while the node holds no cluster
  // state (it has not joined yet) or no member is seated.
  std::shared_ptr<const Ring> ring() const { return ring_; }
  raft::Raft& raft() { return *raft_; }
  const raft::Raft& raft() const { return *raft_; }
  const ClusterState& cluster() const { return cluster_; }
  StreamService& stream() { return *stream_; }
  const StreamService& stream() const { return *stream_; }
  // Whether this node was a member and has been removed (its leave
  // finished, or it was removed by force): it serves no data any more.
  bool removed() const { return evicted_ || cluster_.removed().count(id()) > 0; }
  // Makes `node` leave the cluster through the metadata log's leader
  // ("cluster.remove"): begins its leave (its data streams to the new
  // replicas), or with `force` unseats it at once. Returns the epoch after
  // the change. Inside a fiber.
  Result<uint64_t> RemoveMember(NodeId node, bool force);
  // Called with each join attempt's outcome: OK once seated, the refusal
  // or the error otherwise (mks-node logs them).
  void set_on_join(std::function<void(const Status&)> callback) { on_join_ = std::move(callback); }
  // Called after the node published a new ring.
  void set_on_ring(std::function<void(const Ring&)> callback) { on_ring_ = std::move(callback); }
  const RpcEndpoint& rpc() const { return *rpc_; }
  const HybridLogicalClock& hlc() const { return hlc_; }
  const NodeOptions& options() const { return options_; }
  const NodeStats& stats() const { return stats_; }

 private:
  Node(NodeOptions options, Environment env, runtime::Scheduler* scheduler,
       runtime::ProcessId process);
  Status Recover();
  // Starts the metadata log, bootstrapping the cluster when this node is one
  // of options_.members and holds no cluster state.
  Status StartRaft();
  void RegisterClientMethods();
  void RegisterClusterMethods();
  // Rebuilds the ring when the applied metadata moved past the ring's epoch.
  void OnMetadataApplied();
  void EpochLoop();
  void JoinLoop();
  // One round over the seeds: OK, a refusal for good (InvalidArgument), or
  // the last seed's error.
  Status TryJoin();
  void VoterLoop();
  // One reconciling change of Raft's configuration, if one is due.
  void ReconcileVoters();
  // Removes one member gossip has held dead for dead_remove_after_ms.
  void RemoveLongDead();
  bool IsAlive(NodeId node) const;
  Result<std::string> ServeJoin(const RpcRequest& request);
  Result<std::string> ServeRemove(const RpcRequest& request);
  Result<std::string> ServeRemovedNotice(const RpcRequest& request);
  // As leader: tells removed nodes gossip holds alive that they are removed.
  void NotifyRemoved();
  // nullopt on the leader (serve it here); else the reply of the node this
  // one believes leads, or Unavailable when it knows none or the request
  // was forwarded `hops` times already (at most kMaxForwardHops).
  std::optional<Result<std::string>> ForwardToLeader(const std::string& method,
                                                     const std::string& payload,
                                                     uint32_t hops);
  // Unavailable, saying which, while a membership change other than one of
  // `node` runs.
  Status RefuseIfChanging(NodeId node) const;
  // As leader: proposes the finish of a transition whose partitions all flipped.
  void FinishTransition();
  Status ReportStreamed(uint64_t begin_epoch, const std::vector<PartitionId>& partitions);
  std::string ChangeResponse(raft::Index index) const;
  // Issues the next write timestamp, raising the durable ceiling first when
  // the timestamp would reach it.
  Result<Timestamp> NextTimestamp();

  const NodeOptions options_;
  Environment env_;
  runtime::Scheduler* const scheduler_;
  const runtime::ProcessId process_;
  HybridLogicalClock hlc_;
  // Invariant: every timestamp this node has issued, before or after any
  // restart, has physical_ms < ceiling_ms_, and ceiling_ms_ is durable.
  uint64_t ceiling_ms_ = 0;
  std::unique_ptr<Store> store_;
  std::unique_ptr<RpcEndpoint> rpc_;
  std::unique_ptr<gossip::Gossip> gossip_;  // may be null
  std::unique_ptr<ReplicaService> replica_;
  std::unique_ptr<Coordinator> coordinator_;
  ClusterState cluster_;
  std::unique_ptr<StreamService> stream_;
  std::unique_ptr<raft::Raft> raft_;
  // Invariant: null, or cluster_.BuildRing() as of the last
  // OnMetadataApplied.
  std::shared_ptr<const Ring> ring_;
  std::function<void(const Ring&)> on_ring_;
  // Told by the leader that it was removed at evicted_epoch_ (its own log
  // may never say so): it serves nothing, and drops what it holds, until
  // its log seats it again at a later epoch.
  bool evicted_ = false;
  bool finishing_ = false;  // a fiber proposes a transition's finish
  uint64_t evicted_epoch_ = 0;
  std::map<NodeId, int64_t> removed_notified_ns_;  // as leader
  std::function<void(const Status&)> on_join_;
  NodeStats stats_;
};

}  // namespace mks
