// mks: the command-line client. Talks HTTP to any node (every node
// coordinates any request).
//
//   mks [--node host:port] [--consistency L] get KEY
//   mks ... put KEY VALUE        (or put KEY - to read the value from stdin)
//   mks ... del KEY
//   mks ... status | members | ring | cluster
//   mks ... ring --watch            (a line a second on the membership change
//                                    in progress: partitions moved, bytes
//                                    streamed here, rate, time left; until it ends)
//   mks ... remove NODE [--force]   (make a member leave: its data streams
//                                    to the others; --force unseats it at once)
//   mks ... decommission [NODE] [--force]  (make NODE, or the node --node
//                                    names, leave)
//   mks ... join                    (the node --node names, started with
//                                    --join, is being seated and streamed
//                                    to: waits until it is a normal member,
//                                    a progress line a second)
//   Both retry while another membership change runs or the metadata leader
//   changes (up to --retry seconds); --wait then waits until the leave ended.
//
// Exit codes: 0 success, 1 key not found, 2 usage, 3 node unreachable,
// 4 the node answered with an error (printed).
#include <CLI/CLI.hpp>

#include <netdb.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <cstdlib>
#include <iostream>
#include <iterator>
#include <string>

namespace {

constexpr int kExitNotFound = 1;
constexpr int kExitUnreachable = 3;
constexpr int kExitServerError = 4;

struct HttpAnswer {
  int status = 0;
  std::string body;
};

// Percent-encodes everything but unreserved characters (RFC 3986).
std::string PercentEncode(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (std::isalnum(byte) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += c;
    } else {
      out += '%';
      out += kHex[byte >> 4];
      out += kHex[byte & 0xf];
    }
  }
  return out;
}

// Connects to "host:port"; returns the socket or -1 with *error set.
int Connect(const std::string& node, int timeout_s, std::string* error) {
  const size_t colon = node.rfind(':');
  if (colon == std::string::npos) {
    *error = "node address '" + node + "' is not host:port";
    return -1;
  }
  const std::string host = node.substr(0, colon);
  const std::string port = node.substr(colon + 1);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  const int resolved = getaddrinfo(host.c_str(), port.c_str(), &hints, &found);
  if (resolved != 0) {
    *error = "cannot resolve " + node + ": " + gai_strerror(resolved);
    return -1;
  }
  int fd = -1;
  for (addrinfo* at = found; at != nullptr && fd < 0; at = at->ai_next) {
    fd = socket(at->ai_family, at->ai_socktype, at->ai_protocol);
    if (fd < 0) continue;
    timeval timeout{timeout_s, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
    if (connect(fd, at->ai_addr, at->ai_addrlen) != 0) {
      *error = "cannot reach node " + node + ": " + std::strerror(errno);
      close(fd);
      fd = -1;
    }
  }
  freeaddrinfo(found);
  return fd;
}

// One request with "Connection: close"; the answer is everything up to EOF.
bool Request(const std::string& node, int timeout_s, const std::string& method,
             const std::string& target, const std::string& body, HttpAnswer* answer,
             std::string* error) {
  const int fd = Connect(node, timeout_s, error);
  if (fd < 0) return false;
  std::string request = method + " " + target + " HTTP/1.1\r\nHost: " + node +
                        "\r\nConnection: close\r\nContent-Length: " +
                        std::to_string(body.size()) + "\r\n\r\n" + body;
  for (size_t sent = 0; sent < request.size();) {
    const ssize_t n = send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) {
      *error = "sending to " + node + ": " + std::strerror(errno);
      close(fd);
      return false;
    }
    sent += static_cast<size_t>(n);
  }
  std::string received;
  char buffer[65536];
  for (;;) {
    const ssize_t n = recv(fd, buffer, sizeof buffer, 0);
    if (n == 0) break;
    if (n < 0) {
      *error = "reading from " + node + ": " + std::strerror(errno);
      close(fd);
      return false;
    }
    received.append(buffer, static_cast<size_t>(n));
  }
  close(fd);
  const size_t header_end = received.find("\r\n\r\n");
  if (!received.starts_with("HTTP/1.") || received.size() < 12 ||
      header_end == std::string::npos) {
    *error = "node " + node + " did not answer with HTTP";
    return false;
  }
  answer->status = std::atoi(received.substr(9, 3).c_str());
  answer->body = received.substr(header_end + 4);
  return true;
}

// The number after `"field":` in a JSON body; -1 when absent or not a number.
long long JsonNumber(const std::string& body, const std::string& field, size_t from = 0) {
  const std::string needle = "\"" + field + "\":";
  const size_t at = body.find(needle, from);
  if (at == std::string::npos) return -1;
  const char* start = body.c_str() + at + needle.size();
  char* end = nullptr;
  const long long value = std::strtoll(start, &end, 10);
  return end == start ? -1 : value;
}

