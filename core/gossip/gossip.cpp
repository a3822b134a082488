#include "core/gossip/gossip.h"

#include <algorithm>
#include <array>
#include <utility>

#include "core/assertions.h"
#include "core/crc32c.h"
#include "core/proto/mks.pb.h"

namespace mks::gossip {
namespace {

constexpr std::string_view kPing = "gossip.ping";
constexpr std::string_view kPingReq = "gossip.ping_req";
constexpr std::string_view kPushPull = "gossip.push_pull";
// Outside the store's ("v") and the node's ("m/") key spaces.
// Two copies, written in one batch, each with its own checksum: bit rot of
// one leaves the other.
constexpr std::array<std::string_view, 2> kBootKeys = {"g/boot/a", "g/boot/b"};
// An incarnation is boot * 2^kRefutationBits + refutations.
constexpr int kRefutationBits = 20;
// Clusters up to this size push-pull at the configured interval; larger
// ones at a multiple that grows with log2 of the size, as memberlist does.
constexpr uint64_t kPushPullScaleThreshold = 32;
// Probes (direct, then indirect) of a suspect whose suspicion timed out,
// before it is declared dead.
constexpr uint32_t kLastProbeRounds = 2;

proto::GossipMember::State ToWire(MemberState state) {
  switch (state) {
    case MemberState::kAlive: return proto::GossipMember::ALIVE;
    case MemberState::kSuspect: return proto::GossipMember::SUSPECT;
    case MemberState::kDead: return proto::GossipMember::DEAD;
    case MemberState::kLeft: return proto::GossipMember::LEFT;
  }
  MKS_ASSERT_MSG(false, "unknown member state");
  return proto::GossipMember::ALIVE;
}

void RecordToWire(const MemberRecord& record, proto::GossipMember* out) {
  out->set_node(record.node);
  out->set_incarnation(record.incarnation);
  out->set_state(ToWire(record.state));
  out->set_peer_address(record.addresses.peer);
  out->set_resp_address(record.addresses.resp);
  out->set_http_address(record.addresses.http);
  out->set_from(record.from);
}

// A record from the wire; nullopt for one no node could have sent.
std::optional<MemberRecord> RecordFromWire(const proto::GossipMember& in) {
  if (in.node() == kNoNode || !proto::GossipMember::State_IsValid(in.state())) {
    return std::nullopt;
  }
  MemberRecord record;
  record.node = in.node();
  record.incarnation = in.incarnation();
  record.state = static_cast<MemberState>(in.state());
  record.addresses = Addresses{in.peer_address(), in.resp_address(), in.http_address()};
  record.from = in.from();
  return record;
}

template <typename Message>
void AddRecords(const std::vector<MemberRecord>& records, Message* message,
                proto::GossipMember* (Message::*add)()) {
  for (const MemberRecord& record : records) RecordToWire(record, (message->*add)());
}

std::string EncodeBoot(std::string_view key, uint64_t boot) {
  std::string out(12, '\0');
  for (int i = 0; i < 8; ++i) out[static_cast<size_t>(i)] = static_cast<char>(boot >> (56 - 8 * i));
  const uint32_t crc = Crc32c(std::string_view(out).substr(0, 8), Crc32c(key));
  for (int i = 0; i < 4; ++i) out[static_cast<size_t>(8 + i)] = static_cast<char>(crc >> (24 - 8 * i));
  return out;
}

// The stored boot counter; 0 when absent or damaged.
uint64_t DecodeBoot(std::string_view key, std::string_view bytes) {
  if (bytes.size() != 12) return 0;
  uint64_t boot = 0;
  for (size_t i = 0; i < 8; ++i) boot = (boot << 8) | static_cast<uint8_t>(bytes[i]);
  uint32_t crc = 0;
  for (size_t i = 8; i < 12; ++i) crc = (crc << 8) | static_cast<uint8_t>(bytes[i]);
  return crc == Crc32c(bytes.substr(0, 8), Crc32c(key)) ? boot : 0;
}

bool IsLive(MemberState state) {
  return state == MemberState::kAlive || state == MemberState::kSuspect;
}

}  // namespace

Gossip::Gossip(runtime::Scheduler* scheduler, runtime::ProcessId process, RpcEndpoint* rpc,
               const Environment& env, Addresses self, GossipOptions options)
    : scheduler_(scheduler),
      process_(process),
      rpc_(rpc),
      clock_(env.clock),
      network_(env.network),
      disk_(env.disk),
      random_(env.random.Split("gossip")),
      options_(std::move(options)),
      table_(MemberRecord{env.node_id, 0, MemberState::kAlive, std::move(self), kNoNode}) {
  MKS_ASSERT(scheduler_ != nullptr && rpc_ != nullptr);
  MKS_ASSERT(clock_ != nullptr && network_ != nullptr && disk_ != nullptr);
  MKS_ASSERT_GT(options_.probe_interval_ns, 0);
  MKS_ASSERT_GT(options_.probe_timeout_ns, 0);
  MKS_ASSERT_LT(options_.probe_timeout_ns, options_.probe_interval_ns);
  MKS_ASSERT_GE(options_.max_piggyback, 1u);
  MKS_ASSERT_GT(options_.push_pull_interval_ns, 0);
  RegisterHandlers();
}

Status Gossip::Start() {
  uint64_t previous = 0;
  for (std::string_view key : kBootKeys) {
    std::string stored;
    const Status read = disk_->Get(key, &stored);
    if (!read.ok() && !read.IsNotFound() && !read.IsCorruption()) return read;
    if (read.ok()) previous = std::max(previous, DecodeBoot(key, stored));
  }
  // The wall clock's milliseconds keep the boot ahead should both copies
  // of the counter be lost.
  const uint64_t wall_ms = static_cast<uint64_t>(std::max<int64_t>(0, clock_->WallMicros())) /
                           1'000;
  boot_ = std::max(previous + 1, wall_ms);
  MKS_ASSERT_LT(boot_, uint64_t{1} << (64 - kRefutationBits));
  if (canaries_.restart_incarnation_zero) boot_ = 0;
  MemberRecord self = table_.self();
  self.incarnation = boot_ << kRefutationBits;
  table_.Apply(self, scheduler_->NowNanos());
  MKS_ASSERT_EQ(table_.self().incarnation, self.incarnation);
  PersistBoot();
  broadcasts_.Push(table_.self());
  scheduler_->Spawn(process_, "gossip.probe", [this] { ProbeLoop(); });
  scheduler_->Spawn(process_, "gossip.push_pull", [this] { PushPullLoop(); });
  if (!options_.seeds.empty()) {
    scheduler_->Spawn(process_, "gossip.join", [this] { JoinLoop(); });
  }
  return Status::Ok();
}

void Gossip::PersistBoot() {
  if (boot_synced_) return;
  if (canaries_.restart_incarnation_zero) {
    boot_synced_ = true;
    return;
  }
  WriteBatch batch;
  for (std::string_view key : kBootKeys) batch.Put(key, EncodeBoot(key, boot_));
  const Status written = disk_->Write(batch, WriteOptions{.sync = true});
  if (written.ok()) {
    boot_synced_ = true;
  } else {
    ++stats_.boot_write_failures;
  }
}

void Gossip::Seed(NodeId node, const Addresses& addresses) {
  if (node == table_.self_id()) return;
  ApplyChange(MemberRecord{node, 0, MemberState::kAlive, addresses, kNoNode}, false,
              Spread::kIfRevived);
}

bool Gossip::IsDown(NodeId node) const {
  const Member* member = table_.Find(node);
  return member != nullptr && !IsLive(member->record.state);
}

int64_t Gossip::ScaledInterval() const {
  return options_.probe_interval_ns * (1 + static_cast<int64_t>(health_));
}

int64_t Gossip::ScaledTimeout() const {
  // Never past the period: the indirect probes need the rest of it.
  return std::min(options_.probe_timeout_ns * (1 + static_cast<int64_t>(health_)),
                  ScaledInterval() * 3 / 4);
}

void Gossip::AdjustHealth(int delta) {
  const int64_t score = static_cast<int64_t>(health_) + delta;
  health_ = static_cast<uint32_t>(
      std::clamp<int64_t>(score, 0, static_cast<int64_t>(options_.max_local_health)));
  MKS_ASSERT_LE(health_, options_.max_local_health);
}

// ---- Records ----

void Gossip::Merge(const MemberRecord& record, Spread spread) {
  if (record.node == table_.self_id()) {
    MaybeRefute(record);
    return;
  }
  const Member* held = table_.Find(record.node);
  if (held != nullptr && record.state == MemberState::kSuspect &&
      held->record.state == MemberState::kSuspect &&
      held->record.incarnation == record.incarnation) {
    // The same suspicion from someone else: a confirmation.
    Confirm(record);
    return;
  }
  ApplyChange(record, false, spread);
}

void Gossip::Confirm(const MemberRecord& suspect) {
  MKS_ASSERT(suspect.state == MemberState::kSuspect);
  auto suspicion = suspicions_.find(suspect.node);
  if (suspicion == suspicions_.end() || suspect.from == kNoNode ||
      suspicion->second.incarnation != suspect.incarnation ||
      suspect.from == suspicion->second.first ||
      !suspicion->second.confirmations.insert(suspect.from).second) {
    return;
  }
  ScheduleSuspicionTimer(suspect.node);
  // Spread it: every node counts the confirmations it hears.
  broadcasts_.Push(suspect);
}

void Gossip::ApplyChange(const MemberRecord& record, bool by_self, Spread spread) {
  MKS_ASSERT_NE(record.node, table_.self_id());
  const Applied applied = table_.Apply(record, scheduler_->NowNanos());
  if (!applied.changed) return;
  ++stats_.updates_applied;
  const MemberRecord& now = table_.Find(record.node)->record;
  if (!now.addresses.peer.empty()) {
    // An address the network refuses leaves the member unreachable; its
    // probes fail and it is suspected, as it should be.
    network_->SetAddress(now.node, now.addresses.peer).IgnoreError();
  }
  const bool revived = applied.previous_state.has_value() &&
                       (*applied.previous_state == MemberState::kDead ||
                        *applied.previous_state == MemberState::kLeft) &&
                       now.state == MemberState::kAlive;
  // A change of state is urgent; a new incarnation of a member alive all
  // along is not.
  const bool urgent = applied.previous_state != now.state;
  if (spread == Spread::kAlways || revived) broadcasts_.Push(now, urgent);
  switch (now.state) {
    case MemberState::kAlive:
      CancelSuspicion(now.node);
      if (applied.is_new || applied.previous_state != MemberState::kAlive) {
        // A newcomer, or one back: probed soon, at a random place ahead.
        const size_t span = probe_order_.size() - probe_index_;
        const size_t at = probe_index_ + static_cast<size_t>(random_.Uniform(span + 1));
        probe_order_.insert(probe_order_.begin() + static_cast<std::ptrdiff_t>(at), now.node);
      }
      break;
    case MemberState::kSuspect: StartSuspicion(now); break;
    case MemberState::kDead:
    case MemberState::kLeft: CancelSuspicion(now.node); break;
  }
  if (listeners_.empty()) return;
  MemberChange change;
  change.node = now.node;
  if (!applied.is_new) {
    change.before = applied.previous_state;
    change.before_incarnation = applied.previous_incarnation;
  }
  change.after = now;
  change.by_self = by_self;
  for (const ChangeListener& listener : listeners_) listener(change);
}

void Gossip::MaybeRefute(const MemberRecord& about_self) {
  const MemberRecord& self = table_.self();
  if (left_) return;
  if (!about_self.addresses.peer.empty() && about_self.addresses.peer != self.addresses.peer) {
    // Another process claims this node's id: the operator must fix it.
    ++stats_.id_conflicts;
  }
  const bool accused = about_self.state != MemberState::kAlive &&
                       about_self.incarnation >= self.incarnation;
  const bool newer = about_self.incarnation > self.incarnation;
  if (!accused && !newer) return;
  if (canaries_.no_refute) return;
  MemberRecord refuted = self;
  refuted.incarnation = std::max(self.incarnation, about_self.incarnation) + 1;
  refuted.state = MemberState::kAlive;
  refuted.from = kNoNode;
  table_.Apply(refuted, scheduler_->NowNanos());
  MKS_ASSERT_EQ(table_.self().incarnation, refuted.incarnation);
  broadcasts_.Push(table_.self());
  ++stats_.refutations;
  // Being suspected is a sign that this node is the slow one.
  AdjustHealth(+1);
}

// ---- Suspicion ----

void Gossip::StartSuspicion(const MemberRecord& record) {
  MKS_ASSERT(record.state == MemberState::kSuspect);
  CancelSuspicion(record.node);
  Suspicion& suspicion = suspicions_[record.node];
  suspicion.incarnation = record.incarnation;
  suspicion.first = record.from;
  suspicion.start_ns = scheduler_->NowNanos();
  ScheduleSuspicionTimer(record.node);
}

void Gossip::ScheduleSuspicionTimer(NodeId node) {
  Suspicion& suspicion = suspicions_.at(node);
  if (suspicion.timer.sequence != 0) scheduler_->Cancel(suspicion.timer);
  const SuspicionTimeouts bounds =
      ComputeSuspicionTimeouts(table_.LiveCount(), options_.probe_interval_ns,
                               options_.suspicion_mult, options_.suspicion_max_mult);
  const auto confirmations = static_cast<uint32_t>(suspicion.confirmations.size());
  const int64_t deadline_ns =
      suspicion.start_ns + SuspicionTimeout(bounds, confirmations) +
      (suspicion.extended ? bounds.min_ns : 0);
  suspicion.timer = scheduler_->At(process_, deadline_ns, [this, node, deadline_ns] {
    // A timer firing a period late means this node was frozen: the
    // refutations meant for it may still be on their way. Wait once more.
    Suspicion& pending = suspicions_.at(node);
    pending.timer = runtime::TimerId{};
    if (scheduler_->NowNanos() - deadline_ns > options_.probe_interval_ns &&
        !pending.extended) {
      pending.extended = true;
      ++stats_.suspicions_extended;
      AdjustHealth(+1);
      ScheduleSuspicionTimer(node);
      return;
    }
    OnSuspicionTimeout(node);
  });
}

void Gossip::OnSuspicionTimeout(NodeId node) {
  auto it = suspicions_.find(node);
  MKS_ASSERT(it != suspicions_.end());
  const uint64_t incarnation = it->second.incarnation;
  suspicions_.erase(it);
  const Member* member = table_.Find(node);
  if (member == nullptr || member->record.state != MemberState::kSuspect ||
      member->record.incarnation != incarnation) {
    return;
  }
  // Last probes, carrying the suspicion: a member that is alive but whose
  // refutation was lost on its way here refutes in an ack. Only a member
  // that answers none of them is declared dead.
  const MemberRecord suspect = member->record;
  scheduler_->Spawn(process_, "gossip.last_probe", [this, suspect] {
    bool answered = false;
    for (uint32_t round = 0; round < kLastProbeRounds && !answered; ++round) {
      const Member* held = table_.Find(suspect.node);
      if (held == nullptr || held->record.state != MemberState::kSuspect ||
          held->record.incarnation != suspect.incarnation) {
        break;
      }
      ++stats_.last_probes;
      answered = Probe(suspect.node, scheduler_->NowNanos() + ScaledInterval());
    }
    const Member* now = table_.Find(suspect.node);
    if (now == nullptr || now->record.state != MemberState::kSuspect ||
        now->record.incarnation != suspect.incarnation || suspicions_.count(suspect.node) > 0) {
      ++stats_.last_probe_refutations;
      return;  // refuted, or suspected anew meanwhile
    }
    if (answered) {
      // It answered but its refutation has not reached this node: it lives.
      // The suspicion runs again; the refutation will overtake it.
      ++stats_.last_probe_refutations;
      StartSuspicion(now->record);
      return;
    }
    MemberRecord dead = suspect;
    dead.state = MemberState::kDead;
    dead.from = table_.self_id();
    ++stats_.deaths_declared;
    ApplyChange(dead, true);
  });
}

void Gossip::CancelSuspicion(NodeId node) {
  auto it = suspicions_.find(node);
  if (it == suspicions_.end()) return;
  if (it->second.timer.sequence != 0) scheduler_->Cancel(it->second.timer);
  suspicions_.erase(it);
}

// ---- Probing ----

std::vector<MemberRecord> Gossip::Piggyback(bool with_self) {
  std::vector<MemberRecord> records;
  if (with_self) records.push_back(table_.self());
  const uint32_t limit = TransmitLimit(options_.retransmit_mult, table_.LiveCount());
  for (MemberRecord& record : broadcasts_.Take(options_.max_piggyback, limit)) {
    if (with_self && record.node == table_.self_id()) continue;
    records.push_back(std::move(record));
  }
  return records;
}

NodeId Gossip::NextProbeTarget() {
  for (int round = 0; round < 2; ++round) {
    while (probe_index_ < probe_order_.size()) {
      const NodeId candidate = probe_order_[probe_index_++];
      const Member* member = table_.Find(candidate);
      if (candidate != table_.self_id() && member != nullptr && IsLive(member->record.state)) {
        return candidate;
      }
    }
    // A new round: every live member once, in a fresh random order.
    probe_order_.clear();
    probe_index_ = 0;
    for (const auto& [id, member] : table_.members()) {
      if (id != table_.self_id() && IsLive(member.record.state)) probe_order_.push_back(id);
    }
    for (size_t i = probe_order_.size(); i > 1; --i) {
      std::swap(probe_order_[i - 1], probe_order_[random_.Uniform(i)]);
    }
  }
  return kNoNode;
}

std::vector<NodeId> Gossip::RandomLiveMembers(size_t count, NodeId except) {
  std::vector<NodeId> pool;
  for (const auto& [id, member] : table_.members()) {
    if (id != table_.self_id() && id != except && member.record.state == MemberState::kAlive) {
      pool.push_back(id);
    }
  }
  const size_t take = std::min(count, pool.size());
  for (size_t i = 0; i < take; ++i) {
    std::swap(pool[i], pool[i + random_.Uniform(pool.size() - i)]);
  }
  pool.resize(take);
  return pool;
}

void Gossip::ProbeLoop() {
  // A random first tick, so nodes started together do not probe in step.
  int64_t tick_ns = scheduler_->NowNanos() +
                    static_cast<int64_t>(random_.Uniform(
                        static_cast<uint64_t>(options_.probe_interval_ns)));
  while (!left_) {
    scheduler_->SleepUntil(tick_ns);
    const int64_t now_ns = scheduler_->NowNanos();
    if (now_ns - tick_ns >= options_.probe_interval_ns) {
      ++stats_.late_ticks;
      AdjustHealth(+1);
    }
    PersistBoot();
    const int64_t period_end_ns = now_ns + ScaledInterval();
    if (!boot_synced_) {  // quiet until this incarnation is durable
      tick_ns = period_end_ns;
      continue;
    }
    const NodeId target = NextProbeTarget();
    if (target != kNoNode) ProbeOnce(target, period_end_ns);
    tick_ns = std::max(period_end_ns, scheduler_->NowNanos());
  }
}

bool Gossip::Probe(NodeId target, int64_t deadline_ns) {
  const Member* member = table_.Find(target);
  MKS_ASSERT(member != nullptr);
  proto::GossipPing ping;
  ping.set_target(target);
  AddRecords(Piggyback(true), &ping, &proto::GossipPing::add_updates);
  // Lifeguard's buddy system: a suspect hears of its suspicion from the
  // next member that probes it, and refutes in its ack.
  if (member->record.state == MemberState::kSuspect) RecordToWire(member->record, ping.add_updates());
  ++stats_.probes;
  Result<std::string> ack =
      rpc_->CallAndWait(target, kPing, ping.SerializeAsString(), ScaledTimeout());
  if (ack.ok()) {
    proto::GossipAck reply;
    if (reply.ParseFromString(*ack)) {
      table_.Heard(target, scheduler_->NowNanos());
      for (const proto::GossipMember& wire : reply.updates()) {
        if (std::optional<MemberRecord> record = RecordFromWire(wire)) Merge(*record);
      }
      AdjustHealth(-1);
      return true;
    }
  }
  ++stats_.probe_failures;
  std::vector<NodeId> helpers;
  if (!canaries_.no_indirect_probes) helpers = RandomLiveMembers(options_.indirect_checks, target);
  const int64_t remaining_ns = deadline_ns - scheduler_->NowNanos();
  std::vector<runtime::Future<std::string>> replies;
  if (remaining_ns > 0) {
    const Member* suspect = table_.Find(target);
    for (NodeId helper : helpers) {
      proto::GossipPingReq request;
      request.set_target(target);
      AddRecords(Piggyback(true), &request, &proto::GossipPingReq::add_updates);
      // The helper passes a suspicion on with its own probe (buddy system).
      if (suspect->record.state == MemberState::kSuspect) {
        RecordToWire(suspect->record, request.add_updates());
      }
      ++stats_.indirect_probes;
      replies.push_back(rpc_->Call(helper, kPingReq, request.SerializeAsString(), remaining_ns));
    }
  }
  bool acked = false;
  uint32_t nacks = 0;
  for (runtime::Future<std::string>& future : replies) {
    Result<std::string> reply = future.Get();
    proto::GossipPingReqReply answer;
    if (!reply.ok() || !answer.ParseFromString(*reply)) continue;
    for (const proto::GossipMember& wire : answer.updates()) {
      if (std::optional<MemberRecord> record = RecordFromWire(wire)) Merge(*record);
    }
    if (answer.acked()) {
      acked = true;
      ++stats_.indirect_acks;
    } else {
      ++nacks;
      ++stats_.nacks;
    }
  }
  // Silent helpers, not even a nack: the trouble is likely on this side.
  if (!replies.empty() && nacks + (acked ? 1 : 0) < replies.size()) AdjustHealth(+1);
  return acked;
}

void Gossip::ProbeOnce(NodeId target, int64_t period_end_ns) {
  const uint64_t incarnation = table_.Find(target)->record.incarnation;
  if (Probe(target, period_end_ns)) return;
  const Member* member = table_.Find(target);
  if (member == nullptr || member->record.incarnation != incarnation) return;  // refuted
  MemberRecord suspect = member->record;
  suspect.state = MemberState::kSuspect;
  suspect.from = table_.self_id();
  if (member->record.state == MemberState::kSuspect) {
    Confirm(suspect);  // suspected by another first: this probe confirms it
    return;
  }
  if (member->record.state != MemberState::kAlive) return;
  ++stats_.suspicions;
  ApplyChange(suspect, true);
}

// ---- Push-pull and join ----

bool Gossip::PushPull(NodeId node, const std::string& address, bool join) {
  proto::GossipPushPull mine;
  mine.set_join(join);
  for (const auto& [id, member] : table_.members()) {
    RecordToWire(member.record, mine.add_members());
  }
  // Big views take long to send; the period bounds the wait.
  const int64_t timeout_ns = options_.probe_interval_ns;
  Result<std::string> reply =
      node != kNoNode ? rpc_->CallAndWait(node, kPushPull, mine.SerializeAsString(), timeout_ns)
                      : rpc_->CallAddress(address, kPushPull, mine.SerializeAsString(), timeout_ns)
                            .Get();
  proto::GossipPushPull theirs;
  if (!reply.ok() || !theirs.ParseFromString(*reply)) return false;
  // A whole view is news to this node only: gossiping all of it would
  // bury the updates that matter under hundreds that do not.
  for (const proto::GossipMember& wire : theirs.members()) {
    if (std::optional<MemberRecord> record = RecordFromWire(wire)) {
      Merge(*record, Spread::kIfRevived);
    }
  }
  ++stats_.push_pulls;
  return true;
}

void Gossip::PushPullLoop() {
  bool toward_dead = false;
  while (!left_) {
    if (!boot_synced_) {
      scheduler_->SleepFor(options_.probe_interval_ns);
      continue;
    }
    const uint64_t members = table_.members().size();
    int64_t interval_ns = options_.push_pull_interval_ns;
    if (members > kPushPullScaleThreshold) {
      // ceil(log2(n) - log2(32)) + 1, in Log2Fixed's units.
      const uint64_t excess = Log2Fixed(members) - Log2Fixed(kPushPullScaleThreshold);
      interval_ns *= static_cast<int64_t>((excess + 1023) / 1024 + 1);
    }
    scheduler_->SleepFor(interval_ns / 2 +
                         static_cast<int64_t>(random_.Uniform(static_cast<uint64_t>(interval_ns))));
    if (left_) return;
    // Every other exchange goes to a member believed dead: across a healed
    // partition, that is how the two sides find each other again.
    std::vector<NodeId> candidates;
    const MemberState wanted = toward_dead ? MemberState::kDead : MemberState::kAlive;
    for (NodeId id : table_.InState(wanted)) {
      if (id != table_.self_id()) candidates.push_back(id);
    }
    toward_dead = !toward_dead;
    if (candidates.empty() && table_.LiveCount() <= 1 && !options_.seeds.empty()) {
      // Alone: the seeds are the way back.
      const std::string& seed = options_.seeds[random_.Uniform(options_.seeds.size())];
      (void)PushPull(kNoNode, seed, true);
      continue;
    }
    if (candidates.empty()) continue;
    (void)PushPull(candidates[random_.Uniform(candidates.size())], "", false);
  }
}

void Gossip::JoinLoop() {
  size_t next = static_cast<size_t>(random_.Uniform(options_.seeds.size()));
  while (!joined_ && !left_) {
    if (!boot_synced_) {
      scheduler_->SleepFor(options_.join_retry_ns);
      continue;
    }
    const std::string& seed = options_.seeds[next % options_.seeds.size()];
    ++next;
    if (seed != table_.self().addresses.peer && PushPull(kNoNode, seed, true)) {
      joined_ = true;
      ++stats_.joins;
      return;
    }
    scheduler_->SleepFor(options_.join_retry_ns);
  }
}

void Gossip::Leave() {
  MKS_ASSERT(scheduler_->InFiber());
  if (left_) return;
  MemberRecord left = table_.self();
  left.incarnation += 1;
  left.state = MemberState::kLeft;
  left.from = table_.self_id();
  table_.Apply(left, scheduler_->NowNanos());
  broadcasts_.Push(table_.self());
  left_ = true;
  std::vector<runtime::Future<std::string>> acks;
  for (NodeId member : RandomLiveMembers(options_.indirect_checks, kNoNode)) {
    proto::GossipPing ping;
    ping.set_target(member);
    AddRecords(Piggyback(true), &ping, &proto::GossipPing::add_updates);
    acks.push_back(rpc_->Call(member, kPing, ping.SerializeAsString(),
                              2 * options_.probe_timeout_ns));
  }
  for (runtime::Future<std::string>& ack : acks) ack.Get().status().IgnoreError();
}

// ---- Serving ----

void Gossip::RegisterHandlers() {
  rpc_->RegisterHandler(std::string(kPing),
                        [this](RpcRequest request) { return ServePing(request); });
  rpc_->RegisterHandler(std::string(kPingReq),
                        [this](RpcRequest request) { return ServePingReq(request); });
  rpc_->RegisterHandler(std::string(kPushPull),
                        [this](RpcRequest request) { return ServePushPull(request); });
}

Status Gossip::Quiet() const {
  if (boot_synced_) return Status::Ok();
  return Status::Unavailable("node " + std::to_string(table_.self_id()) +
                             " is starting: its incarnation is not durable yet");
}

Result<std::string> Gossip::ServePing(const RpcRequest& request) {
  MKS_RETURN_IF_ERROR(Quiet());
  proto::GossipPing ping;
  if (!ping.ParseFromString(request.payload)) {
    return Status::InvalidArgument("malformed gossip.ping");
  }
  if (ping.target() != table_.self_id()) {
    // The prober's address for its target reaches another node now.
    return Status::InvalidArgument("node " + std::to_string(table_.self_id()) +
                                   " is not node " + std::to_string(ping.target()));
  }
  for (const proto::GossipMember& wire : ping.updates()) {
    if (std::optional<MemberRecord> record = RecordFromWire(wire)) Merge(*record);
  }
  table_.Heard(request.from, scheduler_->NowNanos());
  proto::GossipAck ack;
  // The ack carries this node's own record, refutation included, so a
  // prober holding it suspect learns the truth from the probe itself.
  AddRecords(Piggyback(true), &ack, &proto::GossipAck::add_updates);
  // A prober this view holds as suspect or dead hears of it at once, so it
  // can refute.
  const Member* sender = table_.Find(request.from);
  if (sender != nullptr && sender->record.state != MemberState::kAlive) {
    RecordToWire(sender->record, ack.add_updates());
  }
  return ack.SerializeAsString();
}

Result<std::string> Gossip::ServePingReq(const RpcRequest& request) {
  MKS_RETURN_IF_ERROR(Quiet());
  proto::GossipPingReq asked;
  if (!asked.ParseFromString(request.payload) || asked.target() == kNoNode) {
    return Status::InvalidArgument("malformed gossip.ping_req");
  }
  for (const proto::GossipMember& wire : asked.updates()) {
    if (std::optional<MemberRecord> record = RecordFromWire(wire)) Merge(*record);
  }
  // Answer before the caller's deadline, nack included.
  const int64_t left_ns = request.deadline_ns - scheduler_->NowNanos();
  const int64_t timeout_ns = std::min(ScaledTimeout(), left_ns * 3 / 4);
  bool acked = false;
  if (timeout_ns > 0 && asked.target() != table_.self_id()) {
    proto::GossipPing ping;
    ping.set_target(asked.target());
    AddRecords(Piggyback(true), &ping, &proto::GossipPing::add_updates);
    Result<std::string> ack =
        rpc_->CallAndWait(asked.target(), kPing, ping.SerializeAsString(), timeout_ns);
    proto::GossipAck reply;
    if (ack.ok() && reply.ParseFromString(*ack)) {
      acked = true;
      table_.Heard(asked.target(), scheduler_->NowNanos());
      for (const proto::GossipMember& wire : reply.updates()) {
        if (std::optional<MemberRecord> record = RecordFromWire(wire)) Merge(*record);
      }
    }
  }
  proto::GossipPingReqReply answer;
  answer.set_acked(acked);
  AddRecords(Piggyback(false), &answer, &proto::GossipPingReqReply::add_updates);
  // What the target's ack said of itself (a refutation, say) goes straight
  // back to the member that suspects it.
  if (const Member* target = table_.Find(asked.target()); acked && target != nullptr) {
    RecordToWire(target->record, answer.add_updates());
  }
  return answer.SerializeAsString();
}

Result<std::string> Gossip::ServePushPull(const RpcRequest& request) {
  MKS_RETURN_IF_ERROR(Quiet());
  proto::GossipPushPull theirs;
  if (!theirs.ParseFromString(request.payload)) {
    return Status::InvalidArgument("malformed gossip.push_pull");
  }
  // The caller's own record spreads (a newcomer announcing itself); the
  // rest of its view is news to this node only.
  for (const proto::GossipMember& wire : theirs.members()) {
    if (std::optional<MemberRecord> record = RecordFromWire(wire)) {
      Merge(*record, record->node == request.from ? Spread::kAlways : Spread::kIfRevived);
    }
  }
  table_.Heard(request.from, scheduler_->NowNanos());
  proto::GossipPushPull mine;
  for (const auto& [id, member] : table_.members()) {
    RecordToWire(member.record, mine.add_members());
  }
  return mine.SerializeAsString();
}

}  // namespace mks::gossip
