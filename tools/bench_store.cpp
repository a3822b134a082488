// Store apply throughput on LevelDB beside raw LevelDB puts, in one run.
//
// Each benchmark opens a fresh database in its own temporary directory with
// the same LevelDB options (those LevelDbDisk uses), writes distinct keys
// (16-byte keys, 100-byte values), and reports items per second of wall
// time (LevelDB's compaction thread and fsync waits are part of the cost).
// The store does more per write than a raw put: it encodes a checksummed
// record under a longer key, and unless the version is newer than every
// record it holds (see the stamp ceiling in core/store.h) it reads the key's
// current version first. The question is how much of raw LevelDB's rate it
// keeps: fresh writes (increasing timestamps, as a coordinator's HLC issues
// them) against raw puts, and versions that must be read first (repairs,
// hints, anti-entropy) against raw get-then-put.
//
//   BM_RawLevelDbPut           leveldb::DB::Put, no sync
//   BM_RawLevelDbGetThenPut    leveldb::DB::Get then Put, no sync
//   BM_StoreApply              Store::Apply of fresh versions, no sync
//   BM_StoreApplyReadPath      Store::Apply of versions older than the
//                              store's newest, so each reads its key first
//                              (compare with BM_RawLevelDbGetThenPut)
//   BM_RawLevelDbSyncedBatch   WriteBatch of N puts, one synced write
//   BM_StoreSyncedBatch        Store::ApplyBatch of N fresh records, one sync
#include <benchmark/benchmark.h>
#include <leveldb/cache.h>
#include <leveldb/db.h>
#include <leveldb/filter_policy.h>
#include <leveldb/write_batch.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "core/assertions.h"
#include "core/random.h"
#include "core/store.h"
#include "disk/leveldb_disk.h"
#include "disk/test_directory.h"

