#include "sim/gossip_checker.h"

#include <algorithm>
#include <limits>

#include "core/assertions.h"

namespace mks::sim {
namespace {

constexpr int64_t kMsNanos = 1'000'000;

bool IsDown(gossip::MemberState state) {
  return state == gossip::MemberState::kDead || state == gossip::MemberState::kLeft;
}

std::string Ms(int64_t ns) { return std::to_string(ns / kMsNanos) + " ms"; }

}  // namespace

gossip::GossipOptions GossipOptionsFor(const GossipSettings& settings) {
  gossip::GossipOptions options;
  options.probe_interval_ns = settings.probe_interval_ms * kMsNanos;
  options.probe_timeout_ns = settings.probe_timeout_ms * kMsNanos;
  options.indirect_checks = settings.indirect_checks;
  options.suspicion_mult = settings.suspicion_mult;
  options.retransmit_mult = settings.retransmit_mult;
  options.push_pull_interval_ns = settings.push_pull_interval_ms * kMsNanos;
  options.join_retry_ns = settings.probe_interval_ms * kMsNanos;
  return options;
}

GossipCheckOptions GossipCheckOptionsFor(const Scenario& scenario) {
  const GossipSettings& g = scenario.gossip;
  const gossip::GossipOptions options = GossipOptionsFor(g);
  const gossip::SuspicionTimeouts bounds = gossip::ComputeSuspicionTimeouts(
      scenario.total_nodes(), options.probe_interval_ns, options.suspicion_mult,
      options.suspicion_max_mult);
  GossipCheckOptions check;
  check.detect_bound_ns = g.detect_bound_ms > 0 ? g.detect_bound_ms * kMsNanos
                                                : bounds.max_ns + 10 * options.probe_interval_ns;
  // A declaration rests on a failed probe and a suspicion as long as the
  // longest, stretched by local health at worst.
  check.accuracy_window_ns =
      bounds.max_ns + (1 + options.max_local_health) * options.probe_interval_ns;
  check.max_false_dead = g.max_false_dead;
  check.wrong_secret.insert(g.wrong_secret.begin(), g.wrong_secret.end());
  return check;
}

GossipChecker::GossipChecker(const runtime::Scheduler* scheduler, GossipCheckOptions options)
    : scheduler_(scheduler), options_(std::move(options)) {
  MKS_ASSERT(scheduler_ != nullptr);
  MKS_ASSERT_GT(options_.detect_bound_ns, 0);
  MKS_ASSERT_GT(options_.accuracy_window_ns, 0);
}

void GossipChecker::NoteIncarnation(NodeId node, uint64_t incarnation) {
  NodeState& state = nodes_[node];
  state.highest_incarnation = std::max(state.highest_incarnation, incarnation);
}

void GossipChecker::NodeStarted(NodeId node, gossip::Gossip* gossip, int64_t now_ns) {
  NodeState& state = nodes_[node];
  MKS_ASSERT(state.gossip == nullptr);
  state.paused = false;
  state.down_since_ns = -1;
  state.last_disturbed_ns = now_ns;
  if (gossip == nullptr) return;
  active_ = true;
  const uint64_t incarnation = gossip->table().self().incarnation;
  if (state.started_once && incarnation <= state.highest_incarnation) {
    violations_.push_back("gossip incarnation: node " + std::to_string(node) +
                          " started again at incarnation " + std::to_string(incarnation) +
                          ", not above " + std::to_string(state.highest_incarnation) +
                          " seen of it before");
  }
  state.started_once = true;
  state.gossip = gossip;
  state.view_hash = 0;
  for (const auto& [member, known] : gossip->table().members()) {
    if (member == node) continue;
    state.view_hash ^= EntryHash(member, known.record.state, known.record.incarnation);
  }
  gossip->AddListener([this, node](const gossip::MemberChange& change) { OnChange(node, change); });
}

void GossipChecker::NodeCrashed(NodeId node, int64_t now_ns) {
  NodeState& state = nodes_[node];
  // An incarnation the node never announced (its boot was not durable yet)
  // may come again.
  if (state.gossip != nullptr && state.gossip->announced()) {
    NoteIncarnation(node, state.gossip->table().self().incarnation);
  }
  state.gossip = nullptr;
  state.paused = false;
  state.down_since_ns = now_ns;
  state.last_disturbed_ns = now_ns;
}

void GossipChecker::NodePaused(NodeId node, int64_t now_ns) {
  NodeState& state = nodes_[node];
  state.paused = true;
  state.last_disturbed_ns = now_ns;
}

void GossipChecker::NodeResumed(NodeId node, int64_t now_ns) {
  NodeState& state = nodes_[node];
  state.paused = false;
  state.last_disturbed_ns = now_ns;
}

void GossipChecker::NetworkFault(const std::vector<NodeId>& nodes, int64_t now_ns,
                                 int64_t until_ns) {
  MKS_ASSERT_GE(until_ns, now_ns);
  for (NodeId node : nodes) {
    NodeState& state = nodes_[node];
    state.last_disturbed_ns = now_ns;
    state.disturbed_until_ns = std::max(state.disturbed_until_ns, until_ns);
  }
}

void GossipChecker::NetworkHealed(int64_t now_ns) {
  for (auto& [node, state] : nodes_) {
    if (state.disturbed_until_ns > now_ns) {
      state.disturbed_until_ns = now_ns;
      state.last_disturbed_ns = now_ns;
    }
  }
}

bool GossipChecker::Troubled(NodeId node, int64_t since_ns) const {
  auto it = nodes_.find(node);
  if (it == nodes_.end()) return true;  // never started: down all along
  const NodeState& state = it->second;
  return state.gossip == nullptr || state.paused || state.last_disturbed_ns >= since_ns ||
         state.disturbed_until_ns >= since_ns;
}

uint64_t GossipChecker::EntryHash(NodeId node, gossip::MemberState state,
                                  uint64_t incarnation) {
  return StableHash64(std::to_string(node) + "/" + std::to_string(static_cast<int>(state)) +
                      "/" + std::to_string(incarnation));
}

uint64_t GossipChecker::ViewHash(NodeId id, const NodeState& state) {
  MKS_ASSERT(state.gossip != nullptr);
  const gossip::MemberRecord& self = state.gossip->table().self();
  return state.view_hash ^ EntryHash(id, self.state, self.incarnation);
}

NodeId GossipChecker::FirstDifference(const NodeState& a, const NodeState& b) {
  const auto& mine = a.gossip->table().members();
  const auto& theirs = b.gossip->table().members();
  auto x = mine.begin();
  auto y = theirs.begin();
  for (; x != mine.end() && y != theirs.end(); ++x, ++y) {
    if (x->first != y->first) return std::min(x->first, y->first);
    if (x->second.record.state != y->second.record.state ||
        x->second.record.incarnation != y->second.record.incarnation) {
      return x->first;
    }
  }
  if (x != mine.end()) return x->first;
  if (y != theirs.end()) return y->first;
  return kNoNode;
}

void GossipChecker::OnChange(NodeId viewer, const gossip::MemberChange& change) {
  const int64_t now_ns = scheduler_->NowNanos();
  const NodeId node = change.node;
  NodeState& view = nodes_[viewer];
  if (change.before.has_value()) {
    view.view_hash ^= EntryHash(node, *change.before, change.before_incarnation);
  }
  view.view_hash ^= EntryHash(node, change.after.state, change.after.incarnation);
  NoteIncarnation(node, change.after.incarnation);
  const bool alive = change.after.state == gossip::MemberState::kAlive;
  if (alive && change.before.has_value() && IsDown(*change.before) &&
      change.after.incarnation <= change.before_incarnation) {
    violations_.push_back("gossip incarnation: node " + std::to_string(viewer) + " holds node " +
                          std::to_string(node) + " alive again at incarnation " +
                          std::to_string(change.after.incarnation) + ", not above the " +
                          std::string(gossip::MemberStateName(*change.before)) +
                          " record at " + std::to_string(change.before_incarnation));
  }
  const bool viewer_outside = options_.wrong_secret.count(viewer) > 0;
  const bool node_outside = options_.wrong_secret.count(node) > 0;
  if (alive && viewer_outside != node_outside) {
    violations_.push_back("gossip refusal: node " + std::to_string(viewer) + " lists node " +
                          std::to_string(node) +
                          " as alive although they hold different cluster secrets");
  }
  if (IsDown(change.after.state)) {
    // Detection as completeness sees it: by members running undisturbed
    // since the crash.
    auto down = nodes_.find(node);
    if (down != nodes_.end() && down->second.down_since_ns >= 0 &&
        !Troubled(viewer, down->second.down_since_ns)) {
      stats_.worst_detection_ns =
          std::max(stats_.worst_detection_ns, now_ns - down->second.down_since_ns);
    }
  }
  if (!change.by_self || change.after.state != gossip::MemberState::kDead) return;
  ++stats_.deaths_declared;
  // Across secrets nobody can reach anybody: such a death is the truth.
  if (viewer_outside != node_outside) return;
  const int64_t since_ns = now_ns - options_.accuracy_window_ns;
  if (Troubled(node, since_ns) || Troubled(viewer, since_ns)) return;
  ++stats_.false_dead;
  if (stats_.false_dead <= options_.max_false_dead) return;
  violations_.push_back("gossip accuracy: node " + std::to_string(viewer) + " declared node " +
                        std::to_string(node) + " dead at " + Ms(now_ns) +
                        " although both ran undisturbed for the " +
                        Ms(options_.accuracy_window_ns) + " before (" +
                        std::to_string(stats_.false_dead) + " false declarations, " +
                        std::to_string(options_.max_false_dead) + " tolerated)");
}

void GossipChecker::CheckDetected(NodeId node, int64_t crashed_ns, int64_t now_ns) {
  auto crashed = nodes_.find(node);
  MKS_ASSERT(crashed != nodes_.end());
  if (crashed->second.down_since_ns != crashed_ns) return;  // restarted since
  ++stats_.completeness_checks;
  for (const auto& [viewer, state] : nodes_) {
    if (viewer == node || state.gossip == nullptr || Troubled(viewer, crashed_ns)) continue;
    const gossip::Member* member = state.gossip->table().Find(node);
    if (member == nullptr || IsDown(member->record.state)) continue;
    violations_.push_back(
        "gossip completeness: node " + std::to_string(viewer) + " still holds node " +
        std::to_string(node) + " as " +
        std::string(gossip::MemberStateName(member->record.state)) + " " +
        Ms(now_ns - crashed_ns) + " after it crashed (bound " + Ms(options_.detect_bound_ns) +
        ")");
  }
}

Status GossipChecker::CheckAgreement() const {
  // Nodes of another secret are no part of the cluster (each holds a
  // secret of its own): only the cluster's views must agree.
  const NodeState* reference = nullptr;
  NodeId reference_id = kNoNode;
  uint64_t reference_hash = 0;
  for (const auto& [id, state] : nodes_) {
    if (state.gossip == nullptr || state.paused) continue;
    if (options_.wrong_secret.count(id) > 0) continue;
    const uint64_t hash = ViewHash(id, state);
    if (reference == nullptr) {
      reference = &state;
      reference_id = id;
      reference_hash = hash;
      continue;
    }
    if (hash == reference_hash) continue;
    return Status::Unavailable("gossip views differ: node " + std::to_string(id) +
                               " and node " + std::to_string(reference_id) +
                               " disagree on node " +
                               std::to_string(FirstDifference(state, *reference)));
  }
  return Status::Ok();
}

}  // namespace mks::sim
