#include "core/member_list.h"

#include <algorithm>
#include <string>
#include <utility>

#include "core/assertions.h"

namespace mks {
namespace {

// Returns OK when `ids` holds neither kNoNode nor a duplicate.
Status CheckIds(std::vector<NodeId> ids) {
  std::sort(ids.begin(), ids.end());
  if (!ids.empty() && ids.front() == kNoNode) {
    return Status::InvalidArgument("node id 0 in the member list");
  }
  auto duplicate = std::adjacent_find(ids.begin(), ids.end());
  if (duplicate != ids.end()) {
    return Status::InvalidArgument("node " + std::to_string(*duplicate) +
                                   " listed twice");
  }
  return Status::Ok();
}

}  // namespace

Result<MemberList> MemberList::FromIds(std::vector<NodeId> ids) {
  std::sort(ids.begin(), ids.end());
  return FromSeats(std::move(ids));
}

Result<MemberList> MemberList::FromSeats(std::vector<NodeId> by_seat) {
  MKS_RETURN_IF_ERROR(CheckIds(by_seat));
  return MemberList(std::move(by_seat));
}

Status MemberList::Join(NodeId node) {
  if (node == kNoNode) {
    return Status::InvalidArgument("node id 0 cannot join");
  }
  if (Contains(node)) {
    return Status::InvalidArgument("node " + std::to_string(node) +
                                   " is already a member");
  }
  const size_t size_before = by_seat_.size();
  by_seat_.push_back(node);
  MKS_ASSERT_EQ(by_seat_.size(), size_before + 1);
  MKS_ASSERT_EQ(SeatOf(node), static_cast<int64_t>(size_before));
  return Status::Ok();
}

Status MemberList::Leave(NodeId node) {
  const int64_t seat = SeatOf(node);
  if (seat < 0) {
    return Status::NotFound("node " + std::to_string(node) +
                            " is not a member");
  }
  const size_t size_before = by_seat_.size();
  by_seat_[static_cast<size_t>(seat)] = by_seat_.back();
  by_seat_.pop_back();
  MKS_ASSERT_EQ(by_seat_.size() + 1, size_before);
  MKS_ASSERT(!Contains(node));
  return Status::Ok();
}

int64_t MemberList::SeatOf(NodeId node) const {
  auto it = std::find(by_seat_.begin(), by_seat_.end(), node);
  if (it == by_seat_.end()) return -1;
  return it - by_seat_.begin();
}

}  // namespace mks
