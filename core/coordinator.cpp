#include "core/coordinator.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <utility>
#include <vector>

#include "core/assertions.h"
#include "core/proto/mks.pb.h"
#include "core/replica.h"

namespace mks {
namespace {

constexpr std::string_view kReplicaPut = "replica.put";
constexpr std::string_view kReplicaGet = "replica.get";
constexpr std::string_view kReplicaDropDamaged = "replica.drop_damaged";
// How often a coordinator refused as stale looks for its node's newer ring.
constexpr int64_t kRingPollNs = 2'000'000;

std::string Lowercase(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string PutPayload(std::string_view key, const Version& version,
                       uint64_t ring_epoch, bool repair) {
  proto::ReplicaPutRequest request;
  VersionToProto(key, version, request.mutable_version());
  request.set_ring_epoch(ring_epoch);
  request.set_repair(repair);
  return request.SerializeAsString();
}

// One replica's answer to a read: its newest version, or none.
Result<std::optional<Version>> ParseGetResponse(const std::string& bytes) {
  proto::ReplicaGetResponse response;
  if (!response.ParseFromString(bytes)) {
    return Status::Internal("malformed replica.get response");
  }
  if (!response.error().empty()) return Status::IOError(response.error());
  if (!response.found()) return std::optional<Version>();
  Result<Version> version = VersionFromProto(response.version());
  MKS_RETURN_IF_ERROR(version.status());
  return std::optional<Version>(std::move(*version));
}

bool OlderThan(const std::optional<Version>& held, const Version& newest) {
  return !held.has_value() || Supersedes(newest, *held);
}

}  // namespace

// ---- Consistency ----

Result<Consistency> ParseConsistency(std::string_view text) {
  const std::string lower = Lowercase(text);
  if (lower == "one") return Consistency::One();
  if (lower == "quorum") return Consistency::Quorum();
  if (lower == "all") return Consistency::All();
  if (lower == "default") return Consistency::Default();
  uint32_t count = 0;
  const char* end = text.data() + text.size();
  const auto [ptr, error] = std::from_chars(text.data(), end, count);
  if (text.empty() || error != std::errc() || ptr != end || count == 0) {
    return Status::InvalidArgument("consistency must be one, quorum, all or a "
                                   "replica count >= 1, not '" +
                                   std::string(text) + "'");
  }
  return Consistency::Count(count);
}

std::string ToString(Consistency consistency) {
  switch (consistency.level) {
    case ConsistencyLevel::kDefault: return "DEFAULT";
    case ConsistencyLevel::kOne: return "ONE";
    case ConsistencyLevel::kQuorum: return "QUORUM";
    case ConsistencyLevel::kAll: return "ALL";
    case ConsistencyLevel::kCount: return std::to_string(consistency.count);
  }
  MKS_ASSERT_MSG(false, "unknown consistency level");
  return "";
}

uint32_t DamageRepairAnswers(uint32_t replication_factor) {
  MKS_ASSERT_GE(replication_factor, 1u);
  // With one replica there is nobody to repair from.
  if (replication_factor == 1) return 2;
  return std::min(replication_factor - 1, replication_factor / 2 + 1);
}

Result<uint32_t> RequiredReplies(Consistency consistency,
                                 uint32_t replication_factor) {
  MKS_ASSERT_GE(replication_factor, 1u);
  switch (consistency.level) {
    case ConsistencyLevel::kOne: return 1u;
    case ConsistencyLevel::kQuorum: return replication_factor / 2 + 1;
    case ConsistencyLevel::kAll: return replication_factor;
    case ConsistencyLevel::kCount:
      if (consistency.count < 1 || consistency.count > replication_factor) {
        return Status::InvalidArgument(
            "consistency " + std::to_string(consistency.count) +
            " is outside 1.." + std::to_string(replication_factor) +
            " (the replication factor)");
      }
      return consistency.count;
    case ConsistencyLevel::kDefault:
      return Status::InvalidArgument("the default consistency must be resolved "
                                     "before counting replies");
  }
  MKS_ASSERT_MSG(false, "unknown consistency level");
  return 0u;
}

// ---- Coordinator ----

Coordinator::Coordinator(runtime::Scheduler* scheduler,
                         runtime::ProcessId process, RpcEndpoint* rpc,
                         ReplicaService* local, HybridLogicalClock* hlc,
                         RingSource ring, TimestampSource next_timestamp,
                         CoordinatorOptions options, DownSource known_down)
    : scheduler_(scheduler),
      process_(process),
      rpc_(rpc),
      local_(local),
      hlc_(hlc),
      ring_(std::move(ring)),
      next_timestamp_(std::move(next_timestamp)),
      known_down_(std::move(known_down)),
      options_(options) {
  MKS_ASSERT(scheduler_ != nullptr && rpc_ != nullptr && local_ != nullptr);
  MKS_ASSERT(hlc_ != nullptr && ring_ && next_timestamp_);
  MKS_ASSERT_GT(options_.timeout_ns, 0);
  MKS_ASSERT(options_.default_read.level != ConsistencyLevel::kDefault);
  MKS_ASSERT(options_.default_write.level != ConsistencyLevel::kDefault);
}

Result<uint32_t> Coordinator::Required(Consistency consistency, bool is_read,
                                       uint32_t replication_factor) const {
  if (consistency.level == ConsistencyLevel::kDefault) {
    consistency = is_read ? options_.default_read : options_.default_write;
  }
  return RequiredReplies(consistency, replication_factor);
}

runtime::Future<std::string> Coordinator::SendToReplica(
    NodeId replica, std::string_view method, std::string payload,
    int64_t timeout_ns) {
  ++stats_.replica_messages;
  if (replica != rpc_->self()) {
    return rpc_->Call(replica, method, std::move(payload), timeout_ns);
  }
  // This node is a replica itself: serve it in a fiber of its own, so the
  // local answer races the remote ones exactly like another replica's.
  runtime::Promise<std::string> promise(scheduler_);
  runtime::Future<std::string> future = promise.GetFuture();
  const int64_t deadline_ns = SaturatingDeadline(scheduler_->NowNanos(), timeout_ns);
  scheduler_->Spawn(process_, "local-replica",
                    [this, method = std::string(method),
                     payload = std::move(payload), deadline_ns,
                     promise = std::move(promise)]() mutable {
                      Result<std::string> answer =
                          local_->Serve(method, payload, deadline_ns);
                      if (answer.ok()) {
                        promise.SetValue(std::move(*answer));
                      } else {
                        promise.SetError(answer.status());
                      }
                    });
  return future;
}

// Invariant: futures[i] is the pending answer of replicas[i]; answered
// entries are removed.
struct Coordinator::InFlightAnswers {
  std::vector<NodeId> replicas;
  std::vector<runtime::Future<std::string>> futures;

