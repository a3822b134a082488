#include "core/rpc.h"

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "core/loopback_network_for_test.h"
#include "core/proto/mks.pb.h"
#include "core/runtime/manual_clock.h"

namespace mks {
namespace {

using runtime::Future;
using runtime::ProcessId;

constexpr int64_t kMs = 1000000;
constexpr NodeId kClient = 1;
constexpr NodeId kServer = 2;
constexpr NodeId kBystander = 3;

class RpcTest : public ::testing::Test {
 protected:
  RpcTest() {
    hub_.NetworkOf(kBystander);
    client_ = std::make_unique<RpcEndpoint>(&scheduler_, client_process_,
                                            hub_.NetworkOf(kClient), kClient,
                                            RpcOptions{0x1111});
    server_ = std::make_unique<RpcEndpoint>(&scheduler_, server_process_,
                                            hub_.NetworkOf(kServer), kServer,
                                            RpcOptions{0x2222});
    server_->RegisterHandler("echo", [](RpcRequest request) {
      return Result<std::string>("echo:" + request.payload);
    });
    server_->RegisterHandler("slow", [this](RpcRequest request) {
      scheduler_.SleepFor(2000 * kMs);
      return Result<std::string>("slow:" + request.payload);
    });
  }

  // Runs fibers, delivers messages and fires timers (jumping the clock)
  // until nothing is left to do.
  void Settle() {
    for (;;) {
      scheduler_.RunReady();
      if (hub_.DeliverAll() > 0) continue;
      const std::optional<int64_t> next = scheduler_.NextDeadlineNanos();
      if (!next) return;
      if (*next > clock_.MonotonicNanos()) clock_.AdvanceTo(*next);
      scheduler_.FireNextTimer();
    }
  }

  // Runs ready fibers and delivers messages without letting time pass.
  void SettleWithoutTime() {
    do {
      scheduler_.RunReady();
    } while (hub_.DeliverAll() > 0);
  }

  // Delivers the queued requests and runs their handlers, then takes the
  // replies off the network instead of delivering them.
  std::vector<LoopbackHub::Message> ServeAndHoldReplies() {
    hub_.DeliverAll();
    scheduler_.RunReady();
    return hub_.TakeAll();
  }

  static Result<std::string> Take(Future<std::string>& future) {
    EXPECT_TRUE(future.IsReady());
    if (!future.IsReady()) return Status::Internal("not ready");
    return future.Get();
  }

