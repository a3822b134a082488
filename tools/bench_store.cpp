// Store apply throughput on LevelDB beside raw LevelDB puts, in one run.
//
// Each benchmark opens a fresh database in its own temporary directory with
// the same LevelDB options (those LevelDbDisk uses), and a store row writes
// the same records as the raw row it is compared with: the same number of
// distinct, scattered 16-byte keys with 100-byte values, in the same number
// of writes and syncs. Iteration counts are fixed, not chosen by time, so a
// slower row does not get away with a smaller database (and less compaction)
// than its raw row. Keys are built before the timed loop, so neither row
// pays for making them.
//
// Three measures per row:
//   Time     wall-clock time per iteration. On the synced rows it is mostly
//            fsync latency, which on a shared machine swings from 0.3 to
//            7 ms within minutes, so a ratio of wall times from rows run at
//            different moments says more about the disk than the code.
//   CPU      CPU time of the whole process per iteration: the benchmark
//            thread plus LevelDB's background compaction thread (a longer
//            record costs compaction work too), user and kernel. It does
//            not count fsync waits, but the kernel's share of a write still
//            grows when the disk is busy.
//   user_ns  user-space CPU time of the whole process per record: the code's
//            own work (the store's and LevelDB's), the steadiest measure
//            when other jobs load the machine.
// BM_AlternatingSyncedBatches answers the wall-time question for the synced
// rows: it writes one raw and one store batch in every iteration, in
// alternating order, into two databases, and times each (counters raw_ns and
// store_ns, wall per record), so both see the disk of the same moment.
//
// After the usual table the run prints, for each store row, its throughput
// as a fraction of its raw row's (raw time per record / store time per
// record, medians over the repetitions) on each measure, against the issue's
// target of 80%.
//
// The store does more per write than a raw put: it encodes a checksummed
// record under a longer key, and unless the version is newer than every
// record it holds (see the stamp ceiling in core/store.h) it reads the key's
// current version first. So fresh writes (increasing timestamps, as a
// coordinator's HLC issues them) are compared with raw puts, and versions
// that must be read first (repairs, hints, anti-entropy) with raw
// get-then-put.
//
//   BM_RawLevelDbPut             leveldb::DB::Put, no sync
//   BM_RawLevelDbGetThenPut      leveldb::DB::Get then Put, no sync
//   BM_StoreApply                Store::Apply of fresh versions, no sync
//   BM_StoreApplyReadPath        Store::Apply of versions older than the
//                                store's newest, so each reads its key first
//   BM_RawLevelDbSyncedBatch     WriteBatch of N puts, one synced write
//   BM_StoreSyncedBatch          Store::ApplyBatch of N fresh records, one sync
//   BM_AlternatingSyncedBatches  the two above, one of each per iteration
//
// Run it as `bench-store --benchmark_enable_random_interleaving=true
// --benchmark_repetitions=5` or more (rows run in random order in every
// round, so a slow minute of the disk does not hit one row only).
#include <benchmark/benchmark.h>
#include <leveldb/cache.h>
#include <leveldb/db.h>
#include <leveldb/filter_policy.h>
#include <leveldb/write_batch.h>

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
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
// memtables' worth, so compaction is part of every row. Fewer for the
// synced rows, whose fsyncs can take 5 ms each when the disk is busy (still
// more than one memtable), and fewer again for each side of the alternating
// rows, which only compare wall time.
constexpr int64_t kRecordsPerRun = 400'000;
constexpr int64_t kSyncedRecordsPerRun = 200'000;
constexpr int64_t kAlternatingRecordsPerRun = 100'000;
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

// User-space CPU time of the whole process (both threads) from its
// construction to Report(), reported as the counter user_ns per record. It
// leaves out the kernel's share of writes and fsyncs, which swings with the
// disk's state and with other load, so it is the steadiest measure of the
// work the code asks for (Linux splits user from system time by tick
// sampling: a few percent of error on a one-second run).
class UserCpu {
 public:
  UserCpu() : start_us_(NowUs()) {}
  void Report(benchmark::State& state, uint64_t records) const {
    MKS_ASSERT_GT(records, 0u);
    state.counters["user_ns"] = (NowUs() - start_us_) * 1000.0 / static_cast<double>(records);
  }

