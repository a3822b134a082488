#include "core/random.h"

#include "core/assertions.h"

namespace mks {
namespace {

uint64_t SplitMix64(uint64_t& x) {
  x += 0x9e3779b97f4a7c15ULL;
  uint64_t z = x;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

uint64_t RotateLeft(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

}  // namespace

Random::Random(uint64_t seed) : seed_(seed) {
  uint64_t x = seed;
  for (uint64_t& word : state_) word = SplitMix64(x);
  MKS_ASSERT((state_[0] | state_[1] | state_[2] | state_[3]) != 0);
}

uint64_t Random::Next64() {
  const uint64_t result = RotateLeft(state_[1] * 5, 7) * 9;
  const uint64_t t = state_[1] << 17;
  state_[2] ^= state_[0];
  state_[3] ^= state_[1];
  state_[1] ^= state_[2];
  state_[0] ^= state_[3];
  state_[2] ^= t;
  state_[3] = RotateLeft(state_[3], 45);
  return result;
}

uint64_t Random::Uniform(uint64_t bound) {
  MKS_ASSERT_GT(bound, 0u);
  // Rejection sampling keeps the distribution exactly uniform.
  const uint64_t limit = UINT64_MAX - UINT64_MAX % bound;
  uint64_t draw = Next64();
  while (draw >= limit) draw = Next64();
  return draw % bound;
}

int64_t Random::Range(int64_t low, int64_t high) {
  MKS_ASSERT_LE(low, high);
  const uint64_t span = static_cast<uint64_t>(high) - static_cast<uint64_t>(low);
  if (span == UINT64_MAX) return static_cast<int64_t>(Next64());
  return static_cast<int64_t>(static_cast<uint64_t>(low) + Uniform(span + 1));
}

bool Random::ChancePpm(uint32_t parts_per_million) {
  MKS_ASSERT_LE(parts_per_million, 1000000u);
  return Uniform(1000000) < parts_per_million;
}

Random Random::Split(std::string_view stream_name) const {
  return Random(StableHash64(stream_name, seed_ ^ 0x6a09e667f3bcc908ULL));
}

uint64_t StableHash64(std::string_view bytes, uint64_t seed) {
  uint64_t hash = 0xcbf29ce484222325ULL ^ seed;
  for (unsigned char byte : bytes) {
    hash ^= byte;
    hash *= 0x100000001b3ULL;
  }
  // FNV-1a alone mixes the high bits poorly; finish with SplitMix64.
  return SplitMix64(hash);
}

}  // namespace mks
