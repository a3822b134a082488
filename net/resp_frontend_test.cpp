#include "net/resp_frontend.h"

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <cctype>
#include <string>

#include "net/fake_kv_backend_for_test.h"

namespace mks::net {
namespace {

class RespFrontEndTest : public ::testing::Test {
 protected:
  // Executes one command and returns its reply.
  std::string Run(const resp::Command& command) {
    std::string reply;
    last_after_ = connection_.Execute(command, &reply);
    return reply;
  }

  FakeKvBackend backend_;
  RespConnection connection_{&backend_};
  AfterReply last_after_ = AfterReply::kContinue;
};

TEST_F(RespFrontEndTest, SetThenGetRoundTripsBinaryValues) {
  const std::string value("a\0\r\nb", 5);
  EXPECT_EQ(Run({"SET", "k", value}), "+OK\r\n");
  EXPECT_EQ(Run({"get", "k"}), "$5\r\n" + value + "\r\n");
  EXPECT_EQ(Run({"GET", "missing"}), "$-1\r\n");
}

TEST_F(RespFrontEndTest, DelCountsKeysThatWerePresentAndDeletesAll) {
  ASSERT_EQ(Run({"SET", "a", "1"}), "+OK\r\n");
  ASSERT_EQ(Run({"SET", "b", "2"}), "+OK\r\n");
  EXPECT_EQ(Run({"DEL", "a", "b", "c"}), ":2\r\n");
  EXPECT_EQ(Run({"GET", "a"}), "$-1\r\n");
  EXPECT_EQ(Run({"EXISTS", "a", "b", "c"}), ":0\r\n");
  EXPECT_EQ(Run({"DEL", "a"}), ":0\r\n");
}

TEST_F(RespFrontEndTest, MultiKeyCommands) {
  EXPECT_EQ(Run({"MSET", "a", "1", "b", "2"}), "+OK\r\n");
  EXPECT_EQ(Run({"MGET", "a", "x", "b"}), "*3\r\n$1\r\n1\r\n$-1\r\n$1\r\n2\r\n");
  EXPECT_EQ(Run({"EXISTS", "a", "a", "x"}), ":2\r\n");
  EXPECT_EQ(Run({"MSET", "a", "1", "b"}),
            "-ERR wrong number of arguments for 'mset' command\r\n");
}

TEST_F(RespFrontEndTest, ConsistencyPerConnectionAndPerCommand) {
  EXPECT_EQ(Run({"CONSISTENCY"}), "$7\r\nDEFAULT\r\n");
  ASSERT_EQ(Run({"SET", "k", "v"}), "+OK\r\n");
  EXPECT_EQ(backend_.calls.back().consistency, Consistency::Default());
  EXPECT_EQ(Run({"CONSISTENCY", "one"}), "+OK\r\n");
  EXPECT_EQ(connection_.consistency(), Consistency::One());
  ASSERT_EQ(Run({"GET", "k"}), "$1\r\nv\r\n");
  EXPECT_EQ(backend_.calls.back().consistency, Consistency::One());
  ASSERT_EQ(Run({"GET", "k", "consistency", "ALL"}), "$1\r\nv\r\n");
  EXPECT_EQ(backend_.calls.back().consistency, Consistency::All());
  ASSERT_EQ(Run({"SET", "k", "w", "CONSISTENCY", "2"}), "+OK\r\n");
  EXPECT_EQ(backend_.calls.back().consistency, Consistency::Count(2));
  // The override is for one command only.
  ASSERT_EQ(Run({"DEL", "k"}), ":1\r\n");
  EXPECT_EQ(backend_.calls.back().consistency, Consistency::One());
}

TEST_F(RespFrontEndTest, BadConsistencyAndSyntaxAreErrorsThatChangeNothing) {
  EXPECT_EQ(Run({"CONSISTENCY", "most"}).substr(0, 4), "-ERR");
  EXPECT_EQ(Run({"CONSISTENCY", "0"}).substr(0, 4), "-ERR");
  EXPECT_EQ(connection_.consistency(), Consistency::Default());
  EXPECT_EQ(Run({"GET", "k", "CONSISTENCY"}), "-ERR syntax error\r\n");
  EXPECT_EQ(Run({"SET", "k", "v", "EX", "10"}), "-ERR syntax error\r\n");
  EXPECT_EQ(Run({"GET", "k", "CONSISTENCY", "sometimes"}).substr(0, 4), "-ERR");
  EXPECT_TRUE(backend_.calls.empty());
}

TEST_F(RespFrontEndTest, BackendFailuresBecomeErrorReplies) {
  backend_.fail_with = Status::Unavailable("1 of 2 replicas answered");
  EXPECT_EQ(Run({"SET", "k", "v"}), "-UNAVAILABLE 1 of 2 replicas answered\r\n");
  EXPECT_EQ(Run({"MGET", "a", "b"}), "-UNAVAILABLE 1 of 2 replicas answered\r\n");
  backend_.fail_with = Status::TimedOut("deadline");
  EXPECT_EQ(Run({"GET", "k"}), "-TIMEOUT deadline\r\n");
  backend_.fail_with = Status::IOError("disk\r\nbroken");
  EXPECT_EQ(Run({"DEL", "k"}), "-ERR IOError: disk  broken\r\n");
  backend_.fail_with = Status::Ok();
  EXPECT_EQ(Run({"SET", "", "v"}), "-ERR empty key\r\n");
  EXPECT_EQ(last_after_, AfterReply::kContinue);
}

TEST_F(RespFrontEndTest, ArityAndUnknownCommands) {
  EXPECT_EQ(Run({"GET"}), "-ERR wrong number of arguments for 'get' command\r\n");
  EXPECT_EQ(Run({"SET", "k"}), "-ERR wrong number of arguments for 'set' command\r\n");
  EXPECT_EQ(Run({"ECHO"}), "-ERR wrong number of arguments for 'echo' command\r\n");
  EXPECT_EQ(Run({"FLUSHALL", "now"}),
            "-ERR unknown command 'FLUSHALL', with args beginning with: 'now' \r\n");
  EXPECT_TRUE(backend_.calls.empty());
}

TEST_F(RespFrontEndTest, PingEchoQuit) {
  EXPECT_EQ(Run({"PING"}), "+PONG\r\n");
  EXPECT_EQ(Run({"PING", "hi"}), "$2\r\nhi\r\n");
  EXPECT_EQ(Run({"ECHO", "x"}), "$1\r\nx\r\n");
  EXPECT_EQ(last_after_, AfterReply::kContinue);
  EXPECT_EQ(Run({"QUIT"}), "+OK\r\n");
  EXPECT_EQ(last_after_, AfterReply::kClose);
}

TEST_F(RespFrontEndTest, InfoDescribesNodeAndConnection) {
  ASSERT_EQ(Run({"CONSISTENCY", "all"}), "+OK\r\n");
  const std::string info = Run({"INFO"});
  EXPECT_EQ(info[0], '$');
  EXPECT_NE(info.find("node_id:1\r\n"), std::string::npos);
  EXPECT_NE(info.find("ring_epoch:7\r\n"), std::string::npos);
  EXPECT_NE(info.find("partition_count:8\r\n"), std::string::npos);
  EXPECT_NE(info.find("default_write_consistency:QUORUM\r\n"), std::string::npos);
  EXPECT_NE(info.find("consistency:ALL\r\n"), std::string::npos);
}

TEST_F(RespFrontEndTest, CommandIntrospectionForRedisCli) {
  EXPECT_EQ(Run({"COMMAND", "COUNT"}), ":15\r\n");
  EXPECT_EQ(Run({"COMMAND", "DOCS"}), "*0\r\n");
  EXPECT_EQ(Run({"COMMAND", "INFO", "get", "nope"}),
            "*2\r\n*6\r\n$3\r\nget\r\n:-2\r\n*1\r\n+readonly\r\n:1\r\n:1\r\n:1\r\n*-1\r\n");
  const std::string all = Run({"COMMAND"});
  EXPECT_EQ(all.substr(0, 5), "*15\r\n");
  EXPECT_NE(all.find("$4\r\nmset\r\n:-3\r\n*1\r\n+write\r\n:1\r\n:-1\r\n:2\r\n"),
            std::string::npos);
  EXPECT_EQ(Run({"CONFIG", "GET", "save"}), "*0\r\n");
  EXPECT_EQ(Run({"COMMAND", "GETKEYS"}).substr(0, 4), "-ERR");
}

// Whatever a client sends, exactly one well-formed reply comes back and the
// connection stays usable unless it said QUIT.
RC_GTEST_PROP(RespFrontEndProperty, AnyCommandGetsExactlyOneReply,
              (const std::vector<std::string>& arguments)) {
  RC_PRE(!arguments.empty());
  FakeKvBackend backend;
  RespConnection connection(&backend);
  std::string reply;
  const AfterReply after = connection.Execute(arguments, &reply);
  RC_ASSERT(!reply.empty());
  RC_ASSERT(std::string("+-:$*").find(reply[0]) != std::string::npos);
  RC_ASSERT(reply.size() >= 3);
  RC_ASSERT(reply.substr(reply.size() - 2) == "\r\n");
  std::string name = arguments[0];
  for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  RC_ASSERT((after == AfterReply::kClose) == (name == "quit"));
}

}  // namespace
}  // namespace mks::net
