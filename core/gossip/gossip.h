// Gossip: SWIM failure detection and membership dissemination, with the
// Lifeguard refinements, for one node.
//
// Probing. Once per protocol period the node probes one member, taken in a
// randomized round-robin order (every live member once per round, newcomers
// at a random place): a direct "gossip.ping", and when no ack comes within
// the probe timeout, "gossip.ping_req" through `indirect_checks` other
// members, which probe the target and answer ack or nack. No ack by the end
// of the period makes the target suspect.
//
// Suspicion (Lifeguard's dynamic suspicion, core/gossip/suspicion.h). A
// suspected member is declared dead when its suspicion times out; the
// timeout starts long and shrinks as other members confirm the suspicion.
// A member that hears it is suspected (or dead) at its incarnation refutes:
// it raises its incarnation and announces itself alive, which overrides.
//
// A suspect hears of its suspicion directly too (Lifeguard's buddy
// system): a probe of a suspect carries the suspicion, and every ack
// carries the responder's own record. Before declaring a member dead, the
// node probes it again (twice, direct then indirect, with the suspicion): a
// member whose refutation was lost in gossip refutes in an ack and lives.
//
// Local health (Lifeguard). A score from 0 to max_local_health rises when
// this node's own probes fail without even the nacks of its helpers (the
// fault is likely here), when it has to refute, and when its loop runs
// late (a tick more than a period overdue: a pause, an overloaded machine);
// it falls with every successful probe. Probe interval and timeout scale by
// (1 + score), so a sick node probes less and waits longer instead of
// accusing healthy members. A suspicion timer that fires a period late is
// also extended by the minimum timeout once, so a node waking from a pause
// first hears the refutations that waited for it.
//
// Dissemination. Every membership change is piggybacked on the following
// pings, acks and probe requests (BroadcastQueue), each about
// retransmit_mult * log10(n) times; pings also carry the sender's own
// record, so a receiver learns where to answer. What a node learns from a
// whole view (push-pull, or its configured peers) is not gossiped on, but
// for a member back from the dead and the push-pull caller's own record:
// hundreds of records that are news to one node only would otherwise
// delay the few that matter to all. Every push_pull_interval
// (longer in clusters above 32 members) the node exchanges its whole view
// with one member ("gossip.push_pull"), every other time with a member it
// believes dead, so partitions heal once they end. A newcomer joins by a
// push-pull with one of its seed addresses, retried until one answers; a
// node that finds itself alone retries its seeds too.
//
// Incarnations. A node's incarnation is its boot number times 2^20 plus its
// refutations. The boot number is one more than the durable boot counter
// (two checksummed copies, "g/boot/a" and "/b", written together) and at
// least the wall clock's milliseconds, so a restarted member comes back
// above every record of its earlier life even if both copies were lost.
//
// Messages per node per period stay constant as the cluster grows: one
// probe and its ack, rarely k indirect probes, a bounded piggyback; only
// push-pull grows with the view, and its interval grows with the cluster.
//
// Runs on the node's scheduler, in fibers of its process; uses only the
// Environment's clock, network (addresses), disk and randomness, and the
// node's RpcEndpoint.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/env.h"
#include "core/gossip/broadcast_queue.h"
#include "core/gossip/member_table.h"
#include "core/gossip/suspicion.h"
#include "core/random.h"
#include "core/rpc.h"
#include "core/runtime/scheduler.h"
#include "core/status.h"

