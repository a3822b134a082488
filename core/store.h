// Store: the versioned records of one node, kept on a Disk.
//
// Every user key maps to its winning Version: the one with the greatest
// (timestamp, origin) among all versions ever applied to it here. Applying a
// version is therefore idempotent, commutative and associative, and replicas
// that saw the same versions in any order, with any repeats, hold the same
// winner. A delete is a version too (a tombstone), so it wins over older
// writes and loses to newer ones exactly like a write; tombstones are dropped
// by CollectGarbage() once older than a grace period long enough for
// anti-entropy to have spread them (otherwise a replica that missed the
// delete could resurrect the key).
//
// Layout on the Disk (fixed-width integers big-endian; varints as LevelDB's,
// 7 bits a byte, low groups first, shortest form only):
//   disk key   = key_space | partition (2 bytes) | user key
//   disk value = format (1 byte, = 2) | flags (1 byte; bit 0 = tombstone,
//                others zero) | timestamp.physical_ms (varint, 6 bytes for
//                present-day milliseconds) | timestamp.logical (varint) |
//                origin (varint) | user value | crc32c (4 bytes)
//   ceiling key   = key_space (shorter than every record's key)
//   ceiling value = format (1 byte, = 2) | timestamp (12 bytes) | origin
//                   (4 bytes) | crc32c (4 bytes)
// A record is kept short because LevelDB's work per record (log, memtable,
// flush, compaction) grows with its bytes: format 1's 4-byte partition and
// fixed 18-byte header cost 10 bytes more per record than this one with a
// present-day timestamp, a logical counter below 128 and a node id below
// 128. Format 1 records are not read (Corruption: unknown format).
// The CRC covers the disk key and every value byte before it, so a flipped
// bit, a truncated value or a record under the wrong key is reported as
// Corruption naming the key, never returned as data. Because the partition
// leads the key, one partition's records are contiguous and in user-key
// order, so ForEachInPartition() reads only that partition.
//
// The stamp ceiling. Applying a version normally reads the key's stored
// version first, and that read costs as much as the write. But a version
// whose (timestamp, origin) is greater than that of every record in the
// store supersedes whatever the key holds, so it is written without reading
// it; fresh writes from coordinators, whose hybrid logical clocks move
// forward, are almost all such versions. To know what "every record" holds,
// the store keeps the ceiling record: a (timestamp, origin) at least as great
// as every record's, written in the same atomic batch as any record that
// would pass it (set a little above it, so it is rewritten about once a
// second of HLC time, not on every apply). The Disk keeps unsynced writes
// in order (a crash keeps a prefix of them), so every state a crash can
// leave holds a ceiling above every record in it. A damaged ceiling (deleted
// when found, so it is never trusted later), or records from a store that
// never wrote one, only turn the shortcut off (every apply reads) until
// CollectGarbage's full scan rebuilds it.
//
// Damaged records. A record that fails its checksum stays where it is, and
// every read of it fails with Corruption, until something that may replace
// it arrives: a version newer than everything (which would have won over
// whatever the record held), a repair (Record::repair), or a
// RemoveIfDamaged. Removing it on detection instead would make the replica
// answer "no version" for a key whose version it merely lost, and a quorum
// counting that answer could miss an acknowledged write.
//
// Limits: keys are 1..max_key_bytes bytes, values 0..max_value_bytes bytes,
// any of the 256 byte values allowed in both. A version outside the limits
// is refused with InvalidArgument before anything is written.
//
// Not thread-safe; one store per node, used from the node's scheduler thread.
#pragma once

#include <compare>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/env.h"
#include "core/status.h"
#include "core/timestamp.h"

namespace mks {

// One version of one key.
struct Version {
  Timestamp timestamp;      // never Zero() in a stored version
  NodeId origin = kNoNode;  // the coordinator that created it; never kNoNode
  bool tombstone = false;   // a delete; then value is empty
  std::string value;

  static Version Write(Timestamp timestamp, NodeId origin, std::string value);
  static Version Tombstone(Timestamp timestamp, NodeId origin);

