// LogStore: the durable state of one Raft node, kept on the node's Disk,
// with an in-memory mirror that is always ahead of (or equal to) the disk.
//
// Records, under keys outside the store's ("v"), the node's ("m/") and
// gossip's ("g/") spaces, each value a mks.proto message followed by its
// CRC-32C:
//   "r/hard/a", "r/hard/b"
//                     RaftHardState: term, vote, cluster id, commit, and
//                     the recovery mark; two copies written in one batch
//   "r/snap"          RaftSnapshot: last index and term covered, the config
//                     then, and the state machine's bytes
//   "r/log/<index>"   RaftEntry, the index as 8 big-endian bytes, for
//                     every index from snapshot index + 1 to the last
// Entries at or below the snapshot's index may linger after a crash in the
// middle of compaction; Load() ignores and later deletes them.
//
// Mutations change the mirror at once and queue a batch; batches are
// written in order, synced, one at a time by a flusher fiber (so later
// batches group behind a sync in flight). Each mutation returns a sequence
// number, and WaitDurable(seq) returns once that batch and every earlier
// one is synced. A failed write (IOError) is retried, the same batches
// again, until it succeeds: rewriting them is idempotent, so durability is
// claimed only for bytes the disk has acknowledged as synced.
//
// Damage (bit rot: a record that fails its checksum). The hard state
// survives one damaged copy. A damaged snapshot or log entry cannot be
// read back, so Load() drops what depends on it: a damaged entry and every
// later one, or a damaged snapshot with the whole log. The node may have
// acknowledged what it dropped, so Load() marks the hard state with
// recover_through, the last index it held, and recover_term, a term no
// lower than that entry's. Until its commit index reaches the mark (the
// entries are back from the leader by then) Raft does not campaign and
// grants votes only to logs at least as up to date as the mark: as if it
// still held what it lost, so every entry it acknowledged and that
// committed is on the candidate (Raft's leader completeness argument needs
// only that comparison).
//
// Invariant: the mirror's log is contiguous from first_index() to
// last_index(); first_index() == snapshot index + 1.
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <vector>

#include "core/env.h"
#include "core/raft/types.h"
#include "core/runtime/scheduler.h"
#include "core/status.h"

namespace mks::raft {

struct HardState {
  Term term = 0;
  NodeId vote = kNoNode;
  std::string cluster_id;  // empty: this node belongs to no cluster yet
  Index commit = 0;        // known committed when written; may lag
  // Non-zero: this node lost entries through this index to damage; until
  // its commit index reaches it, it does not campaign and votes only for a
  // log at least as up to date as (recover_term, recover_through), where
  // recover_term (the term when the loss was found) bounds the lost last
  // entry's term from above.
  Index recover_through = 0;
  Term recover_term = 0;
  friend bool operator==(const HardState&, const HardState&) = default;
};

struct Snapshot {
  Index index = 0;  // 0: none (the log starts at 1)
  Term term = 0;
  Config config;
  std::string data;
};

struct LogStoreStats {
  uint64_t flushes = 0;          // synced writes completed
  uint64_t batches_flushed = 0;  // mutations they carried
  uint64_t write_errors = 0;     // failed writes, retried
  uint64_t stale_entries_deleted = 0;
  // At Load: damaged records found, and entries dropped for them.
  uint64_t hard_copies_damaged = 0;
  uint64_t snapshots_damaged = 0;
  uint64_t entries_damaged = 0;
  uint64_t entries_dropped = 0;
};

class LogStore {
 public:
  // `scheduler` and `disk` outlive the store; the flusher runs in `process`.
  LogStore(runtime::Scheduler* scheduler, runtime::ProcessId process, Disk* disk);

  // Reads every record, dropping what damage made unreadable (see above).
  // Corruption when both hard state copies are damaged (the node cannot
  // know its votes), for a config that does not parse, or a log with a
  // hole. Call once, before any mutation.
  Status Load();
  // True when the disk held no Raft state at all.
  bool empty() const { return empty_; }

