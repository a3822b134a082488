#include "core/store.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <optional>
#include <ostream>
#include <utility>

#include "core/assertions.h"
#include "core/crc32c.h"

namespace mks {

namespace {

// Format 2: a 2-byte partition in the disk key and a varint header. Format 1
// (a 4-byte partition, a fixed 18-byte header) is not read: its records
// fail as Corruption ("unknown format 1"), never as data.
constexpr uint8_t kRecordFormat = 2;
constexpr uint8_t kTombstoneFlag = 0x01;
constexpr size_t kPartitionBytes = 2;
static_assert(kMaxStorePartitions == 1u << (8 * kPartitionBytes));
// format + flags, then physical_ms, logical and origin as varints (1 byte
// at least, 10, 5 and 5 at most).
constexpr size_t kFixedHeaderBytes = 2;
constexpr size_t kMinHeaderBytes = kFixedHeaderBytes + 3;
constexpr size_t kMaxHeaderBytes = kFixedHeaderBytes + 10 + 5 + 5;
constexpr size_t kChecksumBytes = 4;
// Garbage collection writes its deletions in batches of this many, so a
// pass over a large store never builds one huge batch.
constexpr size_t kGcBatchRecords = 1024;

// Writes `partition` big-endian at `out`, so partitions sort numerically.
void StorePartition(uint32_t partition, char* out) {
  MKS_ASSERT_LT(partition, kMaxStorePartitions);
  out[0] = static_cast<char>(partition >> 8);
  out[1] = static_cast<char>(partition & 0xff);
}

// Writes `value` big-endian at `out`; returns the byte after it.
char* StoreUint32(uint32_t value, char* out) {
  for (int shift = 24; shift >= 0; shift -= 8) {
    *out++ = static_cast<char>((value >> shift) & 0xff);
  }
  return out;
}

char* StoreUint64(uint64_t value, char* out) {
  out = StoreUint32(static_cast<uint32_t>(value >> 32), out);
  return StoreUint32(static_cast<uint32_t>(value), out);
}

uint32_t ReadUint32(std::string_view bytes, size_t offset) {
  uint32_t value = 0;
  for (size_t i = 0; i < 4; ++i) {
    value = (value << 8) | static_cast<uint8_t>(bytes[offset + i]);
  }
  return value;
}

// Bytes of `value` as a varint: 7 bits per byte, low groups first, the high
// bit set on every byte but the last (LevelDB's and Protobuf's encoding).
size_t VarintBytes(uint64_t value) {
  size_t bytes = 1;
  for (; value >= 0x80; value >>= 7) ++bytes;
  return bytes;
}

// Writes `value` as a varint at `out`; returns the byte after it.
char* StoreVarint(uint64_t value, char* out) {
  for (; value >= 0x80; value >>= 7) {
    *out++ = static_cast<char>((value & 0x7f) | 0x80);
  }
  *out++ = static_cast<char>(value);
  return out;
}

// Reads a varint of at most `max_bits` bits from the front of *input and
// drops it from *input. False (and *input untouched) when the input ends
// inside it, when it holds more bits than max_bits, or when it is longer
// than needed (a last byte of zero after the first): only the encoding
// StoreVarint writes is accepted, so a decoded record encodes back to the
// same bytes.
bool ReadVarint(std::string_view* input, unsigned max_bits, uint64_t* value) {
  MKS_ASSERT(max_bits == 32 || max_bits == 64);
  uint64_t result = 0;
  unsigned shift = 0;
  for (size_t i = 0; i < input->size(); ++i, shift += 7) {
    if (shift >= max_bits) return false;
    const auto byte = static_cast<uint8_t>((*input)[i]);
    const uint64_t bits = byte & 0x7f;
    if (max_bits - shift < 7 && (bits >> (max_bits - shift)) != 0) return false;
    result |= bits << shift;
    if ((byte & 0x80) != 0) continue;
    if (i > 0 && byte == 0) return false;
    *value = result;
    input->remove_prefix(i + 1);
    return true;
  }
  return false;
}

// The ceiling record: format | timestamp (fixed 12 bytes) | origin (4) |
// crc32c over the ceiling key and the bytes before the checksum. Written
// about once a second, so it keeps the fixed-width form.
constexpr size_t kCeilingBytes = 1 + kEncodedTimestampBytes + 4 + kChecksumBytes;
static_assert(kEncodedTimestampBytes == 8 + 4,
              "EncodeCeiling writes physical_ms then logical");
// How far above the newest stamp a written ceiling is set, in the stamps'
// physical milliseconds. The store rewrites the ceiling record only when a
// version passes it, so at most about once a second of HLC time; after a
// restart, versions up to this much newer than the last one written take the
// reading path until the first one passes the ceiling.
constexpr uint64_t kCeilingHeadroomMs = 1000;

std::string EncodeCeiling(std::string_view ceiling_key, Timestamp timestamp,
                          NodeId origin) {
  std::string out(kCeilingBytes, '\0');
  char* cursor = out.data();
  *cursor++ = static_cast<char>(kRecordFormat);
  cursor = StoreUint64(timestamp.physical_ms, cursor);
  cursor = StoreUint32(timestamp.logical, cursor);
  cursor = StoreUint32(origin, cursor);
  const size_t body_bytes = kCeilingBytes - kChecksumBytes;
  MKS_ASSERT_EQ(static_cast<size_t>(cursor - out.data()), body_bytes);
  StoreUint32(Crc32c(std::string_view(out).substr(0, body_bytes),
                     Crc32c(ceiling_key)),
              cursor);
  return out;
}

// Decodes a ceiling record into (*timestamp, *origin); false when it fails
// its checksum or is not one.
bool DecodeCeiling(std::string_view ceiling_key, std::string_view value,
                   Timestamp* timestamp, NodeId* origin) {
  if (value.size() != kCeilingBytes) return false;
  const size_t body_bytes = kCeilingBytes - kChecksumBytes;
  if (ReadUint32(value, body_bytes) !=
      Crc32c(value.substr(0, body_bytes), Crc32c(ceiling_key))) {
    return false;
  }
  if (static_cast<uint8_t>(value[0]) != kRecordFormat) return false;
  *timestamp = *DecodeTimestamp(value.substr(1));
  *origin = ReadUint32(value, 1 + kEncodedTimestampBytes);
  return true;
}

Status CorruptRecord(std::string_view user_key, const std::string& why) {
  return Status::Corruption("record for key '" +
                            EscapeKeyForMessage(user_key) + "': " + why);
}

}  // namespace

Version Version::Write(Timestamp timestamp, NodeId origin, std::string value) {
  return Version{timestamp, origin, false, std::move(value)};
}

Version Version::Tombstone(Timestamp timestamp, NodeId origin) {
  return Version{timestamp, origin, true, {}};
}

std::strong_ordering CompareVersions(const Version& a, const Version& b) {
  if (auto order = a.timestamp <=> b.timestamp; order != 0) return order;
  if (auto order = a.origin <=> b.origin; order != 0) return order;
  if (auto order = a.tombstone <=> b.tombstone; order != 0) return order;
  return a.value.compare(b.value) <=> 0;
}

std::ostream& operator<<(std::ostream& out, const Version& version) {
  out << "{" << version.timestamp << " from node " << version.origin;
  if (version.tombstone) return out << " tombstone}";
  return out << " value of " << version.value.size() << " bytes}";
}

std::string EscapeKeyForMessage(std::string_view key) {
  constexpr size_t kShownBytes = 64;
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < key.size() && i < kShownBytes; ++i) {
    const auto byte = static_cast<uint8_t>(key[i]);
    if (byte >= 0x20 && byte < 0x7f && byte != '\\' && byte != '\'') {
      out.push_back(static_cast<char>(byte));
    } else {
      out += "\\x";
      out.push_back(kHex[byte >> 4]);
      out.push_back(kHex[byte & 0xf]);
    }
  }
  if (key.size() > kShownBytes) {
    out += "...(" + std::to_string(key.size()) + " bytes)";
  }
  return out;
}