  friend bool operator==(const Version&, const Version&) = default;
};

// The total order that decides conflicts: (timestamp, origin) first. A
// correct cluster never issues two different versions with the same
// (timestamp, origin), because each node's HLC issues each timestamp once;
// should it happen anyway, (tombstone, value) break the tie so replicas still
// converge on one winner (a tombstone beats a write of the same stamp).
std::strong_ordering CompareVersions(const Version& a, const Version& b);

// True when `candidate` wins over `current`.
inline bool Supersedes(const Version& candidate, const Version& current) {
  return CompareVersions(candidate, current) > 0;
}

std::ostream& operator<<(std::ostream& out, const Version& version);

// A key with one of its versions: the unit of batches and iteration.
struct Record {
  std::string key;
  Version version;
  // A repair: the newest version a majority of the other replicas answered
  // with, sent to a replica whose record of the key failed its checksum.
  // It may replace such a damaged record, whose version nobody knows; any
  // other apply fails on one unless newer than everything (see Apply).
  bool repair = false;
};

// Maps a user key to its partition, below kMaxStorePartitions (asserted).
// Must be a pure function, the same for the lifetime of the data (the
// ring's PartitionOf).
using Partitioner = std::function<uint32_t(std::string_view key)>;

// Partitions a store can keep apart: its disk keys hold the partition in 2
// bytes. The ring's kMaxPartitionCount is no larger.
inline constexpr uint32_t kMaxStorePartitions = 1u << 16;

struct StoreOptions {
  // Largest accepted user key. 1 KiB holds any sane identifier while
  // keeping keys cheap to ship in Merkle-tree and repair messages.
  size_t max_key_bytes = 1024;
  // Largest accepted user value. 1 MiB keeps one version well inside a
  // network frame and a LevelDB write buffer.
  size_t max_value_bytes = 1024 * 1024;
  // Tombstones older than this (by their timestamp's physical part) are
  // dropped by CollectGarbage(). 10 days, as Cassandra's gc_grace_seconds:
  // anti-entropy must run on every replica well within it.
  uint64_t tombstone_grace_ms = 10ull * 24 * 3600 * 1000;
  // Prefix of every disk key this store owns. Other users of the same Disk
  // (the Raft log, hints) must use prefixes that are neither a prefix of
  // this one nor start with it. Never empty.
  std::string key_space = "v";
};

struct GcStats {
  uint64_t records_scanned = 0;
  uint64_t tombstones_dropped = 0;
  uint64_t tombstones_kept = 0;  // younger than the grace period
  uint64_t corrupt_records = 0;  // skipped; each also fails Get with its key
};

// Receives one record; returns false to stop the iteration early.
using RecordVisitor =
    std::function<bool(std::string_view key, const Version& version)>;

class Store {
 public:
  // `disk` must outlive the store. Opening is free: the store reads its stamp
  // ceiling on the first apply and keeps nothing else in memory beyond its
  // options, so a store built over a disk after a crash sees exactly what
  // the disk recovered. At most one store at a time may use a key space of a
  // Disk (its ceiling in memory would not see another's writes); a store
  // built to read what another wrote is fine once that one is gone.
  Store(Disk* disk, Partitioner partitioner, StoreOptions options);

  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // OK when (key, version) is within the limits and well formed; otherwise
  // InvalidArgument saying why (empty key, key or value too large, origin 0,
  // zero timestamp, a tombstone with a value).
  Status Validate(std::string_view key, const Version& version) const;

  // Makes `version` the winner of `key` if it supersedes the stored one.
  // Returns true when it did (the store changed), false when the stored
  // version is equal or greater. With options.sync the winner is durable on
  // return even when nothing changed (an earlier unsynced apply of the same
  // version is synced). Fails with InvalidArgument (nothing written), with
  // Corruption when the stored record fails its checksum (nothing written:
  // the caller must not guess what it held; see Remove()), or with the
  // Disk's IOError. A version newer than every record in the store (see the
  // stamp ceiling above) is written without reading the key, so it replaces
  // a damaged record instead of reporting it: whatever that record held, it
  // would have lost to this version. A `repair` (see Record::repair)
  // replaces a damaged record too.
  Result<bool> Apply(std::string_view key, const Version& version,
                     WriteOptions options = {}, bool repair = false);

  // Applies `records` in order as one atomic Disk write with at most one
  // sync (group commit). Element i of the result says whether records[i]
  // superseded what was stored or applied before it in the batch, i.e.
  // exactly what Apply would have returned one record at a time. Validates
  // every record first: any invalid record fails the whole batch with
  // InvalidArgument and nothing is written. Reads each key at most once,
  // and not at all when its first record in the batch is newer than every
  // record in the store. Fails like Apply otherwise.
  Result<std::vector<bool>> ApplyBatch(std::span<const Record> records,
                                       WriteOptions options = {});

