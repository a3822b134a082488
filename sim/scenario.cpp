#include "sim/scenario.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <fstream>
#include <limits>
#include <numeric>
#include <set>
#include <sstream>

#include "core/assertions.h"

namespace mks::sim {
namespace {

constexpr std::array<std::string_view, kFaultFamilyCount> kFamilyNames = {
    "partition", "crash", "pause", "clog", "clock_step", "loss", "duplicate",
    "reorder", "disk_error", "bit_rot"};

// Thrown inside the parser only, turned into a Status at its boundary.
struct ScenarioError {
  std::string message;
};

// Reads the fields of one YAML mapping, refusing unknown ones.
class Fields {
 public:
  Fields(const YAML::Node& node, const std::string& path, std::string what)
      : node_(node), path_(path), what_(std::move(what)) {
    if (!node.IsMap()) Fail(node, what_ + " must be a mapping");
  }

  // A consistency: one, quorum, all (any case) or a count in 1..max_count.
  Consistency Level(const YAML::Node& value, const std::string& key,
                    uint32_t max_count) const {
    if (!value.IsScalar()) Fail(value, what_ + "." + key + " must be a consistency");
    Result<Consistency> level = ParseConsistency(value.Scalar());
    if (!level.ok() || level->level == ConsistencyLevel::kDefault) {
      Fail(value, what_ + "." + key + " must be one, quorum, all or a count, not '" +
                      value.Scalar() + "'");
    }
    if (level->level == ConsistencyLevel::kCount && level->count > max_count) {
      Fail(value, what_ + "." + key + " = " + value.Scalar() + " exceeds replicas (" +
                      std::to_string(max_count) + ")");
    }
    return *level;
  }

  void ReadLevel(const std::string& key, Consistency* out, uint32_t max_count) {
    if (!Has(key)) return;
    *out = Level(node_[key], key, max_count);
  }

  // A non-empty list of consistencies, each also "default".
  void ReadLevels(const std::string& key, std::vector<Consistency>* out,
                  uint32_t max_count) {
    if (!Has(key)) return;
    const YAML::Node list = node_[key];
    if (!list.IsSequence() || list.size() == 0) {
      Fail(list, what_ + "." + key + " must be a non-empty list of consistencies");
    }
    for (const YAML::Node& item : list) {
      const bool is_default = item.IsScalar() && (item.Scalar() == "default" ||
                                                  item.Scalar() == "DEFAULT");
      out->push_back(is_default ? Consistency::Default() : Level(item, key, max_count));
    }
  }

  [[noreturn]] void Fail(const YAML::Node& at, const std::string& message) const {
    throw ScenarioError{path_ + ":" + std::to_string(at.Mark().line + 1) +
                        ": " + message};
  }

  bool Has(const std::string& key) {
    seen_.insert(key);
    return static_cast<bool>(node_[key]);
  }
  YAML::Node Node(const std::string& key) {
    seen_.insert(key);
    return node_[key];
  }

  int64_t Integer(const YAML::Node& value, const std::string& key, int64_t min,
                  int64_t max) const {
    int64_t out = 0;
    if (!value.IsScalar() || !YAML::convert<int64_t>::decode(value, out)) {
      Fail(value, what_ + "." + key + " must be an integer");
    }
    if (out < min || out > max) {
      Fail(value, what_ + "." + key + " = " + std::to_string(out) +
                      " is outside [" + std::to_string(min) + ", " +
                      std::to_string(max) + "]");
    }
    return out;
  }

  template <typename T>
  void Read(const std::string& key, T* out, int64_t min, int64_t max) {
    if (!Has(key)) return;
    *out = static_cast<T>(Integer(node_[key], key, min, max));
  }

  void ReadBool(const std::string& key, bool* out) {
    if (!Has(key)) return;
    const YAML::Node value = node_[key];
    if (!value.IsScalar() || !YAML::convert<bool>::decode(value, *out)) {
      Fail(value, what_ + "." + key + " must be true or false");
    }
  }

  void ReadString(const std::string& key, std::string* out) {
    if (!Has(key)) return;
    const YAML::Node value = node_[key];
    if (!value.IsScalar()) Fail(value, what_ + "." + key + " must be a string");
    *out = value.Scalar();
  }