void EncodeRecordValueInto(std::string_view disk_key, const Version& version,
                           std::string* out) {
  MKS_ASSERT_NE(version.origin, kNoNode);
  MKS_ASSERT(!version.tombstone || version.value.empty());
  MKS_ASSERT(out != nullptr);
  const size_t header_bytes = kFixedHeaderBytes +
                              VarintBytes(version.timestamp.physical_ms) +
                              VarintBytes(version.timestamp.logical) +
                              VarintBytes(version.origin);
  MKS_ASSERT_LE(header_bytes, kMaxHeaderBytes);
  const size_t body_bytes = header_bytes + version.value.size();
  // Sized once and filled in place: the apply path encodes one record per
  // write, and a byte-by-byte append costs as much as the rest of it.
  out->resize(body_bytes + kChecksumBytes);
  char* const begin = out->data();
  char* cursor = begin;
  *cursor++ = static_cast<char>(kRecordFormat);
  *cursor++ = static_cast<char>(version.tombstone ? kTombstoneFlag : 0);
  cursor = StoreVarint(version.timestamp.physical_ms, cursor);
  cursor = StoreVarint(version.timestamp.logical, cursor);
  cursor = StoreVarint(version.origin, cursor);
  MKS_ASSERT_EQ(static_cast<size_t>(cursor - begin), header_bytes);
  if (!version.value.empty()) {
    std::memcpy(cursor, version.value.data(), version.value.size());
    cursor += version.value.size();
  }
  MKS_ASSERT_EQ(static_cast<size_t>(cursor - begin), body_bytes);
  StoreUint32(Crc32c(std::string_view(begin, body_bytes), Crc32c(disk_key)),
              cursor);
}

