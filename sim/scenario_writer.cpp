#include "sim/scenario_writer.h"

#include <cctype>
#include <fstream>
#include <sstream>

#include "core/assertions.h"

namespace mks::sim {
namespace {

// A YAML scalar for `text`: plain when it cannot be mistaken for structure,
// else double-quoted with escapes.
std::string Scalar(std::string_view text) {
  bool plain = !text.empty() && text.back() != ' ';
  for (size_t i = 0; i < text.size() && plain; ++i) {
    const char c = text[i];
    const bool word = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                      (c >= '0' && c <= '9') || c == '_' || c == '.';
    plain = word || (i > 0 && (c == '-' || c == ' '));
  }
  if (plain) return std::string(text);
  std::string out = "\"";
  for (const char c : text) {
    if (c == '"' || c == '\\') out.push_back('\\');
    if (static_cast<unsigned char>(c) < 0x20) {
      char escaped[8];
      std::snprintf(escaped, sizeof(escaped), "\\x%02x", static_cast<unsigned char>(c));
      out += escaped;
      continue;
    }
    out.push_back(c);
  }
  return out + "\"";
}

std::string Ids(const std::vector<NodeId>& ids, uint32_t node_count) {
  MKS_ASSERT(!ids.empty());
  std::string out = "[";
  for (size_t i = 0; i < ids.size(); ++i) {
    MKS_ASSERT_GE(ids[i], 1u);
    MKS_ASSERT_LE(ids[i], node_count);
    if (i > 0) out += ", ";
    out += std::to_string(ids[i]);
  }
  return out + "]";
}

// "quorum", "one", "all", "default" or the count, as the parser reads it.
std::string LevelText(Consistency level, uint32_t replicas) {
  if (level.level == ConsistencyLevel::kCount) {
    MKS_ASSERT_GE(level.count, 1u);
    MKS_ASSERT_LE(level.count, replicas);
  }
  std::string text = ToString(level);
  for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return text;
}

std::string LevelList(const std::vector<Consistency>& levels, uint32_t replicas) {
  MKS_ASSERT(!levels.empty());
  std::string out = "[";
  for (size_t i = 0; i < levels.size(); ++i) {
    out += (i > 0 ? ", " : "") + LevelText(levels[i], replicas);
  }
  return out + "]";
}

void WriteComment(std::ostream& out, std::string_view comment) {
  while (!comment.empty()) {
    const size_t end = comment.find('\n');
    const std::string_view line = comment.substr(0, end);
    out << (line.empty() ? "#" : "# ") << line << "\n";
    if (end == std::string_view::npos) break;
    comment.remove_prefix(end + 1);
  }
}

void WriteHead(std::ostream& out, const Scenario& s) {
  out << "protocol: " << Scalar(s.protocol) << "\n";
  if (s.seed.has_value()) out << "seed: " << *s.seed << "\n";
  if (!s.expect.empty()) out << "expect: " << Scalar(s.expect) << "\n";
  if (s.suite_seeds.has_value()) out << "suite_seeds: " << *s.suite_seeds << "\n";
  if (!s.canaries.empty()) {
    out << "canaries: [";
    for (size_t i = 0; i < s.canaries.size(); ++i) {
      out << (i > 0 ? ", " : "") << Scalar(s.canaries[i]);
    }
    out << "]\n";
  }
  MKS_ASSERT(s.read_consistency.level != ConsistencyLevel::kDefault);
  MKS_ASSERT(s.write_consistency.level != ConsistencyLevel::kDefault);
  if (s.standby_nodes != 0) out << "standby_nodes: " << s.standby_nodes << "\n";
  out << "nodes: " << s.nodes << "\n";
  if (s.replicas > s.nodes) {
    // Gossip nodes hold no data: default store settings for a cluster
    // smaller than N stay unwritten (the parser would refuse them).
    MKS_ASSERT(s.protocol == "gossip" && s.replicas == Scenario{}.replicas && s.seats.empty());
    out << "duration_ms: " << s.duration_ms << "\n"
        << "liveness_bound_ms: " << s.liveness_bound_ms << "\n";
    return;
  }
  out << "store: {replicas: " << s.replicas
      << ", read_quorum: " << LevelText(s.read_consistency, s.replicas)
      << ", write_quorum: " << LevelText(s.write_consistency, s.replicas)
      << ", partitions: " << s.partitions;
  if (!s.seats.empty()) {
    MKS_ASSERT_EQ(s.seats.size(), s.nodes);
    out << ", seats: [";
    for (size_t i = 0; i < s.seats.size(); ++i) {
      out << (i > 0 ? ", " : "") << s.seats[i];
    }
    out << "]";
  }
  out << "}\n"
      << "duration_ms: " << s.duration_ms << "\n"
      << "liveness_bound_ms: " << s.liveness_bound_ms << "\n";
}

void WriteWorkloadAndNetwork(std::ostream& out, const Scenario& s) {
  const Workload& w = s.workload;
  MKS_ASSERT_EQ(w.read_percent + w.write_percent + w.delete_percent, 100u);
  out << "workload: {clients: " << w.clients << ", ops_per_second: "
      << w.ops_per_second << ", key_space: " << w.key_space
      << ", read_percent: " << w.read_percent << ", write_percent: "
      << w.write_percent << ", delete_percent: " << w.delete_percent
      << ", value_bytes_min: " << w.value_bytes_min << ", value_bytes_max: "
      << w.value_bytes_max << ", request_timeout_ms: " << w.request_timeout_ms;
  if (!w.read_levels.empty()) {
    out << ", read_levels: " << LevelList(w.read_levels, s.replicas);
  }
  if (!w.write_levels.empty()) {
    out << ", write_levels: " << LevelList(w.write_levels, s.replicas);
  }
  out << "}\n";
  const NetworkConfig& n = s.network;
  // max_message_bytes is not a scenario field: the parser never changes it.
  MKS_ASSERT_EQ(n.max_message_bytes, NetworkConfig{}.max_message_bytes);
  out << "network: {latency_min_us: " << n.latency_min_us
      << ", latency_max_us: " << n.latency_max_us << ", slow_tail_ppm: "
      << n.slow_tail_ppm << ", slow_tail_max_us: " << n.slow_tail_max_us
      << ", loss_ppm: " << n.loss_ppm << ", duplicate_ppm: " << n.duplicate_ppm
      << ", reorder_ppm: " << n.reorder_ppm << "}\n";
  out << "disk: {write_latency_min_us: " << s.disk.write_latency_min_us
      << ", write_latency_max_us: " << s.disk.write_latency_max_us
      << ", report_delay_max_us: " << s.disk.report_delay_max_us << "}\n";
}

void WriteClocks(std::ostream& out, const Scenario& s) {
  if (s.clock_max_offset_ms == 0 && s.clock_max_drift_ppm == 0 && s.clocks.empty()) {
    return;
  }
  out << "clocks:\n"
      << "  max_offset_ms: " << s.clock_max_offset_ms << "\n"
      << "  max_drift_ppm: " << s.clock_max_drift_ppm << "\n";
  if (s.clocks.empty()) return;
  out << "  nodes:\n";
  for (const NodeClock& clock : s.clocks) {
    // The file holds whole milliseconds of offset.
    MKS_ASSERT_EQ(clock.model.offset_us % 1000, 0);
    MKS_ASSERT_LE(clock.node, s.nodes);
    out << "    - {node: " << clock.node << ", offset_ms: "
        << clock.model.offset_us / 1000 << ", drift_ppm: "
        << clock.model.drift_ppm << "}\n";
  }
}

std::string Sides(const TimelineEvent& e, uint32_t node_count) {
  return "[" + Ids(e.side_a, node_count) + ", " + Ids(e.side_b, node_count) + "]";
}

// The action part of one timeline event, e.g. "crash: [1, 2]".
std::string Action(const TimelineEvent& e, uint32_t node_count) {
  const auto link = [&](const std::string& name, bool timed) {
    MKS_ASSERT_NE(e.from, e.to);
    std::string out = name + ": {from: " + std::to_string(e.from) +
                      ", to: " + std::to_string(e.to);
    if (timed) out += ", duration_ms: " + std::to_string(e.duration_ms);
    return out + "}";
  };
  switch (e.action) {
    case TimelineAction::kIsolate: return "isolate: " + Ids(e.nodes, node_count);
    case TimelineAction::kCrash: return "crash: " + Ids(e.nodes, node_count);
    case TimelineAction::kRestart: return "restart: " + Ids(e.nodes, node_count);
    case TimelineAction::kPause: return "pause: " + Ids(e.nodes, node_count);
    case TimelineAction::kResume: return "resume: " + Ids(e.nodes, node_count);
    case TimelineAction::kHeal: return "heal: true";
    case TimelineAction::kSplit: return "split: " + Sides(e, node_count);
    case TimelineAction::kBridge:
      return "bridge: {sides: " + Sides(e, node_count) +
             ", via: " + std::to_string(e.via) + "}";
    case TimelineAction::kCut: return link("cut", false);
    case TimelineAction::kClogLink: return link("clog", true);
    case TimelineAction::kClogNode:
      return "clog: {node: " + Ids(e.nodes, node_count) +
             ", duration_ms: " + std::to_string(e.duration_ms) + "}";
    case TimelineAction::kClockStep:
      return "clock_step: {node: " + Ids(e.nodes, node_count) +
             ", step_ms: " + std::to_string(e.step_ms) + "}";
    case TimelineAction::kLossPpm: return "loss_ppm: " + std::to_string(e.ppm);
    case TimelineAction::kDuplicatePpm: return "duplicate_ppm: " + std::to_string(e.ppm);
    case TimelineAction::kReorderPpm: return "reorder_ppm: " + std::to_string(e.ppm);
    case TimelineAction::kJoin:
      return "join: {nodes: " + Ids(e.nodes, node_count) + ", seed: " + std::to_string(e.via) +
             "}";
    case TimelineAction::kRemove:
      return "remove: {nodes: " + Ids(e.nodes, node_count) + ", via: " + std::to_string(e.via) +
             "}";
    case TimelineAction::kDecommission:
      return "decommission: {nodes: " + Ids(e.nodes, node_count) + "}";
  }
  MKS_ASSERT_MSG(false, "unknown timeline action");
  return "";
}

void WriteTimeline(std::ostream& out, const Scenario& s) {
  if (s.timeline.empty()) return;
  out << "timeline:\n";
  int64_t previous_ms = 0;
  for (const TimelineEvent& e : s.timeline) {
    MKS_ASSERT_GE(e.at_ms, previous_ms);  // the parser's order is kept
    previous_ms = e.at_ms;
    out << "  - {at_ms: " << e.at_ms << ", " << Action(e, s.total_nodes()) << "}\n";
  }
}

void WriteGossip(std::ostream& out, const Scenario& s) {
  const GossipSettings& g = s.gossip;
  if (g == GossipSettings{}) return;
  out << "gossip: {enabled: " << (g.enabled ? "true" : "false")
      << ", probe_interval_ms: " << g.probe_interval_ms
      << ", probe_timeout_ms: " << g.probe_timeout_ms
      << ", indirect_checks: " << g.indirect_checks
      << ", suspicion_mult: " << g.suspicion_mult
      << ", retransmit_mult: " << g.retransmit_mult
      << ", push_pull_interval_ms: " << g.push_pull_interval_ms
      << ", detect_bound_ms: " << g.detect_bound_ms
      << ", max_false_dead: " << g.max_false_dead;
  if (!g.wrong_secret.empty()) out << ", wrong_secret: " << Ids(g.wrong_secret, s.total_nodes());
  out << "}\n";
}

void WriteRaft(std::ostream& out, const Scenario& s) {
  const RaftSettings& r = s.raft;
  if (r == RaftSettings{}) return;
  out << "raft: {election_timeout_ms: " << r.election_timeout_ms
      << ", heartbeat_ms: " << r.heartbeat_ms << ", epoch_interval_ms: " << r.epoch_interval_ms
      << ", snapshot_every: " << r.snapshot_every
      << ", max_entries_per_append: " << r.max_entries_per_append
      << ", pre_vote: " << (r.pre_vote ? "true" : "false")
      << ", check_quorum: " << (r.check_quorum ? "true" : "false")
      << ", dead_remove_after_ms: " << r.dead_remove_after_ms << "}\n";
}

void WriteStream(std::ostream& out, const Scenario& s) {
  const StreamSettings& st = s.stream;
  if (st == StreamSettings{}) return;
  out << "stream: {batch_records: " << st.batch_records
      << ", rate_bytes_per_s: " << st.rate_bytes_per_s
      << ", max_transfers: " << st.max_transfers << "}\n";
}

void WriteFamily(std::ostream& out, FaultFamily kind, const FamilyConfig& f) {
  out << "  " << FaultFamilyName(kind) << ": {enabled: "
      << (f.enabled ? "true" : "false") << ", interval_ms: ["
      << f.interval_min_ms << ", " << f.interval_max_ms << "]";
  if (FamilyHasDuration(kind)) {
    out << ", duration_ms: [" << f.duration_min_ms << ", " << f.duration_max_ms << "]";
  }
  if (kind == FaultFamily::kLoss || kind == FaultFamily::kDuplicate ||
      kind == FaultFamily::kReorder || kind == FaultFamily::kDiskError) {
    MKS_ASSERT_GE(f.ppm, 1u);
    out << ", ppm: " << f.ppm;
  }
  if (kind == FaultFamily::kClockStep) out << ", step_max_ms: " << f.step_max_ms;
  if (kind == FaultFamily::kCrash || kind == FaultFamily::kPause) {
    out << ", max_down: " << f.max_down;
  }
  if (f.leader_percent > 0) out << ", leader_percent: " << f.leader_percent;
  out << "}\n";
}

void WriteFaults(std::ostream& out, const Scenario& s) {
  bool any = false;
  for (size_t i = 0; i < kFaultFamilyCount; ++i) {
    const FamilyConfig& family = s.faults[i];
    // An unlisted family parses as the default; a listed one is written
    // whole, with its switch, so an off family keeps its settings.
    if (!family.enabled && family == FamilyConfig{}) continue;
    if (!any) out << "faults:\n";
    any = true;
    WriteFamily(out, static_cast<FaultFamily>(i), family);
  }
  out << "swarm: {may_disable: [";
  for (size_t i = 0; i < s.swarm_may_disable.size(); ++i) {
    out << (i > 0 ? ", " : "") << FaultFamilyName(s.swarm_may_disable[i]);
  }
  out << "], disable_percent: " << s.swarm_disable_percent << "}\n"
      << "buggify: {enabled: " << (s.buggify_enabled ? "true" : "false")
      << ", site_percent: " << s.buggify_site_percent
      << ", fire_ppm: " << s.buggify_fire_ppm << "}\n";
}

}  // namespace

std::string WriteScenario(const Scenario& scenario, std::string_view comment) {
  MKS_ASSERT_GE(scenario.nodes, 1u);
  // Gossip nodes hold no data: their store settings are the defaults, and
  // may name more replicas than there are nodes.
  MKS_ASSERT(scenario.protocol == "gossip" || scenario.replicas <= scenario.nodes);
  std::ostringstream out;
  WriteComment(out, comment);
  WriteHead(out, scenario);
  WriteWorkloadAndNetwork(out, scenario);
  WriteClocks(out, scenario);
  WriteTimeline(out, scenario);
  WriteGossip(out, scenario);
  WriteRaft(out, scenario);
  WriteStream(out, scenario);
  WriteFaults(out, scenario);
  return out.str();
}

Status WriteScenarioFile(const Scenario& scenario, std::string_view comment,
                         const std::string& path) {
  const std::string text = WriteScenario(scenario, comment);
  std::ofstream file(path, std::ios::binary | std::ios::trunc);
  if (!file) return Status::IOError("cannot create scenario file " + path);
  file << text;
  file.flush();
  if (!file) return Status::IOError("cannot write scenario file " + path);
  return Status::Ok();
}

}  // namespace mks::sim
