// LevelDbDisk beyond the shared contract: recovery on reopen, errors as
// Status, damaged files, and durability of synced writes when the writing
// process is killed.
#include "disk/leveldb_disk.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>
#include <vector>

#include "core/store.h"
#include "disk/test_directory.h"

namespace mks::disk {
namespace {

std::unique_ptr<LevelDbDisk> MustOpen(const std::string& directory,
                                      LevelDbOptions options = {}) {
  Result<std::unique_ptr<LevelDbDisk>> opened = LevelDbDisk::Open(directory, options);
  EXPECT_TRUE(opened.ok()) << opened.status();
  if (!opened.ok()) return nullptr;
  return std::move(opened).value();
}

TEST(LevelDbDiskTest, ReopenRecoversWrites) {
  TestDirectory directory;
  const std::string path = directory.Child("db");
  {
    auto disk = MustOpen(path);
    ASSERT_NE(disk, nullptr);
    ASSERT_TRUE(disk->Put("synced", "1", WriteOptions{.sync = true}).ok());
    ASSERT_TRUE(disk->Put("unsynced", "2", {}).ok());  // survives a clean close
    ASSERT_TRUE(disk->Delete("synced", {}).ok());
    ASSERT_TRUE(disk->Put(std::string("\0\xff", 2), "3", {}).ok());
    ASSERT_TRUE(disk->Sync().ok());
  }
  auto disk = MustOpen(path);
  ASSERT_NE(disk, nullptr);
  std::string value;
  EXPECT_TRUE(disk->Get("synced", &value).IsNotFound());
  ASSERT_TRUE(disk->Get("unsynced", &value).ok());
  EXPECT_EQ(value, "2");
  ASSERT_TRUE(disk->Get(std::string("\0\xff", 2), &value).ok());
  EXPECT_EQ(value, "3");
}

// A stand-in for the node's loop: tasks posted from the writer thread wait
// here until the test thread runs them.
class PostedTasks {
 public:
  LoopPoster Poster() {
    return [this](runtime::UniqueFunction<void()> task) {
      const std::lock_guard<std::mutex> lock(mutex_);
      tasks_.push_back(std::move(task));
      arrived_.notify_one();
    };
  }
  // Runs posted tasks on this thread until `count` have run in all.
  void RunUntil(size_t count) {
    while (ran_ < count) {
      std::vector<runtime::UniqueFunction<void()>> batch;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        arrived_.wait(lock, [this] { return !tasks_.empty(); });
        batch.swap(tasks_);
      }
      for (auto& task : batch) task();
      ran_ += batch.size();
    }
  }
  size_t queued() {
    const std::lock_guard<std::mutex> lock(mutex_);
    return tasks_.size();
  }

