// Coordinator: runs one client operation against the replicas of its key.
//
// Any node coordinates any get, put or delete (there is no leader). For a key
// the ring gives N replicas; the coordinator sends the operation to all N and
// waits for as many answers as the consistency level asks:
//
//   write (put or delete): the coordinator stamps a new version with its own
//     hybrid logical clock (replicas stamp nothing), sends it to the N
//     replicas, and succeeds once W of them acknowledged that they hold it
//     durably (synced). Replicas that answer later still apply it.
//   read: the coordinator asks the N replicas for their newest version,
//     waits for R successful answers, and returns the greatest version among
//     them. Read repair: the answering replicas that returned an older
//     version, or none, are sent the newest one; those among the R needed for
//     the quorum are repaired (and must acknowledge) before the reply. The
//     answers still in flight are awaited in the background (until the
//     read's deadline, whether it succeeded or not); then every answering
//     replica older than the newest version of all answers is sent it, so a
//     late answer newer than the one returned (or than "not found") repairs
//     the replicas the reply was built from.
//   damaged replicas: a replica whose record failed its checksum answers
//     Corruption, which counts as no answer. Once K = DamageRepairAnswers(N)
//     other replicas answered (a majority of N, or all N - 1 others when
//     that is fewer), it is sent their newest version as a repair that may
//     replace the damaged record, or, when none of them holds a version,
//     told to drop it ("replica.drop_damaged"). A write acknowledged by W
//     replicas with K + W > N is among any K answers of the others, so it
//     survives the loss of one replica's record; a write with K + W <= N
//     (ONE, with N >= 2) may not, if the damaged record was its only copy
//     among those answering. With N = 1 a damaged record stays: there is no
//     other copy to restore it from.
//
// With R + W > N every read quorum meets every write quorum, so a read that
// begins after a write was acknowledged returns that write or a newer one.
//
// During a membership change (core/cluster_state.h) a partition may have
// pending replicas besides its serving ones (core/ring.h). A write goes to
// both and succeeds once W of the serving list and W of the future list
// acknowledged it, so it is on W replicas of whichever list reads use,
// before and after the partition flips. Reads ask the serving replicas;
// their repairs reach the pending ones too, and a read returns once R of
// the serving and R of the future list hold its answer. A replica whose
// ring moved the key's partition after the coordinator's ring refuses with
// StaleEpoch (epoch fencing, core/replica.h): the coordinator then waits
// for its node's newer ring, until the operation's deadline, and redoes
// the operation on it.
//
// Replicas the node's gossip view holds as dead or left are not sent to
// and not waited for: when the live ones cannot make the quorum, the
// operation fails at once, saying how many replicas are alive and how many
// it needs.
//
// Outcomes. Success is never reported without the quorum. A write that did
// not reach W acknowledgements before the deadline fails with Unavailable
// whose message says how many replicas acknowledged and how many were needed;
// such a write may still have been applied by some replicas (its outcome is
// unknown to the client) and may later spread by read repair. A read that
// did not get R answers fails with Unavailable likewise; it changed nothing
// (repairs only ever spread versions that some coordinator wrote). Bad input
// (empty or oversized key or value, a count outside 1..N) is InvalidArgument
// and nothing is sent. "Not found" is a successful read whose result has
// found == false; it is never an error.
//
// The coordinator runs on the node's scheduler; Get/Put/Delete must be called
// from a fiber of the node's process and wait there.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/env.h"
#include "core/hlc.h"
#include "core/ring.h"
#include "core/rpc.h"
#include "core/runtime/scheduler.h"
#include "core/status.h"
#include "core/store.h"

namespace mks {

class ReplicaService;

// How many replicas must answer. kDefault takes the cluster's configured
// default for reads or writes; kCount takes an explicit number (R or W).
enum class ConsistencyLevel : uint8_t { kDefault, kOne, kQuorum, kAll, kCount };

struct Consistency {
  ConsistencyLevel level = ConsistencyLevel::kDefault;
  uint32_t count = 0;  // meaningful only for kCount; then 1..N

