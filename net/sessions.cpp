#include "net/sessions.h"

#include <utility>

#include "core/assertions.h"

namespace mks::net {
namespace {

// Replies of one pipelined batch are written together, but never held back
// beyond this, so a long pipeline streams out instead of piling up.
constexpr size_t kMaxBatchedReplyBytes = 64 * 1024;

// Writes `bytes` and ends the connection; the session is over either way,
// so a failed final write changes nothing.
void WriteAndClose(ClientStream& stream, std::string_view bytes) {
  if (!bytes.empty()) stream.Write(bytes).IgnoreError();
  stream.Close();
}

}  // namespace

Status ServeResp(ClientStream& stream, const RespCommandHandler& handler,
                 const RespSessionOptions& options) {
  MKS_ASSERT(handler != nullptr);
  resp::Parser parser(options.limits);
  std::string replies;
  for (;;) {
    Result<std::string> bytes = stream.Read(options.idle_timeout_ns);
    if (!bytes.ok()) return bytes.status();
    parser.Feed(*bytes);
    for (;;) {
      Result<std::optional<resp::Command>> next = parser.Next();
      if (!next.ok()) {
        resp::AppendError(&replies, "ERR " + next.status().message());
        WriteAndClose(stream, replies);
        return next.status();
      }
      if (!next->has_value()) break;
      const size_t size_before = replies.size();
      const AfterReply after = handler(**next, &replies);
      MKS_ASSERT_GT(replies.size(), size_before);  // every command gets a reply
      if (after == AfterReply::kClose) {
        WriteAndClose(stream, replies);
        return Status::Ok();
      }
      if (replies.size() >= kMaxBatchedReplyBytes) {
        MKS_RETURN_IF_ERROR(stream.Write(replies));
        replies.clear();
      }
    }
    if (!replies.empty()) {
      MKS_RETURN_IF_ERROR(stream.Write(replies));
      replies.clear();
    }
  }
}

namespace {

// Appends the response to `request`; a HEAD response keeps the headers
// (Content-Length included) and drops the body, as RFC 9110 requires.
void AppendResponseTo(const http::Request& request, const http::Response& response,
                      std::string* out) {
  const size_t size_before = out->size();
  http::AppendResponse(response, request.version, request.keep_alive, out);
  if (request.method == "HEAD") out->resize(out->size() - response.body.size());
  MKS_ASSERT_GT(out->size(), size_before);
}

http::Response ErrorResponse(int status, const Status& error) {
  return http::Response{status, {{"Content-Type", "text/plain"}}, error.message() + "\n"};
}

}  // namespace

Status ServeHttp(ClientStream& stream, const HttpRequestHandler& handler,
                 const HttpSessionOptions& options) {
  MKS_ASSERT(handler != nullptr);
  http::RequestParser parser(options.limits);
  std::string out;
  for (;;) {
    Result<std::string> bytes = stream.Read(options.idle_timeout_ns);
    if (!bytes.ok()) return bytes.status();
    parser.Feed(*bytes);
    for (;;) {
      Result<std::optional<http::Request>> next = parser.Next();
      if (!next.ok()) {
        http::AppendResponse(ErrorResponse(parser.error_status(), next.status()), 11,
                             /*keep_alive=*/false, &out);
        WriteAndClose(stream, out);
        return next.status();
      }
      if (!next->has_value()) {
        if (parser.TakeExpectContinue()) out.append("HTTP/1.1 100 Continue\r\n\r\n");
        break;
      }
      const http::Request& request = **next;
      AppendResponseTo(request, handler(request), &out);
      if (!request.keep_alive) {
        WriteAndClose(stream, out);
        return Status::Ok();
      }
    }
    if (!out.empty()) {
      MKS_RETURN_IF_ERROR(stream.Write(out));
      out.clear();
    }
  }
}

}  // namespace mks::net
