#include "net/metrics.h"

#include <gtest/gtest.h>

#include "core/runtime/manual_clock.h"
#include "net/fake_kv_backend_for_test.h"

namespace mks::net {
namespace {

TEST(MetricsTest, MicrosAsSecondsIsExact) {
  EXPECT_EQ(MicrosAsSeconds(0), "0.000000");
  EXPECT_EQ(MicrosAsSeconds(250), "0.000250");
  EXPECT_EQ(MicrosAsSeconds(1'000'000), "1.000000");
  EXPECT_EQ(MicrosAsSeconds(12'345'678), "12.345678");
}

TEST(MetricsTest, AppendMetricWritesHelpTypeAndSamples) {
  std::string out;
  AppendMetric(&out, "mks_x_total", "counter", "Things.",
               {{"", 3}, {"kind=\"a\"", 4}});
  EXPECT_EQ(out,
            "# HELP mks_x_total Things.\n# TYPE mks_x_total counter\n"
            "mks_x_total 3\nmks_x_total{kind=\"a\"} 4\n");
}

TEST(MetricsTest, HistogramBucketsAreCumulative) {
  LatencyHistogram histogram;
  histogram.Record(-5);          // 0 us
  histogram.Record(50'000);      // 50 us: on the first bound
  histogram.Record(51'000);      // 51 us
  histogram.Record(5'000'000'000);  // 5 s: above every bound
  EXPECT_EQ(histogram.count(), 4u);
  EXPECT_EQ(histogram.sum_micros(), 5'000'101u);
  std::string out;
  histogram.AppendSamples(&out, "lat", "op=\"get\"");
  EXPECT_NE(out.find("lat_bucket{op=\"get\",le=\"0.000050\"} 2\n"), std::string::npos);
  EXPECT_NE(out.find("lat_bucket{op=\"get\",le=\"0.000100\"} 3\n"), std::string::npos);
  EXPECT_NE(out.find("lat_bucket{op=\"get\",le=\"1.000000\"} 3\n"), std::string::npos);
  EXPECT_NE(out.find("lat_bucket{op=\"get\",le=\"+Inf\"} 4\n"), std::string::npos);
  EXPECT_NE(out.find("lat_sum{op=\"get\"} 5.000101\n"), std::string::npos);
  EXPECT_NE(out.find("lat_count{op=\"get\"} 4\n"), std::string::npos);
}

TEST(MetricsTest, MeteredBackendCountsOutcomesAndForwards) {
  FakeKvBackend fake;
  runtime::ManualClock clock;
  MeteredKvBackend metered(&fake, &clock);
  ASSERT_TRUE(metered.Put("k", "v", Consistency::One()).ok());
  Result<ReadResult> found = metered.Get("k", Consistency::Default());
  ASSERT_TRUE(found.ok());
  EXPECT_TRUE(found->found);
  ASSERT_TRUE(metered.Get("absent", Consistency::Default()).ok());
  EXPECT_FALSE(metered.Delete("", Consistency::Default()).ok());
  fake.fail_with = Status::Unavailable("short");
  EXPECT_FALSE(metered.Put("k", "v", Consistency::Default()).ok());
  fake.fail_with = Status::IOError("disk");
  EXPECT_FALSE(metered.Get("k", Consistency::Default()).ok());

  EXPECT_EQ(metered.count(Operation::kPut, "ok"), 1u);
  EXPECT_EQ(metered.count(Operation::kPut, "unavailable"), 1u);
  EXPECT_EQ(metered.count(Operation::kGet, "ok"), 1u);
  EXPECT_EQ(metered.count(Operation::kGet, "not_found"), 1u);
  EXPECT_EQ(metered.count(Operation::kGet, "error"), 1u);
  EXPECT_EQ(metered.count(Operation::kDelete, "invalid"), 1u);
  EXPECT_EQ(metered.latency(Operation::kGet).count(), 3u);
  EXPECT_EQ(fake.calls.size(), 6u);

  std::string out;
  metered.AppendMetrics(&out);
  EXPECT_NE(out.find("mks_client_operations_total{operation=\"put\",outcome=\"unavailable\"} 1\n"),
            std::string::npos);
  EXPECT_NE(out.find("# TYPE mks_client_operation_latency_seconds histogram\n"),
            std::string::npos);
  EXPECT_NE(out.find("mks_client_operation_latency_seconds_count{operation=\"get\"} 3\n"),
            std::string::npos);
  EXPECT_NE(out.find("mks_fake_total 3\n"), std::string::npos);  // the inner's
}

}  // namespace
}  // namespace mks::net
