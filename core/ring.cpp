#include "core/ring.h"

#include <algorithm>
#include <bit>
#include <numeric>
#include <string>
#include <utility>

#include "core/assertions.h"
#include "core/random.h"

namespace mks {
namespace {

// Seeds keep the key hash and the placement scores independent of each other
// and of other users of StableHash64. Changing any of them remaps the cluster.
constexpr uint64_t kKeyHashSeed = 0x6d6b732d6b657973ULL;        // "mks-keys"
constexpr uint64_t kPlacementHashSeed = 0x6d6b732d72696e67ULL;  // "mks-ring"
constexpr uint64_t kStratumHashSeed = 0x7374726174ULL;         // "strat"

// A stable hash of (partition, node), encoded little-endian byte by byte so
// it is the same on every platform.
uint64_t PairHash(PartitionId partition, NodeId node, uint64_t seed) {
  char bytes[8];
  for (int i = 0; i < 4; ++i) {
    bytes[i] = static_cast<char>((partition >> (8 * i)) & 0xff);
    bytes[4 + i] = static_cast<char>((node >> (8 * i)) & 0xff);
  }
  return StableHash64(std::string_view(bytes, sizeof(bytes)), seed);
}

// The rendezvous scores of one member set: score(p, m) decides which members
// partition p prefers, and the global order in which placement offers slots.
//
// Why stratified: with an independent hash per (partition, node) pair, the
// number of partitions whose top N a node reaches is binomial, a standard
// deviation of 3.4 around a mean of 12 at 64 nodes, while the load cap is
// only 0.4 to 1.3 above the mean; the excess must be moved off, and every
// join or leave reroutes some of it. Here each node's scores over the Q
// partitions are a permutation of Q strata (the node's own hash order of the
// partitions), and the pair hash only orders nodes within a stratum. Every
// node then holds exactly one partition in each stratum, which halves that
// spread (1.8 at 64 nodes) while a score still depends only on (partition,
// node): a join or leave changes no other pair's score.
class ScoreTable {
 public:
  ScoreTable(const std::vector<NodeId>& members, uint32_t partition_count)
      : member_count_(static_cast<uint32_t>(members.size())),
        scores_(size_t{partition_count} * members.size()) {
    MKS_ASSERT_GT(member_count_, 0u);
    MKS_ASSERT_LE(partition_count, uint32_t{1} << kStratumBits);
    std::vector<std::pair<uint64_t, PartitionId>> order(partition_count);
    for (uint32_t m = 0; m < member_count_; ++m) {
      for (PartitionId p = 0; p < partition_count; ++p) {
        order[p] = {PairHash(p, members[m], kStratumHashSeed), p};
      }
      std::sort(order.begin(), order.end());
      for (uint32_t stratum = 0; stratum < partition_count; ++stratum) {
        const PartitionId p = order[stratum].second;
        scores_[Index(p, m)] =
            (uint64_t{stratum} << (64 - kStratumBits)) |
            (PairHash(p, members[m], kPlacementHashSeed) >> kStratumBits);
      }
    }
  }

  uint64_t Score(PartitionId partition, uint32_t member_index) const {
    return scores_[Index(partition, member_index)];
  }

 private:
  // Enough bits for a stratum of any valid Q (Ring::kMaxPartitionCount).
  static constexpr int kStratumBits = 16;

  size_t Index(PartitionId partition, uint32_t member_index) const {
    MKS_ASSERT_LT(member_index, member_count_);
    return size_t{partition} * member_count_ + member_index;
  }

