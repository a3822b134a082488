// Trace: the fingerprint of a simulated run.
//
// Every traced event (a delivery, a drop, a fault, a timer, a client
// operation) is folded into a rolling 64-bit hash; two runs with the same
// seed and scenario must end with the same hash, bit for bit. Optionally the
// events are also written to a file, one line each, so two runs that
// disagree can be compared line by line to find where they diverged.
//
// Hot path: Record() hashes a few integers; the text line is built only when
// a file is open.
#pragma once

#include <cstdint>
#include <fstream>
#include <memory>
#include <string>
#include <string_view>

#include "core/status.h"

namespace mks::sim {

enum class TraceKind : uint8_t {
  kSend = 1,
  kDeliver,
  kDrop,
  kDuplicate,
  kTimer,
  kFault,
  kClientOp,
  kPhase,
};

std::string_view TraceKindName(TraceKind kind);

class Tracer {
 public:
  Tracer() = default;
  // Also writes each event to `path`. Returns IOError when it cannot be
  // created.
  Status OpenFile(const std::string& path);

  // Folds one event into the hash. `detail` is hashed too; keep it short.
  void Record(int64_t time_ns, TraceKind kind, uint64_t a, uint64_t b,
              uint64_t c, std::string_view detail = {});

  uint64_t hash() const { return hash_; }
  uint64_t events() const { return events_; }
  // Flushes the file, if any.
  void Flush();

 private:
  uint64_t hash_ = 0x6d6b732d73696d31ULL;  // "mks-sim1"
  uint64_t events_ = 0;
  std::unique_ptr<std::ofstream> file_;
};

// Compares two trace files. Returns an empty string when they are equal,
// else a description of the first differing line (number and both texts).
// IOError when a file cannot be read.
Result<std::string> DiffTraceFiles(const std::string& path_a,
                                   const std::string& path_b);

}  // namespace mks::sim
