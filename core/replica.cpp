#include "core/replica.h"

#include <algorithm>
#include <utility>

#include "core/assertions.h"
#include "core/buggify.h"
#include "core/proto/mks.pb.h"

namespace mks {

inline constexpr std::string_view kReplicaPut = "replica.put";
inline constexpr std::string_view kReplicaGet = "replica.get";
inline constexpr std::string_view kReplicaDropDamaged = "replica.drop_damaged";
// How long the first group commit after a quiet spell gathers puts when
// BUGGIFY widens its window.
inline constexpr int64_t kWideGroupWindowNs = 3'000'000;
// The bounds on waiting puts when BUGGIFY narrows them, so that refusals
// happen: one waiting put refuses nearly every put that would wait; a few
// let small groups form between the refusals.
inline constexpr uint32_t kNarrowWaitingPuts = 1;
inline constexpr uint32_t kFewWaitingPuts = 4;
// How often a barrier looks whether the puts before it are settled.
inline constexpr int64_t kBarrierPollNs = 1'000'000;

void VersionToProto(std::string_view key, const Version& version,
                    proto::Version* out) {
  MKS_ASSERT(out != nullptr);
  MKS_ASSERT(version.origin != kNoNode);
  out->set_key(std::string(key));
  out->mutable_timestamp()->set_physical_ms(version.timestamp.physical_ms);
  out->mutable_timestamp()->set_logical(version.timestamp.logical);
  out->set_origin_node(version.origin);
  out->set_tombstone(version.tombstone);
  out->set_value(version.value);
}

Result<Version> VersionFromProto(const proto::Version& message) {
  if (!message.has_timestamp()) {
    return Status::InvalidArgument("version without a timestamp");
  }
  Version version;
  version.timestamp = Timestamp{message.timestamp().physical_ms(),
                                message.timestamp().logical()};
  version.origin = message.origin_node();
  version.tombstone = message.tombstone();
  version.value = message.value();
  if (version.timestamp == Timestamp::Zero()) {
    return Status::InvalidArgument("version with the zero timestamp");
  }
  if (version.origin == kNoNode) {
    return Status::InvalidArgument("version without an origin node");
  }
  if (version.tombstone && !version.value.empty()) {
    return Status::InvalidArgument("tombstone carrying a value");
  }
  return version;
}

ReplicaService::ReplicaService(Store* store, HybridLogicalClock* hlc,
                               RpcEndpoint* rpc, runtime::Scheduler* scheduler,
                               const Environment* env, ReplicaOptions options)
    : store_(store), hlc_(hlc), scheduler_(scheduler), env_(env), options_(options) {
  MKS_ASSERT_GE(options_.max_waiting_puts, 1u);
  MKS_ASSERT_GE(options_.max_waiting_bytes, 1u);
  MKS_ASSERT(store_ != nullptr);
  MKS_ASSERT(hlc_ != nullptr);
  MKS_ASSERT(scheduler_ != nullptr);
  MKS_ASSERT(rpc != nullptr);
  for (std::string_view method : {kReplicaPut, kReplicaGet, kReplicaDropDamaged}) {
    rpc->RegisterHandler(std::string(method), [this, method](RpcRequest request) {
      return Serve(method, request.payload, request.deadline_ns);
    });
  }
}

Result<bool> ReplicaService::Put(std::string_view key, const Version& version,
                                 bool repair, int64_t deadline_ns) {
  if (Status valid = store_->Validate(key, version); !valid.ok()) {
    ++stats_.puts_refused;
    return valid;
  }
  // Refused before anything is stored: a new version from a wild clock must
  // not land anywhere, or it would win every conflict while the clock is off.
  if (Result<Timestamp> merged = hlc_->Update(version.timestamp); !merged.ok()) {
    if (!repair) {
      ++stats_.puts_refused;
      return Status::InvalidArgument("version of " + EscapeKeyForMessage(key) +
                                     " refused: " + merged.status().message());
    }
    ++stats_.repairs_from_ahead;
  }
  Result<bool> applied = ApplyDurably(key, version, repair, deadline_ns);
  if (!applied.ok()) {
    const bool busy = applied.status().IsResourceExhausted();
    const bool expired = applied.status().IsTimedOut();
    if (busy) {
      ++stats_.puts_busy;
    } else if (expired) {
      ++stats_.puts_expired;
    } else {
      ++stats_.puts_refused;
    }
    if (canaries_.ack_shed_puts && (busy || expired)) {
      // The planted bug: a put that was never written is acknowledged.
      ++stats_.puts;
      return false;
    }
    return applied.status();
  }
  ++stats_.puts;
  if (*applied) ++stats_.puts_applied;
  return *applied;
}

Result<bool> ReplicaService::ApplyDurably(std::string_view key,
                                          const Version& version, bool repair,
                                          int64_t deadline_ns) {
  if (!scheduler_->InFiber()) {
    // Nothing can wait for a group outside a fiber, and a direct write must
    // not race a group's write in flight (see Store::PrepareBatch).
    MKS_ASSERT_MSG(!committer_running_, "a direct put while a group commits");
    return store_->Apply(key, version, WriteOptions{.sync = !canaries_.no_sync},
                         repair);
  }
  const uint64_t bytes = key.size() + version.value.size();
  MKS_RETURN_IF_ERROR(AdmitWaitingPut(bytes));
  return Enqueue(Record{std::string(key), version, repair}, deadline_ns, bytes).Get();
}

runtime::Future<bool> ReplicaService::Enqueue(Record record, int64_t deadline_ns,
                                              uint64_t bytes) {
  runtime::Promise<bool> promise(scheduler_);
  runtime::Future<bool> applied = promise.GetFuture();
  pending_.push_back(PendingPut{std::move(record), std::move(promise), deadline_ns});
  pending_bytes_ += bytes;
  ++accepted_;
  MKS_ASSERT_LE(pending_.size(), options_.max_waiting_puts);
  MKS_ASSERT(pending_.size() == 1 || pending_bytes_ <= options_.max_waiting_bytes);
  if (!committer_running_) {
    committer_running_ = true;
    (void)scheduler_->Spawn(scheduler_->CurrentProcess(), "replica.commit",
                            [this] { RunCommitter(); });
  }
  return applied;
}

void ReplicaService::Barrier() {
  MKS_ASSERT(scheduler_->InFiber());
  const uint64_t target = accepted_;
  while (committed_through_ < target) scheduler_->SleepFor(kBarrierPollNs);
}

Status ReplicaService::ApplyStreamed(std::vector<Record> records) {
  MKS_ASSERT(scheduler_->InFiber());
  std::vector<runtime::Future<bool>> applied;
  applied.reserve(records.size());
  for (Record& record : records) {
    record.repair = false;
    const uint64_t bytes = record.key.size() + record.version.value.size();
    // A stream waits for room; only a client's put is refused when busy.
    while (!AdmitWaitingPut(bytes).ok()) scheduler_->SleepFor(kBarrierPollNs);
    (void)hlc_->Update(record.version.timestamp);
    applied.push_back(Enqueue(std::move(record), kNoPutDeadline, bytes));
  }
  Status failure;
  for (runtime::Future<bool>& future : applied) {
    Result<bool> outcome = future.Get();
    if (outcome.ok()) {
      ++stats_.streamed_records;
    } else if (outcome.status().IsCorruption()) {
      ++stats_.streamed_damaged;
    } else if (failure.ok()) {
      failure = outcome.status();
    }
  }
  return failure;
}

Result<uint64_t> ReplicaService::DropPartitionBatch(uint32_t partition, size_t max_records) {
  MKS_ASSERT(scheduler_->InFiber());
  Barrier();
  // Between groups: a removal racing a group's write could delete what it wrote.
  while (committer_running_ || write_in_flight_) scheduler_->SleepFor(kBarrierPollNs);
  Result<Store::PartitionBatch> batch =
      store_->ScanPartition(partition, /*from_start=*/true, "", max_records, UINT64_MAX);
  MKS_RETURN_IF_ERROR(batch.status());
  std::vector<std::string> keys;
  keys.reserve(batch->records.size() + batch->damaged.size());
  for (Record& record : batch->records) keys.push_back(std::move(record.key));
  for (std::string& key : batch->damaged) keys.push_back(std::move(key));
  MKS_RETURN_IF_ERROR(store_->RemoveKeys(keys));
  stats_.dropped_records += keys.size();
  return keys.size();
}

Status ReplicaService::CheckFence(std::string_view key, uint64_t ring_epoch) {
  if (fence_ == nullptr) return Status::Ok();
  const uint64_t fence = fence_(key);
  if (ring_epoch >= fence) return Status::Ok();
  ++stats_.fenced;
  return Status::StaleEpoch("the request for " + EscapeKeyForMessage(key) +
                            " was routed by a ring of epoch " + std::to_string(ring_epoch) +
                            ", but the replicas of its partition changed at epoch " +
                            std::to_string(fence) + "; catch up and retry");
}

void ReplicaService::RunCommitter() {
  MKS_ASSERT(committer_running_);
  MKS_ASSERT(!pending_.empty());
  // The first group waits one turn of the event loop: the puts already
  // delivered join it, so do those the next poll of the network brings, and
  // the messages this turn produced (other replicas' copies of these writes)
  // are sent first. BUGGIFY: a window of a few milliseconds, so a group
  // gathers puts that arrive over time.
  const bool wide_window = env_ != nullptr && MKS_BUGGIFY(*env_);
  scheduler_->SleepFor(wide_window ? kWideGroupWindowNs : 0);
  // The puts that arrive while a group is in flight form the next group.
  while (!pending_.empty()) {
    DropDeferredDamagedRecords();
    const uint64_t through = accepted_;  // every waiting put is among these
    std::vector<PendingPut> group = TakeGroup();
    if (group.empty()) {
      committed_through_ = through;
      continue;
    }
    if (canaries_.overlap_commits) {
      // The planted bug: the next put starts another committer now, which
      // decides its group's winners before this group's write has landed.
      committer_running_ = false;
      CommitGroup(std::move(group));
      committed_through_ = through;
      return;
    }
    CommitGroup(std::move(group));
    committed_through_ = through;
  }
  // The overlap canary may leave another committer's write in flight.
  MKS_ASSERT(canaries_.overlap_commits || !write_in_flight_);
  DropDeferredDamagedRecords();
  committed_through_ = accepted_;
  committer_running_ = false;
}

void ReplicaService::CommitGroup(std::vector<PendingPut> group) {
  MKS_ASSERT(!group.empty());
  MKS_ASSERT(canaries_.overlap_commits || !write_in_flight_);
  std::vector<Record> records;
  records.reserve(group.size());
  for (PendingPut& put : group) records.push_back(std::move(put.record));
  const WriteOptions options{.sync = !canaries_.no_sync};
  Result<Store::PreparedBatch> prepared = store_->PrepareBatch(records);
  if (!prepared.ok() && group.size() > 1) {
    // One record's failure (a corrupt stored record, say) must not fail the
    // others: those that fail alone get their own error, the rest commit.
    for (size_t i = 0; i < group.size(); ++i) group[i].record = std::move(records[i]);
    CommitWithoutFailingRecords(std::move(group));
    return;
  }
  ++stats_.group_commits;
  stats_.group_commit_puts += group.size();
  Status written = prepared.status();
  if (prepared.ok()) {
    written = WriteInFlight(std::move(prepared->batch), options);
    store_->FinishBatch(*prepared, written);
  }
  if (!written.ok()) {
    // A failed write is the device's failure, not one record's: every put
    // of the group fails, and none is acknowledged.
    for (PendingPut& put : group) put.applied.SetError(written);
    return;
  }
  MKS_ASSERT_EQ(prepared->changed.size(), group.size());
  for (size_t i = 0; i < group.size(); ++i) group[i].applied.SetValue(prepared->changed[i]);
}

void ReplicaService::CommitWithoutFailingRecords(std::vector<PendingPut> group) {
  MKS_ASSERT_GT(group.size(), 1u);
  std::vector<PendingPut> healthy;
  for (PendingPut& put : group) {
    // Preparing writes nothing; a discarded preparation at most leaves the
    // store's ceiling higher in memory, which costs reads, never a winner.
    Result<Store::PreparedBatch> alone =
        store_->PrepareBatch(std::span<const Record>(&put.record, 1));
    if (alone.ok()) {
      healthy.push_back(std::move(put));
    } else {
      put.applied.SetError(alone.status());
    }
  }
  MKS_ASSERT_LT(healthy.size(), group.size());
  if (!healthy.empty()) CommitGroup(std::move(healthy));
}

void ReplicaService::DropDeferredDamagedRecords() {
  MKS_ASSERT(canaries_.overlap_commits || !write_in_flight_);
  // No write is in flight between groups, so each check-and-remove sees
  // every group before it and none after it.
  std::set<std::string> drops;
  drops.swap(deferred_drops_);
  for (const std::string& key : drops) {
    const Result<bool> dropped = store_->RemoveIfDamaged(key, WriteOptions{.sync = true});
    if (dropped.ok() && *dropped) ++stats_.damaged_dropped;
  }
  MKS_ASSERT(deferred_drops_.empty());
}

Result<bool> ReplicaService::DropIfDamaged(std::string_view key) {
  if (committer_running_ || write_in_flight_) {
    // A removal racing the group's write could land after it and delete
    // the version the group wrote over the damaged record.
    deferred_drops_.insert(std::string(key));
    return false;
  }
  Result<bool> dropped = store_->RemoveIfDamaged(key, WriteOptions{.sync = true});
  if (dropped.ok() && *dropped) ++stats_.damaged_dropped;
  return dropped;
}

Status ReplicaService::AdmitWaitingPut(uint64_t bytes) {
  MKS_ASSERT_LE(pending_.size(), options_.max_waiting_puts);
  MKS_ASSERT(pending_.size() <= 1 || pending_bytes_ <= options_.max_waiting_bytes);
  // The first waiting put is always taken: no bound can matter yet.
  if (pending_.empty()) return Status::Ok();
  uint32_t max_puts = options_.max_waiting_puts;
  if (env_ != nullptr && MKS_BUGGIFY(*env_)) {
    max_puts = std::min(max_puts, kNarrowWaitingPuts);
  } else if (env_ != nullptr && MKS_BUGGIFY(*env_)) {
    max_puts = std::min(max_puts, kFewWaitingPuts);
  }
  const bool too_many = pending_.size() >= max_puts;
  const bool too_large = pending_bytes_ + bytes > options_.max_waiting_bytes;
  if (!too_many && !too_large) return Status::Ok();
  return Status::ResourceExhausted(
      "replica busy: " + std::to_string(pending_.size()) + " puts (" +
      std::to_string(pending_bytes_) + " bytes) already wait for a synced write");
}

std::vector<ReplicaService::PendingPut> ReplicaService::TakeGroup() {
  MKS_ASSERT(!pending_.empty());
  std::vector<PendingPut> group;
  group.reserve(pending_.size());
  const int64_t now_ns = scheduler_->NowNanos();
  for (PendingPut& put : pending_) {
    if (now_ns <= put.deadline_ns) {
      group.push_back(std::move(put));
      continue;
    }
    // Its caller has given up: writing it would only cost a sync, and the
    // version reaches this replica by repair if it won elsewhere.
    put.applied.SetError(Status::TimedOut(
        "the put of " + EscapeKeyForMessage(put.record.key) +
        " waited past its caller's deadline for a synced write"));
  }
  pending_.clear();
  pending_bytes_ = 0;
  MKS_ASSERT_LE(group.size(), options_.max_waiting_puts);
  return group;
}

Status ReplicaService::WriteInFlight(WriteBatch batch, WriteOptions options) {
  MKS_ASSERT(scheduler_->InFiber());
  MKS_ASSERT(canaries_.overlap_commits || !write_in_flight_);
  runtime::Promise<bool> promise(scheduler_);
  runtime::Future<bool> done = promise.GetFuture();
  write_in_flight_ = true;
  store_->disk()->WriteAsync(std::move(batch), options,
                             [promise = std::move(promise)](Status status) mutable {
                               if (status.ok()) {
                                 promise.SetValue(true);
                               } else {
                                 promise.SetError(std::move(status));
                               }
                             });
  if (canaries_.ack_in_flight) {
    // The planted bug: the group is answered before its write completes.
    write_in_flight_ = false;
    return Status::Ok();
  }
  Result<bool> outcome = done.Get();
  write_in_flight_ = false;
  return outcome.status();
}

Result<std::optional<Version>> ReplicaService::Get(std::string_view key) {
  Result<Version> stored = store_->Get(key);
  if (stored.ok()) {
    ++stats_.gets;
    // Reads carry timestamps too: whoever reads a version must order its
    // own later writes after it. Old versions never trip the offset rule.
    (void)hlc_->Update(stored->timestamp);
    return std::optional<Version>(std::move(*stored));
  }
  if (stored.status().IsNotFound()) {
    ++stats_.gets;
    return std::optional<Version>();
  }
  ++stats_.gets_failed;
  // Never served, and kept failing until a coordinator repairs it: see the
  // file comment.
  if (stored.status().IsCorruption()) {
    ++stats_.gets_damaged;
    if (canaries_.damaged_as_missing) return std::optional<Version>();
  }
  return stored.status();
}

Result<std::string> ReplicaService::Serve(std::string_view method,
                                          std::string_view payload,
                                          int64_t deadline_ns) {
  if (method == kReplicaPut) return ServePut(payload, deadline_ns);
  if (method == kReplicaGet) return ServeGet(payload);
  if (method == kReplicaDropDamaged) return ServeDropDamaged(payload);
  return Status::InvalidArgument("unknown replica method " + std::string(method));
}

Result<std::string> ReplicaService::ServePut(std::string_view payload,
                                             int64_t deadline_ns) {
  proto::ReplicaPutRequest request;
  if (!request.ParseFromArray(payload.data(), static_cast<int>(payload.size())) ||
      !request.has_version()) {
    return Status::InvalidArgument("malformed replica.put request");
  }
  Result<Version> version = VersionFromProto(request.version());
  MKS_RETURN_IF_ERROR(version.status());
  MKS_RETURN_IF_ERROR(CheckFence(request.version().key(), request.ring_epoch()));
  Result<bool> applied =
      Put(request.version().key(), *version, request.repair(), deadline_ns);
  MKS_RETURN_IF_ERROR(applied.status());
  proto::ReplicaPutResponse response;
  response.set_applied(*applied);
  return response.SerializeAsString();
}

Result<std::string> ReplicaService::ServeGet(std::string_view payload) {
  proto::ReplicaGetRequest request;
  if (!request.ParseFromArray(payload.data(), static_cast<int>(payload.size()))) {
    return Status::InvalidArgument("malformed replica.get request");
  }
  MKS_RETURN_IF_ERROR(CheckFence(request.key(), request.ring_epoch()));
  Result<std::optional<Version>> stored = Get(request.key());
  MKS_RETURN_IF_ERROR(stored.status());
  proto::ReplicaGetResponse response;
  response.set_found(stored->has_value());
  if (stored->has_value()) {
    VersionToProto(request.key(), **stored, response.mutable_version());
  }
  return response.SerializeAsString();
}

Result<std::string> ReplicaService::ServeDropDamaged(std::string_view payload) {
  proto::ReplicaGetRequest request;
  if (!request.ParseFromArray(payload.data(), static_cast<int>(payload.size()))) {
    return Status::InvalidArgument("malformed replica.drop_damaged request");
  }
  MKS_RETURN_IF_ERROR(CheckFence(request.key(), request.ring_epoch()));
  Result<bool> dropped = DropIfDamaged(request.key());
  MKS_RETURN_IF_ERROR(dropped.status());
  proto::ReplicaPutResponse response;
  response.set_applied(*dropped);
  return response.SerializeAsString();
}

}  // namespace mks
