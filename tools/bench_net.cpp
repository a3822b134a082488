// Throughput of the production network pieces: RESP and HTTP parsing, frame
// coding, and the TCP transport over loopback. Figures, not tests:
//   ./dev.sh bench, or build-release/tools/bench-net
#include <benchmark/benchmark.h>

#include <string>

#include "core/assertions.h"
#include "net/frame.h"
#include "net/http.h"
#include "net/resp.h"
#include "net/sessions.h"
#include "net/stream_server.h"
#include "net/system_clock.h"
#include "net/tcp_transport.h"

namespace mks::net {
namespace {

constexpr int kBatch = 1000;
const std::string kValue(100, 'v');

void BM_RespParsePipelinedSet(benchmark::State& state) {
  std::string stream;
  for (int index = 0; index < kBatch; ++index) {
    resp::AppendCommand(&stream, {"SET", "key:" + std::to_string(index), kValue});
  }
  for (auto _ : state) {
    resp::Parser parser;
    parser.Feed(stream);
    int parsed = 0;
    for (;;) {
      Result<std::optional<resp::Command>> next = parser.Next();
      MKS_ASSERT(next.ok());
      if (!next->has_value()) break;
      ++parsed;
    }
    MKS_ASSERT_EQ(parsed, kBatch);
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(stream.size()));
}
BENCHMARK(BM_RespParsePipelinedSet);

void BM_HttpParsePipelinedGet(benchmark::State& state) {
  std::string stream;
  for (int index = 0; index < kBatch; ++index) {
    stream += "GET /v1/kv/key:" + std::to_string(index) +
              "?consistency=quorum HTTP/1.1\r\nHost: localhost\r\n"
              "User-Agent: bench\r\nAccept: */*\r\n\r\n";
  }
  for (auto _ : state) {
    http::RequestParser parser;
    parser.Feed(stream);
    int parsed = 0;
    for (;;) {
      Result<std::optional<http::Request>> next = parser.Next();
      MKS_ASSERT(next.ok());
      if (!next->has_value()) break;
      ++parsed;
    }
    MKS_ASSERT_EQ(parsed, kBatch);
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(stream.size()));
}
BENCHMARK(BM_HttpParsePipelinedGet);

void BM_FrameEncodeDecode(benchmark::State& state) {
  for (auto _ : state) {
    std::string stream;
    for (int index = 0; index < kBatch; ++index) AppendFrame(1, kValue, &stream);
    FrameDecoder decoder(1 << 20);
    decoder.Feed(stream);
    int decoded = 0;
    for (;;) {
      Result<std::optional<Frame>> next = decoder.Next();
      MKS_ASSERT(next.ok());
      if (!next->has_value()) break;
      ++decoded;
    }
    MKS_ASSERT_EQ(decoded, kBatch);
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
}
BENCHMARK(BM_FrameEncodeDecode);

// 100-byte messages from one transport to another over 127.0.0.1, batches
// of 1000 in flight, one reactor driving both ends.
void BM_TransportLoopback(benchmark::State& state) {
  SystemClock clock;
  runtime::Scheduler scheduler(&clock);
  std::unique_ptr<Reactor> reactor = Reactor::Create(&scheduler).value();
  const runtime::ProcessId process = scheduler.CreateProcess("bench");
  Result<FileDescriptor> listen_a = ListenTcp({"127.0.0.1", 0});
  Result<FileDescriptor> listen_b = ListenTcp({"127.0.0.1", 0});
  MKS_ASSERT(listen_a.ok() && listen_b.ok());
  std::map<NodeId, SocketAddress> peers = {
      {1, {"127.0.0.1", *LocalPort(listen_a->get())}},
      {2, {"127.0.0.1", *LocalPort(listen_b->get())}}};
  auto a = TcpTransport::CreateWithListener(
      reactor.get(), process, 1, peers, std::move(*listen_a)).value();
  auto b = TcpTransport::CreateWithListener(
      reactor.get(), process, 2, peers, std::move(*listen_b)).value();
  uint64_t received = 0;
  b->SetHandler([&](NodeId, std::string) { ++received; });
  for (auto _ : state) {
    const uint64_t target = received + kBatch;
    for (int index = 0; index < kBatch; ++index) MKS_ASSERT(a->Send(2, kValue).ok());
    Result<bool> done =
        reactor->RunUntil([&] { return received == target; }, 10'000'000'000);
    MKS_ASSERT(done.ok() && *done);
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
  state.SetBytesProcessed(state.iterations() * kBatch * int64_t{100});
}
BENCHMARK(BM_TransportLoopback)->UseRealTime();

// PING through StreamServer + ServeResp over 127.0.0.1, one client, with
// state.range(0) commands pipelined per round trip (1: pure latency).
void BM_RespPingRoundTrip(benchmark::State& state) {
  const int pipeline = static_cast<int>(state.range(0));
  SystemClock clock;
  runtime::Scheduler scheduler(&clock);
  std::unique_ptr<Reactor> reactor = Reactor::Create(&scheduler).value();
  const runtime::ProcessId process = scheduler.CreateProcess("bench");
  std::unique_ptr<StreamServer> server =
      StreamServer::Listen(reactor.get(), process, {"127.0.0.1", 0},
                           [](ClientStream& stream) {
                             ServeResp(stream, [](const resp::Command&, std::string* reply) {
                               resp::AppendSimpleString(reply, "PONG");
                               return AfterReply::kContinue;
                             }).IgnoreError();
                           })
          .value();
  size_t received_bytes = 0;
  ConnectionHandlers handlers;
  handlers.on_data = [&](std::string_view bytes) { received_bytes += bytes.size(); };
  std::unique_ptr<Connection> client =
      Connection::Connect(reactor.get(), {"127.0.0.1", server->port()}, std::move(handlers))
          .value();
  std::string batch;
  for (int index = 0; index < pipeline; ++index) resp::AppendCommand(&batch, {"PING"});
  const size_t reply_bytes = 7 * static_cast<size_t>(pipeline);  // "+PONG\r\n"
  for (auto _ : state) {
    const size_t target = received_bytes + reply_bytes;
    client->Write(batch);
    Result<bool> done =
        reactor->RunUntil([&] { return received_bytes >= target; }, 10'000'000'000);
    MKS_ASSERT(done.ok() && *done);
  }
  state.SetItemsProcessed(state.iterations() * pipeline);
  client.reset();
  server.reset();
  // Lets the handler fibers see the shutdown and end before the scheduler goes.
  reactor->RunUntil([] { return false; }, 1'000'000).status().IgnoreError();
}
// Wall time: most of a round trip is the kernel and waiting, not our CPU.
BENCHMARK(BM_RespPingRoundTrip)->Arg(1)->Arg(16)->Arg(256)->UseRealTime();

}  // namespace
}  // namespace mks::net

BENCHMARK_MAIN();
