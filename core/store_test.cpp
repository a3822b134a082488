#include "core/store.h"

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/crc32c.h"
#include "core/map_disk_for_test.h"

namespace mks {
namespace {

uint32_t FirstBytePartition(std::string_view key) {
  return key.empty() ? 0 : static_cast<uint8_t>(key[0]) % 4;
}

Version Write(uint64_t physical_ms, NodeId origin, std::string value) {
  return Version::Write(Timestamp{physical_ms, 0}, origin, std::move(value));
}

Version Tombstone(uint64_t physical_ms, NodeId origin) {
  return Version::Tombstone(Timestamp{physical_ms, 0}, origin);
}

class StoreTest : public ::testing::Test {
 protected:
  StoreTest() : store_(&disk_, FirstBytePartition, StoreOptions{}) {}

  bool MustApply(std::string_view key, const Version& version) {
    Result<bool> changed = store_.Apply(key, version);
    EXPECT_TRUE(changed.ok()) << changed.status();
    return changed.ok() && *changed;
  }

  // The stored value of `key`'s record, for tests that damage it.
  std::string& StoredValueOf(std::string_view key) {
    std::string disk_key = "v";
    const uint32_t partition = FirstBytePartition(key);
    disk_key.push_back(static_cast<char>(partition >> 8));
    disk_key.push_back(static_cast<char>(partition & 0xff));
    disk_key.append(key);
    auto it = disk_.table().find(disk_key);
    EXPECT_NE(it, disk_.table().end()) << "no record for " << key;
    return it->second;
  }

