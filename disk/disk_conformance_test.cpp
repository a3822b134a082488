// One contract, two engines: every test here runs against SimDisk and
// LevelDbDisk, so the simulator's disk cannot drift from production's.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "core/env.h"
#include "core/random.h"
#include "disk/leveldb_disk.h"
#include "disk/test_directory.h"
#include "sim/sim_disk.h"

namespace mks::disk {
namespace {

struct SimDiskEngine {
  SimDiskEngine() : disk(std::make_unique<sim::SimDisk>(Random(1))) {}
  std::unique_ptr<Disk> disk;
};

struct LevelDbEngine {
  LevelDbEngine() {
    // A small memtable so the larger tests also read from table files.
    LevelDbOptions options;
    options.write_buffer_bytes = 64 * 1024;
    Result<std::unique_ptr<LevelDbDisk>> opened =
        LevelDbDisk::Open(directory.Child("db"), options);
    MKS_ASSERT_MSG(opened.ok(), opened.status().ToString());
    disk = std::move(opened).value();
  }
  TestDirectory directory;  // declared first: outlives the database
  std::unique_ptr<Disk> disk;
};

template <typename Engine>
class DiskConformanceTest : public ::testing::Test {
 protected:
  Disk& disk() { return *engine_.disk; }

  std::string Read(std::string_view key) {
    std::string value;
    const Status status = disk().Get(key, &value);
    if (status.IsNotFound()) return "<none>";
    EXPECT_TRUE(status.ok()) << status;
    return value;
  }

  std::vector<std::string> AllKeys() {
    std::vector<std::string> keys;
    std::unique_ptr<DiskIterator> it = disk().NewIterator();
    for (it->SeekToFirst(); it->Valid(); it->Next()) keys.emplace_back(it->key());
    EXPECT_TRUE(it->status().ok()) << it->status();
    return keys;
  }