  // An [min, max] pair of integers.
  void ReadRange(const std::string& key, int64_t* low, int64_t* high,
                 int64_t min, int64_t max) {
    if (!Has(key)) return;
    const YAML::Node value = node_[key];
    if (!value.IsSequence() || value.size() != 2) {
      Fail(value, what_ + "." + key + " must be [min, max]");
    }
    *low = Integer(value[0], key, min, max);
    *high = Integer(value[1], key, min, max);
    if (*low > *high) Fail(value, what_ + "." + key + " has min > max");
  }

  std::vector<NodeId> NodeList(const YAML::Node& value, const std::string& key,
                               uint32_t node_count) const {
    std::vector<NodeId> out;
    if (value.IsScalar()) {
      out.push_back(static_cast<NodeId>(Integer(value, key, 1, node_count)));
      return out;
    }
    if (!value.IsSequence() || value.size() == 0) {
      Fail(value, what_ + "." + key + " must be a node id or a list of them");
    }
    for (const YAML::Node& item : value) {
      out.push_back(static_cast<NodeId>(Integer(item, key, 1, node_count)));
    }
    return out;
  }

  // Refuses any key not asked about.
  void Finish() const {
    for (const auto& entry : node_) {
      const std::string key = entry.first.Scalar();
      if (seen_.count(key) == 0) {
        Fail(entry.first, "unknown field '" + key + "' in " + what_);
      }
    }
  }