 private:
  static double NowUs() {
    rusage usage{};
    MKS_ASSERT_EQ(getrusage(RUSAGE_SELF, &usage), 0);
    return static_cast<double>(usage.ru_utime.tv_sec) * 1e6 +
           static_cast<double>(usage.ru_utime.tv_usec);
  }
  const double start_us_;
};

void BM_RawLevelDbPut(benchmark::State& state) {
  disk::TestDirectory directory;
  RawLevelDb raw(directory.Child("db"));
  const Keys keys(state.max_iterations);
  const std::string value(kValueBytes, 'v');
  uint64_t index = 0;
  const UserCpu user_cpu;
  for (auto _ : state) {
    const leveldb::Status status =
        raw.db->Put(leveldb::WriteOptions(), SliceOf(keys[index++]), value);
    MKS_ASSERT(status.ok());
  }
  state.SetItemsProcessed(static_cast<int64_t>(index));
  user_cpu.Report(state, index);
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
  const UserCpu user_cpu;
  for (auto _ : state) {
    const leveldb::Slice key = SliceOf(keys[index++]);
    const leveldb::Status read = raw.db->Get(leveldb::ReadOptions(), key, &current);
    MKS_ASSERT(read.ok() || read.IsNotFound());
    MKS_ASSERT(raw.db->Put(leveldb::WriteOptions(), key, value).ok());
  }
  state.SetItemsProcessed(static_cast<int64_t>(index));
  user_cpu.Report(state, index);
}

// Applies a new version of a distinct key per iteration, each of which must
// win. The version is built once: the value is the caller's, as the raw
// benchmarks' is.
void ApplyDistinctKeys(benchmark::State& state, Store& store) {
  const Keys keys(state.max_iterations);
  Version version = Version::Write(TimestampOf(0), kOrigin, std::string(kValueBytes, 'v'));
  uint64_t index = 0;
  const UserCpu user_cpu;
  for (auto _ : state) {
    version.timestamp = TimestampOf(index);
    const Result<bool> changed = store.Apply(keys[index], version);
    MKS_ASSERT(changed.ok() && *changed);
    ++index;
  }
  state.SetItemsProcessed(static_cast<int64_t>(index));
  user_cpu.Report(state, index);
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
  const UserCpu user_cpu;
  for (auto _ : state) {
    leveldb::WriteBatch batch;
    for (uint64_t i = 0; i < batch_size; ++i) batch.Put(SliceOf(keys[index++]), value);
    MKS_ASSERT(raw.db->Write(synced, &batch).ok());
  }
  state.SetItemsProcessed(static_cast<int64_t>(index));
  user_cpu.Report(state, index);
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
  const UserCpu user_cpu;
  for (auto _ : state) {
    for (Record& record : records) {
      record.key.assign(keys[index]);
      record.version.timestamp = TimestampOf(index);
      ++index;
    }
    MKS_ASSERT(store.ApplyBatch(records, WriteOptions{.sync = true}).ok());
  }
  state.SetItemsProcessed(static_cast<int64_t>(index));
  user_cpu.Report(state, index);
}

