#include "net/peer_auth.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <fstream>
#include <sstream>

#include "core/assertions.h"

namespace mks::net {
namespace {

constexpr size_t kNonceBytes = 16;
constexpr size_t kMinSecretBytes = 16;

std::string RandomBytes(size_t count) {
  std::string out(count, '\0');
  // OpenSSL's CSPRNG; failing to seed it leaves nothing safe to do.
  MKS_ASSERT_EQ(RAND_bytes(reinterpret_cast<unsigned char*>(out.data()),
                           static_cast<int>(count)), 1);
  return out;
}

std::string Fixed32(uint32_t value) {
  std::string out(4, '\0');
  for (int i = 0; i < 4; ++i) out[static_cast<size_t>(i)] = static_cast<char>(value >> (8 * i));
  return out;
}

uint32_t ReadFixed32(std::string_view bytes) {
  uint32_t value = 0;
  for (int i = 3; i >= 0; --i) value = (value << 8) | static_cast<uint8_t>(bytes[static_cast<size_t>(i)]);
  return value;
}

bool SameBytes(std::string_view a, std::string_view b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace

std::string HmacSha256(std::string_view key, std::string_view message) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  MKS_ASSERT(HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
                  reinterpret_cast<const unsigned char*>(message.data()), message.size(),
                  digest, &length) != nullptr);
  MKS_ASSERT_EQ(length, 32u);
  return std::string(reinterpret_cast<const char*>(digest), length);
}

std::string PeerSession::NextTag(std::string_view frame) {
  MKS_ASSERT(!key_.empty());
  std::string message = Fixed32(static_cast<uint32_t>(sequence_)) +
                        Fixed32(static_cast<uint32_t>(sequence_ >> 32));
  message.append(frame);
  ++sequence_;
  return HmacSha256(key_, message).substr(0, kTagBytes);
}

bool PeerSession::CheckNextTag(std::string_view frame, std::string_view tag) {
  MKS_ASSERT(!key_.empty());
  std::string message = Fixed32(static_cast<uint32_t>(sequence_)) +
                        Fixed32(static_cast<uint32_t>(sequence_ >> 32));
  message.append(frame);
  if (!SameBytes(HmacSha256(key_, message).substr(0, kTagBytes), tag)) return false;
  ++sequence_;
  return true;
}

Result<PeerAuth> PeerAuth::FromSecret(std::string secret) {
  while (!secret.empty() && (secret.back() == '\n' || secret.back() == '\r' ||
                             secret.back() == ' ' || secret.back() == '\t')) {
    secret.pop_back();
  }
  if (secret.size() < kMinSecretBytes) {
    return Status::InvalidArgument("the cluster secret must hold at least " +
                                   std::to_string(kMinSecretBytes) + " bytes, not " +
                                   std::to_string(secret.size()));
  }
  return PeerAuth(std::move(secret));
}

Result<PeerAuth> PeerAuth::FromFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::IOError("cannot read the secret file " + path);
  std::stringstream text;
  text << in.rdbuf();
  Result<PeerAuth> auth = FromSecret(text.str());
  if (!auth.ok()) return Status::InvalidArgument(path + ": " + auth.status().message());
  return auth;
}

std::string PeerAuth::NewChallenge() const {
  std::string challenge(kChallengeMagic);
  challenge += RandomBytes(kNonceBytes);
  MKS_ASSERT_EQ(challenge.size(), kChallengeBytes);
  return challenge;
}

Result<std::string> PeerAuth::Hello(std::string_view challenge, NodeId self,
                                    PeerSession* session) const {
  MKS_ASSERT(session != nullptr);
  if (challenge.size() != kChallengeBytes || !challenge.starts_with(kChallengeMagic)) {
    return Status::InvalidArgument("the peer sent no challenge (not an mks node, or one "
                                   "without a cluster secret)");
  }
  const std::string nonce = RandomBytes(kNonceBytes);
  const std::string id = Fixed32(self);
  std::string hello(kHelloMagic);
  hello += id;
  hello += nonce;
  hello += HmacSha256(secret_, "mks-hello" + std::string(challenge) + nonce + id);
  *session = PeerSession(HmacSha256(secret_, "mks-session" + std::string(challenge) + nonce));
  MKS_ASSERT_EQ(hello.size(), kHelloBytes);
  return hello;
}

Result<NodeId> PeerAuth::CheckHello(std::string_view challenge, std::string_view hello,
                                    PeerSession* session) const {
  MKS_ASSERT(session != nullptr);
  MKS_ASSERT_EQ(challenge.size(), kChallengeBytes);
  if (hello.size() != kHelloBytes || !hello.starts_with(kHelloMagic)) {
    return Status::InvalidArgument("no authentication hello (a peer without the cluster "
                                   "secret, or not an mks node)");
  }
  const std::string_view id = hello.substr(4, 4);
  const std::string_view nonce = hello.substr(8, kNonceBytes);
  const std::string_view tag = hello.substr(8 + kNonceBytes);
  const std::string expected = HmacSha256(
      secret_, "mks-hello" + std::string(challenge) + std::string(nonce) + std::string(id));
  if (!SameBytes(expected, tag)) {
    return Status::InvalidArgument("authentication failed: the peer does not hold this "
                                   "cluster's secret");
  }
  const NodeId sender = ReadFixed32(id);
  if (sender == kNoNode) return Status::InvalidArgument("authenticated hello from node 0");
  *session = PeerSession(HmacSha256(
      secret_, "mks-session" + std::string(challenge) + std::string(nonce)));
  return sender;
}

}  // namespace mks::net
