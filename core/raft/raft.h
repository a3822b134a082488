// Raft for the cluster's metadata log (DESIGN section 7): one replicated
// log whose applied state is the member list, each member's state, the
// epoch and the cluster id (core/cluster_state.h); the library itself knows
// nothing of what the commands mean.
//
// One Raft per node, single-threaded on the node's scheduler, in fibers of
// the node's process, against core/env.h only: messages through the node's
// RpcEndpoint ("raft.*" methods), durable state through Disk (LogStore,
// core/raft/log_store.h), time through the monotonic clock only (safety
// never depends on clocks; only elections' liveness does).
//
// Rules this library keeps (the simulator's RaftChecker checks each):
//  - election safety: at most one leader per term;
//  - a vote is given once per term, across restarts: term and vote are
//    synced before a vote is answered, and every reply to a request of a
//    term waits until that term is durable;
//  - log matching: an append carries (prev index, prev term); a follower
//    truncates a conflicting suffix and syncs new entries before it
//    acknowledges them;
//  - leader completeness: votes go only to candidates whose log is at
//    least as up to date (last term, then last index);
//  - an entry commits only by counting replicas of an entry of the
//    leader's own term (Raft's figure 8 rule); the leader's own copy
//    counts once it is durable;
//  - state-machine safety: entries apply once each, in index order.
//
// Refinements:
//  - PreVote: a node whose election timer fires first asks the voters
//    whether they would vote for it in the next term, without raising any
//    term; only a majority of yes starts a real election, so a node that
//    was cut off and comes back cannot unseat a healthy leader.
//  - Leader lease (thesis 4.2.3): a node that heard from a leader within
//    the minimum election timeout refuses votes and pre-votes, except for
//    a leadership transfer.
//  - CheckQuorum: a leader that has not heard from a majority of voters
//    within an election timeout steps down.
//  - Fast backtracking: a rejected append names the follower's term at
//    prev index and the first index it holds of that term, so the leader
//    skips a whole term per round trip.
//  - Snapshots: every `snapshot_every_entries` applied entries the state
//    machine's Snapshot() replaces the log up to the applied index; a
//    follower that needs an entry the leader no longer has receives the
//    snapshot ("raft.snapshot"), in one message (metadata is small).
//  - Membership: the latest config entry in a node's log (committed or
//    not) is its config. The leader changes it one server at a time
//    (AddLearner, Promote, Demote, Remove), only once an entry of its own
//    term has committed and no config change is uncommitted, so any two
//    successive voter sets overlap in a majority.
//  - Leadership transfer: the leader stops taking proposals, brings the
//    target up to date, and sends it "raft.timeout_now"; the target
//    campaigns at once, skipping PreVote and the voters' lease.
//
// Proposals: Propose appends on the leader and completes once the entry is
// applied here. A proposal whose leader loses office before it commits
// completes with Unavailable, its outcome unknown (a later leader may still
// commit it): commands must be idempotent or conditional.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/env.h"
#include "core/raft/log_store.h"
#include "core/raft/types.h"
#include "core/rpc.h"
#include "core/runtime/scheduler.h"
#include "core/status.h"

