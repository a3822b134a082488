// The store's protocol in the simulated world: every node is a real
// mks::Node (core/node.h: ring, coordinator, replica service, store on the
// node's simulated disk), and workload clients send get/put/delete to random
// nodes over the simulated network with the cluster's client RPC methods.
//
// Values are unique: a write of client c's operation i carries the value
// "c<c>.<i>." padded to the workload's size, so every value read back names
// the write that produced it.
//
// Liveness phase: anti-entropy does not exist yet, so when the world stops
// the clients, the first client reads every key of the key space at ALL
// (with read repair) until each read succeeds, and repeats such passes (a
// write delayed in the network may land after a pass read its key). That drives every replica of every
// written key to the newest version; the checker then requires the replicas
// of each partition to hold identical records. When anti-entropy lands this
// sweep goes, and convergence must come from the protocol alone.
//
// Every request draws its consistency level from the workload's lists
// (read_levels, write_levels) or takes the cluster default, and reports
// the R or W it asked for in Operation::quorum.
//
// Invariants (KvChecker), N being the ring's replication factor:
//  * No phantom: a read returns either no version or the version of a write
//    or delete that was invoked (value and stamp match that operation, and
//    the version's origin is the node the write was sent to), so a damaged
//    record served as data is caught.
//  * Quorum freshness: a read at R that begins after a write or delete at W
//    of its key was acknowledged, with R + W > N, returns that version or a
//    greater one in the (timestamp, origin) order.
//  * Read repair took effect: once a read at R returned version V, at least
//    R replicas of the key hold V or newer (a record that fails its
//    checksum counts as holding it: rot after the read is not the read's).
//  * Causality through reads: a write coordinated by a node after a read
//    through that node completed is stamped above the version that read
//    returned, unless the node restarted in between or its clock refused a
//    timestamp as too far ahead during the read (core/hlc.h).
//  * Stamp ceiling: every node's store satisfies Store::CheckCeiling at
//    every start and whenever convergence is checked.
//  * Replies answer their calls: every reply a node's RpcEndpoint accepts is
//    addressed to its incarnation and answers a request it sent to the
//    node that replied (sim/rpc_auditor.h).
//  * No lost acknowledged write, no resurrection: once converged, each
//    key's version is >= every acknowledged write or delete of it.
//  * Convergence: the replicas of every partition hold identical records,
//    and no other node holds any (the ring at rest: every membership
//    change finished, each key on exactly its N replicas).
//  * Ring agreement: every ring a node publishes (at start, and after each
//    metadata entry it applies) places data as the cluster's does: the
//    same member list, Q, N and preference lists. The metadata comes from
//    Raft (core/cluster_state.h), every node bootstrapping with the
//    scenario's members; that nodes at the same applied index agree on the
//    epoch too is the RaftChecker's (sim/raft_checker.h).
// The fault model allows one loss: bit rot destroys one replica's record,
// and a write acknowledged by W replicas with W + K <= N, K being the
// answers a damaged replica's repair needs (min(N - 1, floor(N/2) + 1),
// core/coordinator.h), may then be repaired away. Freshness and lost-write
// checks of such a write are waived once its key rotted anywhere after the
// write was invoked; every other write must survive.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/coordinator.h"
#include "core/replica.h"
#include "core/ring.h"
#include "core/stream.h"
#include "sim/protocol.h"

namespace mks {
class Node;
}

