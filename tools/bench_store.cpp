// Store apply throughput on LevelDB beside raw LevelDB puts, in one run.
//
// Each benchmark opens a fresh database in its own temporary directory with
// the same LevelDB options (those LevelDbDisk uses) and writes the same
// records: kRecordsPerRun distinct, scattered 16-byte keys with 100-byte
// values, in the same number of writes and syncs. The iteration counts are
// fixed, not chosen by time, so a slower row does not get away with a smaller
// database (and less compaction) than the row it is compared with. Keys are
// built before the timed loop, so neither row pays for making them.
//
// Two times per row, both per iteration:
//   Time  wall-clock time. On the synced rows it is dominated by fsync
//         latency, which on this kind of machine swings from 0.3 to 7 ms
//         within minutes, so a ratio of wall times says more about the disk
//         than about the code.
//   CPU   CPU time of the whole process: the benchmark thread plus LevelDB's
//         background compaction thread (a longer record costs compaction
//         work too). It is the cost a store adds over raw LevelDB, and
//         barely moves with fsync latency.
// After the usual table, the run prints for each store row its throughput as
// a fraction of its raw row's, on the median wall time and on the median CPU
// time, against the target of 80%.
//
// The store does more per write than a raw put: it encodes a checksummed
// record under a longer key, and unless the version is newer than every
// record it holds (see the stamp ceiling in core/store.h) it reads the key's
// current version first. So fresh writes (increasing timestamps, as a
// coordinator's HLC issues them) are compared with raw puts, and versions
// that must be read first (repairs, hints, anti-entropy) with raw
// get-then-put.
//
//   BM_RawLevelDbPut           leveldb::DB::Put, no sync
//   BM_RawLevelDbGetThenPut    leveldb::DB::Get then Put, no sync
//   BM_StoreApply              Store::Apply of fresh versions, no sync
//   BM_StoreApplyReadPath      Store::Apply of versions older than the
//                              store's newest, so each reads its key first
//   BM_RawLevelDbSyncedBatch   WriteBatch of N puts, one synced write
//   BM_StoreSyncedBatch        Store::ApplyBatch of N fresh records, one sync
//
// Run it as `bench-store --benchmark_enable_random_interleaving=true
// --benchmark_repetitions=9` (raw and store rows alternate in time, so a
// slow minute of the disk hits both).
#include <benchmark/benchmark.h>
#include <leveldb/cache.h>
#include <leveldb/db.h>
#include <leveldb/filter_policy.h>
#include <leveldb/write_batch.h>

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <map>
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

constexpr size_t kKeyBytes = 16;
constexpr size_t kValueBytes = 100;
// Records written by every benchmark run: about a second of work, several
// memtables' worth, so compaction is part of every row.
constexpr int64_t kRecordsPerRun = 400'000;
// Timestamps as a coordinator's HLC issues them around November 2026:
// physical milliseconds near the present, a logical counter within each
// millisecond (about as many writes per millisecond as these rates give).
constexpr uint64_t kFirstPhysicalMs = 1'795'000'000'000;
constexpr uint64_t kWritesPerMs = 500;
constexpr NodeId kOrigin = 3;

// `count` distinct, scattered 16-byte keys (hex of a hash of the index),
// back to back in one buffer.
class Keys {
 public:
  explicit Keys(int64_t count) {
    MKS_ASSERT_GT(count, 0);
    bytes_.reserve(static_cast<size_t>(count) * kKeyBytes);
    char key[kKeyBytes + 1];
    for (int64_t i = 0; i < count; ++i) {
      std::snprintf(key, sizeof key, "%016llx",
                    static_cast<unsigned long long>(StableHash64(std::to_string(i))));
      bytes_.append(key, kKeyBytes);
    }
    MKS_ASSERT_EQ(bytes_.size(), static_cast<size_t>(count) * kKeyBytes);
  }
  std::string_view operator[](uint64_t index) const {
    MKS_ASSERT_LT(index * kKeyBytes, bytes_.size());
    return std::string_view(bytes_).substr(index * kKeyBytes, kKeyBytes);
  }

 private:
  std::string bytes_;
};

