// The gossip-only protocol: nodes that run nothing but their RpcEndpoint
// and core/gossip, for membership scenarios of up to hundreds of nodes
// (`protocol: gossip`). They hold no data and serve no clients; the
// world's GossipChecker (sim/gossip_checker.h) judges their views, and the
// protocol's own checker has nothing to add.
//
// Canaries (core/gossip's GossipCanaries, by name): no_refute,
// no_indirect_probes, restart_incarnation_zero; they apply to the gossip of
// store nodes too (sim/kv_protocol.h).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/gossip/gossip.h"
#include "sim/protocol.h"

namespace mks::sim {

// The gossip canary names, and setting one. InvalidArgument for a name
// that is not a gossip canary.
const std::vector<std::string>& GossipCanaryNames();
Status EnableGossipCanary(std::string_view name, gossip::GossipCanaries* canaries);

// Starts `context`'s node's gossip on `rpc` with the scenario's settings:
// an initial member knows the cluster's other nodes from the start, a
// joiner its seeds. Returns the running Gossip.
std::unique_ptr<gossip::Gossip> StartSimGossip(const NodeContext& context, RpcEndpoint* rpc,
                                               const gossip::GossipCanaries& canaries);

class GossipProtocol final : public Protocol {
 public:
  // InvalidArgument for a canary that is not a gossip canary.
  static Result<std::unique_ptr<GossipProtocol>> Make(const Scenario& scenario);
  std::string name() const override { return "gossip"; }
  std::unique_ptr<ProtocolNode> StartNode(const NodeContext& context) override;
  std::unique_ptr<WorkloadClient> StartClient(const ClientContext& context) override;
  Checker& checker() override { return checker_; }

 private:
  class NoDataChecker final : public Checker {
   public:
    void Invoke(const Operation&) override {}
    void Complete(const Operation&) override {}
    const std::vector<std::string>& violations() const override { return none_; }
    Status CheckConverged(const std::vector<std::string>&) override { return Status::Ok(); }

   private:
    std::vector<std::string> none_;
  };
  explicit GossipProtocol(gossip::GossipCanaries canaries) : canaries_(canaries) {}
  const gossip::GossipCanaries canaries_;
  NoDataChecker checker_;
};

}  // namespace mks::sim