namespace mks::sim {

class KvChecker final : public Checker {
 public:
  // `ring` is the cluster's ring (the same on every node).
  explicit KvChecker(Ring ring);
  void Invoke(const Operation& operation) override;
  void Complete(const Operation& operation) override;
  const std::vector<std::string>& violations() const override {
    return violations_;
  }
  Status CheckConverged(const std::vector<std::string>& digests) override;
  void DiskDamaged(NodeId node, std::string_view disk_key, int64_t now_ns) override;
  // Records a violation when `ring`, as node `node` computed it, differs
  // from the cluster's ring (only in Q and N once membership may change).
  void CheckRing(NodeId node, const Ring& ring);
  // The scenario joins or removes members: the member list moves, and its
  // agreement is the RaftChecker's.
  void AllowMembershipChanges() { membership_changes_ = true; }
  // Node `id` keeps its records on `disk` (which outlives the checker's use
  // of it), across incarnations. Reads of replicas' records go there.
  void AttachDisk(NodeId id, Disk* disk);
  // A new incarnation of `id` started as `node` (alive until the matching
  // NodeStopped) over its attached disk, whose stamp ceiling it checks as
  // recovered.
  void NodeStarted(NodeId id, const Node* node);
  // The running incarnation of `id` is gone (crashed).
  void NodeStopped(NodeId id);
  // Records a violation found by a witness of the nodes (sim/rpc_auditor.h).
  void Report(std::string violation) { violations_.push_back(std::move(violation)); }
  // Freshness and lost-write checks waived so far under the bit rot rule.
  uint64_t waived_for_bit_rot() const { return waived_for_bit_rot_; }

 private:
  // A version as the history knows it: (timestamp, origin) and tombstone.
  struct Stamp {
    Timestamp timestamp;
    NodeId origin = kNoNode;
    friend auto operator<=>(const Stamp&, const Stamp&) = default;
  };
  // The greatest stamp among the acknowledged writes and deletes of a key
  // at one W, and which operation it was.
  struct Floor {
    Stamp stamp;
    std::string story;
    int64_t invoke_ns = 0;
    uint32_t quorum = 0;  // the W
  };
  struct KeyHistory {
    // Every value a write of this key carried when invoked, with the
    // operation that carried it and the node it was sent to (which stamps
    // every version of it: more than one when the request was duplicated).
    struct Invoked {
      std::string story;
      NodeId coordinator = kNoNode;
    };
    std::map<std::string, Invoked> invoked_values;
    bool delete_invoked = false;
    std::map<uint32_t, Floor> acked_by_quorum;  // W -> floor
    // Stamps reported by acknowledged writes: stamp -> (value, story).
    std::map<Stamp, std::pair<std::string, std::string>> stamped;
    // When a record of this key rotted, on any node (true time).
    std::vector<int64_t> damaged_ns;
  };
  // What a read in flight must return at least, and what it saw of its
  // coordinator when it began.
  struct ReadStart {
    std::vector<Floor> floors;  // of every W that overlaps the read's R
    uint64_t incarnation = 0;   // of the coordinating node
    uint64_t clock_rejections = 0;
    uint64_t ring_epoch = 0;  // of the newest ring when it began
  };
  // What a write in flight must be stamped above: its coordinator's
  // causal floor when it was invoked.
  struct WriteStart {
    std::optional<Stamp> floor;
    std::string story;
    uint64_t incarnation = 0;
  };
  // The running incarnation of a node, as the checker sees it.
  struct NodeView {
    Disk* disk = nullptr;        // outlives every incarnation
    const Node* node = nullptr;  // null while down
    uint64_t incarnation = 0;
    // The greatest version a read through this incarnation returned, and
    // which read.
    std::optional<Stamp> causal_floor;
    std::string causal_story;
  };
  static std::string Story(const Operation& operation);
  void Violation(const Operation& operation, const std::string& what);
  void CheckRead(const Operation& read, const ReadStart& start);
  void CheckReadRepaired(const Operation& read, const ReadStart& start);
  // The newest ring any node published (the scenario's before any).
  const Ring& Current() const { return latest_ring_ != nullptr ? *latest_ring_ : ring_; }
  void NoteCausalFloor(const Operation& read, const ReadStart& start);
  void CheckWrite(const Operation& write);
  // Checks that the version (stamp, tombstone, value) could only have come
  // from an invoked write of `key`; returns what is wrong, or "".
  std::string PhantomCheck(const std::string& key, const Stamp& stamp,
                           bool tombstone, const std::string& value) const;
  // True when the fault model lets bit rot take `floor`'s write: see the
  // file comment.
  bool WaivedForBitRot(const KeyHistory& history, const Floor& floor) const;
  // Store::CheckCeiling on node `id`'s disk; a violation when it fails.
  void CheckStampCeiling(NodeId id, std::string_view when);
  uint64_t ClockRejections(NodeId id) const;

