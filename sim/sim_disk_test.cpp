#include "sim/sim_disk.h"

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <bit>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "core/runtime/manual_clock.h"

namespace mks::sim {
namespace {

std::string Read(SimDisk& disk, const std::string& key) {
  std::string value;
  const Status status = disk.Get(key, &value);
  if (status.IsNotFound()) return "<none>";
  EXPECT_TRUE(status.ok()) << status;
  return value;
}

TEST(SimDiskTest, WritesAreVisibleAtOnce) {
  SimDisk disk(Random(1));
  ASSERT_TRUE(disk.Put("a", "1", {}).ok());
  EXPECT_EQ(Read(disk, "a"), "1");
  ASSERT_TRUE(disk.Delete("a", {}).ok());
  EXPECT_EQ(Read(disk, "a"), "<none>");
}

TEST(SimDiskTest, CrashKeepsSyncedWrites) {
  for (uint64_t seed = 0; seed < 50; ++seed) {
    SimDisk disk{Random(seed)};
    ASSERT_TRUE(disk.Put("synced", "yes", WriteOptions{.sync = true}).ok());
    ASSERT_TRUE(disk.Put("later", "maybe", {}).ok());
    disk.Crash();
    EXPECT_EQ(Read(disk, "synced"), "yes");
    const std::string later = Read(disk, "later");
    EXPECT_TRUE(later == "maybe" || later == "<none>") << later;
  }
}

TEST(SimDiskTest, CrashLosesSomeUnsyncedWritesAcrossSeeds) {
  int lost = 0;
  int kept = 0;
  for (uint64_t seed = 0; seed < 100; ++seed) {
    SimDisk disk{Random(seed)};
    ASSERT_TRUE(disk.Put("k", "v", {}).ok());
    disk.Crash();
    (Read(disk, "k") == "v" ? kept : lost)++;
  }
  EXPECT_GT(lost, 0);
  EXPECT_GT(kept, 0);
}

TEST(SimDiskTest, ExplicitSyncMakesEarlierWritesDurable) {
  SimDisk disk(Random(3));
  ASSERT_TRUE(disk.Put("a", "1", {}).ok());
  ASSERT_TRUE(disk.Put("b", "2", {}).ok());
  ASSERT_TRUE(disk.Sync().ok());
  disk.Crash();
  EXPECT_EQ(Read(disk, "a"), "1");
  EXPECT_EQ(Read(disk, "b"), "2");
  EXPECT_EQ(disk.unsynced_batch_count(), 0u);
}

// Whatever survives a crash is a prefix of the unsynced batches, each whole.
RC_GTEST_PROP(SimDiskProperty, CrashLeavesAPrefixOfWholeBatches, (uint64_t seed)) {
  SimDisk disk{Random(seed)};
  const int batches = *rc::gen::inRange(1, 20);
  for (int i = 0; i < batches; ++i) {
    WriteBatch batch;
    batch.Put("counter", std::to_string(i));
    batch.Put("mirror", std::to_string(i));
    RC_ASSERT(disk.Write(batch, {}).ok());
  }
  disk.Crash();
  const std::string counter = Read(disk, "counter");
  RC_ASSERT(counter == Read(disk, "mirror"));  // never torn
  if (counter != "<none>") RC_ASSERT(std::stoi(counter) < batches);
  RC_ASSERT(disk.stats().batches_lost + disk.stats().batches_saved ==
            static_cast<uint64_t>(batches));
}

// A SimDisk attached to a process of a scheduler on a manual clock.
class AsyncSimDiskTest : public ::testing::Test {
 protected:
  static constexpr int64_t kUsNanos = 1000;
  static constexpr DiskConfig kConfig{.write_latency_min_us = 100,
                                      .write_latency_max_us = 5000};

  explicit AsyncSimDiskTest(uint64_t seed = 1) : disk_(Random(seed), kConfig) {
    process_ = scheduler_.CreateProcess("node");
    disk_.Attach(&scheduler_, process_);
  }
  ~AsyncSimDiskTest() override { scheduler_.Kill(process_); }

  // Submits a synced write of key=value and records its outcome in order.
  void Submit(const std::string& key, const std::string& value) {
    WriteBatch batch;
    batch.Put(key, value);
    const int64_t submitted_ns = scheduler_.NowNanos();
    disk_.WriteAsync(std::move(batch), WriteOptions{.sync = true},
                     [this, value, submitted_ns](Status status) {
                       EXPECT_TRUE(status.ok()) << status;
                       EXPECT_FALSE(scheduler_.InFiber());
                       const int64_t took_ns = scheduler_.NowNanos() - submitted_ns;
                       EXPECT_GE(took_ns, kConfig.write_latency_min_us * kUsNanos);
                       completed_.push_back(value);
                     });
  }

