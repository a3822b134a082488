// The nodes do not run it yet: the cluster-metadata state machine and the
// simulator's Raft checker come next (DESIGN section 7).
#include "core/raft/raft.h"

#include <algorithm>
#include <utility>

#include "core/assertions.h"
#include "core/proto/mks.pb.h"

namespace mks::raft {
namespace {

template <typename Message>
Result<Message> Parse(const std::string& bytes, std::string_view what) {
  Message message;
  if (!message.ParseFromString(bytes)) {
    return Status::InvalidArgument("raft: malformed " + std::string(what));
  }
  return message;
}

template <typename Message>
std::string Serialize(const Message& message) {
  std::string out;
  MKS_ASSERT(message.SerializeToString(&out));
  return out;
}

}  // namespace

std::string_view RoleName(Role role) {
  switch (role) {
    case Role::kFollower: return "follower";
    case Role::kPreCandidate: return "pre-candidate";
    case Role::kCandidate: return "candidate";
    case Role::kLeader: return "leader";
  }
  MKS_UNREACHABLE("role");
}

bool Raft::LogUpToDate(Index last_index, Term last_term) const {
  Term my_term = store_.last_term();
  Index my_index = store_.last_index();
  // A node that lost entries to damage compares with the log it had: its
  // last index then, under a term no lower than its last entry's.
  const HardState& hard = store_.hard();
  if (Recovering() && std::pair(hard.recover_term, hard.recover_through) >
                          std::pair(my_term, my_index)) {
    my_term = hard.recover_term;
    my_index = hard.recover_through;
  }
  if (last_term != my_term) return last_term > my_term;
  return last_index >= my_index;
}

Status Raft::CheckCluster(const std::string& cluster_id, bool adopt) {
  const std::string& mine = store_.hard().cluster_id;
  if (mine.empty()) {
    if (!adopt || cluster_id.empty()) {
      return Status::Unavailable("raft: node " + std::to_string(self_) +
                                 " belongs to no cluster yet");
    }
    HardState hard = store_.hard();
    hard.cluster_id = cluster_id;
    store_.SetHardState(std::move(hard));
    return Status::Ok();
  }
  if (cluster_id != mine) {
    ++stats_.foreign_cluster_refused;
    return Status::InvalidArgument("raft: different cluster: node " + std::to_string(self_) +
                                   " belongs to cluster " + mine + ", the request to " +
                                   cluster_id);
  }
  return Status::Ok();
}

uint64_t Raft::ObserveTerm(Term term) {
  if (term <= this->term()) return store_.last_seq();
  const Role was = role_;
  HardState hard = store_.hard();
  hard.term = term;
  hard.vote = kNoNode;
  hard.commit = commit_;
  const uint64_t seq = store_.SetHardState(std::move(hard));
  if (was != Role::kFollower) BecomeFollower(term, kNoNode);
  leader_ = kNoNode;
  return seq;
}

Result<std::string> Raft::ServeVote(const RpcRequest& request) {
  auto parsed = Parse<proto::RaftVoteRequest>(request.payload, "vote request");
  if (!parsed.ok()) return parsed.status();
  const proto::RaftVoteRequest& vote = *parsed;
  MKS_RETURN_IF_ERROR(CheckCluster(vote.cluster_id(), /*adopt=*/false));
  proto::RaftVoteResponse reply;
  const int64_t now_ns = scheduler_->NowNanos();
  const bool leased = leader_ != kNoNode && leader_ != request.from &&
                      now_ns - last_leader_contact_ns_ < options_.election_timeout_min_ns;
  if (options_.check_quorum && !vote.transfer() && (leased || role_ == Role::kLeader)) {
    ++stats_.votes_refused_lease;
    store_.WaitDurable(store_.last_seq());
    reply.set_term(term());
    reply.set_granted(false);
    return Serialize(reply);
  }
  if (vote.pre_vote()) {
    // A poll: nothing changes here.
    const bool granted = vote.term() > term() && LogUpToDate(vote.last_index(), vote.last_term());
    store_.WaitDurable(store_.last_seq());
    reply.set_term(term());
    reply.set_granted(granted);
    return Serialize(reply);
  }
  if (vote.term() < term()) {
    store_.WaitDurable(store_.last_seq());
    reply.set_term(term());
    reply.set_granted(false);
    return Serialize(reply);
  }
  ObserveTerm(vote.term());
  const NodeId voted = store_.hard().vote;
  const bool granted = (voted == kNoNode || voted == request.from) &&
                       LogUpToDate(vote.last_index(), vote.last_term());
  if (granted && voted == kNoNode) {
    HardState hard = store_.hard();
    hard.vote = request.from;
    store_.SetHardState(std::move(hard));
    ResetElectionTimer();
  }
  // The vote (and the term it is in) must survive a crash before anyone
  // hears of it: else a restarted node could vote again in this term.
  if (!(granted && canaries_.vote_before_sync)) store_.WaitDurable(store_.last_seq());
  if (granted && observer_ != nullptr) observer_->VoteGranted(self_, vote.term(), request.from);
  reply.set_term(vote.term());
  reply.set_granted(granted);
  return Serialize(reply);
}

Result<std::string> Raft::ServeAppend(const RpcRequest& request) {
  auto parsed = Parse<proto::RaftAppendRequest>(request.payload, "append request");
  if (!parsed.ok()) return parsed.status();
  const proto::RaftAppendRequest& append = *parsed;
  MKS_RETURN_IF_ERROR(CheckCluster(append.cluster_id(), /*adopt=*/true));
  proto::RaftAppendResponse reply;
  if (append.term() < term()) {
    store_.WaitDurable(store_.last_seq());
    reply.set_term(term());
    return Serialize(reply);
  }
  ObserveTerm(append.term());
  // Two leaders in one term would be a safety bug: assert, always.
  MKS_ASSERT(!(role_ == Role::kLeader && leader_ == self_));
  if (role_ != Role::kFollower) BecomeFollower(append.term(), request.from);
  leader_ = request.from;
  last_leader_contact_ns_ = scheduler_->NowNanos();
  ResetElectionTimer();

  Index prev = append.prev_index();
  Term prev_term = append.prev_term();
  std::vector<Entry> entries;
  for (const proto::RaftEntry& e : append.entries()) {
    if (e.index() <= store_.snapshot().index) continue;  // committed, covered
    entries.push_back(Entry{e.term(), e.index(), static_cast<EntryType>(e.type()), e.data()});
  }
  if (prev < store_.snapshot().index) {
    prev = store_.snapshot().index;
    prev_term = store_.snapshot().term;
    if (!entries.empty() && entries.front().index != prev + 1) entries.clear();
  }
  if (prev > store_.last_index() || store_.TermAt(prev) != prev_term) {
    ++stats_.appends_rejected;
    if (prev > store_.last_index()) {
      reply.set_conflict_term(0);
      reply.set_conflict_index(store_.last_index() + 1);
    } else {
      const Term conflict = store_.TermAt(prev);
      Index first = prev;
      while (first - 1 > store_.snapshot().index && store_.TermAt(first - 1) == conflict) --first;
      reply.set_conflict_term(conflict);
      reply.set_conflict_index(first);
    }
    store_.WaitDurable(store_.last_seq());
    reply.set_term(term());
    return Serialize(reply);
  }
  // What the leader may count as held here (the canary lies about it too).
  const Index match = entries.empty() ? prev : entries.back().index;
  // Skip the entries already held; truncate at the first conflict.
  size_t fresh = 0;
  while (fresh < entries.size() && entries[fresh].index <= store_.last_index() &&
         store_.TermAt(entries[fresh].index) == entries[fresh].term) {
    ++fresh;
  }
  if (fresh < entries.size()) {
    const Index from = entries[fresh].index;
    std::vector<Entry> rest(entries.begin() + static_cast<std::ptrdiff_t>(fresh), entries.end());
    if (from <= store_.last_index() && canaries_.keep_conflicting_suffix) {
      // Planted bug: keep the conflicting entries, take only what lies beyond.
      std::erase_if(rest, [this](const Entry& e) {
        return e.index <= store_.last_index();
      });
      if (!rest.empty() && rest.front().term >= store_.last_term()) store_.Append(std::move(rest));
    } else {
      if (from <= store_.last_index()) {
        MKS_ASSERT_GT(from, commit_);  // a committed entry never goes
        stats_.entries_truncated += store_.last_index() - from + 1;
      }
      store_.TruncateAndAppend(from, std::move(rest));
    }
    RebuildConfigs();
  }
  const Index commit = std::min<Index>(append.commit(), std::min(match, store_.last_index()));
  if (commit > commit_) {
    commit_ = commit;
    ApplyCommitted();
  }
  // New entries are acknowledged only once they are durable here.
  store_.WaitDurable(store_.last_seq());
  reply.set_term(term());
  if (term() == append.term()) {
    reply.set_success(true);
    reply.set_match_index(std::max(match, store_.snapshot().index));
  }
  return Serialize(reply);
}

int64_t Raft::RandomElectionTimeout() {
  const int64_t min_ns = options_.election_timeout_min_ns;
  return min_ns + static_cast<int64_t>(random_.Uniform(static_cast<uint64_t>(min_ns)));
}

void Raft::ResetElectionTimer() {
  if (!Running()) return;
  scheduler_->Cancel(election_timer_);
  std::weak_ptr<int> alive = liveness_;
  election_timer_ = scheduler_->After(process_, RandomElectionTimeout(), [this, alive] {
    if (!alive.expired()) OnElectionTimeout();
  });
}

void Raft::OnElectionTimeout() {
  if (role_ == Role::kLeader) return;
  ResetElectionTimer();
  if (quiesced_ || !config().IsVoter(self_) || Recovering()) return;
  const bool pre_vote = options_.pre_vote;
  scheduler_->Spawn(process_, "raft.campaign", [this, pre_vote] { Campaign(pre_vote, false); });
}

void Raft::Campaign(bool pre_vote, bool transfer) {
  const uint64_t round = ++campaign_round_;
  Term term_asked = term() + 1;
  if (pre_vote) {
    role_ = Role::kPreCandidate;
    ++stats_.pre_votes_started;
  } else {
    role_ = Role::kCandidate;
    leader_ = kNoNode;
    HardState hard = store_.hard();
    hard.term = term_asked;
    hard.vote = self_;
    hard.commit = commit_;
    store_.SetHardState(std::move(hard));
    ++stats_.elections_started;
    store_.WaitDurable(store_.last_seq());
    if (campaign_round_ != round || role_ != Role::kCandidate || term() != term_asked) return;
  }
  votes_ = {self_};
  auto tally = [this, round, pre_vote, transfer, term_asked] {
    if (campaign_round_ != round) return;
    size_t granted = 0;
    for (NodeId voter : config().voters) granted += votes_.count(voter);
    if (granted < config().Quorum()) return;
    ++campaign_round_;  // this round is decided
    if (pre_vote) {
      if (role_ == Role::kPreCandidate && term() + 1 == term_asked) Campaign(false, transfer);
    } else if (role_ == Role::kCandidate && term() == term_asked) {
      BecomeLeader();
    }
  };
  tally();
  if (campaign_round_ != round) return;
  proto::RaftVoteRequest ask;
  ask.set_cluster_id(cluster_id());
  ask.set_term(term_asked);
  ask.set_last_index(store_.last_index());
  ask.set_last_term(store_.last_term());
  ask.set_pre_vote(pre_vote);
  ask.set_transfer(transfer);
  const std::string payload = Serialize(ask);
  for (NodeId voter : config().voters) {
    if (voter == self_) continue;
    scheduler_->Spawn(process_, "raft.ask_vote", [this, voter, payload, round, pre_vote, tally] {
      Result<std::string> bytes = rpc_->CallAndWait(voter, "raft.vote", payload,
                                                    options_.election_timeout_min_ns / 2);
      if (!bytes.ok() || campaign_round_ != round) return;
      auto reply = Parse<proto::RaftVoteResponse>(*bytes, "vote reply");
      if (!reply.ok()) return;
      if (reply->term() > term() && !reply->granted()) {
        ObserveTerm(reply->term());
        BecomeFollower(reply->term(), kNoNode);
        return;
      }
      if (!reply->granted()) return;
      votes_.insert(voter);
      tally();
    });
  }
  (void)pre_vote;
}

void Raft::BecomeFollower(Term term, NodeId leader) {
  ObserveTerm(term);
  const bool was_leader = role_ == Role::kLeader;
  role_ = Role::kFollower;
  leader_ = leader;
  transferring_ = false;
  if (was_leader) {
    peers_.clear();
    FailProposals("leadership lost before the entry committed; outcome unknown");
  }
  ResetElectionTimer();
}

void Raft::BecomeLeader() {
  MKS_ASSERT(role_ == Role::kCandidate);
  role_ = Role::kLeader;
  leader_ = self_;
  transferring_ = false;
  ++stats_.terms_led;
  scheduler_->Cancel(election_timer_);
  if (observer_ != nullptr) observer_->BecameLeader(self_, term());
  peers_.clear();
  // The no-op commits this term, and with it every earlier entry.
  AppendAsLeader(EntryType::kNoop, "");
  leader_first_index_ = store_.last_index();
  const Term led = term();
  scheduler_->Spawn(process_, "raft.check_quorum", [this, led] { CheckQuorumLoop(led); });
}

runtime::Future<Index> Raft::AppendAsLeader(EntryType type, std::string data) {
  MKS_ASSERT(role_ == Role::kLeader);
  const Index index = store_.last_index() + 1;
  if (type == EntryType::kConfig) {
    Config next;
    MKS_ASSERT(DecodeConfig(data, &next));
    configs_[index] = next;
  }
  std::vector<Entry> entries;
  entries.push_back(Entry{term(), index, type, std::move(data)});
  store_.Append(std::move(entries));
  runtime::Promise<Index> promise(scheduler_);
  runtime::Future<Index> future = promise.GetFuture();
  proposals_.emplace(index, Proposal{term(), std::move(promise)});
  // Members of the latest config get a replication loop; others lose theirs.
  const Config& now = config();
  std::erase_if(peers_, [&now](const auto& peer) { return !now.Contains(peer.first); });
  for (NodeId member : now.Members()) {
    if (member == self_ || peers_.count(member) != 0) continue;
    Peer& peer = peers_[member];
    peer.next = index;
    peer.last_heard_ns = scheduler_->NowNanos();
    const Term led = term();
    scheduler_->Spawn(process_, "raft.replicate", [this, member, led] { ReplicateLoop(member, led); });
  }
  WakeAllPeers();
  AdvanceCommit();
  return future;
}

void Raft::AdvanceCommit() {
  if (role_ != Role::kLeader) return;
  std::vector<Index> matches;
  for (NodeId voter : config().voters) {
    if (voter == self_) {
      matches.push_back(store_.durable_last_index());
    } else {
      auto peer = peers_.find(voter);
      matches.push_back(peer == peers_.end() ? 0 : peer->second.match);
    }
  }
  std::sort(matches.begin(), matches.end(), std::greater<>());
  const Index candidate = matches[config().Quorum() - 1];
  if (candidate <= commit_) return;
  // Figure 8: an older term's entry commits only under one of this term.
  if (!canaries_.commit_old_term && store_.TermAt(candidate) != term()) return;
  if (observer_ != nullptr) {
    observer_->CommittedByCount(self_, term(), candidate, store_.TermAt(candidate));
  }
  commit_ = candidate;
  ApplyCommitted();
  WakeAllPeers();
}

void Raft::ApplyCommitted() {
  MKS_ASSERT_LE(commit_, store_.last_index());
  bool any = false;
  while (applied_ < commit_) {
    const Entry& entry = store_.At(applied_ + 1);
    if (entry.type == EntryType::kCommand) machine_->Apply(entry.index, entry.data);
    applied_ = entry.index;
    any = true;
    if (observer_ != nullptr) observer_->Applied(self_, entry);
    auto proposal = proposals_.find(entry.index);
    if (proposal != proposals_.end()) {
      if (proposal->second.term == entry.term) {
        proposal->second.promise.SetValue(entry.index);
      } else {
        proposal->second.promise.SetError(
            Status::Unavailable("raft: another entry committed at index " +
                                std::to_string(entry.index)));
      }
      proposals_.erase(proposal);
    }
  }
  if (!any) return;
  PersistCommit();
  MaybeSnapshot();
  if (on_applied_) on_applied_();
}

void Raft::PersistCommit() {
  const HardState& held = store_.hard();
  const bool recovered = held.recover_through != 0 && commit_ >= held.recover_through;
  if (held.commit >= commit_ && !recovered) return;
  HardState hard = held;
  hard.commit = std::max(hard.commit, commit_);
  if (recovered) hard.recover_through = hard.recover_term = 0;
  store_.SetHardState(std::move(hard));
}

void Raft::FailProposals(const std::string& why) {
  for (auto& [index, proposal] : proposals_) {
    proposal.promise.SetError(Status::Unavailable("raft: " + why));
  }
  proposals_.clear();
}

void Raft::RebuildConfigs() {
  configs_.clear();
  configs_[store_.snapshot().index] = store_.snapshot().config;
  for (Index index = store_.first_index(); index <= store_.last_index(); ++index) {
    const Entry& entry = store_.At(index);
    if (entry.type != EntryType::kConfig) continue;
    Config config;
    MKS_ASSERT(DecodeConfig(entry.data, &config));
    configs_[index] = std::move(config);
  }
}

void Raft::WakePeer(NodeId member) {
  auto peer = peers_.find(member);
  if (peer == peers_.end() || !peer->second.wake.has_value()) return;
  if (!peer->second.wake->IsFulfilled()) peer->second.wake->SetValue(true);
}

void Raft::WakeAllPeers() {
  for (auto& [member, peer] : peers_) WakePeer(member);
}

void Raft::ReplicateLoop(NodeId member, Term led) {
  auto leading = [this, member, led] {
    return Running() && role_ == Role::kLeader && term() == led && peers_.count(member) != 0;
  };
  while (leading()) {
    Peer& peer = peers_.at(member);
    const bool behind = peer.next <= store_.last_index();
    if (peer.next <= store_.snapshot().index) {
      SendSnapshot(member, led);
    } else {
      SendAppend(member, led);
    }
    if (!leading()) return;
    Peer& after = peers_.at(member);
    // More to send right away after progress or a rejection; else wait for
    // new entries, a commit to tell, or the next heartbeat.
    if (behind && after.last_reply_ok && after.next <= store_.last_index()) continue;
    runtime::Promise<bool> wake(scheduler_);
    runtime::Future<bool> woken = wake.GetFuture();
    after.wake.emplace(std::move(wake));
    woken.WaitReadyFor(options_.heartbeat_interval_ns);
    if (leading()) peers_.at(member).wake.reset();
  }
}

void Raft::SendAppend(NodeId member, Term led) {
  Peer& peer = peers_.at(member);
  proto::RaftAppendRequest append;
  append.set_cluster_id(cluster_id());
  append.set_term(led);
  append.set_prev_index(peer.next - 1);
  append.set_prev_term(store_.TermAt(peer.next - 1));
  append.set_commit(commit_);
  if (peer.next <= store_.last_index()) {
    for (const Entry& entry : store_.Slice(peer.next, options_.max_entries_per_append,
                                           options_.max_bytes_per_append)) {
      proto::RaftEntry* out = append.add_entries();
      out->set_term(entry.term);
      out->set_index(entry.index);
      out->set_type(static_cast<uint32_t>(entry.type));
      out->set_data(entry.data);
    }
  }
  peer.last_reply_ok = false;
  Result<std::string> bytes = rpc_->CallAndWait(member, "raft.append", Serialize(append),
                                                ReplyTimeout());
  if (!bytes.ok() || role_ != Role::kLeader || term() != led || peers_.count(member) == 0) return;
  auto reply = Parse<proto::RaftAppendResponse>(*bytes, "append reply");
  if (!reply.ok()) return;
  if (reply->term() > term()) {
    BecomeFollower(reply->term(), kNoNode);
    return;
  }
  Peer& now = peers_.at(member);
  now.last_heard_ns = scheduler_->NowNanos();
  now.last_reply_ok = true;
  if (reply->success()) {
    now.match = std::max(now.match, reply->match_index());
    now.next = std::max(now.next, now.match + 1);
    AdvanceCommit();
    return;
  }
  // Fast backtracking: past our last entry of the conflicting term, or to
  // the first index the follower holds of it.
  Index next = reply->conflict_index();
  if (reply->conflict_term() != 0) {
    for (Index index = std::min(store_.last_index(), reply->conflict_index() + 0);
         index > store_.snapshot().index; --index) {
      if (store_.TermAt(index) == reply->conflict_term()) {
        next = index + 1;
        break;
      }
      if (store_.TermAt(index) < reply->conflict_term()) break;
    }
  }
  // The follower lacks prev_index. Only damage makes it lose entries it
  // acknowledged (core/raft/log_store.h): then it no longer holds them.
  if (now.match >= append.prev_index()) {
    now.match = std::min<Index>(now.match, reply->conflict_index() - 1);
  }
  now.next = std::clamp<Index>(next, now.match + 1, std::max<Index>(now.next - 1, now.match + 1));
}

void Raft::SendSnapshot(NodeId member, Term led) {
  const Snapshot& snapshot = store_.snapshot();
  proto::RaftInstallSnapshot install;
  install.set_cluster_id(cluster_id());
  install.set_term(led);
  proto::RaftSnapshot* out = install.mutable_snapshot();
  out->set_index(snapshot.index);
  out->set_term(snapshot.term);
  for (NodeId voter : snapshot.config.voters) out->mutable_config()->add_voters(voter);
  for (NodeId learner : snapshot.config.learners) out->mutable_config()->add_learners(learner);
  out->set_data(snapshot.data);
  const Index sent = snapshot.index;
  ++stats_.snapshots_sent;
  peers_.at(member).last_reply_ok = false;
  Result<std::string> bytes = rpc_->CallAndWait(member, "raft.snapshot", Serialize(install),
                                                2 * ReplyTimeout());
  if (!bytes.ok() || role_ != Role::kLeader || term() != led || peers_.count(member) == 0) return;
  auto reply = Parse<proto::RaftInstallSnapshotResponse>(*bytes, "snapshot reply");
  if (!reply.ok()) return;
  if (reply->term() > term()) {
    BecomeFollower(reply->term(), kNoNode);
    return;
  }
  Peer& now = peers_.at(member);
  now.last_heard_ns = scheduler_->NowNanos();
  now.last_reply_ok = true;
  now.match = std::max(now.match, sent);
  now.next = std::max(now.next, now.match + 1);
  AdvanceCommit();
}

void Raft::CheckQuorumLoop(Term led) {
  while (Running() && role_ == Role::kLeader && term() == led) {
    scheduler_->SleepFor(options_.election_timeout_min_ns);
    if (!(role_ == Role::kLeader && term() == led) || !options_.check_quorum) continue;
    const int64_t since_ns = scheduler_->NowNanos() - options_.election_timeout_min_ns;
    size_t heard = 0;
    for (NodeId voter : config().voters) {
      if (voter == self_) {
        ++heard;
        continue;
      }
      auto peer = peers_.find(voter);
      if (peer != peers_.end() && peer->second.last_heard_ns >= since_ns) ++heard;
    }
    if (heard < config().Quorum()) {
      ++stats_.step_downs_check_quorum;
      BecomeFollower(term(), kNoNode);
    }
  }
}

int64_t Raft::ReplyTimeout() const {
  // Replication is stop-and-wait: a lost message costs a peer this long, so
  // it must be short beside the election timeout, or a few losses in a row
  // silence a healthy follower long enough for CheckQuorum to depose the
  // leader.
  return 2 * options_.heartbeat_interval_ns;
}

Raft::Raft(runtime::Scheduler* scheduler, runtime::ProcessId process, RpcEndpoint* rpc,
           StateMachine* machine, const Environment& env, RaftOptions options)
    : scheduler_(scheduler),
      process_(process),
      rpc_(rpc),
      machine_(machine),
      self_(env.node_id),
      random_(env.random.Split("raft")),
      options_(options),
      store_(scheduler, process, env.disk) {
  MKS_ASSERT(rpc_ != nullptr && machine_ != nullptr && self_ != kNoNode);
  MKS_ASSERT_LT(options_.heartbeat_interval_ns, options_.election_timeout_min_ns);
  configs_[0] = Config{};
  RegisterHandlers();
}

Raft::~Raft() {
  liveness_.reset();
  if (Running()) scheduler_->Cancel(election_timer_);
}

void Raft::RegisterHandlers() {
  rpc_->RegisterHandler("raft.vote", [this](RpcRequest r) { return ServeVote(r); });
  rpc_->RegisterHandler("raft.append", [this](RpcRequest r) { return ServeAppend(r); });
  rpc_->RegisterHandler("raft.snapshot", [this](RpcRequest r) { return ServeSnapshot(r); });
  rpc_->RegisterHandler("raft.timeout_now", [this](RpcRequest r) { return ServeTimeoutNow(r); });
  rpc_->RegisterHandler("raft.propose", [this](RpcRequest r) { return ServePropose(r); });
}

Status Raft::Start() {
  MKS_ASSERT(!started_);
  MKS_RETURN_IF_ERROR(store_.Load());
  const Snapshot& snapshot = store_.snapshot();
  if (snapshot.index > 0) {
    Status restored = machine_->Restore(snapshot.data);
    if (!restored.ok()) return Status::Corruption("raft: snapshot does not restore: " + restored.ToString());
  }
  applied_ = commit_ = snapshot.index;
  RebuildConfigs();
  store_.set_on_durable([this] { OnDurable(); });
  started_ = true;
  commit_ = std::clamp(store_.hard().commit, snapshot.index, store_.last_index());
  ApplyCommitted();
  if (on_applied_ && snapshot.index > 0) on_applied_();
  ResetElectionTimer();
  return Status::Ok();
}

Status Raft::Bootstrap(const std::string& cluster_id, const Config& config,
                       const std::string& machine_state) {
  MKS_ASSERT(started_);
  if (!store_.empty() || !store_.hard().cluster_id.empty()) {
    return Status::InvalidArgument("raft: node " + std::to_string(self_) +
                                   " already holds cluster state (cluster " +
                                   store_.hard().cluster_id + ")");
  }
  Config normalized = config;
  if (cluster_id.empty() || !normalized.Normalize() || !normalized.Contains(self_) ||
      normalized.voters.empty()) {
    return Status::InvalidArgument(
        "raft: bootstrap needs a cluster id and a config with voters that names this node");
  }
  MKS_RETURN_IF_ERROR(machine_->Restore(machine_state));
  store_.SetHardState(HardState{1, kNoNode, cluster_id, 1});
  store_.SaveSnapshot(Snapshot{1, 1, normalized, machine_state});
  applied_ = commit_ = 1;
  RebuildConfigs();
  if (on_applied_) on_applied_();
  ResetElectionTimer();
  return Status::Ok();
}

void Raft::OnDurable() {
  if (observer_ != nullptr) observer_->HardStateDurable(self_, store_.durable_hard());
  AdvanceCommit();
}

void Raft::MaybeSnapshot() {
  if (applied_ - store_.snapshot().index < options_.snapshot_every_entries) return;
  auto config = configs_.upper_bound(applied_);
  MKS_ASSERT(config != configs_.begin());
  --config;
  store_.SaveSnapshot(Snapshot{applied_, store_.TermAt(applied_), config->second,
                               machine_->Snapshot()});
  RebuildConfigs();
  ++stats_.snapshots_taken;
}

Index Raft::MatchOf(NodeId node) const {
  if (node == self_) return store_.durable_last_index();
  auto peer = peers_.find(node);
  return peer == peers_.end() ? 0 : peer->second.match;
}

Result<std::string> Raft::ServeSnapshot(const RpcRequest& request) {
  auto parsed = Parse<proto::RaftInstallSnapshot>(request.payload, "snapshot");
  if (!parsed.ok()) return parsed.status();
  MKS_RETURN_IF_ERROR(CheckCluster(parsed->cluster_id(), /*adopt=*/true));
  proto::RaftInstallSnapshotResponse reply;
  if (parsed->term() >= term()) {
    ObserveTerm(parsed->term());
    if (role_ != Role::kFollower) BecomeFollower(parsed->term(), request.from);
    leader_ = request.from;
    last_leader_contact_ns_ = scheduler_->NowNanos();
    ResetElectionTimer();
    const proto::RaftSnapshot& in = parsed->snapshot();
    Snapshot snapshot{in.index(), in.term(), {}, in.data()};
    snapshot.config.voters.assign(in.config().voters().begin(), in.config().voters().end());
    snapshot.config.learners.assign(in.config().learners().begin(), in.config().learners().end());
    if (!snapshot.config.Normalize()) return Status::InvalidArgument("raft: snapshot with an invalid config");
    if (snapshot.index > commit_) {
      MKS_RETURN_IF_ERROR(machine_->Restore(snapshot.data));
      store_.SaveSnapshot(snapshot);
      commit_ = applied_ = snapshot.index;
      RebuildConfigs();
      ++stats_.snapshots_installed;
      if (observer_ != nullptr) observer_->SnapshotInstalled(self_, snapshot.index, snapshot.term);
      PersistCommit();
      if (on_applied_) on_applied_();
    }
  }
  store_.WaitDurable(store_.last_seq());
  reply.set_term(term());
  return Serialize(reply);
}

namespace {
runtime::Future<Index> Failed(runtime::Scheduler* scheduler, Status status) {
  runtime::Promise<Index> promise(scheduler);
  runtime::Future<Index> future = promise.GetFuture();
  promise.SetError(std::move(status));
  return future;
}
}  // namespace

runtime::Future<Index> Raft::Propose(std::string command) {
  if (role_ != Role::kLeader || transferring_ || quiesced_) {
    return Failed(scheduler_, Status::Unavailable(
                                  "raft: node " + std::to_string(self_) + " is not the leader" +
                                  (leader_ != kNoNode && leader_ != self_
                                       ? "; the leader is node " + std::to_string(leader_)
                                       : "")));
  }
  return AppendAsLeader(EntryType::kCommand, std::move(command));
}

Result<Index> Raft::ProposeAnywhere(std::string command, int64_t timeout_ns) {
  if (role_ == Role::kLeader) return Propose(std::move(command)).GetFor(timeout_ns);
  if (leader_ == kNoNode) return Status::Unavailable("raft: no leader known");
  proto::RaftPropose propose;
  propose.set_cluster_id(cluster_id());
  propose.set_command(std::move(command));
  Result<std::string> bytes = rpc_->CallAndWait(leader_, "raft.propose", Serialize(propose), timeout_ns);
  if (!bytes.ok()) return bytes.status();
  auto reply = Parse<proto::RaftProposeResponse>(*bytes, "propose reply");
  if (!reply.ok()) return reply.status();
  return reply->index();
}

Result<std::string> Raft::ServePropose(const RpcRequest& request) {
  auto parsed = Parse<proto::RaftPropose>(request.payload, "proposal");
  if (!parsed.ok()) return parsed.status();
  MKS_RETURN_IF_ERROR(CheckCluster(parsed->cluster_id(), /*adopt=*/false));
  Result<Index> index = Propose(parsed->command()).Get();
  if (!index.ok()) return index.status();
  proto::RaftProposeResponse reply;
  reply.set_index(*index);
  return Serialize(reply);
}

Result<std::string> Raft::ServeTimeoutNow(const RpcRequest& request) {
  auto parsed = Parse<proto::RaftTimeoutNow>(request.payload, "timeout_now");
  if (!parsed.ok()) return parsed.status();
  MKS_RETURN_IF_ERROR(CheckCluster(parsed->cluster_id(), /*adopt=*/false));
  if (parsed->term() == term() && config().IsVoter(self_) && !quiesced_ && !Recovering() &&
      role_ != Role::kLeader) {
    Campaign(/*pre_vote=*/false, /*transfer=*/true);
  }
  return std::string();
}

runtime::Future<Index> Raft::ChangeConfig(Config next, NodeId subject, const char* what) {
  if (role_ != Role::kLeader || transferring_) {
    return Failed(scheduler_, Status::Unavailable("raft: only the leader changes membership"));
  }
  if (commit_ < leader_first_index_) {
    return Failed(scheduler_, Status::Unavailable("raft: the leader has not committed its term yet"));
  }
  if (configs_.rbegin()->first > commit_) {
    return Failed(scheduler_, Status::Unavailable("raft: another membership change is uncommitted"));
  }
  if (subject == self_ && std::string_view(what) != "add learner") {
    return Failed(scheduler_, Status::InvalidArgument(
                                  "raft: the leader cannot demote or remove itself; transfer leadership first"));
  }
  MKS_ASSERT(next.Normalize());
  return AppendAsLeader(EntryType::kConfig, EncodeConfig(next));
}

runtime::Future<Index> Raft::NotA(NodeId node, std::string_view what) {
  return Failed(scheduler_, Status::InvalidArgument("raft: node " + std::to_string(node) +
                                                    " is not a " + std::string(what)));
}

runtime::Future<Index> Raft::AddLearner(NodeId node) {
  if (node == kNoNode || config().Contains(node)) return NotA(node, "new member");
  Config next = config();
  next.learners.push_back(node);
  return ChangeConfig(std::move(next), node, "add learner");
}

runtime::Future<Index> Raft::Promote(NodeId node) {
  if (!config().IsLearner(node)) {
    return NotA(node, "learner");
  }
  if (MatchOf(node) < commit_) {
    return Failed(scheduler_, Status::Unavailable("raft: learner " + std::to_string(node) +
                                                  " has not caught up"));
  }
  Config next = config();
  std::erase(next.learners, node);
  next.voters.push_back(node);
  return ChangeConfig(std::move(next), node, "promote");
}

runtime::Future<Index> Raft::Demote(NodeId node) {
  if (!config().IsVoter(node)) {
    return NotA(node, "voter");
  }
  Config next = config();
  std::erase(next.voters, node);
  next.learners.push_back(node);
  return ChangeConfig(std::move(next), node, "demote");
}

runtime::Future<Index> Raft::Remove(NodeId node) {
  if (!config().Contains(node)) {
    return NotA(node, "member");
  }
  Config next = config();
  std::erase(next.voters, node);
  std::erase(next.learners, node);
  if (next.voters.empty()) {
    return Failed(scheduler_, Status::InvalidArgument("raft: cannot remove the last voter"));
  }
  return ChangeConfig(std::move(next), node, "remove");
}

Status Raft::TransferLeadership(NodeId target) {
  if (role_ != Role::kLeader) return Status::Unavailable("raft: not the leader");
  if (target == kNoNode) {
    Index best = 0;
    for (NodeId voter : config().voters) {
      if (voter != self_ && MatchOf(voter) >= best) {
        best = MatchOf(voter);
        target = voter;
      }
    }
  }
  if (target == kNoNode || target == self_ || !config().IsVoter(target)) {
    return Status::InvalidArgument("raft: no other voter to hand leadership to");
  }
  const Term led = term();
  transferring_ = true;
  const int64_t deadline_ns = scheduler_->NowNanos() + options_.election_timeout_min_ns;
  while (role_ == Role::kLeader && term() == led && MatchOf(target) < store_.last_index()) {
    if (scheduler_->NowNanos() >= deadline_ns) {
      transferring_ = false;
      return Status::TimedOut("raft: node " + std::to_string(target) + " did not catch up");
    }
    WakePeer(target);
    scheduler_->SleepFor(options_.heartbeat_interval_ns / 4);
  }
  if (role_ != Role::kLeader || term() != led) return Status::Ok();  // it moved anyway
  proto::RaftTimeoutNow now;
  now.set_cluster_id(cluster_id());
  now.set_term(led);
  ++stats_.transfers;
  Result<std::string> sent = rpc_->CallAndWait(target, "raft.timeout_now", Serialize(now), ReplyTimeout());
  if (!sent.ok()) {
    transferring_ = false;
    return sent.status();
  }
  // transferring_ stays until the target's term unseats this leader; an
  // election timeout without that gives proposals back.
  std::weak_ptr<int> alive = liveness_;
  scheduler_->After(process_, options_.election_timeout_min_ns, [this, alive, led] {
    if (!alive.expired() && role_ == Role::kLeader && term() == led) transferring_ = false;
  });
  return Status::Ok();
}

void Raft::Quiesce() {
  quiesced_ = true;
  if (Running()) scheduler_->Cancel(election_timer_);
  if (role_ == Role::kLeader) BecomeFollower(term(), kNoNode);
  scheduler_->Cancel(election_timer_);
}

}  // namespace mks::raft