namespace mks::raft {

// The replicated state machine.
class StateMachine {
 public:
  virtual ~StateMachine() = default;
  // Applies the committed command at `index`; called once per command, in
  // index order, on every node (after a restart, from the snapshot on).
  // Must be deterministic: the same commands give the same state anywhere.
  virtual void Apply(Index index, const std::string& command) = 0;
  // The applied state, as bytes Restore accepts. Must not block.
  virtual std::string Snapshot() const = 0;
  // Replaces the whole state by `snapshot`; an error leaves it unchanged.
  virtual Status Restore(const std::string& snapshot) = 0;
};

struct RaftOptions {
  // Election timeouts are drawn uniformly from [min, 2 * min).
  int64_t election_timeout_min_ns = 1'000'000'000;
  int64_t heartbeat_interval_ns = 100'000'000;
  size_t max_entries_per_append = 64;
  size_t max_bytes_per_append = 256 * 1024;
  Index snapshot_every_entries = 1024;
  bool pre_vote = true;
  bool check_quorum = true;  // and the leader lease
};

// Planted bugs for the simulator's canaries; all false in production.
struct RaftCanaries {
  bool vote_before_sync = false;         // a vote is answered before it is durable
  bool commit_old_term = false;          // counts replicas of an older term's entry
  bool keep_conflicting_suffix = false;  // a follower overwrites, never truncates
};

enum class Role : uint8_t { kFollower, kPreCandidate, kCandidate, kLeader };
std::string_view RoleName(Role role);

struct RaftStats {
  uint64_t elections_started = 0;  // real elections (terms raised by this node)
  uint64_t pre_votes_started = 0;
  uint64_t pre_votes_lost = 0;
  uint64_t terms_led = 0;
  uint64_t step_downs_check_quorum = 0;
  uint64_t appends_rejected = 0;   // as follower: log mismatch
  uint64_t entries_truncated = 0;  // as follower
  uint64_t snapshots_taken = 0;
  uint64_t snapshots_sent = 0;
  uint64_t snapshots_installed = 0;
  uint64_t votes_refused_lease = 0;
  uint64_t transfers = 0;          // timeout_now sent
  uint64_t foreign_cluster_refused = 0;
};

// What the simulator's checker watches. Calls happen on the node's thread,
// synchronously, at the moment the fact becomes true.
class RaftObserver {
 public:
  virtual ~RaftObserver() = default;
  virtual void BecameLeader(NodeId node, Term term) = 0;
  // A granted vote (not a pre-vote) is about to be sent.
  virtual void VoteGranted(NodeId node, Term term, NodeId candidate) = 0;
  // As leader of `term`, node counted a quorum of replicas of the entry at
  // `index` (of `entry_term`) and committed through it.
  virtual void CommittedByCount(NodeId node, Term term, Index index, Term entry_term) = 0;
  virtual void Applied(NodeId node, const Entry& entry) = 0;
  // A snapshot replaced node's state up to `index` (the entries it covers
  // are not Applied one by one).
  virtual void SnapshotInstalled(NodeId node, Index index, Term term) = 0;
  virtual void HardStateDurable(NodeId node, const HardState& hard) = 0;
};

class Raft {
 public:
  // `scheduler`, `rpc`, `machine` and `env`'s pointees outlive the Raft;
  // `process` is the node's. Registers the "raft.*" methods on `rpc`.
  Raft(runtime::Scheduler* scheduler, runtime::ProcessId process, RpcEndpoint* rpc,
       StateMachine* machine, const Environment& env, RaftOptions options);
  ~Raft();
  Raft(const Raft&) = delete;
  Raft& operator=(const Raft&) = delete;

  // Reads the durable state (LogStore::Load's errors), restores the state
  // machine from the snapshot and applies the log up to the commit index
  // last written (Corruption when the snapshot does not restore). Then
  // starts the election timer (only a voter of its config campaigns).
  Status Start();

  // Creates a cluster: only on a node with no Raft state (else
  // InvalidArgument). Writes a snapshot at index 1, term 1 holding
  // `config` and `machine_state` (a StateMachine::Snapshot of the initial
  // state), with `cluster_id`, and restores the machine from it. Every
  // member `config` names (voter or learner) that bootstraps must do so
  // with the same arguments. Call after Start. Does not wait for the sync:
  // every later durable write of this node implies it, and a crash that
  // loses it leaves the node with no state, to bootstrap again alike.
  Status Bootstrap(const std::string& cluster_id, const Config& config,
                   const std::string& machine_state);

  // Appends `command` if this node leads and completes once it is applied
  // here: with its index; Unavailable (naming the leader if known) when
  // this node does not lead or is handing over; Unavailable with "outcome
  // unknown" when leadership was lost before the entry committed.
  runtime::Future<Index> Propose(std::string command);
  // Propose on the leader, through "raft.propose" when this node is not it.
  // Inside a fiber. `timeout_ns` bounds the forwarded call.
  Result<Index> ProposeAnywhere(std::string command, int64_t timeout_ns);

  // Membership changes, leader only, one at a time; each completes like a
  // Propose once its config entry is applied here. Errors: Unavailable when
  // not leader, before an entry of this term committed, or while another
  // change is uncommitted; InvalidArgument for a change that does not
  // apply (adding a member twice, promoting a learner not caught up,
  // demoting or removing the leader itself: transfer first).
  runtime::Future<Index> AddLearner(NodeId node);
  runtime::Future<Index> Promote(NodeId node);
  runtime::Future<Index> Demote(NodeId node);
  runtime::Future<Index> Remove(NodeId node);

  // Leader only: hands leadership to `target` (a voter), or when kNoNode to
  // the voter whose log is furthest ahead. Returns once the target was told
  // to campaign; leadership moves when it wins. Inside a fiber.
  Status TransferLeadership(NodeId target = kNoNode);

  // Stops campaigning and leading (a node about to leave or stop); it
  // still answers requests.
  void Quiesce();

  NodeId self() const { return self_; }
  Role role() const { return role_; }
  Term term() const { return store_.hard().term; }
  const std::string& cluster_id() const { return store_.hard().cluster_id; }
  std::optional<NodeId> leader() const {
    return leader_ == kNoNode ? std::nullopt : std::optional<NodeId>(leader_);
  }
  Index commit_index() const { return commit_; }
  Index last_applied() const { return applied_; }
  Index last_index() const { return store_.last_index(); }
  // The latest config in this node's log.
  const Config& config() const { return configs_.rbegin()->second; }
  // The term of the entry at `index` in this node's log, when it holds it
  // (or it is the snapshot's); for the checker.
  std::optional<Term> TermAt(Index index) const {
    if (!store_.HasTermAt(index)) return std::nullopt;
    return store_.TermAt(index);
  }
  const LogStore& store() const { return store_; }
  const RaftStats& stats() const { return stats_; }
  // Leader: the highest index each member is known to hold.
  Index MatchOf(NodeId node) const;