std::string EncodeRecordValue(std::string_view disk_key,
                              const Version& version) {
  std::string out;
  EncodeRecordValueInto(disk_key, version, &out);
  MKS_ASSERT_GE(out.size(),
                kMinHeaderBytes + version.value.size() + kChecksumBytes);
  MKS_ASSERT_LE(out.size(),
                kMaxHeaderBytes + version.value.size() + kChecksumBytes);
  return out;
}

Result<Version> DecodeRecordValue(std::string_view disk_key,
                                  std::string_view user_key,
                                  std::string_view disk_value) {
  if (disk_value.size() < kMinHeaderBytes + kChecksumBytes) {
    return CorruptRecord(user_key, "value of " +
                                       std::to_string(disk_value.size()) +
                                       " bytes is shorter than a record");
  }
  const size_t body_bytes = disk_value.size() - kChecksumBytes;
  const uint32_t stored_crc = ReadUint32(disk_value, body_bytes);
  const uint32_t actual_crc =
      Crc32c(disk_value.substr(0, body_bytes), Crc32c(disk_key));
  if (stored_crc != actual_crc) return CorruptRecord(user_key, "checksum mismatch");
  // The checksum matched, so what follows was written by EncodeRecordValue
  // (or by a format this build does not know).
  const auto format = static_cast<uint8_t>(disk_value[0]);
  if (format != kRecordFormat) {
    return CorruptRecord(user_key, "unknown format " + std::to_string(format));
  }
  const auto flags = static_cast<uint8_t>(disk_value[1]);
  if ((flags & ~kTombstoneFlag) != 0) {
    return CorruptRecord(user_key, "unknown flags " + std::to_string(flags));
  }
  std::string_view rest = disk_value.substr(kFixedHeaderBytes,
                                            body_bytes - kFixedHeaderBytes);
  uint64_t physical_ms = 0, logical = 0, origin = 0;
  if (!ReadVarint(&rest, 64, &physical_ms) || !ReadVarint(&rest, 32, &logical) ||
      !ReadVarint(&rest, 32, &origin)) {
    return CorruptRecord(user_key, "malformed header");
  }
  Version version;
  version.timestamp = Timestamp{physical_ms, static_cast<uint32_t>(logical)};
  version.origin = static_cast<NodeId>(origin);
  version.tombstone = (flags & kTombstoneFlag) != 0;
  version.value.assign(rest);
  if (version.origin == kNoNode || version.timestamp == Timestamp::Zero() ||
      (version.tombstone && !version.value.empty())) {
    return CorruptRecord(user_key, "malformed version");
  }
  MKS_ASSERT_LE(version.value.size(), body_bytes - kMinHeaderBytes);
  return version;
}

Store::Store(Disk* disk, Partitioner partitioner, StoreOptions options)
    : disk_(disk),
      partitioner_(std::move(partitioner)),
      options_(std::move(options)) {
  MKS_ASSERT(disk_ != nullptr);
  MKS_ASSERT(partitioner_ != nullptr);
  MKS_ASSERT(!options_.key_space.empty());
  MKS_ASSERT_GT(options_.max_key_bytes, 0u);
}

