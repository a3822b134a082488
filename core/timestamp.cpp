#include "core/timestamp.h"

#include "core/assertions.h"

namespace mks {

namespace {

void AppendBigEndian(uint64_t value, int bytes, std::string* out) {
  for (int shift = (bytes - 1) * 8; shift >= 0; shift -= 8) {
    out->push_back(static_cast<char>((value >> shift) & 0xff));
  }
}

uint64_t ReadBigEndian(std::string_view bytes, size_t offset, int count) {
  uint64_t value = 0;
  for (int i = 0; i < count; ++i) {
    value = (value << 8) | static_cast<uint8_t>(bytes[offset + i]);
  }
  return value;
}

}  // namespace

void EncodeTimestamp(Timestamp timestamp, std::string* out) {
  MKS_ASSERT(out != nullptr);
  const size_t size_before = out->size();
  AppendBigEndian(timestamp.physical_ms, 8, out);
  AppendBigEndian(timestamp.logical, 4, out);
  MKS_ASSERT_EQ(out->size() - size_before, kEncodedTimestampBytes);
}

std::optional<Timestamp> DecodeTimestamp(std::string_view bytes) {
  if (bytes.size() < kEncodedTimestampBytes) return std::nullopt;
  Timestamp timestamp;
  timestamp.physical_ms = ReadBigEndian(bytes, 0, 8);
  timestamp.logical = static_cast<uint32_t>(ReadBigEndian(bytes, 8, 4));
  return timestamp;
}

std::string ToString(Timestamp timestamp) {
  return std::to_string(timestamp.physical_ms) + "." +
         std::to_string(timestamp.logical);
}

std::ostream& operator<<(std::ostream& out, Timestamp timestamp) {
  return out << ToString(timestamp);
}

}  // namespace mks
