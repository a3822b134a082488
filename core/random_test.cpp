#include "core/random.h"

#include <gtest/gtest.h>

#include <set>

namespace mks {
namespace {

TEST(RandomTest, SameSeedSameSequence) {
  Random a(42);
  Random b(42);
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(a.Next64(), b.Next64());
}

TEST(RandomTest, KnownVectorsArePlatformIndependent) {
  // Pinned outputs: a change here changes every simulation trace.
  Random r(1);
  EXPECT_EQ(r.Next64(), 0xb3f2af6d0fc710c5ULL);
  EXPECT_EQ(StableHash64(""), 0xc3817c016ba4ff30ULL);
  EXPECT_EQ(StableHash64("my-key-store"), StableHash64("my-key-store"));
}

TEST(RandomTest, SplitStreamsAreIndependentOfDrawCount) {
  Random root(7);
  Random before = root.Split("network");
  for (int i = 0; i < 10; ++i) root.Next64();
  Random after = root.Split("network");
  EXPECT_EQ(before.Next64(), after.Next64());
  EXPECT_NE(root.Split("network").Next64(), root.Split("disk").Next64());
}

TEST(RandomTest, UniformStaysInBoundsAndCoversThem) {
  Random r(3);
  std::set<uint64_t> seen;
  for (int i = 0; i < 10000; ++i) {
    const uint64_t v = r.Uniform(10);
    ASSERT_LT(v, 10u);
    seen.insert(v);
  }
  EXPECT_EQ(seen.size(), 10u);
  for (int i = 0; i < 1000; ++i) {
    const int64_t v = r.Range(-5, 5);
    ASSERT_GE(v, -5);
    ASSERT_LE(v, 5);
  }
}

TEST(RandomTest, ChancePpmMatchesItsRate) {
  Random r(9);
  int hits = 0;
  for (int i = 0; i < 100000; ++i) hits += r.ChancePpm(250000) ? 1 : 0;
  EXPECT_GT(hits, 24000);
  EXPECT_LT(hits, 26000);
  EXPECT_FALSE(r.ChancePpm(0));
  EXPECT_TRUE(r.ChancePpm(1000000));
}

}  // namespace
}  // namespace mks
