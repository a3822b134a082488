#include "sim/sim_disk.h"

#include <algorithm>
#include <utility>

#include "core/assertions.h"

namespace mks::sim {

// Re-seeks from the last key on every step, so writes to the disk between
// steps never invalidate it; value() is a copy for the same reason.
class SimDiskIterator final : public DiskIterator {
 public:
  explicit SimDiskIterator(const SimDisk* disk) : disk_(disk) {}

  void Seek(std::string_view target) override {
    Load(disk_->visible_.lower_bound(target));
  }
  void SeekToFirst() override { Load(disk_->visible_.begin()); }
  bool Valid() const override { return valid_; }
  void Next() override {
    MKS_ASSERT(valid_);
    Load(disk_->visible_.upper_bound(key_));
  }
  std::string_view key() const override {
    MKS_ASSERT(valid_);
    return key_;
  }
  std::string_view value() const override {
    MKS_ASSERT(valid_);
    return value_;
  }
  Status status() const override { return Status::Ok(); }

 private:
  void Load(SimDisk::Table::const_iterator it) {
    valid_ = it != disk_->visible_.end();
    if (valid_) {
      key_ = it->first;
      value_ = it->second;
    }
  }

  const SimDisk* disk_;
  bool valid_ = false;
  std::string key_;
  std::string value_;
};

Status SimDisk::Get(std::string_view key, std::string* value) {
  MKS_ASSERT(value != nullptr);
  auto it = visible_.find(key);
  if (it == visible_.end()) return Status::NotFound("no such key");
  *value = it->second;
  return Status::Ok();
}

Status SimDisk::Put(std::string_view key, std::string_view value,
                    WriteOptions options) {
  WriteBatch batch;
  batch.Put(key, value);
  return Commit(batch, options);
}

Status SimDisk::Delete(std::string_view key, WriteOptions options) {
  WriteBatch batch;
  batch.Delete(key);
  return Commit(batch, options);
}

Status SimDisk::Write(const WriteBatch& batch, WriteOptions options) {
  return Commit(batch, options);
}

std::unique_ptr<DiskIterator> SimDisk::NewIterator() {
  return std::make_unique<SimDiskIterator>(this);
}

Status SimDisk::Sync() {
  if (InjectWriteError()) return Status::IOError("simulated fsync failure");
  MakeDurable();
  return Status::Ok();
}

void SimDisk::WriteAsync(WriteBatch batch, WriteOptions options, WriteDone done) {
  if (scheduler_ == nullptr) {
    // Writing at once must not overtake a write still in flight.
    MKS_ASSERT(in_flight_.empty());
    done(Commit(batch, options));
    return;
  }
  const int64_t deadline_ns =
      NextOrderedTime(config_.write_latency_min_us, config_.write_latency_max_us,
                      &last_completion_ns_);
  const uint64_t id = next_in_flight_id_++;
  in_flight_.emplace(id, InFlight{std::move(batch), options});
  ++stats_.async_writes;
  scheduler_->At(process_, deadline_ns, [this, id, done = std::move(done)]() mutable {
    CompleteInFlight(id, std::move(done));
  });
}

void SimDisk::CompleteInFlight(uint64_t id, WriteDone done) {
  MKS_ASSERT(!in_flight_.empty());
  // Submission order: the write completing is the oldest in flight.
  MKS_ASSERT_EQ(in_flight_.begin()->first, id);
  InFlight write = std::move(in_flight_.begin()->second);
  in_flight_.erase(in_flight_.begin());
  Status landed = Commit(write.batch, write.options);
  if (scheduler_ == nullptr) {
    // Detached while the process lived on: nothing left to delay it with.
    done(std::move(landed));
    return;
  }
  const int64_t report_ns = NextOrderedTime(0, config_.report_delay_max_us, &last_report_ns_);
  MKS_ASSERT_GE(report_ns, scheduler_->NowNanos());
  scheduler_->At(process_, report_ns,
                 [done = std::move(done), landed = std::move(landed)]() mutable {
                   done(std::move(landed));
                 });
}

int64_t SimDisk::NextOrderedTime(int64_t min_us, int64_t max_us, int64_t* last_ns) {
  MKS_ASSERT(scheduler_ != nullptr);
  MKS_ASSERT_LE(min_us, max_us);
  const int64_t span_us = max_us - min_us;
  const int64_t latency_us =
      min_us + static_cast<int64_t>(random_.Uniform(static_cast<uint64_t>(span_us) + 1));
  const int64_t at_ns = std::max(scheduler_->NowNanos() + latency_us * 1000, *last_ns);
  MKS_ASSERT_GE(at_ns, *last_ns);
  *last_ns = at_ns;
  return at_ns;
}

void SimDisk::Attach(runtime::Scheduler* scheduler, runtime::ProcessId process) {
  MKS_ASSERT(scheduler != nullptr);
  MKS_ASSERT(process != 0);
  MKS_ASSERT_MSG(in_flight_.empty(), "attached with writes of a past process in flight");
  scheduler_ = scheduler;
  process_ = process;
  last_completion_ns_ = scheduler->NowNanos();
  last_report_ns_ = last_completion_ns_;
}

void SimDisk::Detach() {
  scheduler_ = nullptr;
  process_ = 0;
}

SimDisk::Undo SimDisk::Apply(const WriteBatch& batch) {
  Undo undo;
  undo.reserve(batch.size());
  for (const WriteBatch::Operation& op : batch.operations()) {
    if (op.is_delete) {
      auto it = visible_.find(op.key);
      if (it == visible_.end()) {
        undo.push_back({op.key, std::nullopt});
      } else {
        undo.push_back({op.key, std::move(it->second)});
        visible_.erase(it);
      }
      continue;
    }
    auto [it, inserted] = visible_.try_emplace(op.key);
    if (inserted) {
      undo.push_back({op.key, std::nullopt});
      it->second = op.value;
    } else {
      // The new value goes in, the old one out to the undo record.
      undo.push_back({op.key, op.value});
      std::swap(it->second, *undo.back().previous);
    }
  }
  MKS_ASSERT_EQ(undo.size(), batch.size());
  return undo;
}

void SimDisk::Rollback(const Undo& undo, Table* table) {
  for (auto op = undo.rbegin(); op != undo.rend(); ++op) {
    if (op->previous.has_value()) {
      table->insert_or_assign(op->key, *op->previous);
    } else {
      table->erase(op->key);
    }
  }
}

SimDisk::Table SimDisk::DurableTable() const {
  Table durable = visible_;
  for (auto batch = unsynced_.rbegin(); batch != unsynced_.rend(); ++batch) {
    Rollback(*batch, &durable);
  }
  return durable;
}

bool SimDisk::InjectWriteError() {
  if (write_error_ppm_ == 0 || !random_.ChancePpm(write_error_ppm_)) {
    return false;
  }
  ++stats_.write_errors;
  return true;
}

Status SimDisk::Commit(const WriteBatch& batch, WriteOptions options) {
  if (InjectWriteError()) return Status::IOError("simulated write failure");
  if (batch.empty()) return options.sync ? Sync() : Status::Ok();
  unsynced_.push_back(Apply(batch));
  ++stats_.writes;
  if (options.sync) MakeDurable();
  return Status::Ok();
}

void SimDisk::MakeDurable() {
  // Durable now means visible: nothing is left to roll back.
  unsynced_.clear();
  ++stats_.syncs;
}

void SimDisk::Crash() {
  // The writes in flight reached the log, or did not; after the unsynced
  // ones either way, so a surviving prefix may include some of them.
  for (auto& [id, write] : in_flight_) {
    if (write.batch.empty()) continue;
    unsynced_.push_back(Apply(write.batch));
  }
  in_flight_.clear();
  const size_t pending = unsynced_.size();
  const size_t surviving = static_cast<size_t>(random_.Uniform(pending + 1));
  MKS_ASSERT_LE(surviving, pending);
  for (size_t i = pending; i > surviving; --i) Rollback(unsynced_[i - 1], &visible_);
  stats_.batches_saved += surviving;
  stats_.batches_lost += pending - surviving;
  unsynced_.clear();
  ++stats_.crashes;
}

std::optional<std::string> SimDisk::CorruptRandomRecord(
    const std::function<bool(std::string_view key)>& eligible) {
  // Only a record at rest can rot: one whose durable and visible values are
  // the same bytes (no unsynced write pending over it).
  const Table built = unsynced_.empty() ? Table() : DurableTable();
  const Table& durable = unsynced_.empty() ? visible_ : built;
  std::vector<const std::string*> candidates;
  for (const auto& [key, value] : durable) {
    auto visible = visible_.find(key);
    if (visible == visible_.end() || visible->second != value) continue;
    if (eligible != nullptr && !eligible(key)) continue;
    candidates.push_back(&key);
  }
  if (candidates.empty()) return std::nullopt;
  const std::string key = *candidates[random_.Uniform(candidates.size())];
  auto visible = visible_.find(key);
  MKS_ASSERT(visible != visible_.end());
  std::string value = visible->second;
  if (value.empty()) value.push_back('\0');  // an empty value grows a byte
  const uint64_t bit = random_.Uniform(value.size() * 8);
  value[bit / 8] = static_cast<char>(value[bit / 8] ^ (1 << (bit % 8)));
  // The durable copy rots too: when an unsynced batch overwrote the key
  // since the last sync, the oldest undo record holds the durable value.
  Overwritten* oldest = OldestOverwrite(key);
  if (oldest != nullptr) {
    MKS_ASSERT(oldest->previous.has_value() && *oldest->previous == visible->second);
    oldest->previous = value;
  }
  visible->second = value;
  damaged_.insert_or_assign(key, std::move(value));
  ++stats_.corruptions;
  MKS_ASSERT(IsDamaged(key));
  return key;
}

bool SimDisk::IsDamaged(std::string_view key) const {
  auto damaged = damaged_.find(key);
  if (damaged == damaged_.end()) return false;
  auto visible = visible_.find(key);
  return visible != visible_.end() && visible->second == damaged->second;
}

bool SimDisk::LostToDamage(std::string_view key) const {
  return damaged_.count(key) > 0 && visible_.find(key) == visible_.end();
}

std::vector<std::string> SimDisk::DamagedKeys() const {
  std::vector<std::string> keys;
  for (const auto& [key, bytes] : damaged_) {
    if (IsDamaged(key)) keys.push_back(key);
  }
  return keys;
}

SimDisk::Overwritten* SimDisk::OldestOverwrite(std::string_view key) {
  for (Undo& batch : unsynced_) {
    for (Overwritten& op : batch) {
      if (op.key == key) return &op;
    }
  }
  return nullptr;
}

void SimDisk::set_write_error_ppm(uint32_t parts_per_million) {
  MKS_ASSERT_LE(parts_per_million, 1000000u);
  write_error_ppm_ = parts_per_million;
}

}  // namespace mks::sim
