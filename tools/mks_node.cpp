// mks-node: one production node. The core Node on the machine's clocks,
// TCP between peers and LevelDB in the data directory, with the RESP and
// HTTP front-ends for clients. Settings come from a YAML file (--config)
// and the command line, which wins; see tools/node_config.h.
//
// Shutdown: SIGTERM or SIGINT stop the event loop (through a signalfd, so
// shutdown is ordinary code); the servers close their connections, and the
// node and LevelDB close. Everything acknowledged was synced, so a restart
// over the same data directory recovers it.
//
// Exit codes: 0 after a signal, 1 when the node cannot start, 2 for bad
// settings.
#include <CLI/CLI.hpp>

#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <ctime>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>

#include "disk/leveldb_disk.h"
#include "net/http_frontend.h"
#include "net/metrics.h"
#include "net/node_backend.h"
#include "net/peer_auth.h"
#include "net/reactor.h"
#include "net/resp_frontend.h"
#include "net/sessions.h"
#include "net/stream_server.h"
#include "net/system_clock.h"
#include "net/tcp_transport.h"
#include "tools/node_config.h"

namespace mks::tools {
namespace {

enum class LogLevel { kDebug, kInfo, kWarn, kError };

// Logs to stderr: "2026-11-24T20:11:36.123Z I node 1: message".
class Logger {
 public:
  bool SetLevel(std::string_view name) {
    if (name == "debug") level_ = LogLevel::kDebug;
    else if (name == "info") level_ = LogLevel::kInfo;
    else if (name == "warn") level_ = LogLevel::kWarn;
    else if (name == "error") level_ = LogLevel::kError;
    else return false;
    return true;
  }
  void set_node(NodeId node) { node_ = node; }

  void Log(LogLevel level, const std::string& message) const {
    if (level < level_) return;
    timespec now{};
    clock_gettime(CLOCK_REALTIME, &now);
    tm utc{};
    gmtime_r(&now.tv_sec, &utc);
    char stamp[32];
    strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &utc);
    static constexpr char kLetters[] = "DIWE";
    std::fprintf(stderr, "%s.%03ldZ %c node %u: %s\n", stamp, now.tv_nsec / 1'000'000,
                 kLetters[static_cast<int>(level)], node_, message.c_str());
  }
  void Info(const std::string& message) const { Log(LogLevel::kInfo, message); }
  void Warn(const std::string& message) const { Log(LogLevel::kWarn, message); }
  void Error(const std::string& message) const { Log(LogLevel::kError, message); }
  void Debug(const std::string& message) const { Log(LogLevel::kDebug, message); }