Status Store::ValidateKey(std::string_view key) const {
  if (key.empty()) return Status::InvalidArgument("empty key");
  if (key.size() > options_.max_key_bytes) {
    return Status::InvalidArgument(
        "key of " + std::to_string(key.size()) +
        " bytes exceeds the maximum of " +
        std::to_string(options_.max_key_bytes) + " bytes");
  }
  return Status::Ok();
}

Status Store::Validate(std::string_view key, const Version& version) const {
  MKS_RETURN_IF_ERROR(ValidateKey(key));
  if (version.value.size() > options_.max_value_bytes) {
    return Status::InvalidArgument(
        "value of " + std::to_string(version.value.size()) +
        " bytes for key '" + EscapeKeyForMessage(key) +
        "' exceeds the maximum of " +
        std::to_string(options_.max_value_bytes) + " bytes");
  }
  if (version.origin == kNoNode) {
    return Status::InvalidArgument("version without an origin node");
  }
  if (version.timestamp == Timestamp::Zero()) {
    return Status::InvalidArgument("version with a zero timestamp");
  }
  if (version.tombstone && !version.value.empty()) {
    return Status::InvalidArgument("tombstone with a value");
  }
  return Status::Ok();
}

uint32_t Store::PartitionOf(std::string_view key) const {
  return partitioner_(key);
}

std::string Store::PartitionPrefix(uint32_t partition) const {
  char stored[kPartitionBytes];
  StorePartition(partition, stored);
  std::string prefix = options_.key_space;
  prefix.append(stored, kPartitionBytes);
  MKS_ASSERT_EQ(prefix.size(), options_.key_space.size() + kPartitionBytes);
  return prefix;
}

void Store::DiskKeyInto(std::string_view key, std::string* out) const {
  MKS_ASSERT(out != nullptr);
  char partition[kPartitionBytes];
  StorePartition(partitioner_(key), partition);
  out->assign(options_.key_space);
  out->append(partition, kPartitionBytes);
  out->append(key);
  MKS_ASSERT_EQ(out->size(),
                options_.key_space.size() + kPartitionBytes + key.size());
}

std::string Store::DiskKey(std::string_view key) const {
  std::string disk_key;
  DiskKeyInto(key, &disk_key);
  return disk_key;
}

Result<Version> Store::ReadCurrent(std::string_view disk_key, bool repair) {
  Result<Version> current = ReadDiskKey(disk_key);
  // A damaged record's version is unknown; a repair carries what a majority
  // of the other replicas hold, which is all this replica can know.
  if (repair && current.status().IsCorruption()) {
    return Status::NotFound("damaged record, replaced by a repair");
  }
  return current;
}

Result<Version> Store::ReadDiskKey(std::string_view disk_key) {
  MKS_ASSERT_GT(disk_key.size(), options_.key_space.size() + kPartitionBytes);
  const std::string_view user_key =
      disk_key.substr(options_.key_space.size() + kPartitionBytes);
  Status read = disk_->Get(disk_key, &value_scratch_);
  if (read.IsCorruption()) return CorruptRecord(user_key, read.message());
  MKS_RETURN_IF_ERROR(read);
  return DecodeRecordValue(disk_key, user_key, value_scratch_);
}

Result<bool> Store::Apply(std::string_view key, const Version& version,
                          WriteOptions options, bool repair) {
  MKS_RETURN_IF_ERROR(Validate(key, version));
  MKS_RETURN_IF_ERROR(LoadCeiling());
  DiskKeyInto(key, &disk_key_scratch_);
  const Stamp stamp = StampOf(version);
  if (!NewerThanEverything(stamp)) {
    Result<Version> current = ReadCurrent(disk_key_scratch_, repair);
    if (!current.ok() && !current.status().IsNotFound()) return current.status();
    if (current.ok() && !Supersedes(version, *current)) {
      if (options.sync) MKS_RETURN_IF_ERROR(disk_->Sync());
      return false;
    }
    MKS_ASSERT(!current.ok() || Supersedes(version, *current));
  }
  EncodeRecordValueInto(disk_key_scratch_, version, &record_scratch_);
  Stamp raised;
  std::optional<std::string> ceiling = PrepareCeiling(stamp, &raised);
  if (!ceiling.has_value()) {
    MKS_RETURN_IF_ERROR(disk_->Put(disk_key_scratch_, record_scratch_, options));
    return true;
  }
  WriteBatch batch;
  batch.Put(options_.key_space, *ceiling);
  batch.Put(disk_key_scratch_, record_scratch_);
  MKS_RETURN_IF_ERROR(disk_->Write(batch, options));
  disk_ceiling_ = raised;
  return true;
}