  static Consistency Default() { return {}; }
  static Consistency One() { return {ConsistencyLevel::kOne, 0}; }
  static Consistency Quorum() { return {ConsistencyLevel::kQuorum, 0}; }
  static Consistency All() { return {ConsistencyLevel::kAll, 0}; }
  static Consistency Count(uint32_t count) {
    return {ConsistencyLevel::kCount, count};
  }
  friend bool operator==(const Consistency&, const Consistency&) = default;
};

// Parses "one", "quorum", "all", "default" (any case) or a decimal count
// ("2"). InvalidArgument naming the text otherwise (a count of 0 included).
Result<Consistency> ParseConsistency(std::string_view text);
// "ONE", "QUORUM", "ALL", "DEFAULT", or the count in decimal.
std::string ToString(Consistency consistency);

// The number of answers `consistency` needs from `replication_factor`
// replicas: ONE 1, QUORUM floor(N/2)+1, ALL N, a count itself.
// InvalidArgument for a count outside 1..N, or for kDefault (resolve it
// first). Requires replication_factor >= 1.
Result<uint32_t> RequiredReplies(Consistency consistency,
                                 uint32_t replication_factor);

// How many other replicas must have answered before a coordinator repairs
// a replica whose record of the key is damaged: a majority of N, or the
// N - 1 others when fewer (N = 2); more than N - 1 (never) when N = 1.
uint32_t DamageRepairAnswers(uint32_t replication_factor);

struct CoordinatorOptions {
  Consistency default_read = Consistency::Quorum();
  Consistency default_write = Consistency::Quorum();
  // How long one operation may take, from start to reply, read repair
  // before the reply included.
  int64_t timeout_ns = 1'000'000'000;
  // Timeout of a background read repair message.
  int64_t background_repair_timeout_ns = 1'000'000'000;
};

// Counters for /metrics and the simulator's summary. Each operation lands in
// exactly one of ok / not_found / failed buckets of its kind.
struct CoordinatorStats {
  uint64_t reads_ok = 0;          // found a live value
  uint64_t reads_not_found = 0;   // no version, or a tombstone
  uint64_t reads_failed = 0;      // quorum not reached or bad input
  uint64_t writes_ok = 0;         // puts and deletes acknowledged by W
  uint64_t writes_failed = 0;     // quorum not reached or bad input
  uint64_t quorum_failures = 0;   // reads or writes short of their quorum
  uint64_t read_repairs_foreground = 0;  // repair messages awaited before a reply
  uint64_t read_repairs_background = 0;  // repair messages sent after a reply
  uint64_t damaged_repairs = 0;          // damaged replicas repaired or dropped
  uint64_t replica_messages = 0;         // replica requests sent (remote or local)
  uint64_t stale_retries = 0;  // attempts redone on a newer ring (epoch fencing)
  uint64_t pending_writes = 0;  // writes that also went to pending replicas
};

// A read's answer.
struct ReadResult {
  // True when the newest version is a live value. False for "not found": no
  // replica that answered held a version, or the newest is a tombstone.
  bool found = false;
  // The newest version among the answers (a tombstone included); absent
  // when no answering replica held any version of the key.
  std::optional<Version> version;
  uint32_t replies = 0;  // successful replica answers counted (>= R)
};

// A write's answer.
struct WriteResult {
  Version version;    // the version the coordinator stamped and replicated
  uint32_t acks = 0;  // acknowledgements received before the reply (>= W)
};

// The ring the coordinator routes by, asked each time an operation starts,
// so a later membership change can swap the ring. Null while the node knows
// no member list (a newcomer found by gossip): every operation then fails
// with Unavailable saying so.
using RingSource = std::function<std::shared_ptr<const Ring>()>;

// True for a replica known to be down (dead or left in the node's gossip
// view): it is neither sent to nor waited for. Null: every replica is up.
using DownSource = std::function<bool(NodeId)>;

// Issues the timestamp of a new version: strictly greater than every
// timestamp this node issued before, across restarts (see core/node.h). May
// fail when the node cannot make its timestamp ceiling durable.
using TimestampSource = std::function<Result<Timestamp>()>;

// Test hooks that plant known bugs (the checker must catch every one). All
// false in production; only the simulator's canary scenarios set them.
struct CoordinatorCanaries {
  bool ack_before_quorum = false;    // acknowledge a write after one ack
  bool skip_read_repair = false;     // never repair stale replicas
  bool winner_by_value = false;      // reads pick the greatest value, not version
  bool ignore_tombstones = false;    // reads skip tombstones when picking
  bool clock_ignores_reads = false;  // versions read do not advance the HLC
  // A read replies once repairs are sent, counting their targets as holders.
  bool reply_before_repair = false;
  // Writes during a transition go to the serving replicas only, and W is
  // counted on them alone.
  bool skip_pending_replicas = false;
};

class Coordinator {
 public:
  // Every pointer must outlive the coordinator. `local` is this node's
  // replica service (the coordinator calls it directly instead of sending
  // itself a message); `rpc` reaches the other replicas; `hlc` folds in the
  // timestamps replicas report; `next_timestamp` stamps writes.
  Coordinator(runtime::Scheduler* scheduler, runtime::ProcessId process,
              RpcEndpoint* rpc, ReplicaService* local, HybridLogicalClock* hlc,
              RingSource ring, TimestampSource next_timestamp,
              CoordinatorOptions options, DownSource known_down = nullptr);
  Coordinator(const Coordinator&) = delete;
  Coordinator& operator=(const Coordinator&) = delete;

