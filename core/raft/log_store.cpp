#include "core/raft/log_store.h"

#include <algorithm>
#include <array>
#include <utility>

#include "core/assertions.h"
#include "core/crc32c.h"
#include "core/proto/mks.pb.h"

namespace mks::raft {
namespace {

constexpr std::array<std::string_view, 2> kHardKeys = {"r/hard/a", "r/hard/b"};
constexpr std::string_view kSnapKey = "r/snap";
constexpr std::string_view kLogPrefix = "r/log/";
constexpr int64_t kRetryMinNs = 10'000'000;     // after a failed write
constexpr int64_t kRetryMaxNs = 1'000'000'000;

std::string Seal(const google::protobuf::MessageLite& message) {
  std::string out;
  MKS_ASSERT(message.SerializeToString(&out));
  const uint32_t crc = Crc32c(out);
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((crc >> (8 * i)) & 0xff));
  return out;
}

// False when the checksum fails or the bytes do not parse.
bool Unseal(std::string_view bytes, google::protobuf::MessageLite* message) {
  if (bytes.size() < 4) return false;
  const std::string_view body = bytes.substr(0, bytes.size() - 4);
  uint32_t crc = 0;
  for (int i = 0; i < 4; ++i) {
    crc |= static_cast<uint32_t>(static_cast<uint8_t>(bytes[body.size() + i])) << (8 * i);
  }
  if (Crc32c(body) != crc) return false;
  return message->ParseFromArray(body.data(), static_cast<int>(body.size()));
}

proto::RaftEntry EntryToProto(const Entry& entry) {
  proto::RaftEntry out;
  out.set_term(entry.term);
  out.set_index(entry.index);
  out.set_type(static_cast<uint32_t>(entry.type));
  out.set_data(entry.data);
  return out;
}

void ConfigToProto(const Config& config, proto::RaftConfig* out) {
  for (NodeId voter : config.voters) out->add_voters(voter);
  for (NodeId learner : config.learners) out->add_learners(learner);
}

bool ConfigFromProto(const proto::RaftConfig& in, Config* config) {
  config->voters.assign(in.voters().begin(), in.voters().end());
  config->learners.assign(in.learners().begin(), in.learners().end());
  return config->Normalize();
}

Index IndexOfLogKey(std::string_view key) {
  MKS_ASSERT_EQ(key.size(), kLogPrefix.size() + 8);
  Index index = 0;
  for (size_t i = kLogPrefix.size(); i < key.size(); ++i) {
    index = (index << 8) | static_cast<uint8_t>(key[i]);
  }
  return index;
}

}  // namespace

bool Config::Normalize() {
  std::sort(voters.begin(), voters.end());
  std::sort(learners.begin(), learners.end());
  if (std::adjacent_find(voters.begin(), voters.end()) != voters.end()) return false;
  if (std::adjacent_find(learners.begin(), learners.end()) != learners.end()) return false;
  for (NodeId voter : voters) {
    if (voter == kNoNode || IsLearner(voter)) return false;
  }
  for (NodeId learner : learners) {
    if (learner == kNoNode) return false;
  }
  return true;
}

std::string Config::ToString() const {
  std::string out = "voters [";
  for (size_t i = 0; i < voters.size(); ++i) {
    out += (i == 0 ? "" : " ") + std::to_string(voters[i]);
  }
  out += "] learners [";
  for (size_t i = 0; i < learners.size(); ++i) {
    out += (i == 0 ? "" : " ") + std::to_string(learners[i]);
  }
  return out + "]";
}

std::string EncodeConfig(const Config& config) {
  proto::RaftConfig message;
  ConfigToProto(config, &message);
  std::string out;
  MKS_ASSERT(message.SerializeToString(&out));
  return out;
}

bool DecodeConfig(std::string_view bytes, Config* config) {
  proto::RaftConfig message;
  if (!message.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) return false;
  return ConfigFromProto(message, config);
}

std::string LogKey(Index index) {
  std::string key(kLogPrefix);
  for (int shift = 56; shift >= 0; shift -= 8) {
    key.push_back(static_cast<char>((index >> shift) & 0xff));
  }
  return key;
}

LogStore::LogStore(runtime::Scheduler* scheduler, runtime::ProcessId process, Disk* disk)
    : scheduler_(scheduler), process_(process), disk_(disk) {
  MKS_ASSERT(scheduler_ != nullptr && disk_ != nullptr);
}

Status LogStore::LoadHardState() {
  std::optional<HardState> loaded;
  uint32_t damaged = 0;
  for (std::string_view key : kHardKeys) {
    std::string bytes;
    const Status status = disk_->Get(key, &bytes);
    if (status.IsNotFound()) continue;
    if (!status.ok() && !status.IsCorruption()) return status;
    empty_ = false;
    proto::RaftHardState hard;
    if (!status.ok() || !Unseal(bytes, &hard)) {
      ++damaged;
      continue;
    }
    HardState copy{hard.term(), hard.vote(), hard.cluster_id(), hard.commit(),
                   hard.recover_through(), hard.recover_term()};
    // Both copies are written in one batch, so two good ones are equal.
    if (!loaded.has_value() || copy.term > loaded->term) loaded = std::move(copy);
  }
  stats_.hard_copies_damaged += damaged;
  if (damaged == kHardKeys.size()) {
    return Status::Corruption(
        "raft: both copies of the hard state are damaged: this node cannot know its term "
        "and vote; remove it from the cluster and add it back with an empty data directory");
  }
  if (loaded.has_value()) hard_ = std::move(*loaded);
  return Status::Ok();
}

