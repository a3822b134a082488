// Feeds arbitrary bytes to the RESP parser in arbitrary pieces.
//
// Checks, beyond "no crash, no sanitizer report": the parser's memory stays
// within what it was fed; every parsed command re-encodes to bytes that parse
// back to the same command, in one piece.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/assertions.h"
#include "net/resp.h"

namespace {

using mks::net::resp::Command;
using mks::net::resp::Parser;

std::vector<Command> DrainCommands(Parser& parser) {
  std::vector<Command> commands;
  for (;;) {
    mks::Result<std::optional<Command>> next = parser.Next();
    if (!next.ok() || !next->has_value()) return commands;
    commands.push_back(std::move(**next));
  }
}

void CheckRoundTrip(const std::vector<Command>& commands) {
  std::string encoded;
  for (const Command& command : commands) {
    mks::net::resp::AppendCommand(&encoded, command);
  }
  Parser reparser;
  reparser.Feed(encoded);
  const std::vector<Command> reparsed = DrainCommands(reparser);
  MKS_ASSERT(reparsed == commands);
  MKS_ASSERT_EQ(reparser.buffered_bytes(), 0u);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  // The first byte picks the piece size, so splits are explored too.
  const size_t piece_bytes = size_t{data[0]} + 1;
  const std::string_view input(reinterpret_cast<const char*>(data + 1), size - 1);
  mks::net::resp::ParserLimits limits;
  limits.max_arguments = 64;
  limits.max_bulk_bytes = 4096;
  limits.max_command_bytes = 8192;
  limits.max_inline_bytes = 1024;
  Parser parser(limits);
  std::vector<Command> commands;
  for (size_t offset = 0; offset < input.size(); offset += piece_bytes) {
    parser.Feed(input.substr(offset, piece_bytes));
    MKS_ASSERT_LE(parser.buffered_bytes(), input.size());
    for (Command& command : DrainCommands(parser)) {
      MKS_ASSERT(!command.empty());
      MKS_ASSERT_LE(command.size(), limits.max_arguments);
      commands.push_back(std::move(command));
    }
  }
  CheckRoundTrip(commands);
  return 0;
}