Timestamp TimestampOf(uint64_t index) {
  return Timestamp{kFirstPhysicalMs + index / kWritesPerMs,
                   static_cast<uint32_t>(index % kWritesPerMs)};
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

leveldb::Slice SliceOf(std::string_view bytes) {
  return leveldb::Slice(bytes.data(), bytes.size());
}

void BM_RawLevelDbPut(benchmark::State& state) {
  disk::TestDirectory directory;
  RawLevelDb raw(directory.Child("db"));
  const Keys keys(state.max_iterations);
  const std::string value(kValueBytes, 'v');
  uint64_t index = 0;
  for (auto _ : state) {
    const leveldb::Status status =
        raw.db->Put(leveldb::WriteOptions(), SliceOf(keys[index++]), value);
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
  const Keys keys(state.max_iterations);
  const std::string value(kValueBytes, 'v');
  std::string current;
  uint64_t index = 0;
  for (auto _ : state) {
    const leveldb::Slice key = SliceOf(keys[index++]);
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
  const Keys keys(state.max_iterations);
  Version version = Version::Write(TimestampOf(0), kOrigin, std::string(kValueBytes, 'v'));
  uint64_t index = 0;
  for (auto _ : state) {
    version.timestamp = TimestampOf(index);
    const Result<bool> changed = store.Apply(keys[index], version);
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
      "future", Version::Write(Timestamp{uint64_t{1} << 62, 0}, kOrigin, "f"));
  MKS_ASSERT(future.ok() && *future);
  ApplyDistinctKeys(state, store);
}

void BM_RawLevelDbSyncedBatch(benchmark::State& state) {
  disk::TestDirectory directory;
  RawLevelDb raw(directory.Child("db"));
  const auto batch_size = static_cast<uint64_t>(state.range(0));
  const Keys keys(state.max_iterations * state.range(0));
  const std::string value(kValueBytes, 'v');
  leveldb::WriteOptions synced;
  synced.sync = true;
  uint64_t index = 0;
  for (auto _ : state) {
    leveldb::WriteBatch batch;
    for (uint64_t i = 0; i < batch_size; ++i) batch.Put(SliceOf(keys[index++]), value);
    MKS_ASSERT(raw.db->Write(synced, &batch).ok());
  }
  state.SetItemsProcessed(static_cast<int64_t>(index));
}

void BM_StoreSyncedBatch(benchmark::State& state) {
  disk::TestDirectory directory;
  auto disk = OpenDisk(directory.Child("db"));
  Store store(disk.get(), PartitionOf, StoreOptions{});
  const auto batch_size = static_cast<uint64_t>(state.range(0));
  const Keys keys(state.max_iterations * state.range(0));
  // Built once, values included: the values are the caller's, as the raw
  // benchmark's value is. Each batch sets fresh keys and timestamps.
  std::vector<Record> records(
      batch_size,
      Record{"", Version::Write(TimestampOf(0), kOrigin, std::string(kValueBytes, 'v'))});
  uint64_t index = 0;
  for (auto _ : state) {
    for (Record& record : records) {
      record.key.assign(keys[index]);
      record.version.timestamp = TimestampOf(index);
      ++index;
    }
    MKS_ASSERT(store.ApplyBatch(records, WriteOptions{.sync = true}).ok());
  }
  state.SetItemsProcessed(static_cast<int64_t>(index));
}

// Fixed iterations (kRecordsPerRun records per run), wall-clock rates, and
// the process's CPU time, which includes LevelDB's compaction thread.
void Configure(benchmark::internal::Benchmark* benchmark, int64_t batch_size) {
  benchmark->Iterations(kRecordsPerRun / batch_size)
      ->UseRealTime()
      ->MeasureProcessCPUTime()
      ->Unit(benchmark::kMicrosecond);
}
void OneRecord(benchmark::internal::Benchmark* benchmark) { Configure(benchmark, 1); }
void Batch100(benchmark::internal::Benchmark* benchmark) {
  Configure(benchmark->Arg(100), 100);
}
void Batch1000(benchmark::internal::Benchmark* benchmark) {
  Configure(benchmark->Arg(1000), 1000);
}

BENCHMARK(BM_RawLevelDbPut)->Apply(OneRecord);
BENCHMARK(BM_RawLevelDbGetThenPut)->Apply(OneRecord);
BENCHMARK(BM_StoreApply)->Apply(OneRecord);
BENCHMARK(BM_StoreApplyReadPath)->Apply(OneRecord);
BENCHMARK(BM_RawLevelDbSyncedBatch)->Apply(Batch100);
BENCHMARK(BM_RawLevelDbSyncedBatch)->Apply(Batch1000);
BENCHMARK(BM_StoreSyncedBatch)->Apply(Batch100);
BENCHMARK(BM_StoreSyncedBatch)->Apply(Batch1000);

// A store row and the raw row it is measured against.
struct Comparison {
  const char* store_row;
  const char* raw_row;
  const char* what;
  int records_per_iteration;
};
constexpr Comparison kComparisons[] = {
    {"BM_StoreApply", "BM_RawLevelDbPut", "fresh applies, no sync / raw put", 1},
    {"BM_StoreApplyReadPath", "BM_RawLevelDbGetThenPut",
     "applies that read first / raw get+put", 1},
    {"BM_StoreSyncedBatch/100", "BM_RawLevelDbSyncedBatch/100",
     "batch of 100, one sync / raw batch", 100},
    {"BM_StoreSyncedBatch/1000", "BM_RawLevelDbSyncedBatch/1000",
     "batch of 1000, one sync / raw batch", 1000},
};
constexpr double kTargetRatio = 0.80;

double Median(std::vector<double> values) {
  MKS_ASSERT(!values.empty());
  std::sort(values.begin(), values.end());
  const size_t middle = values.size() / 2;
  return values.size() % 2 == 1 ? values[middle]
                                : (values[middle - 1] + values[middle]) / 2;
}

// The console table, then each store row's throughput as a fraction of its
// raw row's, on median wall and CPU time per iteration (paired rows write
// the same records per iteration).
class RatioReporter : public benchmark::ConsoleReporter {
 public:
  RatioReporter() : ConsoleReporter(OO_Tabular) {}

  void ReportRuns(const std::vector<Run>& runs) override {
    ConsoleReporter::ReportRuns(runs);
    for (const Run& run : runs) {
      if (run.error_occurred) continue;
      std::string row = run.run_name.function_name;
      if (!run.run_name.args.empty()) row += "/" + run.run_name.args;
      if (run.run_type == Run::RT_Iteration) {
        repetitions_[row].wall_us.push_back(run.GetAdjustedRealTime());
        repetitions_[row].cpu_us.push_back(run.GetAdjustedCPUTime());
      } else if (run.aggregate_name == "median") {
        // Only aggregates are shown with --benchmark_report_aggregates_only.
        medians_[row] = {{run.GetAdjustedRealTime()}, {run.GetAdjustedCPUTime()}};
      }
    }
  }

  void Finalize() override {
    std::ostream& out = GetOutputStream();
    out << "\nStore throughput as a fraction of raw LevelDB's (target "
        << static_cast<int>(kTargetRatio * 100) << "%): raw time per record"
        << " / store time per record,\nmedians over the repetitions. wall:"
        << " elapsed time (fsync waits included; noisy on\nsynced rows). cpu:"
        << " CPU time of the whole process, benchmark thread plus LevelDB's\n"
        << "compaction thread.\n";
    char line[200];
    std::snprintf(line, sizeof line, "%-40s %5s %11s %11s %7s %11s %11s %7s\n",
                  "comparison", "reps", "raw wall", "store wall", "ratio",
                  "raw cpu", "store cpu", "ratio");
    out << line;
    for (const Comparison& comparison : kComparisons) {
      const Times* store = Find(comparison.store_row);
      const Times* raw = Find(comparison.raw_row);
      if (store == nullptr || raw == nullptr) continue;  // filtered out
      // Nanoseconds per record.
      const double scale = 1000.0 / comparison.records_per_iteration;
      const double raw_wall = Median(raw->wall_us) * scale;
      const double store_wall = Median(store->wall_us) * scale;
      const double raw_cpu = Median(raw->cpu_us) * scale;
      const double store_cpu = Median(store->cpu_us) * scale;
      const double wall_ratio = raw_wall / store_wall, cpu_ratio = raw_cpu / store_cpu;
      std::snprintf(line, sizeof line,
                    "%-40s %5zu %9.0fns %9.0fns %5.0f%%%s %9.0fns %9.0fns %5.0f%%%s\n",
                    comparison.what, std::min(store->wall_us.size(), raw->wall_us.size()),
                    raw_wall, store_wall, wall_ratio * 100,
                    wall_ratio >= kTargetRatio ? " " : "!", raw_cpu, store_cpu,
                    cpu_ratio * 100, cpu_ratio >= kTargetRatio ? " " : "!");
      out << line;
    }
    out << "(! marks a ratio below the target)\n";
    ConsoleReporter::Finalize();
  }

 private:
  struct Times {
    std::vector<double> wall_us;  // per iteration, one per repetition
    std::vector<double> cpu_us;
  };
  const Times* Find(const std::string& row) const {
    if (auto it = repetitions_.find(row); it != repetitions_.end()) return &it->second;
    if (auto it = medians_.find(row); it != medians_.end()) return &it->second;
    return nullptr;
  }
  std::map<std::string, Times> repetitions_;
  std::map<std::string, Times> medians_;
};

}  // namespace
}  // namespace mks

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  mks::RatioReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::Shutdown();
  return 0;
}
