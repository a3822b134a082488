// The only doors between the protocol and the world.
//
// Everything in core/ reaches time, the network, durable storage and
// randomness through these interfaces, passed in explicitly. The simulator
// (sim/) implements them with a seeded, fault-injecting model; production
// (net/, disk/) implements them with the machine's clocks, TCP and LevelDB.
// Because core sees only these contracts, the code that runs in a simulated
// cluster is byte for byte the code that runs in a deployment.
//
// Threading: every method is called from the single scheduler thread that
// owns the node. No implementation may call back into core from another
// thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/random.h"
#include "core/runtime/unique_function.h"
#include "core/status.h"

namespace mks {

class Buggify;  // core/buggify.h

// Identifies one node (one process) of the cluster. Invariant: stable for the
// node's lifetime, across restarts; 0 is never a valid node id.
using NodeId = uint32_t;
inline constexpr NodeId kNoNode = 0;

// A node's view of time.
class Clock {
 public:
  virtual ~Clock() = default;

  // Returns the node's wall-clock time in microseconds since the Unix epoch.
  // This is what the node *believes*: it may be offset from other nodes'
  // clocks, drift, and jump forwards or backwards at any moment (NTP steps,
  // operator error, simulated faults). Never fails. Callers that need
  // monotonicity must build it themselves (see core/hlc).
  virtual int64_t WallMicros() = 0;

  // Returns nanoseconds since an arbitrary, fixed origin. Never decreases
  // between two calls on the same Clock, never jumps backwards, and is the
  // time base of the runtime's timers. It carries no meaning across nodes or
  // across restarts of one node. Never fails.
  virtual int64_t MonotonicNanos() = 0;
};

// Receives the messages that arrive for one node.
//
// Called on the scheduler thread, outside any fiber: it must not block. It
// typically decodes the bytes and hands them to a fiber.
using MessageHandler = std::function<void(NodeId from, std::string bytes)>;

// An unreliable datagram service between nodes, addressed by NodeId.
class Network {
 public:
  virtual ~Network() = default;

  // Queues `bytes` for delivery to node `to`. Returns OK when the message was
  // accepted for sending, which promises nothing about delivery: a message may
  // be lost, delayed without bound, duplicated, or reordered with respect to
  // any other message, and the receiver may have crashed. Returns
  // InvalidArgument when `to` is not a known node or the message exceeds the
  // transport's maximum frame size; ResourceExhausted when the outgoing queue
  // to `to` is full (the caller should treat the message as lost, not retry in
  // a loop). Sending to oneself is allowed and crosses the same path.
  virtual Status Send(NodeId to, std::string bytes) = 0;

  // Installs the handler for messages addressed to this node, replacing any
  // previous one. Messages that arrive while no handler is installed are
  // dropped. The bytes delivered are exactly the bytes sent (corruption in
  // transit is detected by the transport and turned into loss).
  virtual void SetHandler(MessageHandler handler) = 0;

  // Queues `bytes` for whichever node listens at `address` (a seed known
  // only by its address, "host:port"; the node that answers names itself
  // as the sender of its reply). Promises no more than Send. InvalidArgument
  // when the address is malformed or unknown to the network.
  virtual Status SendToAddress(std::string_view address, std::string bytes) = 0;

  // Tells the network that node `id` listens at `address`, so that Send(id)
  // reaches it from now on (gossip learns members this way). Replaces an
  // earlier address of `id`. InvalidArgument for an address the network
  // cannot use. Networks that know every node from the start may ignore it.
  virtual Status SetAddress(NodeId id, std::string_view address) = 0;
};

// Options for one write to a Disk.
struct WriteOptions {
  // When true, the write (and every write before it on this Disk) is durable
  // when the call returns: it survives a crash of the process or machine.
  // When false, the write is visible to reads at once but may be lost by a
  // crash; a later synced write or Sync() makes it durable.
  bool sync = false;
};

// An atomic group of puts and deletes, applied in the order they were added.
class WriteBatch {
 public:
  struct Operation {
    bool is_delete = false;
    std::string key;
    std::string value;  // empty for deletes
  };

  void Put(std::string_view key, std::string_view value) {
    operations_.push_back({false, std::string(key), std::string(value)});
  }
  void Delete(std::string_view key) {
    operations_.push_back({true, std::string(key), {}});
  }
  void Clear() { operations_.clear(); }
  bool empty() const { return operations_.empty(); }
  size_t size() const { return operations_.size(); }
  const std::vector<Operation>& operations() const { return operations_; }