  runtime::ManualClock clock_;
  runtime::Scheduler scheduler_{&clock_};
  runtime::ProcessId process_ = 0;
  SimDisk disk_;
  std::vector<std::string> completed_;
};

TEST_F(AsyncSimDiskTest, WritesCompleteAfterTheirLatencyInSubmissionOrder) {
  std::vector<std::string> submitted;
  for (int i = 0; i < 20; ++i) {
    submitted.push_back(std::to_string(i));
    Submit("k", submitted.back());
  }
  EXPECT_EQ(disk_.in_flight_count(), 20u);
  EXPECT_TRUE(completed_.empty());
  EXPECT_EQ(Read(disk_, "k"), "<none>");  // not visible before completion
  runtime::DriveUntilQuiet(scheduler_, clock_);
  EXPECT_EQ(completed_, submitted);
  EXPECT_EQ(disk_.in_flight_count(), 0u);
  EXPECT_EQ(disk_.stats().async_writes, 20u);
  EXPECT_EQ(Read(disk_, "k"), "19");
  scheduler_.Kill(process_);
  disk_.Crash();
  EXPECT_EQ(Read(disk_, "k"), "19");  // completed synced writes are durable
}

TEST_F(AsyncSimDiskTest, AKilledProcessNeverHearsOfItsWritesInFlight) {
  Submit("k", "v");
  scheduler_.Kill(process_);
  disk_.Crash();
  runtime::DriveUntilQuiet(scheduler_, clock_);
  EXPECT_TRUE(completed_.empty());
  EXPECT_EQ(disk_.in_flight_count(), 0u);
}

// Between landing and its report, reads see a write, and a crash keeps it
// (synced) though its writer never hears of it.
TEST(SimDiskTest, AWriteThatLandedIsVisibleAndDurableBeforeItsReport) {
  int seen_before_report = 0;
  for (uint64_t seed = 0; seed < 50; ++seed) {
    runtime::ManualClock clock;
    runtime::Scheduler scheduler(&clock);
    const runtime::ProcessId process = scheduler.CreateProcess("node");
    SimDisk disk(Random(seed), DiskConfig{.write_latency_min_us = 100,
                                          .write_latency_max_us = 100,
                                          .report_delay_max_us = 1000});
    disk.Attach(&scheduler, process);
    WriteBatch batch;
    batch.Put("k", "v");
    bool reported = false;
    disk.WriteAsync(std::move(batch), WriteOptions{.sync = true},
                    [&reported](Status status) {
                      EXPECT_TRUE(status.ok());
                      reported = true;
                    });
    // Just after landing (100 us): visible, maybe not reported yet.
    clock.AdvanceTo(clock.MonotonicNanos() + 100 * 1000);
    scheduler.RunUntilIdle();  // fires only what is due by now
    EXPECT_EQ(disk.in_flight_count(), 0u);
    EXPECT_EQ(Read(disk, "k"), "v");
    if (reported) continue;
    ++seen_before_report;
    scheduler.Kill(process);
    disk.Crash();
    runtime::DriveUntilQuiet(scheduler, clock);
    EXPECT_FALSE(reported);
    EXPECT_EQ(Read(disk, "k"), "v") << "seed " << seed;
  }
  EXPECT_GT(seen_before_report, 25);  // nearly every seed draws a delay
}

TEST_F(AsyncSimDiskTest, AWriteInFlightWhenDetachedStillLandsAndReports) {
  Submit("k", "v");
  disk_.Detach();
  runtime::DriveUntilQuiet(scheduler_, clock_);
  EXPECT_EQ(completed_, std::vector<std::string>{"v"});
  EXPECT_EQ(Read(disk_, "k"), "v");
}

TEST(SimDiskTest, DetachedWriteAsyncCompletesAtOnce) {
  SimDisk disk(Random(2));
  WriteBatch batch;
  batch.Put("k", "v");
  bool done = false;
  disk.WriteAsync(std::move(batch), WriteOptions{.sync = true}, [&done](Status status) {
    EXPECT_TRUE(status.ok());
    done = true;
  });
  EXPECT_TRUE(done);
  EXPECT_EQ(Read(disk, "k"), "v");
  EXPECT_EQ(disk.stats().async_writes, 0u);
}

// Writes in flight at a crash survive or vanish like unsynced ones, after
// them in order: what remains is a prefix of (unsynced, in flight...).
TEST(SimDiskTest, CrashKeepsAPrefixThatMayReachIntoWritesInFlight) {
  int reached_in_flight = 0;
  int lost_in_flight = 0;
  for (uint64_t seed = 0; seed < 200; ++seed) {
    runtime::ManualClock clock;
    runtime::Scheduler scheduler(&clock);
    const runtime::ProcessId process = scheduler.CreateProcess("node");
    SimDisk disk{Random(seed)};
    disk.Attach(&scheduler, process);
    ASSERT_TRUE(disk.Put("u", "1", {}).ok());
    for (const char* key : {"a", "b"}) {
      WriteBatch batch;
      batch.Put(key, "1");
      disk.WriteAsync(std::move(batch), WriteOptions{.sync = true},
                      [](Status) { ADD_FAILURE() << "completion after a kill"; });
    }
    scheduler.Kill(process);
    disk.Crash();
    const bool u = Read(disk, "u") == "1";
    const bool a = Read(disk, "a") == "1";
    const bool b = Read(disk, "b") == "1";
    EXPECT_TRUE((!b || a) && (!a || u)) << "not a prefix, seed " << seed;
    (a ? reached_in_flight : lost_in_flight)++;
  }
  EXPECT_GT(reached_in_flight, 0);
  EXPECT_GT(lost_in_flight, 0);
}

TEST(SimDiskTest, IteratorWalksInBytewiseOrderAndSurvivesWrites) {
  SimDisk disk(Random(4));
  const std::string binary("\x00\xff", 2);
  for (const std::string key : {"b", "a", "c", "\xff"}) {
    ASSERT_TRUE(disk.Put(key, "v" + key, {}).ok());
  }
  ASSERT_TRUE(disk.Put(binary, "binary", {}).ok());
  auto it = disk.NewIterator();
  it->SeekToFirst();
  ASSERT_TRUE(it->Valid());
  EXPECT_EQ(it->key(), binary);
  it->Seek("b");
  ASSERT_TRUE(it->Valid());
  EXPECT_EQ(it->key(), "b");
  ASSERT_TRUE(disk.Delete("c", {}).ok());  // delete ahead of the cursor
  it->Next();
  ASSERT_TRUE(it->Valid());
  EXPECT_EQ(it->key(), "\xff");
  it->Next();
  EXPECT_FALSE(it->Valid());
  EXPECT_TRUE(it->status().ok());
}

TEST(SimDiskTest, CorruptionFlipsOneBitOfARecordAtRest) {
  SimDisk disk(Random(5));
  ASSERT_TRUE(disk.Put("k", "value", WriteOptions{.sync = true}).ok());
  const auto key = disk.CorruptRandomRecord();
  ASSERT_TRUE(key.has_value());
  EXPECT_EQ(*key, "k");
  const std::string damaged = Read(disk, "k");
  ASSERT_EQ(damaged.size(), 5u);
  int differing_bits = 0;
  for (size_t i = 0; i < damaged.size(); ++i) {
    differing_bits += __builtin_popcount(static_cast<unsigned char>(damaged[i] ^ "value"[i]));
  }
  EXPECT_EQ(differing_bits, 1);
  disk.Crash();  // the damage is on the medium
  EXPECT_EQ(Read(disk, "k"), damaged);
  EXPECT_EQ(disk.stats().corruptions, 1u);
}

TEST(SimDiskTest, InjectedWriteErrorsChangeNothing) {
  SimDisk disk(Random(6));
  disk.set_write_error_ppm(1000000);
  EXPECT_EQ(disk.Put("k", "v", {}).code(), StatusCode::kIOError);
  EXPECT_EQ(Read(disk, "k"), "<none>");
  EXPECT_EQ(disk.Sync().code(), StatusCode::kIOError);
  disk.set_write_error_ppm(0);
  ASSERT_TRUE(disk.Put("k", "v", {}).ok());
  EXPECT_EQ(disk.stats().write_errors, 2u);
}

// Everything the disk holds, in key order, as an iterator walks it.
std::map<std::string, std::string> Contents(SimDisk& disk) {
  std::map<std::string, std::string> out;
  std::unique_ptr<DiskIterator> it = disk.NewIterator();
  for (it->SeekToFirst(); it->Valid(); it->Next()) out.emplace(it->key(), it->value());
  return out;
}

// SimDisk against a model that keeps the durable state and the unsynced
// batches apart: under any mix of writes, deletes, syncs, crashes and bit
// rot, reads show the model's
// visible state, a crash leaves the durable state plus a prefix of the
// batches, and rot reaches the durable copy.
RC_GTEST_PROP(SimDiskProperty, BehavesLikeDurableStatePlusUnsyncedBatches,
              (uint64_t seed, const std::vector<std::tuple<uint8_t, uint8_t, uint8_t>>& script)) {
  using Table = std::map<std::string, std::string>;
  SimDisk disk{Random(seed)};
  Table durable;
  std::vector<WriteBatch> unsynced;
  auto apply = [](const WriteBatch& batch, Table* table) {
    for (const WriteBatch::Operation& op : batch.operations()) {
      if (op.is_delete) {
        table->erase(op.key);
      } else {
        (*table)[op.key] = op.value;
      }
    }
  };
  auto visible = [&] {
    Table table = durable;
    for (const WriteBatch& batch : unsynced) apply(batch, &table);
    return table;
  };
  for (const auto& [kind, a, b] : script) {
    const std::string key = "k" + std::to_string(a % 5);
    const std::string value(b % 4, static_cast<char>('a' + b % 3));  // may be empty
    switch (kind % 6) {
      case 0: case 1: {  // a batch of one or two operations, maybe synced
        WriteBatch batch;
        batch.Put(key, value);
        if (b % 3 == 0) batch.Delete("k" + std::to_string(b % 5));
        RC_ASSERT(disk.Write(batch, WriteOptions{.sync = a % 4 == 0}).ok());
        unsynced.push_back(batch);
        if (a % 4 == 0) {
          durable = visible();
          unsynced.clear();
        }
        break;
      }
      case 2:
        RC_ASSERT(disk.Delete(key, {}).ok());
        unsynced.emplace_back().Delete(key);
        break;
      case 3:
        RC_ASSERT(disk.Sync().ok());
        durable = visible();
        unsynced.clear();
        break;
      case 4: {  // crash: some prefix of the batches survives
        disk.Crash();
        const Table after = Contents(disk);
        Table candidate = durable;
        bool found = candidate == after;
        for (size_t i = 0; i < unsynced.size() && !found; ++i) {
          apply(unsynced[i], &candidate);
          found = candidate == after;
        }
        RC_ASSERT(found);
        durable = after;
        unsynced.clear();
        break;
      }
      case 5: {  // bit rot, on a synced disk (rot under unsynced rewrites: below)
        RC_ASSERT(disk.Sync().ok());
        durable = visible();
        unsynced.clear();
        const std::optional<std::string> rotten = disk.CorruptRandomRecord();
        if (!rotten.has_value()) break;
        RC_ASSERT(durable.count(*rotten) == 1u);
        std::string damaged;
        RC_ASSERT(disk.Get(*rotten, &damaged).ok());
        const std::string& old = durable.at(*rotten);
        RC_ASSERT(damaged.size() == std::max<size_t>(old.size(), 1));
        int flipped = 0;
        for (size_t i = 0; i < damaged.size(); ++i) {
          const char was = i < old.size() ? old[i] : '\0';
          flipped += std::popcount(static_cast<uint8_t>(damaged[i] ^ was));
        }
        RC_ASSERT(flipped == 1);
        durable[*rotten] = damaged;
        break;
      }
    }
    RC_ASSERT(Contents(disk) == visible());
    RC_ASSERT(disk.unsynced_batch_count() == unsynced.size());
  }
}

// A record whose unsynced rewrites ended on its durable bytes is at rest
// too; its rot reaches the durable copy under those rewrites, so a crash
// that loses them shows the rot, and one that keeps the middle one shows it.
TEST(SimDiskTest, RotUnderUnsyncedRewritesReachesTheDurableCopy) {
  bool saw_rot = false;
  bool saw_middle = false;
  for (uint64_t seed = 0; seed < 40; ++seed) {
    SimDisk disk{Random(seed)};
    ASSERT_TRUE(disk.Put("k", "durable", WriteOptions{.sync = true}).ok());
    ASSERT_TRUE(disk.Put("k", "middle", {}).ok());
    ASSERT_TRUE(disk.Put("k", "durable", {}).ok());
    const std::optional<std::string> rotten = disk.CorruptRandomRecord();
    ASSERT_EQ(rotten, "k");
    const std::string damaged = Read(disk, "k");
    EXPECT_NE(damaged, "durable");
    EXPECT_EQ(damaged.size(), 7u);
    if (seed % 2 == 0) {
      ASSERT_TRUE(disk.Sync().ok());
      disk.Crash();
      EXPECT_EQ(Read(disk, "k"), damaged);
      continue;
    }
    disk.Crash();
    const std::string after = Read(disk, "k");
    EXPECT_TRUE(after == damaged || after == "middle") << after;
    saw_rot |= after == damaged;
    saw_middle |= after == "middle";
  }
  EXPECT_TRUE(saw_rot);
  EXPECT_TRUE(saw_middle);
}

}  // namespace
}  // namespace mks::sim
