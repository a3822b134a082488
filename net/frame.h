// The wire format of peer-to-peer messages: length-prefixed, checksummed
// frames over a TCP byte stream.
//
// A frame is a 16-byte header followed by the payload:
//
//   offset  size  field
//        0     4  magic 0x464B534D ("MSKF" little-endian), rejects strangers
//        4     4  sender NodeId
//        8     4  payload length in bytes
//       12     4  masked CRC32C of the bytes [4, 12) followed by the payload
//
// All integers are little-endian. The checksum covers the sender and the
// length as well as the payload, so a flipped bit anywhere but the magic is
// detected (a damaged magic is detected by itself). The CRC is masked as
// LevelDB masks its CRCs, so a frame embedded in a payload does not checksum
// to a constant.
//
// TCP already checksums segments, but its 16-bit sum misses real corruption
// (bad NICs, middleboxes, memory errors); DESIGN.md asks that corruption in
// transit become loss, never data.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/env.h"
#include "core/status.h"

namespace mks::net {

inline constexpr uint32_t kFrameMagic = 0x464B534D;
inline constexpr size_t kFrameHeaderBytes = 16;

// Appends one frame carrying `payload` from `sender` to *out.
// Requires payload.size() to fit in 32 bits (callers enforce their own,
// smaller maximum before encoding).
void AppendFrame(NodeId sender, std::string_view payload, std::string* out);

// One decoded frame.
struct Frame {
  NodeId sender = kNoNode;
  std::string payload;
  std::string trailer;  // the decoder's trailer_bytes after the payload
};

// Splits a byte stream into frames, incrementally: feed whatever bytes
// arrived, then pull frames until none is complete.
//
// Once Next() has returned an error the stream is unusable (frame boundaries
// are lost) and every later Next() returns the same error: the owner must
// drop the connection.
class FrameDecoder {
 public:
  // Frames whose declared payload exceeds `max_payload_bytes` are rejected
  // before their payload is buffered, so a hostile length cannot make the
  // decoder allocate without bound. Each frame is followed by
  // `trailer_bytes` of trailer (an authentication tag, net/peer_auth.h),
  // returned apart.
  explicit FrameDecoder(size_t max_payload_bytes, size_t trailer_bytes = 0);

  // Appends bytes received from the stream.
  void Feed(std::string_view bytes);

  // Returns the next complete frame, std::nullopt when more bytes are needed,
  // or Corruption when the stream holds a bad magic, an oversized length,
  // a zero sender or a checksum mismatch.
  Result<std::optional<Frame>> Next();

  // Bytes fed but not yet returned as frames.
  size_t buffered_bytes() const { return buffer_.size() - consumed_; }

 private:
  Status Fail(Status status);

  const size_t max_payload_bytes_;
  const size_t trailer_bytes_;
  // Invariant: consumed_ <= buffer_.size(); bytes before consumed_ belong to
  // frames already returned and are dropped lazily to keep Feed amortised
  // linear.
  std::string buffer_;
  size_t consumed_ = 0;
  Status error_;  // the first error; OK while the stream is healthy
};

}  // namespace mks::net
