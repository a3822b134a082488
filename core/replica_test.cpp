#include "core/replica.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/held_writes_for_test.h"
#include "core/loopback_network_for_test.h"
#include "core/map_disk_for_test.h"
#include "core/proto/mks.pb.h"
#include "core/runtime/manual_clock.h"

namespace mks {
namespace {

using runtime::ManualClock;

constexpr int64_t kMsNanos = 1'000'000;
constexpr int64_t kStartNanos = 1'700'000'000'000 * kMsNanos;
constexpr NodeId kSelf = 1;

// A disk that remembers what its last synced write left durable, so a test
// can ask whether an acknowledged put had reached the disk for good.
class DurabilityTrackingDisk final : public Disk {
 public:
  Status Get(std::string_view key, std::string* value) override {
    return inner_.Get(key, value);
  }
  Status Put(std::string_view key, std::string_view value,
             WriteOptions options) override {
    WriteBatch batch;
    batch.Put(key, value);
    return Write(batch, options);
  }
  Status Delete(std::string_view key, WriteOptions options) override {
    WriteBatch batch;
    batch.Delete(key);
    return Write(batch, options);
  }
  Status Write(const WriteBatch& batch, WriteOptions options) override {
    if (fail_writes_) return Status::IOError("injected write failure");
    MKS_RETURN_IF_ERROR(inner_.Write(batch, options));
    if (options.sync) return Sync();
    return Status::Ok();
  }
  std::unique_ptr<DiskIterator> NewIterator() override { return inner_.NewIterator(); }
  Status Sync() override {
    ++syncs_;
    durable_ = inner_.table();
    return Status::Ok();
  }
  // Held (set_hold_async_writes): parked until CompleteOldestHeldWrite.
  void WriteAsync(WriteBatch batch, WriteOptions options, WriteDone done) override {
    held_.Submit(std::move(batch), options, std::move(done),
                 [this](const WriteBatch& b, WriteOptions o) { return Write(b, o); });
  }
  void CompleteOldestHeldWrite() { held_.CompleteOldest(); }

  MapDisk::Table& table() { return inner_.table(); }
  const MapDisk::Table& durable() const { return durable_; }
  int syncs() const { return syncs_; }
  void set_fail_writes(bool fail) { fail_writes_ = fail; }
  void set_hold_async_writes(bool hold) { held_.set_hold(hold); }
  size_t held_count() const { return held_.count(); }
  size_t max_held() const { return held_.max_count(); }

 private:
  MapDisk inner_;
  HeldWrites held_;
  MapDisk::Table durable_;
  int syncs_ = 0;
  bool fail_writes_ = false;
};

class ReplicaServiceTest : public ::testing::Test {
 protected:
  ReplicaServiceTest()
      : store_(&disk_, [](std::string_view) { return 0u; }, StoreOptions{}),
        hlc_(&clock_, HlcOptions{}) {
    clock_.AdvanceTo(kStartNanos);
    process_ = scheduler_.CreateProcess("replica");
    rpc_ = std::make_unique<RpcEndpoint>(&scheduler_, process_, hub_.NetworkOf(kSelf),
                                         kSelf, RpcOptions{.incarnation = 7});
    replica_ = std::make_unique<ReplicaService>(&store_, &hlc_, rpc_.get(), &scheduler_);
  }
  ~ReplicaServiceTest() override { scheduler_.Kill(process_); }

  Version At(uint64_t physical_ms, std::string value) const {
    Version version;
    version.timestamp = Timestamp{physical_ms, 0};
    version.origin = 2;
    version.value = std::move(value);
    return version;
  }
  uint64_t NowMs() const { return static_cast<uint64_t>(kStartNanos / kMsNanos); }

  // Starts one fiber per put, all ready at once, as a burst of requests
  // delivered in one turn of the event loop would be.
  // Then runs them all to completion and returns their outcomes in order.
  std::vector<Result<bool>> PutConcurrently(const std::vector<Record>& records) {
    std::vector<std::optional<Result<bool>>> outcomes(records.size());
    StartPuts(records, &outcomes);
    runtime::DriveUntilQuiet(scheduler_, clock_);
    std::vector<Result<bool>> results;
    for (std::optional<Result<bool>>& outcome : outcomes) {
      MKS_ASSERT(outcome.has_value());
      results.push_back(std::move(*outcome));
    }
    return results;
  }

  // Replaces the service with one using `options`.
  void ReopenWith(ReplicaOptions options) {
    replica_.reset();
    rpc_ = std::make_unique<RpcEndpoint>(&scheduler_, process_, hub_.NetworkOf(kSelf),
                                         kSelf, RpcOptions{.incarnation = 8});
    replica_ = std::make_unique<ReplicaService>(&store_, &hlc_, rpc_.get(),
                                                &scheduler_, nullptr, options);
  }

  // Holds the disk's asynchronous writes and puts "a" in flight as a group
  // of its own, nothing waiting behind it; *outcome receives its result once
  // the write completes.
  void PutOneGroupInFlight(std::vector<std::optional<Result<bool>>>* outcome) {
    disk_.set_hold_async_writes(true);
    StartPuts({{"a", At(NowMs(), "a1")}}, outcome);
    runtime::DriveUntilQuiet(scheduler_, clock_);
    MKS_ASSERT_EQ(disk_.held_count(), 1u);
  }
  // Completes the held writes, oldest first, until none is held.
  void CompleteHeldWrites() {
    while (disk_.held_count() > 0) {
      disk_.CompleteOldestHeldWrite();
      runtime::DriveUntilQuiet(scheduler_, clock_);
    }
  }

