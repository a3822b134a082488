#include "sim/gossip_protocol.h"

#include <utility>

#include "core/assertions.h"
#include "core/rpc.h"
#include "sim/gossip_checker.h"
#include "sim/sim_network.h"

namespace mks::sim {
namespace {

struct GossipCanaryFlag {
  const char* name;
  bool gossip::GossipCanaries::*flag;
};
constexpr GossipCanaryFlag kGossipCanaries[] = {
    {"no_refute", &gossip::GossipCanaries::no_refute},
    {"no_indirect_probes", &gossip::GossipCanaries::no_indirect_probes},
    {"restart_incarnation_zero", &gossip::GossipCanaries::restart_incarnation_zero},
};

class GossipNode final : public ProtocolNode {
 public:
  GossipNode(const NodeContext& context, const gossip::GossipCanaries& canaries)
      : rpc_(context.scheduler, context.process, context.env.network, context.env.node_id,
             RpcOptions{Random(context.env.random).Next64() | 1}),
        gossip_(StartSimGossip(context, &rpc_, canaries)) {}

  std::string ConvergenceDigest() const override { return ""; }
  std::vector<std::pair<std::string, uint64_t>> Counters() const override {
    const gossip::GossipStats& g = gossip_->stats();
    return {{"gossip_probes", g.probes},
            {"gossip_probe_failures", g.probe_failures},
            {"gossip_indirect_probes", g.indirect_probes},
            {"gossip_suspicions", g.suspicions},
            {"gossip_deaths_declared", g.deaths_declared},
            {"gossip_refutations", g.refutations},
            {"gossip_push_pulls", g.push_pulls},
            {"gossip_joins", g.joins},
            {"gossip_late_ticks", g.late_ticks},
            {"rpc_replies_stale", rpc_.stats().replies_stale}};
  }
  gossip::Gossip* gossip() override { return gossip_.get(); }

 private:
  RpcEndpoint rpc_;
  std::unique_ptr<gossip::Gossip> gossip_;
};

// Gossip nodes have no clients; a scenario's workload is ignored.
class IdleClient final : public WorkloadClient {
 public:
  void Stop() override {}
  bool Idle() const override { return true; }
};

}  // namespace

const std::vector<std::string>& GossipCanaryNames() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> all;
    for (const GossipCanaryFlag& canary : kGossipCanaries) all.emplace_back(canary.name);
    return all;
  }();
  return names;
}

Status EnableGossipCanary(std::string_view name, gossip::GossipCanaries* canaries) {
  MKS_ASSERT(canaries != nullptr);
  for (const GossipCanaryFlag& canary : kGossipCanaries) {
    if (name != canary.name) continue;
    canaries->*canary.flag = true;
    return Status::Ok();
  }
  return Status::InvalidArgument("unknown gossip canary '" + std::string(name) + "'");
}

std::unique_ptr<gossip::Gossip> StartSimGossip(const NodeContext& context, RpcEndpoint* rpc,
                                               const gossip::GossipCanaries& canaries) {
  MKS_ASSERT(context.scenario != nullptr);
  gossip::GossipOptions options = GossipOptionsFor(context.scenario->gossip);
  options.seeds = context.seeds;
  const NodeId self = context.env.node_id;
  auto gossip = std::make_unique<gossip::Gossip>(
      context.scheduler, context.process, rpc, context.env,
      gossip::Addresses{SimNetwork::AddressOf(self), "", ""}, std::move(options));
  gossip->set_canaries(canaries);
  if (context.member) {
    for (NodeId peer : context.nodes) {
      gossip->Seed(peer, gossip::Addresses{SimNetwork::AddressOf(peer), "", ""});
    }
  }
  const Status started = gossip->Start();
  MKS_ASSERT_MSG(started.ok(), started.ToString());
  return gossip;
}

Result<std::unique_ptr<GossipProtocol>> GossipProtocol::Make(const Scenario& scenario) {
  gossip::GossipCanaries canaries;
  for (const std::string& name : scenario.canaries) {
    MKS_RETURN_IF_ERROR(EnableGossipCanary(name, &canaries));
  }
  return std::unique_ptr<GossipProtocol>(new GossipProtocol(canaries));
}

std::unique_ptr<ProtocolNode> GossipProtocol::StartNode(const NodeContext& context) {
  return std::make_unique<GossipNode>(context, canaries_);
}

std::unique_ptr<WorkloadClient> GossipProtocol::StartClient(const ClientContext& context) {
  (void)context;
  return std::make_unique<IdleClient>();
}

}  // namespace mks::sim
