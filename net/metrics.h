// Prometheus text exposition, and the client-operation metrics every
// front-end shares.
//
// Latencies are kept in fixed histogram buckets of integer microseconds, so
// recording never allocates and no floating point is involved; bucket
// bounds are printed in seconds as Prometheus expects.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/env.h"
#include "net/kv_backend.h"

namespace mks::net {

// One sample: its label text ("" or `kind="get",outcome="ok"`) and value.
using Sample = std::pair<std::string, uint64_t>;

// Appends "# HELP", "# TYPE" and one line per sample of metric `name`.
// `type` is "counter" or "gauge". Requires `name` to be a valid metric name
// and `help` free of newlines.
void AppendMetric(std::string* out, std::string_view name,
                  std::string_view type, std::string_view help,
                  const std::vector<Sample>& samples);

// Microseconds as seconds in decimal ("0.000250"), exact.
std::string MicrosAsSeconds(uint64_t micros);

class LatencyHistogram {
 public:
  // Upper bounds of the finite buckets, ascending; a last bucket is +Inf.
  static constexpr std::array<uint64_t, 14> kBoundsMicros = {
      50,     100,    250,     500,     1'000,   2'500,   5'000,
      10'000, 25'000, 50'000, 100'000, 250'000, 500'000, 1'000'000};

  // Counts one observation; negative durations count as zero.
  void Record(int64_t latency_ns);
  uint64_t count() const { return count_; }
  uint64_t sum_micros() const { return sum_micros_; }

  // Appends the cumulative `name`_bucket, _sum and _count lines, each with
  // `labels` (like `kind="get"`, may be empty) besides `le`.
  void AppendSamples(std::string* out, std::string_view name,
                     std::string_view labels) const;

 private:
  // Invariant: count_ == sum of buckets_; buckets_[i] counts observations in
  // (bound i-1, bound i], the last one those above every bound.
  std::array<uint64_t, kBoundsMicros.size() + 1> buckets_{};
  uint64_t count_ = 0;
  uint64_t sum_micros_ = 0;
};

enum class Operation : uint8_t { kGet, kPut, kDelete };
inline constexpr size_t kOperationCount = 3;
std::string_view OperationName(Operation operation);

// A KvBackend that forwards to another and meters every client operation:
// counts by (operation, outcome) and a latency histogram per operation,
// timed with `clock`'s monotonic time. Outcomes: "ok", "not_found" (reads),
// "invalid" (InvalidArgument), "unavailable" (quorum not reached), "error".
class MeteredKvBackend final : public KvBackend {
 public:
  // `inner` and `clock` must outlive this backend.
  MeteredKvBackend(KvBackend* inner, Clock* clock);

  Result<ReadResult> Get(std::string_view key, Consistency consistency) override;
  Result<WriteResult> Put(std::string_view key, std::string value,
                          Consistency consistency) override;
  Result<WriteResult> Delete(std::string_view key,
                             Consistency consistency) override;
  BackendStatus Describe() const override { return inner_->Describe(); }
  std::vector<MemberStatus> Members() const override { return inner_->Members(); }
  const Ring* ring() const override { return inner_->ring(); }
  std::string NotReadyReason() const override { return inner_->NotReadyReason(); }
  Result<uint64_t> RemoveMember(NodeId node, bool force) override {
    return inner_->RemoveMember(node, force);
  }
  // The operation metrics, then the inner backend's.
  void AppendMetrics(std::string* out) const override;

  // Operations of `operation` that ended with `outcome` (see above).
  uint64_t count(Operation operation, std::string_view outcome) const;
  const LatencyHistogram& latency(Operation operation) const {
    return latency_[static_cast<size_t>(operation)];
  }

 private:
  static constexpr std::array<std::string_view, 5> kOutcomes = {
      "ok", "not_found", "invalid", "unavailable", "error"};
  void Count(Operation operation, const Status& status, bool not_found,
             int64_t start_ns);

  KvBackend* const inner_;
  Clock* const clock_;
  // counts_[operation][outcome index in kOutcomes].
  std::array<std::array<uint64_t, kOutcomes.size()>, kOperationCount> counts_{};
  std::array<LatencyHistogram, kOperationCount> latency_;
};

}  // namespace mks::net