  // Starts one fiber per put; each stores its outcome in (*outcomes)[i]
  // when it completes. `outcomes` must outlive the fibers. The callers wait
  // until `deadline_ns`.
  void StartPuts(const std::vector<Record>& records,
                 std::vector<std::optional<Result<bool>>>* outcomes,
                 int64_t deadline_ns = kNoPutDeadline) {
    MKS_ASSERT_EQ(outcomes->size(), records.size());
    for (size_t i = 0; i < records.size(); ++i) {
      scheduler_.Spawn(process_, "put", [this, outcomes, i, record = records[i],
                                         deadline_ns] {
        Result<bool> applied =
            replica_->Put(record.key, record.version, /*repair=*/false, deadline_ns);
        // Acknowledged means durable: the key's record is in the synced
        // state as reads see it (unsynced writes after the ack may differ).
        if (applied.ok()) ExpectDurableAsVisible(record.key);
        (*outcomes)[i] = std::move(applied);
      });
    }
  }

  // Checks that the record of `key` reads the same in the synced state.
  void ExpectDurableAsVisible(std::string_view key) {
    const std::string disk_key = DiskKeyOf(key);
    const auto visible = disk_.table().find(disk_key);
    const auto durable = disk_.durable().find(disk_key);
    ASSERT_NE(visible, disk_.table().end()) << "no record of " << key;
    ASSERT_NE(durable, disk_.durable().end()) << "record of " << key << " not synced";
    EXPECT_EQ(durable->second, visible->second) << key;
  }
  // The disk key of `key`'s record: "v", the 2-byte partition, the key.
  std::string DiskKeyOf(std::string_view key) {
    for (const auto& [disk_key, value] : disk_.table()) {
      if (disk_key.ends_with(key) && disk_key.size() == key.size() + 3) return disk_key;
    }
    return "";
  }

  // Flips a bit of the stored record of `key` (its checksum then fails).
  void CorruptStoredRecordOf(std::string_view key) {
    std::string* stored = nullptr;
    for (auto& [disk_key, value] : disk_.table()) {
      if (disk_key.ends_with(key)) stored = &value;
    }
    ASSERT_NE(stored, nullptr);
    stored->back() = static_cast<char>(stored->back() ^ 0x01);
  }

  // Runs fibers and fires timers for `duration_ns` of scheduler time. For
  // fibers that poll (Barrier), under which DriveUntilQuiet never returns.
  void DriveFor(int64_t duration_ns) {
    const int64_t until_ns = clock_.MonotonicNanos() + duration_ns;
    for (;;) {
      scheduler_.RunReady();
      const std::optional<int64_t> next = scheduler_.NextDeadlineNanos();
      if (!next || *next > until_ns) break;
      if (*next > clock_.MonotonicNanos()) clock_.AdvanceTo(*next);
      scheduler_.FireNextTimer();
    }
    clock_.AdvanceTo(until_ns);
  }