// `mks ring --watch`: polls /v1/ring every second while a change runs.
int WatchRing(const std::string& node, int timeout_s) {
  long long first_moved = -1;
  time_t first_at = 0;
  for (;;) {
    HttpAnswer answer;
    std::string error;
    if (!Request(node, timeout_s, "GET", "/v1/ring", "", &answer, &error)) {
      std::fprintf(stderr, "mks: %s\n", error.c_str());
      return kExitUnreachable;
    }
    if (answer.status != 200) {
      std::fprintf(stderr, "mks: node %s answered %d: %s", node.c_str(), answer.status,
                   answer.body.c_str());
      return kExitServerError;
    }
    const size_t change = answer.body.find("\"change\":{");
    const long long epoch = JsonNumber(answer.body, "epoch");
    const size_t streams = answer.body.find("\"streams\":");
    const long long pulled = JsonNumber(answer.body, "bytes_pulled", streams);
    const long long rate = JsonNumber(answer.body, "rate_bytes_per_s", streams);
    if (change == std::string::npos) {
      std::printf("epoch %lld: no membership change in progress (this node pulled %lld bytes)\n",
                  epoch, pulled);
      return 0;
    }
    const long long node_id = JsonNumber(answer.body, "node", change);
    const long long moved = JsonNumber(answer.body, "partitions_moved", change);
    const long long changing = JsonNumber(answer.body, "partitions_changing", change);
    const bool join = answer.body.compare(change, 20, "\"change\":{\"kind\":\"join") == 0;
    const time_t now = time(nullptr);
    if (first_moved < 0) {
      first_moved = moved;
      first_at = now;
    }
    std::string left = "unknown";
    if (moved > first_moved && now > first_at) {
      const double per_s = static_cast<double>(moved - first_moved) / static_cast<double>(now - first_at);
      left = std::to_string(static_cast<long long>(static_cast<double>(changing - moved) / per_s)) + " s";
    }
    std::printf("epoch %lld: %s of node %lld: %lld of %lld partitions moved; here %lld bytes "
                "pulled at %lld B/s; time left %s\n",
                epoch, join ? "join" : "leave", node_id, moved, changing, pulled, rate,
                left.c_str());
    std::fflush(stdout);
    sleep(1);
  }
}

// `mks join`: until the node asked is a normal member in its own metadata.
int WaitForJoin(const std::string& node, int timeout_s) {
  std::string last;
  for (;;) {
    HttpAnswer answer;
    std::string error;
    if (!Request(node, timeout_s, "GET", "/v1/members", "", &answer, &error)) {
      std::fprintf(stderr, "mks: %s\n", error.c_str());
      return kExitUnreachable;
    }
    std::string state = "not seated yet";
    const size_t self = answer.body.find("\"self\":true");
    if (answer.status == 200 && self != std::string::npos) {
      const std::string field = "\"membership\":\"";
      const size_t at = answer.body.find(field, self);
      const size_t end = at == std::string::npos ? at : answer.body.find('"', at + field.size());
      if (end != std::string::npos && end > at + field.size()) {
        state = answer.body.substr(at + field.size(), end - at - field.size());
      }
    }
    if (state == "normal") {
      std::printf("node %s is a normal member\n", node.c_str());
      return 0;
    }
    HttpAnswer ring;
    std::string progress;
    if (state == "joining" && Request(node, timeout_s, "GET", "/v1/ring", "", &ring, &error)) {
      const size_t change = ring.body.find("\"change\":{");
      if (change != std::string::npos) {
        progress = ": " + std::to_string(JsonNumber(ring.body, "partitions_moved", change)) +
                   " of " + std::to_string(JsonNumber(ring.body, "partitions_changing", change)) +
                   " partitions moved, " +
                   std::to_string(JsonNumber(ring.body, "bytes_pulled",
                                             ring.body.find("\"streams\":"))) +
                   " bytes pulled";
      }
    }
    const std::string line = "node " + node + ": " + state + progress;
    if (line != last) {
      std::printf("%s\n", line.c_str());
      std::fflush(stdout);
      last = line;
    }
    sleep(1);
  }
}