  // Called after each entry is applied here (and after a snapshot is
  // installed), once the state machine holds it.
  void set_on_applied(std::function<void()> callback) { on_applied_ = std::move(callback); }
  void set_observer(RaftObserver* observer) { observer_ = observer; }
  void set_canaries(RaftCanaries canaries) { canaries_ = canaries; }

 private:
  struct Peer {
    Index next = 1;
    Index match = 0;
    bool last_reply_ok = false;      // the last append or snapshot was answered
    int64_t last_heard_ns = 0;       // any reply of this term
    std::optional<runtime::Promise<bool>> wake;  // while its loop waits
  };
  struct Proposal {
    Term term;
    runtime::Promise<Index> promise;
  };

  void RegisterHandlers();
  Result<std::string> ServeVote(const RpcRequest& request);
  Result<std::string> ServeAppend(const RpcRequest& request);
  Result<std::string> ServeSnapshot(const RpcRequest& request);
  Result<std::string> ServeTimeoutNow(const RpcRequest& request);
  Result<std::string> ServePropose(const RpcRequest& request);
  // An error unless `cluster_id` is this node's (a node with none adopts
  // the first leader's).
  Status CheckCluster(const std::string& cluster_id, bool adopt);

  void ResetElectionTimer();
  void OnElectionTimeout();
  void Campaign(bool pre_vote, bool transfer);
  void BecomeFollower(Term term, NodeId leader);
  void BecomeLeader();
  // Raises the term (vote cleared) when `term` is above ours; returns the seq to wait on.
  uint64_t ObserveTerm(Term term);
  bool LogUpToDate(Index last_index, Term last_term) const;

  void ReplicateLoop(NodeId peer, Term term);
  void WakePeer(NodeId peer);
  void WakeAllPeers();
  void SendAppend(NodeId peer, Term term);
  void SendSnapshot(NodeId peer, Term term);
  void AdvanceCommit();
  void CheckQuorumLoop(Term term);

  runtime::Future<Index> AppendAsLeader(EntryType type, std::string data);
  runtime::Future<Index> ChangeConfig(Config next, NodeId subject, const char* what);
  // A failed change: InvalidArgument, "node N is not a <what>".
  runtime::Future<Index> NotA(NodeId node, std::string_view what);
  void ApplyCommitted();
  // Writes the commit index to the hard state when it moved, clearing the
  // damage mark once the commit index reached it.
  void PersistCommit();
  bool Recovering() const { return store_.hard().recover_through > commit_; }
  void MaybeSnapshot();
  void FailProposals(const std::string& why);
  void OnDurable();
  // Re-derives configs_ after the log lost a suffix or took a snapshot.
  void RebuildConfigs();
  int64_t RandomElectionTimeout();
  int64_t ReplyTimeout() const;
  bool Running() const { return scheduler_->IsAlive(process_); }

  runtime::Scheduler* const scheduler_;
  const runtime::ProcessId process_;
  RpcEndpoint* const rpc_;
  StateMachine* const machine_;
  const NodeId self_;
  Random random_;
  const RaftOptions options_;
  LogStore store_;
  Role role_ = Role::kFollower;
  NodeId leader_ = kNoNode;
  // Invariant: applied_ <= commit_ <= store_.last_index(), and
  // commit_ >= store_.snapshot().index.
  Index commit_ = 0;
  Index applied_ = 0;
  // Every config in the log (index -> config), the snapshot's at its index;
  // never empty once started.
  std::map<Index, Config> configs_;
  std::map<NodeId, Peer> peers_;            // leader only
  std::map<Index, Proposal> proposals_;     // leader only, by index
  std::set<NodeId> votes_;                  // this round's grants
  uint64_t campaign_round_ = 0;
  Term leader_first_index_term_ = 0;        // term whose first entry is below
  Index leader_first_index_ = 0;            // the no-op of this leader's term
  int64_t last_leader_contact_ns_ = INT64_MIN / 2;
  runtime::TimerId election_timer_;
  bool transferring_ = false;
  bool quiesced_ = false;
  bool started_ = false;
  std::function<void()> on_applied_;
  RaftObserver* observer_ = nullptr;
  RaftCanaries canaries_;
  RaftStats stats_;
  std::shared_ptr<int> liveness_ = std::make_shared<int>(0);
};

}  // namespace mks::raft
