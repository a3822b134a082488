// StreamService: moves partitions to their new replicas while the ring
// changes (DESIGN section 7, core/cluster_state.h), and drops them from
// the replicas that no longer hold them.
//
// Copying. For every partition this node is a pending replica of (its
// ring's Ring::IsPending) and has not reported yet, the node pulls the
// partition ("stream.pull") from each of its serving replicas, in bounded
// batches in key order, and applies the records by the timestamp rule
// with synced writes (ReplicaService::ApplyStreamed). Copying from every
// serving replica, not one: a write acknowledged by W of them (W = 1
// included) may be missing on all the others, and each key must reach the
// new replica in its newest acknowledged version. A serving replica that
// is down holds the copy up until it is back; only the leaver of a leave
// is skipped while gossip holds it down (the removal of a dead node: what
// it alone held is gone with it). After each applied batch the node
// records, durably and checksummed, the last key copied from that source
// (the checkpoint), so a crash or restart of either side resumes the copy
// where it stopped instead of restarting it. Once every source was
// copied, the node reports the partition done (a StreamDone entry through
// the metadata log's leader); the partition flips once all its pending
// replicas did. Writes keep reaching the pending replica directly
// meanwhile (core/coordinator.h), so nothing written after a batch was
// read is missed.
//
// Serving. A source answers a pull only once it has applied the transition
// the pull names and serves the partition in its ring, and only after
// every put it accepted before the pull is on its disk
// (ReplicaService::Barrier): a put accepted from a coordinator that did
// not know the transition yet is then in the copy, and every later one is
// fenced or reaches the pending replica itself.
//
// Dropping. When a published ring no longer has this node hold a partition
// it held in the ring before (a flip, or the end of its own leave), the
// node durably marks the partition to drop and removes its records in
// batches between group commits. A drop that finds the partition held
// again (it came back in a later change) stops. Marks survive restarts.
//
// Limits: at most max_transfers partitions copied at once by one node,
// and the bytes pulled by one node at most rate_bytes_per_s.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "core/cluster_state.h"
#include "core/coordinator.h"
#include "core/env.h"
#include "core/replica.h"
#include "core/ring.h"
#include "core/rpc.h"
#include "core/runtime/scheduler.h"
#include "core/status.h"
#include "core/store.h"

namespace mks {

struct StreamOptions {
  // Bytes (keys and values) one node pulls per second, over all its
  // transfers; 0: no limit.
  uint64_t rate_bytes_per_s = 64ull << 20;
  // Partitions one node copies at once.
  uint32_t max_transfers = 2;
  // Bounds of one pulled batch.
  uint32_t batch_records = 512;
  uint64_t batch_bytes = 1ull << 20;
  // How often the node looks for work (partitions to copy or drop, reports
  // to retry).
  uint64_t retry_ms = 200;
  // How long a pull waits for its batch.
  uint64_t pull_timeout_ms = 5'000;
};

struct StreamStats {
  uint64_t partitions_copied = 0;  // reported done by this node
  uint64_t sources_copied = 0;     // (partition, source) copies completed
  uint64_t batches_pulled = 0;
  uint64_t records_pulled = 0;
  uint64_t bytes_pulled = 0;
  uint64_t resumed = 0;            // copies continued from a checkpoint
  uint64_t pull_failures = 0;      // pulls that failed (the copy retries)
  uint64_t pulls_served = 0;
  uint64_t records_served = 0;
  uint64_t bytes_served = 0;
  uint64_t partitions_dropped = 0;
  uint64_t drops_cancelled = 0;    // the partition came back before its drop ended
  int64_t first_pull_ns = 0;       // scheduler time of the first pull, 0 before
  int64_t last_pull_ns = 0;
};

// Test hooks that plant known bugs; false in production.
struct StreamCanaries {
  // Report a partition copied after its first batch from each source.
  bool report_after_first_batch = false;
  // Drop a partition as soon as a transition begins that takes it away,
  // before it flipped.
  bool drop_before_flip = false;
};

class StreamService {
 public:
  // Proposes StreamDone for `partitions` of the transition `begin_epoch`.
  using ReportDone =
      std::function<Status(uint64_t begin_epoch, const std::vector<PartitionId>& partitions)>;