Result<std::vector<bool>> Store::ApplyBatch(std::span<const Record> records,
                                            WriteOptions options) {
  Result<PreparedBatch> prepared = PrepareBatch(records);
  MKS_RETURN_IF_ERROR(prepared.status());
  Status written = Flush(&prepared->batch, options);
  FinishBatch(*prepared, written);
  MKS_RETURN_IF_ERROR(written);
  return std::move(prepared->changed);
}

Result<Store::PreparedBatch> Store::PrepareBatch(std::span<const Record> records) {
  for (const Record& record : records) {
    MKS_RETURN_IF_ERROR(Validate(record.key, record.version));
  }
  MKS_RETURN_IF_ERROR(LoadCeiling());
  // Every record's disk key, back to back in one buffer (one allocation
  // instead of one per record), and the records ordered by disk key, ties
  // in batch order, so each key's records form one run in batch order: one
  // read per key at most, and the batch is written in key order
  // (deterministic, and cheap for LevelDB's memtable).
  struct KeySlot {
    size_t offset;  // of the disk key in `disk_keys`
    size_t bytes;
    size_t index;  // of the record in `records`
  };
  std::string disk_keys;
  std::vector<KeySlot> order;
  order.reserve(records.size());
  for (size_t i = 0; i < records.size(); ++i) {
    DiskKeyInto(records[i].key, &disk_key_scratch_);
    order.push_back({disk_keys.size(), disk_key_scratch_.size(), i});
    disk_keys.append(disk_key_scratch_);
  }
  const auto disk_key_of = [&disk_keys](const KeySlot& slot) {
    return std::string_view(disk_keys).substr(slot.offset, slot.bytes);
  };
  std::sort(order.begin(), order.end(),
            [&disk_key_of](const KeySlot& a, const KeySlot& b) {
              const int order = disk_key_of(a).compare(disk_key_of(b));
              return order != 0 ? order < 0 : a.index < b.index;
            });
  std::vector<bool> changed(records.size(), false);
  // The winner to write for each key that changed, in key order.
  std::vector<std::pair<std::string_view, const Version*>> writes;
  writes.reserve(records.size());
  Stamp newest;
  for (size_t run = 0; run < order.size();) {
    const std::string_view disk_key = disk_key_of(order[run]);
    // The run's first record supersedes whatever is stored when it is newer
    // than everything; otherwise the stored version must be read.
    Result<Version> current = Status::NotFound("not read");
    const Record& first = records[order[run].index];
    if (!NewerThanEverything(StampOf(first.version))) {
      current = ReadCurrent(disk_key, first.repair);
      if (!current.ok() && !current.status().IsNotFound()) return current.status();
    }
    const Version* const stored = current.ok() ? &current.value() : nullptr;
    const Version* winner = stored;
    bool key_changed = false;
    for (; run < order.size() && disk_key_of(order[run]) == disk_key; ++run) {
      const Version& candidate = records[order[run].index].version;
      if (winner == nullptr || Supersedes(candidate, *winner)) {
        winner = &candidate;
        changed[order[run].index] = true;
        key_changed = true;
      }
    }
    MKS_ASSERT(!key_changed || winner != nullptr);
    if (key_changed) {
      // A changed key's winner is one of the batch's records, never the
      // stored version (which dies with this iteration).
      MKS_ASSERT(winner != stored);
      writes.emplace_back(disk_key, winner);
      newest = std::max(newest, StampOf(*winner));
    }
  }
  MKS_ASSERT_LE(writes.size(), records.size());
  MKS_ASSERT_EQ(changed.size(), records.size());
  PreparedBatch prepared;
  Stamp raised;
  std::optional<std::string> ceiling;
  if (!writes.empty()) ceiling = PrepareCeiling(newest, &raised);
  // The ceiling key is the key space itself, below every record's key.
  if (ceiling.has_value()) {
    prepared.batch.Put(options_.key_space, *ceiling);
    prepared.raises_ceiling_ = true;
    prepared.ceiling_timestamp_ = raised.timestamp;
    prepared.ceiling_origin_ = raised.origin;
  }
  for (const auto& [disk_key, winner] : writes) {
    EncodeRecordValueInto(disk_key, *winner, &record_scratch_);
    prepared.batch.Put(disk_key, record_scratch_);
  }
  prepared.changed = std::move(changed);
  MKS_ASSERT_EQ(prepared.batch.size(), writes.size() + (ceiling.has_value() ? 1 : 0));
  return prepared;
}

