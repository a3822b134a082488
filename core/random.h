// Deterministic pseudo-random numbers.
//
// All randomness in my-key-store comes from Random instances derived from one
// seed. Splitting by stream name gives independent sequences, so adding a
// random draw in one component does not shift the numbers another component
// sees: a run stays comparable across small code changes. Production seeds
// the root from the operating system (in tools/); core never does.
#pragma once

#include <cstdint>
#include <string_view>

namespace mks {

class Random {
 public:
  // The same seed always yields the same sequence on every platform.
  explicit Random(uint64_t seed);

  // Returns the next 64 uniformly distributed bits.
  uint64_t Next64();

  // Returns a value uniform in [0, bound). Requires bound > 0. Unbiased.
  uint64_t Uniform(uint64_t bound);

  // Returns a value uniform in [low, high]. Requires low <= high.
  int64_t Range(int64_t low, int64_t high);

  // Returns true with probability parts_per_million / 1e6. Integer-only, so
  // the decision is identical on every platform.
  bool ChancePpm(uint32_t parts_per_million);

  // Returns an independent generator whose seed is a function of this
  // generator's seed and `stream_name` only (not of how many numbers this one
  // has produced).
  Random Split(std::string_view stream_name) const;

  uint64_t seed() const { return seed_; }

 private:
  uint64_t seed_;      // the seed this generator was built from
  uint64_t state_[4];  // xoshiro256** state; never all zero
};

// A stable 64-bit hash of bytes (FNV-1a followed by a finalizer), identical on
// every platform. Not for adversarial inputs.
uint64_t StableHash64(std::string_view bytes, uint64_t seed = 0);

}  // namespace mks