  const Ring ring_;
  std::shared_ptr<const Ring> latest_ring_;  // null until a node publishes one
  bool membership_changes_ = false;
  const uint32_t repair_answers_;  // K of core's DamageRepairAnswers(N)
  std::map<std::string, KeyHistory> keys_;
  std::map<std::pair<NodeId, uint64_t>, ReadStart> reads_;   // by (client, id)
  std::map<std::pair<NodeId, uint64_t>, WriteStart> writes_;
  std::map<NodeId, NodeView> nodes_;
  uint64_t waived_for_bit_rot_ = 0;
  std::vector<std::string> violations_;
};

// Known bugs planted on every node, for proving that the checker catches
// them (canaries): the scenario's `canaries:` list, or set_canaries(). None
// is set in a normal run.
struct KvCanaries {
  CoordinatorCanaries coordinator;
  ReplicaCanaries replica;
  // Nodes with even ids seat the members by ascending id, ignoring the seat
  // order they were given, so nodes disagree on the ring.
  bool ring_by_ids = false;
  gossip::GossipCanaries gossip;  // sim/gossip_protocol.h names them
  raft::RaftCanaries raft;
  StreamCanaries stream;
};
// The canary names: ack_before_quorum, skip_read_repair, winner_by_value,
// ignore_tombstones, lose_synced_writes, overlap_commits, ack_in_flight,
// ack_shed_puts, ring_by_ids, clock_ignores_reads, reply_before_repair,
// damaged_as_missing, raft_vote_before_sync, raft_commit_old_term,
// raft_keep_conflicting_suffix, write_skip_pending, stream_flip_before_last_batch,
// stream_drop_before_flip; and the gossip canaries
// (sim/gossip_protocol.h).
const std::vector<std::string>& KvCanaryNames();

// Whether `scenario` joins or removes members (timeline join or remove,
// or raft.dead_remove_after_ms).
bool ChangesMembership(const Scenario& scenario);
// Sets the canary `name` in *canaries. InvalidArgument for an unknown name.
Status EnableKvCanary(std::string_view name, KvCanaries* canaries);

class KvProtocol final : public Protocol {
 public:
  // Fails like Ring::Build for an impossible cluster, and with
  // InvalidArgument for R or W outside 1..N or an unknown canary.
  static Result<std::unique_ptr<KvProtocol>> Make(const Scenario& scenario);
  std::string name() const override { return "kv"; }
  std::unique_ptr<ProtocolNode> StartNode(const NodeContext& context) override;
  std::unique_ptr<WorkloadClient> StartClient(
      const ClientContext& context) override;
  Checker& checker() override { return checker_; }
  // The cluster's members in seat order: the scenario's `store.seats`, or
  // ascending ids.
  const MemberList& members() const { return members_; }
  // Applies to nodes started from now on.
  void set_canaries(KvCanaries canaries) { canaries_ = canaries; }

 private:
  KvProtocol(Ring ring, const Scenario& scenario)
      : members_(ring.member_list()),
        replicas_(ring.replication_factor()),
        default_read_(scenario.read_consistency),
        default_write_(scenario.write_consistency),
        checker_(std::move(ring)) {
    if (ChangesMembership(scenario)) checker_.AllowMembershipChanges();
  }
  MemberList members_;
  const uint32_t replicas_;
  const Consistency default_read_;
  const Consistency default_write_;
  KvChecker checker_;
  KvCanaries canaries_;
};

}  // namespace mks::sim