namespace mks {
namespace {

constexpr size_t kValueBytes = 100;


// Distinct, scattered 16-byte keys: hex of a hash of the index.
std::string KeyOf(uint64_t index) {
  char key[17];
  std::snprintf(key, sizeof key, "%016llx",
                static_cast<unsigned long long>(StableHash64(std::to_string(index))));
  return std::string(key, 16);
}

uint32_t PartitionOf(std::string_view key) {
  return static_cast<uint32_t>(StableHash64(key) & 1023);
}

// A raw LevelDB opened with the options LevelDbDisk uses by default.
struct RawLevelDb {
  explicit RawLevelDb(const std::string& path) {
    const disk::LevelDbOptions defaults;
    cache.reset(leveldb::NewLRUCache(defaults.block_cache_bytes));
    filter.reset(leveldb::NewBloomFilterPolicy(defaults.bloom_bits_per_key));
    leveldb::Options options;
    options.create_if_missing = true;
    options.paranoid_checks = true;
    options.write_buffer_size = defaults.write_buffer_bytes;
    options.block_cache = cache.get();
    options.filter_policy = filter.get();
    leveldb::DB* raw = nullptr;
    const leveldb::Status status = leveldb::DB::Open(options, path, &raw);
    MKS_ASSERT_MSG(status.ok(), status.ToString());
    db.reset(raw);
  }
  std::unique_ptr<leveldb::Cache> cache;
  std::unique_ptr<const leveldb::FilterPolicy> filter;
  std::unique_ptr<leveldb::DB> db;  // last: destroyed first
};

std::unique_ptr<disk::LevelDbDisk> OpenDisk(const std::string& path) {
  auto opened = disk::LevelDbDisk::Open(path);
  MKS_ASSERT_MSG(opened.ok(), opened.status().ToString());
  return std::move(opened).value();
}

void BM_RawLevelDbPut(benchmark::State& state) {
  disk::TestDirectory directory;
  RawLevelDb raw(directory.Child("db"));
  const std::string value(kValueBytes, 'v');
  uint64_t index = 0;
  for (auto _ : state) {
    const leveldb::Status status =
        raw.db->Put(leveldb::WriteOptions(), KeyOf(index++), value);
    MKS_ASSERT(status.ok());
  }
  state.SetItemsProcessed(static_cast<int64_t>(index));
}

// What any last-writer-wins store on LevelDB must do at least: read the
// key's current version, then write. The gap between this and a raw put is
// the price of the read, not of the store's encoding.
void BM_RawLevelDbGetThenPut(benchmark::State& state) {
  disk::TestDirectory directory;
  RawLevelDb raw(directory.Child("db"));
  const std::string value(kValueBytes, 'v');
  std::string current;
  uint64_t index = 0;
  for (auto _ : state) {
    const std::string key = KeyOf(index++);
    const leveldb::Status read = raw.db->Get(leveldb::ReadOptions(), key, &current);
    MKS_ASSERT(read.ok() || read.IsNotFound());
    MKS_ASSERT(raw.db->Put(leveldb::WriteOptions(), key, value).ok());
  }
  state.SetItemsProcessed(static_cast<int64_t>(index));
}

// Applies a new version of a distinct key per iteration, each of which must
// win. The version is built once: the value is the caller's, as the raw
// benchmarks' is.
void ApplyDistinctKeys(benchmark::State& state, Store& store) {
  Version version = Version::Write(Timestamp{1, 0}, 1, std::string(kValueBytes, 'v'));
  uint64_t index = 0;
  for (auto _ : state) {
    version.timestamp = Timestamp{1 + index, 0};
    const Result<bool> changed = store.Apply(KeyOf(index), version);
    MKS_ASSERT(changed.ok() && *changed);
    ++index;
  }
  state.SetItemsProcessed(static_cast<int64_t>(index));
}

void BM_StoreApply(benchmark::State& state) {
  disk::TestDirectory directory;
  auto disk = OpenDisk(directory.Child("db"));
  Store store(disk.get(), PartitionOf, StoreOptions{});
  ApplyDistinctKeys(state, store);
}

void BM_StoreApplyReadPath(benchmark::State& state) {
  disk::TestDirectory directory;
  auto disk = OpenDisk(directory.Child("db"));
  Store store(disk.get(), PartitionOf, StoreOptions{});
  // One record far in the future keeps every later version below the
  // store's newest, so each apply reads its key (absent, as in the raw
  // get-then-put) before writing.
  const Result<bool> future = store.Apply(
      "future", Version::Write(Timestamp{uint64_t{1} << 62, 0}, 1, "f"));
  MKS_ASSERT(future.ok() && *future);
  ApplyDistinctKeys(state, store);
}

void BM_RawLevelDbSyncedBatch(benchmark::State& state) {
  disk::TestDirectory directory;
  RawLevelDb raw(directory.Child("db"));
  const std::string value(kValueBytes, 'v');
  const auto batch_size = static_cast<uint64_t>(state.range(0));
  leveldb::WriteOptions synced;
  synced.sync = true;
  uint64_t index = 0;
  for (auto _ : state) {
    leveldb::WriteBatch batch;
    for (uint64_t i = 0; i < batch_size; ++i) batch.Put(KeyOf(index++), value);
    MKS_ASSERT(raw.db->Write(synced, &batch).ok());
  }
  state.SetItemsProcessed(static_cast<int64_t>(index));
}

void BM_StoreSyncedBatch(benchmark::State& state) {
  disk::TestDirectory directory;
  auto disk = OpenDisk(directory.Child("db"));
  Store store(disk.get(), PartitionOf, StoreOptions{});
  const std::string value(kValueBytes, 'v');
  const auto batch_size = static_cast<uint64_t>(state.range(0));
  uint64_t index = 0;
  // Built once, values included: the values are the caller's, as the raw
  // benchmark's value is. Each batch sets fresh keys and timestamps.
  std::vector<Record> records(batch_size,
                              Record{"", Version::Write(Timestamp{1, 0}, 1, value)});
  for (auto _ : state) {
    for (Record& record : records) {
      record.key = KeyOf(index);
      record.version.timestamp = Timestamp{1 + index, 0};
      ++index;
    }
    MKS_ASSERT(store.ApplyBatch(records, WriteOptions{.sync = true}).ok());
  }
  state.SetItemsProcessed(static_cast<int64_t>(index));
}

BENCHMARK(BM_RawLevelDbPut)->MinTime(1.0)->UseRealTime();
BENCHMARK(BM_RawLevelDbGetThenPut)->MinTime(1.0)->UseRealTime();
BENCHMARK(BM_StoreApply)->MinTime(1.0)->UseRealTime();
BENCHMARK(BM_StoreApplyReadPath)->MinTime(1.0)->UseRealTime();
BENCHMARK(BM_RawLevelDbSyncedBatch)->Arg(100)->Arg(1000)->MinTime(1.0)->UseRealTime();
BENCHMARK(BM_StoreSyncedBatch)->Arg(100)->Arg(1000)->MinTime(1.0)->UseRealTime();

}  // namespace
}  // namespace mks

BENCHMARK_MAIN();
