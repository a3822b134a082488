// ReplicaService: a node's side of replication. Coordinators (this node's
// own, directly; other nodes', over RPC methods "replica.put" and
// "replica.get") store versions here and read them back.
//
// A put applies the version with a synced write before it is acknowledged,
// so an acknowledged version survives a crash of this node. Applying is
// last-writer-wins (core/store.h): a put of an older version is acknowledged
// without changing anything, because the replica then holds a version at
// least as new, which is all a coordinator's quorum needs.
//
// Concurrent puts share one synced write (group commit), and the node keeps
// serving while it is in flight. A committer fiber takes the puts waiting,
// decides their winners (Store::PrepareBatch), and writes them with one
// synced Disk::WriteAsync; the puts that arrive meanwhile wait, and form the
// next group once that write completes. One group is in flight at a time,
// because a group's winners rest on what the disk held before it. The first
// group after a quiet spell waits one turn of the event loop, so the puts
// delivered in that turn join it. A put is never acknowledged before its
// own record is synced.
//
// The waiting puts are bounded (ReplicaOptions): a replica that falls behind
// (a slow disk, or the replica a quorum does not wait for, at W < N) refuses
// new puts with ResourceExhausted instead of queueing without limit, and a
// waiting put whose caller's deadline has passed is failed with TimedOut
// rather than written, since nobody waits for its answer. Either way the put
// is not acknowledged; read repair (and anti-entropy, once it exists) brings
// the version later.
//
// Every received timestamp is folded into the node's hybrid logical clock
// (causality). A new write stamped further ahead of this node's wall clock
// than the clock's maximum offset is refused with InvalidArgument and
// counted: a node with a wild clock must not plant versions that would win
// every conflict for as long as its clock is off. A repair is different: it
// spreads a version that already won on some replica, so refusing it would
// only keep the replicas apart forever (a version stamped while the clocks
// stood far ahead could then never converge). Repairs are applied whatever
// their stamp; their timestamp is folded into the clock only when within
// the offset. The cost: a version from a wild clock that reached one
// replica (its own coordinator's, at W = 1) can spread by repair.
//
// A record that fails its checksum is never served and never quietly
// dropped: reads of it fail with Corruption, so a coordinator counts this
// replica as unable to answer rather than as holding nothing, and it stays
// until a coordinator that heard from a majority of the other replicas
// replaces it with their newest version (a repair put) or, when they hold
// none, removes it ("replica.drop_damaged"). See core/store.h.
//
// Epoch fencing. Every request carries the epoch of the ring its
// coordinator routed it by. A replica refuses, with StaleEpoch, a request
// whose epoch is below the fence epoch of its key's partition on this
// node's ring (the epoch its replicas last changed, core/ring.h): such a
// coordinator is behind on a transition and would count the wrong
// replicas (one about to drop the partition, or one that lacks it). Other
// requests are served whether or not the ring places the key here.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "core/hlc.h"
#include "core/rpc.h"
#include "core/runtime/future.h"
#include "core/runtime/scheduler.h"
#include "core/status.h"
#include "core/store.h"