  // Reads `key` at `consistency` (see the file comment for outcomes).
  Result<ReadResult> Get(std::string_view key,
                         Consistency consistency = Consistency::Default());
  // Writes `value` under `key`.
  Result<WriteResult> Put(std::string_view key, std::string value,
                          Consistency consistency = Consistency::Default());
  // Deletes `key` by writing a tombstone; acknowledged like a put.
  Result<WriteResult> Delete(std::string_view key,
                             Consistency consistency = Consistency::Default());

  const CoordinatorStats& stats() const { return stats_; }
  const CoordinatorOptions& options() const { return options_; }
  void set_canaries(CoordinatorCanaries canaries) { canaries_ = canaries; }

 private:
  // Replica requests of one operation still awaiting their answers.
  struct InFlightAnswers;
  // What the replicas of one read answered so far.
  struct ReadAnswers {
    // Successful answers in arrival order: each replica's newest version.
    std::vector<std::pair<NodeId, std::optional<Version>>> valid;
    std::vector<NodeId> damaged;  // answered Corruption: they lost the record
  };
  // The repairs of one read, foreground and background.
  struct RepairState {
    std::string key;
    uint64_t ring_epoch = 0;
    uint32_t replicas = 0;  // N of the key's partition
    // A transition's pending replicas of the partition: repairs reach them
    // too, so the version stays held by R replicas once they serve.
    std::vector<NodeId> pending;
    std::vector<NodeId> future;  // the partition's future list
    uint32_t needed_future = 0;  // R on the future list
    int64_t deadline_ns = 0;
    // What the repairs before the reply carried, and to whom.
    std::optional<Version> sent_version;
    std::vector<NodeId> sent_to;
  };
  Result<WriteResult> Write(std::string_view key, Version version,
                            Consistency consistency);
  // One attempt of a write or a read on the ring `ring`, by `deadline_ns`.
  // *stale is set when a replica refused it as routed by an older ring.
  Result<WriteResult> WriteOnce(const Ring& ring, std::string_view key, const Version& version,
                                Consistency consistency, int64_t deadline_ns, bool* stale);
  Result<ReadResult> GetOnce(const Ring& ring, std::string_view key, Consistency consistency,
                             int64_t deadline_ns, bool* stale);
  // Waits until this node's ring is newer than `epoch` or `deadline_ns`
  // passes; returns the ring then.
  std::shared_ptr<const Ring> AwaitNewerRing(uint64_t epoch, int64_t deadline_ns);
  // Unavailable: this node has no ring to route by.
  Status NoRing() const;
  Result<uint32_t> Required(Consistency consistency, bool is_read,
                            uint32_t replication_factor) const;
  // The replicas of `replicas` not known down, in order, and a message
  // naming the down ones ("" when none is).
  std::vector<NodeId> LiveReplicas(std::span<const NodeId> replicas,
                                   std::string* down_names) const;
  // Unavailable at once: fewer live replicas than `needed`.
  Status TooFewAlive(std::string_view what, std::string_view key, size_t live,
                     uint32_t needed, uint32_t replicas,
                     const std::string& down_names) const;
  runtime::Future<std::string> SendToReplica(NodeId replica,
                                             std::string_view method,
                                             std::string payload,
                                             int64_t timeout_ns);
  // Whether a read prefers `candidate` over the best answer so far.
  bool Newer(const Version& candidate, const std::optional<Version>& best) const;
  // Adds one replica's reply to *answers; false when it is no valid answer
  // (an error, or a malformed reply).
  bool TakeReadAnswer(NodeId replica, const Result<std::string>& reply,
                      ReadAnswers* answers);
  // The greatest version among the valid answers, by Newer.
  std::optional<Version> NewestOf(const ReadAnswers& answers) const;
  // Sends `newest` to the answering replicas that hold an older version or
  // none (noting them in *repair), and waits until `needed` replicas hold
  // it. Unavailable when they cannot by the read's deadline.
  Status RepairBeforeReply(const Version& newest, const ReadAnswers& answers,
                           uint32_t needed, RepairState* repair);
  // In a fiber of its own, unless nothing is left to do: waits for the
  // answers still in flight, then RepairInBackground.
  void FinishRead(RepairState repair, ReadAnswers answers,
                  InFlightAnswers in_flight);
  // Sends the newest version of all answers to every answering replica
  // that holds an older one and was not sent it yet, and repairs the
  // damaged replicas when a majority answered (see the file comment).
  void RepairInBackground(const RepairState& repair, const ReadAnswers& answers);

  runtime::Scheduler* const scheduler_;
  const runtime::ProcessId process_;
  RpcEndpoint* const rpc_;
  ReplicaService* const local_;
  HybridLogicalClock* const hlc_;
  const RingSource ring_;
  const TimestampSource next_timestamp_;
  const DownSource known_down_;  // may be null
  const CoordinatorOptions options_;
  CoordinatorCanaries canaries_;
  CoordinatorStats stats_;
};

}  // namespace mks
