#include "net/http.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace mks::net::http {
namespace {

// Pulls every complete request; returns the error, if any, in *error.
std::vector<Request> Drain(RequestParser& parser, Status* error = nullptr) {
  std::vector<Request> requests;
  for (;;) {
    Result<std::optional<Request>> next = parser.Next();
    if (!next.ok()) {
      if (error != nullptr) *error = next.status();
      return requests;
    }
    if (!next->has_value()) return requests;
    requests.push_back(std::move(**next));
  }
}

// Feeds `input` whole and returns the status code the parser asks to send.
int ErrorStatusFor(std::string_view input, Limits limits = {}) {
  RequestParser parser(limits);
  parser.Feed(input);
  Status error;
  const std::vector<Request> requests = Drain(parser, &error);
  EXPECT_FALSE(error.ok()) << "accepted: " << input;
  EXPECT_TRUE(requests.empty());
  return parser.error_status();
}

const std::string kPipelined =
    "GET /v1/kv/a%20b?consistency=quorum&x=1 HTTP/1.1\r\n"
    "Host: localhost\r\n"
    "X-Trace: one\r\n"
    "\r\n"
    "PUT /v1/kv/k HTTP/1.1\r\n"
    "Host: localhost\r\n"
    "Content-Length: 7\r\n"
    "\r\n"
    "va\r\nlue"
    "POST /chunked HTTP/1.1\r\n"
    "Transfer-Encoding: chunked\r\n"
    "\r\n"
    "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
    "DELETE /v1/kv/k HTTP/1.1\r\n"
    "Connection: close\r\n"
    "\r\n";

void ExpectPipelinedRequests(const std::vector<Request>& requests) {
  ASSERT_EQ(requests.size(), 4u);
  EXPECT_EQ(requests[0].method, "GET");
  EXPECT_EQ(requests[0].path(), "/v1/kv/a%20b");
  EXPECT_EQ(requests[0].query(), "consistency=quorum&x=1");
  EXPECT_EQ(requests[0].Header("x-trace"), "one");
  EXPECT_EQ(requests[0].Header("missing"), std::nullopt);
  EXPECT_EQ(requests[0].version, 11u);
  EXPECT_TRUE(requests[0].keep_alive);
  EXPECT_EQ(requests[1].method, "PUT");
  EXPECT_EQ(requests[1].body, "va\r\nlue");
  EXPECT_EQ(requests[2].body, "abcde");
  EXPECT_EQ(requests[3].method, "DELETE");
  EXPECT_FALSE(requests[3].keep_alive);
}

TEST(HttpParserTest, ParsesPipelinedKeepAliveRequests) {
  RequestParser parser;
  parser.Feed(kPipelined);
  Status error;
  ExpectPipelinedRequests(Drain(parser, &error));
  EXPECT_TRUE(error.ok()) << error;
  EXPECT_EQ(parser.buffered_bytes(), 0u);
}

TEST(HttpParserTest, SameRequestsAtEverySplitPoint) {
  for (size_t split = 0; split <= kPipelined.size(); ++split) {
    RequestParser parser;
    parser.Feed(std::string_view(kPipelined).substr(0, split));
    std::vector<Request> requests = Drain(parser);
    parser.Feed(std::string_view(kPipelined).substr(split));
    for (Request& request : Drain(parser)) requests.push_back(std::move(request));
    SCOPED_TRACE("split at " + std::to_string(split));
    ExpectPipelinedRequests(requests);
  }
}

TEST(HttpParserTest, SameRequestsFedOneByteAtATime) {
  RequestParser parser;
  std::vector<Request> requests;
  for (const char byte : kPipelined) {
    parser.Feed(std::string_view(&byte, 1));
    for (Request& request : Drain(parser)) requests.push_back(std::move(request));
  }
  ExpectPipelinedRequests(requests);
}

// Beast 1.74 asserts wrongly on an empty chunked body that arrives in small
// pieces (boostorg/beast#2861); a client must not be able to abort the node.
TEST(HttpParserTest, EmptyChunkedBodyInSmallPieces) {
  RequestParser parser;
  std::vector<Request> requests;
  for (const std::string_view piece :
       {"POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", "0\r\n", "\r",
        "\n"}) {
    parser.Feed(piece);
    for (Request& request : Drain(parser)) requests.push_back(std::move(request));
  }
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].body, "");
}

TEST(HttpParserTest, ReportsExpectContinueOncePerWaitingBody) {
  RequestParser parser;
  parser.Feed("PUT /k HTTP/1.1\r\nExpect: 100-Continue\r\nContent-Length: 3\r\n\r\n");
  EXPECT_TRUE(Drain(parser).empty());
  EXPECT_TRUE(parser.TakeExpectContinue());
  EXPECT_FALSE(parser.TakeExpectContinue());
  parser.Feed("abc");
  ASSERT_EQ(Drain(parser).size(), 1u);
  // Body already here, or no Expect: nothing owed.
  parser.Feed("PUT /k HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\nx"
              "GET / HTTP/1.1\r\n\r\n");
  EXPECT_EQ(Drain(parser).size(), 2u);
  EXPECT_FALSE(parser.TakeExpectContinue());
}