namespace mks::gossip {

struct GossipOptions {
  int64_t probe_interval_ns = 1'000'000'000;
  int64_t probe_timeout_ns = 500'000'000;
  uint32_t indirect_checks = 3;
  // Suspicion timeouts: min = suspicion_mult * max(1, log10(n)) * interval,
  // max = suspicion_max_mult * min (see suspicion.h).
  uint32_t suspicion_mult = 4;
  uint32_t suspicion_max_mult = 6;
  uint32_t retransmit_mult = 4;
  uint32_t max_piggyback = 8;  // updates per message
  int64_t push_pull_interval_ns = 30'000'000'000;
  uint32_t max_local_health = 8;
  int64_t join_retry_ns = 1'000'000'000;
  // Seed addresses ("host:port") a newcomer joins through. Empty: a node
  // that starts a cluster, or one that knows its peers already (Seed()).
  std::vector<std::string> seeds;
};

// Planted bugs for the simulator's canaries; all false in production.
struct GossipCanaries {
  bool no_refute = false;                 // a suspected member never refutes
  bool no_indirect_probes = false;        // failed probes skip ping_req
  bool restart_incarnation_zero = false;  // every start at incarnation 0
};

struct GossipStats {
  uint64_t probes = 0;              // direct pings sent by the prober
  uint64_t probe_failures = 0;      // ... that got no ack in time
  uint64_t indirect_probes = 0;     // ping_req sent
  uint64_t indirect_acks = 0;       // ... answered ack
  uint64_t nacks = 0;               // ... answered nack
  uint64_t suspicions = 0;          // members this node suspected itself
  uint64_t deaths_declared = 0;     // members this node declared dead
  uint64_t refutations = 0;         // suspicions or deaths of self refuted
  uint64_t updates_applied = 0;     // records that changed the view
  uint64_t push_pulls = 0;          // push-pull exchanges completed (as caller)
  uint64_t joins = 0;               // joins through a seed completed
  uint64_t late_ticks = 0;          // probe ticks a period or more overdue
  uint64_t suspicions_extended = 0; // suspicion timers extended after a late fire
  uint64_t boot_write_failures = 0; // the boot counter could not be synced
  uint64_t id_conflicts = 0;        // records of this id from another address
  uint64_t last_probes = 0;         // direct probes before declaring a death
  uint64_t last_probe_refutations = 0;  // ... that spared the member
};

// A change of one member's state in this node's view.
struct MemberChange {
  NodeId node = kNoNode;
  std::optional<MemberState> before;  // absent: the member was unknown
  uint64_t before_incarnation = 0;    // when `before` is present
  MemberRecord after;
  // This node declared it (suspect or dead by its own probes and timers).
  bool by_self = false;
};
using ChangeListener = std::function<void(const MemberChange&)>;

class Gossip {
 public:
  // `scheduler`, `rpc` and `env`'s pointees must outlive the gossip;
  // `process` is the node's. `self` is where this node listens (its peer
  // address must be one the Network accepts). Registers the gossip methods
  // on `rpc`.
  Gossip(runtime::Scheduler* scheduler, runtime::ProcessId process, RpcEndpoint* rpc,
         const Environment& env, Addresses self, GossipOptions options);
  Gossip(const Gossip&) = delete;
  Gossip& operator=(const Gossip&) = delete;

  // Raises the durable boot counter and starts probing, push-pull and,
  // given seeds, joining. Returns the Disk's read errors. A damaged copy of
  // the counter reads as 0 (the other copy, or the wall clock, then keeps
  // the boot ahead, see the file comment). A failed write of it is counted and retried every
  // period, not fatal; until it lands the node stays quiet (sends nothing,
  // answers Unavailable), so no incarnation is ever announced twice.
  Status Start();
  // True once this incarnation is durable and the node takes part.
  bool announced() const { return boot_synced_; }

  // Adds `address` records of members known from configuration (a static
  // peer list) as alive at incarnation 0, so the node probes them from the
  // start. Any gossip about them overrides these.
  void Seed(NodeId node, const Addresses& addresses);

  // Announces that this node leaves: its record becomes left at a higher
  // incarnation and is sent to up to indirect_checks live members, whose
  // acks it awaits for at most two probe timeouts. Then probing stops.
  // Inside a fiber of the node's process.
  void Leave();