 private:
  std::mutex mutex_;
  std::condition_variable arrived_;
  std::vector<runtime::UniqueFunction<void()>> tasks_;
  size_t ran_ = 0;
};

TEST(LevelDbDiskTest, WriterThreadReportsEachWriteThroughThePosterInOrder) {
  TestDirectory directory;
  auto disk = MustOpen(directory.Child("db"));
  ASSERT_NE(disk, nullptr);
  PostedTasks loop;
  ASSERT_TRUE(disk->StartWriter(loop.Poster()).ok());
  constexpr int kWrites = 50;
  std::vector<int> completed;
  for (int i = 0; i < kWrites; ++i) {
    WriteBatch batch;
    batch.Put("k" + std::to_string(i), std::to_string(i));
    batch.Put("last", std::to_string(i));
    disk->WriteAsync(std::move(batch), WriteOptions{.sync = true},
                     [&completed, i](Status status) {
                       EXPECT_TRUE(status.ok()) << status;
                       completed.push_back(i);
                     });
  }
  EXPECT_TRUE(completed.empty());  // never reported from inside WriteAsync
  loop.RunUntil(kWrites);
  ASSERT_EQ(completed.size(), static_cast<size_t>(kWrites));
  for (int i = 0; i < kWrites; ++i) EXPECT_EQ(completed[static_cast<size_t>(i)], i);
  std::string value;
  ASSERT_TRUE(disk->Get("last", &value).ok());
  EXPECT_EQ(value, std::to_string(kWrites - 1));
}

TEST(LevelDbDiskTest, ClosingFinishesTheWritesSubmittedToTheWriter) {
  TestDirectory directory;
  const std::string path = directory.Child("db");
  PostedTasks loop;
  {
    auto disk = MustOpen(path);
    ASSERT_NE(disk, nullptr);
    ASSERT_TRUE(disk->StartWriter(loop.Poster()).ok());
    for (int i = 0; i < 20; ++i) {
      WriteBatch batch;
      batch.Put("k" + std::to_string(i), "v");
      disk->WriteAsync(std::move(batch), WriteOptions{.sync = true}, [](Status) {});
    }
  }
  EXPECT_EQ(loop.queued(), 20u);  // every outcome was posted before the close
  auto disk = MustOpen(path);
  ASSERT_NE(disk, nullptr);
  std::string value;
  for (int i = 0; i < 20; ++i) EXPECT_TRUE(disk->Get("k" + std::to_string(i), &value).ok());
}

TEST(LevelDbDiskTest, OpenErrorsAreStatuses) {
  TestDirectory directory;
  // A regular file where the database directory should be.
  const std::string file = directory.Child("file");
  std::ofstream(file) << "not a database";
  const auto on_file = LevelDbDisk::Open(file);
  ASSERT_FALSE(on_file.ok());
  EXPECT_EQ(on_file.status().code(), StatusCode::kIOError) << on_file.status();

  // A missing database without create_if_missing.
  const auto missing =
      LevelDbDisk::Open(directory.Child("missing"), LevelDbOptions{.create_if_missing = false});
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kInvalidArgument) << missing.status();

  // A database another handle holds locked.
  auto first = MustOpen(directory.Child("db"));
  ASSERT_NE(first, nullptr);
  const auto second = LevelDbDisk::Open(directory.Child("db"));
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), StatusCode::kIOError) << second.status();

  EXPECT_EQ(LevelDbDisk::Open("").status().code(), StatusCode::kInvalidArgument);
}

// Damaged table files are reported as Corruption (or fail the open), and a
// damaged value is never returned as data.
TEST(LevelDbDiskTest, DamagedTableFilesAreReportedNotServed) {
  TestDirectory directory;
  const std::string path = directory.Child("db");
  const std::string value(200, 'v');
  {
    auto disk = MustOpen(path, LevelDbOptions{.write_buffer_bytes = 64 * 1024});
    ASSERT_NE(disk, nullptr);
    for (int i = 0; i < 2000; ++i) {
      ASSERT_TRUE(disk->Put("key" + std::to_string(i), value, {}).ok());
    }
  }
  int tables = 0;
  for (const auto& entry : std::filesystem::directory_iterator(path)) {
    if (entry.path().extension() != ".ldb") continue;
    ++tables;
    std::fstream file(entry.path(), std::ios::in | std::ios::out | std::ios::binary);
    for (std::streamoff offset = 100; offset < 4000; offset += 300) {
      file.seekp(offset);
      file.put('\x5a');
    }
  }
  ASSERT_GT(tables, 0);
  auto opened = LevelDbDisk::Open(path, LevelDbOptions{.block_cache_bytes = 1024});
  if (!opened.ok()) {
    EXPECT_EQ(opened.status().code(), StatusCode::kCorruption) << opened.status();
    return;
  }
  std::unique_ptr<LevelDbDisk> disk = std::move(opened).value();
  int corrupt_reads = 0;
  for (int i = 0; i < 2000; ++i) {
    std::string read;
    const Status status = disk->Get("key" + std::to_string(i), &read);
    if (status.ok()) {
      EXPECT_EQ(read, value);
    } else {
      EXPECT_TRUE(status.IsCorruption() || status.IsNotFound()) << status;
      if (status.IsCorruption()) ++corrupt_reads;
    }
  }
  EXPECT_GT(corrupt_reads, 0);
  std::unique_ptr<DiskIterator> it = disk->NewIterator();
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    EXPECT_EQ(it->value(), value);
  }
  EXPECT_TRUE(it->status().IsCorruption()) << it->status();
}

