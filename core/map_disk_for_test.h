// A plain in-memory Disk for unit tests: no faults, every write durable at
// once. Crash and corruption behaviour is the simulator's SimDisk's job
// (sim/); this one lets core's tests exercise logic alone. Iterators read a
// snapshot copy. Asynchronous writes complete at once unless the test holds
// them.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "core/env.h"
#include "core/held_writes_for_test.h"

namespace mks {

class MapDisk final : public Disk {
 public:
  using Table = std::map<std::string, std::string, std::less<>>;

  Status Get(std::string_view key, std::string* value) override {
    ++reads_;
    auto it = table_.find(key);
    if (it == table_.end()) return Status::NotFound("absent");
    *value = it->second;
    return Status::Ok();
  }
  Status Put(std::string_view key, std::string_view value,
             WriteOptions) override {
    ++writes_;
    table_[std::string(key)] = std::string(value);
    return Status::Ok();
  }
  Status Delete(std::string_view key, WriteOptions) override {
    ++writes_;
    table_.erase(std::string(key));
    return Status::Ok();
  }
  Status Write(const WriteBatch& batch, WriteOptions) override {
    ++writes_;
    if (failing_writes_ > 0) {
      --failing_writes_;
      return Status::IOError("injected write error");
    }
    for (const auto& op : batch.operations()) {
      if (op.is_delete) {
        table_.erase(op.key);
      } else {
        table_[op.key] = op.value;
      }
    }
    return Status::Ok();
  }
  std::unique_ptr<DiskIterator> NewIterator() override {
    return std::make_unique<Iterator>(table_);
  }
  Status Sync() override {
    ++syncs_;
    return Status::Ok();
  }
  // Held (set_hold_async_writes): parked until CompleteOldestHeldWrite.
  void WriteAsync(WriteBatch batch, WriteOptions options, WriteDone done) override {
    held_.Submit(std::move(batch), options, std::move(done),
                 [this](const WriteBatch& b, WriteOptions o) { return Write(b, o); });
  }
  void CompleteOldestHeldWrite() { held_.CompleteOldest(); }
  void set_hold_async_writes(bool hold) { held_.set_hold(hold); }
  size_t held_count() const { return held_.count(); }

  // The next `count` batch writes (Write, WriteAsync) fail with IOError
  // and change nothing.
  void FailNextWrites(int count) { failing_writes_ = count; }

  Table& table() { return table_; }
  int writes() const { return writes_; }
  int reads() const { return reads_; }
  int syncs() const { return syncs_; }

 private:
  int failing_writes_ = 0;
  class Iterator final : public DiskIterator {
   public:
    explicit Iterator(Table snapshot) : snapshot_(std::move(snapshot)) {
      it_ = snapshot_.end();
    }
    void Seek(std::string_view target) override {
      it_ = snapshot_.lower_bound(target);
    }
    void SeekToFirst() override { it_ = snapshot_.begin(); }
    bool Valid() const override { return it_ != snapshot_.end(); }
    void Next() override { ++it_; }
    std::string_view key() const override { return it_->first; }
    std::string_view value() const override { return it_->second; }
    Status status() const override { return Status::Ok(); }

   private:
    Table snapshot_;
    Table::const_iterator it_;
  };

  Table table_;
  int writes_ = 0;
  int reads_ = 0;  // Get calls
  int syncs_ = 0;
  HeldWrites held_;
};

}  // namespace mks