// Raw and store synced batches of the same records into two databases, one
// of each per iteration in alternating order, each timed on the wall clock.
// Both see the disk of the same moment, so their ratio does not depend on
// fsync latency drifting between repetitions. Reported as the counters
// raw_ns and store_ns (wall nanoseconds per record); CPU time cannot be
// told apart here, as both databases compact on LevelDB's one background
// thread.
void BM_AlternatingSyncedBatches(benchmark::State& state) {
  disk::TestDirectory directory;
  RawLevelDb raw(directory.Child("raw"));
  auto disk = OpenDisk(directory.Child("store"));
  Store store(disk.get(), PartitionOf, StoreOptions{});
  const auto batch_size = static_cast<uint64_t>(state.range(0));
  const Keys keys(state.max_iterations * state.range(0));
  const std::string value(kValueBytes, 'v');
  std::vector<Record> records(
      batch_size, Record{"", Version::Write(TimestampOf(0), kOrigin, value)});
  leveldb::WriteOptions synced;
  synced.sync = true;
  const auto write_raw = [&](uint64_t first) {
    leveldb::WriteBatch batch;
    for (uint64_t i = 0; i < batch_size; ++i) batch.Put(SliceOf(keys[first + i]), value);
    MKS_ASSERT(raw.db->Write(synced, &batch).ok());
  };
  const auto write_store = [&](uint64_t first) {
    for (uint64_t i = 0; i < batch_size; ++i) {
      records[i].key.assign(keys[first + i]);
      records[i].version.timestamp = TimestampOf(first + i);
    }
    MKS_ASSERT(store.ApplyBatch(records, WriteOptions{.sync = true}).ok());
  };
  using Clock = std::chrono::steady_clock;
  Clock::duration raw_wall{}, store_wall{};
  uint64_t index = 0;
  bool raw_first = true;
  for (auto _ : state) {
    const Clock::time_point start = Clock::now();
    raw_first ? write_raw(index) : write_store(index);
    const Clock::time_point middle = Clock::now();
    raw_first ? write_store(index) : write_raw(index);
    const Clock::time_point end = Clock::now();
    raw_wall += raw_first ? middle - start : end - middle;
    store_wall += raw_first ? end - middle : middle - start;
    raw_first = !raw_first;
    index += batch_size;
  }
  MKS_ASSERT_GT(index, 0u);
  const auto per_record = [index](Clock::duration wall) {
    return static_cast<double>(std::chrono::duration_cast<std::chrono::nanoseconds>(wall).count()) /
           static_cast<double>(index);
  };
  state.counters["raw_ns"] = per_record(raw_wall);
  state.counters["store_ns"] = per_record(store_wall);
  state.SetItemsProcessed(static_cast<int64_t>(index));
}

// Fixed iterations (`records` per run), wall-clock rates, and the process's
// CPU time, which includes LevelDB's compaction thread.
void Configure(benchmark::internal::Benchmark* benchmark, int64_t batch_size,
               int64_t records) {
  MKS_ASSERT_EQ(records % batch_size, 0);
  benchmark->Iterations(records / batch_size)
      ->UseRealTime()
      ->MeasureProcessCPUTime()
      ->Unit(benchmark::kMicrosecond);
}
void OneRecord(benchmark::internal::Benchmark* benchmark) {
  Configure(benchmark, 1, kRecordsPerRun);
}
void Batch100(benchmark::internal::Benchmark* benchmark) {
  Configure(benchmark->Arg(100), 100, kSyncedRecordsPerRun);
}
void Batch1000(benchmark::internal::Benchmark* benchmark) {
  Configure(benchmark->Arg(1000), 1000, kSyncedRecordsPerRun);
}
void AlternatingBatch100(benchmark::internal::Benchmark* benchmark) {
  Configure(benchmark->Arg(100), 100, kAlternatingRecordsPerRun);
}
void AlternatingBatch1000(benchmark::internal::Benchmark* benchmark) {
  Configure(benchmark->Arg(1000), 1000, kAlternatingRecordsPerRun);
}

