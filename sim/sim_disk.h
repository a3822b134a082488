// SimDisk: the simulated twin of the LevelDB engine (disk/).
//
// Fault model. What SimDisk does to the data it holds:
//  * Every write is visible to reads as soon as it returns.
//  * A write becomes durable only when it is synced: written with
//    WriteOptions::sync, or followed by a successful Sync(). Syncing makes
//    every earlier write durable too (one ordered log, as LevelDB's).
//  * Crash() discards everything not durable, except that a random prefix of
//    the unsynced writes survives, in order, in whole batches: a batch is
//    never torn, and a later write never survives without the earlier ones.
//  * CorruptRandomRecord() flips one bit in one stored value, in the durable
//    and the visible state alike. SimDisk does not detect it: it returns the
//    damaged bytes, as a disk with silent bit rot would, and the layers above
//    must catch it by their own checksums.
//  * With a write-error rate set, a Put/Delete/Write/Sync may fail with
//    IOError; a failed write changes nothing, a failed Sync makes nothing
//    durable (the writes stay pending, as after an fsync error).
//  * Once attached to a node's process, WriteAsync takes time: each write
//    lands (is applied, and synced if asked) after a latency drawn from
//    DiskConfig, in the order the writes were submitted, as LevelDB's one
//    writer does; until then reads do not see it. It is reported later
//    still, after a second delay (reports in submission order too): in
//    production the writer thread's outcome waits for the event loop, and
//    meanwhile the loop's reads already see the write. A crash keeps or
//    loses the writes in flight like unsynced ones, after them in order; a
//    write that landed is kept (if synced) even when its report never runs.
//    Detached (in unit tests), WriteAsync writes at once.
// All choices come from the Random given at construction, so a seed replays
// the same faults.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/assertions.h"
#include "core/env.h"
#include "core/random.h"
#include "core/runtime/scheduler.h"

namespace mks::sim {

struct SimDiskStats {
  uint64_t writes = 0;         // Put/Delete/Write calls that succeeded
  uint64_t syncs = 0;          // successful syncs (explicit or by option)
  uint64_t crashes = 0;
  uint64_t batches_lost = 0;   // unsynced batches dropped by crashes
  uint64_t batches_saved = 0;  // unsynced batches that survived a crash
  uint64_t corruptions = 0;    // records damaged on purpose
  uint64_t write_errors = 0;   // injected IOErrors
  uint64_t async_writes = 0;   // WriteAsync calls that went in flight
};

// How long an asynchronous write takes, from submission to completion.
struct DiskConfig {
  int64_t write_latency_min_us = 20;
  int64_t write_latency_max_us = 500;  // >= write_latency_min_us
  // From landing to the report, drawn from 0 to this.
  int64_t report_delay_max_us = 200;
  friend bool operator==(const DiskConfig&, const DiskConfig&) = default;
};

class SimDisk final : public Disk {
 public:
  explicit SimDisk(Random random, DiskConfig config = {})
      : random_(random), config_(config) {
    MKS_ASSERT_LE(config_.write_latency_min_us, config_.write_latency_max_us);
    MKS_ASSERT_GE(config_.write_latency_min_us, 0);
    MKS_ASSERT_GE(config_.report_delay_max_us, 0);
  }

  Status Get(std::string_view key, std::string* value) override;
  Status Put(std::string_view key, std::string_view value,
             WriteOptions options) override;
  Status Delete(std::string_view key, WriteOptions options) override;
  Status Write(const WriteBatch& batch, WriteOptions options) override;
  std::unique_ptr<DiskIterator> NewIterator() override;
  Status Sync() override;
  void WriteAsync(WriteBatch batch, WriteOptions options, WriteDone done) override;

  // From now on WriteAsync completes through timers of `process` on
  // `scheduler` (which must outlive the disk or a later Detach), so a kill
  // of the process drops the completions with it.
  void Attach(runtime::Scheduler* scheduler, runtime::ProcessId process);
  // Back to writing at once. Writes in flight stay in flight until Crash()
  // (or, if the process was not killed, land and report at once when due).
  void Detach();