void Store::FinishBatch(const PreparedBatch& prepared, const Status& written) {
  MKS_ASSERT(!prepared.raises_ceiling_ || ceiling_state_ == CeilingState::kKnown);
  // A failed write may still have landed, and the in-memory ceiling already
  // covers it; only the ceiling known to be on disk must stay as it was.
  if (!written.ok() || !prepared.raises_ceiling_) return;
  const Stamp raised{prepared.ceiling_timestamp_, prepared.ceiling_origin_};
  MKS_ASSERT(raised >= disk_ceiling_);
  disk_ceiling_ = raised;
}

Status Store::LoadCeiling() {
  if (ceiling_state_ != CeilingState::kUnread) return Status::Ok();
  std::string value;
  const Status read = disk_->Get(options_.key_space, &value);
  if (read.ok() || read.IsCorruption()) {
    Stamp stamp;
    if (read.ok() && DecodeCeiling(options_.key_space, value, &stamp.timestamp,
                                   &stamp.origin)) {
      SetCeilingKnown(stamp, stamp);
      return Status::Ok();
    }
    // Damaged. Deleted before anything else is written, so that no later
    // store trusts it should it ever read back whole (a transient error, a
    // bit flipped back) after records it never saw passed it. Every apply
    // reads until CollectGarbage rebuilds it.
    MKS_RETURN_IF_ERROR(disk_->Delete(options_.key_space, WriteOptions{}));
    ceiling_state_ = CeilingState::kUnknown;
    return Status::Ok();
  }
  if (!read.IsNotFound()) return read;
  // No ceiling record: either the key space is empty (nothing to exceed)
  // or it was written without ceilings, and only a full scan can tell.
  std::unique_ptr<DiskIterator> it = disk_->NewIterator();
  MKS_ASSERT(it != nullptr);
  it->Seek(options_.key_space);
  const bool has_records =
      it->Valid() && it->key().starts_with(options_.key_space);
  MKS_RETURN_IF_ERROR(it->status());
  if (has_records) {
    ceiling_state_ = CeilingState::kUnknown;
  } else {
    SetCeilingKnown(Stamp{}, Stamp{});
  }
  return Status::Ok();
}

void Store::SetCeilingKnown(Stamp in_memory, Stamp on_disk) {
  MKS_ASSERT(in_memory <= on_disk);
  ceiling_state_ = CeilingState::kKnown;
  ceiling_ = in_memory;
  disk_ceiling_ = on_disk;
}

bool Store::NewerThanEverything(Stamp stamp) const {
  return ceiling_state_ == CeilingState::kKnown && stamp > ceiling_;
}

std::optional<std::string> Store::PrepareCeiling(Stamp newest, Stamp* raised) {
  MKS_ASSERT(raised != nullptr);
  MKS_ASSERT_NE(ceiling_state_, CeilingState::kUnread);
  if (ceiling_state_ != CeilingState::kKnown) return std::nullopt;
  // Raised before the write, whatever its outcome: a failed write may still
  // have landed, and a ceiling too high only costs a read.
  ceiling_ = std::max(ceiling_, newest);
  // The disk's ceiling must cover ceiling_, not only `newest`: after a
  // failed write, ceiling_ covers a record that may be on disk.
  if (ceiling_ <= disk_ceiling_) return std::nullopt;
  const uint64_t physical_ms = ceiling_.timestamp.physical_ms;
  const uint64_t headroom_ms = std::min(
      kCeilingHeadroomMs, std::numeric_limits<uint64_t>::max() - physical_ms);
  *raised = std::max(Stamp{Timestamp{physical_ms + headroom_ms, 0}, kNoNode},
                     ceiling_);
  MKS_ASSERT(*raised >= newest);
  MKS_ASSERT(*raised >= ceiling_);
  return EncodeCeiling(options_.key_space, raised->timestamp, raised->origin);
}

Status Store::Flush(WriteBatch* batch, WriteOptions options) {
  if (batch->empty()) return options.sync ? disk_->Sync() : Status::Ok();
  MKS_RETURN_IF_ERROR(disk_->Write(*batch, options));
  batch->Clear();
  return Status::Ok();
}

