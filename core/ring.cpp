#include "core/ring.h"

#include <algorithm>
#include <bit>
#include <functional>
#include <numeric>
#include <span>
#include <string>
#include <tuple>
#include <utility>

#include "core/assertions.h"
#include "core/random.h"

namespace mks {
namespace {

// Seeds keep the key hash and the placement orders independent of each other
// and of other users of StableHash64. Changing any of them remaps the cluster.
constexpr uint64_t kKeyHashSeed = 0x6d6b732d6b657973ULL;   // "mks-keys"
constexpr uint64_t kTakeOrderSeed = 0x6d6b732d74616b65ULL; // "mks-take"
constexpr uint64_t kKeepOrderSeed = 0x6d6b732d6b656570ULL; // "mks-keep"
constexpr uint64_t kLeadOrderSeed = 0x6d6b732d6c656164ULL; // "mks-lead"

// A stable hash of two 32-bit numbers, encoded little-endian byte by byte so
// it is the same on every platform.
uint64_t PairHash(uint32_t first, uint32_t second, uint64_t seed) {
  char bytes[8];
  for (int i = 0; i < 4; ++i) {
    bytes[i] = static_cast<char>((first >> (8 * i)) & 0xff);
    bytes[4 + i] = static_cast<char>((second >> (8 * i)) & 0xff);
  }
  return StableHash64(std::string_view(bytes, sizeof(bytes)), seed);
}

// The mean load rounded up: what the most-loaded member holds.
uint32_t LoadCap(uint64_t member_count, uint32_t partition_count,
                 uint32_t replication_factor) {
  MKS_ASSERT_GT(member_count, 0u);
  const uint64_t total = uint64_t{partition_count} * replication_factor;
  const uint64_t cap = (total + member_count - 1) / member_count;
  MKS_ASSERT_LE(cap, partition_count);
  MKS_ASSERT_GE(cap * member_count, total);
  return static_cast<uint32_t>(cap);
}

// The partitions in the order a seat takes them: descending hash of
// (partition, seat), produced lazily, since a seat usually stops well before
// the end (a heap costs O(Q) to build and O(log Q) a step, where a full sort
// would cost O(Q log Q) for every seat).
class TakeOrder {
 public:
  TakeOrder(uint32_t partition_count, uint32_t seat) : heap_(partition_count) {
    for (PartitionId p = 0; p < partition_count; ++p) {
      heap_[p] = {PairHash(p, seat, kTakeOrderSeed), p};
    }
    std::make_heap(heap_.begin(), heap_.end());
  }

  bool Done() const { return heap_.empty(); }

  // Returns the next partition. Requires !Done() (asserted).
  PartitionId Next() {
    MKS_ASSERT(!heap_.empty());
    std::pop_heap(heap_.begin(), heap_.end());
    const PartitionId next = heap_.back().second;
    heap_.pop_back();
    return next;
  }

 private:
  // A max-heap of (hash, partition); hashes tie only with astronomically
  // small odds, and then the partition orders them.
  std::vector<std::pair<uint64_t, PartitionId>> heap_;
};

// The placement table of a ring, by seat: the preference list of every
// partition as seats, built one seat at a time.
//
// Why seats, and why one at a time: rendezvous hashing of node ids moves
// only what must move on a join or leave, but its loads are binomial (at 64
// members the busiest holds about 1.4x the mean), and every way tried to
// balance it as a function of the id set alone moved one to two shares more
// than necessary on some join or leave (docs/ring-and-rpc.md). A table built
// by seating members in order is balanced as tightly as integers allow, and
// the table of n seats is the table of n-1 seats plus seat n-1's take: a
// join moves only its take, and a leave, which hands the last seat's member
// to the leaver's seat, moves the leaver's replicas plus the last seat's.
//
// Invariants: every list holds `width_` distinct seats below seat_count_;
// load_[s] is the number of lists holding seat s; loads differ by at most
// one.
class SeatTable {
 public:
  // The table of `width` seats, each holding every partition. Each list is
  // ordered by the seats' take-order hashes, so no seat is every
  // partition's first choice.
  SeatTable(uint32_t partition_count, uint32_t width)
      : width_(width),
        seat_count_(width),
        seats_(size_t{partition_count} * width),
        load_(width, partition_count) {
    MKS_ASSERT_GT(width, 0u);
    MKS_ASSERT_GT(partition_count, 0u);
    for (PartitionId p = 0; p < partition_count; ++p) {
      std::span<uint32_t> list = List(p);
      std::iota(list.begin(), list.end(), 0u);
      // Ties (astronomically rare) go to the higher seat, so the order is
      // total and the same everywhere.
      std::sort(list.begin(), list.end(), [p](uint32_t a, uint32_t b) {
        return std::pair(PairHash(p, a, kTakeOrderSeed), a) >
               std::pair(PairHash(p, b, kTakeOrderSeed), b);
      });
    }
  }