namespace mks {

namespace proto {
class Version;
}

// Wire form of a version of `key` (core/proto/mks.proto).
void VersionToProto(std::string_view key, const Version& version,
                    proto::Version* out);
// Reads a version from the wire. InvalidArgument when a field is missing or
// malformed (no timestamp, origin 0, a tombstone with a value); limits are
// checked by the store, not here.
Result<Version> VersionFromProto(const proto::Version& message);

struct ReplicaOptions {
  // Bounds on the puts waiting for a group commit (the group in flight not
  // included). A put that would exceed either is refused. Both at least 1;
  // one put larger than max_waiting_bytes is still taken when none waits.
  uint32_t max_waiting_puts = 1024;
  uint64_t max_waiting_bytes = 64ull << 20;
};

// The deadline of a put whose caller waits for as long as it takes.
inline constexpr int64_t kNoPutDeadline = INT64_MAX;

struct ReplicaStats {
  uint64_t puts = 0;             // put requests served successfully
  uint64_t puts_applied = 0;     // ... of which changed the stored winner
  uint64_t puts_refused = 0;     // bad input, clock offset, or disk error
  uint64_t puts_busy = 0;        // refused: too many puts already waiting
  uint64_t puts_expired = 0;     // failed unwritten: caller's deadline passed
  uint64_t repairs_from_ahead = 0;  // repairs applied beyond the clock offset
  uint64_t group_commits = 0;    // synced writes that carried puts
  uint64_t group_commit_puts = 0;  // puts they carried (>= group_commits)
  uint64_t gets = 0;             // get requests served successfully
  uint64_t gets_failed = 0;      // corruption or disk error
  uint64_t gets_damaged = 0;     // ... of which found a damaged record
  uint64_t damaged_dropped = 0;  // damaged records removed on a quorum's word
  uint64_t fenced = 0;           // requests refused: computed on an older ring
  uint64_t streamed_records = 0;  // records applied from streams
  uint64_t streamed_damaged = 0;  // ... skipped: the record here is damaged
  uint64_t dropped_records = 0;   // records of partitions handed away
};

// The epoch fencing rule's input: the fence epoch (core/ring.h) of the
// partition of `key` on this node's ring, 0 when it has none.
using FenceSource = std::function<uint64_t(std::string_view key)>;

// Test hooks that plant known bugs; false in production.
struct ReplicaCanaries {
  bool no_sync = false;  // acknowledge puts without syncing them
  // Let a group decide its winners while the previous group's write is
  // still in flight.
  bool overlap_commits = false;
  // Acknowledge a group's puts once its write is submitted, not completed.
  bool ack_in_flight = false;
  // Acknowledge the puts refused as busy or expired as if written.
  bool ack_shed_puts = false;
  // Answer a read of a damaged record with "no version".
  bool damaged_as_missing = false;
};

class ReplicaService {
 public:
  // `store`, `hlc`, `rpc` and `scheduler` must outlive the service, and so
  // must `env` when given (its BUGGIFY sites then apply; null: none).
  // Registers the replica methods on `rpc`.
  ReplicaService(Store* store, HybridLogicalClock* hlc, RpcEndpoint* rpc,
                 runtime::Scheduler* scheduler, const Environment* env = nullptr,
                 ReplicaOptions options = {});
  ReplicaService(const ReplicaService&) = delete;
  ReplicaService& operator=(const ReplicaService&) = delete;

  // Applies `version` of `key` durably. Returns whether it changed the
  // stored winner. Inside a fiber the put may wait for other puts to join
  // its synced write (see the file comment). InvalidArgument for a version
  // outside the store's limits or, unless `repair`, stamped too far ahead;
  // ResourceExhausted when too many puts wait already; TimedOut when
  // `deadline_ns` (scheduler time) passed before its group was written. In
  // these cases nothing is written. The store's Corruption or IOError
  // otherwise.
  Result<bool> Put(std::string_view key, const Version& version,
                   bool repair = false, int64_t deadline_ns = kNoPutDeadline);
  // Returns the newest version of `key` held here (a tombstone included), or
  // nullopt when there is none. Corruption when the stored record fails its
  // checksum (it stays, failing every read, until repaired; see the file
  // comment); IOError from the disk.
  Result<std::optional<Version>> Get(std::string_view key);
  // Removes the record of `key` if it is damaged: called when a majority of
  // the other replicas hold no version of the key. Returns whether it was
  // removed now; while a group commits, the removal waits for the group and
  // false is returned. Fails with the store's errors.
  Result<bool> DropIfDamaged(std::string_view key);
  // OK when `version` of `key` is within the store's limits (see
  // Store::Validate); lets a coordinator refuse bad input before sending.
  Status Validate(std::string_view key, const Version& version) const {
    return store_->Validate(key, version);
  }
  size_t max_key_bytes() const { return store_->options().max_key_bytes; }
  // Serves one serialized replica request ("replica.put", "replica.get" or
  // "replica.drop_damaged")
  // and returns the serialized response: the RPC handlers and the local
  // coordinator share this path. `deadline_ns` is when the caller stops
  // waiting (scheduler time). InvalidArgument for an unknown method or
  // unparsable bytes; otherwise Put's or Get's errors.
  Result<std::string> Serve(std::string_view method, std::string_view payload,
                            int64_t deadline_ns = kNoPutDeadline);

