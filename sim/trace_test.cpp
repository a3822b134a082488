#include "sim/trace.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <string>

namespace mks::sim {
namespace {

TEST(TraceTest, SameEventsSameHashDifferentEventsDifferentHash) {
  Tracer a;
  Tracer b;
  Tracer c;
  for (int i = 0; i < 100; ++i) {
    a.Record(i, TraceKind::kDeliver, 1, 2, static_cast<uint64_t>(i));
    b.Record(i, TraceKind::kDeliver, 1, 2, static_cast<uint64_t>(i));
    c.Record(i, TraceKind::kDeliver, 1, i == 50 ? 3 : 2, static_cast<uint64_t>(i));
  }
  EXPECT_EQ(a.hash(), b.hash());
  EXPECT_NE(a.hash(), c.hash());
  EXPECT_EQ(a.events(), 100u);
}

TEST(TraceTest, DiffFindsTheFirstDivergingEvent) {
  const std::string path_a = ::testing::TempDir() + "trace_a.txt";
  const std::string path_b = ::testing::TempDir() + "trace_b.txt";
  {
    Tracer a;
    Tracer b;
    ASSERT_TRUE(a.OpenFile(path_a).ok());
    ASSERT_TRUE(b.OpenFile(path_b).ok());
    for (int i = 0; i < 10; ++i) {
      a.Record(i, TraceKind::kFault, 1, 2, 3, "crash");
      b.Record(i, TraceKind::kFault, 1, i == 7 ? 9 : 2, 3, "crash");
    }
    a.Flush();
    b.Flush();
  }
  Result<std::string> same = DiffTraceFiles(path_a, path_a);
  ASSERT_TRUE(same.ok());
  EXPECT_EQ(*same, "");
  Result<std::string> diff = DiffTraceFiles(path_a, path_b);
  ASSERT_TRUE(diff.ok());
  EXPECT_NE(diff->find("line 8"), std::string::npos) << *diff;
  EXPECT_NE(diff->find("8 7 fault 1 9 3 crash"), std::string::npos) << *diff;
  EXPECT_FALSE(DiffTraceFiles(path_a, path_a + ".missing").ok());
  std::remove(path_a.c_str());
  std::remove(path_b.c_str());
}

}  // namespace
}  // namespace mks::sim
