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

void GossipChecker::OnChange(NodeId viewer, const gossip::MemberChange& change) {
  const int64_t now_ns = scheduler_->NowNanos();
  const NodeId node = change.node;
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
  // Nodes of different cluster secrets form different clusters.
  for (const bool outside : {false, true}) {
    const NodeState* reference = nullptr;
    NodeId reference_id = kNoNode;
    for (const auto& [id, state] : nodes_) {
      if (state.gossip == nullptr || state.paused) continue;
      if ((options_.wrong_secret.count(id) > 0) != outside) continue;
      if (reference == nullptr) {
        reference = &state;
        reference_id = id;
        continue;
      }
      const auto& mine = state.gossip->table().members();
      const auto& theirs = reference->gossip->table().members();
      auto a = mine.begin();
      auto b = theirs.begin();
      for (; a != mine.end() || b != theirs.end(); ++a, ++b) {
        if (a == mine.end() || b == theirs.end() || a->first != b->first ||
            a->second.record.state != b->second.record.state ||
            a->second.record.incarnation != b->second.record.incarnation) {
          const NodeId member = a != mine.end() ? a->first : b->first;
          return Status::Unavailable(
              "gossip views differ: node " + std::to_string(id) + " and node " +
              std::to_string(reference_id) + " disagree on node " + std::to_string(member));
        }
      }
    }
  }
  return Status::Ok();
}

}  // namespace mks::sim