uint32_t HashPartition(std::string_view key) {
  return static_cast<uint32_t>(StableHash64(key) % 16);
}

std::string KeyOf(uint32_t index) { return "key" + std::to_string(index); }
std::string ValueOf(uint32_t index) {
  return "value " + std::to_string(index) + std::string(index % 300, 'x');
}

// How the child writes: synchronously on its own thread, or through the
// disk's writer thread as mks-node does (PrepareBatch, WriteAsync, and the
// outcome back through a poster, then FinishBatch).
enum class WritePath { kDirect, kWriterThread };

// Applies `records` with sync along `path`; returns the outcome.
Status ApplySynced(Store& store, LevelDbDisk& disk, PostedTasks& loop, size_t* posted,
                   const std::vector<Record>& records, WritePath path) {
  if (path == WritePath::kDirect) {
    if (records.size() == 1) {
      return store.Apply(records[0].key, records[0].version, WriteOptions{.sync = true})
          .status();
    }
    return store.ApplyBatch(records, WriteOptions{.sync = true}).status();
  }
  Result<Store::PreparedBatch> prepared = store.PrepareBatch(records);
  MKS_RETURN_IF_ERROR(prepared.status());
  Status outcome = Status::Internal("no outcome");
  disk.WriteAsync(std::move(prepared->batch), WriteOptions{.sync = true},
                  [&outcome](Status status) { outcome = std::move(status); });
  loop.RunUntil(++*posted);
  store.FinishBatch(*prepared, outcome);
  return outcome;
}

// The child: applies versions through the store with sync, each fifth as a
// synced group commit of three, and after each success reports the highest
// index it wrote on `report_fd`. Never returns.
[[noreturn]] void WriteUntilKilled(const std::string& path, uint32_t first_index,
                                   int report_fd, WritePath write_path) {
  auto opened = LevelDbDisk::Open(path);
  if (!opened.ok()) _exit(2);
  LevelDbDisk& disk = **opened;
  PostedTasks loop;
  size_t posted = 0;
  if (write_path == WritePath::kWriterThread && !disk.StartWriter(loop.Poster()).ok()) {
    _exit(2);
  }
  Store store(&disk, HashPartition, StoreOptions{});
  for (uint32_t index = first_index;; ++index) {
    const Timestamp stamp{1000 + index, 0};
    std::vector<Record> records;
    if (index % 5 == 0) {
      for (uint32_t i = 0; i < 3; ++i) {
        records.push_back({KeyOf(index) + "/" + std::to_string(i),
                           Version::Write(stamp, 1, ValueOf(index))});
      }
    } else {
      records.push_back({KeyOf(index), Version::Write(stamp, 1, ValueOf(index))});
    }
    if (!ApplySynced(store, disk, loop, &posted, records, write_path).ok()) _exit(3);
    if (write(report_fd, &index, sizeof index) != sizeof index) _exit(4);
  }
}