 private:
  std::vector<Operation> operations_;
};

// Receives the outcome of a Disk::WriteAsync.
using WriteDone = runtime::UniqueFunction<void(Status)>;

// An ordered cursor over a Disk's keys (bytewise order, as memcmp).
//
// An iterator sees a consistent state of the Disk: at least every write that
// completed before it was created, possibly some after. It is positioned
// nowhere until a Seek.
class DiskIterator {
 public:
  virtual ~DiskIterator() = default;

  // Positions at the first key >= `target`.
  virtual void Seek(std::string_view target) = 0;
  // Positions at the first key of the Disk.
  virtual void SeekToFirst() = 0;
  // True when positioned at a record. Reading key()/value() requires Valid().
  virtual bool Valid() const = 0;
  // Advances to the next key in order. Requires Valid().
  virtual void Next() = 0;
  virtual std::string_view key() const = 0;
  virtual std::string_view value() const = 0;
  // OK unless iteration met an error (I/O, corruption); once not OK, Valid()
  // is false. Callers must check it after the loop: running off the end and
  // failing both end with !Valid().
  virtual Status status() const = 0;
};

// A durable, ordered key-value engine: the level of LevelDB. Keys and values
// are arbitrary bytes (any of the 256 byte values, including NUL).
//
// Durability: a write with WriteOptions::sync, or any write followed by a
// successful Sync(), survives crashes. Unsynced writes may be lost at a crash;
// the engine never loses a synced write and never exposes a torn batch (a
// batch is applied whole or not at all). The unsynced writes a crash keeps
// are a prefix of them in write order: a later write never survives without
// every earlier one (core/store relies on it for its stamp ceiling).
//
// Corruption: an engine reports the corruption it detects as a Corruption
// status. It may also return silently damaged bytes (bit rot below the
// engine's own checks), so every layer that stores data keeps its own
// checksum inside the value and verifies it on read (core/store does).
class Disk {
 public:
  virtual ~Disk() = default;

  // Reads the value stored under `key` into *value. Returns NotFound when the
  // key is absent (and leaves *value unchanged), Corruption or IOError when
  // the engine cannot read it.
  virtual Status Get(std::string_view key, std::string* value) = 0;

  // Stores `value` under `key`, replacing any previous value.
  virtual Status Put(std::string_view key, std::string_view value,
                     WriteOptions options) = 0;

  // Removes `key`. Deleting an absent key is OK.
  virtual Status Delete(std::string_view key, WriteOptions options) = 0;

  // Applies every operation of `batch` atomically: after a crash either all
  // of them are visible or none is.
  virtual Status Write(const WriteBatch& batch, WriteOptions options) = 0;

  // Returns a new iterator over the whole key space. Never null.
  virtual std::unique_ptr<DiskIterator> NewIterator() = 0;

  // Makes every write so far durable. Returns IOError when the device fails,
  // in which case durability of the unsynced writes is unknown.
  virtual Status Sync() = 0;

  // Starts Write(batch, options) and returns before it is done, so the
  // node's thread keeps serving while the device syncs. `done` receives
  // what Write would have returned, on the node's thread: later and outside
  // any fiber, or (engines that write at once) before WriteAsync returns, in
  // the caller's context. Only then is the batch durable (with
  // options.sync) and surely visible to reads. Until then reads may or may not see it, and a crash
  // may keep it or lose it as it would an unsynced write (a prefix, in
  // order). If the node stops or crashes first, `done` may never run.
  //
  // The caller must not issue another write that could conflict with the
  // batch while it is in flight: the engine may order the two either way.
  // Engines without a writer of their own keep this default, which writes
  // at once and calls `done` before returning.
  virtual void WriteAsync(WriteBatch batch, WriteOptions options, WriteDone done) {
    done(Write(batch, options));
  }
};

// Everything a node receives from the world, bundled. The pointees outlive
// the node; the node never deletes them.
struct Environment {
  NodeId node_id = kNoNode;
  Clock* clock = nullptr;
  Network* network = nullptr;
  Disk* disk = nullptr;
  Random random{0};
  // Rare-branch injection (core/buggify.h); null in production, where every
  // MKS_BUGGIFY site is false.
  Buggify* buggify = nullptr;
};

}  // namespace mks