  // This node's view.
  const MemberTable& table() const { return table_; }
  // True when this view holds `node` as dead or left (false if unknown).
  bool IsDown(NodeId node) const;
  // Current local health score, 0 (healthy) to max_local_health.
  uint32_t local_health() const { return health_; }
  const GossipStats& stats() const { return stats_; }
  const GossipOptions& options() const { return options_; }

  // Calls `listener` for every change of this view from now on, after the
  // listeners added before it.
  void AddListener(ChangeListener listener) { listeners_.push_back(std::move(listener)); }
  void set_canaries(GossipCanaries canaries) { canaries_ = canaries; }

 private:
  struct Suspicion {
    uint64_t incarnation = 0;
    NodeId first = kNoNode;          // who suspected first
    std::set<NodeId> confirmations;  // others who suspected the same
    int64_t start_ns = 0;
    bool extended = false;
    runtime::TimerId timer;
  };

  void RegisterHandlers();
  // OK once the boot counter is durable; Unavailable before.
  Status Quiet() const;
  Result<std::string> ServePing(const RpcRequest& request);
  Result<std::string> ServePingReq(const RpcRequest& request);
  Result<std::string> ServePushPull(const RpcRequest& request);

  void ProbeLoop();
  void PushPullLoop();
  void JoinLoop();
  // One probe of `target`: direct, then indirect until `deadline_ns`.
  // Returns whether any ack came. Merges what the answers carry.
  bool Probe(NodeId target, int64_t deadline_ns);
  // A probe of the protocol period, which suspects the target on failure.
  void ProbeOnce(NodeId target, int64_t period_end_ns);
  // The next member to probe, or kNoNode when there is none.
  NodeId NextProbeTarget();
  // Up to `count` live members other than self and `except`, at random.
  std::vector<NodeId> RandomLiveMembers(size_t count, NodeId except);
  bool PushPull(NodeId node, const std::string& address, bool join);

  // Whether a change is gossiped on: always (news from a probe, a ping, a
  // declaration), or only when it brings a member back to life (a record
  // from a whole view exchanged in push-pull, or from configuration).
  enum class Spread : uint8_t { kAlways, kIfRevived };
  // Merges one record heard from the network.
  void Merge(const MemberRecord& record, Spread spread = Spread::kAlways);
  // Applies `record` and does what follows from the change.
  void ApplyChange(const MemberRecord& record, bool by_self, Spread spread = Spread::kAlways);
  void MaybeRefute(const MemberRecord& about_self);
  // Counts `suspect` (a suspect record of a member held suspect at its
  // incarnation) as a confirmation when it comes from a new node.
  void Confirm(const MemberRecord& suspect);
  void StartSuspicion(const MemberRecord& record);
  void ScheduleSuspicionTimer(NodeId node);
  void OnSuspicionTimeout(NodeId node);
  void CancelSuspicion(NodeId node);
  void AdjustHealth(int delta);

  // Payload builders: the sender's record and the piggyback.
  std::vector<MemberRecord> Piggyback(bool with_self);
  int64_t ScaledInterval() const;
  int64_t ScaledTimeout() const;
  void PersistBoot();

  runtime::Scheduler* const scheduler_;
  const runtime::ProcessId process_;
  RpcEndpoint* const rpc_;
  Clock* const clock_;
  Network* const network_;
  Disk* const disk_;
  Random random_;
  const GossipOptions options_;
  MemberTable table_;
  BroadcastQueue broadcasts_;
  std::map<NodeId, Suspicion> suspicions_;
  // Invariant: probe_index_ <= probe_order_.size().
  std::vector<NodeId> probe_order_;
  size_t probe_index_ = 0;
  uint32_t health_ = 0;  // <= options_.max_local_health
  uint64_t boot_ = 0;    // this start's boot counter
  bool boot_synced_ = false;
  bool joined_ = false;
  bool left_ = false;
  std::vector<ChangeListener> listeners_;
  GossipCanaries canaries_;
  GossipStats stats_;
};

}  // namespace mks::gossip