Status LogStore::LoadSnapshot(bool* lost) {
  std::string bytes;
  const Status status = disk_->Get(kSnapKey, &bytes);
  if (status.IsNotFound()) return Status::Ok();
  if (!status.ok() && !status.IsCorruption()) return status;
  empty_ = false;
  proto::RaftSnapshot snap;
  if (!status.ok() || !Unseal(bytes, &snap)) {
    // The state it holds is gone; so is every entry, which builds on it.
    ++stats_.snapshots_damaged;
    *lost = true;
    return Status::Ok();
  }
  snapshot_.index = snap.index();
  snapshot_.term = snap.term();
  snapshot_.data = snap.data();
  if (!ConfigFromProto(snap.config(), &snapshot_.config)) {
    return Status::Corruption("raft: snapshot holds an invalid config");
  }
  return Status::Ok();
}

Status LogStore::Load() {
  MKS_ASSERT(next_seq_ == 1);
  MKS_RETURN_IF_ERROR(LoadHardState());
  bool snapshot_lost = false;
  MKS_RETURN_IF_ERROR(LoadSnapshot(&snapshot_lost));
  // A bootstrapped node held at least index 1.
  Index lost_through = snapshot_lost ? std::max<Index>(hard_.commit, 1) : 0;
  std::unique_ptr<DiskIterator> it = disk_->NewIterator();
  WriteBatch dropped;
  bool damaged = snapshot_lost;
  for (it->Seek(kLogPrefix); it->Valid() && it->key().starts_with(kLogPrefix); it->Next()) {
    const Index index = IndexOfLogKey(it->key());
    empty_ = false;
    if (index <= snapshot_.index) {
      ++stats_.stale_entries_deleted;
      dropped.Delete(it->key());
      continue;
    }
    proto::RaftEntry entry;
    if (!damaged && (!Unseal(it->value(), &entry) || entry.index() != index || entry.type() > 2)) {
      ++stats_.entries_damaged;
      damaged = true;
    }
    if (damaged) {
      ++stats_.entries_dropped;
      lost_through = std::max(lost_through, index);
      dropped.Delete(it->key());
      continue;
    }
    if (index != last_index() + 1) {
      return Status::Corruption("raft: log has a hole before index " + std::to_string(index));
    }
    log_.push_back(Entry{entry.term(), index, static_cast<EntryType>(entry.type()),
                         entry.data()});
  }
  MKS_RETURN_IF_ERROR(it->status());
  if (snapshot_lost) dropped.Delete(kSnapKey);
  durable_hard_ = hard_;
  durable_last_index_ = last_index();
  if (!dropped.empty()) Enqueue(std::move(dropped), std::nullopt, last_index());
  if (lost_through > hard_.recover_through) {
    HardState marked = hard_;
    marked.recover_through = lost_through;
    marked.recover_term = marked.term;
    marked.commit = std::min(marked.commit, last_index());
    SetHardState(std::move(marked));
  }
  return Status::Ok();
}

Term LogStore::TermAt(Index index) const {
  if (index == snapshot_.index) return snapshot_.term;
  MKS_ASSERT_GE(index, snapshot_.index);
  if (index > last_index()) return 0;
  return log_[index - snapshot_.index - 1].term;
}

const Entry& LogStore::At(Index index) const {
  MKS_ASSERT_GE(index, first_index());
  MKS_ASSERT_LE(index, last_index());
  return log_[index - first_index()];
}

std::vector<Entry> LogStore::Slice(Index from, size_t max_count, size_t max_bytes) const {
  MKS_ASSERT_GE(from, first_index());
  std::vector<Entry> out;
  size_t bytes = 0;
  for (Index index = from; index <= last_index() && out.size() < max_count; ++index) {
    const Entry& entry = At(index);
    if (!out.empty() && bytes + entry.data.size() > max_bytes) break;
    bytes += entry.data.size();
    out.push_back(entry);
  }
  return out;
}

uint64_t LogStore::SetHardState(HardState hard) {
  MKS_ASSERT_GE(hard.term, hard_.term);
  hard_ = std::move(hard);
  proto::RaftHardState message;
  message.set_term(hard_.term);
  message.set_vote(hard_.vote);
  message.set_cluster_id(hard_.cluster_id);
  message.set_commit(hard_.commit);
  message.set_recover_through(hard_.recover_through);
  message.set_recover_term(hard_.recover_term);
  WriteBatch batch;
  const std::string sealed = Seal(message);
  for (std::string_view key : kHardKeys) batch.Put(key, sealed);
  empty_ = false;
  return Enqueue(std::move(batch), hard_);
}

