#include "sim/sim_disk.h"

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
  return Commit(std::move(batch), options);
}

Status SimDisk::Delete(std::string_view key, WriteOptions options) {
  WriteBatch batch;
  batch.Delete(key);
  return Commit(std::move(batch), options);
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

void SimDisk::Apply(const WriteBatch& batch, Table* table) {
  for (const WriteBatch::Operation& op : batch.operations()) {
    if (op.is_delete) {
      table->erase(op.key);
    } else {
      (*table)[op.key] = op.value;
    }
  }
}

bool SimDisk::InjectWriteError() {
  if (write_error_ppm_ == 0 || !random_.ChancePpm(write_error_ppm_)) {
    return false;
  }
  ++stats_.write_errors;
  return true;
}

Status SimDisk::Commit(WriteBatch batch, WriteOptions options) {
  if (InjectWriteError()) return Status::IOError("simulated write failure");
  if (batch.empty()) return options.sync ? Sync() : Status::Ok();
  Apply(batch, &visible_);
  unsynced_.push_back(std::move(batch));
  ++stats_.writes;
  if (options.sync) MakeDurable();
  return Status::Ok();
}

void SimDisk::MakeDurable() {
  for (const WriteBatch& batch : unsynced_) Apply(batch, &durable_);
  unsynced_.clear();
  ++stats_.syncs;
  MKS_ASSERT_EQ(durable_.size(), visible_.size());
}

void SimDisk::Crash() {
  const size_t pending = unsynced_.size();
  const size_t surviving = static_cast<size_t>(random_.Uniform(pending + 1));
  MKS_ASSERT_LE(surviving, pending);
  for (size_t i = 0; i < surviving; ++i) Apply(unsynced_[i], &durable_);
  stats_.batches_saved += surviving;
  stats_.batches_lost += pending - surviving;
  unsynced_.clear();
  visible_ = durable_;
  ++stats_.crashes;
}

std::optional<std::string> SimDisk::CorruptRandomRecord() {
  // Only a record at rest can rot: one whose durable and visible values are
  // the same bytes (no unsynced write pending over it).
  if (durable_.empty()) return std::nullopt;
  auto durable = durable_.begin();
  std::advance(durable, static_cast<long>(random_.Uniform(durable_.size())));
  auto visible = visible_.find(durable->first);
  if (visible == visible_.end() || visible->second != durable->second) {
    return std::nullopt;
  }
  std::string& value = durable->second;
  if (value.empty()) value.push_back('\0');  // an empty value grows a byte
  const uint64_t bit = random_.Uniform(value.size() * 8);
  value[bit / 8] = static_cast<char>(value[bit / 8] ^ (1 << (bit % 8)));
  visible->second = value;
  ++stats_.corruptions;
  return durable->first;
}

void SimDisk::set_write_error_ppm(uint32_t parts_per_million) {
  MKS_ASSERT_LE(parts_per_million, 1000000u);
  write_error_ppm_ = parts_per_million;
}

}  // namespace mks::sim
