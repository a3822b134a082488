#include "sim/sim_disk.h"

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <string>

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

}  // namespace
}  // namespace mks::sim