uint64_t LogStore::TruncateAndAppend(Index from, std::vector<Entry> entries) {
  MKS_ASSERT_GT(from, snapshot_.index);
  MKS_ASSERT_LE(from, last_index() + 1);
  WriteBatch batch;
  for (Index index = from; index <= last_index(); ++index) batch.Delete(LogKey(index));
  log_.resize(from - first_index());
  for (Entry& entry : entries) {
    MKS_ASSERT_EQ(entry.index, last_index() + 1);
    MKS_ASSERT_GE(entry.term, last_term());
    batch.Put(LogKey(entry.index), Seal(EntryToProto(entry)));
    log_.push_back(std::move(entry));
  }
  empty_ = false;
  return Enqueue(std::move(batch), std::nullopt, from - 1);
}

uint64_t LogStore::SaveSnapshot(Snapshot snapshot) {
  MKS_ASSERT_GT(snapshot.index, snapshot_.index);
  const bool log_holds = snapshot.index <= last_index() && TermAt(snapshot.index) == snapshot.term;
  WriteBatch batch;
  proto::RaftSnapshot message;
  message.set_index(snapshot.index);
  message.set_term(snapshot.term);
  ConfigToProto(snapshot.config, message.mutable_config());
  message.set_data(snapshot.data);
  batch.Put(kSnapKey, Seal(message));
  const Index drop_to = log_holds ? snapshot.index : last_index();
  for (Index index = first_index(); index <= drop_to; ++index) batch.Delete(LogKey(index));
  std::deque<Entry> kept;
  if (log_holds) {
    for (Index index = snapshot.index + 1; index <= last_index(); ++index) {
      kept.push_back(std::move(log_[index - first_index()]));
    }
  }
  log_ = std::move(kept);
  snapshot_ = std::move(snapshot);
  empty_ = false;
  return Enqueue(std::move(batch), std::nullopt,
                 log_holds ? kAllKept : snapshot_.index);
}

uint64_t LogStore::Enqueue(WriteBatch batch, std::optional<HardState> hard,
                          Index kept_through) {
  const uint64_t seq = next_seq_++;
  durable_last_index_ = std::min(durable_last_index_, kept_through);
  pending_.push_back(Pending{seq, std::move(batch), last_index(), kept_through, std::move(hard)});
  if (!flusher_running_ && scheduler_->IsAlive(process_)) {
    flusher_running_ = true;
    scheduler_->Spawn(process_, "raft.flush", [this] { FlushLoop(); });
  }
  return seq;
}

void LogStore::FlushLoop() {
  int64_t retry_ns = kRetryMinNs;
  while (!pending_.empty()) {
    // Every batch queued so far goes in one synced write.
    WriteBatch merged;
    const size_t count = pending_.size();
    for (const Pending& pending : pending_) {
      for (const WriteBatch::Operation& op : pending.batch.operations()) {
        if (op.is_delete) {
          merged.Delete(op.key);
        } else {
          merged.Put(op.key, op.value);
        }
      }
    }
    runtime::Promise<bool> written(scheduler_);
    runtime::Future<bool> done = written.GetFuture();
    disk_->WriteAsync(std::move(merged), WriteOptions{.sync = true},
                      [&written](Status status) {
                        if (status.ok()) {
                          written.SetValue(true);
                        } else {
                          written.SetError(status);
                        }
                      });
    if (!done.Get().ok()) {
      ++stats_.write_errors;
      scheduler_->SleepFor(retry_ns);
      retry_ns = std::min(retry_ns * 2, kRetryMaxNs);
      continue;
    }
    retry_ns = kRetryMinNs;
    ++stats_.flushes;
    stats_.batches_flushed += count;
    Index durable = 0;
    for (size_t i = 0; i < count; ++i) {
      const Pending& pending = pending_.front();
      durable_seq_ = pending.seq;
      durable = pending.last_index;
      if (pending.hard.has_value()) durable_hard_ = *pending.hard;
      pending_.pop_front();
    }
    // Batches queued during the write may have cut the log below it since.
    for (const Pending& later : pending_) durable = std::min(durable, later.kept_through);
    durable_last_index_ = std::min(durable, last_index());
    for (auto it = waiters_.begin(); it != waiters_.end();) {
      if (it->first <= durable_seq_) {
        it->second.SetValue(true);
        it = waiters_.erase(it);
      } else {
        ++it;
      }
    }
    if (on_durable_) on_durable_();
  }
  flusher_running_ = false;
}

void LogStore::WaitDurable(uint64_t seq) {
  MKS_ASSERT_LT(seq, next_seq_);
  if (seq <= durable_seq_) return;
  runtime::Promise<bool> promise(scheduler_);
  runtime::Future<bool> future = promise.GetFuture();
  waiters_.emplace_back(seq, std::move(promise));
  // Only ever fulfilled with a value (a crash kills this fiber first).
  future.Get().status().IgnoreError();
}

}  // namespace mks::raft