// `--wait` after a leave began: until the leaver is no member (asked of
// `node`, which must not be the leaver) or, for a decommission asked of
// the leaver itself, until it stopped answering or says it is removed.
int WaitForLeave(const std::string& node, int timeout_s, long long leaver) {
  for (;;) {
    HttpAnswer answer;
    std::string error;
    if (!Request(node, timeout_s, "GET", "/v1/members", "", &answer, &error)) {
      if (leaver < 0) return 0;  // the decommissioned node stopped
      std::fprintf(stderr, "mks: %s\n", error.c_str());
      return kExitUnreachable;
    }
    bool leaving = false;
    for (size_t at = answer.body.find("{\"id\":"); at != std::string::npos;
         at = answer.body.find("{\"id\":", at + 1)) {
      const long long id = JsonNumber(answer.body, "id", at);
      const std::string self_true = "\"self\":true";
      const bool self = answer.body.compare(answer.body.find("\"self\":", at), self_true.size(),
                                            self_true) == 0;
      const size_t membership = answer.body.find("\"membership\":", at);
      const size_t next = answer.body.find("{\"id\":", at + 1);
      if (membership == std::string::npos || (next != std::string::npos && membership > next)) continue;
      const std::string unseated = "\"membership\":\"\"";
      const bool seated = answer.body.compare(membership, unseated.size(), unseated) != 0;
      if (seated && (id == leaver || (leaver < 0 && self))) leaving = true;
    }
    if (!leaving) return 0;
    sleep(1);
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"mks: the my-key-store client"};
  std::string node = "127.0.0.1:8080";
  std::string consistency;
  int timeout_s = 5;
  app.add_option("-n,--node", node, "HTTP address of any node, host:port");
  app.add_option("-c,--consistency", consistency, "one, quorum, all, or a count");
  app.add_option("--timeout", timeout_s, "seconds to wait for the node");
  app.require_subcommand(1);
  std::string key;
  std::string value;
  CLI::App* get = app.add_subcommand("get", "print the value of KEY");
  get->add_option("key", key)->required();
  CLI::App* put = app.add_subcommand("put", "store VALUE under KEY ('-' reads stdin)");
  put->add_option("key", key)->required();
  put->add_option("value", value)->required();
  CLI::App* del = app.add_subcommand("del", "delete KEY");
  del->add_option("key", key)->required();
  CLI::App* status = app.add_subcommand("status", "the node's summary (JSON)");
  CLI::App* members = app.add_subcommand("members", "the members (JSON)");
  CLI::App* ring = app.add_subcommand("ring", "the ring and the membership change (JSON)");
  bool watch = false;
  ring->add_flag("--watch", watch, "print the change's progress every second until it ends");
  CLI::App* cluster =
      app.add_subcommand("cluster", "the cluster's metadata: leader, term, epoch, members (JSON)");
  unsigned removed_node = 0;
  bool force = false;
  CLI::App* remove = app.add_subcommand("remove", "remove member NODE from the cluster");
  remove->add_option("node", removed_node, "node id")->required()->check(CLI::PositiveNumber);
  remove->add_flag("--force", force,
                   "unseat it at once, its data not moved (for a node gone with its disk)");
  CLI::App* decommission =
      app.add_subcommand("decommission", "make NODE (default: the node --node names) leave");
  decommission->add_option("node", removed_node, "node id")->check(CLI::PositiveNumber);
  CLI::App* join = app.add_subcommand(
      "join", "wait until the node --node names (started with --join) is a normal member");
  decommission->add_flag("--force", force, "unseat it at once, its data not moved");
  bool wait = false;
  int retry_s = 120;
  for (CLI::App* change : {remove, decommission}) {
    change->add_flag("--wait", wait, "wait until the leave ended");
    change->add_option("--retry", retry_s, "seconds to retry while another change runs");
  }
  CLI11_PARSE(app, argc, argv);
  if (ring->parsed() && watch) return WatchRing(node, timeout_s);
  if (join->parsed()) return WaitForJoin(node, timeout_s);

  std::string method = "GET";
  std::string target;
  const std::string query = consistency.empty() ? "" : "?consistency=" + PercentEncode(consistency);
  if (get->parsed() || put->parsed() || del->parsed()) {
    target = "/v1/kv/" + PercentEncode(key) + query;
    if (put->parsed()) method = "PUT";
    if (del->parsed()) method = "DELETE";
  } else if (status->parsed()) {
    target = "/v1/status";
  } else if (members->parsed()) {
    target = "/v1/members";
  } else if (ring->parsed()) {
    target = "/v1/ring";
  } else if (cluster->parsed()) {
    target = "/v1/cluster";
  } else if (remove->parsed() || decommission->parsed()) {
    method = "POST";
    target = "/v1/cluster/remove?force=" + std::string(force ? "true" : "false");
    if (removed_node != 0) target += "&node=" + std::to_string(removed_node);
  }
  const bool changes_membership = remove->parsed() || decommission->parsed();
  if (put->parsed() && value == "-") {
    value.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  }
  HttpAnswer answer;
  std::string error;
  // A membership change meets 503 while another change runs or the
  // metadata leader hands over or is being elected: retried, a second apart.
  for (int attempt = 0;; ++attempt) {
    if (!Request(node, timeout_s, method, target, put->parsed() ? value : "", &answer, &error)) {
      std::fprintf(stderr, "mks: %s\n", error.c_str());
      return kExitUnreachable;
    }
    if (!changes_membership || answer.status != 503 || attempt >= retry_s) break;
    sleep(1);
  }
  if (changes_membership && answer.status == 200 && wait && !force) {
    std::fwrite(answer.body.data(), 1, answer.body.size(), stdout);
    std::fflush(stdout);
    return WaitForLeave(node, timeout_s, removed_node != 0 ? static_cast<long long>(removed_node) : -1);
  }
  if (get->parsed() && answer.status == 404) {
    std::fprintf(stderr, "mks: %s: not found\n", key.c_str());
    return kExitNotFound;
  }
  if (answer.status != 200) {
    std::fprintf(stderr, "mks: node %s answered %d: %s", node.c_str(), answer.status,
                 answer.body.c_str());
    return kExitServerError;
  }
  std::fwrite(answer.body.data(), 1, answer.body.size(), stdout);
  if (get->parsed() && isatty(STDOUT_FILENO) && !answer.body.ends_with('\n')) {
    std::fputc('\n', stdout);
  }
  return 0;
}