  // ApplyBatch in two steps, for callers that write asynchronously
  // (Disk::WriteAsync): PrepareBatch decides and encodes what ApplyBatch
  // would write, then the caller writes `batch` (even when empty, if it
  // wants the sync) and reports the outcome to FinishBatch.
  class PreparedBatch {
   public:
    WriteBatch batch;           // the winners (and the ceiling) to write
    std::vector<bool> changed;  // per record, as ApplyBatch returns on success

   private:
    friend class Store;
    // Invariant: when true, `batch` holds the ceiling record with this stamp.
    bool raises_ceiling_ = false;
    Timestamp ceiling_timestamp_;
    NodeId ceiling_origin_ = kNoNode;
  };
  // Validates and reads like ApplyBatch and fails like it, writing nothing.
  // Between a PrepareBatch and its FinishBatch the caller must not apply,
  // prepare, remove or collect anything on this store: the decisions rest on
  // what the disk held when they were made.
  Result<PreparedBatch> PrepareBatch(std::span<const Record> records);
  // Records the outcome of writing `prepared.batch`. After a failure the
  // store stays correct whether or not the batch landed.
  void FinishBatch(const PreparedBatch& prepared, const Status& written);

  // Returns the winning version of `key`, a tombstone included (so a
  // coordinator can compare timestamps). NotFound when the key has no
  // version, InvalidArgument for a key outside the limits, Corruption naming
  // the key when the record fails its checksum, IOError from the Disk.
  Result<Version> Get(std::string_view key);

  // Returns the live value of `key`: NotFound when the key has no version or
  // its winner is a tombstone; otherwise fails like Get.
  Result<std::string> GetLive(std::string_view key);

  // Calls `visitor` for every record of `partition` (below
  // kMaxStorePartitions, asserted) in bytewise user-key order, tombstones
  // included, reading only that partition's disk range.
  // Returns OK after the last record or when the visitor stops early;
  // Corruption naming the key at the first record that fails its checksum
  // (the records before it have been visited); IOError from the Disk.
  Status ForEachInPartition(uint32_t partition, const RecordVisitor& visitor);

  // One batch of a partition's records in user-key order (ScanPartition).
  struct PartitionBatch {
    std::vector<Record> records;
    // Keys whose records failed their checksum: skipped, not returned.
    std::vector<std::string> damaged;
    // The last key read, record or damaged; the next batch starts after it.
    std::string last_key;
    bool done = false;  // no record of the partition follows last_key
    uint64_t bytes = 0;  // key and value bytes of `records`
  };
  // Reads the records of `partition` after `after_key` (from its first
  // when `from_start`), in bytewise user-key order, tombstones included,
  // until `max_records` records or `max_bytes` key and value bytes (at
  // least one record when any follows). A damaged record is skipped and
  // listed, so one bad record never stops a copy. IOError from the Disk.
  Result<PartitionBatch> ScanPartition(uint32_t partition, bool from_start,
                                       std::string_view after_key, size_t max_records,
                                       uint64_t max_bytes);

  // Physically removes the records of `keys` (valid or damaged), without
  // tombstones, in one Disk write: for a partition handed to new owners.
  Status RemoveKeys(std::span<const std::string> keys, WriteOptions options = {});

  // Whether the store holds any record (data or tombstone) of any
  // partition; IOError from the Disk. Reads one key.
  Result<bool> HoldsRecords();

  // Drops every tombstone whose timestamp is more than tombstone_grace_ms
  // before `now_ms` (wall-clock milliseconds, e.g. the HLC's physical part).
  // A tombstone exactly at the grace boundary, or younger, is kept; live
  // records are never touched. Corrupt records are skipped and counted.
  // Fails only with the Disk's errors, after which some tombstones may have
  // been dropped and others not (each drop is itself safe). When the stamp
  // ceiling is damaged or missing and no record is corrupt, rebuilds it from
  // the records scanned.
  Result<GcStats> CollectGarbage(uint64_t now_ms, WriteOptions options = {});

  // Removes the record of `key` if it fails its checksum: what a replica
  // does when a majority of the other replicas hold no version of the key.
  // Returns whether it removed one. A valid record, or none, is left alone.
  // Fails with InvalidArgument for a key outside the limits, or the Disk's
  // error.
  Result<bool> RemoveIfDamaged(std::string_view key, WriteOptions options = {});

  // Checks the stamp ceiling's invariant against what the disk holds now:
  // no readable record has a (timestamp, origin) above a readable ceiling
  // record. A damaged or missing ceiling passes (the store then reads on
  // every apply). Corruption naming the record and both stamps when the
  // invariant is broken; the Disk's error when it cannot be read. A full
  // scan: for checkers and offline verification, not the serving path.
  Status CheckCeiling();