  bool empty() const { return futures.empty(); }
  // Waits for the next answer until `deadline_ns`; nullopt on timeout.
  std::optional<std::pair<NodeId, Result<std::string>>> Next(
      runtime::Scheduler* scheduler, int64_t deadline_ns) {
    MKS_ASSERT(!futures.empty());
    MKS_ASSERT_EQ(replicas.size(), futures.size());
    const int64_t remaining_ns = deadline_ns - scheduler->NowNanos();
    if (remaining_ns <= 0) return std::nullopt;
    Result<size_t> ready = runtime::WaitAnyFor(
        scheduler, std::span<runtime::Future<std::string>>(futures), remaining_ns);
    if (!ready.ok()) return std::nullopt;
    const size_t index = *ready;
    std::pair<NodeId, Result<std::string>> answer{replicas[index],
                                                  futures[index].Get()};
    replicas.erase(replicas.begin() + static_cast<std::ptrdiff_t>(index));
    futures.erase(futures.begin() + static_cast<std::ptrdiff_t>(index));
    return answer;
  }
};

namespace {

std::string ShortfallMessage(std::string_view what, std::string_view key,
                             uint32_t got, uint32_t needed, uint32_t replicas,
                             const std::string& errors) {
  return std::string(what) + " of " + EscapeKeyForMessage(key) + ": " +
         std::to_string(got) + " of " + std::to_string(replicas) +
         " replicas answered, " + std::to_string(needed) + " needed" +
         (errors.empty() ? std::string(" (the rest timed out)") : "; " + errors);
}

void AppendError(std::string* errors, NodeId replica, const Status& status) {
  if (!errors->empty()) *errors += "; ";
  *errors += "node " + std::to_string(replica) + ": " + status.ToString();
}

}  // namespace

std::vector<NodeId> Coordinator::LiveReplicas(std::span<const NodeId> replicas,
                                              std::string* down_names) const {
  MKS_ASSERT(down_names != nullptr);
  std::vector<NodeId> live;
  live.reserve(replicas.size());
  for (NodeId replica : replicas) {
    // This node answers for itself whatever its view says.
    if (known_down_ == nullptr || replica == rpc_->self() || !known_down_(replica)) {
      live.push_back(replica);
      continue;
    }
    *down_names += (down_names->empty() ? "node " : ", node ") + std::to_string(replica) +
                   ": down";
  }
  MKS_ASSERT_LE(live.size(), replicas.size());
  return live;
}

Status Coordinator::TooFewAlive(std::string_view what, std::string_view key, size_t live,
                                uint32_t needed, uint32_t replicas,
                                const std::string& down_names) const {
  MKS_ASSERT_LT(live, needed);
  return Status::Unavailable(std::string(what) + " of " + EscapeKeyForMessage(key) + ": " +
                             std::to_string(live) + " of " + std::to_string(replicas) +
                             " replicas alive, " + std::to_string(needed) + " needed (" +
                             down_names + ")");
}

Result<WriteResult> Coordinator::Put(std::string_view key, std::string value,
                                     Consistency consistency) {
  Result<Timestamp> stamp = next_timestamp_();
  if (!stamp.ok()) {
    ++stats_.writes_failed;
    return stamp.status();
  }
  return Write(key, Version::Write(*stamp, rpc_->self(), std::move(value)),
               consistency);
}

Result<WriteResult> Coordinator::Delete(std::string_view key,
                                        Consistency consistency) {
  Result<Timestamp> stamp = next_timestamp_();
  if (!stamp.ok()) {
    ++stats_.writes_failed;
    return stamp.status();
  }
  return Write(key, Version::Tombstone(*stamp, rpc_->self()), consistency);
}

Status Coordinator::NoRing() const {
  return Status::Unavailable(
      "node " + std::to_string(rpc_->self()) +
      " knows no member list: it joined through gossip and owns no data yet; send "
      "requests to a member (see /v1/members)");
}

std::shared_ptr<const Ring> Coordinator::AwaitNewerRing(uint64_t epoch, int64_t deadline_ns) {
  std::shared_ptr<const Ring> ring = ring_();
  while ((ring == nullptr || ring->epoch() <= epoch) && scheduler_->NowNanos() < deadline_ns) {
    scheduler_->SleepFor(std::min<int64_t>(kRingPollNs, deadline_ns - scheduler_->NowNanos()));
    ring = ring_();
  }
  return ring;
}

Result<WriteResult> Coordinator::Write(std::string_view key, Version version,
                                       Consistency consistency) {
  // Held for the whole attempt: a newer ring may be published meanwhile.
  std::shared_ptr<const Ring> ring = ring_();
  if (ring == nullptr) {
    ++stats_.writes_failed;
    return NoRing();
  }
  const int64_t deadline_ns = scheduler_->NowNanos() + options_.timeout_ns;
  for (;;) {
    bool stale = false;
    Result<WriteResult> written = WriteOnce(*ring, key, version, consistency, deadline_ns, &stale);
    if (written.ok() || !stale) return written;
    // A replica's ring moved the key's partition after ours: catch up and
    // redo the write (the same version, so a partial first attempt is harmless).
    std::shared_ptr<const Ring> newer = AwaitNewerRing(ring->epoch(), deadline_ns);
    if (newer == nullptr || newer->epoch() <= ring->epoch()) return written;
    ++stats_.stale_retries;
    --stats_.writes_failed;
    --stats_.quorum_failures;
    ring = std::move(newer);
  }
}

Result<WriteResult> Coordinator::WriteOnce(const Ring& ring, std::string_view key,
                                           const Version& version, Consistency consistency,
                                           int64_t deadline_ns, bool* stale) {
  const PartitionId partition = ring.PartitionOf(key);
  const std::span<const NodeId> replicas = ring.PreferenceList(partition);
  const std::span<const NodeId> future = canaries_.skip_pending_replicas
                                             ? replicas
                                             : ring.FutureList(partition);
  const uint32_t n = static_cast<uint32_t>(replicas.size());
  Result<uint32_t> needed = Required(consistency, /*is_read=*/false, n);
  Result<uint32_t> needed_future = Required(consistency, /*is_read=*/false,
                                            static_cast<uint32_t>(future.size()));
  if (needed.ok() && !needed_future.ok()) needed = needed_future.status();
  Status valid = needed.ok() ? local_->Validate(key, version) : needed.status();
  if (!valid.ok()) {
    ++stats_.writes_failed;
    return valid;
  }
  const uint32_t w = canaries_.ack_before_quorum ? 1u : *needed;
  const uint32_t w_future = canaries_.ack_before_quorum ? 1u : *needed_future;
  // The serving replicas, then the pending ones: W is counted on both the
  // serving and the future lists, so the write is on W replicas of
  // whichever list reads use, before and after the partition flips.
  std::vector<NodeId> targets(replicas.begin(), replicas.end());
  for (NodeId node : future) {
    if (std::find(targets.begin(), targets.end(), node) == targets.end()) targets.push_back(node);
  }
  if (targets.size() > replicas.size()) ++stats_.pending_writes;
  auto in_list = [](std::span<const NodeId> list, NodeId node) {
    return std::find(list.begin(), list.end(), node) != list.end();
  };
  std::string down_names;
  const std::vector<NodeId> live = LiveReplicas(targets, &down_names);
  const auto live_in = [&](std::span<const NodeId> list) {
    return static_cast<uint32_t>(
        std::count_if(live.begin(), live.end(), [&](NodeId node) { return in_list(list, node); }));
  };
  const char* what = version.tombstone ? "delete" : "write";
  if (live_in(replicas) < w || live_in(future) < w_future) {
    ++stats_.writes_failed;
    ++stats_.quorum_failures;
    const bool short_now = live_in(replicas) < w;
    return TooFewAlive(what, key, short_now ? live_in(replicas) : live_in(future),
                       short_now ? w : w_future,
                       static_cast<uint32_t>(short_now ? n : future.size()), down_names);
  }
  const std::string payload = PutPayload(key, version, ring.epoch(), /*repair=*/false);
  InFlightAnswers in_flight;
  const int64_t timeout_ns = std::max<int64_t>(deadline_ns - scheduler_->NowNanos(), 1);
  for (NodeId replica : live) {
    in_flight.replicas.push_back(replica);
    in_flight.futures.push_back(SendToReplica(replica, kReplicaPut, payload, timeout_ns));
  }
  uint32_t acks = 0;
  uint32_t acks_now = 0;
  uint32_t acks_future = 0;
  // Answers still possible in each list, to stop once W cannot be reached.
  uint32_t open_now = live_in(replicas);
  uint32_t open_future = live_in(future);
  std::string errors = down_names;
  while ((acks_now < w || acks_future < w_future) && acks_now + open_now >= w &&
         acks_future + open_future >= w_future && !in_flight.empty()) {
    auto answer = in_flight.Next(scheduler_, deadline_ns);
    if (!answer.has_value()) break;
    const NodeId replica = answer->first;
    const bool now = in_list(replicas, replica);
    const bool later = in_list(future, replica);
    open_now -= now ? 1 : 0;
    open_future -= later ? 1 : 0;
    if (answer->second.ok()) {
      ++acks;
      acks_now += now ? 1 : 0;
      acks_future += later ? 1 : 0;
    } else {
      if (answer->second.status().IsStaleEpoch()) *stale = true;
      AppendError(&errors, replica, answer->second.status());
    }
  }
  if (acks_now < w || acks_future < w_future) {
    ++stats_.writes_failed;
    ++stats_.quorum_failures;
    if (acks_now < w) return Status::Unavailable(ShortfallMessage(what, key, acks_now, w, n, errors));
    return Status::Unavailable(ShortfallMessage(
        std::string(what) + " (pending replicas)", key, acks_future, w_future,
        static_cast<uint32_t>(future.size()), errors));
  }
  MKS_ASSERT_GE(acks, w);
  ++stats_.writes_ok;
  return WriteResult{version, acks};
}

bool Coordinator::Newer(const Version& candidate,
                        const std::optional<Version>& best) const {
  if (canaries_.ignore_tombstones && candidate.tombstone) return false;
  if (!best.has_value()) return true;
  if (canaries_.winner_by_value) return candidate.value > best->value;
  return Supersedes(candidate, *best);
}

Result<ReadResult> Coordinator::Get(std::string_view key,
                                    Consistency consistency) {
  // Held for the whole attempt: a newer ring may be published meanwhile.
  std::shared_ptr<const Ring> ring = ring_();
  if (ring == nullptr) {
    ++stats_.reads_failed;
    return NoRing();
  }
  const int64_t deadline_ns = scheduler_->NowNanos() + options_.timeout_ns;
  for (;;) {
    bool stale = false;
    Result<ReadResult> read = GetOnce(*ring, key, consistency, deadline_ns, &stale);
    if (read.ok() || !stale) return read;
    std::shared_ptr<const Ring> newer = AwaitNewerRing(ring->epoch(), deadline_ns);
    if (newer == nullptr || newer->epoch() <= ring->epoch()) return read;
    ++stats_.stale_retries;
    --stats_.reads_failed;
    --stats_.quorum_failures;
    ring = std::move(newer);
  }
}

Result<ReadResult> Coordinator::GetOnce(const Ring& ring, std::string_view key,
                                        Consistency consistency, int64_t deadline_ns,
                                        bool* stale) {
  const std::span<const NodeId> replicas = ring.ReplicasForKey(key);
  const uint32_t n = static_cast<uint32_t>(replicas.size());
  Result<uint32_t> needed = Required(consistency, /*is_read=*/true, n);
  if (!needed.ok()) {
    ++stats_.reads_failed;
    return needed.status();
  }
  if (key.empty() || key.size() > local_->max_key_bytes()) {
    ++stats_.reads_failed;
    return Status::InvalidArgument("key of " + std::to_string(key.size()) +
                                   " bytes is outside 1.." +
                                   std::to_string(local_->max_key_bytes()));
  }
  const uint32_t r = *needed;
  std::string down_names;
  const std::vector<NodeId> live = LiveReplicas(replicas, &down_names);
  if (live.size() < r) {
    ++stats_.reads_failed;
    ++stats_.quorum_failures;
    return TooFewAlive("read", key, live.size(), r, n, down_names);
  }
  proto::ReplicaGetRequest request;
  request.set_key(std::string(key));
  request.set_ring_epoch(ring.epoch());
  const std::string payload = request.SerializeAsString();
  InFlightAnswers in_flight;
  const int64_t timeout_ns = std::max<int64_t>(deadline_ns - scheduler_->NowNanos(), 1);
  for (NodeId replica : live) {
    in_flight.replicas.push_back(replica);
    in_flight.futures.push_back(SendToReplica(replica, kReplicaGet, payload, timeout_ns));
  }
  ReadAnswers answers;
  uint32_t failures = static_cast<uint32_t>(n - live.size());
  std::string errors = down_names;
  while (answers.valid.size() < r && failures <= n - r && !in_flight.empty()) {
    auto answer = in_flight.Next(scheduler_, deadline_ns);
    if (!answer.has_value()) break;
    if (!TakeReadAnswer(answer->first, answer->second, &answers)) {
      ++failures;
      if (!answer->second.ok() && answer->second.status().IsStaleEpoch()) *stale = true;
      AppendError(&errors, answer->first, answer->second.ok()
                                              ? Status::Internal("malformed replica.get response")
                                              : answer->second.status());
    }
  }
  RepairState repair{std::string(key), ring.epoch(), n, {}, {}, 0, deadline_ns, {}, {}};
  if (ring.InTransition()) {
    const PartitionId partition = ring.PartitionOf(key);
    repair.pending = ring.PendingReplicas(partition);
    const std::span<const NodeId> future = ring.FutureList(partition);
    repair.future.assign(future.begin(), future.end());
    Result<uint32_t> needed_future =
        Required(consistency, /*is_read=*/true, static_cast<uint32_t>(future.size()));
    repair.needed_future = needed_future.ok() ? *needed_future : 0;
  }
  if (answers.valid.size() < r) {
    ++stats_.reads_failed;
    ++stats_.quorum_failures;
    Status shortfall = Status::Unavailable(ShortfallMessage(
        "read", key, static_cast<uint32_t>(answers.valid.size()), r, n, errors));
    FinishRead(std::move(repair), std::move(answers), std::move(in_flight));
    return shortfall;
  }
  ReadResult result;
  result.replies = static_cast<uint32_t>(answers.valid.size());
  result.version = NewestOf(answers);
  if (result.version.has_value() && !canaries_.skip_read_repair) {
    Status repaired = RepairBeforeReply(*result.version, answers, r, &repair);
    if (!repaired.ok()) {
      ++stats_.reads_failed;
      ++stats_.quorum_failures;
      FinishRead(std::move(repair), std::move(answers), std::move(in_flight));
      return repaired;
    }
  }
  FinishRead(std::move(repair), std::move(answers), std::move(in_flight));
  result.found = result.version.has_value() && !result.version->tombstone;
  if (result.found) {
    ++stats_.reads_ok;
  } else {
    ++stats_.reads_not_found;
  }
  return result;
}

bool Coordinator::TakeReadAnswer(NodeId replica, const Result<std::string>& reply,
                                 ReadAnswers* answers) {
  MKS_ASSERT(answers != nullptr);
  Result<std::optional<Version>> held =
      reply.ok() ? ParseGetResponse(*reply)
                 : Result<std::optional<Version>>(reply.status());
  if (!held.ok()) {
    if (held.status().IsCorruption()) answers->damaged.push_back(replica);
    return false;
  }
  // Causality: whatever this node does after the read is ordered after
  // every version the read saw. A version too far ahead is refused (and
  // counted) by the clock; see core/hlc.h.
  if (held->has_value() && !canaries_.clock_ignores_reads) {
    (void)hlc_->Update((*held)->timestamp);
  }
  answers->valid.emplace_back(replica, std::move(*held));
  return true;
}

std::optional<Version> Coordinator::NewestOf(const ReadAnswers& answers) const {
  std::optional<Version> newest;
  for (const auto& [replica, held] : answers.valid) {
    if (held.has_value() && Newer(*held, newest)) newest = held;
  }
  return newest;
}

Status Coordinator::RepairBeforeReply(const Version& newest,
                                      const ReadAnswers& answers,
                                      uint32_t needed, RepairState* repair) {
  MKS_ASSERT(repair != nullptr);
  // The answer must be held by R replicas before it is returned: otherwise a
  // version read from a single replica (the remnant of a failed write) could
  // be seen by this read and missed by the next one.
  const std::string& key = repair->key;
  uint32_t holders = 0;
  uint32_t future_holders = 0;
  const auto in_future = [&](NodeId node) {
    return std::find(repair->future.begin(), repair->future.end(), node) != repair->future.end();
  };
  InFlightAnswers repairs;
  const std::string payload = PutPayload(key, newest, repair->ring_epoch, /*repair=*/true);
  const int64_t remaining_ns = repair->deadline_ns - scheduler_->NowNanos();
  repair->sent_version = newest;
  for (const auto& [replica, held] : answers.valid) {
    if (!OlderThan(held, newest)) {
      ++holders;
      future_holders += in_future(replica) ? 1 : 0;
      continue;
    }
    if (remaining_ns <= 0) continue;  // no time left to wait for a repair
    ++stats_.read_repairs_foreground;
    repair->sent_to.push_back(replica);
    repairs.replicas.push_back(replica);
    repairs.futures.push_back(
        SendToReplica(replica, kReplicaPut, payload, remaining_ns));
  }
  // Pending replicas were not asked; what they hold is unknown, and a
  // repair of an older version is a no-op there.
  for (NodeId replica : repair->pending) {
    if (remaining_ns <= 0 || (known_down_ != nullptr && known_down_(replica))) continue;
    repair->sent_to.push_back(replica);
    repairs.replicas.push_back(replica);
    repairs.futures.push_back(SendToReplica(replica, kReplicaPut, payload, remaining_ns));
  }
  std::string errors;
  if (canaries_.reply_before_repair) holders += static_cast<uint32_t>(repairs.futures.size());
  while ((holders < needed || future_holders < repair->needed_future) && !repairs.empty()) {
    auto answer = repairs.Next(scheduler_, repair->deadline_ns);
    if (!answer.has_value()) break;
    if (answer->second.ok()) {
      const bool pending = std::find(repair->pending.begin(), repair->pending.end(),
                                     answer->first) != repair->pending.end();
      holders += pending ? 0 : 1;
      future_holders += in_future(answer->first) ? 1 : 0;
    } else {
      AppendError(&errors, answer->first, answer->second.status());
    }
  }
  if (holders >= needed && future_holders >= repair->needed_future) return Status::Ok();
  return Status::Unavailable("read of " + EscapeKeyForMessage(key) +
                             ": the newest version reached " +
                             std::to_string(holders) + " replicas after repair, " +
                             std::to_string(needed) + " needed" +
                             (errors.empty() ? "" : "; " + errors));
}

void Coordinator::FinishRead(RepairState repair, ReadAnswers answers,
                             InFlightAnswers in_flight) {
  if (canaries_.skip_read_repair) return;
  if (in_flight.empty() && answers.damaged.empty() &&
      repair.sent_version == NewestOf(answers)) {
    return;  // every answer is in and every stale one was repaired
  }
  scheduler_->Spawn(
      process_, "read-repair",
      [this, repair = std::move(repair), answers = std::move(answers),
       in_flight = std::move(in_flight)]() mutable {
        while (!in_flight.empty()) {
          auto answer = in_flight.Next(scheduler_, repair.deadline_ns);
          if (!answer.has_value()) break;
          (void)TakeReadAnswer(answer->first, answer->second, &answers);
        }
        RepairInBackground(repair, answers);
      });
}

void Coordinator::RepairInBackground(const RepairState& repair,
                                     const ReadAnswers& answers) {
  const std::optional<Version> newest = NewestOf(answers);
  // Fire and forget: a repair that is lost is retried by the next read or
  // by anti-entropy.
  if (newest.has_value()) {
    const std::string payload = PutPayload(repair.key, *newest, repair.ring_epoch,
                                           /*repair=*/true);
    const bool sent_newest = repair.sent_version == newest;
    for (const auto& [replica, held] : answers.valid) {
      if (!OlderThan(held, *newest)) continue;
      if (sent_newest && std::count(repair.sent_to.begin(), repair.sent_to.end(), replica) > 0) {
        continue;
      }
      ++stats_.read_repairs_background;
      (void)SendToReplica(replica, kReplicaPut, payload,
                          options_.background_repair_timeout_ns);
    }
    for (NodeId replica : sent_newest ? std::vector<NodeId>() : repair.pending) {
      ++stats_.read_repairs_background;
      (void)SendToReplica(replica, kReplicaPut, payload, options_.background_repair_timeout_ns);
    }
  }
  // A damaged replica lost its version of the key; only what enough of the
  // others hold may replace it (see the file comment).
  if (answers.damaged.empty() || answers.valid.size() < DamageRepairAnswers(repair.replicas)) {
    return;
  }
  for (NodeId replica : answers.damaged) {
    ++stats_.damaged_repairs;
    if (newest.has_value()) {
      (void)SendToReplica(replica, kReplicaPut,
                          PutPayload(repair.key, *newest, repair.ring_epoch, /*repair=*/true),
                          options_.background_repair_timeout_ns);
    } else {
      proto::ReplicaGetRequest drop;
      drop.set_key(repair.key);
      drop.set_ring_epoch(repair.ring_epoch);
      (void)SendToReplica(replica, kReplicaDropDamaged, drop.SerializeAsString(),
                          options_.background_repair_timeout_ns);
    }
  }
}

}  // namespace mks
