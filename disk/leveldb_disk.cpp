#include "disk/leveldb_disk.h"

#include <leveldb/cache.h>
#include <leveldb/db.h>
#include <leveldb/filter_policy.h>
#include <leveldb/iterator.h>
#include <leveldb/write_batch.h>

#include <system_error>
#include <utility>

#include "core/assertions.h"

namespace mks::disk {

namespace {

leveldb::Slice ToSlice(std::string_view bytes) {
  return leveldb::Slice(bytes.data(), bytes.size());
}

std::string_view ToView(const leveldb::Slice& slice) {
  return std::string_view(slice.data(), slice.size());
}

// Every LevelDB status becomes ours; "what" names the operation.
Status FromLevelDb(const leveldb::Status& status, std::string_view what) {
  if (status.ok()) return Status::Ok();
  std::string message = "leveldb " + std::string(what) + ": " + status.ToString();
  if (status.IsNotFound()) return Status::NotFound(std::move(message));
  if (status.IsCorruption()) return Status::Corruption(std::move(message));
  if (status.IsInvalidArgument()) return Status::InvalidArgument(std::move(message));
  // IsIOError, IsNotSupportedError and anything a later LevelDB may add: the
  // engine failed, and the caller must treat the outcome as unknown.
  return Status::IOError(std::move(message));
}

leveldb::WriteOptions ToLevelDb(WriteOptions options) {
  leveldb::WriteOptions out;
  out.sync = options.sync;
  return out;
}

leveldb::ReadOptions CheckedReads() {
  leveldb::ReadOptions options;
  options.verify_checksums = true;
  return options;
}

class LevelDbIterator final : public DiskIterator {
 public:
  explicit LevelDbIterator(std::unique_ptr<leveldb::Iterator> it)
      : it_(std::move(it)) {
    MKS_ASSERT(it_ != nullptr);
  }

  void Seek(std::string_view target) override { it_->Seek(ToSlice(target)); }
  void SeekToFirst() override { it_->SeekToFirst(); }
  bool Valid() const override { return it_->Valid(); }
  void Next() override {
    MKS_ASSERT(it_->Valid());
    it_->Next();
  }
  std::string_view key() const override {
    MKS_ASSERT(it_->Valid());
    return ToView(it_->key());
  }
  std::string_view value() const override {
    MKS_ASSERT(it_->Valid());
    return ToView(it_->value());
  }
  Status status() const override {
    return FromLevelDb(it_->status(), "iterate");
  }

