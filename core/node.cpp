#include "core/node.h"

#include <utility>

#include "core/assertions.h"
#include "core/proto/mks.pb.h"

namespace mks {
namespace {

// Outside the store's key space ("v"): see StoreOptions::key_space.
constexpr std::string_view kCeilingKey = "m/timestamp_ceiling";

std::string EncodeCeiling(uint64_t ceiling_ms) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) {
    out[static_cast<size_t>(i)] = static_cast<char>(ceiling_ms >> (56 - 8 * i));
  }
  return out;
}

Result<uint64_t> DecodeCeiling(std::string_view bytes) {
  if (bytes.size() != 8) {
    return Status::Corruption("timestamp ceiling of " +
                              std::to_string(bytes.size()) + " bytes, not 8");
  }
  uint64_t ceiling_ms = 0;
  for (char c : bytes) ceiling_ms = (ceiling_ms << 8) | static_cast<uint8_t>(c);
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
  Result<Ring> ring = Ring::Build(options.members, options.ring_epoch, options.ring);
  MKS_RETURN_IF_ERROR(ring.status());
  if (!ring->IsMember(env.node_id)) {
    return Status::InvalidArgument("node " + std::to_string(env.node_id) +
                                   " is not in its own member list");
  }
  if (options.timestamp_ceiling_step_ms == 0 ||
      options.timestamp_ceiling_step_ms * 4 > options.hlc.max_offset_ms) {
    return Status::InvalidArgument(
        "timestamp_ceiling_step_ms must be in 1..max_offset_ms/4 (" +
        std::to_string(options.hlc.max_offset_ms / 4) + ")");
  }
  std::unique_ptr<Node> node(new Node(std::move(options), std::move(env),
                                      scheduler, process, std::move(*ring)));
  MKS_RETURN_IF_ERROR(node->Recover());
  return node;
}

Node::Node(NodeOptions options, Environment env, runtime::Scheduler* scheduler,
           runtime::ProcessId process, Ring ring)
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
      [partition_count = ring_.partition_count()](std::string_view key) {
        return Ring::PartitionOfKey(key, partition_count);
      },
      options_.store);
  // Any non-zero draw: a restarted node draws afresh (core/rpc.h).
  const uint64_t incarnation = env_.random.Next64() | 1;
  rpc_ = std::make_unique<RpcEndpoint>(scheduler_, process_, env_.network,
                                       env_.node_id, RpcOptions{incarnation});
  replica_ = std::make_unique<ReplicaService>(store_.get(), &hlc_, rpc_.get(),
                                              scheduler_, &env_, options_.replica);
  coordinator_ = std::make_unique<Coordinator>(
      scheduler_, process_, rpc_.get(), replica_.get(), &hlc_,
      [this]() -> const Ring& { return ring_; },
      [this] { return NextTimestamp(); }, options_.coordinator);
  RegisterClientMethods();
}

Node::~Node() = default;

Status Node::Recover() {
  std::string stored;
  Status read = env_.disk->Get(kCeilingKey, &stored);
  if (read.IsNotFound()) return Status::Ok();
  MKS_RETURN_IF_ERROR(read);
  Result<uint64_t> ceiling_ms = DecodeCeiling(stored);
  MKS_RETURN_IF_ERROR(ceiling_ms.status());
  ceiling_ms_ = *ceiling_ms;
  // Every timestamp issued before the crash is below the ceiling, so
  // starting at it keeps this incarnation's timestamps above all of them.
  hlc_.AdvanceTo(Timestamp{ceiling_ms_, 0});
  return Status::Ok();
}

Result<Timestamp> Node::NextTimestamp() {
  const Timestamp stamp = hlc_.Now();
  if (stamp.physical_ms < ceiling_ms_) return stamp;
  const uint64_t raised_ms = stamp.physical_ms + options_.timestamp_ceiling_step_ms;
  MKS_RETURN_IF_ERROR(env_.disk->Put(kCeilingKey, EncodeCeiling(raised_ms),
                                     WriteOptions{.sync = true}));
  ceiling_ms_ = raised_ms;
  ++stats_.ceiling_raises;
  MKS_ASSERT_LT(stamp.physical_ms, ceiling_ms_);
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
