#include "core/stream.h"

#include <algorithm>
#include <optional>

#include "core/assertions.h"
#include "core/crc32c.h"
#include "core/proto/mks.pb.h"

namespace mks {
namespace {

constexpr std::string_view kStreamPull = "stream.pull";
// Outside the store's ("v"), the node's ("m/"), Raft's ("r/") and gossip's
// ("g/") key spaces.
constexpr std::string_view kCheckpointPrefix = "s/";
constexpr std::string_view kDropPrefix = "d/";
constexpr int64_t kNanosPerMs = 1'000'000;
constexpr size_t kDropBatchRecords = 512;
constexpr char kCopying = 0;
constexpr char kCopied = 1;

void AppendBigEndian(uint64_t value, int bytes, std::string* out) {
  for (int i = bytes - 1; i >= 0; --i) out->push_back(static_cast<char>(value >> (8 * i)));
}

uint64_t ReadBigEndian(std::string_view bytes) {
  uint64_t value = 0;
  for (char c : bytes) value = (value << 8) | static_cast<uint8_t>(c);
  return value;
}

std::string CheckpointKey(uint64_t begin_epoch, PartitionId p, NodeId source) {
  std::string key(kCheckpointPrefix);
  AppendBigEndian(begin_epoch, 8, &key);
  AppendBigEndian(p, 2, &key);
  AppendBigEndian(source, 4, &key);
  return key;
}

std::string DropKey(PartitionId p) {
  std::string key(kDropPrefix);
  AppendBigEndian(p, 2, &key);
  return key;
}

// A copy's progress from one source: copying after `last_key` (none yet
// when empty and not started), or copied.
struct Checkpoint {
  bool copied = false;
  bool started = false;
  std::string last_key;
};

std::string EncodeCheckpoint(std::string_view key, const Checkpoint& checkpoint) {
  std::string value(1, checkpoint.copied ? kCopied : kCopying);
  value += checkpoint.last_key;
  AppendBigEndian(Crc32c(value, Crc32c(key)), 4, &value);
  return value;
}

// nullopt when it fails its checksum (the copy then starts over: safe).
std::optional<Checkpoint> DecodeCheckpoint(std::string_view key, std::string_view value) {
  if (value.size() < 5) return std::nullopt;
  const std::string_view payload = value.substr(0, value.size() - 4);
  if (ReadBigEndian(value.substr(value.size() - 4)) != Crc32c(payload, Crc32c(key))) {
    return std::nullopt;
  }
  if (payload[0] != kCopying && payload[0] != kCopied) return std::nullopt;
  return Checkpoint{payload[0] == kCopied, true, std::string(payload.substr(1))};
}

}  // namespace

StreamService::StreamService(runtime::Scheduler* scheduler, runtime::ProcessId process,
                             RpcEndpoint* rpc, ReplicaService* replica, Store* store, Disk* disk,
                             const ClusterState* cluster, RingSource ring, DownSource known_down,
                             ReportDone report, StreamOptions options)
    : scheduler_(scheduler),
      process_(process),
      rpc_(rpc),
      replica_(replica),
      store_(store),
      disk_(disk),
      cluster_(cluster),
      ring_(std::move(ring)),
      known_down_(std::move(known_down)),
      report_(std::move(report)),
      options_(options) {
  MKS_ASSERT(scheduler_ != nullptr && rpc_ != nullptr && replica_ != nullptr);
  MKS_ASSERT(store_ != nullptr && disk_ != nullptr && cluster_ != nullptr);
  MKS_ASSERT(ring_ && report_);
  MKS_ASSERT_GE(options_.max_transfers, 1u);
  MKS_ASSERT_GE(options_.batch_records, 1u);
  rpc_->RegisterHandler(std::string(kStreamPull),
                        [this](RpcRequest request) { return ServePull(request); });
}

Status StreamService::Start() {
  std::unique_ptr<DiskIterator> it = disk_->NewIterator();
  for (it->Seek(kDropPrefix); it->Valid() && it->key().starts_with(kDropPrefix); it->Next()) {
    if (it->key().size() != kDropPrefix.size() + 2) continue;
    drops_.insert(static_cast<PartitionId>(ReadBigEndian(it->key().substr(kDropPrefix.size()))));
  }
  MKS_RETURN_IF_ERROR(it->status());
  scheduler_->Spawn(process_, "stream.copy", [this] { CopyLoop(); });
  scheduler_->Spawn(process_, "stream.drop", [this] { DropLoop(); });
  return Status::Ok();
}

void StreamService::OnRing(const Ring* previous, const Ring& ring) {
  if (previous == nullptr || previous->partition_count() != ring.partition_count()) return;
  WriteBatch marks;
  for (PartitionId p = 0; p < ring.partition_count(); ++p) {
    const std::span<const NodeId> future = ring.FutureList(p);
    const bool keeps = canaries_.drop_before_flip
                           ? std::find(future.begin(), future.end(), self()) != future.end()
                           : ring.Holds(self(), p);
    if (!previous->Holds(self(), p) || keeps || drops_.count(p) > 0) continue;
    drops_.insert(p);
    marks.Put(DropKey(p), "1");
  }
  // Unsynced: the Disk keeps writes in order, so the mark outlives a crash
  // whenever the metadata that caused it does.
  if (marks.size() > 0) disk_->Write(marks, WriteOptions{}).IgnoreError();
}

void StreamService::DropAll(uint32_t partition_count) {
  WriteBatch marks;
  for (PartitionId p = 0; p < partition_count; ++p) {
    if (!drops_.insert(p).second) continue;
    marks.Put(DropKey(p), "1");
  }
  if (marks.size() > 0) disk_->Write(marks, WriteOptions{}).IgnoreError();
}

void StreamService::CopyLoop() {
  for (;;) {
    scheduler_->SleepFor(static_cast<int64_t>(options_.retry_ms) * kNanosPerMs);
    const Transition* transition = cluster_->transition();
    const uint64_t begin_epoch = transition == nullptr ? 0 : transition->begin_epoch;
    if (begin_epoch != checkpoints_of_) ForgetCheckpoints(begin_epoch);
    std::shared_ptr<const Ring> ring = ring_();
    if (transition == nullptr || ring == nullptr) {
      ready_.clear();
      reported_.clear();
      continue;
    }
    failed_.clear();
    StartCopies(*ring, *transition);
    ReportReady(begin_epoch);
  }
}

void StreamService::StartCopies(const Ring& ring, const Transition& transition) {
  while (workers_ < options_.max_transfers && NextPartition(ring, transition).has_value()) {
    ++workers_;
    scheduler_->Spawn(process_, "stream.worker", [this] { CopyWorker(); });
  }
}

std::optional<PartitionId> StreamService::NextPartition(const Ring& ring,
                                                        const Transition& transition) const {
  auto ready = ready_.find(transition.begin_epoch);
  for (PartitionId p = 0; p < ring.partition_count(); ++p) {
    if (!ring.IsPending(self(), p) || transition.Done(p, self()) || active_.count(p) > 0 ||
        (ready != ready_.end() && ready->second.count(p) > 0) ||
        failed_.count(p) > 0) {
      continue;
    }
    return p;
  }
  return std::nullopt;
}

void StreamService::CopyWorker() {
  for (;;) {
    std::shared_ptr<const Ring> ring = ring_();
    const Transition* transition = cluster_->transition();
    if (ring == nullptr || transition == nullptr) break;
    const std::optional<PartitionId> next = NextPartition(*ring, *transition);
    if (!next.has_value()) break;
    const PartitionId p = *next;
    const uint64_t begin_epoch = transition->begin_epoch;
    const NodeId leaver =
        transition->kind == Transition::Kind::kLeave ? transition->node : kNoNode;
    active_.insert(p);
    const Status copied = CopyPartition(begin_epoch, p, leaver, std::move(ring));
    active_.erase(p);
    if (copied.ok()) {
      ready_[begin_epoch].insert(p);
    } else {
      failed_.insert(p);  // retried next round, after the others
    }
  }
  --workers_;
}

Status StreamService::CopyPartition(uint64_t begin_epoch, PartitionId p, NodeId leaver,
                                    std::shared_ptr<const Ring> ring) {
  if (ring == nullptr || !ring->IsPending(self(), p)) {
    return Status::Unavailable("no longer pending");
  }
  Status failure;
  size_t copied = 0;
  for (NodeId source : ring->PreferenceList(p)) {
    if (source == leaver && known_down_ != nullptr && known_down_(source)) continue;
    const Status status = CopyFrom(begin_epoch, p, source);
    if (status.ok()) {
      ++copied;
    } else if (failure.ok()) {
      failure = status;
    }
  }
  MKS_RETURN_IF_ERROR(failure);
  if (copied == 0) return Status::Unavailable("partition " + std::to_string(p) + ": no source");
  return Status::Ok();
}

Status StreamService::CopyFrom(uint64_t begin_epoch, PartitionId p, NodeId source) {
  const std::string key = CheckpointKey(begin_epoch, p, source);
  Checkpoint checkpoint;
  std::string stored;
  const Status read = disk_->Get(key, &stored);
  if (read.ok()) {
    checkpoint = DecodeCheckpoint(key, stored).value_or(Checkpoint{});
    if (checkpoint.copied) return Status::Ok();
    if (checkpoint.started) ++stats_.resumed;
  } else if (!read.IsNotFound() && !read.IsCorruption()) {
    return read;
  }
  for (;;) {
    proto::StreamPullRequest request;
    request.set_partition(p);
    request.set_from_start(!checkpoint.started);
    request.set_after_key(checkpoint.last_key);
    request.set_begin_epoch(begin_epoch);
    request.set_max_records(options_.batch_records);
    request.set_max_bytes(options_.batch_bytes);
    if (stats_.first_pull_ns == 0) stats_.first_pull_ns = scheduler_->NowNanos();
    Result<std::string> reply =
        rpc_->Call(source, kStreamPull, request.SerializeAsString(),
                   static_cast<int64_t>(options_.pull_timeout_ms) * kNanosPerMs)
            .Get();
    proto::StreamPullResponse response;
    if (reply.ok() && !response.ParseFromString(*reply)) {
      reply = Status::Internal("malformed stream.pull response");
    }
    if (!reply.ok()) {
      ++stats_.pull_failures;
      return reply.status();
    }
    std::vector<Record> records;
    uint64_t bytes = 0;
    records.reserve(static_cast<size_t>(response.records_size()));
    for (const proto::Version& wire : response.records()) {
      Result<Version> version = VersionFromProto(wire);
      if (!version.ok()) return version.status();
      bytes += wire.key().size() + version->value.size();
      records.push_back(Record{wire.key(), std::move(*version), false});
    }
    stats_.records_pulled += records.size();
    stats_.bytes_pulled += bytes;
    ++stats_.batches_pulled;
    stats_.last_pull_ns = scheduler_->NowNanos();
    MKS_RETURN_IF_ERROR(replica_->ApplyStreamed(std::move(records)));
    // After the records are synced: a checkpoint never runs ahead of them.
    checkpoint.started = true;
    checkpoint.last_key = response.last_key();
    checkpoint.copied = response.done() || canaries_.report_after_first_batch;
    MKS_RETURN_IF_ERROR(disk_->Put(key, EncodeCheckpoint(key, checkpoint), WriteOptions{}));
    if (checkpoint.copied) {
      ++stats_.sources_copied;
      return Status::Ok();
    }
    Throttle(bytes);
  }
}

void StreamService::Throttle(uint64_t bytes) {
  if (options_.rate_bytes_per_s == 0) return;
  const int64_t now_ns = scheduler_->NowNanos();
  const int64_t cost_ns =
      static_cast<int64_t>(bytes * 1'000'000'000ull / options_.rate_bytes_per_s);
  next_pull_ns_ = std::max(next_pull_ns_, now_ns) + cost_ns;
  if (next_pull_ns_ > now_ns) scheduler_->SleepFor(next_pull_ns_ - now_ns);
}

void StreamService::ReportReady(uint64_t begin_epoch) {
  auto it = ready_.find(begin_epoch);
  if (it == ready_.end() || it->second.empty()) return;
  std::vector<PartitionId> partitions;
  const Transition* transition = cluster_->transition();
  for (PartitionId p : it->second) {
    const bool applied = transition != nullptr && transition->begin_epoch == begin_epoch &&
                         (transition->Done(p, self()) || transition->Flipped(p));
    if (!applied && reported_[begin_epoch].count(p) == 0) partitions.push_back(p);
  }
  if (partitions.empty()) return;
  if (!report_(begin_epoch, partitions).ok()) return;  // retried next round
  stats_.partitions_copied += partitions.size();
  // Reported: kept in ready_ until this node applied the report, so the
  // partitions are not copied again meanwhile (NextPartition).
  it = ready_.find(begin_epoch);
  if (it == ready_.end()) return;
  for (PartitionId p : partitions) reported_[begin_epoch].insert(p);
}

void StreamService::ForgetCheckpoints(uint64_t keep_epoch) {
  std::unique_ptr<DiskIterator> it = disk_->NewIterator();
  WriteBatch forget;
  for (it->Seek(kCheckpointPrefix); it->Valid() && it->key().starts_with(kCheckpointPrefix);
       it->Next()) {
    const std::string_view key = it->key();
    if (key.size() >= kCheckpointPrefix.size() + 8 &&
        ReadBigEndian(key.substr(kCheckpointPrefix.size(), 8)) == keep_epoch) {
      continue;
    }
    forget.Delete(key);
  }
  if (!it->status().ok()) return;
  if (forget.size() > 0 && !disk_->Write(forget, WriteOptions{}).ok()) return;
  checkpoints_of_ = keep_epoch;
  for (auto ready = ready_.begin(); ready != ready_.end();) {
    ready = ready->first == keep_epoch ? std::next(ready) : ready_.erase(ready);
  }
  for (auto reported = reported_.begin(); reported != reported_.end();) {
    reported = reported->first == keep_epoch ? std::next(reported) : reported_.erase(reported);
  }
}

void StreamService::DropLoop() {
  for (;;) {
    scheduler_->SleepFor(static_cast<int64_t>(options_.retry_ms) * kNanosPerMs);
    while (!drops_.empty()) {
      const PartitionId p = *drops_.begin();
      std::shared_ptr<const Ring> ring = ring_();
      const bool held_again = ring != nullptr && ring->Holds(self(), p) &&
                              !canaries_.drop_before_flip;
      if (!held_again) {
        Result<uint64_t> dropped = replica_->DropPartitionBatch(p, kDropBatchRecords);
        if (!dropped.ok()) break;  // the disk failed: retry next round
        if (*dropped > 0) continue;
        ++stats_.partitions_dropped;
      } else {
        ++stats_.drops_cancelled;
      }
      if (!disk_->Delete(DropKey(p), WriteOptions{}).ok()) break;
      drops_.erase(p);
    }
  }
}

Result<std::string> StreamService::ServePull(const RpcRequest& request) {
  proto::StreamPullRequest message;
  if (!message.ParseFromString(request.payload) || message.max_records() == 0) {
    return Status::InvalidArgument("malformed stream.pull request");
  }
  std::shared_ptr<const Ring> ring = ring_();
  if (cluster_->epoch() < message.begin_epoch() || ring == nullptr) {
    return Status::Unavailable("node " + std::to_string(self()) +
                               " has not applied the transition of epoch " +
                               std::to_string(message.begin_epoch()) + " yet; retry");
  }
  if (message.partition() >= ring->partition_count() ||
      !ring->IsReplica(self(), message.partition())) {
    return Status::StaleEpoch("node " + std::to_string(self()) + " does not serve partition " +
                              std::to_string(message.partition()) + " at epoch " +
                              std::to_string(ring->epoch()));
  }
  replica_->Barrier();
  // The ring may have moved while the puts settled; nothing yields from
  // here to the read.
  ring = ring_();
  if (ring == nullptr || !ring->IsReplica(self(), message.partition())) {
    return Status::StaleEpoch("node " + std::to_string(self()) + " stopped serving partition " +
                              std::to_string(message.partition()));
  }
  Result<Store::PartitionBatch> batch =
      store_->ScanPartition(message.partition(), message.from_start(), message.after_key(),
                            std::min<uint32_t>(message.max_records(), options_.batch_records),
                            std::max<uint64_t>(1, message.max_bytes()));
  MKS_RETURN_IF_ERROR(batch.status());
  proto::StreamPullResponse response;
  for (const Record& record : batch->records) {
    VersionToProto(record.key, record.version, response.add_records());
  }
  response.set_done(batch->done);
  response.set_last_key(batch->last_key.empty() && !message.from_start() ? message.after_key()
                                                                         : batch->last_key);
  response.set_damaged(static_cast<uint32_t>(batch->damaged.size()));
  ++stats_.pulls_served;
  stats_.records_served += batch->records.size();
  stats_.bytes_served += batch->bytes;
  return response.SerializeAsString();
}

}  // namespace mks