  // Loses the unsynced writes except a random prefix of whole batches, as a
  // power cut would; writes in flight count as unsynced, after the others.
  // Call it after killing the attached process (so no completion runs
  // later). The owner must not use iterators across a crash.
  void Crash();

  // Flips one random bit of one random durable record's value, drawn among
  // the records at rest (no unsynced write pending over them) whose key
  // `eligible` accepts (every key when null). Returns the key it damaged,
  // or nullopt when no record qualifies.
  std::optional<std::string> CorruptRandomRecord(
      const std::function<bool(std::string_view key)>& eligible = nullptr);
  // True while `key` still holds the bytes a corruption left there (not
  // since overwritten, or rolled back to them by a crash).
  bool IsDamaged(std::string_view key) const;
  // The keys IsDamaged says are damaged now, in key order.
  std::vector<std::string> DamagedKeys() const;
  // True when `key` was deleted while damaged and not written since: its
  // owner dropped the record it could not read, and holds no copy.
  bool LostToDamage(std::string_view key) const;

  // Makes writes and syncs fail with IOError with this probability.
  void set_write_error_ppm(uint32_t parts_per_million);

  const SimDiskStats& stats() const { return stats_; }
  size_t record_count() const { return visible_.size(); }
  size_t unsynced_batch_count() const { return unsynced_.size(); }
  size_t in_flight_count() const { return in_flight_.size(); }

 private:
  using Table = std::map<std::string, std::string, std::less<>>;
  // What one operation of an unsynced batch overwrote: its key's value
  // before (nullopt: the key was absent).
  struct Overwritten {
    std::string key;
    std::optional<std::string> previous;
  };
  // One unsynced batch, as the list of what its operations overwrote, in
  // order; undoing them newest first restores the table as before it.
  using Undo = std::vector<Overwritten>;
  friend class SimDiskIterator;

  // Applies `batch` to visible_ and returns how to undo it.
  Undo Apply(const WriteBatch& batch);
  static void Rollback(const Undo& undo, Table* table);
  // The first record of unsynced_ that overwrote `key`, or null.
  Overwritten* OldestOverwrite(std::string_view key);
  // The durable state, built from visible_ (only rare faults need it).
  Table DurableTable() const;
  bool InjectWriteError();
  Status Commit(const WriteBatch& batch, WriteOptions options);
  void MakeDurable();

  // A WriteAsync not completed yet.
  struct InFlight {
    WriteBatch batch;
    WriteOptions options;
  };
  // Lands the write in flight with id `id` (commits it) and schedules its
  // report.
  void CompleteInFlight(uint64_t id, WriteDone done);
  // Draws a latency from 0.. or min..max microseconds and returns the time,
  // no earlier than *last_ns, at which it ends; sets *last_ns to it.
  int64_t NextOrderedTime(int64_t min_us, int64_t max_us, int64_t* last_ns);

  Random random_;
  const DiskConfig config_;
  runtime::Scheduler* scheduler_ = nullptr;  // null: detached
  runtime::ProcessId process_ = 0;
  // Invariant: ids increase with submission order, and so do completion
  // deadlines (last_completion_ns_ is the latest), so writes complete in
  // submission order.
  std::map<uint64_t, InFlight> in_flight_;
  uint64_t next_in_flight_id_ = 1;
  int64_t last_completion_ns_ = 0;
  // Reports, likewise, run in submission order: last_report_ns_ is the
  // latest one scheduled.
  int64_t last_report_ns_ = 0;
  // The state reads see. The durable state is not kept apart, since a sync
  // (the common case) would then apply every batch twice: it is visible_
  // with the batches of unsynced_ rolled back, newest first.
  Table visible_;
  // Invariant: one entry per unsynced batch, oldest first.
  std::vector<Undo> unsynced_;
  uint32_t write_error_ppm_ = 0;
  // key -> the damaged bytes CorruptRandomRecord left; an entry whose key
  // holds other bytes now is no longer damaged (it may be again after a
  // crash rolls back to them).
  std::map<std::string, std::string, std::less<>> damaged_;
  SimDiskStats stats_;
};

}  // namespace mks::sim
