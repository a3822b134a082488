#include "net/metrics.h"

#include <algorithm>

#include "core/assertions.h"

namespace mks::net {

void AppendMetric(std::string* out, std::string_view name,
                  std::string_view type, std::string_view help,
                  const std::vector<Sample>& samples) {
  MKS_ASSERT(!name.empty());
  MKS_ASSERT(type == "counter" || type == "gauge");
  MKS_ASSERT_EQ(help.find('\n'), std::string_view::npos);
  out->append("# HELP ").append(name).append(" ").append(help).append("\n");
  out->append("# TYPE ").append(name).append(" ").append(type).append("\n");
  for (const Sample& sample : samples) {
    out->append(name);
    if (!sample.first.empty()) out->append("{").append(sample.first).append("}");
    out->append(" ").append(std::to_string(sample.second)).append("\n");
  }
}

std::string MicrosAsSeconds(uint64_t micros) {
  std::string fraction = std::to_string(micros % 1'000'000);
  fraction.insert(0, 6 - fraction.size(), '0');
  std::string text = std::to_string(micros / 1'000'000) + "." + fraction;
  MKS_ASSERT_EQ(text.size() - text.find('.'), 7u);
  return text;
}

void LatencyHistogram::Record(int64_t latency_ns) {
  const uint64_t micros = latency_ns <= 0 ? 0 : static_cast<uint64_t>(latency_ns) / 1000;
  const auto bucket =
      std::lower_bound(kBoundsMicros.begin(), kBoundsMicros.end(), micros) -
      kBoundsMicros.begin();
  MKS_ASSERT_LE(static_cast<size_t>(bucket), kBoundsMicros.size());
  ++buckets_[static_cast<size_t>(bucket)];
  ++count_;
  sum_micros_ += micros;
}

void LatencyHistogram::AppendSamples(std::string* out, std::string_view name,
                                     std::string_view labels) const {
  const std::string prefix = labels.empty() ? "" : std::string(labels) + ",";
  const std::string braces =
      labels.empty() ? "" : "{" + std::string(labels) + "}";
  uint64_t cumulative = 0;
  for (size_t i = 0; i < buckets_.size(); ++i) {
    cumulative += buckets_[i];
    const std::string bound =
        i < kBoundsMicros.size() ? MicrosAsSeconds(kBoundsMicros[i]) : "+Inf";
    out->append(name).append("_bucket{").append(prefix).append("le=\"")
        .append(bound).append("\"} ").append(std::to_string(cumulative))
        .append("\n");
  }
  MKS_ASSERT_EQ(cumulative, count_);
  out->append(name).append("_sum").append(braces).append(" ")
      .append(MicrosAsSeconds(sum_micros_)).append("\n");
  out->append(name).append("_count").append(braces).append(" ")
      .append(std::to_string(count_)).append("\n");
}

std::string_view OperationName(Operation operation) {
  switch (operation) {
    case Operation::kGet: return "get";
    case Operation::kPut: return "put";
    case Operation::kDelete: return "delete";
  }
  MKS_ASSERT_MSG(false, "unknown operation");
  return "";
}

MeteredKvBackend::MeteredKvBackend(KvBackend* inner, Clock* clock)
    : inner_(inner), clock_(clock) {
  MKS_ASSERT(inner_ != nullptr);
  MKS_ASSERT(clock_ != nullptr);
}

Result<ReadResult> MeteredKvBackend::Get(std::string_view key,
                                         Consistency consistency) {
  const int64_t start_ns = clock_->MonotonicNanos();
  Result<ReadResult> result = inner_->Get(key, consistency);
  Count(Operation::kGet, result.status(), result.ok() && !result->found,
        start_ns);
  return result;
}

Result<WriteResult> MeteredKvBackend::Put(std::string_view key,
                                          std::string value,
                                          Consistency consistency) {
  const int64_t start_ns = clock_->MonotonicNanos();
  Result<WriteResult> result = inner_->Put(key, std::move(value), consistency);
  Count(Operation::kPut, result.status(), false, start_ns);
  return result;
}

Result<WriteResult> MeteredKvBackend::Delete(std::string_view key,
                                             Consistency consistency) {
  const int64_t start_ns = clock_->MonotonicNanos();
  Result<WriteResult> result = inner_->Delete(key, consistency);
  Count(Operation::kDelete, result.status(), false, start_ns);
  return result;
}

void MeteredKvBackend::Count(Operation operation, const Status& status,
                             bool not_found, int64_t start_ns) {
  const int64_t end_ns = clock_->MonotonicNanos();
  MKS_ASSERT_GE(end_ns, start_ns);
  size_t outcome = 4;  // "error"
  if (status.ok()) {
    outcome = not_found ? 1 : 0;
  } else if (status.code() == StatusCode::kInvalidArgument) {
    outcome = 2;
  } else if (status.code() == StatusCode::kUnavailable) {
    outcome = 3;
  }
  const auto index = static_cast<size_t>(operation);
  MKS_ASSERT_LT(index, kOperationCount);
  ++counts_[index][outcome];
  latency_[index].Record(end_ns - start_ns);
}

uint64_t MeteredKvBackend::count(Operation operation,
                                 std::string_view outcome) const {
  for (size_t i = 0; i < kOutcomes.size(); ++i) {
    if (kOutcomes[i] == outcome) return counts_[static_cast<size_t>(operation)][i];
  }
  MKS_ASSERT_MSG(false, "unknown outcome");
  return 0;
}

void MeteredKvBackend::AppendMetrics(std::string* out) const {
  std::vector<Sample> samples;
  for (size_t operation = 0; operation < kOperationCount; ++operation) {
    for (size_t outcome = 0; outcome < kOutcomes.size(); ++outcome) {
      samples.push_back(
          {"operation=\"" +
               std::string(OperationName(static_cast<Operation>(operation))) +
               "\",outcome=\"" + std::string(kOutcomes[outcome]) + "\"",
           counts_[operation][outcome]});
    }
  }
  AppendMetric(out, "mks_client_operations_total", "counter",
               "Client operations by kind and outcome.", samples);
  out->append(
      "# HELP mks_client_operation_latency_seconds Client operation latency "
      "as seen by the front-end.\n"
      "# TYPE mks_client_operation_latency_seconds histogram\n");
  for (size_t operation = 0; operation < kOperationCount; ++operation) {
    latency_[operation].AppendSamples(
        out, "mks_client_operation_latency_seconds",
        "operation=\"" +
            std::string(OperationName(static_cast<Operation>(operation))) + "\"");
  }
  inner_->AppendMetrics(out);
}

}  // namespace mks::net