  uint32_t member_count_;
  // scores_[p * member_count_ + m]. Invariant: for each member, the top
  // kStratumBits bits over all partitions are a permutation of [0, Q).
  std::vector<uint64_t> scores_;
};

// A node may hold up to this percentage of the mean replica count (or the
// mean rounded up, when that is larger): the balance bound itself. A cap
// nearer the mean would push more replicas off their best node, and every
// such replica is one more that a join or leave can move.
constexpr uint64_t kLoadAllowancePercent = 110;

// The most replicas one node may hold in a ring of `member_count` members:
// the allowance, or the mean rounded up when the allowance rounds below it.
uint32_t LoadCap(uint64_t member_count, uint32_t partition_count,
                 uint32_t replication_factor) {
  MKS_ASSERT_GT(member_count, 0u);
  const uint64_t total = uint64_t{partition_count} * replication_factor;
  const uint64_t ceiling_mean = (total + member_count - 1) / member_count;
  const uint64_t allowance =
      total * kLoadAllowancePercent / (100 * member_count);
  // A node holds at most one replica of each partition.
  const uint64_t cap =
      std::min<uint64_t>(std::max(ceiling_mean, allowance), partition_count);
  MKS_ASSERT_GE(cap, ceiling_mean);
  MKS_ASSERT_LE(cap, total);
  return static_cast<uint32_t>(cap);
}

// Fixed point with 16 fractional bits, for the smooth keep limits below.
constexpr int kFractionBits = 16;
constexpr uint64_t kOne = uint64_t{1} << kFractionBits;

// Seeds the per-node offset that spreads keep limits (see KeepLimit).
constexpr uint64_t kKeepOffsetSeed = 0x6361702d64697468ULL;  // "cap-dith"

// A stable per-node fraction in [0, 1), in units of 1/kOne.
uint64_t KeepOffset(NodeId node) {
  char bytes[4];
  for (int i = 0; i < 4; ++i) {
    bytes[i] = static_cast<char>((node >> (8 * i)) & 0xff);
  }
  return StableHash64(std::string_view(bytes, sizeof(bytes)),
                      kKeepOffsetSeed) & (kOne - 1);
}

// The keep target before the node's offset, in units of 1/kOne: the
// allowance (110% of the mean) plus kKeepHeadroom. The headroom was measured:
// larger values keep more replicas on their best node (less movement while
// the cap stays the same) but bunch the keep limits' steps together again.
constexpr uint64_t kKeepHeadroom = 20480;  // 0.3125 replicas

uint64_t KeepTarget(uint64_t member_count, uint64_t total) {
  MKS_ASSERT_GT(member_count, 0u);
  const uint64_t numerator = total * kLoadAllowancePercent;
  const uint64_t denominator = 100 * member_count;
  // Split so that no product overflows for any valid ring.
  const uint64_t whole = numerator / denominator;
  const uint64_t fraction = (numerator % denominator) * kOne / denominator;
  MKS_ASSERT_LT(fraction, kOne);
  return whole * kOne + fraction + kKeepHeadroom;
}

// How many of its own (rendezvous top-N) replicas `node` keeps when it has
// more than that: floor(target - offset), at most the load cap. Why not the
// cap itself: the cap is an integer function of the member count and steps
// down by one for every node at once every few cluster sizes, and each
// node over it would then hand off (or on a leave take back) one replica:
// about n replicas moved on that one join or leave. With a per-node offset
// the limits step one node at a time as the mean shrinks, a few per join or
// leave.
uint32_t KeepLimit(NodeId node, uint64_t keep_target, uint32_t load_cap) {
  const uint64_t offset = KeepOffset(node);
  MKS_ASSERT_LT(offset, kOne);
  const uint64_t limit =
      keep_target > offset ? (keep_target - offset) >> kFractionBits : 0;
  return static_cast<uint32_t>(std::min<uint64_t>(limit, load_cap));
}

// One replica candidate: a (partition, member) pair and its rendezvous score.
struct Candidate {
  uint64_t score;
  PartitionId partition;
  uint32_t member_index;  // index into the sorted member list
};

// Highest score first; ties (astronomically rare) broken by partition, then
// member, so the order is total and the same everywhere.
bool ComesBefore(const Candidate& a, const Candidate& b) {
  if (a.score != b.score) return a.score > b.score;
  if (a.partition != b.partition) return a.partition < b.partition;
  return a.member_index < b.member_index;
}

// Working state of one placement. Invariant: load[m] equals the number of
// partitions whose `chosen` list holds member m; no list holds a member twice
// or more than replication_factor members.
struct Placement {
  uint32_t replication_factor;
  std::vector<std::vector<uint32_t>> chosen;  // per partition, member indexes
  std::vector<uint32_t> load;                 // per member

