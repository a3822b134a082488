// Asynchronous writes that a test disk parks until the test completes them,
// like writes waiting on a slow device. Test-only: the simulator's SimDisk
// (sim/) models write latency for real.
#pragma once

#include <algorithm>
#include <cstddef>
#include <functional>
#include <utility>
#include <vector>

#include "core/assertions.h"
#include "core/env.h"

namespace mks {

class HeldWrites {
 public:
  // How a parked write is finally performed (the disk's synchronous Write).
  using WriteNow = std::function<Status(const WriteBatch&, WriteOptions)>;

  // Writes at once through `write_now` and reports, unless holding: then
  // parks the write until CompleteOldest().
  void Submit(WriteBatch batch, WriteOptions options, WriteDone done, WriteNow write_now) {
    if (!hold_) {
      done(write_now(batch, options));
      return;
    }
    held_.push_back(Held{std::move(batch), options, std::move(done), std::move(write_now)});
    max_held_ = std::max(max_held_, held_.size());
  }
  // Performs and reports the oldest parked write. One must be parked.
  void CompleteOldest() {
    MKS_ASSERT(!held_.empty());
    Held write = std::move(held_.front());
    held_.erase(held_.begin());
    write.done(write.write_now(write.batch, write.options));
  }
  void set_hold(bool hold) { hold_ = hold; }
  size_t count() const { return held_.size(); }
  size_t max_count() const { return max_held_; }  // the most parked at once

 private:
  struct Held {
    WriteBatch batch;
    WriteOptions options;
    WriteDone done;
    WriteNow write_now;
  };
  std::vector<Held> held_;  // oldest first
  size_t max_held_ = 0;
  bool hold_ = false;
};

}  // namespace mks
