#include "core/status.h"

#include <gtest/gtest.h>

namespace mks {
namespace {

Status FailsWhen(bool fail) {
  if (fail) return Status::NotFound("key 'x'");
  return Status::Ok();
}

Status Propagates(bool fail) {
  MKS_RETURN_IF_ERROR(FailsWhen(fail));
  return Status::Internal("reached the end");
}

TEST(StatusTest, OkAndErrors) {
  EXPECT_TRUE(Status().ok());
  EXPECT_EQ(Status().ToString(), "OK");
  const Status s = Status::NotFound("key 'x'");
  EXPECT_FALSE(s.ok());
  EXPECT_TRUE(s.IsNotFound());
  EXPECT_EQ(s.ToString(), "NotFound: key 'x'");
}

TEST(StatusTest, ReturnIfErrorPropagates) {
  EXPECT_TRUE(Propagates(true).IsNotFound());
  EXPECT_EQ(Propagates(false).code(), StatusCode::kInternal);
}

TEST(ResultTest, HoldsValueOrError) {
  Result<int> good(5);
  ASSERT_TRUE(good.ok());
  EXPECT_EQ(*good, 5);
  Result<int> bad(Status::TimedOut("slow"));
  EXPECT_FALSE(bad.ok());
  EXPECT_TRUE(bad.status().IsTimedOut());
  Result<void> done;
  EXPECT_TRUE(done.ok());
}

TEST(AssertDeathTest, ComparisonPrintsBothOperands) {
  const int left = 3;
  const int right = 4;
  EXPECT_DEATH(MKS_ASSERT_EQ(left, right), "left = 3, right = 4");
  EXPECT_DEATH(MKS_ASSERT(left > right), "left > right");
}

}  // namespace
}  // namespace mks