 private:
  YAML::Node node_;
  const std::string& path_;
  std::string what_;
  std::set<std::string> seen_;
};

constexpr int64_t kMaxMs = 1000LL * 3600 * 24 * 30;  // thirty days
constexpr int64_t kMaxUs = 1000 * kMaxMs;

void ParseStore(Fields& top, Scenario* s, const std::string& path) {
  if (!top.Has("store")) return;
  const YAML::Node node = top.Node("store");
  Fields f(node, path, "store");
  f.Read("replicas", &s->replicas, 1, 15);
  f.ReadLevel("read_quorum", &s->read_consistency, s->replicas);
  f.ReadLevel("write_quorum", &s->write_consistency, s->replicas);
  f.Read("partitions", &s->partitions, 1, 1 << 20);
  if (f.Has("seats")) {
    if (!f.Node("seats").IsSequence() || f.Node("seats").size() == 0) {
      f.Fail(f.Node("seats"), "store.seats must be a list of node ids");
    }
    s->seats = f.NodeList(f.Node("seats"), "seats", s->nodes);
    const Result<std::vector<NodeId>> seats = SeatOrder(*s);
    if (!seats.ok()) f.Fail(f.Node("seats"), seats.status().message());
  }
  f.Finish();
  if (s->replicas > s->nodes) f.Fail(node, "store.replicas exceeds nodes");
  for (const Consistency& level : {s->read_consistency, s->write_consistency}) {
    if (level.level == ConsistencyLevel::kCount && level.count > s->replicas) {
      f.Fail(node, "store.read_quorum and write_quorum must be <= replicas");
    }
  }
  if ((s->partitions & (s->partitions - 1)) != 0) {
    f.Fail(node, "store.partitions must be a power of two");
  }
}

void ParseWorkload(Fields& top, Scenario* s, const std::string& path) {
  if (!top.Has("workload")) return;
  const YAML::Node node = top.Node("workload");
  Fields f(node, path, "workload");
  Workload& w = s->workload;
  f.Read("clients", &w.clients, 0, 1000);
  f.Read("ops_per_second", &w.ops_per_second, 1, 1000000);
  f.Read("key_space", &w.key_space, 1, 1 << 24);
  f.Read("read_percent", &w.read_percent, 0, 100);
  f.Read("write_percent", &w.write_percent, 0, 100);
  f.Read("delete_percent", &w.delete_percent, 0, 100);
  f.Read("value_bytes_min", &w.value_bytes_min, 0, 1 << 20);
  f.Read("value_bytes_max", &w.value_bytes_max, 0, 1 << 20);
  f.Read("request_timeout_ms", &w.request_timeout_ms, 1, kMaxMs);
  // The store is parsed first (ParseRoot), so replicas is known.
  f.ReadLevels("read_levels", &w.read_levels, s->replicas);
  f.ReadLevels("write_levels", &w.write_levels, s->replicas);
  f.Finish();
  if (w.read_percent + w.write_percent + w.delete_percent != 100) {
    f.Fail(node, "workload read_percent + write_percent + delete_percent must be 100");
  }
  if (w.value_bytes_min > w.value_bytes_max) {
    f.Fail(node, "workload.value_bytes_min exceeds value_bytes_max");
  }
}

void ParseNetwork(Fields& top, Scenario* s, const std::string& path) {
  if (!top.Has("network")) return;
  const YAML::Node node = top.Node("network");
  Fields f(node, path, "network");
  NetworkConfig& n = s->network;
  f.Read("latency_min_us", &n.latency_min_us, 0, kMaxUs);
  f.Read("latency_max_us", &n.latency_max_us, 0, kMaxUs);
  f.Read("slow_tail_ppm", &n.slow_tail_ppm, 0, 1000000);
  f.Read("slow_tail_max_us", &n.slow_tail_max_us, 0, kMaxUs);
  f.Read("loss_ppm", &n.loss_ppm, 0, 1000000);
  f.Read("duplicate_ppm", &n.duplicate_ppm, 0, 1000000);
  f.Read("reorder_ppm", &n.reorder_ppm, 0, 1000000);
  f.Finish();
  if (n.latency_min_us > n.latency_max_us) {
    f.Fail(node, "network.latency_min_us exceeds latency_max_us");
  }
  if (n.slow_tail_ppm > 0 && n.slow_tail_max_us <= n.latency_max_us) {
    f.Fail(node, "network.slow_tail_max_us must exceed latency_max_us");
  }
}

void ParseDisk(Fields& top, Scenario* s, const std::string& path) {
  if (!top.Has("disk")) return;
  const YAML::Node node = top.Node("disk");
  Fields f(node, path, "disk");
  DiskConfig& d = s->disk;
  f.Read("write_latency_min_us", &d.write_latency_min_us, 0, kMaxUs);
  f.Read("write_latency_max_us", &d.write_latency_max_us, 0, kMaxUs);
  f.Read("report_delay_max_us", &d.report_delay_max_us, 0, kMaxUs);
  f.Finish();
  if (d.write_latency_min_us > d.write_latency_max_us) {
    f.Fail(node, "disk.write_latency_min_us exceeds write_latency_max_us");
  }
}

void ParseClocks(Fields& top, Scenario* s, const std::string& path) {
  if (!top.Has("clocks")) return;
  const YAML::Node node = top.Node("clocks");
  Fields f(node, path, "clocks");
  f.Read("max_offset_ms", &s->clock_max_offset_ms, 0, kMaxMs);
  f.Read("max_drift_ppm", &s->clock_max_drift_ppm, 0, kMaxDriftPpm);
  if (f.Has("nodes")) {
    const YAML::Node list = f.Node("nodes");
    if (!list.IsSequence()) f.Fail(list, "clocks.nodes must be a list");
    for (const YAML::Node& item : list) {
      Fields c(item, path, "clocks.nodes[]");
      NodeClock clock;
      if (!c.Has("node")) c.Fail(item, "clocks.nodes[] needs a node");
      c.Read("node", &clock.node, 1, s->nodes);
      int64_t offset_ms = 0;
      c.Read("offset_ms", &offset_ms, -kMaxMs, kMaxMs);
      clock.model.offset_us = offset_ms * 1000;
      c.Read("drift_ppm", &clock.model.drift_ppm, -kMaxDriftPpm, kMaxDriftPpm);
      c.Finish();
      s->clocks.push_back(clock);
    }
  }
  f.Finish();
}

void ParseTimelineEvent(const YAML::Node& item, Scenario* s,
                        const std::string& path) {
  Fields f(item, path, "timeline[]");
  TimelineEvent e;
  e.line = item.Mark().line + 1;
  if (!f.Has("at_ms")) f.Fail(item, "timeline event needs at_ms");
  f.Read("at_ms", &e.at_ms, 0, kMaxMs);
  int actions = 0;
  const uint32_t n = s->total_nodes();
  auto nodes = [&](const char* key, TimelineAction action) {
    if (!f.Has(key)) return;
    ++actions;
    e.action = action;
    e.nodes = f.NodeList(f.Node(key), key, n);
  };
  nodes("isolate", TimelineAction::kIsolate);
  nodes("crash", TimelineAction::kCrash);
  nodes("restart", TimelineAction::kRestart);
  nodes("pause", TimelineAction::kPause);
  nodes("resume", TimelineAction::kResume);
  if (f.Has("heal")) {
    ++actions;
    e.action = TimelineAction::kHeal;
    bool heal = false;
    f.ReadBool("heal", &heal);
    if (!heal) f.Fail(item, "heal must be true");
  }
  auto sides = [&](const YAML::Node& value, const char* key) {
    if (!value.IsSequence() || value.size() != 2) {
      f.Fail(value, std::string(key) + " must be [[nodes...], [nodes...]]");
    }
    e.side_a = f.NodeList(value[0], key, n);
    e.side_b = f.NodeList(value[1], key, n);
    for (NodeId a : e.side_a) {
      if (std::count(e.side_b.begin(), e.side_b.end(), a) != 0) {
        f.Fail(value, std::string(key) + " puts node " + std::to_string(a) +
                          " on both sides");
      }
    }
  };
  if (f.Has("split")) {
    ++actions;
    e.action = TimelineAction::kSplit;
    sides(f.Node("split"), "split");
  }
  if (f.Has("bridge")) {
    ++actions;
    e.action = TimelineAction::kBridge;
    Fields b(f.Node("bridge"), path, "bridge");
    if (!b.Has("sides") || !b.Has("via")) {
      b.Fail(f.Node("bridge"), "bridge needs sides and via");
    }
    sides(b.Node("sides"), "bridge.sides");
    b.Read("via", &e.via, 1, n);
    b.Finish();
  }
  auto link = [&](const char* key, TimelineAction action, bool timed) {
    if (!f.Has(key)) return;
    ++actions;
    e.action = action;
    Fields l(f.Node(key), path, key);
    if (!l.Has("from") || !l.Has("to")) l.Fail(f.Node(key), std::string(key) + " needs from and to");
    l.Read("from", &e.from, 1, n);
    l.Read("to", &e.to, 1, n);
    if (e.from == e.to) l.Fail(f.Node(key), std::string(key) + " from == to");
    if (timed) l.Read("duration_ms", &e.duration_ms, 1, kMaxMs);
    l.Finish();
  };
  link("cut", TimelineAction::kCut, false);
  if (f.Has("clog")) {
    const YAML::Node clog = f.Node("clog");
    Fields c(clog, path, "clog");
    if (c.Has("node")) {
      ++actions;
      e.action = TimelineAction::kClogNode;
      e.nodes = f.NodeList(c.Node("node"), "clog.node", n);
      if (!c.Has("duration_ms")) c.Fail(clog, "clog needs duration_ms");
      c.Read("duration_ms", &e.duration_ms, 1, kMaxMs);
      c.Finish();
    } else {
      link("clog", TimelineAction::kClogLink, true);
      if (e.duration_ms == 0) c.Fail(clog, "clog needs duration_ms");
    }
  }
  if (f.Has("clock_step")) {
    ++actions;
    e.action = TimelineAction::kClockStep;
    Fields c(f.Node("clock_step"), path, "clock_step");
    if (!c.Has("node") || !c.Has("step_ms")) {
      c.Fail(f.Node("clock_step"), "clock_step needs node and step_ms");
    }
    e.nodes = f.NodeList(c.Node("node"), "clock_step.node", n);
    c.Read("step_ms", &e.step_ms, -kMaxMs, kMaxMs);
    c.Finish();
  }
  auto rate = [&](const char* key, TimelineAction action) {
    if (!f.Has(key)) return;
    ++actions;
    e.action = action;
    f.Read(key, &e.ppm, 0, 1000000);
  };
  if (f.Has("join")) {
    ++actions;
    e.action = TimelineAction::kJoin;
    Fields j(f.Node("join"), path, "join");
    if (!j.Has("nodes") || !j.Has("seed")) j.Fail(f.Node("join"), "join needs nodes and seed");
    e.nodes = j.NodeList(j.Node("nodes"), "join.nodes", n);
    j.Read("seed", &e.via, 1, n);
    for (NodeId node : e.nodes) {
      if (node <= s->nodes) j.Fail(f.Node("join"), "join: node " + std::to_string(node) +
                                                       " is not a standby node");
    }
    j.Finish();
  }
  if (f.Has("remove")) {
    ++actions;
    e.action = TimelineAction::kRemove;
    Fields r(f.Node("remove"), path, "remove");
    if (!r.Has("nodes") || !r.Has("via")) r.Fail(f.Node("remove"), "remove needs nodes and via");
    e.nodes = r.NodeList(r.Node("nodes"), "remove.nodes", n);
    r.Read("via", &e.via, 1, n);
    for (NodeId node : e.nodes) {
      if (node == e.via) r.Fail(f.Node("remove"), "remove: node " + std::to_string(node) +
                                                       " cannot be asked to remove itself");
    }
    r.Finish();
  }
  if (f.Has("decommission")) {
    ++actions;
    e.action = TimelineAction::kDecommission;
    Fields d(f.Node("decommission"), path, "decommission");
    if (!d.Has("nodes")) d.Fail(f.Node("decommission"), "decommission needs nodes");
    e.nodes = d.NodeList(d.Node("nodes"), "decommission.nodes", n);
    d.Finish();
  }
  rate("loss_ppm", TimelineAction::kLossPpm);
  rate("duplicate_ppm", TimelineAction::kDuplicatePpm);
  rate("reorder_ppm", TimelineAction::kReorderPpm);
  f.Finish();
  if (actions != 1) {
    f.Fail(item, "a timeline event needs exactly one action, found " +
                     std::to_string(actions));
  }
  s->timeline.push_back(std::move(e));
}

void ParseGossip(Fields& top, Scenario* s, const std::string& path) {
  if (!top.Has("gossip")) return;
  const YAML::Node node = top.Node("gossip");
  Fields f(node, path, "gossip");
  GossipSettings& g = s->gossip;
  f.ReadBool("enabled", &g.enabled);
  f.Read("probe_interval_ms", &g.probe_interval_ms, 1, kMaxMs);
  f.Read("probe_timeout_ms", &g.probe_timeout_ms, 1, kMaxMs);
  f.Read("indirect_checks", &g.indirect_checks, 0, 64);
  f.Read("suspicion_mult", &g.suspicion_mult, 1, 100);
  f.Read("retransmit_mult", &g.retransmit_mult, 1, 100);
  f.Read("push_pull_interval_ms", &g.push_pull_interval_ms, 1, kMaxMs);
  f.Read("detect_bound_ms", &g.detect_bound_ms, 0, kMaxMs);
  f.Read("max_false_dead", &g.max_false_dead, 0, 1000000);
  if (f.Has("wrong_secret")) {
    g.wrong_secret = f.NodeList(f.Node("wrong_secret"), "wrong_secret", s->total_nodes());
  }
  f.Finish();
  if (g.probe_timeout_ms >= g.probe_interval_ms) {
    f.Fail(node, "gossip.probe_timeout_ms must be below probe_interval_ms");
  }
}

void ParseRaft(Fields& top, Scenario* s, const std::string& path) {
  if (!top.Has("raft")) return;
  const YAML::Node node = top.Node("raft");
  Fields f(node, path, "raft");
  RaftSettings& r = s->raft;
  f.Read("election_timeout_ms", &r.election_timeout_ms, 2, kMaxMs);
  f.Read("heartbeat_ms", &r.heartbeat_ms, 1, kMaxMs);
  f.Read("epoch_interval_ms", &r.epoch_interval_ms, 0, kMaxMs);
  f.Read("snapshot_every", &r.snapshot_every, 1, 1'000'000);
  f.Read("max_entries_per_append", &r.max_entries_per_append, 1, 4096);
  f.ReadBool("pre_vote", &r.pre_vote);
  f.ReadBool("check_quorum", &r.check_quorum);
  f.Read("dead_remove_after_ms", &r.dead_remove_after_ms, 0, kMaxMs);
  f.Finish();
  if (r.heartbeat_ms >= r.election_timeout_ms) {
    f.Fail(node, "raft.heartbeat_ms must be below election_timeout_ms");
  }
}

void ParseStream(Fields& top, Scenario* s, const std::string& path) {
  if (!top.Has("stream")) return;
  Fields f(top.Node("stream"), path, "stream");
  StreamSettings& st = s->stream;
  f.Read("batch_records", &st.batch_records, 1, 1'000'000);
  f.Read("rate_bytes_per_s", &st.rate_bytes_per_s, 0, int64_t{1} << 40);
  f.Read("max_transfers", &st.max_transfers, 1, 1024);
  f.Finish();
}

void ParseFaults(Fields& top, Scenario* s, const std::string& path) {
  if (!top.Has("faults")) return;
  const YAML::Node node = top.Node("faults");
  Fields f(node, path, "faults");
  for (size_t i = 0; i < kFaultFamilyCount; ++i) {
    const std::string name(kFamilyNames[i]);
    if (!f.Has(name)) continue;
    const YAML::Node item = f.Node(name);
    Fields c(item, path, "faults." + name);
    FamilyConfig& family = s->faults[i];
    family.enabled = true;
    c.ReadBool("enabled", &family.enabled);
    c.ReadRange("interval_ms", &family.interval_min_ms, &family.interval_max_ms,
                1, kMaxMs);
    const auto kind = static_cast<FaultFamily>(i);
    if (FamilyHasDuration(kind)) {
      c.ReadRange("duration_ms", &family.duration_min_ms,
                  &family.duration_max_ms, 1, kMaxMs);
    }
    if (kind == FaultFamily::kLoss || kind == FaultFamily::kDuplicate ||
        kind == FaultFamily::kReorder || kind == FaultFamily::kDiskError) {
      if (!c.Has("ppm")) c.Fail(item, "faults." + name + " needs ppm");
      c.Read("ppm", &family.ppm, 1, 1000000);
    }
    if (kind == FaultFamily::kClockStep) {
      if (!c.Has("step_max_ms")) c.Fail(item, "faults.clock_step needs step_max_ms");
      c.Read("step_max_ms", &family.step_max_ms, 1, kMaxMs);
    }
    if (kind == FaultFamily::kCrash || kind == FaultFamily::kPause) {
      c.Read("max_down", &family.max_down, 1, s->nodes);
    }
    if (FamilyTargetsNode(kind)) c.Read("leader_percent", &family.leader_percent, 0, 100);
    c.Finish();
  }
  f.Finish();
}

void ParseSwarm(Fields& top, Scenario* s, const std::string& path) {
  if (!top.Has("swarm")) return;
  const YAML::Node node = top.Node("swarm");
  Fields f(node, path, "swarm");
  if (f.Has("may_disable")) {
    const YAML::Node list = f.Node("may_disable");
    if (!list.IsSequence()) f.Fail(list, "swarm.may_disable must be a list");
    for (const YAML::Node& item : list) {
      const std::optional<FaultFamily> family =
          item.IsScalar() ? ParseFaultFamily(item.Scalar()) : std::nullopt;
      if (!family) f.Fail(item, "swarm.may_disable: unknown fault family");
      s->swarm_may_disable.push_back(*family);
    }
  }
  f.Read("disable_percent", &s->swarm_disable_percent, 0, 100);
  f.Finish();
}

void ParseBuggify(Fields& top, Scenario* s, const std::string& path) {
  if (!top.Has("buggify")) return;
  Fields f(top.Node("buggify"), path, "buggify");
  f.ReadBool("enabled", &s->buggify_enabled);
  f.Read("site_percent", &s->buggify_site_percent, 0, 100);
  f.Read("fire_ppm", &s->buggify_fire_ppm, 0, 1000000);
  f.Finish();
}

// The optional replay fields: seed, expect, canaries, and suite_seeds.
void ParseReplay(Fields& top, Scenario* s) {
  if (top.Has("seed")) {
    const YAML::Node value = top.Node("seed");
    uint64_t seed = 0;
    if (!value.IsScalar() || value.Scalar().starts_with("-") ||
        !YAML::convert<uint64_t>::decode(value, seed)) {
      top.Fail(value, "scenario.seed must be an unsigned 64-bit integer");
    }
    s->seed = seed;
  }
  if (top.Has("suite_seeds")) {
    uint32_t seeds = 0;
    top.Read("suite_seeds", &seeds, 1, 1000000);
    s->suite_seeds = seeds;
  }
  if (top.Has("expect")) {
    top.ReadString("expect", &s->expect);
    if (std::find(kExpectableVerdicts.begin(), kExpectableVerdicts.end(),
                  s->expect) == kExpectableVerdicts.end()) {
      top.Fail(top.Node("expect"), "scenario.expect must be 'pass', 'safety "
                                   "violation' or 'liveness violation'");
    }
  }
  if (top.Has("canaries")) {
    const YAML::Node list = top.Node("canaries");
    if (!list.IsSequence()) top.Fail(list, "canaries must be a list of names");
    for (const YAML::Node& item : list) {
      if (!item.IsScalar() || item.Scalar().empty()) {
        top.Fail(item, "canaries: each canary is a name");
      }
      s->canaries.push_back(item.Scalar());
    }
  }
}

Scenario ParseRoot(const YAML::Node& root, const std::string& path) {
  Scenario s;
  s.path = path;
  Fields top(root, path, "scenario");
  top.ReadString("protocol", &s.protocol);
  if (s.protocol != "counter" && s.protocol != "kv" && s.protocol != "gossip") {
    top.Fail(top.Node("protocol"),
             "unknown protocol '" + s.protocol + "' (known: counter, kv, gossip)");
  }
  top.Read("nodes", &s.nodes, 1, 1000);
  top.Read("standby_nodes", &s.standby_nodes, 0, 1000);
  if (s.total_nodes() >= 1001) {
    top.Fail(root, "nodes + standby_nodes must stay below 1001 (client ids start there)");
  }
  top.Read("duration_ms", &s.duration_ms, 1, kMaxMs);
  top.Read("liveness_bound_ms", &s.liveness_bound_ms, 1, kMaxMs);
  ParseStore(top, &s, path);
  ParseWorkload(top, &s, path);
  ParseNetwork(top, &s, path);
  ParseDisk(top, &s, path);
  ParseClocks(top, &s, path);
  if (top.Has("timeline")) {
    const YAML::Node list = top.Node("timeline");
    if (!list.IsSequence()) top.Fail(list, "timeline must be a list");
    for (const YAML::Node& item : list) ParseTimelineEvent(item, &s, path);
  }
  std::stable_sort(s.timeline.begin(), s.timeline.end(),
                   [](const TimelineEvent& a, const TimelineEvent& b) {
                     return a.at_ms < b.at_ms;
                   });
  ParseGossip(top, &s, path);
  ParseRaft(top, &s, path);
  ParseStream(top, &s, path);
  ParseFaults(top, &s, path);
  ParseSwarm(top, &s, path);
  ParseBuggify(top, &s, path);
  ParseReplay(top, &s);
  top.Finish();
  return s;
}

}  // namespace

std::string_view FaultFamilyName(FaultFamily family) {
  const auto index = static_cast<size_t>(family);
  MKS_ASSERT_LT(index, kFaultFamilyCount);
  return kFamilyNames[index];
}

bool FamilyHasDuration(FaultFamily family) {
  return family != FaultFamily::kClockStep && family != FaultFamily::kBitRot;
}

uint32_t RequiredCount(Consistency consistency, uint32_t replicas) {
  MKS_ASSERT_GE(replicas, 1u);
  switch (consistency.level) {
    case ConsistencyLevel::kOne: return 1;
    case ConsistencyLevel::kQuorum: return replicas / 2 + 1;
    case ConsistencyLevel::kAll: return replicas;
    case ConsistencyLevel::kCount:
      MKS_ASSERT_GE(consistency.count, 1u);
      MKS_ASSERT_LE(consistency.count, replicas);
      return consistency.count;
    case ConsistencyLevel::kDefault: break;
  }
  MKS_ASSERT_MSG(false, "RequiredCount of an unresolved consistency");
  return 0;
}

std::optional<FaultFamily> ParseFaultFamily(std::string_view name) {
  for (size_t i = 0; i < kFaultFamilyCount; ++i) {
    if (kFamilyNames[i] == name) return static_cast<FaultFamily>(i);
  }
  return std::nullopt;
}

std::string_view TimelineActionName(TimelineAction action) {
  switch (action) {
    case TimelineAction::kIsolate: return "isolate";
    case TimelineAction::kSplit: return "split";
    case TimelineAction::kCut: return "cut";
    case TimelineAction::kBridge: return "bridge";
    case TimelineAction::kHeal: return "heal";
    case TimelineAction::kCrash: return "crash";
    case TimelineAction::kRestart: return "restart";
    case TimelineAction::kPause: return "pause";
    case TimelineAction::kResume: return "resume";
    case TimelineAction::kClogNode: return "clog_node";
    case TimelineAction::kClogLink: return "clog_link";
    case TimelineAction::kClockStep: return "clock_step";
    case TimelineAction::kLossPpm: return "loss_ppm";
    case TimelineAction::kDuplicatePpm: return "duplicate_ppm";
    case TimelineAction::kReorderPpm: return "reorder_ppm";
    case TimelineAction::kJoin: return "join";
    case TimelineAction::kRemove: return "remove";
    case TimelineAction::kDecommission: return "decommission";
  }
  return "unknown";
}

FaultFamily FamilyOf(TimelineAction action) {
  switch (action) {
    case TimelineAction::kIsolate:
    case TimelineAction::kSplit:
    case TimelineAction::kCut:
    case TimelineAction::kBridge:
    case TimelineAction::kHeal: return FaultFamily::kPartition;
    case TimelineAction::kCrash:
    case TimelineAction::kRestart: return FaultFamily::kCrash;
    case TimelineAction::kPause:
    case TimelineAction::kResume: return FaultFamily::kPause;
    case TimelineAction::kClogNode:
    case TimelineAction::kClogLink: return FaultFamily::kClog;
    case TimelineAction::kClockStep: return FaultFamily::kClockStep;
    case TimelineAction::kLossPpm: return FaultFamily::kLoss;
    case TimelineAction::kDuplicatePpm: return FaultFamily::kDuplicate;
    case TimelineAction::kReorderPpm: return FaultFamily::kReorder;
    case TimelineAction::kJoin: return FaultFamily::kCrash;  // a start, like a restart
    case TimelineAction::kRemove: return FaultFamily::kCrash;  // a membership change
    case TimelineAction::kDecommission: return FaultFamily::kCrash;
  }
  MKS_ASSERT_MSG(false, "unknown timeline action");
  return FaultFamily::kPartition;
}

Result<Scenario> ParseScenario(std::string_view text, const std::string& path) {
  try {
    const YAML::Node root = YAML::Load(std::string(text));
    if (!root.IsDefined() || root.IsNull()) {
      return Status::InvalidArgument(path + ":1: the scenario is empty");
    }
    return ParseRoot(root, path);
  } catch (const ScenarioError& error) {
    return Status::InvalidArgument(error.message);
  } catch (const YAML::Exception& error) {
    return Status::InvalidArgument(path + ":" + std::to_string(error.mark.line + 1) +
                                   ": " + error.msg);
  }
}

Result<Scenario> LoadScenario(const std::string& path) {
  std::ifstream file(path);
  if (!file) return Status::IOError("cannot read scenario file " + path);
  std::stringstream text;
  text << file.rdbuf();
  return ParseScenario(text.str(), path);
}

Result<std::vector<NodeId>> SeatOrder(const Scenario& scenario) {
  std::vector<NodeId> all_nodes(scenario.nodes);
  std::iota(all_nodes.begin(), all_nodes.end(), NodeId{1});
  if (scenario.seats.empty()) return all_nodes;
  std::vector<NodeId> sorted = scenario.seats;
  std::sort(sorted.begin(), sorted.end());
  if (sorted != all_nodes) {
    return Status::InvalidArgument("store.seats must list every node 1.." +
                                   std::to_string(scenario.nodes) + " once");
  }
  return scenario.seats;
}

}  // namespace mks::sim
