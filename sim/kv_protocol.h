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
// Invariants (KvChecker):
//  * No phantom: a read returns either no version or the version of a write
//    or delete that was invoked (value and stamp match that operation).
//  * Quorum freshness (when R + W > N): a read that begins after a write or
//    delete of its key was acknowledged returns that version or a greater
//    one in the (timestamp, origin) order.
//  * No lost acknowledged write, no resurrection: once converged, each key's
//    version is >= every acknowledged write or delete of it.
//  * Convergence: the replicas of every partition hold identical records.
//  * Ring agreement: every node, at every start, computes the cluster's
//    ring (same member list, epoch and preference lists).
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
#include "sim/protocol.h"

namespace mks::sim {

class KvChecker final : public Checker {
 public:
  // `ring` is the cluster's ring (the same on every node).
  KvChecker(Ring ring, bool quorums_overlap);
  void Invoke(const Operation& operation) override;
  void Complete(const Operation& operation) override;
  const std::vector<std::string>& violations() const override {
    return violations_;
  }
  Status CheckConverged(const std::vector<std::string>& digests) override;
  // Records a violation when `ring`, as node `node` computed it, differs
  // from the cluster's ring.
  void CheckRing(NodeId node, const Ring& ring);

 private:
  // A version as the history knows it: (timestamp, origin) and tombstone.
  struct Stamp {
    Timestamp timestamp;
    NodeId origin = kNoNode;
    friend auto operator<=>(const Stamp&, const Stamp&) = default;
  };
  struct KeyHistory {
    // Every value a write of this key carried when invoked ("" for
    // deletes), with the operation that carried it.
    std::map<std::string, std::string> invoked_values;  // value -> story
    bool delete_invoked = false;
    // The greatest stamp among acknowledged writes and deletes, and which.
    std::optional<Stamp> acked_floor;
    std::string acked_floor_story;
    // Stamps reported by acknowledged writes: stamp -> (value, story).
    std::map<Stamp, std::pair<std::string, std::string>> stamped;
  };
  struct ReadFloor {
    std::optional<Stamp> stamp;
    std::string story;  // the acknowledged operation that set it
  };
  static std::string Story(const Operation& operation);
  void Violation(const Operation& operation, const std::string& what);
  void CheckRead(const Operation& read, const ReadFloor& floor);
  // Checks that the version (stamp, tombstone, value) could only have come
  // from an invoked write of `key`; returns what is wrong, or "".
  std::string PhantomCheck(const std::string& key, const Stamp& stamp,
                           bool tombstone, const std::string& value) const;

  const Ring ring_;
  const bool quorums_overlap_;
  std::map<std::string, KeyHistory> keys_;
  // For each read in flight, by (client, id): the acknowledged floor of its
  // key when it began, the least it may return.
  std::map<std::pair<NodeId, uint64_t>, ReadFloor> read_floor_;
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
};
// The canary names: ack_before_quorum, skip_read_repair, winner_by_value,
// ignore_tombstones, lose_synced_writes, overlap_commits, ack_in_flight,
// ack_shed_puts, ring_by_ids.
const std::vector<std::string>& KvCanaryNames();
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
  explicit KvProtocol(Ring ring, bool quorums_overlap)
      : members_(ring.member_list()), checker_(std::move(ring), quorums_overlap) {}
  MemberList members_;
  KvChecker checker_;
  KvCanaries canaries_;
};

}  // namespace mks::sim