// Forks a writer, reads `reports` acknowledgements, SIGKILLs it mid-stream.
// Returns the last acknowledged index.
uint32_t RunAndKillWriter(const std::string& path, uint32_t first_index,
                          int reports, WritePath write_path) {
  int pipe_fds[2];
  MKS_ASSERT_EQ(pipe(pipe_fds), 0);
  const pid_t child = fork();
  MKS_ASSERT_GE(child, 0);
  if (child == 0) {
    close(pipe_fds[0]);
    WriteUntilKilled(path, first_index, pipe_fds[1], write_path);
  }
  close(pipe_fds[1]);
  uint32_t last = 0;
  int received = 0;
  while (received < reports) {
    uint32_t index = 0;
    const ssize_t got = read(pipe_fds[0], &index, sizeof index);
    if (got != sizeof index) break;
    EXPECT_EQ(index, first_index + received);
    last = index;
    ++received;
  }
  kill(child, SIGKILL);
  int wait_status = 0;
  MKS_ASSERT_EQ(waitpid(child, &wait_status, 0), child);
  close(pipe_fds[0]);
  EXPECT_EQ(received, reports) << "writer exited early, status " << wait_status;
  EXPECT_TRUE(WIFSIGNALED(wait_status) && WTERMSIG(wait_status) == SIGKILL)
      << "status " << wait_status;
  return last;
}

// Checks that every index in [first, last] reads back whole.
void ExpectAcknowledged(Store& store, uint32_t first, uint32_t last) {
  for (uint32_t index = first; index <= last; ++index) {
    std::vector<std::string> keys;
    if (index % 5 == 0) {
      for (uint32_t i = 0; i < 3; ++i) keys.push_back(KeyOf(index) + "/" + std::to_string(i));
    } else {
      keys.push_back(KeyOf(index));
    }
    for (const std::string& key : keys) {
      const auto value = store.GetLive(key);
      ASSERT_TRUE(value.ok()) << "lost acknowledged " << key << ": " << value.status();
      EXPECT_EQ(*value, ValueOf(index));
    }
  }
}

// Kills a writer three times, each after 120 acknowledgements, and checks
// after each kill that every acknowledged write is there and the rest whole.
void ExpectSyncedWritesSurviveSigkill(WritePath write_path) {
  TestDirectory directory;
  const std::string path = directory.Child("db");
  std::vector<std::pair<uint32_t, uint32_t>> acknowledged;  // index ranges
  uint32_t next_index = 1;
  for (int round = 0; round < 3; ++round) {
    const uint32_t last = RunAndKillWriter(path, next_index, 120, write_path);
    if (::testing::Test::HasFailure()) return;
    acknowledged.emplace_back(next_index, last);
    auto disk = MustOpen(path);
    ASSERT_NE(disk, nullptr);
    Store store(disk.get(), HashPartition, StoreOptions{});
    // This round's writes and every earlier round's, after repeated kills.
    for (const auto& [first, end] : acknowledged) {
      ExpectAcknowledged(store, first, end);
    }
    // Writes after the last report may or may not be there, but whole: a
    // group commit of three keys is all there or all absent.
    for (uint32_t index = last + 1; index <= last + 5; ++index) {
      std::vector<std::string> keys;
      if (index % 5 == 0) {
        for (uint32_t i = 0; i < 3; ++i) keys.push_back(KeyOf(index) + "/" + std::to_string(i));
      } else {
        keys.push_back(KeyOf(index));
      }
      int present = 0;
      for (const std::string& key : keys) {
        const auto value = store.GetLive(key);
        if (value.status().IsNotFound()) continue;
        ASSERT_TRUE(value.ok()) << value.status();
        EXPECT_EQ(*value, ValueOf(index));
        ++present;
      }
      EXPECT_TRUE(present == 0 || present == static_cast<int>(keys.size()))
          << "torn group commit at " << index;
    }
    next_index = last + 100;  // the next writer starts clear of stragglers
  }
}

TEST(LevelDbDiskTest, SyncedWritesSurviveSigkill) {
  ExpectSyncedWritesSurviveSigkill(WritePath::kDirect);
}

TEST(LevelDbDiskTest, WritesReportedByTheWriterThreadSurviveSigkill) {
  ExpectSyncedWritesSurviveSigkill(WritePath::kWriterThread);
}

}  // namespace
}  // namespace mks::disk
