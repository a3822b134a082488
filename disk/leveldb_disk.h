// LevelDbDisk: the production storage engine, LevelDB behind core's Disk.
//
// Mapping of the Disk contract onto LevelDB:
//  * Put/Delete/Write go through leveldb::DB::Write with one WriteBatch, so
//    a batch is atomic across crashes (LevelDB logs it as one record).
//  * WriteOptions::sync maps to leveldb::WriteOptions::sync (the log is
//    fsynced before the call returns). Sync() writes an empty batch with
//    sync set, which fsyncs the log and so every earlier write.
//  * Reads and iterators verify LevelDB's block checksums, and the database
//    is opened with paranoid_checks, so damage LevelDB can see surfaces as
//    Corruption instead of being skipped.
//  * An iterator reads an implicit snapshot taken when it is created: writes
//    made while iterating are never seen by it.
//  * Every LevelDB error comes back as a Status (NotFound, Corruption,
//    IOError, InvalidArgument); nothing throws and nothing aborts.
//  * Opening an existing directory recovers it: LevelDB replays its log, so
//    every write synced before a crash is there after reopening. The log is
//    appended in write order and replayed in order; a torn tail is dropped,
//    and damage inside it fails the open (paranoid_checks) rather than being
//    skipped, so the unsynced writes a crash keeps are a prefix.
//
// Asynchronous writes: after StartWriter, WriteAsync hands each write to the
// disk's own writer thread, which performs them one at a time in submission
// order (so a synced one blocks that thread, not the node's loop) and sends
// each outcome back through the poster, which runs it on the loop thread.
// A write becomes visible to reads when LevelDB applies it, before its
// outcome reaches the loop. Without StartWriter, WriteAsync writes at once.
//
// Thread-safety: used from one thread (the node's loop), apart from the
// writer thread's writes; LevelDB orders concurrent writers itself. An
// iterator must be destroyed before its LevelDbDisk.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "core/env.h"
#include "core/runtime/unique_function.h"
#include "core/status.h"

namespace leveldb {
class DB;
class Cache;
class FilterPolicy;
}  // namespace leveldb

namespace mks::disk {

// Runs a task on the node's loop thread (for example net::Reactor::Post).
// Called from the writer thread, so it must be thread-safe.
using LoopPoster = std::function<void(runtime::UniqueFunction<void()> task)>;

struct LevelDbOptions {
  // Create the database when the directory holds none.
  bool create_if_missing = true;
  // Size of LevelDB's memtable before it is written out as a table. LevelDB's
  // default (4 MiB) is tuned for small machines; larger amortises compaction.
  size_t write_buffer_bytes = 16 * 1024 * 1024;
  // Uncompressed block cache shared by reads.
  size_t block_cache_bytes = 32 * 1024 * 1024;
  // Bloom filter bits per key; 0 disables the filter. The store reads each
  // key before writing it, and the filter turns most reads of absent keys
  // into a memory lookup.
  int bloom_bits_per_key = 10;
};

class LevelDbDisk final : public Disk {
 public:
  // Opens (and with create_if_missing creates) the database in `directory`,
  // recovering whatever a previous process left there. Returns IOError when
  // the directory cannot be used (missing and not creatable, locked by
  // another process), Corruption when LevelDB finds its files damaged,
  // InvalidArgument for contradictory options.
  static Result<std::unique_ptr<LevelDbDisk>> Open(const std::string& directory,
                                                   LevelDbOptions options = {});

  // Closes the database, after the writer thread (if started) has performed
  // every write submitted to it and posted its outcome. Writes not yet
  // synced are flushed to the OS but not fsynced, so a machine crash may
  // still lose them; a process exit will not. The poster must stay usable
  // until this returns.
  ~LevelDbDisk() override;

  LevelDbDisk(const LevelDbDisk&) = delete;
  LevelDbDisk& operator=(const LevelDbDisk&) = delete;

  Status Get(std::string_view key, std::string* value) override;
  Status Put(std::string_view key, std::string_view value,
             WriteOptions options) override;
  Status Delete(std::string_view key, WriteOptions options) override;
  Status Write(const WriteBatch& batch, WriteOptions options) override;
  std::unique_ptr<DiskIterator> NewIterator() override;
  Status Sync() override;
  void WriteAsync(WriteBatch batch, WriteOptions options, WriteDone done) override;

  // Starts the writer thread; from now on WriteAsync goes through it and
  // reports through `post`. Call at most once, from the loop thread. Returns
  // IOError when the thread cannot start (WriteAsync then stays synchronous).
  Status StartWriter(LoopPoster post);

  const std::string& directory() const { return directory_; }

 private:
  LevelDbDisk(std::string directory, std::unique_ptr<leveldb::DB> db,
              std::unique_ptr<leveldb::Cache> cache,
              std::unique_ptr<const leveldb::FilterPolicy> filter);

  // A write handed to the writer thread.
  struct WriterJob {
    WriteBatch batch;
    WriteOptions options;
    WriteDone done;
  };
  // The writer thread's body: performs jobs until stopping and none is left.
  void RunWriter();

  const std::string directory_;
  // Declared before db_ so they are destroyed after it: the DB uses both.
  std::unique_ptr<leveldb::Cache> cache_;
  std::unique_ptr<const leveldb::FilterPolicy> filter_;
  // Invariant: never null between Open and destruction.
  std::unique_ptr<leveldb::DB> db_;

  LoopPoster post_;  // set once by StartWriter, before the thread starts
  std::mutex writer_mutex_;
  std::condition_variable writer_wakeup_;
  std::deque<WriterJob> writer_jobs_;  // guarded by writer_mutex_
  bool writer_stopping_ = false;       // guarded by writer_mutex_
  // Declared last: started after, and joined before, everything it uses.
  std::thread writer_;
};

}  // namespace mks::disk