Result<Version> Store::Get(std::string_view key) {
  MKS_RETURN_IF_ERROR(ValidateKey(key));
  Result<Version> version = ReadDiskKey(DiskKey(key));
  if (version.status().IsNotFound()) {
    return Status::NotFound("key '" + EscapeKeyForMessage(key) + "'");
  }
  return version;
}

Result<std::string> Store::GetLive(std::string_view key) {
  Result<Version> version = Get(key);
  if (!version.ok()) return version.status();
  if (version->tombstone) {
    return Status::NotFound("key '" + EscapeKeyForMessage(key) +
                            "' is deleted");
  }
  return std::move(version->value);
}

Status Store::ForEachInPartition(uint32_t partition,
                                 const RecordVisitor& visitor) {
  const std::string prefix = PartitionPrefix(partition);
  std::unique_ptr<DiskIterator> it = disk_->NewIterator();
  MKS_ASSERT(it != nullptr);
  for (it->Seek(prefix); it->Valid(); it->Next()) {
    const std::string_view disk_key = it->key();
    if (!disk_key.starts_with(prefix)) break;
    MKS_ASSERT_GT(disk_key.size(), prefix.size());
    const std::string_view user_key = disk_key.substr(prefix.size());
    Result<Version> version = DecodeRecordValue(disk_key, user_key, it->value());
    if (!version.ok()) return version.status();
    MKS_ASSERT_LE(user_key.size(), options_.max_key_bytes);
    if (!visitor(user_key, *version)) return Status::Ok();
  }
  return it->status();
}

Result<Store::PartitionBatch> Store::ScanPartition(uint32_t partition, bool from_start,
                                                   std::string_view after_key,
                                                   size_t max_records, uint64_t max_bytes) {
  MKS_ASSERT_GE(max_records, 1u);
  const std::string prefix = PartitionPrefix(partition);
  PartitionBatch batch;
  std::unique_ptr<DiskIterator> it = disk_->NewIterator();
  MKS_ASSERT(it != nullptr);
  std::string start = prefix;
  if (!from_start) {
    start += after_key;
    start.push_back('\0');  // the smallest key after after_key
  }
  it->Seek(start);
  batch.done = true;
  for (; it->Valid(); it->Next()) {
    const std::string_view disk_key = it->key();
    if (!disk_key.starts_with(prefix)) break;
    if (batch.records.size() >= max_records || (batch.bytes >= max_bytes && !batch.records.empty())) {
      batch.done = false;
      break;
    }
    const std::string_view user_key = disk_key.substr(prefix.size());
    Result<Version> version = DecodeRecordValue(disk_key, user_key, it->value());
    batch.last_key = std::string(user_key);
    if (!version.ok()) {
      batch.damaged.emplace_back(user_key);
      continue;
    }
    batch.bytes += user_key.size() + version->value.size();
    batch.records.push_back(Record{std::string(user_key), std::move(*version), false});
  }
  MKS_RETURN_IF_ERROR(it->status());
  return batch;
}

Status Store::RemoveKeys(std::span<const std::string> keys, WriteOptions options) {
  WriteBatch batch;
  for (const std::string& key : keys) {
    MKS_RETURN_IF_ERROR(ValidateKey(key));
    batch.Delete(DiskKey(key));
  }
  if (batch.size() == 0) return Status::Ok();
  return disk_->Write(batch, options);
}

Result<bool> Store::HoldsRecords() {
  const std::string& prefix = options_.key_space;
  std::unique_ptr<DiskIterator> it = disk_->NewIterator();
  MKS_ASSERT(it != nullptr);
  // The ceiling's key is the key space itself; every record's is longer.
  it->Seek(prefix + std::string(1, '\0'));
  const bool holds = it->Valid() && it->key().starts_with(prefix);
  MKS_RETURN_IF_ERROR(it->status());
  return holds;
}