  // Physically removes whatever is stored for `key`, valid or corrupt,
  // without leaving a tombstone. For corrupt records (anti-entropy then
  // refetches the key from other replicas) and for handing a partition to
  // its new owner. Fails with InvalidArgument for a key outside the limits,
  // or the Disk's error.
  Status Remove(std::string_view key, WriteOptions options = {});

  // Makes every applied version durable. Returns the Disk's error.
  Status Sync();

  // The partition of `key`, as the partitioner says.
  uint32_t PartitionOf(std::string_view key) const;

  const StoreOptions& options() const { return options_; }
  // The disk under the store, for writing a PreparedBatch.
  Disk* disk() const { return disk_; }

 private:
  Status ValidateKey(std::string_view key) const;
  // Sets *out to the disk key of `key`, reusing its capacity.
  void DiskKeyInto(std::string_view key, std::string* out) const;
  std::string DiskKey(std::string_view key) const;
  std::string PartitionPrefix(uint32_t partition) const;
  // Reads the stored version under `disk_key`; NotFound when absent.
  Result<Version> ReadDiskKey(std::string_view disk_key);
  // ReadDiskKey for an apply: for a `repair`, a damaged record reads as
  // absent (see Record::repair).
  Result<Version> ReadCurrent(std::string_view disk_key, bool repair);
  Status Flush(WriteBatch* batch, WriteOptions options);

  // What conflicts are decided by, short of the tie-break between two
  // versions a correct cluster never issues.
  struct Stamp {
    Timestamp timestamp;
    NodeId origin = kNoNode;
    friend auto operator<=>(const Stamp&, const Stamp&) = default;
  };
  static Stamp StampOf(const Version& version) {
    return Stamp{version.timestamp, version.origin};
  }
  enum class CeilingState : uint8_t {
    kUnread,   // not read yet (on the first apply, so opening stays free)
    kKnown,    // ceiling_ and disk_ceiling_ hold what they say
    kUnknown,  // damaged, or missing under existing records: every apply
               // reads until CollectGarbage rebuilds it
  };
  // Reads the ceiling record when not done yet, deleting it when damaged.
  // Fails only with the Disk's errors (then it stays unread and the next
  // apply tries again).
  Status LoadCeiling();
  void SetCeilingKnown(Stamp in_memory, Stamp on_disk);
  // True when a version with `stamp` supersedes whatever any key holds.
  bool NewerThanEverything(Stamp stamp) const;
  // Called before writing records whose greatest stamp is `newest`. Raises
  // the ceiling in memory; when it passes the one on disk, returns the
  // ceiling record to write in the same batch, and the stamp it holds in
  // *raised (to become disk_ceiling_ once that write succeeds).
  std::optional<std::string> PrepareCeiling(Stamp newest, Stamp* raised);

  Disk* const disk_;
  const Partitioner partitioner_;
  const StoreOptions options_;
  CeilingState ceiling_state_ = CeilingState::kUnread;
  // Invariants when kKnown: no record in the key space has a greater stamp
  // than ceiling_ (the greatest this store wrote, or what the disk's ceiling
  // said when read). disk_ceiling_ is the last ceiling this store wrote or
  // read, and a record above it is written only together with a new ceiling
  // record, so in every state a crash can leave no record is above the
  // ceiling record. ceiling_ <= disk_ceiling_ except after a failed write.
  Stamp ceiling_;
  Stamp disk_ceiling_;
  // Scratch buffers reused across calls so the apply path does not allocate
  // per record. They carry nothing from one call to the next.
  std::string disk_key_scratch_;
  std::string value_scratch_;
  std::string record_scratch_;
};

// Encodes a version as the disk value stored under `disk_key`.
std::string EncodeRecordValue(std::string_view disk_key,
                              const Version& version);
// The same, into *out (replacing its contents, reusing its capacity).
void EncodeRecordValueInto(std::string_view disk_key, const Version& version,
                           std::string* out);
// Decodes and verifies a disk value stored under `disk_key`. Corruption when
// the checksum, format or flags are wrong; `user_key` only names the record
// in the message.
Result<Version> DecodeRecordValue(std::string_view disk_key,
                                  std::string_view user_key,
                                  std::string_view disk_value);

// Printable form of arbitrary key bytes for error messages: printable ASCII
// as is, other bytes as \xNN, cut after 64 bytes.
std::string EscapeKeyForMessage(std::string_view key);

}  // namespace mks
