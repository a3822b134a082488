#include "core/node.h"

#include <algorithm>
#include <array>
#include <optional>
#include <utility>

#include "core/assertions.h"
#include "core/crc32c.h"
#include "core/proto/mks.pb.h"

namespace mks {
namespace {

// Outside the store's key space ("v"): see StoreOptions::key_space. Two
// copies, written together, each with its own checksum: a node that lost its
// only copy to bit rot could not know which timestamps it already issued.
constexpr std::array<std::string_view, 2> kCeilingKeys = {"m/timestamp_ceiling/a",
                                                          "m/timestamp_ceiling/b"};
constexpr size_t kCeilingValueBytes = 8 + 4;  // big-endian ms, crc32c

std::string EncodeCeiling(std::string_view key, uint64_t ceiling_ms) {
  std::string out(kCeilingValueBytes, '\0');
  for (int i = 0; i < 8; ++i) {
    out[static_cast<size_t>(i)] = static_cast<char>(ceiling_ms >> (56 - 8 * i));
  }
  const uint32_t crc = Crc32c(std::string_view(out).substr(0, 8), Crc32c(key));
  for (int i = 0; i < 4; ++i) {
    out[static_cast<size_t>(8 + i)] = static_cast<char>(crc >> (24 - 8 * i));
  }
  return out;
}

// The ceiling stored under `key`; nullopt when it fails its checksum.
std::optional<uint64_t> DecodeCeiling(std::string_view key, std::string_view bytes) {
  if (bytes.size() != kCeilingValueBytes) return std::nullopt;
  uint64_t ceiling_ms = 0;
  for (size_t i = 0; i < 8; ++i) ceiling_ms = (ceiling_ms << 8) | static_cast<uint8_t>(bytes[i]);
  uint32_t crc = 0;
  for (size_t i = 8; i < kCeilingValueBytes; ++i) crc = (crc << 8) | static_cast<uint8_t>(bytes[i]);
  if (crc != Crc32c(bytes.substr(0, 8), Crc32c(key))) return std::nullopt;
  return ceiling_ms;
}

Result<Consistency> ConsistencyOf(const proto::ClientRequest& request) {
  if (request.consistency().empty()) return Consistency::Default();
  return ParseConsistency(request.consistency());
}

}  // namespace

Result<std::unique_ptr<Node>> Node::Open(NodeOptions options, Environment env,
                                         runtime::Scheduler* scheduler,
                                         runtime::ProcessId process) {
  MKS_ASSERT(scheduler != nullptr);
  MKS_ASSERT(env.clock != nullptr && env.network != nullptr && env.disk != nullptr);
  std::optional<Ring> ring;
  if (options.members.size() > 0) {
    Result<Ring> built = Ring::Build(options.members, options.ring_epoch, options.ring);
    MKS_RETURN_IF_ERROR(built.status());
    ring = std::move(*built);
  } else if (!options.gossip.has_value() || options.gossip->seeds.empty()) {
    return Status::InvalidArgument("a node needs a member list or seeds to join through");
  }
  if (options.timestamp_ceiling_step_ms == 0 ||
      options.timestamp_ceiling_step_ms * 4 > options.hlc.max_offset_ms) {
    return Status::InvalidArgument(
        "timestamp_ceiling_step_ms must be in 1..max_offset_ms/4 (" +
        std::to_string(options.hlc.max_offset_ms / 4) + ")");
  }
  std::unique_ptr<Node> node(new Node(std::move(options), std::move(env),
                                      scheduler, process, std::move(ring)));
  MKS_RETURN_IF_ERROR(node->Recover());
  if (node->gossip_ != nullptr) {
    for (const auto& [peer, addresses] : node->options_.known_peers) {
      node->gossip_->Seed(peer, addresses);
    }
    MKS_RETURN_IF_ERROR(node->gossip_->Start());
  }
  return node;
}

Node::Node(NodeOptions options, Environment env, runtime::Scheduler* scheduler,
           runtime::ProcessId process, std::optional<Ring> ring)
    : options_(std::move(options)),
      env_(std::move(env)),
      scheduler_(scheduler),
      process_(process),
      ring_(std::move(ring)),
      hlc_(env_.clock, options_.hlc) {
  static_assert(Ring::kMaxPartitionCount <= kMaxStorePartitions,
                "the store's disk keys hold every partition of the ring");
  store_ = std::make_unique<Store>(
      env_.disk,
      [partition_count = options_.ring.partition_count](std::string_view key) {
        return Ring::PartitionOfKey(key, partition_count);
      },
      options_.store);
  // Any non-zero draw: a restarted node draws afresh (core/rpc.h).
  const uint64_t incarnation = env_.random.Next64() | 1;
  rpc_ = std::make_unique<RpcEndpoint>(scheduler_, process_, env_.network,
                                       env_.node_id, RpcOptions{incarnation});
  if (options_.gossip.has_value()) {
    gossip_ = std::make_unique<gossip::Gossip>(scheduler_, process_, rpc_.get(), env_,
                                               options_.addresses, *options_.gossip);
    gossip_->set_canaries(options_.gossip_canaries);
  }
  replica_ = std::make_unique<ReplicaService>(store_.get(), &hlc_, rpc_.get(),
                                              scheduler_, &env_, options_.replica);
  DownSource known_down;
  if (gossip_ != nullptr) {
    known_down = [gossip = gossip_.get()](NodeId node) { return gossip->IsDown(node); };
  }
  coordinator_ = std::make_unique<Coordinator>(
      scheduler_, process_, rpc_.get(), replica_.get(), &hlc_,
      [this]() -> const Ring* { return this->ring(); },
      [this] { return NextTimestamp(); }, options_.coordinator, std::move(known_down));
  RegisterClientMethods();
}

Node::~Node() = default;

Status Node::Recover() {
  bool found = false;
  bool damaged = false;
  for (std::string_view key : kCeilingKeys) {
    std::string stored;
    const Status read = env_.disk->Get(key, &stored);
    if (read.IsNotFound()) continue;
    found = true;
    if (!read.ok() && !read.IsCorruption()) return read;
    const std::optional<uint64_t> ceiling_ms =
        read.ok() ? DecodeCeiling(key, stored) : std::nullopt;
    if (!ceiling_ms.has_value()) {
      damaged = true;
      continue;
    }
    // The copies are written together; after a crash between the two
    // LevelDB keeps both or neither (one batch), so the larger is the last.
    ceiling_ms_ = std::max(ceiling_ms_, *ceiling_ms);
  }
  if (found && ceiling_ms_ == 0) {
    return Status::Corruption(
        "both copies of the timestamp ceiling are damaged: this node cannot "
        "tell which timestamps it issued; restore its data directory or "
        "replace the node");
  }
  if (damaged) ++stats_.ceiling_copies_damaged;
  // Every timestamp issued before the crash is below the ceiling, so
  // starting at it keeps this incarnation's timestamps above all of them.
  hlc_.AdvanceTo(Timestamp{ceiling_ms_, 0});
  return Status::Ok();
}

Result<Timestamp> Node::NextTimestamp() {
  const Timestamp stamp = hlc_.Now();
  if (stamp.physical_ms < ceiling_ms_) return stamp;
  const uint64_t raised_ms = stamp.physical_ms + options_.timestamp_ceiling_step_ms;
  WriteBatch batch;
  for (std::string_view key : kCeilingKeys) batch.Put(key, EncodeCeiling(key, raised_ms));
  MKS_RETURN_IF_ERROR(env_.disk->Write(batch, WriteOptions{.sync = true}));
  ceiling_ms_ = raised_ms;
  ++stats_.ceiling_raises;
  MKS_ASSERT_LT(stamp.physical_ms, ceiling_ms_);
  MKS_ASSERT_EQ(batch.size(), kCeilingKeys.size());
  return stamp;
}

void Node::RegisterClientMethods() {
  rpc_->RegisterHandler("client.get", [this](RpcRequest request) -> Result<std::string> {
    proto::ClientRequest message;
    if (!message.ParseFromString(request.payload)) {
      return Status::InvalidArgument("malformed client.get request");
    }
    Result<Consistency> consistency = ConsistencyOf(message);
    MKS_RETURN_IF_ERROR(consistency.status());
    Result<ReadResult> read = coordinator_->Get(message.key(), *consistency);
    MKS_RETURN_IF_ERROR(read.status());
    proto::ClientResponse response;
    response.set_found(read->found);
    response.set_replies(read->replies);
    if (read->version.has_value()) {
      VersionToProto(message.key(), *read->version, response.mutable_version());
    }
    return response.SerializeAsString();
  });
  for (const bool is_delete : {false, true}) {
    const std::string method = is_delete ? "client.delete" : "client.put";
    rpc_->RegisterHandler(method, [this, is_delete, method](
                                      RpcRequest request) -> Result<std::string> {
      proto::ClientRequest message;
      if (!message.ParseFromString(request.payload)) {
        return Status::InvalidArgument("malformed " + method + " request");
      }
      Result<Consistency> consistency = ConsistencyOf(message);
      MKS_RETURN_IF_ERROR(consistency.status());
      Result<WriteResult> written =
          is_delete ? coordinator_->Delete(message.key(), *consistency)
                    : coordinator_->Put(message.key(), message.value(), *consistency);
      MKS_RETURN_IF_ERROR(written.status());
      proto::ClientResponse response;
      response.set_replies(written->acks);
      VersionToProto(message.key(), written->version, response.mutable_version());
      return response.SerializeAsString();
    });
  }
}

}  // namespace mks
