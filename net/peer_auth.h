// PeerAuth: the cluster secret's proof on every peer connection, with
// OpenSSL's HMAC-SHA256 and random numbers (no cryptography of our own).
//
// Handshake, per TCP connection (the connecting node A sends frames, the
// accepting node B only answers the handshake):
//   1. B sends a challenge: "MKSC" and 16 random bytes.
//   2. A answers with a hello: "MKSH", its node id (4 bytes, little-endian),
//      16 random bytes of its own, and HMAC(secret, "mks-hello" | challenge
//      | A's bytes | A's id), all 56 bytes.
//   3. B checks the hello. A wrong one (another secret, a replay of an old
//      connection's hello, which answers another challenge) gets a refusal,
//      "MKSR" and a reason, and the connection is closed; both sides log it.
//   4. Every frame A sends after the hello carries a tag: the first 16 bytes
//      of HMAC(session key, sequence number | frame), the session key being
//      HMAC(secret, "mks-session" | challenge | A's bytes). A frame whose tag
//      fails (forged, altered, replayed, reordered, or cut short) closes the
//      connection. The frame's sender must be the node the hello named.
// So a process without the secret can neither join nor gossip nor vote nor
// write to a replica, and a recorded connection cannot be replayed into a
// new one. Messages are authenticated, not encrypted (TLS is the next step).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/env.h"
#include "core/status.h"

namespace mks::net {

inline constexpr size_t kChallengeBytes = 4 + 16;
inline constexpr size_t kHelloBytes = 4 + 4 + 16 + 32;
inline constexpr size_t kTagBytes = 16;
inline constexpr std::string_view kChallengeMagic = "MKSC";
inline constexpr std::string_view kHelloMagic = "MKSH";
inline constexpr std::string_view kRefusalMagic = "MKSR";

// One direction's session: the key and the next frame's sequence number.
class PeerSession {
 public:
  PeerSession() = default;
  explicit PeerSession(std::string key) : key_(std::move(key)) {}
  // The tag of the next frame (and counts it).
  std::string NextTag(std::string_view frame);
  // Whether `tag` is the next frame's (and counts it when it is).
  bool CheckNextTag(std::string_view frame, std::string_view tag);

 private:
  std::string key_;
  uint64_t sequence_ = 0;
};

class PeerAuth {
 public:
  // The secret of a key file's contents: trailing whitespace stripped;
  // InvalidArgument when fewer than 16 bytes remain.
  static Result<PeerAuth> FromSecret(std::string secret);
  // Reads a key file. IOError when it cannot be read; InvalidArgument as
  // FromSecret.
  static Result<PeerAuth> FromFile(const std::string& path);

  // B's challenge for a new inbound connection.
  std::string NewChallenge() const;
  // A's hello answering `challenge` (kChallengeBytes, magic included), and
  // A's session. InvalidArgument for bytes that are no challenge.
  Result<std::string> Hello(std::string_view challenge, NodeId self, PeerSession* session) const;
  // B's check of `hello` against its `challenge`: the sender it names and
  // the session, or Unauthenticated-style InvalidArgument saying why.
  Result<NodeId> CheckHello(std::string_view challenge, std::string_view hello,
                            PeerSession* session) const;

 private:
  explicit PeerAuth(std::string secret) : secret_(std::move(secret)) {}
  std::string secret_;
};

// HMAC-SHA256 of `message` under `key` (32 bytes).
std::string HmacSha256(std::string_view key, std::string_view message);

}  // namespace mks::net
