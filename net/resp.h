// RESP2, the Redis serialization protocol: an incremental command parser and
// the reply encoder.
//
// The parser takes bytes as they arrive (any split, any number of pipelined
// commands) and yields complete commands, each a list of binary-safe
// arguments. It accepts what redis-cli, redis-benchmark and client libraries
// send (arrays of bulk strings) and the inline form people type into telnet
// ("SET k v\r\n"). Every size is bounded by ParserLimits and checked before
// memory is committed, so a hostile peer gets a protocol error, not our RAM.
//
// Pure code: no I/O, no clocks, usable from the simulator and the fuzzer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace mks::net::resp {

// One command: the name and its arguments, exactly as sent.
using Command = std::vector<std::string>;

struct ParserLimits {
  size_t max_arguments = 1024 * 1024;         // per command, as Redis
  size_t max_bulk_bytes = 64 * 1024 * 1024;   // per argument
  size_t max_command_bytes = 128 * 1024 * 1024;  // all arguments of a command
  size_t max_inline_bytes = 64 * 1024;        // an inline command line
};

class Parser {
 public:
  explicit Parser(ParserLimits limits = {});

  // Appends bytes received from the client.
  void Feed(std::string_view bytes);

  // Returns the next complete command, std::nullopt when more bytes are
  // needed, or InvalidArgument whose message starts "Protocol error: " for
  // malformed input or input beyond the limits. After an error the stream
  // cannot be resynchronised: every later call returns the same error, and
  // the server should send it (AppendError "ERR " + message) and close the
  // connection, as Redis does. Empty arrays and blank inline lines are
  // skipped, as Redis skips them.
  Result<std::optional<Command>> Next();

  // Bytes fed and not yet consumed by returned commands.
  size_t buffered_bytes() const { return buffer_.size() - consumed_; }

 private:
  enum class State { kCommandStart, kBulkHeader, kBulkBody };

  // Each step consumes what it can. It sets *progressed when it consumed
  // bytes, moves a finished command to completed_, and returns an error for
  // bad input (already recorded by Fail).
  Status Step(bool* progressed);
  Status ParseInline(bool* progressed);
  Status ParseArrayHeader(bool* progressed);
  Status ParseBulkHeader(bool* progressed);
  Status ParseBulkBody(bool* progressed);
  // Finds a CRLF-terminated header line at consumed_ and returns its text
  // without the CRLF, or nullopt when it is incomplete. Sets *error when the
  // line runs past `max_bytes` without a terminator.
  std::optional<std::string_view> PeekLine(size_t max_bytes, Status* error);
  Status Fail(std::string message);

  const ParserLimits limits_;
  // Invariant: consumed_ <= buffer_.size(); the bytes before consumed_ are
  // parsed and dropped lazily.
  std::string buffer_;
  size_t consumed_ = 0;
  State state_ = State::kCommandStart;
  // While inside an array: the arguments still expected, the length of the
  // bulk being read (kBulkBody), and what has been read so far.
  size_t arguments_left_ = 0;
  size_t bulk_bytes_ = 0;
  size_t command_bytes_ = 0;
  Command command_;
  std::optional<Command> completed_;  // set by a step, taken by Next
  Status error_;  // sticky
};

// ---- Reply encoding. Each appends one RESP2 value to *out. ----

// "+text\r\n". CR and LF cannot appear in a simple string; they are
// replaced by spaces so a message can never break the framing.
void AppendSimpleString(std::string* out, std::string_view text);
// "-message\r\n". By convention `message` starts with an error code
// ("ERR unknown command", "WRONGTYPE ..."). CR/LF replaced as above.
void AppendError(std::string* out, std::string_view message);
// ":value\r\n".
void AppendInteger(std::string* out, int64_t value);
// "$length\r\nbytes\r\n"; binary-safe.
void AppendBulkString(std::string* out, std::string_view bytes);
// "$-1\r\n", the nil reply of GET on a missing key.
void AppendNullBulkString(std::string* out);
// "*count\r\n"; the caller appends `count` values after it.
void AppendArrayHeader(std::string* out, size_t count);
// "*-1\r\n".
void AppendNullArray(std::string* out);
// A command as clients send it: an array of bulk strings.
void AppendCommand(std::string* out, const Command& command);

}  // namespace mks::net::resp
