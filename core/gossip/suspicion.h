// Lifeguard's dynamic suspicion, in integer arithmetic.
//
// A suspected member is declared dead when its suspicion times out. The
// timeout starts at `max` and shrinks toward `min` as independent
// confirmations arrive (other nodes suspecting the same incarnation), by
//   timeout(c) = max(min, max - (max - min) * log(c + 1) / log(k + 1))
// where k is the number of confirmations expected (suspicion_mult - 2, or
// 0 in a cluster too small to give them, when the timeout is min at once).
// min = suspicion_mult * max(1, log10(n)) * probe_interval, as memberlist
// computes it, and max = suspicion_max_mult * min. A lone prober's mistake
// (its own network, its own pause) thus takes the long timeout, in which
// the member hears of the suspicion and refutes it; a member that really
// died is confirmed by many and declared dead near min.
//
// The logarithms are fixed-point integers (1/1024 units), so every platform
// computes the same timeouts: the simulator's determinism needs that.
#pragma once

#include <cstdint>

namespace mks::gossip {

// log2(x) in 1/1024 units, rounded down; Log2Fixed(1) == 0. Requires x >= 1.
uint64_t Log2Fixed(uint64_t x);

struct SuspicionTimeouts {
  int64_t min_ns = 0;
  int64_t max_ns = 0;
  uint32_t expected_confirmations = 0;  // k
};

// The bounds for a cluster of `members` (alive and suspect, self included).
// Requires members >= 1, suspicion_mult >= 1, max_mult >= 1.
SuspicionTimeouts ComputeSuspicionTimeouts(uint64_t members,
                                           int64_t probe_interval_ns,
                                           uint32_t suspicion_mult,
                                           uint32_t max_mult);

// How long a suspicion with `confirmations` independent confirmations
// lasts, from its start: between min_ns and max_ns, never increasing with
// more confirmations.
int64_t SuspicionTimeout(const SuspicionTimeouts& bounds, uint32_t confirmations);

}  // namespace mks::gossip
