// The HTTP/1.1 front-end's routes. ServeHttp (net/sessions.h) owns the
// protocol loop (keep-alive, limits, malformed requests); this answers one
// parsed request.
//
//   GET    /v1/kv/{key}[?consistency=L]  200 with the raw value
//                                        (application/octet-stream) and
//                                        X-Mks-Version "<ms>.<logical>@<node>";
//                                        404 when not found
//   PUT    /v1/kv/{key}[?consistency=L]  the body is the value; 200 with
//                                        JSON {"acks":n,"version":"..."}
//   DELETE /v1/kv/{key}[?consistency=L]  200 with JSON as PUT
//   GET    /v1/status                    JSON summary of the node
//   GET    /v1/members                   JSON list of members
//   GET    /v1/ring                      JSON ring: epoch, Q, N, preference
//                                        lists
//   GET    /metrics                      Prometheus text format 0.0.4
//   GET    /healthz                      200 while the process serves
//   GET    /readyz                       200 when a quorum is reachable, 503
//                                        otherwise
//
// {key} is percent-decoded, so any bytes can be a key. L is ONE, QUORUM,
// ALL, DEFAULT or a count. Errors are JSON {"error": "..."}: 400 for bad
// input (an unparsable consistency, an empty or oversized key or value),
// 404 for unknown paths, 405 (with Allow) for a method a path does not
// take, 503 when the quorum was not reached, 504 on a timeout, 500
// otherwise.
#pragma once

#include <string>
#include <string_view>

#include "net/http.h"
#include "net/kv_backend.h"

namespace mks::net {

class HttpFrontEnd {
 public:
  // `backend` must outlive the front-end.
  explicit HttpFrontEnd(KvBackend* backend);

  // Answers `request`. Runs in the connection's fiber (it may wait on the
  // backend). Never fails: every failure is an error response.
  http::Response Handle(const http::Request& request);

 private:
  http::Response HandleKey(const http::Request& request, std::string key);
  http::Response Status() const;
  http::Response Members() const;
  http::Response Cluster() const;
  // POST /v1/cluster/remove[?node=N][&force=true]: removes N (this node
  // when none is named).
  http::Response Remove(const http::Request& request);
  http::Response RingJson() const;
  http::Response Metrics() const;

  KvBackend* const backend_;
};

// `text` as a JSON string literal, quotes included. Bytes outside printable
// ASCII are escaped as \u00XX (each byte as one code point), so any bytes
// give valid JSON.
std::string JsonString(std::string_view text);

}  // namespace mks::net
