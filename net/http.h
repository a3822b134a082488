// HTTP/1.1 for the client front-end: an incremental request parser built on
// Boost.Beast's parser (header-only, from Debian's libboost-dev), and a
// response writer.
//
// The parser takes bytes as they arrive and yields complete requests, so one
// connection can carry many (keep-alive, and pipelined requests, which Beast
// parses one after another). Header and body sizes are capped before the
// bytes are buffered; an over-limit or malformed request yields an error
// carrying the status code to answer with, after which the connection
// should be closed.
//
// Pure code: no I/O. Beast stays inside http.cpp.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/status.h"

namespace mks::net::http {

struct Limits {
  size_t max_header_bytes = 16 * 1024;        // request line plus headers
  size_t max_body_bytes = 64 * 1024 * 1024;   // after chunked decoding
};

using Headers = std::vector<std::pair<std::string, std::string>>;

struct Request {
  std::string method;  // as sent, e.g. "GET"
  std::string target;  // as sent, e.g. "/v1/kv/a%20b?consistency=quorum"
  unsigned version = 11;  // 10 for HTTP/1.0, 11 for HTTP/1.1
  Headers headers;        // in the order received
  std::string body;
  // Whether the client lets the connection carry another request after this
  // one: HTTP/1.1 unless "Connection: close", HTTP/1.0 only with
  // "Connection: keep-alive".
  bool keep_alive = true;

  // The first header named `name` (case-insensitive), or nullopt.
  std::optional<std::string_view> Header(std::string_view name) const;
  // The target before '?', still percent-encoded.
  std::string_view path() const;
  // The target after '?', or empty.
  std::string_view query() const;
};

class RequestParser {
 public:
  explicit RequestParser(Limits limits = {});
  ~RequestParser();
  RequestParser(const RequestParser&) = delete;
  RequestParser& operator=(const RequestParser&) = delete;

  // Appends bytes received from the client.
  void Feed(std::string_view bytes);

  // Returns the next complete request, std::nullopt when more bytes are
  // needed, or InvalidArgument describing a malformed or over-limit request.
  // After an error every later call returns the same error; error_status()
  // tells the response to send before closing.
  Result<std::optional<Request>> Next();

  // True once per request whose complete header asks "Expect: 100-continue"
  // while its body has yet to arrive: the server should send an interim
  // "100 Continue" now, or the client waits before sending the body. Clears
  // the flag.
  bool TakeExpectContinue();

  // After an error: 431 (headers too large), 413 (body too large) or 400.
  int error_status() const { return error_status_; }
  // Bytes fed and not yet consumed by returned requests.
  size_t buffered_bytes() const { return buffer_.size() - consumed_; }

 private:
  struct BeastParser;  // Boost.Beast's request_parser, kept out of this header
  void StartRequest();
  void CheckExpect();
  Status Fail(int status, std::string message);

  const Limits limits_;
  std::unique_ptr<BeastParser> parser_;  // the request being parsed
  // Invariant: consumed_ <= buffer_.size(); bytes before consumed_ have been
  // taken by the parser and are dropped lazily.
  std::string buffer_;
  size_t consumed_ = 0;
  Status error_;  // sticky
  int error_status_ = 0;
  // For the request being parsed: whether its header was inspected for
  // Expect, and whether a 100 Continue is owed.
  bool expect_checked_ = false;
  bool expect_continue_ = false;
};

struct Response {
  int status = 200;
  Headers headers;  // e.g. {"Content-Type", "application/json"}
  std::string body;
};

// Appends `response` to *out as HTTP/1.1 (or 1.0 when `version` is 10), with
// the standard reason phrase, Content-Length, and a Connection header that
// tells the client whether the connection stays open (`keep_alive`). Requires
// header names and values free of CR and LF; Content-Length and Connection
// must not be among `response.headers`.
void AppendResponse(const Response& response, unsigned version, bool keep_alive,
                    std::string* out);

// Decodes %XX escapes (and nothing else: '+' stays '+', as in paths).
// Returns InvalidArgument for a truncated or non-hex escape.
Result<std::string> PercentDecode(std::string_view text);

// The decoded value of the first `name=value` pair of a query string
// (form-style: '+' means space), "" for a bare `name`, or nullopt when absent
// or undecodable.
std::optional<std::string> QueryParameter(std::string_view query,
                                          std::string_view name);

}  // namespace mks::net::http
