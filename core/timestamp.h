// Timestamp: the hybrid logical clock value every version carries.
//
// A Timestamp is (physical_ms, logical): milliseconds of wall-clock time as
// the issuing node's hybrid logical clock saw it, plus a counter that orders
// events within one millisecond (and keeps order when the wall clock steps
// back). Timestamps are totally ordered, first by physical_ms, then by
// logical. The coordinator, the store and the wire messages all use this one
// type; ties between two nodes are broken by the origin node id, which is not
// part of the Timestamp (see core/store.h).
#pragma once

#include <compare>
#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>

namespace mks {

struct Timestamp {
  uint64_t physical_ms = 0;  // wall-clock milliseconds since the Unix epoch
  uint32_t logical = 0;      // orders events that share physical_ms

  friend constexpr auto operator<=>(const Timestamp&,
                                    const Timestamp&) = default;

  // The smallest timestamp; no event ever carries it (an HLC's first Now()
  // is already larger).
  static constexpr Timestamp Zero() { return Timestamp{}; }
};

// Size of the fixed-width encoding.
inline constexpr size_t kEncodedTimestampBytes = 12;

// Appends the 12-byte big-endian encoding of `timestamp` to *out. Encoded
// timestamps compare bytewise (memcmp) exactly as the timestamps compare, so
// they can sit inside ordered disk keys.
void EncodeTimestamp(Timestamp timestamp, std::string* out);

// Decodes the first 12 bytes of `bytes`. Returns nullopt when fewer than 12
// bytes are given. Every 12-byte string is a valid timestamp.
std::optional<Timestamp> DecodeTimestamp(std::string_view bytes);

// "1700000000123.4" (physical_ms.logical), for logs and assertion messages.
std::string ToString(Timestamp timestamp);
std::ostream& operator<<(std::ostream& out, Timestamp timestamp);

}  // namespace mks