  // Every pointer must outlive the service; `cluster` is the node's applied
  // metadata, `ring` its published ring. Registers "stream.pull" on `rpc`.
  StreamService(runtime::Scheduler* scheduler, runtime::ProcessId process, RpcEndpoint* rpc,
                ReplicaService* replica, Store* store, Disk* disk, const ClusterState* cluster,
                RingSource ring, DownSource known_down, ReportDone report, StreamOptions options);
  StreamService(const StreamService&) = delete;
  StreamService& operator=(const StreamService&) = delete;

  // Reads the drop marks left by an earlier run and starts the copy and
  // drop fibers. Fails with the disk's error.
  Status Start();
  // Called with each ring the node publishes and the one before it (null
  // for the first): marks the partitions this node stopped holding.
  void OnRing(const Ring* previous, const Ring& ring);
  // Marks every partition to drop: this node was removed from the cluster.
  void DropAll(uint32_t partition_count);

  const StreamStats& stats() const { return stats_; }
  void set_canaries(StreamCanaries canaries) { canaries_ = canaries; }
  // Partitions being copied now, and those waiting to be dropped.
  size_t active_transfers() const { return active_.size(); }
  size_t pending_drops() const { return drops_.size(); }

 private:
  void CopyLoop();
  void DropLoop();
  // Starts copy workers, up to the limit, while partitions wait.
  void StartCopies(const Ring& ring, const Transition& transition);
  // A partition this node is pending for and copies next, if any.
  std::optional<PartitionId> NextPartition(const Ring& ring, const Transition& transition) const;
  // Copies partitions one after another until none waits.
  void CopyWorker();
  // Copies partition `p` from every live serving replica of `ring`.
  // Copies partition `p` from every serving replica of `ring` but a down
  // `leaver` (kNoNode: none).
  Status CopyPartition(uint64_t begin_epoch, PartitionId p, NodeId leaver,
                       std::shared_ptr<const Ring> ring);
  Status CopyFrom(uint64_t begin_epoch, PartitionId p, NodeId source);
  void ReportReady(uint64_t begin_epoch);
  // Waits until the rate limit lets `bytes` more through.
  void Throttle(uint64_t bytes);
  Result<std::string> ServePull(const RpcRequest& request);
  // Deletes the checkpoints of transitions other than `keep_epoch`.
  void ForgetCheckpoints(uint64_t keep_epoch);
  NodeId self() const { return rpc_->self(); }

  runtime::Scheduler* const scheduler_;
  const runtime::ProcessId process_;
  RpcEndpoint* const rpc_;
  ReplicaService* const replica_;
  Store* const store_;
  Disk* const disk_;
  const ClusterState* const cluster_;
  const RingSource ring_;
  const DownSource known_down_;  // may be null
  const ReportDone report_;
  const StreamOptions options_;
  // Partitions being copied now. Invariant: at most options_.max_transfers.
  std::set<PartitionId> active_;
  uint32_t workers_ = 0;  // Invariant: at most options_.max_transfers
  // Copies that failed this round (a source down or behind): retried the
  // next round, so a worker does not spin on them.
  std::set<PartitionId> failed_;
  // Copied, not yet reported, per transition (begin epoch).
  std::map<uint64_t, std::set<PartitionId>> ready_;
  // Of those, the ones whose report succeeded (the leader applied it).
  std::map<uint64_t, std::set<PartitionId>> reported_;
  std::set<PartitionId> drops_;  // each has its durable mark
  uint64_t checkpoints_of_ = 0;  // the transition whose checkpoints are kept
  int64_t next_pull_ns_ = 0;     // the rate limit's clock
  StreamStats stats_;
  StreamCanaries canaries_;
};

}  // namespace mks