TEST(HttpParserTest, KeepAliveFollowsTheVersionRules) {
  RequestParser parser;
  parser.Feed("GET / HTTP/1.0\r\n\r\n"
              "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
              "GET / HTTP/1.1\r\nConnection: close\r\n\r\n");
  const std::vector<Request> requests = Drain(parser);
  ASSERT_EQ(requests.size(), 3u);
  EXPECT_EQ(requests[0].version, 10u);
  EXPECT_FALSE(requests[0].keep_alive);
  EXPECT_TRUE(requests[1].keep_alive);
  EXPECT_FALSE(requests[2].keep_alive);
}

TEST(HttpParserTest, MalformedRequestsAreBadRequests) {
  EXPECT_EQ(ErrorStatusFor("GARBAGE\r\n\r\n"), 400);
  EXPECT_EQ(ErrorStatusFor("GET / HTTP/9.x\r\n\r\n"), 400);
  EXPECT_EQ(ErrorStatusFor("GET / HTTP/1.1\r\nContent-Length: ten\r\n\r\n"), 400);
  EXPECT_EQ(ErrorStatusFor("GET / HTTP/1.1\r\nBad Header\r\n\r\n"), 400);
  EXPECT_EQ(ErrorStatusFor("GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                           "zz\r\n"),
            400);
  EXPECT_EQ(ErrorStatusFor(std::string("GET /\0 HTTP/1.1\r\n\r\n", 20)), 400);
}

TEST(HttpParserTest, OversizedHeadersAndBodiesAreRefusedEarly) {
  Limits limits;
  limits.max_header_bytes = 256;
  limits.max_body_bytes = 10;
  // The header never ends: refused once it passes the limit, not buffered on.
  EXPECT_EQ(ErrorStatusFor("GET / HTTP/1.1\r\nX: " + std::string(300, 'a'), limits),
            431);
  // The declared length is enough; the body need not arrive.
  EXPECT_EQ(ErrorStatusFor("PUT / HTTP/1.1\r\nContent-Length: 11\r\n\r\n", limits),
            413);
  EXPECT_EQ(ErrorStatusFor("PUT / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                           "b\r\n01234567890\r\n0\r\n\r\n",
                           limits),
            413);
  RequestParser parser(limits);
  parser.Feed("PUT / HTTP/1.1\r\nContent-Length: 10\r\n\r\n0123456789");
  EXPECT_EQ(Drain(parser).size(), 1u);
}

TEST(HttpParserTest, ErrorIsSticky) {
  RequestParser parser;
  parser.Feed("NOT HTTP\r\n\r\n");
  Status first;
  Drain(parser, &first);
  ASSERT_FALSE(first.ok());
  parser.Feed("GET / HTTP/1.1\r\n\r\n");
  Status second;
  EXPECT_TRUE(Drain(parser, &second).empty());
  EXPECT_EQ(second, first);
  EXPECT_EQ(parser.error_status(), 400);
}

TEST(HttpResponseTest, WritesStatusHeadersLengthAndConnection) {
  std::string out;
  AppendResponse({200, {{"Content-Type", "text/plain"}}, "hello"}, 11, true, &out);
  AppendResponse({404, {}, ""}, 11, false, &out);
  AppendResponse({503, {}, "x"}, 10, false, &out);
  EXPECT_EQ(out,
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n"
            "Connection: keep-alive\r\n\r\nhello"
            "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            "HTTP/1.0 503 Service Unavailable\r\nContent-Length: 1\r\n"
            "Connection: close\r\n\r\nx");
}

TEST(HttpUrlTest, PercentDecodes) {
  EXPECT_EQ(*PercentDecode("a%20b%2Fc%00d+e"), std::string("a b/c\0d+e", 9));
  EXPECT_FALSE(PercentDecode("abc%2").ok());
  EXPECT_FALSE(PercentDecode("abc%").ok());
  EXPECT_FALSE(PercentDecode("%zz").ok());
}

TEST(HttpUrlTest, FindsQueryParameters) {
  const std::string_view query = "consistency=quorum&flag&v=a+b%21&consistency=one";
  EXPECT_EQ(QueryParameter(query, "consistency"), "quorum");
  EXPECT_EQ(QueryParameter(query, "flag"), "");
  EXPECT_EQ(QueryParameter(query, "v"), "a b!");
  EXPECT_EQ(QueryParameter(query, "missing"), std::nullopt);
  EXPECT_EQ(QueryParameter("bad=%g1", "bad"), std::nullopt);
  EXPECT_EQ(QueryParameter("", "x"), std::nullopt);
}

}  // namespace
}  // namespace mks::net::http