  runtime::ManualClock clock_;
  runtime::Scheduler scheduler_{&clock_};
  LoopbackHub hub_;
  ProcessId client_process_ = scheduler_.CreateProcess("client");
  ProcessId server_process_ = scheduler_.CreateProcess("server");
  std::unique_ptr<RpcEndpoint> client_;
  std::unique_ptr<RpcEndpoint> server_;
};

TEST_F(RpcTest, RoundTripFromAFiber) {
  NodeId seen_from = kNoNode;
  int64_t seen_deadline_ns = 0;
  server_->RegisterHandler("who", [&](RpcRequest request) {
    seen_from = request.from;
    seen_deadline_ns = request.deadline_ns;
    return Result<std::string>(request.method + "/" + request.payload);
  });
  Future<std::string> done = scheduler_.Spawn(client_process_, "caller", [&] {
    Result<std::string> reply =
        client_->CallAndWait(kServer, "who", "hello", 500 * kMs);
    return reply.ok() ? *reply : reply.status().ToString();
  });
  Settle();
  EXPECT_EQ(*Take(done), "who/hello");
  EXPECT_EQ(seen_from, kClient);
  EXPECT_EQ(seen_deadline_ns, 500 * kMs);  // arrival at time 0 + timeout
  EXPECT_EQ(client_->stats().calls_succeeded, 1u);
  EXPECT_EQ(server_->stats().requests_received, 1u);
  EXPECT_EQ(client_->pending_call_count(), 0u);
  EXPECT_EQ(scheduler_.timer_count(), 0u);  // the deadline timer was cancelled
}

TEST_F(RpcTest, ManyConcurrentCallsEachGetTheirOwnReply) {
  std::vector<Future<std::string>> calls;
  for (int i = 0; i < 50; ++i) {
    calls.push_back(client_->Call(kServer, "echo", std::to_string(i), 100 * kMs));
  }
  Settle();
  for (int i = 0; i < 50; ++i) {
    EXPECT_EQ(*Take(calls[i]), "echo:" + std::to_string(i));
  }
  EXPECT_EQ(client_->stats().replies_matched, 50u);
}

TEST_F(RpcTest, TimeoutNamesPeerAndMethod) {
  Future<std::string> call = client_->Call(kServer, "slow", "x", 1000 * kMs);
  Settle();
  Result<std::string> reply = Take(call);
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(reply.status().code(), StatusCode::kTimedOut);
  EXPECT_NE(reply.status().message().find("'slow'"), std::string::npos);
  EXPECT_NE(reply.status().message().find("node 2"), std::string::npos);
  EXPECT_EQ(client_->stats().calls_timed_out, 1u);
  // The handler finished at 2 s, after its 1 s deadline: no reply was sent.
  EXPECT_EQ(server_->stats().replies_skipped_past_deadline, 1u);
  EXPECT_EQ(client_->stats().replies_stale, 0u);
}

TEST_F(RpcTest, LateReplyIsCountedAndNeverCompletesANewerCall) {
  Future<std::string> first = client_->Call(kServer, "echo", "first", 10 * kMs);
  std::vector<LoopbackHub::Message> held = ServeAndHoldReplies();
  ASSERT_EQ(held.size(), 1u);
  Settle();  // the deadline passes
  EXPECT_EQ(Take(first).status().code(), StatusCode::kTimedOut);

  Future<std::string> second = client_->Call(kServer, "echo", "second", 10 * kMs);
  hub_.Deliver(std::move(held[0]));  // the first call's reply, late
  EXPECT_EQ(client_->stats().replies_stale, 1u);
  EXPECT_FALSE(second.IsReady());
  Settle();
  EXPECT_EQ(*Take(second), "echo:second");
}

TEST_F(RpcTest, DuplicatedReplyIsCountedAndDropped) {
  Future<std::string> call = client_->Call(kServer, "echo", "once", 10 * kMs);
  std::vector<LoopbackHub::Message> held = ServeAndHoldReplies();
  ASSERT_EQ(held.size(), 1u);
  hub_.queue().push_back(held[0]);
  hub_.queue().push_back(held[0]);
  Settle();
  EXPECT_EQ(*Take(call), "echo:once");
  EXPECT_EQ(client_->stats().replies_matched, 1u);
  EXPECT_EQ(client_->stats().replies_stale, 1u);
}

TEST_F(RpcTest, DuplicatedRequestRunsTheHandlerTwiceButCompletesOnce) {
  int runs = 0;
  server_->RegisterHandler("count", [&](RpcRequest) {
    ++runs;
    return Result<std::string>(std::to_string(runs));
  });
  Future<std::string> call = client_->Call(kServer, "count", "", 10 * kMs);
  std::vector<LoopbackHub::Message> request = hub_.TakeAll();
  ASSERT_EQ(request.size(), 1u);
  hub_.queue().push_back(request[0]);
  hub_.queue().push_back(request[0]);
  Settle();
  EXPECT_EQ(runs, 2);
  EXPECT_EQ(*Take(call), "1");
  EXPECT_EQ(client_->stats().replies_stale, 1u);
}

TEST_F(RpcTest, UnknownMethodIsAnsweredWithAnError) {
  Future<std::string> call = client_->Call(kServer, "no.such", "", 10 * kMs);
  Settle();
  Result<std::string> reply = Take(call);
  EXPECT_EQ(reply.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(reply.status().message().find("no.such"), std::string::npos);
  EXPECT_EQ(server_->stats().requests_unknown_method, 1u);
  EXPECT_EQ(client_->stats().calls_failed_remotely, 1u);
}

TEST_F(RpcTest, HandlerErrorIsPropagatedWithItsCode) {
  server_->RegisterHandler("fail", [](RpcRequest request) {
    return Result<std::string>(
        Status::Corruption("checksum mismatch for " + request.payload));
  });
  Future<std::string> call = client_->Call(kServer, "fail", "key7", 10 * kMs);
  Settle();
  Result<std::string> reply = Take(call);
  EXPECT_EQ(reply.status().code(), StatusCode::kCorruption);
  EXPECT_NE(reply.status().message().find("checksum mismatch for key7"),
            std::string::npos);
  EXPECT_NE(reply.status().message().find("node 2"), std::string::npos);
}

TEST_F(RpcTest, UnknownWireErrorCodeBecomesInternal) {
  Future<std::string> call = client_->Call(kServer, "echo", "", 10 * kMs);
  hub_.TakeAll();  // the request never arrives
  proto::RpcEnvelope reply;
  reply.set_request_id(1);
  reply.set_caller_incarnation(0x1111);
  reply.set_is_response(true);
  reply.set_error_code(200);
  reply.set_error_message("from the future");
  hub_.Inject(kServer, kClient, reply.SerializeAsString());
  Settle();
  EXPECT_EQ(Take(call).status().code(), StatusCode::kInternal);
}

TEST_F(RpcTest, MalformedBytesAreCountedAndDropped) {
  // Garbage, and envelopes that parse but break the wire rules.
  std::vector<std::string> junk = {"", std::string("\xff\xff\xff", 3),
                                   std::string(1, '\0'), "not protobuf"};
  Random random(17);
  for (int i = 0; i < 200; ++i) {
    std::string bytes(random.Uniform(40), '\0');
    for (char& c : bytes) c = static_cast<char>(random.Next64());
    junk.push_back(bytes);
  }
  proto::RpcEnvelope no_id;
  no_id.set_caller_incarnation(5);
  no_id.set_method("echo");
  no_id.set_timeout_ns(kMs);
  junk.push_back(no_id.SerializeAsString());
  proto::RpcEnvelope no_method;
  no_method.set_request_id(9);
  no_method.set_caller_incarnation(5);
  no_method.set_timeout_ns(kMs);
  junk.push_back(no_method.SerializeAsString());
  proto::RpcEnvelope no_timeout = no_id;
  no_timeout.set_request_id(9);
  no_timeout.set_timeout_ns(-1);
  junk.push_back(no_timeout.SerializeAsString());
  for (const std::string& bytes : junk) {
    hub_.Inject(kBystander, kServer, bytes);
    hub_.Inject(kBystander, kClient, bytes);
  }
  Settle();
  const RpcStats& server = server_->stats();
  const RpcStats& client = client_->stats();
  EXPECT_GE(server.malformed_dropped, 7u);  // the fixed cases at least
  // Every message landed in some bucket, and no junk ran a handler twice.
  EXPECT_EQ(server.malformed_dropped + server.replies_stale +
                server.requests_received + server.requests_unknown_method,
            junk.size());
  EXPECT_EQ(client.malformed_dropped + client.replies_stale +
                client.requests_received + client.requests_unknown_method,
            junk.size());
  EXPECT_EQ(scheduler_.fiber_failures(), 0u);
  // The endpoints still work.
  Future<std::string> call = client_->Call(kServer, "echo", "ok", 10 * kMs);
  Settle();
  EXPECT_EQ(*Take(call), "echo:ok");
}

TEST_F(RpcTest, ReplyFromAnotherNodeIsDropped) {
  Future<std::string> call = client_->Call(kServer, "echo", "", 10 * kMs);
  std::vector<LoopbackHub::Message> held = ServeAndHoldReplies();
  ASSERT_EQ(held.size(), 1u);
  hub_.Inject(kBystander, kClient, held[0].bytes);  // same bytes, wrong sender
  SettleWithoutTime();
  EXPECT_EQ(client_->stats().replies_from_wrong_node, 1u);
  EXPECT_FALSE(call.IsReady());
  hub_.Deliver(std::move(held[0]));
  EXPECT_EQ(*Take(call), "echo:");
}

TEST_F(RpcTest, SendRefusedByTheNetworkFailsTheCallAtOnce) {
  Future<std::string> call = client_->Call(99, "echo", "", 10 * kMs);
  ASSERT_TRUE(call.IsReady());
  EXPECT_EQ(call.Get().status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(client_->stats().calls_send_failed, 1u);
  EXPECT_EQ(client_->pending_call_count(), 0u);
  EXPECT_EQ(scheduler_.timer_count(), 0u);
}

TEST_F(RpcTest, RequestIdsAreNeverReused) {
  std::vector<uint64_t> ids;
  for (int i = 0; i < 5; ++i) {
    Future<std::string> call = client_->Call(kServer, "echo", "", 10 * kMs);
    for (const LoopbackHub::Message& message : hub_.TakeAll()) {
      proto::RpcEnvelope envelope;
      ASSERT_TRUE(envelope.ParseFromString(message.bytes));
      ids.push_back(envelope.request_id());
    }
    Settle();  // times out: the request was taken
    EXPECT_EQ(Take(call).status().code(), StatusCode::kTimedOut);
  }
  EXPECT_EQ(ids, (std::vector<uint64_t>{1, 2, 3, 4, 5}));
}

TEST_F(RpcTest, ReplyToAnEarlierIncarnationDoesNotCompleteANewCall) {
  Future<std::string> old_call = client_->Call(kServer, "echo", "old", 10 * kMs);
  std::vector<LoopbackHub::Message> old_reply = ServeAndHoldReplies();
  ASSERT_EQ(old_reply.size(), 1u);
  // The client node restarts: new process, new endpoint, new incarnation,
  // request ids starting again at 1.
  scheduler_.Kill(client_process_);
  client_.reset();
  EXPECT_EQ(Take(old_call).status().code(), StatusCode::kCancelled);
  const ProcessId restarted = scheduler_.CreateProcess("client-2");
  client_ = std::make_unique<RpcEndpoint>(&scheduler_, restarted,
                                          hub_.NetworkOf(kClient), kClient,
                                          RpcOptions{0x3333});
  Future<std::string> new_call = client_->Call(kServer, "echo", "new", 10 * kMs);
  std::vector<LoopbackHub::Message> new_request = hub_.TakeAll();
  hub_.Deliver(std::move(old_reply[0]));
  EXPECT_EQ(client_->stats().replies_stale, 1u);
  EXPECT_FALSE(new_call.IsReady());
  hub_.Deliver(std::move(new_request[0]));
  Settle();
  EXPECT_EQ(*Take(new_call), "echo:new");
}

TEST_F(RpcTest, KillingTheCallerWithCallsPendingWakesNothingAndLeaksNothing) {
  int finished = 0;
  for (int i = 0; i < 3; ++i) {
    (void)scheduler_.Spawn(client_process_, "caller", [&] {
      Result<std::string> reply =
          client_->CallAndWait(kServer, "slow", "", 5000 * kMs);
      ++finished;  // must never run: the process dies first
      return reply.ok();
    });
  }
  // A call made outside any fiber, whose future a test fiber of another
  // process would see fail rather than hang.
  Future<std::string> outside = client_->Call(kServer, "slow", "", 5000 * kMs);
  SettleWithoutTime();
  EXPECT_EQ(client_->pending_call_count(), 4u);
  scheduler_.Kill(client_process_);
  Settle();  // the server's handlers finish and reply to a dead node
  EXPECT_EQ(finished, 0);
  EXPECT_GE(client_->stats().dropped_after_death, 1u);
  EXPECT_EQ(client_->pending_call_count(), 0u);
  EXPECT_EQ(client_->stats().calls_cancelled, 4u);
  EXPECT_EQ(client_->stats().calls_timed_out, 0u);
  EXPECT_EQ(Take(outside).status().code(), StatusCode::kCancelled);
  // A dead node's endpoint refuses new calls.
  Future<std::string> refused = client_->Call(kServer, "echo", "", 10 * kMs);
  EXPECT_EQ(Take(refused).status().code(), StatusCode::kCancelled);
  client_.reset();
  EXPECT_EQ(scheduler_.fiber_count(), 0u);
  EXPECT_EQ(scheduler_.timer_count(), 0u);
}

TEST_F(RpcTest, DestroyingADeadEndpointBeforeAnyMessageReleasesItsCalls) {
  Future<std::string> call = client_->Call(kServer, "slow", "", 5000 * kMs);
  scheduler_.Kill(client_process_);
  client_.reset();  // releases the pending call; the network handler goes inert
  EXPECT_EQ(Take(call).status().code(), StatusCode::kCancelled);
  Settle();  // the reply reaches an inert handler
  EXPECT_EQ(scheduler_.fiber_count(), 0u);
}

TEST_F(RpcTest, KillingTheServerMidHandlerLetsTheCallTimeOut) {
  Future<std::string> call = client_->Call(kServer, "slow", "", 1000 * kMs);
  SettleWithoutTime();  // the handler is asleep in its fiber
  EXPECT_EQ(scheduler_.fiber_count(), 1u);
  scheduler_.Kill(server_process_);
  EXPECT_EQ(scheduler_.fiber_count(), 0u);
  server_.reset();  // allowed: its handler fiber is gone
  Settle();
  EXPECT_EQ(Take(call).status().code(), StatusCode::kTimedOut);
}

// Under any mix of delivery, loss, duplication and delay, every call ends
// exactly once, either with the reply to its own request or with TimedOut,
// and nothing stays pending.
RC_GTEST_PROP(RpcProperty, EveryCallEndsOnceWithItsOwnReplyOrATimeout, ()) {
  const uint64_t seed = *rc::gen::arbitrary<uint64_t>();
  const int call_count = *rc::gen::inRange(1, 25);
  Random random(seed);
  runtime::ManualClock clock;
  runtime::Scheduler scheduler(&clock);
  LoopbackHub hub;
  const ProcessId client_process = scheduler.CreateProcess("client");
  const ProcessId server_process = scheduler.CreateProcess("server");
  RpcEndpoint client(&scheduler, client_process, hub.NetworkOf(kClient),
                     kClient, RpcOptions{0x1111});
  RpcEndpoint server(&scheduler, server_process, hub.NetworkOf(kServer),
                     kServer, RpcOptions{0x2222});
  Random handler_random = random.Split("handler");
  server.RegisterHandler("echo", [&](RpcRequest request) {
    scheduler.SleepFor(static_cast<int64_t>(handler_random.Uniform(20)) * kMs);
    return Result<std::string>("echo:" + request.payload);
  });
  std::vector<Future<std::string>> calls;
  std::vector<LoopbackHub::Message> held;
  for (int i = 0; i < call_count; ++i) {
    const int64_t timeout_ns = (1 + static_cast<int64_t>(random.Uniform(40))) * kMs;
    calls.push_back(client.Call(kServer, "echo", std::to_string(i), timeout_ns));
  }
  for (int step = 0; step < 400; ++step) {
    for (LoopbackHub::Message& message : hub.TakeAll()) {
      switch (random.Uniform(4)) {
        case 0: hub.Deliver(std::move(message)); break;
        case 1: break;  // lost
        case 2:
          hub.Deliver(message);
          hub.Deliver(std::move(message));
          break;
        default: held.push_back(std::move(message)); break;
      }
    }
    scheduler.RunReady();
    if (!held.empty() && random.Uniform(2) == 0) {
      const size_t index = random.Uniform(held.size());
      hub.queue().push_back(std::move(held[index]));
      held.erase(held.begin() + static_cast<std::ptrdiff_t>(index));
    }
    clock.AdvanceTo(clock.MonotonicNanos() +
                    static_cast<int64_t>(random.Uniform(5)) * kMs);
    while (scheduler.FireNextTimer()) {
    }
  }
  for (LoopbackHub::Message& message : held) hub.queue().push_back(std::move(message));
  for (;;) {
    scheduler.RunReady();
    if (hub.DeliverAll() > 0) continue;
    const std::optional<int64_t> next = scheduler.NextDeadlineNanos();
    if (!next) break;
    if (*next > clock.MonotonicNanos()) clock.AdvanceTo(*next);
    scheduler.FireNextTimer();
  }
  uint64_t succeeded = 0;
  for (int i = 0; i < call_count; ++i) {
    RC_ASSERT(calls[i].IsReady());
    Result<std::string> reply = calls[i].Get();
    if (reply.ok()) {
      RC_ASSERT(*reply == "echo:" + std::to_string(i));
      ++succeeded;
    } else {
      RC_ASSERT(reply.status().code() == StatusCode::kTimedOut);
    }
  }
  RC_TAG(succeeded == 0 ? "no call succeeded"
         : succeeded == static_cast<uint64_t>(call_count) ? "all succeeded"
                                                          : "some succeeded");
  const RpcStats& stats = client.stats();
  RC_TAG(stats.replies_stale > 0 ? "stale replies seen" : "no stale reply");
  RC_ASSERT(stats.calls_succeeded == succeeded);
  RC_ASSERT(stats.calls_succeeded + stats.calls_timed_out ==
            static_cast<uint64_t>(call_count));
  RC_ASSERT(client.pending_call_count() == 0u);
  RC_ASSERT(stats.malformed_dropped == 0u);
  RC_ASSERT(scheduler.fiber_count() == 0u);
}

}  // namespace
}  // namespace mks
