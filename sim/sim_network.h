// SimNetwork: the simulated twin of the TCP transport (net/).
//
// Fault model. Every message between endpoints (nodes and clients alike)
// crosses this network as bytes. For each message, at send time:
//  * A cut link (partition) drops it. Cuts are directional: a one-way cut
//    from A to B drops A's messages to B and lets B's reach A. Messages
//    already in flight when a cut is made are still delivered.
//  * It is lost with probability loss_ppm.
//  * Its latency is uniform in [latency_min_us, latency_max_us]; with
//    probability slow_tail_ppm it instead falls in the slow tail
//    (latency_max_us, slow_tail_max_us].
//  * Links are FIFO (as a TCP connection is) except that with probability
//    reorder_ppm a message skips the queue and may overtake or be overtaken.
//  * A clogged link or node holds its messages until the clog ends, then
//    delivers them with their latency (a stalled switch port, a full buffer).
//  * With probability duplicate_ppm a second copy is delivered later.
//  * A message arriving at a node that is down is dropped; one arriving at a
//    paused node waits (its delivery is a timer of the node's process, and
//    the scheduler holds a paused process's timers).
// All choices come from one seeded Random, so a seed replays the same fates.
// Hot path: Send() draws a few numbers, and schedules one timer.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/env.h"
#include "core/random.h"
#include "core/runtime/scheduler.h"
#include "sim/trace.h"

namespace mks::sim {

struct NetworkConfig {
  int64_t latency_min_us = 100;
  int64_t latency_max_us = 1000;  // >= latency_min_us
  uint32_t slow_tail_ppm = 0;
  int64_t slow_tail_max_us = 0;  // > latency_max_us when slow_tail_ppm > 0
  uint32_t loss_ppm = 0;
  uint32_t duplicate_ppm = 0;
  uint32_t reorder_ppm = 0;
  size_t max_message_bytes = 16 << 20;
  friend bool operator==(const NetworkConfig&, const NetworkConfig&) = default;
};

struct NetworkStats {
  uint64_t sent = 0;               // Send() calls accepted
  uint64_t bytes_sent = 0;         // ... and the bytes they carried
  uint64_t delivered = 0;          // handler calls
  uint64_t dropped_cut = 0;        // by a partition
  uint64_t dropped_loss = 0;       // by random loss
  uint64_t dropped_down = 0;       // receiver down at delivery (or at send)
  uint64_t dropped_no_handler = 0; // receiver up but not listening
  uint64_t duplicated = 0;
  uint64_t reordered = 0;
  uint64_t slow = 0;               // took the slow tail
  uint64_t clogged = 0;            // held by a clog
  uint64_t dropped_auth = 0;       // between nodes of different secrets
};

class SimNetwork {
 public:
  SimNetwork(runtime::Scheduler* scheduler, Random random, NetworkConfig config,
             Tracer* tracer);
  ~SimNetwork();
  SimNetwork(const SimNetwork&) = delete;
  SimNetwork& operator=(const SimNetwork&) = delete;

  // Adds an endpoint for `id` (nodes and clients alike) and returns its
  // Network, owned by this SimNetwork. The endpoint starts down. Requires a
  // new, nonzero id. It listens at AddressOf(id) (Network::SendToAddress).
  Network* AddEndpoint(NodeId id);
  // The address endpoint `id` listens at: "sim-<id>:7000".
  static std::string AddressOf(NodeId id);

  // Brings `id` up as `process`: messages are delivered by timers of that
  // process. A down endpoint drops what arrives and what is in flight.
  void Up(NodeId id, runtime::ProcessId process);
  // Takes `id` down (its process was killed) and forgets its handler.
  void Down(NodeId id);
  bool IsUp(NodeId id) const;

  // ---- Partitions ----
  // Cuts the one-way link from `from` to `to`.
  void Cut(NodeId from, NodeId to);
  // Cuts both directions between `node` and every other endpoint.
  void Isolate(NodeId node);
  // Cuts both directions between every member of `side_a` and of `side_b`.
  // Endpoints in neither side (a bridge, clients) still reach both.
  void Split(const std::vector<NodeId>& side_a, const std::vector<NodeId>& side_b);
  // Restores every link.
  void Heal();
  // Whether a message sent now from `from` to `to` escapes the partition.
  bool Reachable(NodeId from, NodeId to) const;

  // ---- Clogs ----
  // Holds every message from or to `node` until true time `until_ns`.
  void ClogNode(NodeId node, int64_t until_ns);
  // Holds messages on the one-way link `from` -> `to` until `until_ns`.
  void ClogLink(NodeId from, NodeId to, int64_t until_ns);
  void Unclog();

  // ---- Authentication ----
  // Puts node `id` in secret group `group` (0 at first). Messages between
  // two nodes (ids below kAnyClientId) of different groups are dropped and
  // counted, as the real transport refuses a peer that cannot prove the
  // cluster's secret; clients are not peers and reach every node.
  void SetSecretGroup(NodeId id, uint32_t group);
  static constexpr NodeId kAnyClientId = 1001;

  // ---- Rates ----
  NetworkConfig& config() { return config_; }
  const NetworkConfig& config() const { return config_; }
  const NetworkStats& stats() const { return stats_; }
  size_t endpoint_count() const { return endpoints_.size(); }

 private:
  class Endpoint;
  friend class Endpoint;

  uint32_t IndexOf(NodeId id) const;
  Status Send(uint32_t from_index, NodeId to, std::string bytes);
  int64_t DrawLatencyNanos();
  void Schedule(uint32_t from_index, uint32_t to_index, int64_t deliver_ns,
                std::string bytes);
  void Deliver(uint32_t from_index, uint32_t to_index, std::string bytes);
  size_t LinkSlot(uint32_t from_index, uint32_t to_index) const {
    return static_cast<size_t>(from_index) * stride_ + to_index;
  }
  void ResizeLinks();

  runtime::Scheduler* const scheduler_;
  Random random_;
  NetworkConfig config_;
  Tracer* const tracer_;
  std::vector<Endpoint*> endpoints_;       // owned; dense index order
  std::vector<uint32_t> index_by_id_;      // id -> index + 1; 0: no endpoint
  std::map<std::string, NodeId, std::less<>> id_by_address_;
  std::map<NodeId, uint32_t> secret_group_;  // absent: group 0
  // Per ordered link (from, to), indexed by LinkSlot. Invariant: all three
  // have stride_^2 entries, stride_ >= endpoints_.size().
  size_t stride_ = 0;
  std::vector<uint8_t> cut_;               // 1 when the link is cut
  std::vector<int64_t> link_clog_until_ns_;
  std::vector<int64_t> last_delivery_ns_;  // FIFO order on the link
  NetworkStats stats_;
};

}  // namespace mks::sim