Result<GcStats> Store::CollectGarbage(uint64_t now_ms, WriteOptions options) {
  GcStats stats;
  WriteBatch batch;
  Stamp newest;  // over every record scanned
  std::unique_ptr<DiskIterator> it = disk_->NewIterator();
  MKS_ASSERT(it != nullptr);
  const std::string& prefix = options_.key_space;
  for (it->Seek(prefix); it->Valid(); it->Next()) {
    const std::string_view disk_key = it->key();
    if (!disk_key.starts_with(prefix)) break;
    if (disk_key.size() == prefix.size()) continue;  // the stamp ceiling
    ++stats.records_scanned;
    const std::string_view user_key =
        disk_key.substr(std::min(disk_key.size(), prefix.size() + kPartitionBytes));
    Result<Version> version = DecodeRecordValue(disk_key, user_key, it->value());
    if (!version.ok()) {
      ++stats.corrupt_records;
      continue;
    }
    newest = std::max(newest, StampOf(*version));
    if (!version->tombstone) continue;
    const uint64_t stamp_ms = version->timestamp.physical_ms;
    if (now_ms > stamp_ms && now_ms - stamp_ms > options_.tombstone_grace_ms) {
      batch.Delete(disk_key);
      ++stats.tombstones_dropped;
      if (batch.size() >= kGcBatchRecords) {
        MKS_RETURN_IF_ERROR(Flush(&batch, options));
      }
    } else {
      ++stats.tombstones_kept;
    }
  }
  MKS_RETURN_IF_ERROR(it->status());
  MKS_RETURN_IF_ERROR(Flush(&batch, options));
  MKS_ASSERT_LE(stats.tombstones_dropped + stats.tombstones_kept +
                    stats.corrupt_records,
                stats.records_scanned);
  // The scan saw every record, so when none was corrupt (a corrupt one's
  // stamp is unknown) it can rebuild a missing or damaged ceiling.
  if (ceiling_state_ == CeilingState::kUnknown && stats.corrupt_records == 0) {
    ceiling_state_ = CeilingState::kKnown;
    ceiling_ = newest;
    disk_ceiling_ = Stamp{};
    Stamp raised;
    std::optional<std::string> ceiling = PrepareCeiling(newest, &raised);
    if (ceiling.has_value()) {
      batch.Put(options_.key_space, *ceiling);
      const Status written = Flush(&batch, options);
      if (!written.ok()) {
        ceiling_state_ = CeilingState::kUnknown;
        return written;
      }
      disk_ceiling_ = raised;
    }
  }
  return stats;
}

Result<bool> Store::RemoveIfDamaged(std::string_view key, WriteOptions options) {
  MKS_RETURN_IF_ERROR(ValidateKey(key));
  const std::string disk_key = DiskKey(key);
  const Result<Version> current = ReadDiskKey(disk_key);
  if (current.ok() || current.status().IsNotFound()) return false;
  if (!current.status().IsCorruption()) return current.status();
  MKS_RETURN_IF_ERROR(disk_->Delete(disk_key, options));
  return true;
}

Status Store::CheckCeiling() {
  std::string value;
  const Status read = disk_->Get(options_.key_space, &value);
  if (read.IsNotFound() || read.IsCorruption()) return Status::Ok();
  MKS_RETURN_IF_ERROR(read);
  Stamp ceiling;
  if (!DecodeCeiling(options_.key_space, value, &ceiling.timestamp, &ceiling.origin)) {
    return Status::Ok();  // damaged: LoadCeiling drops it, applies then read
  }
  std::unique_ptr<DiskIterator> it = disk_->NewIterator();
  MKS_ASSERT(it != nullptr);
  const std::string& prefix = options_.key_space;
  for (it->Seek(prefix); it->Valid(); it->Next()) {
    const std::string_view disk_key = it->key();
    if (!disk_key.starts_with(prefix)) break;
    if (disk_key.size() <= prefix.size() + kPartitionBytes) continue;  // the ceiling
    const std::string_view user_key = disk_key.substr(prefix.size() + kPartitionBytes);
    const Result<Version> version = DecodeRecordValue(disk_key, user_key, it->value());
    if (!version.ok()) continue;
    if (StampOf(*version) <= ceiling) continue;
    return Status::Corruption(
        "record for key '" + EscapeKeyForMessage(user_key) + "' is stamped " +
        ToString(version->timestamp) + "@" + std::to_string(version->origin) +
        ", above the stamp ceiling " + ToString(ceiling.timestamp) + "@" +
        std::to_string(ceiling.origin));
  }
  return it->status();
}

Status Store::Remove(std::string_view key, WriteOptions options) {
  MKS_RETURN_IF_ERROR(ValidateKey(key));
  return disk_->Delete(DiskKey(key), options);
}

Status Store::Sync() { return disk_->Sync(); }

}  // namespace mks
