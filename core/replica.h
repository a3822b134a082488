// ReplicaService: a node's side of replication. Coordinators (this node's
// own, directly; other nodes', over RPC methods "replica.put" and
// "replica.get") store versions here and read them back.
//
// A put applies the version with a synced write before it is acknowledged,
// so an acknowledged version survives a crash of this node. Applying is
// last-writer-wins (core/store.h): a put of an older version is acknowledged
// without changing anything, because the replica then holds a version at
// least as new, which is all a coordinator's quorum needs.
//
// Every received timestamp is folded into the node's hybrid logical clock
// (causality). A version stamped further ahead of this node's wall clock
// than the clock's maximum offset is refused with InvalidArgument and
// counted: a node with a wild clock must not plant versions that would win
// every conflict for as long as its clock is off.
//
// A replica serves any key it is asked for, whether or not the ring places
// the key's partition here: with static membership the coordinator's ring is
// this node's ring, and once membership changes a replica outside the
// preference list only holds a harmless extra copy.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/hlc.h"
#include "core/rpc.h"
#include "core/status.h"
#include "core/store.h"

namespace mks {

struct ReplicaStats {
  uint64_t puts = 0;             // put requests served successfully
  uint64_t puts_applied = 0;     // ... of which changed the stored winner
  uint64_t puts_refused = 0;     // bad input, clock offset, or disk error
  uint64_t gets = 0;             // get requests served successfully
  uint64_t gets_failed = 0;      // corruption or disk error
};

// Test hooks that plant known bugs; false in production.
struct ReplicaCanaries {
  bool no_sync = false;  // acknowledge puts without syncing them
};

class ReplicaService {
 public:
  // `store`, `hlc` and `rpc` must outlive the service. Registers the replica
  // methods on `rpc`.
  ReplicaService(Store* store, HybridLogicalClock* hlc, RpcEndpoint* rpc);
  ReplicaService(const ReplicaService&) = delete;
  ReplicaService& operator=(const ReplicaService&) = delete;

  // Applies `version` of `key` durably. Returns whether it changed the
  // stored winner. InvalidArgument for a version outside the store's limits
  // or stamped too far ahead (nothing written); the store's Corruption or
  // IOError otherwise.
  Result<bool> Put(std::string_view key, const Version& version);
  // Returns the newest version of `key` held here (a tombstone included), or
  // nullopt when there is none. Corruption when the stored record fails its
  // checksum (the record is then removed, so anti-entropy or read repair
  // can restore it from other replicas); IOError from the disk.
  Result<std::optional<Version>> Get(std::string_view key);

  const ReplicaStats& stats() const { return stats_; }
  void set_canaries(ReplicaCanaries canaries) { canaries_ = canaries; }

 private:
  Result<std::string> ServePut(const RpcRequest& request);
  Result<std::string> ServeGet(const RpcRequest& request);

  Store* const store_;
  HybridLogicalClock* const hlc_;
  ReplicaCanaries canaries_;
  ReplicaStats stats_;
};

}  // namespace mks
