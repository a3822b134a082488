#include "sim/scenario_generator.h"

#include <algorithm>
#include <numeric>

#include "core/assertions.h"

namespace mks::sim {
namespace {

// rc::gen::inRange is half-open; these are closed ranges.
template <typename T>
T Pick(T low, T high) {
  MKS_ASSERT_LE(low, high);
  return *rc::gen::inRange<T>(low, high + 1);
}

// Like Pick, but drawn from the whole range whatever RapidCheck's size: the
// size ramps up over a run, and workload intensity scaled down by it would
// leave most cases too light to stress anything. Still shrinks toward `low`.
template <typename T>
T PickUnscaled(T low, T high) {
  MKS_ASSERT_LE(low, high);
  constexpr int kFullSize = 100;  // RapidCheck's default maximum size
  return *rc::gen::resize(kFullSize, rc::gen::inRange<T>(low, high + 1));
}

// A signed magnitude that shrinks toward zero, not toward -max.
int64_t PickSigned(int64_t max) {
  const int64_t magnitude = Pick<int64_t>(0, max);
  return *rc::gen::arbitrary<bool>() ? -magnitude : magnitude;
}

// The nodes whose bits are set in `mask` (bit 0 = node 1), ascending.
std::vector<NodeId> Members(uint32_t mask, const std::vector<NodeId>& pool) {
  std::vector<NodeId> out;
  for (size_t i = 0; i < pool.size(); ++i) {
    if ((mask >> i) & 1) out.push_back(pool[i]);
  }
  return out;
}

std::vector<NodeId> AllNodes(uint32_t nodes) {
  std::vector<NodeId> out;
  for (NodeId id = 1; id <= nodes; ++id) out.push_back(id);
  return out;
}

// A non-empty set of nodes; shrinks toward {1}.
std::vector<NodeId> PickNodes(uint32_t nodes) {
  MKS_ASSERT_LE(nodes, 31u);
  const uint32_t mask = Pick<uint32_t>(1, (1u << nodes) - 1);
  return Members(mask, AllNodes(nodes));
}

// Two non-empty, disjoint sides covering `pool` (at least two nodes).
void PickSides(const std::vector<NodeId>& pool, TimelineEvent* e) {
  MKS_ASSERT_GE(pool.size(), 2u);
  const uint32_t full = (1u << pool.size()) - 1;
  const uint32_t mask = Pick<uint32_t>(1, full - 1);
  e->side_a = Members(mask, pool);
  e->side_b = Members(full & ~mask, pool);
  MKS_ASSERT(!e->side_a.empty() && !e->side_b.empty());
}

void PickLink(uint32_t nodes, TimelineEvent* e) {
  MKS_ASSERT_GE(nodes, 2u);
  e->from = Pick<NodeId>(1, nodes);
  e->to = (e->from - 1 + Pick<NodeId>(1, nodes - 1)) % nodes + 1;
  MKS_ASSERT_NE(e->from, e->to);
}

// The actions a cluster of `nodes` can take, calm ones first so that
// shrinking the choice tends toward them.
std::vector<TimelineAction> ActionsFor(uint32_t nodes) {
  std::vector<TimelineAction> out = {
      TimelineAction::kHeal,         TimelineAction::kResume,
      TimelineAction::kRestart,      TimelineAction::kCrash,
      TimelineAction::kPause,        TimelineAction::kIsolate,
      TimelineAction::kClogNode,     TimelineAction::kClockStep,
      TimelineAction::kLossPpm,      TimelineAction::kDuplicatePpm,
      TimelineAction::kReorderPpm};
  if (nodes >= 2) {
    out.push_back(TimelineAction::kSplit);
    out.push_back(TimelineAction::kCut);
    out.push_back(TimelineAction::kClogLink);
  }
  if (nodes >= 3) out.push_back(TimelineAction::kBridge);
  return out;
}

rc::Gen<TimelineEvent> GenEvent(uint32_t nodes, int64_t duration_ms) {
  return rc::gen::exec([nodes, duration_ms] {
    TimelineEvent e;
    e.at_ms = Pick<int64_t>(0, duration_ms);
    const std::vector<TimelineAction> actions = ActionsFor(nodes);
    e.action = actions[Pick<size_t>(0, actions.size() - 1)];
    switch (e.action) {
      case TimelineAction::kIsolate:
      case TimelineAction::kCrash:
      case TimelineAction::kRestart:
      case TimelineAction::kPause:
      case TimelineAction::kResume: e.nodes = PickNodes(nodes); break;
      case TimelineAction::kHeal: break;
      case TimelineAction::kSplit: PickSides(AllNodes(nodes), &e); break;
      case TimelineAction::kBridge: {
        e.via = Pick<NodeId>(1, nodes);
        std::vector<NodeId> others = AllNodes(nodes);
        others.erase(others.begin() + (e.via - 1));
        PickSides(others, &e);
        break;
      }
      case TimelineAction::kCut: PickLink(nodes, &e); break;
      case TimelineAction::kClogLink:
        PickLink(nodes, &e);
        e.duration_ms = Pick<int64_t>(1, 2000);
        break;
      case TimelineAction::kClogNode:
        e.nodes = PickNodes(nodes);
        e.duration_ms = Pick<int64_t>(1, 2000);
        break;
      case TimelineAction::kClockStep:
        e.nodes = PickNodes(nodes);
        e.step_ms = PickSigned(5000);
        break;
      case TimelineAction::kLossPpm:
      case TimelineAction::kDuplicatePpm:
      case TimelineAction::kReorderPpm: e.ppm = Pick<uint32_t>(0, 1000000); break;
      case TimelineAction::kJoin:  // generated clusters have no standby nodes
      case TimelineAction::kRemove:  // nor membership changes
      case TimelineAction::kDecommission:
        MKS_ASSERT_MSG(false, "ActionsFor offers no join or remove");
        break;
    }
    return e;
  });
}

// A consistency for `replicas` replicas: a level or a count, shrinking
// toward QUORUM (the default a cluster runs with).
Consistency PickLevel(uint32_t replicas) {
  const uint32_t choice = Pick<uint32_t>(0, 3 + replicas - 1);
  switch (choice) {
    case 0: return Consistency::Quorum();
    case 1: return Consistency::One();
    case 2: return Consistency::All();
    default: return Consistency::Count(choice - 2);
  }
}

// Half the cases give per-request levels too, default among them or not.
std::vector<Consistency> PickLevels(uint32_t replicas) {
  std::vector<Consistency> levels;
  if (!*rc::gen::arbitrary<bool>()) return levels;
  const size_t count = Pick<size_t>(1, 4);
  for (size_t i = 0; i < count; ++i) {
    levels.push_back(*rc::gen::arbitrary<bool>() ? PickLevel(replicas)
                                                 : Consistency::Default());
  }
  return levels;
}

void PickStore(uint32_t max_replicas, Scenario* s) {
  s->replicas = Pick<uint32_t>(1, std::min(s->nodes, max_replicas));
  // Any R and W: the checker holds reads to freshness only where the read's
  // R and the write's W overlap (R + W > N), and every other invariant
  // holds whatever they are.
  s->read_consistency = PickLevel(s->replicas);
  s->write_consistency = PickLevel(s->replicas);
  s->partitions = 1u << Pick<uint32_t>(0, 8);
  // Half the cases seat the members out of id order, as a cluster grown by
  // joins in another order would be. Drawn as one nested value, so that
  // shrinking it never changes the fields drawn after it; every swap
  // distance shrinks to 0 (no swap), so the order shrinks toward id order.
  s->seats = *rc::gen::exec([nodes = s->nodes] {
    std::vector<NodeId> seats;
    if (!*rc::gen::arbitrary<bool>()) return seats;
    seats.resize(nodes);
    std::iota(seats.begin(), seats.end(), NodeId{1});
    for (size_t i = seats.size(); i > 1; --i) {
      std::swap(seats[i - 1], seats[i - 1 - PickUnscaled<size_t>(0, i - 1)]);
    }
    return seats;
  });
}

void PickWorkload(uint32_t max_clients, uint32_t replicas, Workload* w) {
  w->clients = PickUnscaled<uint32_t>(1, max_clients);
  w->ops_per_second = PickUnscaled<uint32_t>(1, 200);
  w->key_space = Pick<uint32_t>(1, 32);
  w->read_percent = Pick<uint32_t>(0, 100);
  w->delete_percent = Pick<uint32_t>(0, 100 - w->read_percent);
  w->write_percent = 100 - w->read_percent - w->delete_percent;
  w->value_bytes_min = Pick<uint32_t>(0, 64);
  w->value_bytes_max = w->value_bytes_min + Pick<uint32_t>(0, 1024);
  w->request_timeout_ms = Pick<int64_t>(20, 1000);
  w->read_levels = PickLevels(replicas);
  w->write_levels = PickLevels(replicas);
}

void PickNetwork(NetworkConfig* n) {
  n->latency_min_us = Pick<int64_t>(0, 2000);
  n->latency_max_us = n->latency_min_us + Pick<int64_t>(0, 5000);
  n->slow_tail_ppm = Pick<uint32_t>(0, 50000);
  n->slow_tail_max_us =
      n->slow_tail_ppm == 0 ? 0 : n->latency_max_us + Pick<int64_t>(1, 200000);
  n->loss_ppm = Pick<uint32_t>(0, 100000);
  n->duplicate_ppm = Pick<uint32_t>(0, 100000);
  n->reorder_ppm = Pick<uint32_t>(0, 300000);
}

void PickDisk(DiskConfig* d) {
  // Up to tens of milliseconds: a slow or busy device's fsync.
  d->write_latency_min_us = Pick<int64_t>(0, 2000);
  d->write_latency_max_us = d->write_latency_min_us + Pick<int64_t>(0, 30000);
  // The writer thread's outcome waiting for a busy event loop.
  d->report_delay_max_us = Pick<int64_t>(0, 5000);
}

void PickClocks(const GeneratorLimits& limits, Scenario* s) {
  s->clock_max_offset_ms = Pick<int64_t>(0, std::min<int64_t>(500, limits.max_clock_offset_ms));
  s->clock_max_drift_ppm = Pick<int64_t>(0, std::min<int64_t>(1000, limits.max_clock_drift_ppm));
  const size_t explicit_clocks = Pick<size_t>(0, std::min<size_t>(s->nodes, 2));
  for (size_t i = 0; i < explicit_clocks; ++i) {
    NodeClock clock;
    clock.node = Pick<NodeId>(1, s->nodes);
    clock.model.offset_us = PickSigned(limits.max_clock_offset_ms) * 1000;  // whole ms
    clock.model.drift_ppm = PickSigned(limits.max_clock_drift_ppm);
    s->clocks.push_back(clock);
  }
}

// Only the settings the family's kind has in a file are drawn; the others
// keep their defaults, as the parser leaves them.
void PickFamily(FaultFamily kind, uint32_t nodes, FamilyConfig* f) {
  f->enabled = *rc::gen::arbitrary<bool>();
  f->interval_min_ms = Pick<int64_t>(10, 1000);
  f->interval_max_ms = f->interval_min_ms + Pick<int64_t>(0, 2000);
  if (FamilyHasDuration(kind)) {
    f->duration_min_ms = Pick<int64_t>(1, 1000);
    f->duration_max_ms = f->duration_min_ms + Pick<int64_t>(0, 1000);
  }
  if (kind == FaultFamily::kLoss || kind == FaultFamily::kDuplicate ||
      kind == FaultFamily::kReorder || kind == FaultFamily::kDiskError) {
    f->ppm = Pick<uint32_t>(1, 1000000);
  }
  if (kind == FaultFamily::kClockStep) f->step_max_ms = Pick<int64_t>(1, 10000);
  if (kind == FaultFamily::kCrash || kind == FaultFamily::kPause) {
    f->max_down = Pick<uint32_t>(1, nodes);
  }
  // An off family is written as absent: shorter files, the same run.
  if (!f->enabled) *f = FamilyConfig{};
}

void PickFaults(bool bit_rot, Scenario* s) {
  for (size_t i = 0; i < kFaultFamilyCount; ++i) {
    PickFamily(static_cast<FaultFamily>(i), s->nodes, &s->faults[i]);
  }
  // One replica cannot survive rot of its only copy (KvProtocol::Make).
  if (!bit_rot || s->replicas == 1) s->family(FaultFamily::kBitRot) = FamilyConfig{};
  for (size_t i = 0; i < kFaultFamilyCount; ++i) {
    if (*rc::gen::arbitrary<bool>()) {
      s->swarm_may_disable.push_back(static_cast<FaultFamily>(i));
    }
  }
  s->swarm_disable_percent = Pick<uint32_t>(0, 100);
  s->buggify_enabled = *rc::gen::arbitrary<bool>();
  s->buggify_site_percent = Pick<uint32_t>(0, 100);
  s->buggify_fire_ppm = Pick<uint32_t>(0, 100000);
}

}  // namespace

rc::Gen<Scenario> GenScenario(const GeneratorLimits& limits) {
  MKS_ASSERT_GE(limits.max_nodes, 1u);
  MKS_ASSERT_LE(limits.max_nodes, 31u);
  MKS_ASSERT_GE(limits.max_duration_ms, 100);
  MKS_ASSERT_GE(limits.max_clients, 1u);
  return rc::gen::exec([limits] {
    Scenario s;
    s.path = "generated";
    s.protocol = limits.protocol;
    s.canaries = limits.canaries;
    s.seed = *rc::gen::arbitrary<uint32_t>();
    s.nodes = Pick<uint32_t>(1, limits.max_nodes);
    PickStore(limits.max_replicas, &s);
    s.duration_ms = PickUnscaled<int64_t>(100, limits.max_duration_ms);
    s.liveness_bound_ms = limits.liveness_bound_ms;
    PickWorkload(limits.max_clients, s.replicas, &s.workload);
    PickNetwork(&s.network);
    PickDisk(&s.disk);
    PickClocks(limits, &s);
    // Removing events is how the timeline shrinks; the cap keeps runs short.
    std::vector<TimelineEvent> timeline = *rc::gen::container<std::vector<TimelineEvent>>(
        GenEvent(s.nodes, s.duration_ms));
    if (timeline.size() > limits.max_timeline_events) {
      timeline.resize(limits.max_timeline_events);
    }
    std::stable_sort(timeline.begin(), timeline.end(),
                     [](const TimelineEvent& a, const TimelineEvent& b) {
                       return a.at_ms < b.at_ms;
                     });
    s.timeline = std::move(timeline);
    PickFaults(limits.bit_rot, &s);
    return s;
  });
}

}  // namespace mks::sim
