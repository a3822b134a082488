#include "sim/trace.h"

#include <bit>

#include "core/assertions.h"
#include "core/random.h"

namespace mks::sim {
namespace {

// One round of a 64-bit mixer (splitmix64's finalizer) over state ^ value.
inline uint64_t Mix(uint64_t state, uint64_t value) {
  uint64_t z = state ^ (value + 0x9e3779b97f4a7c15ULL + (state << 6) + (state >> 2));
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

}  // namespace

std::string_view TraceKindName(TraceKind kind) {
  switch (kind) {
    case TraceKind::kSend: return "send";
    case TraceKind::kDeliver: return "deliver";
    case TraceKind::kDrop: return "drop";
    case TraceKind::kDuplicate: return "duplicate";
    case TraceKind::kTimer: return "timer";
    case TraceKind::kFault: return "fault";
    case TraceKind::kClientOp: return "client";
    case TraceKind::kPhase: return "phase";
  }
  return "unknown";
}

Status Tracer::OpenFile(const std::string& path) {
  auto file = std::make_unique<std::ofstream>(path, std::ios::trunc);
  if (!*file) return Status::IOError("cannot create trace file " + path);
  file_ = std::move(file);
  return Status::Ok();
}

void Tracer::Record(int64_t time_ns, TraceKind kind, uint64_t a, uint64_t b,
                    uint64_t c, std::string_view detail) {
  MKS_ASSERT_GE(time_ns, 0);
  // Spread the fields with distinct odd multipliers and rotations, then mix
  // once: one finalizer per event keeps tracing cheap on the hot path.
  uint64_t fields = static_cast<uint64_t>(time_ns) * 0x9e3779b97f4a7c15ULL;
  fields ^= std::rotl(a * 0xc2b2ae3d27d4eb4fULL + static_cast<uint64_t>(kind), 17);
  fields ^= std::rotl(b * 0x165667b19e3779f9ULL, 31);
  fields ^= std::rotl(c * 0xd6e8feb86659fd93ULL, 47);
  if (!detail.empty()) fields ^= StableHash64(detail);
  const uint64_t h = Mix(hash_, fields);
  hash_ = h;
  ++events_;
  if (file_ != nullptr) {
    *file_ << events_ << ' ' << time_ns << ' ' << TraceKindName(kind) << ' '
           << a << ' ' << b << ' ' << c;
    if (!detail.empty()) *file_ << ' ' << detail;
    *file_ << '\n';
  }
}

void Tracer::Flush() {
  if (file_ != nullptr) file_->flush();
}

Result<std::string> DiffTraceFiles(const std::string& path_a,
                                   const std::string& path_b) {
  std::ifstream a(path_a);
  std::ifstream b(path_b);
  if (!a) return Status::IOError("cannot read trace file " + path_a);
  if (!b) return Status::IOError("cannot read trace file " + path_b);
  std::string line_a;
  std::string line_b;
  for (uint64_t number = 1;; ++number) {
    const bool has_a = static_cast<bool>(std::getline(a, line_a));
    const bool has_b = static_cast<bool>(std::getline(b, line_b));
    if (!has_a && !has_b) return std::string();
    if (has_a && has_b && line_a == line_b) continue;
    return "first difference at line " + std::to_string(number) + ":\n  " +
           path_a + ": " + (has_a ? line_a : "<end of file>") + "\n  " +
           path_b + ": " + (has_b ? line_b : "<end of file>");
  }
}

}  // namespace mks::sim
