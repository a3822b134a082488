#include "sim/world.h"

#include <algorithm>
#include <sstream>

#include "core/assertions.h"
#include "core/store.h"

namespace mks::sim {
namespace {

constexpr int64_t kMsNanos = 1000000;
constexpr int64_t kLivenessPollNanos = 20 * kMsNanos;

std::string JoinIds(const std::vector<NodeId>& ids) {
  std::string out;
  for (NodeId id : ids) {
    if (!out.empty()) out += ',';
    out += std::to_string(id);
  }
  return out;
}

}  // namespace

std::string_view VerdictName(Verdict verdict) {
  switch (verdict) {
    case Verdict::kPass: return "pass";
    case Verdict::kSafetyViolation: return "safety violation";
    case Verdict::kLivenessViolation: return "liveness violation";
  }
  return "invalid";
}

World::World(const Scenario& scenario, uint64_t seed, Protocol* protocol,
             Tracer* tracer)
    : scenario_(scenario),
      seed_(seed),
      protocol_(protocol),
      tracer_(tracer),
      root_(seed),
      fault_random_(root_.Split("faults")),
      scheduler_(&true_time_),
      network_(&scheduler_, root_.Split("network"), scenario.network, tracer),
      gossip_checker_(&scheduler_, GossipCheckOptionsFor(scenario)) {
  MKS_ASSERT(protocol != nullptr && tracer != nullptr);
  MKS_ASSERT_GE(scenario.nodes, 1u);
  MKS_ASSERT_LT(scenario.total_nodes(), kFirstClientId);
  base_loss_ppm_ = scenario.network.loss_ppm;
  base_duplicate_ppm_ = scenario.network.duplicate_ppm;
  base_reorder_ppm_ = scenario.network.reorder_ppm;
  world_process_ = scheduler_.CreateProcess("world");
  if (scenario.buggify_enabled) {
    buggify_ = std::make_unique<Buggify>(root_.Split("buggify"),
                                         scenario.buggify_site_percent * 10000,
                                         scenario.buggify_fire_ppm);
  }
  Random clock_random = root_.Split("clocks");
  for (NodeId id = 1; id <= scenario.total_nodes(); ++id) {
    NodeSlot slot;
    slot.id = id;
    slot.member = id <= scenario.nodes;
    ClockModel model;
    model.offset_us = 1000 * clock_random.Range(-scenario.clock_max_offset_ms,
                                                scenario.clock_max_offset_ms);
    model.drift_ppm = clock_random.Range(-scenario.clock_max_drift_ppm,
                                         scenario.clock_max_drift_ppm);
    for (const NodeClock& explicit_clock : scenario.clocks) {
      if (explicit_clock.node == id) model = explicit_clock.model;
    }
    slot.clock = std::make_unique<SimClock>(&true_time_, model);
    slot.disk = std::make_unique<SimDisk>(root_.Split("disk/" + std::to_string(id)),
                                          scenario.disk);
    slot.endpoint = network_.AddEndpoint(id);
    nodes_.push_back(std::move(slot));
    node_ids_.push_back(id);
    if (id <= scenario.nodes) member_ids_.push_back(id);
  }
  expected_members_.insert(member_ids_.begin(), member_ids_.end());
  raft_checker_.ExpectMembers(expected_members_);
  // Nodes holding another cluster secret: peers refuse each other's
  // messages, as the real transport refuses a peer that cannot authenticate.
  for (NodeId id : scenario.gossip.wrong_secret) network_.SetSecretGroup(id, id);
  for (uint32_t i = 0; i < scenario.workload.clients; ++i) {
    ClientSlot slot;
    slot.id = kFirstClientId + i;
    slot.clock = std::make_unique<SimClock>(&true_time_, ClockModel{});
    slot.endpoint = network_.AddEndpoint(slot.id);
    clients_.push_back(std::move(slot));
  }
  ChooseSwarm();
}

World::~World() {
  // Fibers reference the nodes and clients: kill every process first.
  for (NodeSlot& slot : nodes_) {
    if (slot.process != 0) scheduler_.Kill(slot.process);
  }
  for (ClientSlot& slot : clients_) {
    if (slot.process != 0) scheduler_.Kill(slot.process);
  }
}

void World::ChooseSwarm() {
  Random swarm = root_.Split("swarm");
  for (size_t i = 0; i < kFaultFamilyCount; ++i) {
    family_on_[i] = scenario_.faults[i].enabled;
  }
  // Draw for every listed family whether or not it is configured, so adding
  // a family to a scenario does not reshuffle the others' choices.
  for (FaultFamily family : scenario_.swarm_may_disable) {
    if (swarm.ChancePpm(scenario_.swarm_disable_percent * 10000)) {
      family_on_[static_cast<size_t>(family)] = false;
    }
  }
}

namespace {

// "[3,5,1,4,2]", or "by id" for the default seat order.
std::string SeatsString(const std::vector<NodeId>& seats) {
  if (seats.empty()) return "by id";
  std::string out = "[";
  for (size_t i = 0; i < seats.size(); ++i) {
    out += (i > 0 ? "," : "") + std::to_string(seats[i]);
  }
  return out + "]";
}

// "[ONE,QUORUM]", or "default" when a run uses the cluster's default only.
std::string LevelsString(const std::vector<Consistency>& levels) {
  if (levels.empty()) return "default";
  std::string out = "[";
  for (size_t i = 0; i < levels.size(); ++i) {
    out += (i > 0 ? "," : "") + ToString(levels[i]);
  }
  return out + "]";
}

}  // namespace

std::string World::DescribeParameters() const {
  std::ostringstream out;
  const Scenario& s = scenario_;
  const Workload& w = s.workload;
  const NetworkConfig& n = s.network;
  out << "seed: " << seed_ << "\n"
      << "scenario: " << s.path << "\n"
      << "protocol: " << s.protocol << "\n"
      << "nodes: " << s.nodes << " (+" << s.standby_nodes << " standby)  clients: "
      << w.clients << "\n"
      << "store: N=" << s.replicas << " R=" << ToString(s.read_consistency)
      << " W=" << ToString(s.write_consistency) << " partitions=" << s.partitions
      << " seats=" << SeatsString(s.seats) << "\n"
      << "phases: safety " << s.duration_ms << " ms, liveness bound "
      << s.liveness_bound_ms << " ms\n"
      << "workload: " << w.ops_per_second << " ops/s per client, keys "
      << w.key_space << ", read/write/delete " << w.read_percent << "/"
      << w.write_percent << "/" << w.delete_percent << "%, values "
      << w.value_bytes_min << ".." << w.value_bytes_max << " bytes, timeout "
      << w.request_timeout_ms << " ms\n"
      << "request levels: reads " << LevelsString(w.read_levels) << ", writes "
      << LevelsString(w.write_levels) << "\n"
      << "network: latency " << n.latency_min_us << ".." << n.latency_max_us
      << " us, slow tail " << n.slow_tail_ppm << " ppm up to "
      << n.slow_tail_max_us << " us, loss " << n.loss_ppm << " ppm, duplicate "
      << n.duplicate_ppm << " ppm, reorder " << n.reorder_ppm << " ppm\n";
  for (const NodeSlot& slot : nodes_) {
    out << "clock node " << slot.id << ": offset "
        << slot.clock->model().offset_us << " us, drift "
        << slot.clock->model().drift_ppm << " ppm\n";
  }
  const GossipSettings& g = s.gossip;
  if (s.protocol != "counter") {
    out << "gossip: " << (g.enabled || s.protocol == "gossip" ? "on" : "off") << ", probe every "
        << g.probe_interval_ms << " ms, timeout " << g.probe_timeout_ms << " ms, "
        << g.indirect_checks << " indirect, suspicion x" << g.suspicion_mult
        << ", retransmit x" << g.retransmit_mult << ", push-pull every "
        << g.push_pull_interval_ms << " ms; detection bound "
        << gossip_checker_.options().detect_bound_ns / kMsNanos << " ms, accuracy window "
        << gossip_checker_.options().accuracy_window_ns / kMsNanos << " ms, "
        << g.max_false_dead << " false deaths tolerated, " << g.wrong_secret.size()
        << " nodes with another secret\n";
  }
  out << "timeline: " << s.timeline.size() << " scripted events\n";
  for (const TimelineEvent& e : s.timeline) {
    out << "  at " << e.at_ms << " ms: " << TimelineActionName(e.action);
    if (!e.nodes.empty()) out << " " << JoinIds(e.nodes);
    if (!e.side_a.empty()) out << " " << JoinIds(e.side_a) << " | " << JoinIds(e.side_b);
    if (e.via != kNoNode) out << " via " << e.via;
    if (e.from != kNoNode) out << " " << e.from << " -> " << e.to;
    if (e.duration_ms != 0) out << " for " << e.duration_ms << " ms";
    if (e.step_ms != 0) out << " by " << e.step_ms << " ms";
    if (FamilyOf(e.action) == FaultFamily::kLoss ||
        FamilyOf(e.action) == FaultFamily::kDuplicate ||
        FamilyOf(e.action) == FaultFamily::kReorder) {
      out << " " << e.ppm << " ppm";
    }
    out << (e.at_ms >= s.duration_ms ? " (after the safety phase: ignored)\n" : "\n");
  }
  for (size_t i = 0; i < kFaultFamilyCount; ++i) {
    const FamilyConfig& f = s.faults[i];
    out << "fault family " << FaultFamilyName(static_cast<FaultFamily>(i)) << ": ";
    if (!f.enabled) {
      out << "not configured\n";
      continue;
    }
    const auto family = static_cast<FaultFamily>(i);
    out << (family_on_[i] ? "on" : "off (swarm)") << ", every "
        << f.interval_min_ms << ".." << f.interval_max_ms << " ms";
    if (family == FaultFamily::kClockStep) {
      out << ", steps up to +-" << f.step_max_ms << " ms\n";
      continue;
    }
    if (!FamilyHasDuration(family)) {
      out << "\n";
      continue;
    }
    out << ", lasting " << f.duration_min_ms << ".." << f.duration_max_ms << " ms";
    if (family == FaultFamily::kCrash || family == FaultFamily::kPause) {
      out << ", at most " << f.max_down << " node(s) at once";
    }
    if (f.ppm != 0) out << ", " << f.ppm << " ppm";
    out << "\n";
  }
  out << "swarm: may disable " << s.swarm_may_disable.size()
      << " families, each with " << s.swarm_disable_percent << "%\n";
  if (buggify_ != nullptr) {
    out << "buggify: on, each site enabled with " << s.buggify_site_percent
        << "%, enabled sites fire with " << s.buggify_fire_ppm << " ppm\n";
  } else {
    out << "buggify: off\n";
  }
  return out.str();
}

World::NodeSlot& World::SlotOf(NodeId node) {
  MKS_ASSERT_GE(node, 1u);
  MKS_ASSERT_LE(node, nodes_.size());
  return nodes_[node - 1];
}

SimClock& World::clock(NodeId node) { return *SlotOf(node).clock; }
SimDisk& World::disk(NodeId node) { return *SlotOf(node).disk; }
ProtocolNode* World::node(NodeId node) { return SlotOf(node).node.get(); }
bool World::IsNodeUp(NodeId node) const {
  MKS_ASSERT_GE(node, 1u);
  return nodes_.at(node - 1).state != NodeState::kDown;
}

void World::StartNode(NodeSlot& slot) {
  MKS_ASSERT(slot.state == NodeState::kDown);
  MKS_ASSERT(slot.node == nullptr);
  ++slot.incarnation;
  const std::string name =
      "node/" + std::to_string(slot.id) + "/" + std::to_string(slot.incarnation);
  slot.process = scheduler_.CreateProcess(name);
  network_.Up(slot.id, slot.process);
  slot.disk->Attach(&scheduler_, slot.process);
  NodeContext context;
  context.env.node_id = slot.id;
  context.env.clock = slot.clock.get();
  context.env.network = slot.endpoint;
  context.env.disk = slot.disk.get();
  context.env.random = root_.Split(name);
  context.env.buggify = buggify_.get();
  context.scheduler = &scheduler_;
  context.process = slot.process;
  context.nodes = member_ids_;
  context.scenario = &scenario_;
  context.member = slot.member;
  if (!slot.member) context.seeds = {SimNetwork::AddressOf(slot.seed)};
  context.raft_observer = raft_checker_.observer();
  slot.state = NodeState::kRunning;
  slot.down_since_ns = -1;
  slot.node = protocol_->StartNode(context);
  gossip_checker_.NodeStarted(slot.id, slot.node->gossip(), now_ns());
  if (slot.node->raft() != nullptr) {
    raft_checker_.NodeStarted(slot.id, slot.node->raft(), slot.node->cluster_state());
  }
  // A checker may judge a node as it starts (the kv ring agreement).
  TakeCheckerViolations();
}

void World::StartClient(ClientSlot& slot) {
  slot.process = scheduler_.CreateProcess("client/" + std::to_string(slot.id));
  network_.Up(slot.id, slot.process);
  ClientContext context;
  context.env.node_id = slot.id;
  context.env.clock = slot.clock.get();
  context.env.network = slot.endpoint;
  context.env.random = root_.Split("client/" + std::to_string(slot.id));
  context.env.buggify = buggify_.get();
  context.scheduler = &scheduler_;
  context.process = slot.process;
  context.nodes = member_ids_;
  context.workload = &scenario_.workload;
  context.history = this;
  slot.client = protocol_->StartClient(context);
}

void World::HarvestCounters(const ProtocolNode& node) {
  for (const auto& [name, value] : node.Counters()) {
    summary_.protocol_counters[name] += value;
  }
}

void World::CrashNode(NodeId node) {
  NodeSlot& slot = SlotOf(node);
  if (slot.state == NodeState::kDown) return;
  // Kill first: the node's fibers and timers reference the node object.
  scheduler_.Kill(slot.process);
  network_.Down(node);
  HarvestCounters(*slot.node);
  const int64_t crashed_ns = now_ns();
  gossip_checker_.NodeCrashed(node, crashed_ns);
  raft_checker_.NodeCrashed(node);
  if (gossip_checker_.active()) {
    scheduler_.At(world_process_, crashed_ns + gossip_checker_.options().detect_bound_ns,
                  [this, node, crashed_ns] {
                    gossip_checker_.CheckDetected(node, crashed_ns, now_ns());
                    TakeCheckerViolations();
                  });
  }
  slot.node.reset();
  slot.down_since_ns = crashed_ns;
  slot.disk->Crash();
  slot.disk->Detach();
  slot.process = 0;
  slot.state = NodeState::kDown;
  MKS_ASSERT(!network_.IsUp(node));
}

void World::RestartNode(NodeId node) {
  NodeSlot& slot = SlotOf(node);
  if (slot.state != NodeState::kDown || slot.incarnation == 0) return;
  StartNode(slot);
  MKS_ASSERT(network_.IsUp(node));
}

void World::JoinNode(NodeId node, NodeId seed) {
  NodeSlot& slot = SlotOf(node);
  if (slot.member || slot.incarnation != 0) return;
  MKS_ASSERT_NE(seed, node);
  slot.seed = seed;
  StartNode(slot);
  MKS_ASSERT_EQ(slot.incarnation, 1u);
}

void World::PauseNode(NodeId node) {
  NodeSlot& slot = SlotOf(node);
  if (slot.state != NodeState::kRunning) return;
  scheduler_.Pause(slot.process);
  slot.state = NodeState::kPaused;
  gossip_checker_.NodePaused(node, now_ns());
  MKS_ASSERT(scheduler_.IsPaused(slot.process));
}

void World::ResumeNode(NodeId node) {
  NodeSlot& slot = SlotOf(node);
  if (slot.state != NodeState::kPaused) return;
  scheduler_.Unpause(slot.process);
  slot.state = NodeState::kRunning;
  gossip_checker_.NodeResumed(node, now_ns());
  MKS_ASSERT(!scheduler_.IsPaused(slot.process));
}

uint32_t World::CountInState(NodeState state) const {
  uint32_t count = 0;
  for (const NodeSlot& slot : nodes_) count += slot.state == state ? 1 : 0;
  return count;
}

std::vector<NodeId> World::NodesInState(NodeState state) const {
  std::vector<NodeId> out;
  for (const NodeSlot& slot : nodes_) {
    if (slot.state == state) out.push_back(slot.id);
  }
  return out;
}

int64_t World::DrawMs(int64_t low_ms, int64_t high_ms) {
  return fault_random_.Range(low_ms, high_ms);
}

void World::Start() {
  MKS_ASSERT(!started_);
  started_ = true;
  for (NodeSlot& slot : nodes_) {
    if (slot.member) StartNode(slot);
  }
  for (ClientSlot& slot : clients_) StartClient(slot);
  ScheduleTimeline();
  for (size_t i = 0; i < kFaultFamilyCount; ++i) {
    if (family_on_[i]) ScheduleNextFault(static_cast<FaultFamily>(i));
  }
  safety_end_ns_ = scenario_.duration_ms * kMsNanos;
  scheduler_.At(world_process_, safety_end_ns_, [this] { EndSafetyPhase(); });
  tracer_->Record(now_ns(), TraceKind::kPhase, 1, seed_, scenario_.nodes, "start");
}

void World::RunUntil(int64_t until_ns) {
  MKS_ASSERT(started_);
  MKS_ASSERT_GE(until_ns, now_ns());
  while (!done_) {
    scheduler_.RunReady();
    const std::optional<int64_t> next = scheduler_.NextDeadlineNanos();
    if (!next || *next > until_ns) break;
    if (*next > now_ns()) true_time_.AdvanceTo(*next);
    if (scheduler_.FireNextTimer()) {
      ++summary_.events;
      tracer_->Record(now_ns(), TraceKind::kTimer, summary_.events, 0, 0);
    }
  }
  scheduler_.RunReady();
  if (!done_ && until_ns > now_ns()) true_time_.AdvanceTo(until_ns);
  MKS_ASSERT_EQ(scheduler_.ready_count(), 0u);
}

RunSummary World::Run() {
  if (!started_) Start();
  const int64_t horizon_ns =
      (scenario_.duration_ms + scenario_.liveness_bound_ms) * kMsNanos + kLivenessPollNanos;
  RunUntil(horizon_ns);
  MKS_ASSERT_MSG(done_, "the liveness check did not conclude by the horizon");
  summary_.simulated_ns = now_ns();
  for (const NodeSlot& slot : nodes_) {
    if (slot.node != nullptr) HarvestCounters(*slot.node);
  }
  summary_.network = network_.stats();
  summary_.gossip = gossip_checker_.stats();
  summary_.raft = raft_checker_.stats();
  summary_.trace_hash = tracer_->hash();
  summary_.trace_events = tracer_->events();
  return summary_;
}

void World::Finish(Verdict verdict) {
  if (done_) return;
  done_ = true;
  summary_.verdict = verdict;
  tracer_->Record(now_ns(), TraceKind::kPhase, 3, static_cast<uint64_t>(verdict),
                  0, "finish");
}

// ---- Scripted faults ----

void World::ScheduleTimeline() {
  for (const TimelineEvent& event : scenario_.timeline) {
    if (event.at_ms >= scenario_.duration_ms) continue;  // faults stop then
    const TimelineEvent* e = &event;  // scenario_ is const: stable address
    scheduler_.At(world_process_, event.at_ms * kMsNanos,
                  [this, e] { ApplyTimelineEvent(*e); });
  }
}

void World::ApplyTimelineEvent(const TimelineEvent& e) {
  if (!faults_active_) return;
  const int64_t now = now_ns();
  switch (e.action) {
    case TimelineAction::kIsolate:
      for (NodeId node : e.nodes) network_.Isolate(node);
      NoteNetworkFault(e.nodes, INT64_MAX);
      break;
    case TimelineAction::kSplit:
      network_.Split(e.side_a, e.side_b);
      NoteNetworkFault(node_ids_, INT64_MAX);
      break;
    case TimelineAction::kCut:
      network_.Cut(e.from, e.to);
      NoteNetworkFault({e.from, e.to}, INT64_MAX);
      break;
    case TimelineAction::kBridge: {
      // Both sides reach `via`; nothing else crosses.
      std::vector<NodeId> a = e.side_a;
      std::vector<NodeId> b = e.side_b;
      std::erase(a, e.via);
      std::erase(b, e.via);
      network_.Split(a, b);
      NoteNetworkFault(node_ids_, INT64_MAX);
      break;
    }
    case TimelineAction::kHeal:
      network_.Heal();
      gossip_checker_.NetworkHealed(now);
      break;
    case TimelineAction::kJoin:
      for (NodeId node : e.nodes) {
        JoinNode(node, e.via);
        expected_members_.insert(node);
      }
      raft_checker_.ExpectMembers(expected_members_);
      break;
    case TimelineAction::kRemove:
    case TimelineAction::kDecommission:
      for (NodeId node : e.nodes) {
        const NodeId via = e.action == TimelineAction::kRemove ? e.via : node;
        pending_removals_.emplace_back(node, via);
        expected_members_.erase(node);
        if (ProtocolNode* asked = this->node(via)) asked->RequestRemove(node);
      }
      raft_checker_.ExpectMembers(expected_members_);
      break;
    case TimelineAction::kCrash:
      for (NodeId node : e.nodes) CrashNode(node);
      break;
    case TimelineAction::kRestart:
      for (NodeId node : e.nodes) RestartNode(node);
      break;
    case TimelineAction::kPause:
      for (NodeId node : e.nodes) PauseNode(node);
      break;
    case TimelineAction::kResume:
      for (NodeId node : e.nodes) ResumeNode(node);
      break;
    case TimelineAction::kClogNode:
      for (NodeId node : e.nodes) network_.ClogNode(node, now + e.duration_ms * kMsNanos);
      NoteNetworkFault(e.nodes, now + e.duration_ms * kMsNanos);
      break;
    case TimelineAction::kClogLink:
      network_.ClogLink(e.from, e.to, now + e.duration_ms * kMsNanos);
      NoteNetworkFault({e.from, e.to}, now + e.duration_ms * kMsNanos);
      break;
    case TimelineAction::kClockStep:
      for (NodeId node : e.nodes) clock(node).Step(e.step_ms * 1000);
      break;
    case TimelineAction::kLossPpm:
      base_loss_ppm_ = network_.config().loss_ppm = e.ppm;
      break;
    case TimelineAction::kDuplicatePpm:
      base_duplicate_ppm_ = network_.config().duplicate_ppm = e.ppm;
      break;
    case TimelineAction::kReorderPpm:
      base_reorder_ppm_ = network_.config().reorder_ppm = e.ppm;
      break;
  }
  RecordFault(FamilyOf(e.action), true, static_cast<uint64_t>(e.line),
              e.nodes.empty() ? 0 : e.nodes[0], TimelineActionName(e.action));
}

void World::RecordFault(FaultFamily family, bool scripted, uint64_t a,
                        uint64_t b, std::string_view what) {
  const auto index = static_cast<size_t>(family);
  MKS_ASSERT_LT(index, kFaultFamilyCount);
  if (scripted) {
    ++summary_.scripted_faults[index];
  } else {
    MKS_ASSERT(family_on_[index]);
    ++summary_.random_faults[index];
  }
  tracer_->Record(now_ns(), TraceKind::kFault, index, a, b, what);
  constexpr size_t kRecentFaults = 6;
  recent_faults_.push_back(std::to_string(now_ns() / kMsNanos) + " ms " +
                           std::string(FaultFamilyName(family)) + " " +
                           std::string(what) + " (" + std::to_string(a) + ", " +
                           std::to_string(b) + ")");
  if (recent_faults_.size() > kRecentFaults) recent_faults_.pop_front();
}

std::string World::FaultsInForce() const {
  auto list = [](const std::vector<NodeId>& nodes) {
    std::string out = "[";
    for (NodeId node : nodes) out += (out.size() > 1 ? " " : "") + std::to_string(node);
    return out + "]";
  };
  const NetworkConfig& config = network_.config();
  std::string out = "faults in force at " + std::to_string(now_ns() / kMsNanos) +
                    " ms: down " + list(NodesInState(NodeState::kDown)) +
                    ", paused " + list(NodesInState(NodeState::kPaused)) +
                    ", loss " + std::to_string(config.loss_ppm) + " ppm, duplicate " +
                    std::to_string(config.duplicate_ppm) + " ppm, reorder " +
                    std::to_string(config.reorder_ppm) + " ppm; latest faults:";
  if (recent_faults_.empty()) out += " none";
  for (const std::string& fault : recent_faults_) out += " [" + fault + "]";
  return out;
}

// ---- Random fault families ----

void World::ScheduleNextFault(FaultFamily family) {
  const FamilyConfig& config = scenario_.family(family);
  MKS_ASSERT(family_on_[static_cast<size_t>(family)]);
  const int64_t delay_ns =
      DrawMs(config.interval_min_ms, config.interval_max_ms) * kMsNanos;
  scheduler_.After(world_process_, delay_ns, [this, family] {
    if (!faults_active_) return;
    InjectRandomFault(family);
    ScheduleNextFault(family);
  });
}

void World::InjectRandomFault(FaultFamily family) {
  const FamilyConfig& config = scenario_.family(family);
  const int64_t duration_ns =
      DrawMs(config.duration_min_ms, config.duration_max_ms) * kMsNanos;
  switch (family) {
    case FaultFamily::kPartition: InjectRandomPartition(duration_ns); break;
    case FaultFamily::kCrash:
    case FaultFamily::kPause: InjectRandomCrashOrPause(family, duration_ns); break;
    case FaultFamily::kClog: InjectRandomClog(now_ns() + duration_ns); break;
    case FaultFamily::kClockStep: {
      NodeId node = node_ids_[fault_random_.Uniform(node_ids_.size())];
      node = AimAtLeader(family, node_ids_).value_or(node);
      int64_t step_ms = fault_random_.Range(-config.step_max_ms, config.step_max_ms);
      if (step_ms == 0) step_ms = 1;
      clock(node).Step(step_ms * 1000);
      RecordFault(family, false, node, static_cast<uint64_t>(step_ms), "clock_step");
      break;
    }
    case FaultFamily::kLoss:
    case FaultFamily::kDuplicate:
    case FaultFamily::kReorder: InjectRateBurst(family, duration_ns); break;
    case FaultFamily::kBitRot: InjectBitRot(); break;
    case FaultFamily::kDiskError: {
      NodeId node = node_ids_[fault_random_.Uniform(node_ids_.size())];
      node = AimAtLeader(family, node_ids_).value_or(node);
      disk(node).set_write_error_ppm(config.ppm);
      RecordFault(family, false, node, config.ppm, "disk_error");
      scheduler_.After(world_process_, duration_ns, [this, node] {
        if (faults_active_) disk(node).set_write_error_ppm(0);
      });
      break;
    }
  }
}

std::optional<NodeId> World::AimAtLeader(FaultFamily family,
                                         const std::vector<NodeId>& candidates) {
  const uint32_t percent = scenario_.family(family).leader_percent;
  // No draw when the scenario never aims: its runs stay as they were.
  if (percent == 0 || fault_random_.Uniform(100) >= percent) return std::nullopt;
  const std::optional<NodeId> leader = raft_checker_.Leader();
  if (!leader.has_value() ||
      std::find(candidates.begin(), candidates.end(), *leader) == candidates.end()) {
    return std::nullopt;
  }
  return leader;
}

void World::InjectRandomPartition(int64_t duration_ns) {
  const size_t n = node_ids_.size();
  if (n < 2) return;
  std::vector<NodeId> shuffled = node_ids_;
  for (size_t i = n - 1; i > 0; --i) {
    std::swap(shuffled[i], shuffled[fault_random_.Uniform(i + 1)]);
  }
  // The first node is the one isolated, cut, bridging or on the side
  // that holds it.
  if (const std::optional<NodeId> leader = AimAtLeader(FaultFamily::kPartition, node_ids_)) {
    std::swap(shuffled[0], *std::find(shuffled.begin(), shuffled.end(), *leader));
  }
  const uint64_t kind = fault_random_.Uniform(n >= 3 ? 4 : 3);
  std::string what;
  if (kind == 0) {
    network_.Isolate(shuffled[0]);
    what = "isolate " + std::to_string(shuffled[0]);
  } else if (kind == 1) {
    const size_t cut = 1 + fault_random_.Uniform(n - 1);
    const std::vector<NodeId> a(shuffled.begin(), shuffled.begin() + static_cast<long>(cut));
    const std::vector<NodeId> b(shuffled.begin() + static_cast<long>(cut), shuffled.end());
    network_.Split(a, b);
    what = "split " + JoinIds(a) + " | " + JoinIds(b);
  } else if (kind == 2) {
    network_.Cut(shuffled[0], shuffled[1]);
    what = "cut " + std::to_string(shuffled[0]) + " -> " + std::to_string(shuffled[1]);
  } else {
    // Bridge: shuffled[0] reaches both sides, which cannot reach each other.
    const size_t cut = 1 + fault_random_.Uniform(n - 2);
    const std::vector<NodeId> a(shuffled.begin() + 1, shuffled.begin() + 1 + static_cast<long>(cut));
    const std::vector<NodeId> b(shuffled.begin() + 1 + static_cast<long>(cut), shuffled.end());
    network_.Split(a, b);
    what = "bridge " + JoinIds(a) + " | " + JoinIds(b) + " via " + std::to_string(shuffled[0]);
  }
  NoteNetworkFault(kind == 2 ? std::vector<NodeId>{shuffled[0], shuffled[1]}
                   : kind == 0 ? std::vector<NodeId>{shuffled[0]}
                               : node_ids_,
                   INT64_MAX);
  RecordFault(FaultFamily::kPartition, false, kind, static_cast<uint64_t>(duration_ns), what);
  scheduler_.After(world_process_, duration_ns, [this] {
    if (!faults_active_) return;
    network_.Heal();
    gossip_checker_.NetworkHealed(now_ns());
  });
}

void World::InjectRandomCrashOrPause(FaultFamily family, int64_t duration_ns) {
  const bool crash = family == FaultFamily::kCrash;
  const uint32_t max_down = scenario_.family(family).max_down;
  const uint32_t affected = CountInState(crash ? NodeState::kDown : NodeState::kPaused);
  const std::vector<NodeId> candidates = NodesInState(NodeState::kRunning);
  // Never more than the scenario says the system must survive.
  if (affected >= max_down || candidates.empty()) return;
  const NodeId node = AimAtLeader(family, candidates)
                          .value_or(candidates[fault_random_.Uniform(candidates.size())]);
  if (crash) {
    CrashNode(node);
  } else {
    PauseNode(node);
  }
  RecordFault(family, false, node, static_cast<uint64_t>(duration_ns),
              crash ? "crash" : "pause");
  scheduler_.After(world_process_, duration_ns, [this, node, crash] {
    if (!faults_active_) return;  // the liveness phase restores everyone
    if (crash) {
      RestartNode(node);
    } else {
      ResumeNode(node);
    }
  });
}

void World::InjectBitRot() {
  const NodeId node = node_ids_[fault_random_.Uniform(node_ids_.size())];
  SimDisk& target = disk(node);
  // Never more than the cluster must survive: a record is damaged on one
  // node at a time (its other copies stay good, and a copy dropped for its
  // damage counts as damaged until rewritten), and a node holds one
  // damaged record at a time (its metadata's two copies never rot together).
  if (!target.DamagedKeys().empty()) return;
  const std::optional<std::string> key =
      target.CorruptRandomRecord([this, node](std::string_view disk_key) {
        for (const NodeSlot& other : nodes_) {
          if (other.id != node && (other.disk->IsDamaged(disk_key) ||
                                   other.disk->LostToDamage(disk_key))) {
            return false;
          }
        }
        return true;
      });
  if (!key.has_value()) return;
  RecordFault(FaultFamily::kBitRot, false, node, 0, "bit_rot " + EscapeKeyForMessage(*key));
  protocol_->checker().DiskDamaged(node, *key, now_ns());
}

void World::InjectRandomClog(int64_t until_ns) {
  const NodeId a = node_ids_[fault_random_.Uniform(node_ids_.size())];
  if (node_ids_.size() < 2 || fault_random_.Uniform(2) == 0) {
    network_.ClogNode(a, until_ns);
    NoteNetworkFault({a}, until_ns);
    RecordFault(FaultFamily::kClog, false, a, 0, "clog node");
    return;
  }
  NodeId b = a;
  while (b == a) b = node_ids_[fault_random_.Uniform(node_ids_.size())];
  network_.ClogLink(a, b, until_ns);
  NoteNetworkFault({a, b}, until_ns);
  RecordFault(FaultFamily::kClog, false, a, b, "clog link");
}

void World::NoteNetworkFault(const std::vector<NodeId>& nodes, int64_t until_ns) {
  gossip_checker_.NetworkFault(nodes, now_ns(), until_ns);
}

void World::InjectRateBurst(FaultFamily family, int64_t duration_ns) {
  const uint32_t ppm = scenario_.family(family).ppm;
  NetworkConfig& config = network_.config();
  if (family == FaultFamily::kLoss) config.loss_ppm = ppm;
  if (family == FaultFamily::kDuplicate) config.duplicate_ppm = ppm;
  if (family == FaultFamily::kReorder) config.reorder_ppm = ppm;
  RecordFault(family, false, ppm, static_cast<uint64_t>(duration_ns), "burst");
  scheduler_.After(world_process_, duration_ns, [this, family] {
    if (!faults_active_) return;
    NetworkConfig& c = network_.config();
    if (family == FaultFamily::kLoss) c.loss_ppm = base_loss_ppm_;
    if (family == FaultFamily::kDuplicate) c.duplicate_ppm = base_duplicate_ppm_;
    if (family == FaultFamily::kReorder) c.reorder_ppm = base_reorder_ppm_;
  });
}

// ---- Phases ----

void World::EndSafetyPhase() {
  MKS_ASSERT(faults_active_);
  faults_active_ = false;
  tracer_->Record(now_ns(), TraceKind::kPhase, 2, 0, 0, "liveness");
  network_.Heal();
  network_.Unclog();
  gossip_checker_.NetworkHealed(now_ns());
  network_.config().loss_ppm = 0;
  network_.config().duplicate_ppm = 0;
  network_.config().reorder_ppm = 0;
  ExpectLongDeadRemoved();
  for (NodeSlot& slot : nodes_) {
    // Faults stop: clock steps are undone, as NTP would eventually do; the
    // clock's own model (offset, drift) stays.
    slot.clock->Step(-slot.clock->total_step_us());
    slot.disk->set_write_error_ppm(0);
    ResumeNode(slot.id);
    RestartNode(slot.id);
  }
  // A removal asked of a node that crashed since is asked again.
  for (const auto& [removed, via] : pending_removals_) {
    if (ProtocolNode* asked = node(via)) asked->RequestRemove(removed);
  }
  for (ClientSlot& slot : clients_) slot.client->Stop();
  CheckLiveness();
}

void World::ExpectLongDeadRemoved() {
  const int64_t after_ns = scenario_.raft.dead_remove_after_ms * kMsNanos;
  if (after_ns == 0) return;
  // Held dead within the detection bound, then the leader's next rounds.
  const int64_t surely_ns = after_ns + gossip_checker_.options().detect_bound_ns +
                            2000 * kMsNanos;
  std::set<NodeId> may_go;
  for (const NodeSlot& slot : nodes_) {
    if (slot.state != NodeState::kDown || slot.down_since_ns < 0) continue;
    const int64_t down_ns = now_ns() - slot.down_since_ns;
    if (down_ns >= surely_ns) {
      expected_members_.erase(slot.id);
    } else if (down_ns >= after_ns) {
      may_go.insert(slot.id);
    }
  }
  raft_checker_.ExpectMembers(expected_members_, std::move(may_go));
}

void World::CheckLiveness() {
  if (done_) return;
  bool idle = true;
  for (const ClientSlot& slot : clients_) idle = idle && slot.client->Idle();
  Status converged = Status::Unavailable(
      "clients still have operations in flight" +
      (last_idle_failure_.empty() ? std::string(" (never idle)")
                                  : "; when last idle: " + last_idle_failure_));
  if (idle) {
    std::vector<std::string> digests;
    for (const NodeSlot& slot : nodes_) {
      // A standby node that never joined holds nothing.
      digests.push_back(slot.node != nullptr ? slot.node->ConvergenceDigest() : "");
    }
    converged = protocol_->checker().CheckConverged(digests);
    if (converged.ok() && gossip_checker_.active()) converged = gossip_checker_.CheckAgreement();
    if (converged.ok() && raft_checker_.active()) converged = raft_checker_.CheckConverged();
    last_idle_failure_ = converged.message();
  }
  if (TakeCheckerViolations()) return;
  if (converged.ok()) {
    summary_.converged_after_ns = now_ns() - safety_end_ns_;
    Finish(Verdict::kPass);
    return;
  }
  if (converged.IsCorruption()) {
    summary_.violations.push_back("after convergence: " + converged.message() +
                                  "\n    " + FaultsInForce());
    Finish(Verdict::kSafetyViolation);
    return;
  }
  if (now_ns() - safety_end_ns_ >= scenario_.liveness_bound_ms * kMsNanos) {
    summary_.liveness_failure = converged.message();
    Finish(Verdict::kLivenessViolation);
    return;
  }
  scheduler_.After(world_process_, kLivenessPollNanos, [this] { CheckLiveness(); });
}

// ---- History ----

void World::Invoke(const Operation& op) {
  MKS_ASSERT(op.outcome == Outcome::kPending);
  tracer_->Record(now_ns(), TraceKind::kClientOp, op.client, op.id,
                  static_cast<uint64_t>(op.kind) * 256 + op.node);
  protocol_->checker().Invoke(op);
}

void World::Complete(const Operation& op) {
  MKS_ASSERT(op.outcome != Outcome::kPending);
  ++summary_.outcomes[static_cast<size_t>(op.outcome)];
  tracer_->Record(now_ns(), TraceKind::kClientOp, op.client, op.id,
                  static_cast<uint64_t>(op.outcome), op.value);
  protocol_->checker().Complete(op);
  TakeCheckerViolations();
}

bool World::TakeCheckerViolations() {
  const std::vector<std::string>& found = protocol_->checker().violations();
  const std::vector<std::string>& gossip = gossip_checker_.violations();
  const std::vector<std::string>& raft = raft_checker_.violations();
  bool any = false;
  for (auto [list, seen] : {std::pair{&found, &checker_violations_seen_},
                            std::pair{&gossip, &gossip_violations_seen_},
                            std::pair{&raft, &raft_violations_seen_}}) {
    MKS_ASSERT_GE(list->size(), *seen);
    for (size_t i = *seen; i < list->size(); ++i) {
      summary_.violations.push_back((*list)[i] + "\n    " + FaultsInForce());
      any = true;
    }
    *seen = list->size();
  }
  if (!any) return false;
  Finish(Verdict::kSafetyViolation);
  return true;
}

}  // namespace mks::sim