  MapDisk disk_;
  Store store_;
};

// The stamp ceiling's disk key under the default key space.
constexpr std::string_view kCeilingKey = "v";

TEST_F(StoreTest, KeepsTheGreaterTimestampAndSaysWhetherItChanged) {
  EXPECT_TRUE(MustApply("k", Write(10, 1, "old")));
  EXPECT_TRUE(MustApply("k", Write(20, 1, "new")));
  EXPECT_FALSE(MustApply("k", Write(15, 1, "late")));
  EXPECT_FALSE(MustApply("k", Write(20, 1, "new")));  // idempotent
  EXPECT_EQ(*store_.GetLive("k"), "new");
  EXPECT_EQ(*store_.Get("k"), Write(20, 1, "new"));
}

TEST_F(StoreTest, NodeIdBreaksTimestampTies) {
  EXPECT_TRUE(MustApply("k", Write(10, 2, "from two")));
  EXPECT_FALSE(MustApply("k", Write(10, 1, "from one")));
  EXPECT_TRUE(MustApply("k", Write(10, 3, "from three")));
  EXPECT_EQ(*store_.GetLive("k"), "from three");
}

TEST_F(StoreTest, LogicalCounterOrdersWithinAMillisecond) {
  EXPECT_TRUE(MustApply("k", Version::Write(Timestamp{10, 1}, 1, "a")));
  EXPECT_TRUE(MustApply("k", Version::Write(Timestamp{10, 2}, 1, "b")));
  EXPECT_EQ(*store_.GetLive("k"), "b");
}

TEST_F(StoreTest, TombstoneIsReturnedAsAVersionButNotAsALiveValue) {
  EXPECT_TRUE(MustApply("k", Write(10, 1, "v")));
  EXPECT_TRUE(MustApply("k", Tombstone(11, 1)));
  const Result<Version> version = store_.Get("k");
  ASSERT_TRUE(version.ok()) << version.status();
  EXPECT_TRUE(version->tombstone);
  EXPECT_EQ(version->timestamp, (Timestamp{11, 0}));
  EXPECT_TRUE(store_.GetLive("k").status().IsNotFound());
  EXPECT_TRUE(store_.Get("absent").status().IsNotFound());
  EXPECT_TRUE(store_.GetLive("absent").status().IsNotFound());
}

TEST_F(StoreTest, RefusesBadInputAndWritesNothing) {
  StoreOptions options;
  options.max_key_bytes = 8;
  options.max_value_bytes = 16;
  Store small(&disk_, FirstBytePartition, options);
  const auto code = [&](std::string_view key, const Version& version) {
    return small.Apply(key, version).status().code();
  };
  EXPECT_EQ(code("", Write(1, 1, "v")), StatusCode::kInvalidArgument);
  EXPECT_EQ(code(std::string(9, 'k'), Write(1, 1, "v")),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(code("k", Write(1, 1, std::string(17, 'v'))),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(code("k", Write(1, kNoNode, "v")), StatusCode::kInvalidArgument);
  EXPECT_EQ(code("k", Version::Write(Timestamp::Zero(), 1, "v")),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(code("k", Version{Timestamp{1, 0}, 1, true, "v"}),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(disk_.writes(), 0);
  EXPECT_TRUE(disk_.table().empty());
  EXPECT_EQ(small.Get("").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(small.Remove(std::string(9, 'k')).code(),
            StatusCode::kInvalidArgument);
  const std::string message =
      small.Apply(std::string(9, 'k'), Write(1, 1, "v")).status().message();
  EXPECT_NE(message.find("9 bytes exceeds the maximum of 8"), std::string::npos)
      << message;

  // Exactly at the limits is fine.
  EXPECT_TRUE(small.Apply(std::string(8, 'k'), Write(1, 1, std::string(16, 'v')))
                  .ok());
  EXPECT_TRUE(small.Apply("e", Write(1, 1, "")).ok());
  EXPECT_EQ(*small.GetLive("e"), "");
}

TEST_F(StoreTest, BatchWithOneBadRecordWritesNothing) {
  const std::vector<Record> records = {
      {"good", Write(1, 1, "v")},
      {"", Write(1, 1, "v")},
  };
  EXPECT_EQ(store_.ApplyBatch(records).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_TRUE(disk_.table().empty());
  EXPECT_EQ(disk_.writes(), 0);
}

TEST_F(StoreTest, AllByteValuesAreAllowedInKeysAndValues) {
  std::string every_byte;
  for (int byte = 0; byte < 256; ++byte) every_byte.push_back(static_cast<char>(byte));
  const std::vector<std::string> keys = {
      std::string("\0", 1), std::string("\xff", 1), std::string("a\0b", 3),
      every_byte, std::string(1024, '\0')};
  for (const std::string& key : keys) {
    EXPECT_TRUE(MustApply(key, Write(5, 1, every_byte + key)));
  }
  for (const std::string& key : keys) {
    const Result<std::string> value = store_.GetLive(key);
    ASSERT_TRUE(value.ok()) << value.status();
    EXPECT_EQ(*value, every_byte + key);
  }
  // "a" and "a\0b" are different keys.
  EXPECT_TRUE(store_.Get("a").status().IsNotFound());
}

TEST_F(StoreTest, ForEachInPartitionVisitsOnlyThatPartitionInKeyOrder) {
  // FirstBytePartition: 'a'=97 -> 1, 'b'=98 -> 2, 'e'=101 -> 1, 'i' -> 1.
  for (const char* key : {"i9", "a2", "b1", "e", "a1", "b2", "a\xff"}) {
    EXPECT_TRUE(MustApply(key, Write(1, 1, std::string("v") + key)));
  }
  EXPECT_TRUE(MustApply("a3", Tombstone(2, 1)));
  std::vector<std::string> seen;
  ASSERT_TRUE(store_
                  .ForEachInPartition(1,
                                      [&](std::string_view key, const Version& version) {
                                        EXPECT_EQ(FirstBytePartition(key), 1u);
                                        EXPECT_EQ(version.tombstone, key == "a3");
                                        seen.emplace_back(key);
                                        return true;
                                      })
                  .ok());
  EXPECT_EQ(seen, (std::vector<std::string>{"a1", "a2", "a3", "a\xff", "e", "i9"}));

  seen.clear();
  ASSERT_TRUE(store_
                  .ForEachInPartition(1,
                                      [&](std::string_view key, const Version&) {
                                        seen.emplace_back(key);
                                        return seen.size() < 2;
                                      })
                  .ok());
  EXPECT_EQ(seen.size(), 2u);
  int in_empty_partition = 0;
  ASSERT_TRUE(store_
                  .ForEachInPartition(3,
                                      [&](std::string_view, const Version&) {
                                        ++in_empty_partition;
                                        return true;
                                      })
                  .ok());
  EXPECT_EQ(in_empty_partition, 0);
}

TEST_F(StoreTest, ForEachInPartitionDoesNotReachOtherKeySpaces) {
  StoreOptions hints_options;
  hints_options.key_space = "h";
  Store hints(&disk_, FirstBytePartition, hints_options);
  ASSERT_TRUE(hints.Apply("a1", Write(1, 1, "hint")).ok());
  ASSERT_TRUE(store_.Apply("a1", Write(2, 1, "record")).ok());
  int visited = 0;
  ASSERT_TRUE(store_
                  .ForEachInPartition(1,
                                      [&](std::string_view, const Version& version) {
                                        EXPECT_EQ(version.value, "record");
                                        ++visited;
                                        return true;
                                      })
                  .ok());
  EXPECT_EQ(visited, 1);
  EXPECT_EQ(*hints.GetLive("a1"), "hint");
}

TEST_F(StoreTest, BatchMatchesOneByOneApplyAndSyncsOnce) {
  const std::vector<Record> records = {
      {"x", Write(5, 1, "x5")}, {"y", Write(3, 1, "y3")},
      {"x", Write(4, 1, "x4")}, {"x", Write(6, 1, "x6")},
      {"y", Tombstone(3, 2)},
  };
  ASSERT_TRUE(store_.Apply("y", Write(7, 1, "y7")).ok());
  const int writes_before = disk_.writes();
  const Result<std::vector<bool>> changed =
      store_.ApplyBatch(records, WriteOptions{.sync = true});
  ASSERT_TRUE(changed.ok()) << changed.status();
  EXPECT_EQ(*changed, (std::vector<bool>{true, false, false, true, false}));
  EXPECT_EQ(disk_.writes() - writes_before, 1);
  EXPECT_EQ(*store_.GetLive("x"), "x6");
  EXPECT_EQ(*store_.GetLive("y"), "y7");
}

TEST_F(StoreTest, PreparedBatchWrittenByTheCallerEndsLikeApplyBatch) {
  ASSERT_TRUE(store_.Apply("y", Write(7, 1, "y7")).ok());
  const int writes_before = disk_.writes();
  const std::vector<Record> records = {
      {"x", Write(5, 1, "x5")}, {"y", Write(3, 1, "y3")}, {"x", Write(6, 1, "x6")}};
  Result<Store::PreparedBatch> prepared = store_.PrepareBatch(records);
  ASSERT_TRUE(prepared.ok()) << prepared.status();
  EXPECT_EQ(disk_.writes(), writes_before);  // preparing writes nothing
  EXPECT_EQ(prepared->changed, (std::vector<bool>{true, false, true}));
  EXPECT_TRUE(store_.GetLive("x").status().IsNotFound());
  const Status written = disk_.Write(prepared->batch, WriteOptions{.sync = true});
  ASSERT_TRUE(written.ok());
  store_.FinishBatch(*prepared, written);
  EXPECT_EQ(*store_.GetLive("x"), "x6");
  EXPECT_EQ(*store_.GetLive("y"), "y7");
  // The ceiling the batch carried is on disk: a store reopened over it
  // reads before writing anything older than x6.
  Store reopened(&disk_, FirstBytePartition, StoreOptions{});
  EXPECT_FALSE(*reopened.Apply("x", Write(6, 1, "x6")));
  EXPECT_FALSE(*reopened.Apply("x", Write(5, 1, "x5")));
}

TEST_F(StoreTest, PreparedBatchThatFailedToWriteLeavesTheStoreCorrect) {
  ASSERT_TRUE(store_.Apply("a", Write(2, 1, "a2")).ok());
  Result<Store::PreparedBatch> prepared = store_.PrepareBatch(std::vector<Record>{
      {"x", Write(9, 1, "x9")}});
  ASSERT_TRUE(prepared.ok());
  store_.FinishBatch(*prepared, Status::IOError("device gone"));
  // Nothing landed: an older version of x still wins, read and written,
  // and a store reopened over the disk agrees.
  EXPECT_TRUE(*store_.Apply("x", Write(4, 1, "x4")));
  Store reopened(&disk_, FirstBytePartition, StoreOptions{});
  EXPECT_EQ(*reopened.GetLive("x"), "x4");
  EXPECT_FALSE(*reopened.Apply("x", Write(3, 1, "x3")));
}

TEST_F(StoreTest, SyncedApplyThatChangesNothingStillSyncs) {
  ASSERT_TRUE(store_.Apply("k", Write(5, 1, "v")).ok());
  const int syncs_before = disk_.syncs();
  const Result<bool> again = store_.Apply("k", Write(5, 1, "v"), {.sync = true});
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(*again);
  EXPECT_EQ(disk_.syncs(), syncs_before + 1);
}

TEST_F(StoreTest, CorruptRecordIsReportedWithItsKeyAndNeverReturned) {
  ASSERT_TRUE(store_.Apply("a\x01key", Write(5, 1, "value")).ok());
  ASSERT_TRUE(store_.Apply("b", Write(20, 1, "newest")).ok());
  ASSERT_EQ(disk_.table().size(), 3u);  // two records and the ceiling
  std::string& stored = StoredValueOf("a\x01key");
  stored[stored.size() / 2] ^= 0x10;

  const Result<Version> read = store_.Get("a\x01key");
  ASSERT_FALSE(read.ok());
  EXPECT_TRUE(read.status().IsCorruption()) << read.status();
  EXPECT_NE(read.status().message().find("a\\x01key"), std::string::npos)
      << read.status();
  EXPECT_TRUE(store_.GetLive("a\x01key").status().IsCorruption());
  // A write that is not newer than everything in the store must read the
  // record, and does not silently paper over it either.
  EXPECT_TRUE(store_.Apply("a\x01key", Write(9, 1, "newer")).status().IsCorruption());
  const std::vector<Record> batch = {{"a\x01key", Write(9, 1, "newer")}};
  EXPECT_TRUE(store_.ApplyBatch(batch).status().IsCorruption());
  const Status scan = store_.ForEachInPartition(
      1, [](std::string_view, const Version&) { return true; });
  EXPECT_TRUE(scan.IsCorruption()) << scan;

  // Removing the record lets the key be rebuilt (by repair).
  ASSERT_TRUE(store_.Remove("a\x01key").ok());
  EXPECT_TRUE(MustApply("a\x01key", Write(9, 1, "newer")));
  EXPECT_EQ(*store_.GetLive("a\x01key"), "newer");
}

TEST_F(StoreTest, VersionNewerThanEverythingReplacesADamagedRecordUnread) {
  ASSERT_TRUE(store_.Apply("a1", Write(5, 1, "value")).ok());
  std::string& stored = StoredValueOf("a1");
  stored[stored.size() / 2] ^= 0x10;
  const int reads_before = disk_.reads();
  // Whatever the damaged record held, it was older than this version.
  EXPECT_TRUE(MustApply("a1", Write(6, 1, "fresh")));
  EXPECT_EQ(disk_.reads(), reads_before);
  EXPECT_EQ(*store_.GetLive("a1"), "fresh");
}

TEST_F(StoreTest, ARepairReplacesADamagedRecordAndOnlyADamagedOne) {
  ASSERT_TRUE(store_.Apply("a1", Write(5, 1, "value")).ok());
  ASSERT_TRUE(store_.Apply("b", Write(20, 1, "newest")).ok());
  std::string& stored = StoredValueOf("a1");
  stored[stored.size() / 2] ^= 0x10;
  EXPECT_TRUE(store_.Apply("a1", Write(3, 1, "plain")).status().IsCorruption());
  // Older than what the record may have held: the repair still replaces
  // it, since nobody knows what it held.
  Result<bool> repaired = store_.Apply("a1", Write(3, 1, "repair"), {}, /*repair=*/true);
  ASSERT_TRUE(repaired.ok()) << repaired.status();
  EXPECT_TRUE(*repaired);
  EXPECT_EQ(*store_.GetLive("a1"), "repair");
  // Over a healthy record a repair is plain last-writer-wins, in batches too.
  EXPECT_FALSE(*store_.Apply("a1", Write(2, 1, "older"), {}, /*repair=*/true));
  std::string& again = StoredValueOf("a1");
  again[again.size() / 2] ^= 0x10;
  const std::vector<Record> batch = {{"a1", Write(4, 2, "batched"), /*repair=*/true},
                                     {"b", Write(19, 1, "older"), /*repair=*/true}};
  Result<std::vector<bool>> changed = store_.ApplyBatch(batch);
  ASSERT_TRUE(changed.ok()) << changed.status();
  EXPECT_EQ(*changed, (std::vector<bool>{true, false}));
  EXPECT_EQ(*store_.GetLive("a1"), "batched");
  EXPECT_EQ(*store_.GetLive("b"), "newest");
}

TEST_F(StoreTest, RemoveIfDamagedRemovesOnlyADamagedRecord) {
  ASSERT_TRUE(store_.Apply("a1", Write(5, 1, "value")).ok());
  ASSERT_TRUE(store_.Apply("a2", Write(5, 1, "value")).ok());
  EXPECT_FALSE(*store_.RemoveIfDamaged("a1"));
  EXPECT_FALSE(*store_.RemoveIfDamaged("absent"));
  EXPECT_TRUE(store_.RemoveIfDamaged("").status().IsInvalidArgument());
  std::string& stored = StoredValueOf("a2");
  stored[0] ^= 0x01;
  EXPECT_TRUE(*store_.RemoveIfDamaged("a2"));
  EXPECT_TRUE(store_.Get("a2").status().IsNotFound());
  EXPECT_EQ(*store_.GetLive("a1"), "value");
}

TEST_F(StoreTest, CheckCeilingFindsARecordAboveTheCeiling) {
  ASSERT_TRUE(store_.Apply("a1", Write(5, 1, "value")).ok());
  ASSERT_TRUE(store_.Apply("b", Write(20, 3, "newest")).ok());
  EXPECT_TRUE(store_.CheckCeiling().ok());
  // A record written behind the store's back, above its ceiling: the state
  // a ceiling that moved without its write landing would leave.
  Store other(&disk_, FirstBytePartition, StoreOptions{});
  const std::string ceiling = disk_.table().at(std::string(kCeilingKey));
  ASSERT_TRUE(other.Apply("c", Write(50'000, 2, "above")).ok());
  disk_.table()[std::string(kCeilingKey)] = ceiling;
  const Status broken = store_.CheckCeiling();
  EXPECT_TRUE(broken.IsCorruption()) << broken;
  EXPECT_NE(broken.message().find("'c'"), std::string::npos) << broken;
  // A damaged ceiling is no broken invariant: applies then read.
  disk_.table()[std::string(kCeilingKey)][1] ^= 0x01;
  EXPECT_TRUE(store_.CheckCeiling().ok());
  disk_.table().erase(std::string(kCeilingKey));
  EXPECT_TRUE(store_.CheckCeiling().ok());
}

TEST_F(StoreTest, RecordMovedUnderAnotherKeyIsCorrupt) {
  ASSERT_TRUE(store_.Apply("a1", Write(5, 1, "value")).ok());
  const std::string moved = StoredValueOf("a1");
  disk_.table()[disk_.table().rbegin()->first + "x"] = moved;
  EXPECT_TRUE(store_.Get("a1x").status().IsCorruption());
}

TEST_F(StoreTest, TruncatedRecordIsCorrupt) {
  ASSERT_TRUE(store_.Apply("a1", Write(5, 1, "value")).ok());
  const std::string whole = StoredValueOf("a1");
  for (size_t length = 0; length < whole.size(); ++length) {
    StoredValueOf("a1") = whole.substr(0, length);
    EXPECT_TRUE(store_.Get("a1").status().IsCorruption()) << length;
  }
  StoredValueOf("a1") = whole;
  EXPECT_EQ(*store_.GetLive("a1"), "value");
}

// The layout of docs/storage.md, byte for byte: "v", the partition in two
// bytes, the user key; format 2, flags, varint physical_ms, logical and
// origin, the value, and a big-endian CRC-32C over disk key and value.
TEST_F(StoreTest, RecordLayoutIsTheDocumentedOne) {
  ASSERT_TRUE(store_.Apply("a1", Version::Write(Timestamp{300, 2}, 1, "xy")).ok());
  const std::string disk_key("v\x00\x01" "a1", 5);  // 'a' % 4 == 1
  ASSERT_EQ(disk_.table().count(disk_key), 1u);
  const std::string& value = disk_.table().at(disk_key);
  const std::string body("\x02\x00\xac\x02\x02\x01xy", 8);  // 300 = 0xac 0x02
  ASSERT_EQ(value.size(), body.size() + 4);
  EXPECT_EQ(value.substr(0, body.size()), body);
  const uint32_t crc = Crc32c(body, Crc32c(disk_key));
  const std::string crc_bytes = {static_cast<char>(crc >> 24), static_cast<char>(crc >> 16),
                                 static_cast<char>(crc >> 8), static_cast<char>(crc)};
  EXPECT_EQ(value.substr(body.size()), crc_bytes);
}

// A value whose checksum matches but whose header is not one this build
// writes: an older format, a varint in a longer form than needed, or one
// too large for its field. Each is Corruption, never a version.
TEST(StoreEncodingTest, WellChecksummedButForeignHeadersAreCorrupt) {
  const auto sealed = [](std::string body) {
    const uint32_t crc = Crc32c(body, Crc32c("vkey"));
    for (int shift = 24; shift >= 0; shift -= 8) {
      body.push_back(static_cast<char>((crc >> shift) & 0xff));
    }
    return body;
  };
  const std::string good = sealed(std::string("\x02\x00\x05\x00\x01v", 6));
  ASSERT_EQ(DecodeRecordValue("vkey", "key", good)->value, "v");
  const std::string foreign[] = {
      std::string("\x01\x00\x05\x00\x01v", 6),          // format 1
      std::string("\x02\x02\x05\x00\x01v", 6),          // unknown flag
      std::string("\x02\x00\x85\x00\x00\x01v", 7),      // physical_ms 5, overlong
      std::string("\x02\x00\x05\x80\x00\x01v", 7),      // logical 0, overlong
      std::string("\x02\x00\x05\x00\xff\xff\xff\xff\x1f", 9),  // origin > 32 bits
      std::string("\x02\x00\xff\xff\xff\xff\xff\xff\xff\xff\xff\x02\x00\x01", 14),
      std::string("\x02\x00\x05\x00\x81", 5),          // origin cut off
  };
  for (const std::string& body : foreign) {
    const Result<Version> decoded = DecodeRecordValue("vkey", "key", sealed(body));
    EXPECT_TRUE(decoded.status().IsCorruption()) << EscapeKeyForMessage(body);
  }
}

TEST(StoreEncodingTest, ExtremeStampsRoundTrip) {
  const uint64_t max64 = std::numeric_limits<uint64_t>::max();
  const uint32_t max32 = std::numeric_limits<uint32_t>::max();
  for (const Version& version :
       {Version::Write(Timestamp{max64, max32}, max32, "v"),
        Version::Tombstone(Timestamp{0, 1}, 1), Version::Write(Timestamp{1, 0}, 1, ""),
        Version::Write(Timestamp{127, 128}, 16384, std::string(300, '\0'))}) {
    const std::string encoded = EncodeRecordValue("vkey", version);
    EXPECT_EQ(*DecodeRecordValue("vkey", "key", encoded), version);
  }
}

// Two bytes of partition, big-endian: partitions 255 and 256 differ in both
// bytes, and the largest one the ring can have is kept apart too.
TEST(StorePartitionTest, PartitionsUpToTheLimitAreKeptApartInOrder) {
  MapDisk disk;
  const auto partition_of = [](std::string_view key) -> uint32_t {
    switch (key[0]) {
      case 'a': return 255;
      case 'b': return 256;
      case 'c': return kMaxStorePartitions - 1;
      default: return 0;
    }
  };
  Store store(&disk, partition_of, StoreOptions{});
  uint64_t ms = 1;
  for (const char* key : {"c2", "b1", "a2", "d1", "c1", "a1", "b2"}) {
    ASSERT_TRUE(store.Apply(key, Version::Write(Timestamp{ms++, 0}, 1, key)).ok());
  }
  for (const uint32_t partition : {0u, 255u, 256u, kMaxStorePartitions - 1}) {
    std::vector<std::string> seen;
    ASSERT_TRUE(store
                    .ForEachInPartition(partition,
                                        [&](std::string_view key, const Version& version) {
                                          EXPECT_EQ(version.value, key);
                                          seen.emplace_back(key);
                                          return true;
                                        })
                    .ok());
    std::vector<std::string> expected;
    for (const char* key : {"a1", "a2", "b1", "b2", "c1", "c2", "d1"}) {
      if (partition_of(key) == partition) expected.emplace_back(key);
    }
    EXPECT_EQ(seen, expected) << partition;
  }
}

TEST(StorePartitionDeathTest, PartitionBeyondTheLimitIsAProgrammingError) {
  MapDisk disk;
  Store store(&disk, [](std::string_view) { return kMaxStorePartitions; },
              StoreOptions{});
  EXPECT_DEATH((void)store.Apply("k", Version::Write(Timestamp{1, 0}, 1, "v")),
               "kMaxStorePartitions");
  EXPECT_DEATH((void)store.ForEachInPartition(
                   kMaxStorePartitions, [](std::string_view, const Version&) { return true; }),
               "kMaxStorePartitions");
}

TEST_F(StoreTest, VersionsNewerThanEverythingAreWrittenWithoutReading) {
  for (uint64_t ms = 1; ms <= 10; ++ms) {
    EXPECT_TRUE(MustApply("k" + std::to_string(ms % 3), Write(ms, 1, "v")));
  }
  EXPECT_EQ(disk_.reads(), 1);  // the ceiling, once
  const std::vector<Record> batch = {{"k1", Write(11, 1, "a")},
                                     {"k1", Write(12, 1, "b")},
                                     {"k4", Write(11, 2, "c")}};
  EXPECT_EQ(*store_.ApplyBatch(batch), (std::vector<bool>{true, true, true}));
  EXPECT_EQ(disk_.reads(), 1);
  EXPECT_EQ(*store_.GetLive("k1"), "b");
  EXPECT_EQ(disk_.reads(), 2);
  // Older, equal, or tied on the stamp with a lower origin: each must read.
  EXPECT_FALSE(MustApply("k1", Write(3, 1, "old")));
  EXPECT_FALSE(MustApply("k1", Write(12, 1, "b")));
  EXPECT_FALSE(MustApply("k4", Write(11, 1, "c")));
  EXPECT_EQ(disk_.reads(), 5);
  EXPECT_TRUE(MustApply("k5", Write(12, 1, "x")));  // ties the newest: reads
  EXPECT_EQ(disk_.reads(), 6);
}

TEST_F(StoreTest, ReopenedStoreReadsUntilVersionsPassTheCeiling) {
  ASSERT_TRUE(MustApply("k", Write(5000, 1, "new")));
  Store reopened(&disk_, FirstBytePartition, StoreOptions{});
  const int reads_before = disk_.reads();
  EXPECT_FALSE(*reopened.Apply("k", Write(4000, 1, "old")));
  EXPECT_EQ(*reopened.GetLive("k"), "new");
  // The ceiling sits a little above what was written: reads until past it.
  EXPECT_TRUE(*reopened.Apply("j", Write(5500, 1, "within")));
  const int reads_within = disk_.reads();
  EXPECT_EQ(reads_within - reads_before, 4);  // the ceiling, k, GetLive, j
  EXPECT_TRUE(*reopened.Apply("k", Write(7000, 1, "past")));
  EXPECT_EQ(disk_.reads(), reads_within);
  EXPECT_EQ(*reopened.GetLive("k"), "past");
}

TEST_F(StoreTest, MissingCeilingUnderRecordsMeansReadingUntilRebuilt) {
  ASSERT_TRUE(MustApply("k", Write(5000, 1, "new")));
  ASSERT_TRUE(MustApply("j", Write(10, 1, "j")));
  ASSERT_EQ(disk_.table().erase(std::string(kCeilingKey)), 1u);
  Store reopened(&disk_, FirstBytePartition, StoreOptions{});
  EXPECT_FALSE(*reopened.Apply("k", Write(4000, 1, "old")));
  EXPECT_TRUE(*reopened.Apply("j", Write(9000, 1, "j2")));
  EXPECT_FALSE(disk_.table().contains(kCeilingKey));
  const Result<GcStats> gc = reopened.CollectGarbage(10'000);
  ASSERT_TRUE(gc.ok()) << gc.status();
  EXPECT_EQ(gc->records_scanned, 2u);
  ASSERT_TRUE(disk_.table().contains(kCeilingKey));
  EXPECT_FALSE(*reopened.Apply("j", Write(8999, 1, "older")));
  const int reads_before = disk_.reads();
  EXPECT_TRUE(*reopened.Apply("k", Write(9001, 1, "newest")));
  EXPECT_EQ(disk_.reads(), reads_before);
  // And a store opened after the rebuild trusts it.
  Store again(&disk_, FirstBytePartition, StoreOptions{});
  EXPECT_FALSE(*again.Apply("k", Write(9000, 1, "older")));
  EXPECT_EQ(*again.GetLive("k"), "newest");
}

TEST_F(StoreTest, DamagedCeilingIsNeverTrustedAndIsRebuiltOnlyFromAFullScan) {
  ASSERT_TRUE(MustApply("k", Write(5000, 1, "new")));
  ASSERT_TRUE(MustApply("j", Write(6000, 1, "j")));
  std::string& ceiling = disk_.table().at(std::string(kCeilingKey));
  ceiling[3] ^= 0x01;
  Store reopened(&disk_, FirstBytePartition, StoreOptions{});
  EXPECT_FALSE(*reopened.Apply("k", Write(4000, 1, "old")));
  EXPECT_EQ(*reopened.GetLive("k"), "new");
  // A corrupt record's stamp is unknown (here the newest), so no rebuild
  // past it: the next apply to it still reads it and reports it.
  StoredValueOf("j")[2] ^= 0x01;
  ASSERT_EQ(reopened.CollectGarbage(10'000)->corrupt_records, 1u);
  EXPECT_TRUE(reopened.Apply("j", Write(5500, 1, "older")).status().IsCorruption());
  EXPECT_FALSE(*reopened.Apply("k", Write(4999, 1, "old")));
  ASSERT_TRUE(reopened.Remove("j").ok());
  ASSERT_EQ(reopened.CollectGarbage(10'000)->corrupt_records, 0u);
  const int reads_before = disk_.reads();
  EXPECT_TRUE(*reopened.Apply("j", Write(5001, 1, "rebuilt")));
  EXPECT_EQ(disk_.reads(), reads_before);
}

// A MapDisk whose next write lands and still reports IOError, as a LevelDB
// write whose log append succeeded and whose fsync failed.
class LandThenFailDisk final : public Disk {
 public:
  explicit LandThenFailDisk(MapDisk* disk) : disk_(disk) {}
  void FailNextWrite() { fail_next_ = true; }

  Status Get(std::string_view key, std::string* value) override {
    return disk_->Get(key, value);
  }
  Status Put(std::string_view key, std::string_view value,
             WriteOptions options) override {
    return Outcome(disk_->Put(key, value, options));
  }
  Status Delete(std::string_view key, WriteOptions options) override {
    return Outcome(disk_->Delete(key, options));
  }
  Status Write(const WriteBatch& batch, WriteOptions options) override {
    return Outcome(disk_->Write(batch, options));
  }
  std::unique_ptr<DiskIterator> NewIterator() override {
    return disk_->NewIterator();
  }
  Status Sync() override { return disk_->Sync(); }

 private:
  Status Outcome(Status landed) {
    EXPECT_TRUE(landed.ok());
    if (!fail_next_) return landed;
    fail_next_ = false;
    return Status::IOError("fsync failed");
  }
  MapDisk* const disk_;
  bool fail_next_ = false;
};

TEST_F(StoreTest, WriteThatLandedDespiteItsErrorStaysUnderTheCeiling) {
  LandThenFailDisk disk(&disk_);
  Store store(&disk, FirstBytePartition, StoreOptions{});
  ASSERT_TRUE(*store.Apply("a", Write(1000, 1, "a")));
  disk.FailNextWrite();
  EXPECT_FALSE(store.Apply("b", Write(5000, 1, "landed")).ok());
  // Below the store's newest: read, then written with a ceiling that must
  // cover the record that landed, not only this one.
  ASSERT_TRUE(*store.Apply("c", Write(3000, 1, "c")));
  Store reopened(&disk, FirstBytePartition, StoreOptions{});
  EXPECT_FALSE(*reopened.Apply("b", Write(4500, 1, "older")));
  EXPECT_EQ(*reopened.GetLive("b"), "landed");
}

TEST_F(StoreTest, RefusedVersionsNeitherReadNorMoveTheCeiling) {
  ASSERT_TRUE(MustApply("k", Write(10, 1, "v")));
  const std::string ceiling = disk_.table().at(std::string(kCeilingKey));
  EXPECT_FALSE(store_.Apply("", Write(99'999, 1, "v")).ok());
  EXPECT_FALSE(store_.Apply("k", Write(99'999, kNoNode, "v")).ok());
  EXPECT_EQ(disk_.table().at(std::string(kCeilingKey)), ceiling);
  EXPECT_FALSE(MustApply("k", Write(9, 1, "older")));
}

TEST_F(StoreTest, GarbageCollectionDropsOnlyTombstonesPastTheGrace) {
  StoreOptions options;
  options.tombstone_grace_ms = 1000;
  Store store(&disk_, FirstBytePartition, options);
  ASSERT_TRUE(store.Apply("old", Tombstone(1000, 1)).ok());
  ASSERT_TRUE(store.Apply("edge", Tombstone(4000, 1)).ok());
  ASSERT_TRUE(store.Apply("young", Tombstone(4500, 1)).ok());
  ASSERT_TRUE(store.Apply("live", Write(1, 1, "kept")).ok());
  const Result<GcStats> stats = store.CollectGarbage(5000);
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->records_scanned, 4u);
  EXPECT_EQ(stats->tombstones_dropped, 1u);
  EXPECT_EQ(stats->tombstones_kept, 2u);
  EXPECT_TRUE(store.Get("old").status().IsNotFound());
  EXPECT_TRUE(store.Get("edge")->tombstone);
  EXPECT_TRUE(store.Get("young")->tombstone);
  EXPECT_EQ(*store.GetLive("live"), "kept");
}

// ---- Partition scans and removal (streaming) ----

std::vector<std::string> KeysOf(const Store::PartitionBatch& batch) {
  std::vector<std::string> keys;
  for (const Record& record : batch.records) keys.push_back(record.key);
  return keys;
}

TEST_F(StoreTest, ScanPartitionPagesThroughOnePartitionInKeyOrder) {
  // FirstBytePartition: 'a', 'e', 'i' -> 1, 'b' -> 2.
  for (const char* key : {"i9", "a2", "b1", "e", "a1", "a\xff"}) {
    ASSERT_TRUE(MustApply(key, Write(1, 1, std::string("v") + key)));
  }
  ASSERT_TRUE(MustApply("a3", Tombstone(2, 1)));
  Result<Store::PartitionBatch> first = store_.ScanPartition(1, true, "", 2, UINT64_MAX);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(KeysOf(*first), (std::vector<std::string>{"a1", "a2"}));
  EXPECT_EQ(first->records[0].version, Write(1, 1, "va1"));
  EXPECT_EQ(first->last_key, "a2");
  EXPECT_FALSE(first->done);
  EXPECT_EQ(first->bytes, 2u + 3u + 2u + 3u);

  // after_key is exclusive; tombstones are records too.
  Result<Store::PartitionBatch> second = store_.ScanPartition(1, false, "a2", 2, UINT64_MAX);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(KeysOf(*second), (std::vector<std::string>{"a3", "a\xff"}));
  EXPECT_TRUE(second->records[0].version.tombstone);
  EXPECT_FALSE(second->done);

  // The last batch ends exactly at the partition's end: done, and nothing
  // of partition 2 ("b1") is read.
  Result<Store::PartitionBatch> last =
      store_.ScanPartition(1, false, second->last_key, 2, UINT64_MAX);
  ASSERT_TRUE(last.ok()) << last.status();
  EXPECT_EQ(KeysOf(*last), (std::vector<std::string>{"e", "i9"}));
  EXPECT_TRUE(last->done);

  // A key that is not stored starts the scan after where it would be;
  // from_start ignores after_key.
  EXPECT_EQ(KeysOf(*store_.ScanPartition(1, false, "a25", 1, UINT64_MAX)),
            std::vector<std::string>{"a3"});
  EXPECT_EQ(KeysOf(*store_.ScanPartition(1, true, "e", 1, UINT64_MAX)),
            std::vector<std::string>{"a1"});
  Result<Store::PartitionBatch> past_end = store_.ScanPartition(1, false, "i9", 5, UINT64_MAX);
  EXPECT_TRUE(past_end->records.empty());
  EXPECT_TRUE(past_end->done);
  Result<Store::PartitionBatch> empty = store_.ScanPartition(3, true, "", 5, UINT64_MAX);
  EXPECT_TRUE(empty->records.empty());
  EXPECT_TRUE(empty->done);
}

TEST_F(StoreTest, ScanPartitionStopsAtTheByteBoundButReturnsAtLeastOneRecord) {
  for (const char* key : {"a1", "a2", "a3"}) {
    ASSERT_TRUE(MustApply(key, Write(1, 1, std::string(10, 'x'))));  // 12 bytes each
  }
  for (uint64_t max_bytes : {0u, 1u, 12u}) {
    Result<Store::PartitionBatch> one = store_.ScanPartition(1, true, "", 10, max_bytes);
    ASSERT_TRUE(one.ok()) << one.status();
    EXPECT_EQ(KeysOf(*one), std::vector<std::string>{"a1"}) << max_bytes;
    EXPECT_EQ(one->bytes, 12u);
    EXPECT_FALSE(one->done);
  }
  Result<Store::PartitionBatch> two = store_.ScanPartition(1, true, "", 10, 13);
  EXPECT_EQ(KeysOf(*two), (std::vector<std::string>{"a1", "a2"}));
  EXPECT_EQ(two->bytes, 24u);
  EXPECT_FALSE(two->done);
  Result<Store::PartitionBatch> all = store_.ScanPartition(1, true, "", 10, 25);
  EXPECT_EQ(KeysOf(*all), (std::vector<std::string>{"a1", "a2", "a3"}));
  EXPECT_TRUE(all->done);
}

TEST_F(StoreTest, ScanPartitionSkipsAndListsDamagedRecords) {
  for (const char* key : {"a1", "a2", "a3", "a4"}) {
    ASSERT_TRUE(MustApply(key, Write(1, 1, "value")));
  }
  std::string& second = StoredValueOf("a2");
  second[second.size() / 2] ^= 0x10;
  std::string& last = StoredValueOf("a4");
  last[last.size() / 2] ^= 0x10;

  Result<Store::PartitionBatch> whole = store_.ScanPartition(1, true, "", 10, UINT64_MAX);
  ASSERT_TRUE(whole.ok()) << whole.status();
  EXPECT_EQ(KeysOf(*whole), (std::vector<std::string>{"a1", "a3"}));
  EXPECT_EQ(whole->damaged, (std::vector<std::string>{"a2", "a4"}));
  EXPECT_EQ(whole->last_key, "a4");  // a damaged key still moves the scan on
  EXPECT_TRUE(whole->done);

  // A damaged record does not count against max_records.
  Result<Store::PartitionBatch> after_a1 = store_.ScanPartition(1, false, "a1", 1, UINT64_MAX);
  EXPECT_EQ(KeysOf(*after_a1), std::vector<std::string>{"a3"});
  EXPECT_EQ(after_a1->damaged, std::vector<std::string>{"a2"});
  EXPECT_FALSE(after_a1->done);
  Result<Store::PartitionBatch> tail = store_.ScanPartition(1, false, "a3", 1, UINT64_MAX);
  EXPECT_TRUE(tail->records.empty());
  EXPECT_EQ(tail->damaged, std::vector<std::string>{"a4"});
  EXPECT_EQ(tail->last_key, "a4");
  EXPECT_TRUE(tail->done);
}

TEST_F(StoreTest, RemoveKeysRemovesValidAndDamagedRecordsWithoutTombstones) {
  for (const char* key : {"a1", "a2", "b1"}) ASSERT_TRUE(MustApply(key, Write(1, 1, "value")));
  std::string& damaged = StoredValueOf("a2");
  damaged[damaged.size() / 2] ^= 0x10;
  const size_t records_before = disk_.table().size();
  const std::vector<std::string> keys = {"a1", "a2", "absent"};
  ASSERT_TRUE(store_.RemoveKeys(keys).ok());
  EXPECT_TRUE(store_.Get("a1").status().IsNotFound());
  EXPECT_TRUE(store_.Get("a2").status().IsNotFound());
  EXPECT_EQ(*store_.GetLive("b1"), "value");
  EXPECT_EQ(disk_.table().size(), records_before - 2);  // gone, no tombstones
  EXPECT_TRUE(store_.ScanPartition(1, true, "", 10, UINT64_MAX)->done);
  EXPECT_TRUE(store_.ScanPartition(1, true, "", 10, UINT64_MAX)->records.empty());
  EXPECT_TRUE(store_.RemoveKeys({}).ok());
}

TEST_F(StoreTest, RemoveKeysWithAnInvalidKeyRemovesNothing) {
  ASSERT_TRUE(MustApply("a1", Write(1, 1, "value")));
  const std::vector<std::string> keys = {"a1", ""};
  EXPECT_TRUE(store_.RemoveKeys(keys).IsInvalidArgument());
  EXPECT_EQ(*store_.GetLive("a1"), "value");
}

// ---- Properties ----

// Versions over few keys, stamps, origins and values, so collisions happen.
rc::Gen<Record> GenRecord() {
  return rc::gen::apply(
      [](int key, uint64_t ms, uint32_t logical, NodeId origin, bool tombstone,
         int value) {
        Version version;
        version.timestamp = Timestamp{ms, logical};
        version.origin = origin;
        version.tombstone = tombstone;
        if (!tombstone) version.value = "v" + std::to_string(value);
        return Record{"key" + std::to_string(key), std::move(version)};
      },
      rc::gen::inRange(0, 4), rc::gen::inRange<uint64_t>(1, 6),
      rc::gen::inRange<uint32_t>(0, 3), rc::gen::inRange<NodeId>(1, 4),
      rc::gen::arbitrary<bool>(), rc::gen::inRange(0, 3));
}

std::map<std::string, Version> Contents(Store& store) {
  std::map<std::string, Version> contents;
  for (uint32_t partition = 0; partition < 4; ++partition) {
    const Status status = store.ForEachInPartition(
        partition, [&](std::string_view key, const Version& version) {
          contents.emplace(std::string(key), version);
          return true;
        });
    RC_ASSERT(status.ok());
  }
  return contents;
}

RC_GTEST_PROP(StoreProperty, AnyOrderWithRepeatsGivesTheSameWinners, ()) {
  const auto records = *rc::gen::nonEmpty(rc::gen::container<std::vector<Record>>(GenRecord()));
  // The expected winner of each key: the maximum under CompareVersions.
  std::map<std::string, Version> expected;
  for (const Record& record : records) {
    auto [it, inserted] = expected.emplace(record.key, record.version);
    if (!inserted && Supersedes(record.version, it->second)) it->second = record.version;
  }
  for (int replica = 0; replica < 3; ++replica) {
    // Each replica receives every record at least once, in its own order,
    // some of them several times, some through batches.
    std::vector<Record> delivery = records;
    const auto repeats = *rc::gen::container<std::vector<Record>>(rc::gen::elementOf(records));
    delivery.insert(delivery.end(), repeats.begin(), repeats.end());
    std::vector<Record> order = delivery;
    for (size_t i = order.size(); i > 1; --i) {  // Fisher-Yates
      std::swap(order[i - 1], order[*rc::gen::inRange<size_t>(0, i)]);
    }
    MapDisk disk;
    Store store(&disk, FirstBytePartition, StoreOptions{});
    size_t next = 0;
    while (next < order.size()) {
      const size_t batch = *rc::gen::inRange<size_t>(1, 4);
      const size_t end = std::min(order.size(), next + batch);
      const std::span<const Record> slice(order.data() + next, end - next);
      if (slice.size() == 1) {
        RC_ASSERT(store.Apply(slice[0].key, slice[0].version).ok());
      } else {
        RC_ASSERT(store.ApplyBatch(slice).ok());
      }
      next = end;
    }
    RC_ASSERT(Contents(store) == expected);
  }
}

RC_GTEST_PROP(StoreProperty, ApplyReportsChangeExactlyWhenItWins, ()) {
  const auto records = *rc::gen::container<std::vector<Record>>(GenRecord());
  MapDisk disk;
  Store store(&disk, FirstBytePartition, StoreOptions{});
  std::map<std::string, Version> model;
  for (const Record& record : records) {
    auto it = model.find(record.key);
    const bool wins = it == model.end() || Supersedes(record.version, it->second);
    const Result<bool> changed = store.Apply(record.key, record.version);
    RC_ASSERT(changed.ok());
    RC_ASSERT(*changed == wins);
    if (wins) model[record.key] = record.version;
  }
}

// Reopening the store, losing or damaging its stamp ceiling, and rebuilding
// it never let a version win that should not, whatever the order.
RC_GTEST_PROP(StoreProperty, CeilingLossAndReopenNeverChangeWhoWins, ()) {
  const auto stamps_ms = rc::gen::inRange<uint64_t>(1, 4000);
  const auto records = *rc::gen::container<std::vector<Record>>(rc::gen::apply(
      [](Record record, uint64_t ms) {
        record.version.timestamp.physical_ms = ms;
        return record;
      },
      GenRecord(), stamps_ms));
  MapDisk disk;
  auto store = std::make_unique<Store>(&disk, FirstBytePartition, StoreOptions{});
  std::map<std::string, Version> model;
  for (const Record& record : records) {
    switch (*rc::gen::inRange(0, 12)) {
      case 0:
        store = std::make_unique<Store>(&disk, FirstBytePartition, StoreOptions{});
        break;
      case 1:
        disk.table().erase(std::string(kCeilingKey));
        store = std::make_unique<Store>(&disk, FirstBytePartition, StoreOptions{});
        break;
      case 2:
        if (auto it = disk.table().find(kCeilingKey); it != disk.table().end()) {
          it->second[*rc::gen::inRange<size_t>(0, it->second.size())] ^= 0x04;
        }
        store = std::make_unique<Store>(&disk, FirstBytePartition, StoreOptions{});
        break;
      case 3:
        RC_ASSERT(store->CollectGarbage(0).ok());
        break;
      default:
        break;
    }
    auto it = model.find(record.key);
    const bool wins = it == model.end() || Supersedes(record.version, it->second);
    const Result<bool> changed = store->Apply(record.key, record.version);
    RC_ASSERT(changed.ok());
    RC_ASSERT(*changed == wins);
    if (wins) model[record.key] = record.version;
  }
  RC_ASSERT(Contents(*store) == model);
}

RC_GTEST_PROP(StoreProperty, TombstoneBeatsOlderWritesAndLosesToNewer,
              (uint32_t tombstone_ms_seed, uint32_t write_ms_seed,
               bool tombstone_first)) {
  const uint64_t tombstone_ms = 1 + tombstone_ms_seed % 100;
  const uint64_t write_ms = 1 + write_ms_seed % 100;
  RC_PRE(tombstone_ms != write_ms);
  MapDisk disk;
  Store store(&disk, FirstBytePartition, StoreOptions{});
  const Version tombstone = Tombstone(tombstone_ms, 1);
  const Version write = Write(write_ms, 2, "value");
  if (tombstone_first) {
    RC_ASSERT(store.Apply("k", tombstone).ok());
    RC_ASSERT(store.Apply("k", write).ok());
  } else {
    RC_ASSERT(store.Apply("k", write).ok());
    RC_ASSERT(store.Apply("k", tombstone).ok());
  }
  const Result<std::string> live = store.GetLive("k");
  if (tombstone_ms > write_ms) {
    RC_ASSERT(live.status().IsNotFound());
    RC_ASSERT(*store.Get("k") == tombstone);
  } else {
    RC_ASSERT(live.ok());
    RC_ASSERT(*live == "value");
  }
}

RC_GTEST_PROP(StoreProperty, GarbageCollectionNeverDropsAYoungTombstone, ()) {
  const uint64_t grace_ms = *rc::gen::inRange<uint64_t>(0, 1000);
  const uint64_t now_ms = *rc::gen::inRange<uint64_t>(0, 3000);
  const auto stamps = *rc::gen::container<std::vector<uint64_t>>(
      rc::gen::inRange<uint64_t>(1, 4000));
  StoreOptions options;
  options.tombstone_grace_ms = grace_ms;
  MapDisk disk;
  Store store(&disk, FirstBytePartition, options);
  for (size_t i = 0; i < stamps.size(); ++i) {
    const std::string key = "k" + std::to_string(i);
    const bool live = i % 3 == 0;
    RC_ASSERT(store.Apply(key, live ? Write(stamps[i], 1, "v") : Tombstone(stamps[i], 1)).ok());
  }
  RC_ASSERT(store.CollectGarbage(now_ms).ok());
  for (size_t i = 0; i < stamps.size(); ++i) {
    const std::string key = "k" + std::to_string(i);
    const Result<Version> version = store.Get(key);
    const bool live = i % 3 == 0;
    const bool old = now_ms > stamps[i] && now_ms - stamps[i] > grace_ms;
    if (live || !old) {
      RC_ASSERT(version.ok());  // kept: live, or a tombstone within the grace
      RC_ASSERT(version->tombstone == !live);
    } else {
      RC_ASSERT(version.status().IsNotFound());  // dropped once past it
    }
  }
}

RC_GTEST_PROP(StoreProperty, ArbitraryBytesRoundTripOrAreRefused,
              (const std::string& key, const std::string& value)) {
  StoreOptions options;
  options.max_key_bytes = 16;
  options.max_value_bytes = 64;
  MapDisk disk;
  Store store(&disk, FirstBytePartition, options);
  const Result<bool> applied = store.Apply(key, Write(7, 3, value));
  const bool acceptable = !key.empty() && key.size() <= 16 && value.size() <= 64;
  RC_ASSERT(applied.ok() == acceptable);
  if (!acceptable) {
    RC_ASSERT(applied.status().code() == StatusCode::kInvalidArgument);
    RC_ASSERT(disk.table().empty());
    return;
  }
  RC_ASSERT(*store.GetLive(key) == value);
  int visited = 0;
  RC_ASSERT(store
                .ForEachInPartition(FirstBytePartition(key),
                                    [&](std::string_view seen, const Version& version) {
                                      ++visited;
                                      RC_ASSERT(seen == key);
                                      RC_ASSERT(version.value == value);
                                      return true;
                                    })
                .ok());
  RC_ASSERT(visited == 1);
}

// Whatever bytes sit on the disk, decoding either reports Corruption or
// yields a version that encodes back to exactly those bytes.
RC_GTEST_PROP(StoreProperty, DecodingArbitraryBytesNeverMisreads,
              (const std::string& disk_value)) {
  const Result<Version> decoded = DecodeRecordValue("vkey", "key", disk_value);
  if (decoded.ok()) {
    RC_ASSERT(EncodeRecordValue("vkey", *decoded) == disk_value);
  } else {
    RC_ASSERT(decoded.status().IsCorruption());
  }
}

RC_GTEST_PROP(StoreProperty, EveryEncodedRecordDecodesAndEveryBitFlipIsCaught,
              (const std::string& value, uint64_t physical_ms, uint32_t logical,
               uint32_t origin_seed, bool tombstone, size_t bit_seed)) {
  const NodeId origin = origin_seed == kNoNode ? 1 : origin_seed;
  const Timestamp timestamp{physical_ms, physical_ms == 0 && logical == 0 ? 1 : logical};
  const Version version = tombstone ? Version::Tombstone(timestamp, origin)
                                    : Version::Write(timestamp, origin, value);
  std::string encoded = EncodeRecordValue("vkey", version);
  RC_ASSERT(*DecodeRecordValue("vkey", "key", encoded) == version);
  const size_t bit = bit_seed % (encoded.size() * 8);
  encoded[bit / 8] = static_cast<char>(encoded[bit / 8] ^ (1 << (bit % 8)));
  RC_ASSERT(DecodeRecordValue("vkey", "key", encoded).status().IsCorruption());
}

}  // namespace
}  // namespace mks
