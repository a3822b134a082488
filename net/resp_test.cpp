#include "net/resp.h"

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <string>
#include <vector>

namespace mks::net::resp {
namespace {

// Pulls every complete command; returns the error, if any, in *error.
std::vector<Command> Drain(Parser& parser, Status* error = nullptr) {
  std::vector<Command> commands;
  for (;;) {
    Result<std::optional<Command>> next = parser.Next();
    if (!next.ok()) {
      if (error != nullptr) *error = next.status();
      return commands;
    }
    if (!next->has_value()) return commands;
    commands.push_back(std::move(**next));
  }
}

// Parses `input` fed in one piece; expects no error.
std::vector<Command> ParseAll(std::string_view input, ParserLimits limits = {}) {
  Parser parser(limits);
  parser.Feed(input);
  Status error;
  std::vector<Command> commands = Drain(parser, &error);
  EXPECT_TRUE(error.ok()) << error;
  return commands;
}

// Parses `input` and returns the protocol error it must cause.
Status ParseError(std::string_view input, ParserLimits limits = {}) {
  Parser parser(limits);
  parser.Feed(input);
  Status error;
  Drain(parser, &error);
  EXPECT_FALSE(error.ok()) << "no error for: " << input;
  return error;
}

constexpr char kPipelinedBytes[] =
    "*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$8\r\nv\0l\r\nue!\r\n"
    "*0\r\n"
    "*-1\r\n"
    "PING\r\n"
    "\r\n"
    "  ECHO   hi there \n"
    "*2\r\n$3\r\nGET\r\n$0\r\n\r\n";
const std::string kPipelined(kPipelinedBytes, sizeof(kPipelinedBytes) - 1);

const std::vector<Command> kPipelinedCommands = {
    {"SET", "key", std::string("v\0l\r\nue!", 8)},
    {"PING"},
    {"ECHO", "hi", "there"},
    {"GET", ""},
};

TEST(RespParserTest, ParsesPipelinedArraysAndInlineCommands) {
  EXPECT_EQ(ParseAll(kPipelined), kPipelinedCommands);
}

TEST(RespParserTest, SameCommandsAtEverySplitPoint) {
  for (size_t split = 0; split <= kPipelined.size(); ++split) {
    Parser parser;
    parser.Feed(std::string_view(kPipelined).substr(0, split));
    std::vector<Command> commands = Drain(parser);
    parser.Feed(std::string_view(kPipelined).substr(split));
    for (Command& command : Drain(parser)) commands.push_back(std::move(command));
    EXPECT_EQ(commands, kPipelinedCommands) << "split at " << split;
    EXPECT_EQ(parser.buffered_bytes(), 0u);
  }
}

TEST(RespParserTest, SameCommandsFedOneByteAtATime) {
  Parser parser;
  std::vector<Command> commands;
  for (const char byte : kPipelined) {
    parser.Feed(std::string_view(&byte, 1));
    for (Command& command : Drain(parser)) commands.push_back(std::move(command));
  }
  EXPECT_EQ(commands, kPipelinedCommands);
}

TEST(RespParserTest, IncompleteInputWaits) {
  Parser parser;
  parser.Feed("*2\r\n$3\r\nGET\r\n$5\r\nab");
  EXPECT_TRUE(Drain(parser).empty());
  parser.Feed("cde\r");
  EXPECT_TRUE(Drain(parser).empty());
  parser.Feed("\n");
  EXPECT_EQ(Drain(parser), (std::vector<Command>{{"GET", "abcde"}}));
}

TEST(RespParserTest, MalformedInputIsAProtocolError) {
  const std::vector<std::string> malformed = {
      "*abc\r\n",                         // count not a number
      "*-2\r\n",                          // negative count
      "*+1\r\n",                          // sign not allowed
      "*1\r\n:5\r\n",                     // integer where a bulk belongs
      "*1\r\n$-1\r\n",                    // nil argument
      "*1\r\n$x\r\n",                     // bad bulk length
      "*1\r\n$3\r\nabcXY",                // bulk not followed by CRLF
      "*1\r\n$ 3\r\nabc\r\n",             // spaces in a length
      "*99999999999999999999\r\n",        // overflow
      "*1\r\n$3\nabc\r\n",                // bare LF in a header line
  };
  for (const std::string& input : malformed) {
    const Status error = ParseError(input);
    EXPECT_EQ(error.code(), StatusCode::kInvalidArgument) << input;
    EXPECT_EQ(error.message().rfind("Protocol error: ", 0), 0u) << error;
  }
}

TEST(RespParserTest, LimitsStopOversizedInputBeforeBuffering) {
  ParserLimits limits;
  limits.max_arguments = 3;
  limits.max_bulk_bytes = 10;
  limits.max_command_bytes = 15;
  limits.max_inline_bytes = 16;
  EXPECT_EQ(ParseAll("*3\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n", limits).size(), 1u);
  EXPECT_NE(ParseError("*4\r\n", limits).message().find("multibulk length"),
            std::string::npos);
  // The bulk length alone is refused; its bytes never need to arrive.
  EXPECT_NE(ParseError("*1\r\n$11\r\n", limits).message().find("bulk length"),
            std::string::npos);
  EXPECT_NE(ParseError("*2\r\n$10\r\n0123456789\r\n$6\r\n", limits)
                .message().find("command too big"),
            std::string::npos);
  EXPECT_NE(ParseError(std::string(17, 'A'), limits).message().find("inline"),
            std::string::npos);
  EXPECT_EQ(ParseAll(std::string(16, 'A') + "\n", limits).size(), 1u);
  EXPECT_EQ(ParseAll("a b c\n", limits).size(), 1u);
  EXPECT_NE(ParseError("a b c d\n", limits).message().find("too many arguments"),
            std::string::npos);
  // A header line that never ends is cut off early, whatever the limits.
  EXPECT_NE(ParseError("*" + std::string(40, '1')).message().find("line too long"),
            std::string::npos);
}

TEST(RespParserTest, ErrorIsStickyAndDropsTheBuffer) {
  Parser parser;
  parser.Feed("*1\r\n:1\r\n");
  Status first;
  Drain(parser, &first);
  ASSERT_FALSE(first.ok());
  parser.Feed("PING\r\n");
  Status second;
  EXPECT_TRUE(Drain(parser, &second).empty());
  EXPECT_EQ(second, first);
  EXPECT_EQ(parser.buffered_bytes(), 0u);
}

TEST(RespEncoderTest, EncodesEveryReplyType) {
  std::string out;
  AppendSimpleString(&out, "OK");
  AppendError(&out, "ERR bad\r\nthing");
  AppendInteger(&out, -42);
  AppendBulkString(&out, std::string("a\0\r\n", 4));
  AppendNullBulkString(&out);
  AppendArrayHeader(&out, 2);
  AppendInteger(&out, 1);
  AppendBulkString(&out, "");
  AppendNullArray(&out);
  EXPECT_EQ(out, std::string("+OK\r\n-ERR bad  thing\r\n:-42\r\n$4\r\na\0\r\n\r\n"
                             "$-1\r\n*2\r\n:1\r\n$0\r\n\r\n*-1\r\n", 62));
}

TEST(RespEncoderTest, CommandEncodingMatchesRedis) {
  std::string out;
  AppendCommand(&out, {"SET", "k", "v"});
  EXPECT_EQ(out, "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n");
}

RC_GTEST_PROP(RespProperty, EncodedCommandsParseBackUnderAnyChunking,
              (const std::vector<Command>& generated,
               const std::vector<uint8_t>& chunk_sizes)) {
  std::vector<Command> commands;
  for (const Command& command : generated) {
    if (!command.empty()) commands.push_back(command);
  }
  std::string stream;
  for (const Command& command : commands) AppendCommand(&stream, command);
  Parser parser;
  std::vector<Command> parsed;
  size_t offset = 0;
  size_t chunk = 0;
  while (offset < stream.size()) {
    const size_t size = chunk_sizes.empty()
                            ? stream.size()
                            : size_t{chunk_sizes[chunk++ % chunk_sizes.size()]} + 1;
    parser.Feed(std::string_view(stream).substr(offset, size));
    offset += std::min(size, stream.size() - offset);
    Status error;
    for (Command& command : Drain(parser, &error)) parsed.push_back(std::move(command));
    RC_ASSERT(error.ok());
  }
  RC_ASSERT(parsed == commands);
}

}  // namespace
}  // namespace mks::net::resp
