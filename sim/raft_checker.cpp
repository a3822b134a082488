#include "sim/raft_checker.h"

#include <algorithm>

#include "core/assertions.h"
#include "core/crc32c.h"

namespace mks::sim {
namespace {

uint32_t EntryCrc(const raft::Entry& entry) {
  const char type = static_cast<char>(entry.type);
  return Crc32c(entry.data, Crc32c(std::string_view(&type, 1)));
}

std::string Name(NodeId node) { return "node " + std::to_string(node); }

std::string Names(const std::set<NodeId>& nodes) {
  std::string out = "{";
  for (NodeId node : nodes) out += (out.size() > 1 ? ", " : "") + std::to_string(node);
  return out + "}";
}

}  // namespace

void RaftChecker::Observer::BecameLeader(NodeId node, raft::Term term) {
  checker_->OnLeader(node, term);
}
void RaftChecker::Observer::VoteGranted(NodeId node, raft::Term term, NodeId candidate) {
  checker_->OnGrant(node, term, candidate);
}
void RaftChecker::Observer::CommittedByCount(NodeId node, raft::Term term, raft::Index index,
                                             raft::Term entry_term) {
  if (entry_term == term) return;
  checker_->Violation("own-term commit: " + Name(node) + ", leader of term " +
                      std::to_string(term) + ", committed index " + std::to_string(index) +
                      " by counting replicas of an entry of term " + std::to_string(entry_term));
}
void RaftChecker::Observer::Applied(NodeId node, const raft::Entry& entry) {
  checker_->OnApplied(node, entry);
}
void RaftChecker::Observer::SnapshotInstalled(NodeId node, raft::Index index, raft::Term term) {
  checker_->OnSnapshot(node, index, term);
}
void RaftChecker::Observer::HardStateDurable(NodeId node, const raft::HardState& hard) {
  checker_->OnDurable(node, hard);
}

RaftChecker::RaftChecker() : observer_(this) {}

void RaftChecker::NodeStarted(NodeId node, const raft::Raft* raft, const ClusterState* state) {
  MKS_ASSERT(raft != nullptr && state != nullptr);
  NodeFacts& facts = nodes_[node];
  MKS_ASSERT_MSG(facts.raft == nullptr, Name(node) + " started twice");
  facts.raft = raft;
  facts.state = state;
  active_ = true;
  if (facts.applied.has_value()) CheckState(node, *facts.applied);
}

void RaftChecker::NodeCrashed(NodeId node) {
  NodeFacts& facts = nodes_[node];
  facts.raft = nullptr;
  facts.state = nullptr;
  facts.applied.reset();
}

void RaftChecker::OnLeader(NodeId node, raft::Term term) {
  active_ = true;
  ++stats_.leaders_elected;
  stats_.highest_term = std::max(stats_.highest_term, term);
  auto [held, fresh] = leaders_.emplace(term, node);
  if (!fresh && held->second != node) {
    Violation("election safety: " + Name(node) + " and " + Name(held->second) +
              " both became leader in term " + std::to_string(term));
    return;
  }
  const raft::Raft* raft = nodes_[node].raft;
  if (raft == nullptr) return;  // still opening: its log is checked at its first apply
  for (const auto& [index, fact] : entries_) {
    if (index <= raft->store().snapshot().index) continue;
    const std::optional<raft::Term> held_term = raft->TermAt(index);
    if (!held_term.has_value() || *held_term != fact.term) {
      Violation("leader completeness: " + Name(node) + ", leader of term " +
                std::to_string(term) + ", lacks the entry of term " + std::to_string(fact.term) +
                " at index " + std::to_string(index) + " that " + Name(fact.first) +
                " applied" +
                (held_term.has_value() ? " (it holds term " + std::to_string(*held_term) + ")"
                                       : ""));
      return;
    }
  }
}

void RaftChecker::OnGrant(NodeId node, raft::Term term, NodeId candidate) {
  OnVote(node, term, candidate, "granted");
  const raft::Raft* raft = nodes_[node].raft;
  if (raft == nullptr) return;  // still opening: it answers nothing yet
  const raft::HardState& durable = raft->store().durable_hard();
  if (durable.term != term || durable.vote != candidate) {
    Violation("vote durable before granted: " + Name(node) + " granted its vote in term " +
              std::to_string(term) + " to " + Name(candidate) + " while its disk holds term " +
              std::to_string(durable.term) + ", vote " + std::to_string(durable.vote));
  }
}

void RaftChecker::OnVote(NodeId node, raft::Term term, NodeId candidate, const char* how) {
  active_ = true;
  auto [held, fresh] = nodes_[node].votes.emplace(term, candidate);
  if (!fresh && held->second != candidate) {
    Violation("one vote per term: " + Name(node) + " " + how + " its vote in term " +
              std::to_string(term) + " to " + Name(candidate) + " after voting for " +
              Name(held->second));
  }
}

void RaftChecker::OnApplied(NodeId node, const raft::Entry& entry) {
  active_ = true;
  ++stats_.entries_applied;
  stats_.highest_index = std::max(stats_.highest_index, entry.index);
  NodeFacts& facts = nodes_[node];
  if (facts.applied.has_value() && entry.index != *facts.applied + 1) {
    Violation("state-machine safety: " + Name(node) + " applied index " +
              std::to_string(entry.index) + " after " + std::to_string(*facts.applied));
  }
  facts.applied = entry.index;
  const uint32_t crc = EntryCrc(entry);
  auto [held, fresh] = entries_.emplace(entry.index, EntryFact{entry.term, crc, node});
  if (!fresh && (held->second.term != entry.term || held->second.crc != crc)) {
    Violation("state-machine safety: at index " + std::to_string(entry.index) + " " +
              Name(node) + " applied an entry of term " + std::to_string(entry.term) +
              ", " + Name(held->second.first) + " another of term " +
              std::to_string(held->second.term));
  }
  if (facts.state != nullptr) CheckState(node, entry.index);
}

void RaftChecker::OnSnapshot(NodeId node, raft::Index index, raft::Term term) {
  active_ = true;
  ++stats_.snapshots_installed;
  NodeFacts& facts = nodes_[node];
  if (facts.applied.has_value() && index <= *facts.applied) {
    Violation("state-machine safety: " + Name(node) + " installed a snapshot at index " +
              std::to_string(index) + " after applying " + std::to_string(*facts.applied));
  }
  facts.applied = index;
  auto held = entries_.find(index);
  if (held != entries_.end() && held->second.term != term) {
    Violation("state-machine safety: " + Name(node) + " installed a snapshot of term " +
              std::to_string(term) + " at index " + std::to_string(index) + ", where " +
              Name(held->second.first) + " applied term " + std::to_string(held->second.term));
  }
  if (facts.state != nullptr) CheckState(node, index);
}

void RaftChecker::OnDurable(NodeId node, const raft::HardState& hard) {
  NodeFacts& facts = nodes_[node];
  if (hard.term < facts.durable_term) {
    Violation("durable term: " + Name(node) + "'s durable term went back from " +
              std::to_string(facts.durable_term) + " to " + std::to_string(hard.term));
  }
  facts.durable_term = std::max(facts.durable_term, hard.term);
  if (hard.vote != kNoNode) OnVote(node, hard.term, hard.vote, "holds durably");
}

void RaftChecker::CheckState(NodeId node, raft::Index index) {
  const ClusterState* state = nodes_.at(node).state;
  MKS_ASSERT(state != nullptr);
  const uint32_t crc = Crc32c(state->Snapshot());
  auto [held, fresh] = states_.emplace(index, std::make_pair(crc, node));
  if (!fresh && held->second.first != crc) {
    Violation("ring agreement: after applying index " + std::to_string(index) + " " +
              Name(node) + " holds other cluster metadata (epoch " +
              std::to_string(state->epoch()) + ", " + std::to_string(state->members().size()) +
              " members) than " + Name(held->second.second));
  }
}

std::optional<NodeId> RaftChecker::Leader() const {
  const raft::Raft* leader = LeaderRaft();
  if (leader == nullptr) return std::nullopt;
  return leader->self();
}

const raft::Raft* RaftChecker::LeaderRaft() const {
  const raft::Raft* leader = nullptr;
  for (const auto& [node, facts] : nodes_) {
    if (facts.raft == nullptr || facts.raft->role() != raft::Role::kLeader) continue;
    if (leader == nullptr || facts.raft->term() > leader->term()) leader = facts.raft;
  }
  return leader;
}

Status RaftChecker::CheckConverged() {
  const raft::Raft* leader = LeaderRaft();
  if (leader == nullptr) return Status::Unavailable("raft: no leader among running nodes");
  // Members only: a removed node's term may run ahead, unheard.
  raft::Term highest = 0;
  for (const auto& [node, facts] : nodes_) {
    if (facts.raft != nullptr && leader->config().Contains(node)) {
      highest = std::max(highest, facts.raft->term());
    }
  }
  if (leader->term() != highest) {
    return Status::Unavailable("raft: " + Name(leader->self()) + " leads term " +
                               std::to_string(leader->term()) + " but a node is at term " +
                               std::to_string(highest));
  }
  // The leader keeps appending (the epoch advances), so the log never
  // stands still: what must be done is everything this leadership held
  // when a call first saw it.
  const std::pair<NodeId, raft::Term> leadership{leader->self(), leader->term()};
  if (settle_leadership_ != leadership) {
    settle_leadership_ = leadership;
    settle_target_ = leader->last_index();
  }
  const raft::Index target = settle_target_;
  if (leader->commit_index() < target) {
    return Status::Unavailable("raft: leader " + Name(leader->self()) + " has committed " +
                               std::to_string(leader->commit_index()) + " of " +
                               std::to_string(target));
  }
  const ClusterState* state = nodes_.at(leader->self()).state;
  if (state != nullptr) {
    const std::vector<NodeId>& seats = state->members().by_seat();
    std::set<NodeId> seated(seats.begin(), seats.end());
    // Beyond the expected members, only optional ones, each counted as expected.
    std::set<NodeId> expected = expected_members_;
    for (NodeId node : optional_members_) {
      if (seated.count(node) > 0) expected.insert(node);
    }
    if (seated != expected) {
      return Status::Unavailable("raft: the leader's metadata seats " + Names(seated) +
                                 ", not the expected " + Names(expected));
    }
    const std::vector<NodeId> in_config = leader->config().Members();
    if (std::set<NodeId>(in_config.begin(), in_config.end()) != seated) {
      return Status::Unavailable("raft: the leader's configuration holds " +
                                 Names(std::set<NodeId>(in_config.begin(), in_config.end())) +
                                 ", not the members " + Names(seated));
    }
  }
  const raft::Index commit = target;
  for (const auto& [node, facts] : nodes_) {
    if (facts.raft == nullptr || !leader->config().Contains(node)) continue;
    const raft::Raft& raft = *facts.raft;
    if (raft.last_applied() < commit) {
      return Status::Unavailable(
          "raft: " + Name(node) + " applied " + std::to_string(raft.last_applied()) +
          " of the leader's " + std::to_string(commit) + " (it is a " +
          std::string(raft::RoleName(raft.role())) + " of term " + std::to_string(raft.term()) +
          ", commit " + std::to_string(raft.commit_index()) + ", last index " +
          std::to_string(raft.last_index()) +
          (raft.store().hard().recover_through > 0
               ? ", recovering through " + std::to_string(raft.store().hard().recover_through)
               : std::string()) +
          "; the leader, " + Name(leader->self()) + " of term " + std::to_string(leader->term()) +
          ", holds it at " + std::to_string(leader->MatchOf(node)) + ")");
    }
    const raft::Index from =
        std::max(raft.store().snapshot().index, leader->store().snapshot().index) + 1;
    for (raft::Index index = from; index <= commit; ++index) {
      const std::optional<raft::Term> mine = raft.TermAt(index);
      const std::optional<raft::Term> leaders = leader->TermAt(index);
      if (mine.has_value() && leaders.has_value() && *mine != *leaders) {
        return Status::Corruption("raft: log matching: " + Name(node) + " holds term " +
                                  std::to_string(*mine) + " at index " + std::to_string(index) +
                                  ", the leader term " + std::to_string(*leaders));
      }
    }
  }
  return Status::Ok();
}

}  // namespace mks::sim