  Engine engine_;
};

using Engines = ::testing::Types<SimDiskEngine, LevelDbEngine>;

class EngineNames {
 public:
  template <typename T>
  static std::string GetName(int) {
    return std::is_same_v<T, SimDiskEngine> ? "SimDisk" : "LevelDb";
  }
};

TYPED_TEST_SUITE(DiskConformanceTest, Engines, EngineNames);

TYPED_TEST(DiskConformanceTest, PutGetOverwriteDelete) {
  Disk& disk = this->disk();
  ASSERT_TRUE(disk.Put("key", "one", {}).ok());
  EXPECT_EQ(this->Read("key"), "one");
  ASSERT_TRUE(disk.Put("key", "two", {}).ok());
  EXPECT_EQ(this->Read("key"), "two");
  ASSERT_TRUE(disk.Delete("key", {}).ok());
  EXPECT_EQ(this->Read("key"), "<none>");
  EXPECT_TRUE(disk.Delete("never written", {}).ok());
}

TYPED_TEST(DiskConformanceTest, GetOfAnAbsentKeyIsNotFoundAndLeavesTheValue) {
  std::string value = "untouched";
  const Status status = this->disk().Get("absent", &value);
  EXPECT_TRUE(status.IsNotFound()) << status;
  EXPECT_EQ(value, "untouched");
}

TYPED_TEST(DiskConformanceTest, EmptyAndLargeValues) {
  Disk& disk = this->disk();
  ASSERT_TRUE(disk.Put("empty", "", {}).ok());
  std::string value = "x";
  ASSERT_TRUE(disk.Get("empty", &value).ok());
  EXPECT_EQ(value, "");

  Random random(9);
  std::string large(4 * 1024 * 1024, '\0');
  for (char& byte : large) byte = static_cast<char>(random.Uniform(256));
  ASSERT_TRUE(disk.Put("large", large, WriteOptions{.sync = true}).ok());
  EXPECT_EQ(this->Read("large"), large);
  EXPECT_EQ(this->Read("empty"), "");
}

TYPED_TEST(DiskConformanceTest, EveryByteValueInKeysAndValues) {
  Disk& disk = this->disk();
  std::string every_byte;
  for (int byte = 0; byte < 256; ++byte) every_byte.push_back(static_cast<char>(byte));
  ASSERT_TRUE(disk.Put(every_byte, every_byte + every_byte, {}).ok());
  ASSERT_TRUE(disk.Put(std::string("\0", 1), "nul", {}).ok());
  EXPECT_EQ(this->Read(every_byte), every_byte + every_byte);
  EXPECT_EQ(this->Read(std::string("\0", 1)), "nul");
  EXPECT_EQ(this->Read(std::string("\0\0", 2)), "<none>");
}

TYPED_TEST(DiskConformanceTest, IteratesInBytewiseOrderWithBinaryKeys) {
  const std::vector<std::string> keys = {
      std::string("\0", 1), std::string("\0\0", 2), std::string("\0\xff", 2),
      "\x01", "A", "a", std::string("a\0", 2), "ab", "a\x7f", "a\x80",
      "a\xff", "\x7f", "\x80", "\xfe", "\xff", "\xff\xff", "\xff\xff\xff"};
  std::vector<std::string> shuffled = keys;
  Random random(4);
  for (size_t i = shuffled.size(); i > 1; --i) {
    std::swap(shuffled[i - 1], shuffled[random.Uniform(i)]);
  }
  for (const std::string& key : shuffled) {
    ASSERT_TRUE(this->disk().Put(key, "value of " + key, {}).ok());
  }
  std::vector<std::string> expected = keys;
  std::sort(expected.begin(), expected.end());  // std::string: unsigned bytes
  EXPECT_EQ(this->AllKeys(), expected);
  EXPECT_EQ(expected, keys);  // the list above is written in that order

  std::unique_ptr<DiskIterator> it = this->disk().NewIterator();
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    EXPECT_EQ(it->value(), "value of " + std::string(it->key()));
  }
  EXPECT_TRUE(it->status().ok());
}

TYPED_TEST(DiskConformanceTest, SeekFindsTheFirstKeyAtOrAfterTheTarget) {
  for (const char* key : {"b", "d", "f"}) {
    ASSERT_TRUE(this->disk().Put(key, key, {}).ok());
  }
  std::unique_ptr<DiskIterator> it = this->disk().NewIterator();
  it->Seek("d");
  ASSERT_TRUE(it->Valid());
  EXPECT_EQ(it->key(), "d");
  it->Seek("c\xff");
  ASSERT_TRUE(it->Valid());
  EXPECT_EQ(it->key(), "d");
  it->Seek("");
  ASSERT_TRUE(it->Valid());
  EXPECT_EQ(it->key(), "b");
  it->Seek("f\0");
  ASSERT_TRUE(it->Valid());  // "f\0" as a C string is "f"
  EXPECT_EQ(it->key(), "f");
  it->Seek(std::string("f\0", 2));
  EXPECT_FALSE(it->Valid());
  EXPECT_TRUE(it->status().ok());
  it->Seek("a");
  ASSERT_TRUE(it->Valid());
  it->Next();
  it->Next();
  it->Next();
  EXPECT_FALSE(it->Valid());
  EXPECT_TRUE(it->status().ok());
}

TYPED_TEST(DiskConformanceTest, EmptyDiskIteratesNothing) {
  std::unique_ptr<DiskIterator> it = this->disk().NewIterator();
  ASSERT_NE(it, nullptr);
  EXPECT_FALSE(it->Valid());  // positioned nowhere before a seek
  it->SeekToFirst();
  EXPECT_FALSE(it->Valid());
  it->Seek("x");
  EXPECT_FALSE(it->Valid());
  EXPECT_TRUE(it->status().ok());
}

TYPED_TEST(DiskConformanceTest, BatchAppliesAllOperationsInOrder) {
  ASSERT_TRUE(this->disk().Put("gone", "old", {}).ok());
  WriteBatch batch;
  batch.Put("a", "1");
  batch.Put("b", "1");
  batch.Delete("a");
  batch.Put("b", "2");
  batch.Delete("gone");
  batch.Put("c", "");
  batch.Delete("c");
  batch.Put("c", "3");
  ASSERT_TRUE(this->disk().Write(batch, WriteOptions{.sync = true}).ok());
  EXPECT_EQ(this->Read("a"), "<none>");
  EXPECT_EQ(this->Read("b"), "2");
  EXPECT_EQ(this->Read("c"), "3");
  EXPECT_EQ(this->Read("gone"), "<none>");
  EXPECT_EQ(this->AllKeys(), (std::vector<std::string>{"b", "c"}));
  EXPECT_TRUE(this->disk().Write(WriteBatch{}, {}).ok());
  EXPECT_TRUE(this->disk().Sync().ok());
}

// An iterator sees every write made before it was created; writes made while
// it runs may or may not show, but the order stays strict and nothing made
// before it goes missing unless deleted meanwhile.
TYPED_TEST(DiskConformanceTest, IterationWhileWriting) {
  std::set<std::string> before;
  for (int i = 0; i < 200; i += 2) {
    char key[16];
    std::snprintf(key, sizeof key, "k%03d", i);
    ASSERT_TRUE(this->disk().Put(key, "v", {}).ok());
    before.insert(key);
  }
  std::set<std::string> written_during;
  std::set<std::string> deleted_during;
  std::vector<std::string> seen;
  std::unique_ptr<DiskIterator> it = this->disk().NewIterator();
  int step = 0;
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    seen.emplace_back(it->key());
    ++step;
    char key[16];
    std::snprintf(key, sizeof key, "k%03d", (step * 37) % 200 | 1);  // odd: new
    ASSERT_TRUE(this->disk().Put(key, "new", {}).ok());
    written_during.insert(key);
    std::snprintf(key, sizeof key, "k%03d", (step * 58) % 200 & ~1);  // even
    if (!std::count(seen.begin(), seen.end(), key)) {
      ASSERT_TRUE(this->disk().Delete(key, {}).ok());
      deleted_during.insert(key);
    }
  }
  ASSERT_TRUE(it->status().ok()) << it->status();
  EXPECT_TRUE(std::is_sorted(seen.begin(), seen.end()));
  EXPECT_EQ(std::adjacent_find(seen.begin(), seen.end()), seen.end());
  for (const std::string& key : seen) {
    EXPECT_TRUE(before.contains(key) || written_during.contains(key)) << key;
  }
  for (const std::string& key : before) {
    if (deleted_during.contains(key)) continue;
    EXPECT_TRUE(std::count(seen.begin(), seen.end(), key)) << "missed " << key;
  }
  EXPECT_FALSE(written_during.empty());
  EXPECT_FALSE(deleted_during.empty());
}

