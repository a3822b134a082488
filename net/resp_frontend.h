// The RESP2 front-end's commands: what each Redis command means for
// my-key-store. One RespConnection per client connection; ServeResp
// (net/sessions.h) owns the protocol loop around it.
//
// Commands (names case-insensitive):
//   GET key [CONSISTENCY level]         bulk value, or nil when not found
//   SET key value [CONSISTENCY level]   +OK once W replicas hold it
//   DEL key [key ...]                   deletes each key; the integer counts
//                                       the keys a read found just before
//   EXISTS key [key ...]                how many of the keys were found
//   MGET key [key ...]                  array of values or nils
//   MSET key value [key value ...]      +OK when every write succeeded; not
//                                       atomic: on an error some pairs may
//                                       have been written
//   CONSISTENCY [level]                 shows or sets this connection's level
//                                       (ONE, QUORUM, ALL, a count, DEFAULT)
//   PING [message], ECHO message, INFO [section], QUIT
//   COMMAND, COMMAND COUNT, COMMAND DOCS, COMMAND INFO   enough for redis-cli
//   CONFIG GET pattern                  an empty list: nothing is configurable
//                                       through RESP (redis-benchmark asks)
//
// The level of one operation is its CONSISTENCY option, else the
// connection's level, else the node's default for reads or writes.
//
// Errors: wrong arity or syntax is "ERR ...", as in Redis; a quorum not
// reached is "UNAVAILABLE <how many answered>"; a timeout "TIMEOUT ...";
// bad keys or values (empty, oversized) "ERR ...". An error answers only
// its command; the connection stays usable.
#pragma once

#include <string>

#include "core/coordinator.h"
#include "net/kv_backend.h"
#include "net/resp.h"
#include "net/sessions.h"

namespace mks::net {

class RespConnection {
 public:
  // `backend` must outlive the connection.
  explicit RespConnection(KvBackend* backend);

  // Executes `command` and appends exactly one reply to *reply. Runs in the
  // connection's fiber (it may wait on the backend). Returns kClose after
  // QUIT. Never fails: every failure is an error reply. Requires a non-empty
  // command (the parser never yields an empty one).
  AfterReply Execute(const resp::Command& command, std::string* reply);

  Consistency consistency() const { return consistency_; }

 private:
  void Get(const resp::Command& command, std::string* reply);
  void Set(const resp::Command& command, std::string* reply);
  void Del(const resp::Command& command, std::string* reply);
  void Exists(const resp::Command& command, std::string* reply);
  void MultiGet(const resp::Command& command, std::string* reply);
  void MultiSet(const resp::Command& command, std::string* reply);
  void SetConsistency(const resp::Command& command, std::string* reply);
  void Info(const resp::Command& command, std::string* reply);
  void CommandIntrospection(const resp::Command& command, std::string* reply);
  // Reads the option "CONSISTENCY level" at command[index..]; absent means
  // the connection's level. Appends an error and returns nullopt when
  // malformed.
  std::optional<Consistency> OptionalLevel(const resp::Command& command,
                                           size_t index, std::string* reply);

  KvBackend* const backend_;
  // kDefault means "the node's default for the operation".
  Consistency consistency_ = Consistency::Default();
};

// Appends the RESP error that reports a failed backend operation.
void AppendStatusError(std::string* reply, const Status& status);

}  // namespace mks::net
