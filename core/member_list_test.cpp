#include "core/member_list.h"

#include <gtest/gtest.h>

#include <vector>

namespace mks {
namespace {

MemberList Seated(std::vector<NodeId> by_seat) {
  Result<MemberList> members = MemberList::FromSeats(std::move(by_seat));
  MKS_ASSERT_MSG(members.ok(), members.status().ToString());
  return std::move(members).value();
}

TEST(MemberListTest, FromIdsSeatsInAscendingIdOrder) {
  Result<MemberList> members = MemberList::FromIds({30, 10, 20});
  ASSERT_TRUE(members.ok());
  EXPECT_EQ(members->by_seat(), (std::vector<NodeId>{10, 20, 30}));
  EXPECT_EQ(members->SeatOf(10), 0);
  EXPECT_EQ(members->SeatOf(30), 2);
}

TEST(MemberListTest, FromSeatsKeepsTheGivenOrder) {
  const MemberList members = Seated({30, 10, 20});
  EXPECT_EQ(members.by_seat(), (std::vector<NodeId>{30, 10, 20}));
  EXPECT_EQ(members.size(), 3u);
  EXPECT_EQ(members.SeatOf(30), 0);
  EXPECT_EQ(members.SeatOf(20), 2);
  EXPECT_EQ(members.SeatOf(40), -1);
  EXPECT_FALSE(members.Contains(40));
  EXPECT_TRUE(members.Contains(10));
}

TEST(MemberListTest, RejectsNodeZeroAndDuplicates) {
  for (const std::vector<NodeId>& bad :
       {std::vector<NodeId>{1, 0, 2}, std::vector<NodeId>{1, 2, 1}}) {
    EXPECT_EQ(MemberList::FromSeats(bad).status().code(),
              StatusCode::kInvalidArgument);
    EXPECT_EQ(MemberList::FromIds(bad).status().code(),
              StatusCode::kInvalidArgument);
  }
  EXPECT_TRUE(MemberList::FromSeats({}).ok());
}

TEST(MemberListTest, JoinSeatsTheNewcomerLast) {
  MemberList members = Seated({5, 3});
  ASSERT_TRUE(members.Join(1).ok());
  EXPECT_EQ(members.by_seat(), (std::vector<NodeId>{5, 3, 1}));
  EXPECT_EQ(members.Join(3).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(members.Join(kNoNode).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(members.by_seat(), (std::vector<NodeId>{5, 3, 1}));
}

TEST(MemberListTest, LeaveHandsTheLeaversSeatToTheLastMember) {
  MemberList members = Seated({1, 2, 3, 4});
  ASSERT_TRUE(members.Leave(2).ok());
  EXPECT_EQ(members.by_seat(), (std::vector<NodeId>{1, 4, 3}));
  // The last seat's member leaving moves nobody.
  ASSERT_TRUE(members.Leave(3).ok());
  EXPECT_EQ(members.by_seat(), (std::vector<NodeId>{1, 4}));
  EXPECT_EQ(members.Leave(2).code(), StatusCode::kNotFound);
  EXPECT_EQ(members.by_seat(), (std::vector<NodeId>{1, 4}));
  ASSERT_TRUE(members.Leave(1).ok());
  ASSERT_TRUE(members.Leave(4).ok());
  EXPECT_TRUE(members.empty());
}

TEST(MemberListTest, EqualListsHaveEqualSeats) {
  MemberList grown = Seated({1, 2});
  ASSERT_TRUE(grown.Join(3).ok());
  EXPECT_EQ(grown, Seated({1, 2, 3}));
  EXPECT_NE(grown, Seated({1, 3, 2}));
}

}  // namespace
}  // namespace mks