 private:
  std::unique_ptr<leveldb::Iterator> it_;
};

}  // namespace

Result<std::unique_ptr<LevelDbDisk>> LevelDbDisk::Open(
    const std::string& directory, LevelDbOptions options) {
  if (directory.empty()) return Status::InvalidArgument("empty data directory");
  if (options.bloom_bits_per_key < 0) {
    return Status::InvalidArgument("negative bloom_bits_per_key");
  }
  std::unique_ptr<leveldb::Cache> cache(
      leveldb::NewLRUCache(options.block_cache_bytes));
  std::unique_ptr<const leveldb::FilterPolicy> filter;
  if (options.bloom_bits_per_key > 0) {
    filter.reset(leveldb::NewBloomFilterPolicy(options.bloom_bits_per_key));
  }
  leveldb::Options db_options;
  db_options.create_if_missing = options.create_if_missing;
  db_options.paranoid_checks = true;
  db_options.write_buffer_size = options.write_buffer_bytes;
  db_options.block_cache = cache.get();
  db_options.filter_policy = filter.get();
  leveldb::DB* raw_db = nullptr;
  MKS_RETURN_IF_ERROR(FromLevelDb(
      leveldb::DB::Open(db_options, directory, &raw_db), "open " + directory));
  MKS_ASSERT(raw_db != nullptr);
  return std::unique_ptr<LevelDbDisk>(
      new LevelDbDisk(directory, std::unique_ptr<leveldb::DB>(raw_db),
                      std::move(cache), std::move(filter)));
}

LevelDbDisk::LevelDbDisk(std::string directory, std::unique_ptr<leveldb::DB> db,
                         std::unique_ptr<leveldb::Cache> cache,
                         std::unique_ptr<const leveldb::FilterPolicy> filter)
    : directory_(std::move(directory)),
      cache_(std::move(cache)),
      filter_(std::move(filter)),
      db_(std::move(db)) {
  MKS_ASSERT(db_ != nullptr);
  MKS_ASSERT(cache_ != nullptr);
}

LevelDbDisk::~LevelDbDisk() {
  if (!writer_.joinable()) return;
  {
    const std::lock_guard<std::mutex> lock(writer_mutex_);
    writer_stopping_ = true;
  }
  writer_wakeup_.notify_one();
  writer_.join();
  MKS_ASSERT(writer_jobs_.empty());
}

Status LevelDbDisk::StartWriter(LoopPoster post) {
  MKS_ASSERT(post != nullptr);
  MKS_ASSERT_MSG(!writer_.joinable(), "StartWriter called twice");
  post_ = std::move(post);
  try {
    writer_ = std::thread([this] { RunWriter(); });
  } catch (const std::system_error& error) {
    post_ = nullptr;
    return Status::IOError(std::string("cannot start the disk writer thread: ") +
                           error.what());
  }
  return Status::Ok();
}

void LevelDbDisk::WriteAsync(WriteBatch batch, WriteOptions options, WriteDone done) {
  MKS_ASSERT(static_cast<bool>(done));
  if (!writer_.joinable()) {
    done(Write(batch, options));
    return;
  }
  {
    const std::lock_guard<std::mutex> lock(writer_mutex_);
    MKS_ASSERT(!writer_stopping_);
    writer_jobs_.push_back(WriterJob{std::move(batch), options, std::move(done)});
  }
  writer_wakeup_.notify_one();
}

void LevelDbDisk::RunWriter() {
  for (;;) {
    WriterJob job;
    {
      std::unique_lock<std::mutex> lock(writer_mutex_);
      writer_wakeup_.wait(lock, [this] { return writer_stopping_ || !writer_jobs_.empty(); });
      if (writer_jobs_.empty()) return;  // stopping, and nothing left to write
      job = std::move(writer_jobs_.front());
      writer_jobs_.pop_front();
    }
    Status written = Write(job.batch, job.options);
    post_([done = std::move(job.done), written = std::move(written)]() mutable {
      done(std::move(written));
    });
  }
}

Status LevelDbDisk::Get(std::string_view key, std::string* value) {
  MKS_ASSERT(value != nullptr);
  // LevelDB assigns *value only when it finds the key, so NotFound leaves
  // it unchanged; reading in place lets the caller reuse its capacity.
  const leveldb::Status status = db_->Get(CheckedReads(), ToSlice(key), value);
  if (status.IsNotFound()) return Status::NotFound("no such key");
  return FromLevelDb(status, "get");
}

Status LevelDbDisk::Put(std::string_view key, std::string_view value,
                        WriteOptions options) {
  return FromLevelDb(db_->Put(ToLevelDb(options), ToSlice(key), ToSlice(value)),
                     "put");
}

Status LevelDbDisk::Delete(std::string_view key, WriteOptions options) {
  return FromLevelDb(db_->Delete(ToLevelDb(options), ToSlice(key)), "delete");
}

Status LevelDbDisk::Write(const WriteBatch& batch, WriteOptions options) {
  leveldb::WriteBatch updates;
  for (const WriteBatch::Operation& operation : batch.operations()) {
    if (operation.is_delete) {
      MKS_ASSERT(operation.value.empty());
      updates.Delete(ToSlice(operation.key));
    } else {
      updates.Put(ToSlice(operation.key), ToSlice(operation.value));
    }
  }
  return FromLevelDb(db_->Write(ToLevelDb(options), &updates), "write");
}

std::unique_ptr<DiskIterator> LevelDbDisk::NewIterator() {
  return std::make_unique<LevelDbIterator>(
      std::unique_ptr<leveldb::Iterator>(db_->NewIterator(CheckedReads())));
}

Status LevelDbDisk::Sync() {
  // LevelDB has no fsync call of its own; a synced empty batch appends a
  // header-only log record and fsyncs the log, which holds every earlier write.
  leveldb::WriteBatch empty;
  leveldb::WriteOptions options;
  options.sync = true;
  return FromLevelDb(db_->Write(options, &empty), "sync");
}

}  // namespace mks::disk