  // Epoch fencing: a put, get or drop whose ring_epoch is below the fence
  // epoch of its key's partition fails with StaleEpoch (its coordinator
  // catches up and retries), so a coordinator behind on a transition never
  // counts a replica that is about to drop the key, or that lacks it.
  void set_fence(FenceSource fence) { fence_ = std::move(fence); }

  // Returns once every put accepted before the call is settled (written or
  // failed). Inside a fiber. What a stream source and a partition drop
  // wait for: an accepted put is on disk before either reads.
  void Barrier();
  // Applies streamed `records` (versions that won on another replica) by
  // the timestamp rule with synced group commits, waiting for room among
  // the waiting puts rather than refusing. A record that cannot be applied
  // because the one here is damaged is skipped and counted (read repair
  // replaces it). Inside a fiber. Fails with the disk's error.
  Status ApplyStreamed(std::vector<Record> records);
  // Removes up to `max_records` records of `partition` (no tombstones
  // left), between group commits. Returns how many; 0 when none is left.
  // Inside a fiber. Fails with the disk's error.
  Result<uint64_t> DropPartitionBatch(uint32_t partition, size_t max_records);

  const ReplicaStats& stats() const { return stats_; }
  void set_canaries(ReplicaCanaries canaries) { canaries_ = canaries; }

 private:
  Result<std::string> ServePut(std::string_view payload, int64_t deadline_ns);
  Result<std::string> ServeGet(std::string_view payload);
  Result<std::string> ServeDropDamaged(std::string_view payload);
  // Applies one record (synced unless the no_sync canary is set), joining a
  // group commit when called inside a fiber.
  Result<bool> ApplyDurably(std::string_view key, const Version& version,
                            bool repair, int64_t deadline_ns);
  // ResourceExhausted when a put of `bytes` must not join the waiting ones.
  Status AdmitWaitingPut(uint64_t bytes);
  // A put waiting for its group's write.
  struct PendingPut {
    Record record;
    runtime::Promise<bool> applied;
    int64_t deadline_ns = kNoPutDeadline;  // scheduler time
  };
  // Takes the waiting puts as the next group, failing those whose caller's
  // deadline has passed. May return an empty group.
  std::vector<PendingPut> TakeGroup();
  // The committer fiber's body: commits groups until no put is waiting.
  void RunCommitter();
  // Writes `group` in one batch and fulfils every put's promise.
  void CommitGroup(std::vector<PendingPut> group);
  // For a group whose preparation failed: fails the puts that fail alone
  // and commits the others as one group.
  void CommitWithoutFailingRecords(std::vector<PendingPut> group);
  // Carries out the removals DropIfDamaged deferred while a group committed.
  void DropDeferredDamagedRecords();
  // Writes `batch` with Disk::WriteAsync and waits, in this fiber, for it.
  Status WriteInFlight(WriteBatch batch, WriteOptions options);
  // StaleEpoch when `ring_epoch` is below the fence of `key`'s partition.
  Status CheckFence(std::string_view key, uint64_t ring_epoch);
  // Queues one put for the committer (admitted by the caller).
  runtime::Future<bool> Enqueue(Record record, int64_t deadline_ns, uint64_t bytes);

  Store* const store_;
  HybridLogicalClock* const hlc_;
  runtime::Scheduler* const scheduler_;
  const Environment* const env_;  // may be null
  const ReplicaOptions options_;
  // Invariant: non-empty only while committer_running_: the committer takes
  // these puts as its next group. At most options_.max_waiting_puts long.
  std::vector<PendingPut> pending_;
  // Key and value bytes of pending_'s records. Invariant: at most
  // options_.max_waiting_bytes unless pending_ holds a single put.
  uint64_t pending_bytes_ = 0;
  bool committer_running_ = false;
  // True while a group's write is in flight. Invariant: implies
  // committer_running_ (unless the overlap_commits canary is set).
  bool write_in_flight_ = false;
  // Keys DropIfDamaged was asked to clear while a group was committing; the
  // committer removes those still damaged before its next group.
  std::set<std::string> deferred_drops_;
  ReplicaCanaries canaries_;
  ReplicaStats stats_;
  FenceSource fence_;  // may be null: no fencing
  // Puts ever queued, and how many of the first of them are settled.
  // Invariant: committed_through_ <= accepted_; equal when no committer runs.
  uint64_t accepted_ = 0;
  uint64_t committed_through_ = 0;
};

}  // namespace mks