  ManualClock clock_;
  runtime::Scheduler scheduler_{&clock_};
  LoopbackHub hub_;
  DurabilityTrackingDisk disk_;
  Store store_;
  HybridLogicalClock hlc_;
  runtime::ProcessId process_ = 0;
  std::unique_ptr<RpcEndpoint> rpc_;
  std::unique_ptr<ReplicaService> replica_;
};

TEST_F(ReplicaServiceTest, ConcurrentPutsShareOneSyncedWrite) {
  const uint64_t now_ms = NowMs();
  std::vector<Result<bool>> results = PutConcurrently({
      {"a", At(now_ms, "a1")},
      {"b", At(now_ms, "b1")},
      {"a", At(now_ms - 5, "a0")},  // older than the first: changes nothing
      {"c", At(now_ms, "c1")},
      {"a", At(now_ms + 1, "a2")},  // newer: wins
  });
  std::vector<bool> changed;
  for (Result<bool>& applied : results) {
    ASSERT_TRUE(applied.ok()) << applied.status().ToString();
    changed.push_back(*applied);
  }
  EXPECT_EQ(changed, (std::vector<bool>{true, true, false, true, true}));
  EXPECT_EQ(disk_.syncs(), 1);
  EXPECT_EQ(replica_->stats().group_commits, 1u);
  EXPECT_EQ(replica_->stats().group_commit_puts, 5u);
  EXPECT_EQ(replica_->stats().puts, 5u);
  EXPECT_EQ(replica_->stats().puts_applied, 4u);
  Result<Version> a = store_.Get("a");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->value, "a2");
}

TEST_F(ReplicaServiceTest, PutsArrivingAfterACommitFormTheNextGroup) {
  const uint64_t now_ms = NowMs();
  std::vector<Result<bool>> first =
      PutConcurrently({{"a", At(now_ms, "1")}, {"b", At(now_ms, "1")}});
  std::vector<Result<bool>> second = PutConcurrently({{"c", At(now_ms, "1")}});
  EXPECT_TRUE(first[0].ok());
  EXPECT_TRUE(first[1].ok());
  EXPECT_TRUE(second[0].ok());
  EXPECT_EQ(disk_.syncs(), 2);
  EXPECT_EQ(replica_->stats().group_commits, 2u);
  EXPECT_EQ(replica_->stats().group_commit_puts, 3u);
}

size_t CountDone(const std::vector<std::optional<Result<bool>>>& outcomes) {
  return static_cast<size_t>(std::count_if(outcomes.begin(), outcomes.end(),
                                           [](const auto& o) { return o.has_value(); }));
}

TEST_F(ReplicaServiceTest, PutsArrivingWhileAGroupIsInFlightFormTheNextOne) {
  const uint64_t now_ms = NowMs();
  disk_.set_hold_async_writes(true);
  std::vector<std::optional<Result<bool>>> first(2);
  StartPuts({{"a", At(now_ms, "a1")}, {"b", At(now_ms, "b1")}}, &first);
  runtime::DriveUntilQuiet(scheduler_, clock_);
  ASSERT_EQ(disk_.held_count(), 1u);  // the first group is in flight
  EXPECT_EQ(CountDone(first), 0u);    // and nothing is acknowledged yet
  // The node keeps serving meanwhile: reads see the state before the group.
  EXPECT_TRUE(replica_->Get("a").ok());
  EXPECT_FALSE(replica_->Get("a")->has_value());

  std::vector<std::optional<Result<bool>>> second(3);
  StartPuts({{"a", At(now_ms + 1, "a2")}, {"c", At(now_ms, "c1")},
             {"b", At(now_ms - 1, "b0")}},  // older than b1, in flight
            &second);
  runtime::DriveUntilQuiet(scheduler_, clock_);
  EXPECT_EQ(disk_.held_count(), 1u);  // waits: one group in flight at a time
  EXPECT_EQ(CountDone(second), 0u);

  disk_.CompleteOldestHeldWrite();
  runtime::DriveUntilQuiet(scheduler_, clock_);
  EXPECT_EQ(CountDone(first), 2u);
  EXPECT_EQ(CountDone(second), 0u);
  ASSERT_EQ(disk_.held_count(), 1u);  // the second group, decided after the first landed
  disk_.CompleteOldestHeldWrite();
  runtime::DriveUntilQuiet(scheduler_, clock_);
  ASSERT_EQ(CountDone(second), 3u);
  EXPECT_TRUE(first[0]->ok() && **first[0]);
  EXPECT_TRUE(first[1]->ok() && **first[1]);
  EXPECT_TRUE(second[0]->ok() && **second[0]);
  EXPECT_TRUE(second[1]->ok() && **second[1]);
  // b0 lost to b1, which had landed before the second group was decided.
  EXPECT_TRUE(second[2]->ok() && !**second[2]);
  EXPECT_EQ(store_.Get("b")->value, "b1");
  EXPECT_EQ(store_.Get("a")->value, "a2");
  EXPECT_EQ(disk_.max_held(), 1u);
  EXPECT_EQ(replica_->stats().group_commits, 2u);
  EXPECT_EQ(replica_->stats().group_commit_puts, 5u);
}

TEST_F(ReplicaServiceTest, OverlapCanaryPutsTwoGroupsInFlight) {
  const uint64_t now_ms = NowMs();
  replica_->set_canaries(ReplicaCanaries{.overlap_commits = true});
  disk_.set_hold_async_writes(true);
  std::vector<std::optional<Result<bool>>> first(1);
  std::vector<std::optional<Result<bool>>> second(1);
  StartPuts({{"a", At(now_ms, "a1")}}, &first);
  runtime::DriveUntilQuiet(scheduler_, clock_);
  StartPuts({{"b", At(now_ms, "b1")}}, &second);
  runtime::DriveUntilQuiet(scheduler_, clock_);
  EXPECT_EQ(disk_.held_count(), 2u);
  disk_.CompleteOldestHeldWrite();
  disk_.CompleteOldestHeldWrite();
  runtime::DriveUntilQuiet(scheduler_, clock_);
  EXPECT_EQ(CountDone(first) + CountDone(second), 2u);
}

TEST_F(ReplicaServiceTest, ACorruptRecordFailsOnlyItsOwnPut) {
  const uint64_t now_ms = NowMs();
  ASSERT_TRUE(replica_->Put("bad", At(now_ms - 10, "old")).ok());  // outside a fiber
  // A newer version elsewhere: the group's versions are then not above
  // everything stored, so the store reads each key before writing it.
  ASSERT_TRUE(replica_->Put("top", At(now_ms + 100, "t")).ok());
  CorruptStoredRecordOf("bad");
  std::vector<Result<bool>> results = PutConcurrently({
      {"good", At(now_ms, "g")},
      {"bad", At(now_ms, "new")},
      {"other", At(now_ms, "o")},
  });
  const Result<bool>& good = results[0];
  const Result<bool>& bad = results[1];
  const Result<bool>& other = results[2];
  EXPECT_TRUE(good.ok()) << good.status().ToString();
  EXPECT_TRUE(bad.status().IsCorruption()) << bad.status().ToString();
  EXPECT_TRUE(other.ok()) << other.status().ToString();
  EXPECT_EQ(replica_->stats().puts_refused, 1u);
  EXPECT_TRUE(store_.Get("good").ok());
  EXPECT_TRUE(store_.Get("other").ok());
}

TEST_F(ReplicaServiceTest, ACorruptRecordLeavesTheRestOfItsGroupOneSyncedWrite) {
  const uint64_t now_ms = NowMs();
  ASSERT_TRUE(replica_->Put("bad", At(now_ms - 10, "old")).ok());
  ASSERT_TRUE(replica_->Put("top", At(now_ms + 100, "t")).ok());  // reads needed
  CorruptStoredRecordOf("bad");
  const int syncs_before = disk_.syncs();
  std::vector<Result<bool>> results = PutConcurrently({
      {"a", At(now_ms, "a")}, {"bad", At(now_ms, "new")}, {"b", At(now_ms, "b")}});
  EXPECT_TRUE(results[0].ok());
  EXPECT_TRUE(results[1].status().IsCorruption());
  EXPECT_TRUE(results[2].ok());
  EXPECT_EQ(disk_.syncs(), syncs_before + 1);  // the others, together
}

TEST_F(ReplicaServiceTest, ADamagedRecordFailsReadsUntilARepairReplacesIt) {
  const uint64_t now_ms = NowMs();
  ASSERT_TRUE(replica_->Put("bad", At(now_ms - 10, "old")).ok());
  ASSERT_TRUE(replica_->Put("top", At(now_ms + 100, "t")).ok());  // reads needed
  CorruptStoredRecordOf("bad");
  // Never "not found": the replica lost its version, it does not know that
  // the key has none.
  EXPECT_TRUE(replica_->Get("bad").status().IsCorruption());
  EXPECT_TRUE(replica_->Get("bad").status().IsCorruption());
  EXPECT_EQ(replica_->stats().gets_damaged, 2u);
  // A plain put older than everything cannot replace it, a repair can,
  // even with an older version than the one the record may have held.
  EXPECT_TRUE(replica_->Put("bad", At(now_ms - 20, "plain")).status().IsCorruption());
  Result<bool> repaired = replica_->Put("bad", At(now_ms - 30, "repair"), /*repair=*/true);
  ASSERT_TRUE(repaired.ok()) << repaired.status().ToString();
  EXPECT_TRUE(*repaired);
  Result<std::optional<Version>> read = replica_->Get("bad");
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  ASSERT_TRUE(read->has_value());
  EXPECT_EQ((*read)->value, "repair");
  // A repair over a healthy record is an ordinary last-writer-wins apply.
  Result<bool> older = replica_->Put("bad", At(now_ms - 40, "older"), /*repair=*/true);
  ASSERT_TRUE(older.ok());
  EXPECT_FALSE(*older);
  EXPECT_EQ(store_.Get("bad")->value, "repair");
}

TEST_F(ReplicaServiceTest, ARepairInAGroupReplacesADamagedRecord) {
  const uint64_t now_ms = NowMs();
  ASSERT_TRUE(replica_->Put("bad", At(now_ms - 10, "old")).ok());
  ASSERT_TRUE(replica_->Put("top", At(now_ms + 100, "t")).ok());
  CorruptStoredRecordOf("bad");
  std::vector<std::optional<Result<bool>>> outcome(2);
  for (size_t i = 0; i < 2; ++i) {
    scheduler_.Spawn(process_, "put", [this, &outcome, i, now_ms] {
      outcome[i] = i == 0 ? replica_->Put("a", At(now_ms, "a"))
                          : replica_->Put("bad", At(now_ms - 30, "fixed"), /*repair=*/true);
    });
  }
  runtime::DriveUntilQuiet(scheduler_, clock_);
  ASSERT_TRUE(outcome[0].has_value() && outcome[0]->ok());
  ASSERT_TRUE(outcome[1].has_value() && outcome[1]->ok()) << outcome[1]->status().ToString();
  EXPECT_EQ(store_.Get("bad")->value, "fixed");
  EXPECT_EQ(replica_->stats().group_commits, 1u);  // one group, both puts
}

TEST_F(ReplicaServiceTest, ADropAskedWhileAGroupCommitsWaitsForTheGroup) {
  const uint64_t now_ms = NowMs();
  ASSERT_TRUE(replica_->Put("bad", At(now_ms - 10, "old")).ok());
  CorruptStoredRecordOf("bad");
  ASSERT_TRUE(replica_->Put("fine", At(now_ms - 10, "fine")).ok());
  EXPECT_FALSE(*replica_->DropIfDamaged("fine"));  // healthy: left alone
  disk_.set_hold_async_writes(true);
  std::vector<std::optional<Result<bool>>> first(1);
  StartPuts({{"a", At(now_ms, "a")}}, &first);
  runtime::DriveUntilQuiet(scheduler_, clock_);
  ASSERT_EQ(disk_.held_count(), 1u);
  // Deferred: the group's write could land on either side of a removal.
  Result<bool> dropped = replica_->DropIfDamaged("bad");
  ASSERT_TRUE(dropped.ok());
  EXPECT_FALSE(*dropped);
  EXPECT_TRUE(store_.Get("bad").status().IsCorruption());
  disk_.CompleteOldestHeldWrite();
  runtime::DriveUntilQuiet(scheduler_, clock_);
  EXPECT_TRUE(first[0].has_value() && first[0]->ok());
  EXPECT_TRUE(store_.Get("bad").status().IsNotFound());  // removed after it
  EXPECT_TRUE(store_.Get("fine").ok());
  EXPECT_EQ(replica_->stats().damaged_dropped, 1u);
  EXPECT_EQ(disk_.durable(), disk_.table());  // the removal is synced
}

TEST_F(ReplicaServiceTest, AFailedDiskWriteFailsEveryPutOfTheGroup) {
  const uint64_t now_ms = NowMs();
  disk_.set_fail_writes(true);
  std::vector<Result<bool>> results =
      PutConcurrently({{"a", At(now_ms, "1")}, {"b", At(now_ms, "1")}});
  for (const Result<bool>& result : results) {
    EXPECT_TRUE(result.status().IsIOError()) << result.status().ToString();
  }
  EXPECT_EQ(replica_->stats().puts, 0u);
  EXPECT_EQ(replica_->stats().puts_refused, 2u);
  EXPECT_TRUE(disk_.table().empty());
}

TEST_F(ReplicaServiceTest, RefusedPutsNeverJoinAGroup) {
  const uint64_t now_ms = NowMs();
  Version wild = At(now_ms + 60'000, "wild");  // beyond the 500 ms offset
  std::vector<Result<bool>> results =
      PutConcurrently({{"a", At(now_ms, "1")}, {"w", wild}, {"", At(now_ms, "1")}});
  EXPECT_TRUE(results[0].ok());
  EXPECT_TRUE(results[1].status().IsInvalidArgument());
  EXPECT_TRUE(results[2].status().IsInvalidArgument());
  EXPECT_EQ(replica_->stats().group_commit_puts, 1u);
  EXPECT_TRUE(store_.Get("a").ok());
  EXPECT_TRUE(store_.Get("w").status().IsNotFound());
}

TEST_F(ReplicaServiceTest, PutsBeyondTheWaitingBoundAreRefusedAsBusy) {
  ReopenWith(ReplicaOptions{.max_waiting_puts = 2});
  const uint64_t now_ms = NowMs();
  std::vector<std::optional<Result<bool>>> first(1);
  PutOneGroupInFlight(&first);
  std::vector<std::optional<Result<bool>>> second(4);
  StartPuts({{"b", At(now_ms, "b1")}, {"c", At(now_ms, "c1")},
             {"d", At(now_ms, "d1")}, {"e", At(now_ms, "e1")}},
            &second);
  runtime::DriveUntilQuiet(scheduler_, clock_);
  // Two wait; the others are answered at once, unwritten.
  ASSERT_EQ(CountDone(second), 2u);
  EXPECT_TRUE(second[2]->status().IsResourceExhausted()) << second[2]->status().ToString();
  EXPECT_TRUE(second[3]->status().IsResourceExhausted());
  EXPECT_NE(second[2]->status().message().find("2 puts"), std::string::npos)
      << second[2]->status().message();
  CompleteHeldWrites();
  ASSERT_EQ(CountDone(second), 4u);
  EXPECT_TRUE(second[0]->ok() && **second[0]);
  EXPECT_TRUE(second[1]->ok() && **second[1]);
  EXPECT_TRUE(store_.Get("d").status().IsNotFound());
  EXPECT_TRUE(store_.Get("e").status().IsNotFound());
  EXPECT_EQ(replica_->stats().puts_busy, 2u);
  EXPECT_EQ(replica_->stats().puts_refused, 0u);
  EXPECT_EQ(replica_->stats().group_commit_puts, 3u);
  // Once the backlog is gone, puts are taken again.
  disk_.set_hold_async_writes(false);
  EXPECT_TRUE(PutConcurrently({{"d", At(now_ms, "d1")}})[0].ok());
}

TEST_F(ReplicaServiceTest, TheByteBoundRefusesAPutOnlyWhenOthersWait) {
  ReopenWith(ReplicaOptions{.max_waiting_bytes = 16});
  const uint64_t now_ms = NowMs();
  std::vector<std::optional<Result<bool>>> first(1);
  PutOneGroupInFlight(&first);
  // 33 bytes alone is taken, or a value above the bound could never land;
  // a 3-byte put behind it exceeds the bound.
  std::vector<std::optional<Result<bool>>> second(2);
  StartPuts({{"big", At(now_ms, std::string(30, 'x'))}, {"s", At(now_ms, "s1")}},
            &second);
  runtime::DriveUntilQuiet(scheduler_, clock_);
  ASSERT_EQ(CountDone(second), 1u);
  EXPECT_TRUE(second[1]->status().IsResourceExhausted());
  CompleteHeldWrites();
  ASSERT_EQ(CountDone(second), 2u);
  EXPECT_TRUE(second[0]->ok() && **second[0]);
  EXPECT_EQ(store_.Get("big")->value.size(), 30u);
  EXPECT_EQ(replica_->stats().puts_busy, 1u);
  // Taking the group released its bytes: two small puts may wait again.
  std::vector<std::optional<Result<bool>>> third(1);
  PutOneGroupInFlight(&third);
  std::vector<std::optional<Result<bool>>> fourth(2);
  StartPuts({{"s", At(now_ms, "s1")}, {"t", At(now_ms, "t1")}}, &fourth);
  runtime::DriveUntilQuiet(scheduler_, clock_);
  EXPECT_EQ(CountDone(fourth), 0u);
  CompleteHeldWrites();
  ASSERT_EQ(CountDone(fourth), 2u);
  EXPECT_TRUE(fourth[0]->ok() && fourth[1]->ok());
  EXPECT_EQ(replica_->stats().puts_busy, 1u);
}

TEST_F(ReplicaServiceTest, APutWhoseCallerGaveUpWhileWaitingIsNotWritten) {
  const uint64_t now_ms = NowMs();
  std::vector<std::optional<Result<bool>>> first(1);
  PutOneGroupInFlight(&first);
  std::vector<std::optional<Result<bool>>> patient(1);
  std::vector<std::optional<Result<bool>>> hurried(1);
  StartPuts({{"p", At(now_ms, "p1")}}, &patient);
  StartPuts({{"h", At(now_ms, "h1")}}, &hurried, clock_.MonotonicNanos() + kMsNanos);
  runtime::DriveUntilQuiet(scheduler_, clock_);
  clock_.AdvanceTo(clock_.MonotonicNanos() + 2 * kMsNanos);  // a slow sync
  disk_.CompleteOldestHeldWrite();
  runtime::DriveUntilQuiet(scheduler_, clock_);
  ASSERT_TRUE(hurried[0].has_value());
  EXPECT_TRUE(hurried[0]->status().IsTimedOut()) << hurried[0]->status().ToString();
  ASSERT_EQ(disk_.held_count(), 1u);  // the next group carries "p" alone
  disk_.CompleteOldestHeldWrite();
  runtime::DriveUntilQuiet(scheduler_, clock_);
  ASSERT_TRUE(patient[0].has_value());
  EXPECT_TRUE(patient[0]->ok());
  EXPECT_TRUE(store_.Get("h").status().IsNotFound());
  EXPECT_EQ(replica_->stats().puts_expired, 1u);
  EXPECT_EQ(replica_->stats().group_commit_puts, 2u);
}

// The RPC's deadline reaches the waiting put: a remote caller that gave up
// leaves nothing written.
TEST_F(ReplicaServiceTest, AReplicaPutOverRpcExpiresWithItsCallersTimeout) {
  constexpr NodeId kCaller = 2;
  const runtime::ProcessId caller_process = scheduler_.CreateProcess("caller");
  RpcEndpoint caller(&scheduler_, caller_process, hub_.NetworkOf(kCaller), kCaller,
                     RpcOptions{.incarnation = 9});
  std::vector<std::optional<Result<bool>>> first(1);
  PutOneGroupInFlight(&first);
  proto::ReplicaPutRequest request;
  VersionToProto("r", At(NowMs(), "r1"), request.mutable_version());
  std::optional<Status> answered;
  scheduler_.Spawn(caller_process, "call", [&] {
    answered = caller.Call(kSelf, "replica.put", request.SerializeAsString(), kMsNanos)
                   .Get()
                   .status();
  });
  scheduler_.RunUntilIdle();
  hub_.DeliverAll();  // the request arrives and waits behind the group
  scheduler_.RunUntilIdle();
  clock_.AdvanceTo(clock_.MonotonicNanos() + 2 * kMsNanos);
  CompleteHeldWrites();
  hub_.DeliverAll();
  runtime::DriveUntilQuiet(scheduler_, clock_);
  ASSERT_TRUE(answered.has_value());
  EXPECT_TRUE(answered->IsTimedOut()) << answered->ToString();
  EXPECT_TRUE(store_.Get("r").status().IsNotFound());
  EXPECT_EQ(replica_->stats().puts_expired, 1u);
  scheduler_.Kill(caller_process);
}

TEST_F(ReplicaServiceTest, AGroupOfOnlyExpiredPutsWritesNothing) {
  const uint64_t now_ms = NowMs();
  std::vector<std::optional<Result<bool>>> first(1);
  PutOneGroupInFlight(&first);
  std::vector<std::optional<Result<bool>>> hurried(2);
  StartPuts({{"h", At(now_ms, "h1")}, {"i", At(now_ms, "i1")}}, &hurried,
            clock_.MonotonicNanos() + kMsNanos);
  runtime::DriveUntilQuiet(scheduler_, clock_);
  clock_.AdvanceTo(clock_.MonotonicNanos() + 2 * kMsNanos);
  disk_.CompleteOldestHeldWrite();
  runtime::DriveUntilQuiet(scheduler_, clock_);
  EXPECT_EQ(disk_.held_count(), 0u);
  EXPECT_EQ(CountDone(hurried), 2u);
  EXPECT_EQ(replica_->stats().puts_expired, 2u);
  EXPECT_EQ(replica_->stats().group_commits, 1u);
  // The committer stopped cleanly: the next put starts a new one.
  disk_.set_hold_async_writes(false);
  EXPECT_TRUE(PutConcurrently({{"h", At(now_ms, "h2")}})[0].ok());
}

TEST_F(ReplicaServiceTest, ShedCanaryAcknowledgesARefusedPut) {
  ReopenWith(ReplicaOptions{.max_waiting_puts = 1});
  replica_->set_canaries(ReplicaCanaries{.ack_shed_puts = true});
  const uint64_t now_ms = NowMs();
  std::vector<std::optional<Result<bool>>> first(1);
  PutOneGroupInFlight(&first);
  std::vector<std::optional<Result<bool>>> second(1);
  StartPuts({{"b", At(now_ms, "b1")}}, &second);
  std::optional<Result<bool>> shed;
  scheduler_.Spawn(process_, "put", [this, &shed, now_ms] {
    shed = replica_->Put("c", At(now_ms, "c1"));
  });
  runtime::DriveUntilQuiet(scheduler_, clock_);
  ASSERT_TRUE(shed.has_value());
  EXPECT_TRUE(shed->ok());  // the planted bug: acknowledged, unwritten
  EXPECT_TRUE(store_.Get("c").status().IsNotFound());
  CompleteHeldWrites();
}

// ---- Epoch fencing, barriers, streams and partition drops ----

constexpr std::string_view kReplicaPut = "replica.put";
constexpr std::string_view kReplicaGet = "replica.get";

std::string PutRequest(std::string_view key, const Version& version, uint64_t ring_epoch) {
  proto::ReplicaPutRequest request;
  VersionToProto(key, version, request.mutable_version());
  request.set_ring_epoch(ring_epoch);
  return request.SerializeAsString();
}

std::string GetRequest(std::string_view key, uint64_t ring_epoch) {
  proto::ReplicaGetRequest request;
  request.set_key(std::string(key));
  request.set_ring_epoch(ring_epoch);
  return request.SerializeAsString();
}

TEST_F(ReplicaServiceTest, RequestsRoutedByARingBelowTheFenceAreRefusedAsStale) {
  const uint64_t now_ms = NowMs();
  replica_->set_fence([](std::string_view key) -> uint64_t { return key == "moved" ? 5 : 0; });
  const Result<std::string> stale_put =
      replica_->Serve(kReplicaPut, PutRequest("moved", At(now_ms, "v"), 4));
  EXPECT_TRUE(stale_put.status().IsStaleEpoch()) << stale_put.status();
  EXPECT_TRUE(store_.Get("moved").status().IsNotFound());  // nothing written
  const Result<std::string> stale_get = replica_->Serve(kReplicaGet, GetRequest("moved", 4));
  EXPECT_TRUE(stale_get.status().IsStaleEpoch()) << stale_get.status();
  EXPECT_EQ(replica_->stats().fenced, 2u);
  EXPECT_EQ(replica_->stats().puts, 0u);

  // At the fence epoch and above, and for a partition that did not move,
  // the replica serves.
  ASSERT_TRUE(replica_->Serve(kReplicaPut, PutRequest("moved", At(now_ms, "v"), 5)).ok());
  ASSERT_TRUE(replica_->Serve(kReplicaPut, PutRequest("stayed", At(now_ms, "s"), 0)).ok());
  const Result<std::string> got = replica_->Serve(kReplicaGet, GetRequest("moved", 6));
  ASSERT_TRUE(got.ok()) << got.status();
  proto::ReplicaGetResponse response;
  ASSERT_TRUE(response.ParseFromString(*got));
  EXPECT_TRUE(response.found());
  EXPECT_EQ(response.version().value(), "v");
  EXPECT_EQ(replica_->stats().fenced, 2u);
  EXPECT_EQ(replica_->stats().puts, 2u);
}

TEST_F(ReplicaServiceTest, BarrierWaitsForPutsAcceptedBeforeItOnly) {
  const uint64_t now_ms = NowMs();
  std::vector<std::optional<Result<bool>>> before(1);
  PutOneGroupInFlight(&before);
  bool passed = false;
  scheduler_.Spawn(process_, "barrier", [this, &passed] {
    replica_->Barrier();
    passed = true;
  });
  DriveFor(50 * kMsNanos);
  EXPECT_FALSE(passed);  // "a" is accepted, its write still held
  // A put accepted after the barrier began: the barrier does not wait for it.
  std::vector<std::optional<Result<bool>>> after(1);
  StartPuts({{"b", At(now_ms, "b1")}}, &after);
  DriveFor(10 * kMsNanos);
  EXPECT_FALSE(passed);
  disk_.CompleteOldestHeldWrite();  // "a" lands; "b" goes in flight next
  DriveFor(10 * kMsNanos);
  EXPECT_TRUE(passed);
  EXPECT_TRUE(before[0].has_value() && before[0]->ok());
  EXPECT_EQ(disk_.held_count(), 1u);
  EXPECT_FALSE(after[0].has_value());
  CompleteHeldWrites();
  EXPECT_TRUE(after[0].has_value() && after[0]->ok());
}

TEST_F(ReplicaServiceTest, ApplyStreamedKeepsTheNewerVersionAndSkipsDamagedRecords) {
  const uint64_t now_ms = NowMs();
  ASSERT_TRUE(replica_->Put("a", At(now_ms - 10, "kept")).ok());
  ASSERT_TRUE(replica_->Put("b", At(now_ms - 50, "old")).ok());
  ASSERT_TRUE(replica_->Put("d", At(now_ms - 50, "old")).ok());
  CorruptStoredRecordOf("d");
  std::vector<Record> records = {
      {"a", At(now_ms - 20, "older streamed")},
      {"b", At(now_ms - 40, "newer streamed")},
      {"c", At(now_ms - 30, "new key")},
      // Older than "a": the store must read "d", which is damaged. A stream
      // is no repair, even when a record says so.
      {"d", At(now_ms - 30, "streamed"), /*repair=*/true},
  };
  std::optional<Status> outcome;
  scheduler_.Spawn(process_, "stream",
                   [&] { outcome = replica_->ApplyStreamed(std::move(records)); });
  runtime::DriveUntilQuiet(scheduler_, clock_);
  ASSERT_TRUE(outcome.has_value());
  EXPECT_TRUE(outcome->ok()) << *outcome;
  EXPECT_EQ(store_.Get("a")->value, "kept");
  EXPECT_EQ(store_.Get("b")->value, "newer streamed");
  EXPECT_EQ(store_.Get("c")->value, "new key");
  EXPECT_TRUE(store_.Get("d").status().IsCorruption());
  EXPECT_EQ(replica_->stats().streamed_records, 3u);
  EXPECT_EQ(replica_->stats().streamed_damaged, 1u);
  ExpectDurableAsVisible("b");
  ExpectDurableAsVisible("c");
}

// A replica whose store puts keys starting with 'p' in partition 1 and the
// others in partition 0, on a disk of its own.
class PartitionedReplicaTest : public ReplicaServiceTest {
 protected:
  PartitionedReplicaTest()
      : partitioned_store_(&partitioned_disk_,
                           [](std::string_view key) { return key.starts_with("p") ? 1u : 0u; },
                           StoreOptions{}) {
    partitioned_rpc_ = std::make_unique<RpcEndpoint>(&scheduler_, process_, hub_.NetworkOf(2),
                                                     2, RpcOptions{.incarnation = 9});
    partitioned_ = std::make_unique<ReplicaService>(&partitioned_store_, &hlc_,
                                                    partitioned_rpc_.get(), &scheduler_);
  }

  Result<uint64_t> DropBatch(uint32_t partition, size_t max_records) {
    std::optional<Result<uint64_t>> dropped;
    scheduler_.Spawn(process_, "drop", [&] {
      dropped = partitioned_->DropPartitionBatch(partition, max_records);
    });
    runtime::DriveUntilQuiet(scheduler_, clock_);
    MKS_ASSERT(dropped.has_value());
    return std::move(*dropped);
  }

  MapDisk partitioned_disk_;
  Store partitioned_store_;
  std::unique_ptr<RpcEndpoint> partitioned_rpc_;
  std::unique_ptr<ReplicaService> partitioned_;
};

TEST_F(PartitionedReplicaTest, DropPartitionBatchRemovesOnePartitionInBatches) {
  const uint64_t now_ms = NowMs();
  for (const char* key : {"p1", "p2", "p3", "q1", "r1"}) {
    ASSERT_TRUE(partitioned_->Put(key, At(now_ms, key)).ok());
  }
  ASSERT_TRUE(partitioned_->Put("p4", At(now_ms, "gone")).ok());
  ASSERT_TRUE(partitioned_->Put("p4", Version::Tombstone(Timestamp{now_ms + 1, 0}, 2)).ok());
  EXPECT_EQ(*DropBatch(1, 3), 3u);
  EXPECT_EQ(*DropBatch(1, 3), 1u);
  EXPECT_EQ(*DropBatch(1, 3), 0u);
  for (const char* key : {"p1", "p2", "p3", "p4"}) {
    EXPECT_TRUE(partitioned_store_.Get(key).status().IsNotFound()) << key;  // no tombstone
  }
  EXPECT_EQ(partitioned_store_.Get("q1")->value, "q1");
  EXPECT_EQ(partitioned_store_.Get("r1")->value, "r1");
  EXPECT_EQ(partitioned_->stats().dropped_records, 4u);
}

TEST_F(PartitionedReplicaTest, DropPartitionBatchWaitsForAnAcceptedPutAndRemovesIt) {
  const uint64_t now_ms = NowMs();
  ASSERT_TRUE(partitioned_->Put("p1", At(now_ms, "v")).ok());
  partitioned_disk_.set_hold_async_writes(true);
  std::optional<Result<bool>> put;
  scheduler_.Spawn(process_, "put", [&] { put = partitioned_->Put("p2", At(now_ms, "v")); });
  runtime::DriveUntilQuiet(scheduler_, clock_);
  std::optional<Result<uint64_t>> dropped;
  scheduler_.Spawn(process_, "drop",
                   [&] { dropped = partitioned_->DropPartitionBatch(1, 10); });
  DriveFor(20 * kMsNanos);
  EXPECT_FALSE(dropped.has_value());  // waits for "p2"'s write
  partitioned_disk_.CompleteOldestHeldWrite();
  DriveFor(20 * kMsNanos);
  ASSERT_TRUE(put.has_value() && put->ok());
  ASSERT_TRUE(dropped.has_value() && dropped->ok());
  EXPECT_EQ(**dropped, 2u);
  EXPECT_TRUE(partitioned_store_.Get("p2").status().IsNotFound());
}

}  // namespace
}  // namespace mks
