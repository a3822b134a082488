// HybridLogicalClock: monotonic, causally consistent timestamps from a
// wall clock that may be skewed, drift, or step backwards.
//
// The clock keeps the largest timestamp it has issued or seen. Now() returns
// a timestamp strictly greater than every earlier one: its physical part is
// the wall clock in milliseconds when that is ahead, otherwise the previous
// physical part with the logical counter bumped. Update(remote) folds in a
// timestamp received from another node, so anything this node does after
// receiving a message is ordered after the sender's event (causality).
//
// Protection against a wild clock: a remote timestamp whose physical part is
// more than max_offset_ms ahead of this node's own wall clock is refused and
// counted, never adopted. Without this, one node whose clock jumped a year
// ahead would drag every clock it talks to a year ahead, and its writes would
// win every conflict for a year.
//
// Not thread-safe; owned by the node's scheduler thread, like all of core.
#pragma once

#include <cstdint>

#include "core/env.h"
#include "core/status.h"
#include "core/timestamp.h"

namespace mks {

struct HlcOptions {
  // How far (in milliseconds) a received timestamp may be ahead of the local
  // wall clock before it is refused. Must exceed the clock skew the cluster
  // tolerates; 500 ms is generous for NTP-disciplined machines.
  uint64_t max_offset_ms = 500;
};

struct HlcStats {
  uint64_t local_events = 0;      // calls to Now()
  uint64_t remote_updates = 0;    // accepted Update() calls
  uint64_t remote_rejections = 0; // Update() calls refused for max offset
  uint64_t backward_steps = 0;    // Now() found the wall clock behind the HLC
};

class HybridLogicalClock {
 public:
  // `clock` must outlive this object. Requires clock != nullptr.
  HybridLogicalClock(Clock* clock, HlcOptions options);

  HybridLogicalClock(const HybridLogicalClock&) = delete;
  HybridLogicalClock& operator=(const HybridLogicalClock&) = delete;

  // Returns a timestamp for a local event (a write this node coordinates, a
  // message it sends). Strictly greater than every timestamp this clock
  // returned or accepted before. Never fails.
  Timestamp Now();

  // Folds in `remote`, a timestamp carried by a received message, and returns
  // a timestamp strictly greater than both `remote` and every timestamp this
  // clock returned or accepted before. Returns InvalidArgument (and changes
  // nothing but the rejection counter) when remote.physical_ms is more than
  // max_offset_ms ahead of the local wall clock.
  Result<Timestamp> Update(Timestamp remote);

  // Raises the clock to at least `floor` without the offset check. For
  // recovery only: a restarted node passes the largest timestamp it finds in
  // its own durable state, so it never issues a timestamp below one it
  // issued before the restart even if its wall clock went back meanwhile.
  void AdvanceTo(Timestamp floor);

  // The largest timestamp issued or accepted so far (Zero() at first).
  Timestamp last() const { return last_; }
  const HlcStats& stats() const { return stats_; }
  const HlcOptions& options() const { return options_; }

 private:
  // The local wall clock in milliseconds; a wall clock before the epoch
  // reads as 0.
  uint64_t WallMillis();
  // The successor of last_ within physical_ms, or the next millisecond if
  // the logical counter is exhausted.
  Timestamp NextLogical(Timestamp base) const;

  Clock* const clock_;
  const HlcOptions options_;
  // Invariant: never decreases. Every timestamp returned is == last_ at the
  // moment it is returned.
  Timestamp last_;
  HlcStats stats_;
};

}  // namespace mks