// A random mix of puts, deletes and batches over a small binary key space
// ends in exactly the state of an ordered map given the same operations.
TYPED_TEST(DiskConformanceTest, MatchesAnOrderedMapModel) {
  Random random(17);
  std::map<std::string, std::string> model;
  const auto random_key = [&] {
    std::string key(1 + random.Uniform(3), '\0');
    for (char& byte : key) byte = static_cast<char>("\x00\x01\x7f\x80\xff"[random.Uniform(5)]);
    return key;
  };
  for (int round = 0; round < 2000; ++round) {
    const uint64_t choice = random.Uniform(10);
    if (choice < 5) {
      const std::string key = random_key();
      const std::string value(random.Uniform(300), static_cast<char>(round));
      ASSERT_TRUE(this->disk().Put(key, value, {}).ok());
      model[key] = value;
    } else if (choice < 8) {
      const std::string key = random_key();
      ASSERT_TRUE(this->disk().Delete(key, {}).ok());
      model.erase(key);
    } else {
      WriteBatch batch;
      for (uint64_t i = random.Uniform(6); i > 0; --i) {
        const std::string key = random_key();
        if (random.Uniform(2) == 0) {
          batch.Put(key, std::to_string(round));
          model[key] = std::to_string(round);
        } else {
          batch.Delete(key);
          model.erase(key);
        }
      }
      ASSERT_TRUE(this->disk().Write(batch, WriteOptions{.sync = round % 50 == 0}).ok());
    }
  }
  std::map<std::string, std::string> actual;
  std::unique_ptr<DiskIterator> it = this->disk().NewIterator();
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    actual.emplace(std::string(it->key()), std::string(it->value()));
  }
  ASSERT_TRUE(it->status().ok());
  EXPECT_EQ(actual, model);
  for (const auto& [key, value] : model) EXPECT_EQ(this->Read(key), value);
}

}  // namespace
}  // namespace mks::disk