  // Seats one more member, seat seat_count(): it takes floor(Q*N / seats)
  // replicas, each in the place of a seat that must give one (Quotas), in
  // its own hash order of the partitions (TakeOrder).
  void SeatNext() {
    const uint32_t newcomer = seat_count_;
    const uint32_t take = static_cast<uint32_t>(Total() / (newcomer + 1));
    std::vector<uint32_t> quota = Quotas(take);
    uint32_t taken = 0;
    TakeOrder order(PartitionCount(), newcomer);
    while (taken < take) {
      MKS_ASSERT(!order.Done());
      const PartitionId partition = order.Next();
      std::span<uint32_t> list = List(partition);
      const int place = GiverPlace(list, partition, newcomer, quota);
      if (place < 0) continue;
      const uint32_t giver = list[place];
      --quota[giver];
      --load_[giver];
      list[place] = newcomer;
      ++taken;
    }
    MKS_ASSERT(std::all_of(quota.begin(), quota.end(),
                           [](uint32_t q) { return q == 0; }));
    load_.push_back(take);
    ++seat_count_;
    AssertBalanced();
  }

  uint32_t seat_count() const { return seat_count_; }
  uint32_t Seat(PartitionId partition, uint32_t index) const {
    MKS_ASSERT_LT(index, width_);
    return seats_[size_t{partition} * width_ + index];
  }

 private:
  uint64_t Total() const { return seats_.size(); }
  uint32_t PartitionCount() const {
    return static_cast<uint32_t>(seats_.size() / width_);
  }

  std::span<uint32_t> List(PartitionId partition) {
    return std::span<uint32_t>(seats_).subspan(size_t{partition} * width_,
                                               width_);
  }

  // Returns the place in `list`, `partition`'s list, of the seat the newcomer
  // replaces there, or -1 when no holder owes a replica. The giver is the
  // holder with the most left to give: any choice fills every quota (see the
  // proof in Quotas), this one spreads the takes. Ties go to the first in a
  // scan that starts at a hashed place, so newcomers land at every place of
  // the preference order alike (a scan from the front would make the newest
  // seats lead most partitions).
  int GiverPlace(std::span<const uint32_t> list, PartitionId partition,
                 uint32_t newcomer, const std::vector<uint32_t>& quota) const {
    MKS_ASSERT_EQ(list.size(), width_);
    const uint32_t start = static_cast<uint32_t>(
        PairHash(partition, newcomer, kLeadOrderSeed) % width_);
    int best = -1;
    for (uint32_t k = 0; k < width_; ++k) {
      const uint32_t i = (start + k) % width_;
      if (quota[list[i]] == 0) continue;
      if (best < 0 || quota[list[i]] > quota[list[best]]) best = int(i);
    }
    return best;
  }

  // How many replicas each current seat gives the newcomer so that, after
  // it takes `take`, every seat holds floor or ceil of the new mean: the
  // seats that hold more keep more, ties by a hash of (newcomer, seat).
  //
  // Why one pass in TakeOrder always fills these quotas: if seat s still
  // had quota left at the end, every partition s holds was passed while s
  // could give, so the newcomer took each of them (from s or another
  // giver) and holds them all. s still holds at least its final load plus
  // one, which is at least take + 1 (the final loads are at least the new
  // mean rounded down), yet the newcomer took fewer than `take`.
  std::vector<uint32_t> Quotas(uint32_t take) const {
    const uint32_t old_seats = seat_count_;
    const uint64_t remaining = Total() - take;
    const uint64_t base = remaining / old_seats;
    const uint64_t keep_more = remaining % old_seats;
    MKS_ASSERT_GE(base, take);
    // (load, tie-break hash, seat), most load and highest hash first.
    std::vector<std::tuple<uint32_t, uint64_t, uint32_t>> order(old_seats);
    const uint32_t newcomer = seat_count_;
    for (uint32_t seat = 0; seat < old_seats; ++seat) {
      order[seat] = {load_[seat], PairHash(newcomer, seat, kKeepOrderSeed), seat};
    }
    std::sort(order.begin(), order.end(), std::greater<>());
    std::vector<uint32_t> quota(old_seats, 0);
    uint64_t quota_sum = 0;
    for (uint32_t rank = 0; rank < old_seats; ++rank) {
      const uint32_t seat = std::get<2>(order[rank]);
      const uint64_t keep = base + (rank < keep_more ? 1 : 0);
      MKS_ASSERT_LE(keep, load_[seat]);
      quota[seat] = static_cast<uint32_t>(load_[seat] - keep);
      quota_sum += quota[seat];
    }
    MKS_ASSERT_EQ(quota_sum, take);
    return quota;
  }