  bool Holds(PartitionId partition, uint32_t member) const {
    const std::vector<uint32_t>& list = chosen[partition];
    return std::find(list.begin(), list.end(), member) != list.end();
  }
  bool Full(PartitionId partition) const {
    return chosen[partition].size() == replication_factor;
  }
  void Add(PartitionId partition, uint32_t member) {
    MKS_ASSERT(!Holds(partition, member));
    MKS_ASSERT_LT(chosen[partition].size(), replication_factor);
    chosen[partition].push_back(member);
    ++load[member];
  }
  void Replace(PartitionId partition, uint32_t old_member, uint32_t new_member) {
    std::vector<uint32_t>& list = chosen[partition];
    auto it = std::find(list.begin(), list.end(), old_member);
    MKS_ASSERT(it != list.end());
    MKS_ASSERT(!Holds(partition, new_member));
    *it = new_member;
    --load[old_member];
    ++load[new_member];
  }
};

// Orders each partition's replicas by descending score: the preference order.
std::vector<NodeId> Flatten(const Placement& placement,
                            const std::vector<NodeId>& members,
                            const ScoreTable& scores) {
  std::vector<NodeId> replicas;
  replicas.reserve(placement.chosen.size() * placement.replication_factor);
  for (PartitionId p = 0; p < placement.chosen.size(); ++p) {
    std::vector<std::pair<uint64_t, NodeId>> ordered;
    for (uint32_t m : placement.chosen[p]) {
      ordered.emplace_back(scores.Score(p, m), members[m]);
    }
    std::sort(ordered.begin(), ordered.end(),
              [](const auto& a, const auto& b) { return a > b; });
    MKS_ASSERT_EQ(ordered.size(), placement.replication_factor);
    for (const auto& entry : ordered) replicas.push_back(entry.second);
  }
  return replicas;
}

// Returns the members of `partition` in descending rendezvous score order.
std::vector<uint32_t> RankMembers(PartitionId partition, uint32_t member_count,
                                  const ScoreTable& scores) {
  std::vector<std::pair<uint64_t, uint32_t>> scored;
  scored.reserve(member_count);
  for (uint32_t m = 0; m < member_count; ++m) {
    scored.emplace_back(scores.Score(partition, m), m);
  }
  std::sort(scored.begin(), scored.end(),
            [](const auto& a, const auto& b) { return a > b; });
  std::vector<uint32_t> ranked;
  ranked.reserve(scored.size());
  for (const auto& entry : scored) ranked.push_back(entry.second);
  return ranked;
}

// Offers `candidates` (sorted by ComesBefore) in order; each is accepted
// while its partition has an open slot and its member holds less than
// `limit[member]`. With one common score order for both sides this is the
// stable assignment: a join or leave changes it along chains of displaced
// slots that end at a member with room.
void AcceptInOrder(const std::vector<Candidate>& candidates,
                   const std::vector<uint32_t>& limit, Placement& placement) {
  MKS_ASSERT_EQ(limit.size(), placement.load.size());
  for (const Candidate& c : candidates) {
    if (placement.Full(c.partition)) continue;
    if (placement.load[c.member_index] >= limit[c.member_index]) continue;
    if (placement.Holds(c.partition, c.member_index)) continue;
    placement.Add(c.partition, c.member_index);
  }
}

// Fills a partition that no member with room could join because every such
// member already holds it: a member without room that does not hold it takes
// the slot and hands one of its other replicas to a member with room.
// Returns false when no such exchange exists.
bool FillByExchange(PartitionId partition, uint32_t load_cap,
                    Placement& placement) {
  const uint32_t member_count = static_cast<uint32_t>(placement.load.size());
  for (uint32_t giver = 0; giver < member_count; ++giver) {
    if (placement.Holds(partition, giver)) continue;
    for (PartitionId other = 0; other < placement.chosen.size(); ++other) {
      if (!placement.Holds(other, giver)) continue;
      for (uint32_t taker = 0; taker < member_count; ++taker) {
        if (placement.load[taker] >= load_cap) continue;
        if (placement.Holds(other, taker)) continue;
        placement.Replace(other, giver, taker);
        placement.Add(partition, giver);
        return true;
      }
    }
  }
  return false;
}

// Returns each member's limit: a member with more own (top-N) replicas than
// its keep limit keeps that many and takes nothing more; any other member
// keeps all its own and may take others up to the load cap.
std::vector<uint32_t> MemberLimits(const std::vector<NodeId>& members,
                                   const std::vector<uint32_t>& own_count,
                                   uint64_t total, uint32_t load_cap) {
  MKS_ASSERT_EQ(own_count.size(), members.size());
  const uint64_t keep_target = KeepTarget(members.size(), total);
  std::vector<uint32_t> limit(members.size());
  for (size_t m = 0; m < members.size(); ++m) {
    const uint32_t keep = KeepLimit(members[m], keep_target, load_cap);
    limit[m] = own_count[m] > keep ? keep : load_cap;
    MKS_ASSERT_LE(limit[m], load_cap);
  }
  return limit;
}

// Completes the lists the limits left short. Not needed in any measured
// configuration; it exists so that placement never fails: first every
// member may fill up to the cap, then members exchange replicas, and only if
// no exchange exists does a list take a member above the cap.
void CompleteShortLists(const std::vector<Candidate>& others,
                        const std::vector<std::vector<uint32_t>>& ranking,
                        uint32_t load_cap, Placement& placement) {
  AcceptInOrder(others, std::vector<uint32_t>(placement.load.size(), load_cap),
                placement);
  for (PartitionId p = 0; p < placement.chosen.size(); ++p) {
    while (!placement.Full(p)) {
      if (FillByExchange(p, load_cap, placement)) continue;
      for (uint32_t m : ranking[p]) {
        if (!placement.Holds(p, m)) {
          placement.Add(p, m);
          break;
        }
      }
    }
  }
}

// The placement algorithm described in ring.h. Why this shape: plain
// rendezvous hashing (each partition takes its N top-scored members) moves
// only what must move on a join or leave, but leaves the busiest node well
// above 1.1x the mean at 64 nodes, even with the stratified scores. So each
// node keeps its best-scored top-N replicas up to its keep limit, and the
// slots that frees go, in one global score order, to the best-scored member
// that kept all its own and has room under the cap. Why keep limits rather
// than the cap: see KeepLimit.
std::vector<NodeId> Place(const std::vector<NodeId>& members,
                          uint32_t load_cap,
                          uint32_t partition_count,
                          uint32_t replication_factor) {
  const uint32_t member_count = static_cast<uint32_t>(members.size());
  const uint64_t total = uint64_t{partition_count} * replication_factor;
  Placement placement{replication_factor,
                      std::vector<std::vector<uint32_t>>(partition_count),
                      std::vector<uint32_t>(member_count, 0)};
  const ScoreTable scores(members, partition_count);
  std::vector<std::vector<uint32_t>> ranking(partition_count);
  std::vector<uint32_t> own_count(member_count, 0);
  std::vector<Candidate> own;
  own.reserve(total);
  for (PartitionId p = 0; p < partition_count; ++p) {
    ranking[p] = RankMembers(p, member_count, scores);
    for (uint32_t i = 0; i < replication_factor; ++i) {
      const uint32_t m = ranking[p][i];
      ++own_count[m];
      own.push_back({scores.Score(p, m), p, m});
    }
  }
  const std::vector<uint32_t> limit =
      MemberLimits(members, own_count, total, load_cap);
  std::sort(own.begin(), own.end(), ComesBefore);
  AcceptInOrder(own, limit, placement);

  std::vector<Candidate> others;
  for (PartitionId p = 0; p < partition_count; ++p) {
    if (placement.Full(p)) continue;
    for (uint32_t i = replication_factor; i < member_count; ++i) {
      const uint32_t m = ranking[p][i];
      others.push_back({scores.Score(p, m), p, m});
    }
  }
  std::sort(others.begin(), others.end(), ComesBefore);
  AcceptInOrder(others, limit, placement);
  CompleteShortLists(others, ranking, load_cap, placement);
  MKS_ASSERT_EQ(std::accumulate(placement.load.begin(), placement.load.end(),
                                uint64_t{0}),
                total);
  return Flatten(placement, members, scores);
}

}  // namespace

Result<Ring> Ring::Build(std::vector<NodeId> members, uint64_t epoch,
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
  std::sort(members.begin(), members.end());
  if (members.front() == kNoNode) {
    return Status::InvalidArgument("node id 0 in the member list");
  }
  auto duplicate = std::adjacent_find(members.begin(), members.end());
  if (duplicate != members.end()) {
    return Status::InvalidArgument("node " + std::to_string(*duplicate) +
                                   " listed twice");
  }
  const uint32_t n = std::min<uint32_t>(options.replication_factor,
                                        static_cast<uint32_t>(members.size()));
  const uint32_t load_cap = LoadCap(members.size(), q, n);
  std::vector<NodeId> replicas = Place(members, load_cap, q, n);
  return Ring(std::move(members), epoch, q, n, options.replication_factor,
              load_cap, std::move(replicas));
}

Ring::Ring(std::vector<NodeId> members, uint64_t epoch,
           uint32_t partition_count, uint32_t replication_factor,
           uint32_t requested_replication_factor,
           uint32_t load_cap, std::vector<NodeId> replicas)
    : members_(std::move(members)),
      epoch_(epoch),
      partition_count_(partition_count),
      replication_factor_(replication_factor),
      requested_replication_factor_(requested_replication_factor),
      load_cap_(load_cap),
      replicas_(std::move(replicas)) {
  MKS_ASSERT_EQ(replicas_.size(),
                size_t{partition_count_} * replication_factor_);
  MKS_ASSERT_LE(replication_factor_, members_.size());
  MKS_ASSERT_GE(uint64_t{load_cap_} * members_.size(),
                uint64_t{partition_count_} * replication_factor_);
  MKS_ASSERT_GE(replication_factor_, 1u);
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
  return std::span<const NodeId>(replicas_).subspan(
      size_t{partition} * replication_factor_, replication_factor_);
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