BENCHMARK(BM_RawLevelDbPut)->Apply(OneRecord);
BENCHMARK(BM_RawLevelDbGetThenPut)->Apply(OneRecord);
BENCHMARK(BM_StoreApply)->Apply(OneRecord);
BENCHMARK(BM_StoreApplyReadPath)->Apply(OneRecord);
BENCHMARK(BM_RawLevelDbSyncedBatch)->Apply(Batch100);
BENCHMARK(BM_RawLevelDbSyncedBatch)->Apply(Batch1000);
BENCHMARK(BM_StoreSyncedBatch)->Apply(Batch100);
BENCHMARK(BM_StoreSyncedBatch)->Apply(Batch1000);
BENCHMARK(BM_AlternatingSyncedBatches)->Apply(AlternatingBatch100);
BENCHMARK(BM_AlternatingSyncedBatches)->Apply(AlternatingBatch1000);

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
        Times& times = repetitions_[row];
        times.wall_us.push_back(run.GetAdjustedRealTime());
        times.cpu_us.push_back(run.GetAdjustedCPUTime());
        if (run.counters.count("user_ns") != 0) {
          times.user_ns.push_back(run.counters.at("user_ns").value);
        }
        if (run.counters.count("store_ns") != 0) {
          alternating_[row].raw_ns.push_back(run.counters.at("raw_ns").value);
          alternating_[row].store_ns.push_back(run.counters.at("store_ns").value);
        }
      } else if (run.aggregate_name == "median") {
        // Only aggregates are shown with --benchmark_report_aggregates_only.
        medians_[row] = {{run.GetAdjustedRealTime()}, {run.GetAdjustedCPUTime()}, {}};
        if (run.counters.count("user_ns") != 0) {
          medians_[row].user_ns.push_back(run.counters.at("user_ns").value);
        }
        if (run.counters.count("store_ns") != 0) {
          alternating_medians_[row] = {{run.counters.at("raw_ns").value},
                                       {run.counters.at("store_ns").value}};
        }
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
        << "compaction thread. user: its user-space part only (no kernel work for"
        << " writes\nand fsyncs), the steadiest of the three under other load.\n";
    char line[200];
    std::snprintf(line, sizeof line, "%-40s %4s %10s %10s %6s %10s %10s %6s %6s\n",
                  "comparison (per record)", "reps", "raw wall", "store wall", "ratio",
                  "raw cpu", "store cpu", "ratio", "user");
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
      const double user_ratio = raw->user_ns.empty() || store->user_ns.empty()
                                    ? 0
                                    : Median(raw->user_ns) / Median(store->user_ns);
      std::snprintf(line, sizeof line,
                    "%-40s %4zu %8.0fns %8.0fns %4.0f%%%s %8.0fns %8.0fns %4.0f%%%s %4.0f%%%s\n",
                    comparison.what, std::min(store->wall_us.size(), raw->wall_us.size()),
                    raw_wall, store_wall, wall_ratio * 100, Mark(wall_ratio), raw_cpu,
                    store_cpu, cpu_ratio * 100, Mark(cpu_ratio), user_ratio * 100,
                    Mark(user_ratio));
      out << line;
    }
    for (const char* batch : {"100", "1000"}) {
      const std::string row = std::string("BM_AlternatingSyncedBatches/") + batch;
      const Alternation* times = FindIn(alternating_, alternating_medians_, row);
      if (times == nullptr) continue;
      const double raw_wall = Median(times->raw_ns), store_wall = Median(times->store_ns);
      const double ratio = raw_wall / store_wall;
      const std::string what =
          std::string("batch of ") + batch + ", one sync, alternating";
      std::snprintf(line, sizeof line, "%-40s %4zu %8.0fns %8.0fns %4.0f%%%s %10s %10s %6s %6s\n",
                    what.c_str(), times->raw_ns.size(), raw_wall, store_wall,
                    ratio * 100, Mark(ratio), "-", "-", "-", "-");
      out << line;
    }
    out << "(! marks a ratio below the target; \"alternating\" rows time a raw and\n"
        << "a store batch back to back in every iteration, wall time only)\n";
    ConsoleReporter::Finalize();
  }

 private:
  struct Times {
    std::vector<double> wall_us;  // per iteration, one per repetition
    std::vector<double> cpu_us;
    std::vector<double> user_ns;  // per record
  };
  static const char* Mark(double ratio) { return ratio >= kTargetRatio ? " " : "!"; }
  // Wall ns per record of BM_AlternatingSyncedBatches' two sides.
  struct Alternation {
    std::vector<double> raw_ns;  // one per repetition
    std::vector<double> store_ns;
  };
  // The row's times per repetition, else its median alone, else nullptr.
  template <typename T>
  static const T* FindIn(const std::map<std::string, T>& repetitions,
                         const std::map<std::string, T>& medians,
                         const std::string& row) {
    if (auto it = repetitions.find(row); it != repetitions.end()) return &it->second;
    if (auto it = medians.find(row); it != medians.end()) return &it->second;
    return nullptr;
  }
  const Times* Find(const std::string& row) const {
    return FindIn(repetitions_, medians_, row);
  }
  std::map<std::string, Times> repetitions_;
  std::map<std::string, Times> medians_;
  std::map<std::string, Alternation> alternating_;
  std::map<std::string, Alternation> alternating_medians_;
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