  void AssertBalanced() const {
    MKS_ASSERT_EQ(load_.size(), seat_count_);
    const auto [low, high] = std::minmax_element(load_.begin(), load_.end());
    MKS_ASSERT_LE(*high - *low, 1u);
    MKS_ASSERT_EQ(std::accumulate(load_.begin(), load_.end(), uint64_t{0}),
                  Total());
  }

  uint32_t width_;       // the effective N
  uint32_t seat_count_;  // seats placed so far, >= width_
  // seats_[p * width_ + i]: the i-th replica of partition p.
  std::vector<uint32_t> seats_;
  std::vector<uint32_t> load_;  // per seat
};

// The preference lists of the members `by_seat`, flattened: entry
// p * width + i is the i-th replica of partition p.
std::vector<NodeId> Place(const std::vector<NodeId>& by_seat,
                          uint32_t partition_count, uint32_t width) {
  const uint32_t seat_count = static_cast<uint32_t>(by_seat.size());
  MKS_ASSERT_LE(width, seat_count);
  SeatTable table(partition_count, width);
  while (table.seat_count() < seat_count) table.SeatNext();
  std::vector<NodeId> replicas;
  replicas.reserve(size_t{partition_count} * width);
  for (PartitionId p = 0; p < partition_count; ++p) {
    for (uint32_t i = 0; i < width; ++i) {
      replicas.push_back(by_seat[table.Seat(p, i)]);
    }
  }
  return replicas;
}

}  // namespace

Result<Ring> Ring::Build(std::vector<NodeId> ids, uint64_t epoch,
                         RingOptions options) {
  Result<MemberList> members = MemberList::FromIds(std::move(ids));
  MKS_RETURN_IF_ERROR(members.status());
  return Build(*members, epoch, options);
}

Result<Ring> Ring::Build(const MemberList& members, uint64_t epoch,
                         RingOptions options) {
  if (members.empty()) return Status::InvalidArgument("ring with no members");
  const uint32_t q = options.partition_count;
  if (q == 0 || q > kMaxPartitionCount || !std::has_single_bit(q)) {
    return Status::InvalidArgument(
        "partition count " + std::to_string(q) +
        " is not a power of two in [1, " + std::to_string(kMaxPartitionCount) + "]");
  }
  if (options.replication_factor == 0) {
    return Status::InvalidArgument("replication factor 0");
  }
  const uint32_t n = std::min(options.replication_factor, members.size());
  const uint32_t load_cap = LoadCap(members.size(), q, n);
  std::vector<NodeId> replicas = Place(members.by_seat(), q, n);
  return Ring(members, epoch, q, n, options.replication_factor, load_cap,
              std::move(replicas), {});
}

Ring::Ring(MemberList member_list, uint64_t epoch,
           uint32_t partition_count, uint32_t replication_factor,
           uint32_t requested_replication_factor,
           uint32_t load_cap, std::vector<NodeId> replicas,
           std::vector<uint32_t> offsets)
    : member_list_(std::move(member_list)),
      members_(member_list_.by_seat()),
      epoch_(epoch),
      partition_count_(partition_count),
      replication_factor_(replication_factor),
      requested_replication_factor_(requested_replication_factor),
      load_cap_(load_cap),
      replicas_(std::move(replicas)),
      offsets_(std::move(offsets)) {
  if (offsets_.empty()) {
    MKS_ASSERT_EQ(replicas_.size(), size_t{partition_count_} * replication_factor_);
  } else {
    MKS_ASSERT_EQ(offsets_.size(), size_t{partition_count_} + 1);
    MKS_ASSERT_EQ(offsets_.back(), replicas_.size());
  }
  MKS_ASSERT_LE(replication_factor_, members_.size());
  MKS_ASSERT_GE(uint64_t{load_cap_} * members_.size(),
                uint64_t{partition_count_} * replication_factor_);
  MKS_ASSERT_GE(replication_factor_, 1u);
  std::sort(members_.begin(), members_.end());
  MKS_ASSERT_GT(members_.size(), 0u);
  MKS_ASSERT_NE(members_.front(), kNoNode);
}

PartitionId Ring::PartitionOfKey(std::string_view key,
                                 uint32_t partition_count) {
  MKS_ASSERT_MSG(std::has_single_bit(partition_count),
                 "partition count " + std::to_string(partition_count));
  MKS_ASSERT_LE(partition_count, kMaxPartitionCount);
  const int bits = std::countr_zero(partition_count);
  if (bits == 0) return 0;
  return static_cast<PartitionId>(StableHash64(key, kKeyHashSeed) >> (64 - bits));
}

std::span<const NodeId> Ring::PreferenceList(PartitionId partition) const {
  MKS_ASSERT_LT(partition, partition_count_);
  if (!offsets_.empty()) {
    return std::span<const NodeId>(replicas_).subspan(
        offsets_[partition], offsets_[partition + 1] - offsets_[partition]);
  }
  return std::span<const NodeId>(replicas_).subspan(
      size_t{partition} * replication_factor_, replication_factor_);
}

namespace {

// Appends `list` to *flat and its end to *offsets.
void AppendList(std::span<const NodeId> list, std::vector<NodeId>* flat,
                std::vector<uint32_t>* offsets) {
  flat->insert(flat->end(), list.begin(), list.end());
  offsets->push_back(static_cast<uint32_t>(flat->size()));
}

}  // namespace

Ring Ring::Transitional(const Ring& from, const Ring& to, const MemberList& members,
                        const std::vector<bool>& flipped,
                        std::vector<uint64_t> fence_epochs, uint64_t epoch) {
  const uint32_t q = to.partition_count();
  MKS_ASSERT_EQ(from.partition_count(), q);
  MKS_ASSERT_EQ(flipped.size(), q);
  MKS_ASSERT_EQ(fence_epochs.size(), q);
  std::vector<NodeId> current;
  std::vector<uint32_t> offsets{0};
  std::vector<NodeId> future;
  std::vector<uint32_t> future_offsets{0};
  for (PartitionId p = 0; p < q; ++p) {
    AppendList(flipped[p] ? to.PreferenceList(p) : from.PreferenceList(p), &current, &offsets);
    AppendList(to.PreferenceList(p), &future, &future_offsets);
  }
  Ring ring(members, epoch, q, to.replication_factor(), to.requested_replication_factor(),
            std::max(from.load_cap(), to.load_cap()), std::move(current), std::move(offsets));
  ring.future_ = std::move(future);
  ring.future_offsets_ = std::move(future_offsets);
  ring.fence_epochs_ = std::move(fence_epochs);
  for (NodeId node : ring.replicas_) MKS_ASSERT(ring.IsMember(node));
  for (NodeId node : ring.future_) MKS_ASSERT(ring.IsMember(node));
  return ring;
}

Ring Ring::WithFenceEpoch(uint64_t fence_epoch) && {
  MKS_ASSERT(future_.empty());
  fence_epochs_.clear();
  fence_epoch_ = fence_epoch;
  return std::move(*this);
}

std::span<const NodeId> Ring::FutureList(PartitionId partition) const {
  if (future_.empty()) return PreferenceList(partition);
  MKS_ASSERT_LT(partition, partition_count_);
  return std::span<const NodeId>(future_).subspan(
      future_offsets_[partition], future_offsets_[partition + 1] - future_offsets_[partition]);
}

std::vector<NodeId> Ring::PendingReplicas(PartitionId partition) const {
  std::vector<NodeId> pending;
  if (future_.empty()) return pending;
  const std::span<const NodeId> current = PreferenceList(partition);
  for (NodeId node : FutureList(partition)) {
    if (std::find(current.begin(), current.end(), node) == current.end()) pending.push_back(node);
  }
  return pending;
}

bool Ring::IsPending(NodeId node, PartitionId partition) const {
  if (future_.empty()) return false;
  const std::span<const NodeId> future = FutureList(partition);
  return std::find(future.begin(), future.end(), node) != future.end() &&
         !IsReplica(node, partition);
}

uint64_t Ring::FenceEpoch(PartitionId partition) const {
  MKS_ASSERT_LT(partition, partition_count_);
  return fence_epochs_.empty() ? fence_epoch_ : fence_epochs_[partition];
}

std::vector<PartitionId> Ring::PartitionsOwnedBy(NodeId node) const {
  std::vector<PartitionId> owned;
  if (!IsMember(node)) return owned;
  for (PartitionId p = 0; p < partition_count_; ++p) {
    if (IsReplica(node, p)) owned.push_back(p);
  }
  MKS_ASSERT_LE(owned.size(), partition_count_);
  return owned;
}

bool Ring::IsReplica(NodeId node, PartitionId partition) const {
  std::span<const NodeId> list = PreferenceList(partition);
  return std::find(list.begin(), list.end(), node) != list.end();
}

uint32_t Ring::ReplicaCountOf(NodeId node) const {
  return static_cast<uint32_t>(
      std::count(replicas_.begin(), replicas_.end(), node));
}

bool Ring::IsMember(NodeId node) const {
  return std::binary_search(members_.begin(), members_.end(), node);
}

}  // namespace mks
