#include "net/frame.h"

#include "core/assertions.h"
#include "core/crc32c.h"

namespace mks::net {
namespace {

constexpr uint32_t kCrcMaskDelta = 0xA282EAD8;

// Rotates and offsets the CRC, as LevelDB's crc32c::Mask does.
uint32_t MaskCrc(uint32_t crc) {
  return ((crc >> 15) | (crc << 17)) + kCrcMaskDelta;
}

void AppendFixed32(uint32_t value, std::string* out) {
  for (int shift = 0; shift < 32; shift += 8) {
    out->push_back(static_cast<char>((value >> shift) & 0xFF));
  }
}

uint32_t DecodeFixed32(const char* bytes) {
  uint32_t value = 0;
  for (int index = 3; index >= 0; --index) {
    value = (value << 8) | static_cast<uint8_t>(bytes[index]);
  }
  return value;
}

// The checksum of a frame: its sender and length fields, then the payload.
uint32_t FrameChecksum(std::string_view sender_and_length,
                       std::string_view payload) {
  MKS_ASSERT_EQ(sender_and_length.size(), 8u);
  return MaskCrc(Crc32c(payload, Crc32c(sender_and_length)));
}

}  // namespace

void AppendFrame(NodeId sender, std::string_view payload, std::string* out) {
  MKS_ASSERT_NE(sender, kNoNode);
  MKS_ASSERT_LE(payload.size(), size_t{UINT32_MAX});
  const size_t start = out->size();
  out->reserve(start + kFrameHeaderBytes + payload.size());
  AppendFixed32(kFrameMagic, out);
  AppendFixed32(sender, out);
  AppendFixed32(static_cast<uint32_t>(payload.size()), out);
  const std::string_view fields(out->data() + start + 4, 8);
  AppendFixed32(FrameChecksum(fields, payload), out);
  out->append(payload);
  MKS_ASSERT_EQ(out->size(), start + kFrameHeaderBytes + payload.size());
}

FrameDecoder::FrameDecoder(size_t max_payload_bytes, size_t trailer_bytes)
    : max_payload_bytes_(max_payload_bytes), trailer_bytes_(trailer_bytes) {
  MKS_ASSERT_GT(max_payload_bytes, 0u);
  MKS_ASSERT_LE(max_payload_bytes, size_t{UINT32_MAX});
}

void FrameDecoder::Feed(std::string_view bytes) {
  if (!error_.ok()) return;  // the stream is dead; keep no more of it
  if (consumed_ > 0 && consumed_ >= buffer_.size() / 2) {
    buffer_.erase(0, consumed_);
    consumed_ = 0;
  }
  buffer_.append(bytes);
}

Status FrameDecoder::Fail(Status status) {
  MKS_ASSERT(!status.ok());
  error_ = std::move(status);
  buffer_.clear();
  consumed_ = 0;
  return error_;
}

Result<std::optional<Frame>> FrameDecoder::Next() {
  if (!error_.ok()) return error_;
  MKS_ASSERT_LE(consumed_, buffer_.size());
  const size_t available = buffer_.size() - consumed_;
  if (available < kFrameHeaderBytes) return std::optional<Frame>();
  const char* header = buffer_.data() + consumed_;
  const uint32_t magic = DecodeFixed32(header);
  if (magic != kFrameMagic) return Fail(Status::Corruption("bad frame magic"));
  const uint32_t sender = DecodeFixed32(header + 4);
  const uint32_t length = DecodeFixed32(header + 8);
  if (length > max_payload_bytes_) {
    return Fail(Status::Corruption("frame of " + std::to_string(length) +
                                   " bytes exceeds the maximum of " +
                                   std::to_string(max_payload_bytes_)));
  }
  if (sender == kNoNode) return Fail(Status::Corruption("frame from node 0"));
  if (available < kFrameHeaderBytes + length + trailer_bytes_) return std::optional<Frame>();
  const std::string_view payload(header + kFrameHeaderBytes, length);
  const uint32_t expected = DecodeFixed32(header + 12);
  if (FrameChecksum(std::string_view(header + 4, 8), payload) != expected) {
    return Fail(Status::Corruption("frame checksum mismatch"));
  }
  Frame frame{sender, std::string(payload),
              std::string(header + kFrameHeaderBytes + length, trailer_bytes_)};
  consumed_ += kFrameHeaderBytes + length + trailer_bytes_;
  MKS_ASSERT_LE(consumed_, buffer_.size());
  return std::optional<Frame>(std::move(frame));
}

}  // namespace mks::net