 private:
  LogLevel level_ = LogLevel::kInfo;
  NodeId node_ = 0;
};

// Logs a member's change of state in this node's gossip view.
void LogChange(const Logger& log, const gossip::MemberChange& change) {
  const gossip::MemberRecord& now = change.after;
  const std::string state(gossip::MemberStateName(now.state));
  std::string what;
  if (!change.before.has_value()) {
    what = "member joined";
  } else if (*change.before == now.state) {
    return;  // a new incarnation of a member alive all along
  } else if (now.state == gossip::MemberState::kAlive) {
    what = "member back";
  } else {
    what = "member " + state;
  }
  log.Info(what + " node=" + std::to_string(change.node) + " state=" + state +
           " incarnation=" + std::to_string(now.incarnation) + " peer=" + now.addresses.peer +
           (now.state == gossip::MemberState::kSuspect || now.state == gossip::MemberState::kDead
                ? " declared_by=" + (change.by_self ? std::string("this node")
                                                    : "node " + std::to_string(now.from))
                : ""));
}

// Logs, at info level, every change of the metadata log's leader and of
// the member list this node holds, as it sees them (polled).
// One line on a transition's progress, at most every kProgressLogNs while
// this node streams or the change runs.
constexpr int64_t kProgressLogNs = 5'000'000'000;

std::string TransitionLine(const Transition& transition) {
  return std::string(transition.kind == Transition::Kind::kJoin ? "join" : "leave") +
         " node=" + std::to_string(transition.node) +
         " epoch=" + std::to_string(transition.begin_epoch) +
         " partitions_moved=" + std::to_string(transition.flipped_at.size()) + "/" +
         std::to_string(transition.changing);
}

void LogClusterChanges(const Node& node, runtime::Scheduler* scheduler, const Logger& log,
                       net::Reactor* reactor) {
  std::optional<NodeId> leader;
  raft::Term term = 0;
  std::string seats;
  uint64_t transition_epoch = 0;
  int64_t progress_logged_ns = 0;
  uint64_t bytes_logged = 0;
  bool was_member = node.cluster().members().Contains(node.id());
  for (;;) {
    const raft::Raft& raft = node.raft();
    if (raft.leader() != leader || (raft.leader().has_value() && raft.term() != term)) {
      leader = raft.leader();
      term = raft.term();
      log.Info("metadata leader=" + (leader.has_value() ? std::to_string(*leader) : "none") +
               " term=" + std::to_string(term) + " role=" + std::string(raft::RoleName(raft.role())));
    }
    const ClusterState& cluster = node.cluster();
    std::string now;
    for (const ClusterMember& member : cluster.seated()) {
      now += (now.empty() ? "" : ",") + std::to_string(member.node) + ":" +
             std::string(MembershipStateName(member.state));
    }
    if (now != seats) {
      seats = now;
      log.Info("members cluster=" + cluster.cluster_id() + " epoch=" +
               std::to_string(cluster.epoch()) + " seats=[" + seats + "]");
    }
    const Transition* transition = cluster.transition();
    const StreamStats& streamed = node.stream().stats();
    const int64_t now_ns = scheduler->NowNanos();
    if (transition != nullptr && transition->begin_epoch != transition_epoch) {
      transition_epoch = transition->begin_epoch;
      log.Info("membership change begun: " + TransitionLine(*transition));
    } else if (transition == nullptr && transition_epoch != 0) {
      transition_epoch = 0;
      log.Info("membership change finished epoch=" + std::to_string(cluster.epoch()));
    }
    const bool streaming = streamed.bytes_pulled != bytes_logged || node.stream().active_transfers() > 0;
    if ((transition != nullptr || streaming) && now_ns - progress_logged_ns >= kProgressLogNs) {
      progress_logged_ns = now_ns;
      const double seconds =
          static_cast<double>(streamed.last_pull_ns - streamed.first_pull_ns) / 1e9;
      const uint64_t rate = seconds > 0 ? static_cast<uint64_t>(
                                              static_cast<double>(streamed.bytes_pulled) / seconds)
                                        : 0;
      log.Info("streaming " + (transition != nullptr ? TransitionLine(*transition) + " " : "") +
               "copied_partitions=" + std::to_string(streamed.partitions_copied) +
               " active=" + std::to_string(node.stream().active_transfers()) +
               " bytes_pulled=" + std::to_string(streamed.bytes_pulled) +
               " rate_bytes_per_s=" + std::to_string(rate) +
               " bytes_served=" + std::to_string(streamed.bytes_served) +
               " partitions_dropped=" + std::to_string(streamed.partitions_dropped) +
               " drops_pending=" + std::to_string(node.stream().pending_drops()));
      bytes_logged = streamed.bytes_pulled;
    }
    const bool member = cluster.members().Contains(node.id());
    was_member = was_member || member;
    // A decommissioned node stops once its leave finished and it dropped
    // what it held: it serves nothing any more.
    if (was_member && node.removed() && node.stream().pending_drops() == 0) {
      log.Info("removed from cluster " + cluster.cluster_id() +
               " and holds no data: stopping");
      reactor->Stop();
      return;
    }
    scheduler->SleepFor(200'000'000);
  }
}

// Everything a running node owns, in construction order; destroyed in
// reverse, so servers go before the node and the node before its disk, and
// the disk (whose writer thread posts to the reactor) before the reactor.
struct RunningNode {
  net::SystemClock clock;
  runtime::Scheduler scheduler{&clock};
  std::unique_ptr<net::Reactor> reactor;
  runtime::ProcessId process = 0;
  std::unique_ptr<disk::LevelDbDisk> disk;
  std::unique_ptr<net::PeerAuth> auth;  // null without a secret
  std::unique_ptr<net::TcpTransport> transport;
  std::unique_ptr<Node> node;
  std::unique_ptr<net::NodeBackend> node_backend;
  std::unique_ptr<net::MeteredKvBackend> backend;
  std::unique_ptr<net::HttpFrontEnd> http_front_end;
  std::unique_ptr<net::StreamServer> resp_server;
  std::unique_ptr<net::StreamServer> http_server;
};

// Limits past what the store accepts, so an oversized value gets the
// store's clear error while input far beyond it is a protocol error.
constexpr size_t kMaxRequestValueBytes = 4 * 1024 * 1024;

Status StartServers(const NodeSettings& settings, const Logger& log,
                    RunningNode* running) {
  net::RespSessionOptions resp_options;
  resp_options.limits.max_bulk_bytes = kMaxRequestValueBytes;
  resp_options.limits.max_command_bytes = 16 * kMaxRequestValueBytes;
  net::KvBackend* backend = running->backend.get();
  Result<std::unique_ptr<net::StreamServer>> resp = net::StreamServer::Listen(
      running->reactor.get(), running->process, {settings.client_host, settings.resp_port},
      [backend, resp_options, &log](net::ClientStream& stream) {
        net::RespConnection connection(backend);
        const Status end = net::ServeResp(
            stream,
            [&connection](const net::resp::Command& command, std::string* reply) {
              return connection.Execute(command, reply);
            },
            resp_options);
        log.Debug("resp connection " + std::to_string(stream.id()) + " ended: " +
                  end.ToString());
      });
  if (!resp.ok()) return Status::IOError("RESP listener: " + resp.status().ToString());
  running->resp_server = std::move(*resp);

  net::HttpSessionOptions http_options;
  http_options.limits.max_body_bytes = kMaxRequestValueBytes;
  net::HttpFrontEnd* front_end = running->http_front_end.get();
  Result<std::unique_ptr<net::StreamServer>> http = net::StreamServer::Listen(
      running->reactor.get(), running->process, {settings.client_host, settings.http_port},
      [front_end, http_options, &log](net::ClientStream& stream) {
        const Status end = net::ServeHttp(
            stream,
            [front_end](const net::http::Request& request) {
              return front_end->Handle(request);
            },
            http_options);
        log.Debug("http connection " + std::to_string(stream.id()) + " ended: " +
                  end.ToString());
      });
  if (!http.ok()) return Status::IOError("HTTP listener: " + http.status().ToString());
  running->http_server = std::move(*http);
  return Status::Ok();
}

Status Start(const NodeSettings& settings, const Logger& log, RunningNode* running) {
  Result<std::map<NodeId, net::SocketAddress>> peers = ParsePeers(settings);
  MKS_RETURN_IF_ERROR(peers.status());
  Result<NodeOptions> options = MakeNodeOptions(settings, *peers);
  MKS_RETURN_IF_ERROR(options.status());

  Result<std::unique_ptr<net::Reactor>> reactor = net::Reactor::Create(&running->scheduler);
  MKS_RETURN_IF_ERROR(reactor.status());
  running->reactor = std::move(*reactor);
  // Before LevelDB starts its thread, so the signals stay on this one.
  MKS_RETURN_IF_ERROR(running->reactor->StopOnSignals({SIGTERM, SIGINT}));
  running->process = running->scheduler.CreateProcess("node");

  Result<std::unique_ptr<disk::LevelDbDisk>> disk = disk::LevelDbDisk::Open(settings.data_dir);
  MKS_RETURN_IF_ERROR(disk.status());
  running->disk = std::move(*disk);
  // Synced writes go to the disk's writer thread, whose outcomes come back
  // through the reactor: the loop keeps serving while the device syncs.
  net::Reactor* const reactor_for_disk = running->reactor.get();
  MKS_RETURN_IF_ERROR(running->disk->StartWriter(
      [reactor_for_disk](runtime::UniqueFunction<void()> task) {
        reactor_for_disk->Post(std::move(task));
      }));

  net::TcpTransportOptions transport_options;
  transport_options.random_seed =
      static_cast<uint64_t>(running->clock.WallMicros()) ^ static_cast<uint64_t>(getpid());
  if (!settings.secret_file.empty()) {
    Result<net::PeerAuth> auth = net::PeerAuth::FromFile(settings.secret_file);
    MKS_RETURN_IF_ERROR(auth.status());
    running->auth = std::make_unique<net::PeerAuth>(std::move(*auth));
    transport_options.auth = running->auth.get();
  } else {
    log.Warn("no secret_file: peer traffic is not authenticated");
  }
  transport_options.on_refusal = [&log](const std::string& what) {
    log.Warn("peer refused reason=\"" + what + "\"");
  };
  // The transport starts with the configured members (and this node); the
  // others it learns from gossip.
  std::map<NodeId, net::SocketAddress> transport_peers = *peers;
  Result<net::SocketAddress> listen = net::ParseSocketAddress(settings.listen);
  MKS_RETURN_IF_ERROR(listen.status());
  transport_peers.emplace(settings.node_id, *listen);
  Result<std::unique_ptr<net::TcpTransport>> transport =
      net::TcpTransport::Create(running->reactor.get(), running->process, settings.node_id,
                                transport_peers, transport_options);
  MKS_RETURN_IF_ERROR(transport.status());
  running->transport = std::move(*transport);

  // The RPC incarnation is drawn from this seed: it must differ across
  // restarts of the node, so it mixes the wall clock and the pid.
  Environment env{settings.node_id, &running->clock, running->transport.get(),
                  running->disk.get(), Random(transport_options.random_seed * 31 + 7)};
  Result<std::unique_ptr<Node>> node =
      Node::Open(*options, env, &running->scheduler, running->process);
  MKS_RETURN_IF_ERROR(node.status());
  running->node = std::move(*node);
  if (gossip::Gossip* gossip = running->node->gossip()) {
    gossip->AddListener([&log](const gossip::MemberChange& change) { LogChange(log, change); });
  }
  Node* const started = running->node.get();
  const std::string& held = started->raft().cluster_id();
  if (settings.bootstrap && !held.empty() && held != options->cluster_id) {
    log.Info("already bootstrapped: this node belongs to cluster " + held);
  } else if (!options->cluster_id.empty() && !held.empty() && held != options->cluster_id) {
    log.Warn("this node belongs to cluster " + held +
             "; the configured peers only create a cluster, so they are ignored (members "
             "come from the cluster)");
  }
  started->set_on_join([&log, started](const Status& joined) {
    if (joined.ok()) {
      log.Info("join accepted: seated in the cluster; its metadata follows from the leader");
    } else if (joined.IsInvalidArgument()) {
      log.Error("join refused: " + joined.ToString());
    } else {
      log.Debug("join not yet accepted (retrying): " + joined.ToString());
    }
  });
  running->scheduler.Spawn(running->process, "log.cluster",
                           [started, running, &log] {
                             LogClusterChanges(*started, &running->scheduler, log,
                                               running->reactor.get());
                           });

  running->node_backend = std::make_unique<net::NodeBackend>(
      running->node.get(), running->transport.get(), &running->clock, *peers);
  running->backend =
      std::make_unique<net::MeteredKvBackend>(running->node_backend.get(), &running->clock);
  running->http_front_end = std::make_unique<net::HttpFrontEnd>(running->backend.get());
  MKS_RETURN_IF_ERROR(StartServers(settings, log, running));
  running->transport->ConnectAll();
  const std::shared_ptr<const Ring> ring = running->node->ring();
  std::string seeds;
  for (const std::string& seed : settings.join) seeds += (seeds.empty() ? "" : ",") + seed;
  log.Info("serving: peers on " + listen->ToString() + ", RESP on " + settings.client_host +
           ":" + std::to_string(running->resp_server->port()) + ", HTTP on " +
           settings.client_host + ":" + std::to_string(running->http_server->port()) +
           ", data in " + settings.data_dir + ", " + std::to_string(peers->size()) +
           " configured members" + (seeds.empty() ? "" : ", joining through " + seeds) +
           (ring == nullptr ? ", owning no data"
                            : ", N=" + std::to_string(ring->replication_factor()) +
                                  " Q=" + std::to_string(ring->partition_count())) +
           " R=" + ToString(options->coordinator.default_read) +
           " W=" + ToString(options->coordinator.default_write));
  return Status::Ok();
}

int Run(const NodeSettings& settings, Logger& log) {
  RunningNode running;
  const Status started = Start(settings, log, &running);
  if (!started.ok()) {
    log.Error("cannot start: " + started.ToString());
    return 1;
  }
  const Status ran = running.reactor->Run();
  if (!ran.ok()) {
    log.Error("event loop failed: " + ran.ToString());
    // The node's fibers go before the node they use.
    running.scheduler.Kill(running.process);
    return 1;
  }
  if (running.reactor->stop_signal() != 0) {
    log.Info("signal " + std::to_string(running.reactor->stop_signal()) + ": shutting down");
  } else {
    log.Info("shutting down");
  }
  // Servers first: their connections end, so no new operation starts.
  running.resp_server.reset();
  running.http_server.reset();
  // A leader hands the metadata log over first, so the others need not
  // wait out an election timeout.
  if (running.node->raft().role() == raft::Role::kLeader) {
    Node* const node = running.node.get();
    bool moved = false;
    auto handed = running.scheduler.Spawn(running.process, "handover", [node, &moved] {
      moved = node->raft().TransferLeadership().ok();
      node->raft().Quiesce();
    });
    const Result<bool> done =
        running.reactor->RunUntil([&handed] { return handed.IsReady(); }, 2'000'000'000);
    log.Info(done.ok() && *done && moved ? "metadata leadership handed over"
                                         : "metadata leadership not handed over");
  }
  // Announce the leave, so members hold this node left at once rather
  // than suspecting it; bounded by the gossip's own wait.
  if (gossip::Gossip* gossip = running.node->gossip()) {
    auto left = running.scheduler.Spawn(running.process, "leave", [gossip] { gossip->Leave(); });
    const Result<bool> done =
        running.reactor->RunUntil([&left] { return left.IsReady(); }, 3'000'000'000);
    log.Info(done.ok() && *done ? "left the cluster" : "leave not acknowledged in time");
  }
  running.scheduler.Kill(running.process);
  running.http_front_end.reset();
  running.backend.reset();
  running.node_backend.reset();
  running.node.reset();
  running.transport.reset();
  running.disk.reset();
  log.Info("stopped");
  return 0;
}

Result<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status::IOError("cannot read " + path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace
}  // namespace mks::tools

int main(int argc, char** argv) {
  using mks::tools::NodeSettings;
  NodeSettings settings;
  std::string config_path;
  CLI::App app{"mks-node: one node of a my-key-store cluster"};
  app.add_option("-c,--config", config_path, "YAML config file (options below override it)")
      ->check(CLI::ExistingFile);
  // Each option's config key, so the file does not override the command line.
  std::vector<std::pair<CLI::Option*, std::string>> keyed = {
      {app.add_option("--id", settings.node_id, "node id (> 0)"), "node_id"},
      {app.add_option("--listen", settings.listen, "peer address host:port"), "listen"},
      {app.add_option("--client-host", settings.client_host, "address for RESP and HTTP"),
       "client_host"},
      {app.add_option("--resp-port", settings.resp_port, "RESP port"), "resp_port"},
      {app.add_option("--http-port", settings.http_port, "HTTP port"), "http_port"},
      {app.add_option("--data-dir", settings.data_dir, "LevelDB directory"), "data_dir"},
      {app.add_option("--peer", settings.peers, "a member, id=host:port (repeat)"), "peers"},
      {app.add_flag("--bootstrap", settings.bootstrap,
                    "create a new cluster of this node alone (first start only)"),
       "bootstrap"},
      {app.add_option("--dead-remove-after-ms", settings.dead_remove_after_ms,
                      "the leader removes a member dead in gossip this long (0: never)"),
       "dead_remove_after_ms"},
      {app.add_flag("--force-join", settings.force_join,
                    "rejoin even though this node was removed from the cluster"),
       "force_join"},
      {app.add_option("--join", settings.join,
                      "seed addresses host:port: join their cluster through them")
           ->delimiter(','),
       "join"},
      {app.add_option("--secret-file", settings.secret_file,
                      "the cluster secret peers must prove"),
       "secret_file"},
      {app.add_option("--gossip-probe-interval-ms", settings.gossip_probe_interval_ms,
                      "SWIM protocol period"),
       "gossip_probe_interval_ms"},
      {app.add_option("--gossip-probe-timeout-ms", settings.gossip_probe_timeout_ms,
                      "ack timeout of a probe"),
       "gossip_probe_timeout_ms"},
      {app.add_option("-N,--replication-factor", settings.replication_factor, "N"),
       "replication_factor"},
      {app.add_option("-R,--read-consistency", settings.read_consistency,
                      "default read level: one, quorum, all, or a count"),
       "read_consistency"},
      {app.add_option("-W,--write-consistency", settings.write_consistency,
                      "default write level"),
       "write_consistency"},
      {app.add_option("-Q,--partitions", settings.partition_count, "partition count"),
       "partition_count"},
      {app.add_option("--timeout-ms", settings.timeout_ms, "per operation"), "timeout_ms"},
      {app.add_option("--max-waiting-puts", settings.max_waiting_puts,
                      "replica puts that may wait for a synced write; more are refused"),
       "max_waiting_puts"},
      {app.add_option("--log-level", settings.log_level, "debug, info, warn, error"),
       "log_level"},
  };
  CLI11_PARSE(app, argc, argv);

  if (!config_path.empty()) {
    std::vector<std::string> given;
    for (const auto& [option, key] : keyed) {
      if (option->count() > 0) given.push_back(key);
    }
    mks::Result<std::string> text = mks::tools::ReadFile(config_path);
    mks::Status applied = text.ok() ? mks::tools::ApplyYaml(*text, given, &settings)
                                    : text.status();
    if (!applied.ok()) {
      std::fprintf(stderr, "mks-node: %s\n", applied.ToString().c_str());
      return 2;
    }
  }
  mks::tools::Logger log;
  if (!log.SetLevel(settings.log_level)) {
    std::fprintf(stderr, "mks-node: unknown log level '%s'\n", settings.log_level.c_str());
    return 2;
  }
  if (settings.data_dir.empty() || settings.listen.empty() || settings.node_id == 0) {
    std::fprintf(stderr, "mks-node: --id, --listen and --data-dir are required\n");
    return 2;
  }
  log.set_node(settings.node_id);
  return mks::tools::Run(settings, log);
}