  const HardState& hard() const { return hard_; }
  const Snapshot& snapshot() const { return snapshot_; }
  Index first_index() const { return snapshot_.index + 1; }
  Index last_index() const { return snapshot_.index + log_.size(); }
  Term last_term() const { return TermAt(last_index()); }
  // The term of the entry at `index`: the snapshot's term at its index, 0
  // for index 0 or beyond the last; requires index >= snapshot index.
  Term TermAt(Index index) const;
  // Whether TermAt(index) can be answered (index in [snapshot index, last]).
  bool HasTermAt(Index index) const {
    return index >= snapshot_.index && index <= last_index();
  }
  // Requires first_index() <= index <= last_index().
  const Entry& At(Index index) const;
  // Entries from `from` on, at most `max_count` and about `max_bytes`
  // (at least one). Requires first_index() <= from.
  std::vector<Entry> Slice(Index from, size_t max_count, size_t max_bytes) const;

  // ---- Mutations: each returns its batch's sequence number. ----
  uint64_t SetHardState(HardState hard);
  // Deletes every entry from `from` on (from > snapshot index), then
  // appends `entries`, which must continue the log contiguously.
  uint64_t TruncateAndAppend(Index from, std::vector<Entry> entries);
  uint64_t Append(std::vector<Entry> entries) {
    return TruncateAndAppend(last_index() + 1, std::move(entries));
  }
  // Records `snapshot` (its index within the log, or beyond it) and drops
  // the log up to its index, keeping the entries after it; when the log
  // does not hold snapshot.index with snapshot.term, the whole log goes.
  uint64_t SaveSnapshot(Snapshot snapshot);

  // Returns once the batch `seq` and every earlier one is durable. Inside
  // a fiber of the store's process.
  void WaitDurable(uint64_t seq);
  uint64_t durable_seq() const { return durable_seq_; }
  uint64_t last_seq() const { return next_seq_ - 1; }
  // The last log index known durable (entries up to it, as the mirror
  // holds them now, are synced). Truncation lowers it at once.
  Index durable_last_index() const { return durable_last_index_; }
  // Called after every flush, outside any wait.
  void set_on_durable(std::function<void()> callback) { on_durable_ = std::move(callback); }
  // The hard state as last synced (the checker holds this to monotonicity).
  const HardState& durable_hard() const { return durable_hard_; }
  const LogStoreStats& stats() const { return stats_; }

 private:
  struct Pending {
    uint64_t seq;
    WriteBatch batch;
    Index last_index;    // the log's last index once this batch is applied
    Index kept_through;  // entries up to here are the same before and after it
    std::optional<HardState> hard;
  };
  static constexpr Index kAllKept = ~Index{0};
  Status LoadHardState();
  // Reads the snapshot; a damaged one is dropped and sets `lost`.
  Status LoadSnapshot(bool* lost);
  uint64_t Enqueue(WriteBatch batch, std::optional<HardState> hard,
                   Index kept_through = kAllKept);
  void FlushLoop();

  runtime::Scheduler* const scheduler_;
  const runtime::ProcessId process_;
  Disk* const disk_;
  bool empty_ = true;
  HardState hard_;
  HardState durable_hard_;
  Snapshot snapshot_;
  std::deque<Entry> log_;  // log_[i] holds index snapshot_.index + 1 + i
  std::deque<Pending> pending_;
  uint64_t next_seq_ = 1;
  uint64_t durable_seq_ = 0;
  Index durable_last_index_ = 0;
  bool flusher_running_ = false;
  std::vector<std::pair<uint64_t, runtime::Promise<bool>>> waiters_;
  std::function<void()> on_durable_;
  LogStoreStats stats_;
};

// The disk key of the log entry at `index`.
std::string LogKey(Index index);

}  // namespace mks::raft
