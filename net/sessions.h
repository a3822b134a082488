// The protocol loops of the client front-ends, without the commands: a RESP
// session and an HTTP session, each serving one ClientStream (one fiber)
// until the client leaves. The node supplies what a command or a request
// does; these loops own parsing, pipelining, limits, error replies,
// keep-alive and idle timeouts, so every front-end behaves the same way on
// bad input: a clear error, then the connection closes, and the node keeps
// serving everyone else.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "core/status.h"
#include "net/http.h"
#include "net/resp.h"
#include "net/stream_server.h"

namespace mks::net {

// What the session does after a command's reply.
enum class AfterReply { kContinue, kClose };

// Executes one command and appends exactly one RESP reply to *reply. Runs in
// the connection's fiber, so it may wait (on the coordinator's futures).
using RespCommandHandler =
    std::function<AfterReply(const resp::Command& command, std::string* reply)>;

struct RespSessionOptions {
  resp::ParserLimits limits;
  int64_t idle_timeout_ns = -1;  // negative: wait for commands forever
};

// Serves RESP on `stream`: replies to pipelined commands in order, writing
// the replies of one batch of received bytes together. A protocol error is
// answered with "-ERR Protocol error: ..." and ends the session, as in
// Redis. Returns OK when the handler asked to close, otherwise why the
// session ended (Unavailable: the client left; TimedOut: idle;
// InvalidArgument: protocol error; Cancelled: server shutdown).
Status ServeResp(ClientStream& stream, const RespCommandHandler& handler,
                 const RespSessionOptions& options = {});

// Answers one request. Runs in the connection's fiber, so it may wait.
using HttpRequestHandler = std::function<http::Response(const http::Request& request)>;

struct HttpSessionOptions {
  http::Limits limits;
  int64_t idle_timeout_ns = 60'000'000'000;  // between requests
};

// Serves HTTP/1.1 on `stream`: one response per request, in order, keeping
// the connection open while the client allows it. Answers "Expect:
// 100-continue" at once so clients do not stall before sending a body. A
// malformed or over-limit request is answered with 400, 413 or 431 and the
// connection closes. Returns OK when the client or the server ended
// keep-alive, otherwise why the session ended (as ServeResp).
Status ServeHttp(ClientStream& stream, const HttpRequestHandler& handler,
                 const HttpSessionOptions& options = {});

}  // namespace mks::net
