#include "net/resp.h"

#include <charconv>

#include "core/assertions.h"

namespace mks::net::resp {
namespace {

// "*1048576\r\n" and "$134217728\r\n" fit easily; anything longer is junk.
constexpr size_t kMaxHeaderLineBytes = 32;
// Reserve at most this many argument slots up front: the declared count is
// untrusted until the arguments actually arrive.
constexpr size_t kMaxReservedArguments = 1024;

// Parses a strict decimal integer ("-1", "0", "42"; no sign on zero, no
// spaces, no leading '+'). Returns nullopt for anything else.
std::optional<int64_t> ParseDecimal(std::string_view text) {
  int64_t value = 0;
  if (text.empty() || text.size() > 19) return std::nullopt;
  const auto [end, error] =
      std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

void AppendLine(std::string* out, char type, std::string_view text) {
  MKS_ASSERT(out != nullptr);
  out->push_back(type);
  for (const char c : text) out->push_back(c == '\r' || c == '\n' ? ' ' : c);
  out->append("\r\n");
}

bool IsInlineSpace(char c) { return c == ' ' || c == '\t'; }

}  // namespace

Parser::Parser(ParserLimits limits) : limits_(limits) {
  MKS_ASSERT_GT(limits_.max_arguments, 0u);
  MKS_ASSERT_GT(limits_.max_inline_bytes, 0u);
  MKS_ASSERT_LE(limits_.max_bulk_bytes, limits_.max_command_bytes);
}

void Parser::Feed(std::string_view bytes) {
  if (!error_.ok()) return;  // the stream is dead; keep no more of it
  if (consumed_ > 0 && consumed_ >= buffer_.size() / 2) {
    buffer_.erase(0, consumed_);
    consumed_ = 0;
  }
  buffer_.append(bytes);
}

Status Parser::Fail(std::string message) {
  error_ = Status::InvalidArgument("Protocol error: " + std::move(message));
  buffer_.clear();
  consumed_ = 0;
  command_.clear();
  return error_;
}

Result<std::optional<Command>> Parser::Next() {
  if (!error_.ok()) return error_;
  for (;;) {
    bool progressed = false;
    MKS_RETURN_IF_ERROR(Step(&progressed));
    if (completed_.has_value()) {
      std::optional<Command> command = std::move(completed_);
      completed_.reset();
      MKS_ASSERT(!command->empty());
      return command;
    }
    if (!progressed) return std::optional<Command>();
  }
}

Status Parser::Step(bool* progressed) {
  MKS_ASSERT_LE(consumed_, buffer_.size());
  switch (state_) {
    case State::kCommandStart:
      if (buffered_bytes() == 0) return Status::Ok();
      return buffer_[consumed_] == '*' ? ParseArrayHeader(progressed)
                                       : ParseInline(progressed);
    case State::kBulkHeader:
      return ParseBulkHeader(progressed);
    case State::kBulkBody:
      return ParseBulkBody(progressed);
  }
  MKS_UNREACHABLE("bad parser state");
}

std::optional<std::string_view> Parser::PeekLine(size_t max_bytes, Status* error) {
  const std::string_view rest = std::string_view(buffer_).substr(consumed_);
  const size_t end = rest.substr(0, max_bytes + 2).find("\r\n");
  if (end == std::string_view::npos) {
    if (rest.size() >= max_bytes + 2) *error = Fail("line too long");
    return std::nullopt;
  }
  MKS_ASSERT_LE(end, max_bytes);
  return rest.substr(0, end);
}

Status Parser::ParseInline(bool* progressed) {
  const std::string_view rest = std::string_view(buffer_).substr(consumed_);
  // Inline commands end at LF; a CR before it is optional, as in Redis.
  const size_t end = rest.substr(0, limits_.max_inline_bytes + 1).find('\n');
  if (end == std::string_view::npos) {
    if (rest.size() > limits_.max_inline_bytes) return Fail("too big inline request");
    return Status::Ok();
  }
  std::string_view line = rest.substr(0, end);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  Command command;
  size_t position = 0;
  while (position < line.size()) {
    while (position < line.size() && IsInlineSpace(line[position])) ++position;
    size_t word_end = position;
    while (word_end < line.size() && !IsInlineSpace(line[word_end])) ++word_end;
    if (word_end > position) {
      if (command.size() == limits_.max_arguments) return Fail("too many arguments");
      command.emplace_back(line.substr(position, word_end - position));
    }
    position = word_end;
  }
  consumed_ += end + 1;
  *progressed = true;
  if (!command.empty()) completed_ = std::move(command);
  return Status::Ok();
}

Status Parser::ParseArrayHeader(bool* progressed) {
  MKS_ASSERT_EQ(buffer_[consumed_], '*');
  Status error;
  const std::optional<std::string_view> line = PeekLine(kMaxHeaderLineBytes, &error);
  if (!line) return error;
  const std::optional<int64_t> count = ParseDecimal(line->substr(1));
  if (!count || *count < -1 ||
      *count > static_cast<int64_t>(limits_.max_arguments)) {
    return Fail("invalid multibulk length");
  }
  consumed_ += line->size() + 2;
  *progressed = true;
  if (*count <= 0) return Status::Ok();  // "*0" and "*-1" carry no command
  arguments_left_ = static_cast<size_t>(*count);
  command_bytes_ = 0;
  command_.clear();
  command_.reserve(std::min(arguments_left_, kMaxReservedArguments));
  state_ = State::kBulkHeader;
  return Status::Ok();
}

Status Parser::ParseBulkHeader(bool* progressed) {
  MKS_ASSERT_GT(arguments_left_, 0u);
  if (buffered_bytes() == 0) return Status::Ok();
  if (buffer_[consumed_] != '$') {
    return Fail(std::string("expected '$', got '") + buffer_[consumed_] + "'");
  }
  Status error;
  const std::optional<std::string_view> line = PeekLine(kMaxHeaderLineBytes, &error);
  if (!line) return error;
  const std::optional<int64_t> length = ParseDecimal(line->substr(1));
  if (!length || *length < 0 ||
      *length > static_cast<int64_t>(limits_.max_bulk_bytes)) {
    return Fail("invalid bulk length");
  }
  bulk_bytes_ = static_cast<size_t>(*length);
  command_bytes_ += bulk_bytes_;
  if (command_bytes_ > limits_.max_command_bytes) return Fail("command too big");
  consumed_ += line->size() + 2;
  *progressed = true;
  state_ = State::kBulkBody;
  return Status::Ok();
}

Status Parser::ParseBulkBody(bool* progressed) {
  if (buffered_bytes() < bulk_bytes_ + 2) return Status::Ok();
  const char* body = buffer_.data() + consumed_;
  if (body[bulk_bytes_] != '\r' || body[bulk_bytes_ + 1] != '\n') {
    return Fail("bulk string not terminated by CRLF");
  }
  command_.emplace_back(body, bulk_bytes_);
  consumed_ += bulk_bytes_ + 2;
  *progressed = true;
  MKS_ASSERT_GT(arguments_left_, 0u);
  if (--arguments_left_ > 0) {
    state_ = State::kBulkHeader;
    return Status::Ok();
  }
  state_ = State::kCommandStart;
  completed_ = std::move(command_);
  command_.clear();
  return Status::Ok();
}

void AppendSimpleString(std::string* out, std::string_view text) {
  AppendLine(out, '+', text);
}

void AppendError(std::string* out, std::string_view message) {
  AppendLine(out, '-', message);
}

void AppendInteger(std::string* out, int64_t value) {
  AppendLine(out, ':', std::to_string(value));
}

void AppendBulkString(std::string* out, std::string_view bytes) {
  AppendLine(out, '$', std::to_string(bytes.size()));
  out->append(bytes);
  out->append("\r\n");
}

void AppendNullBulkString(std::string* out) { out->append("$-1\r\n"); }

void AppendArrayHeader(std::string* out, size_t count) {
  AppendLine(out, '*', std::to_string(count));
}

void AppendNullArray(std::string* out) { out->append("*-1\r\n"); }

void AppendCommand(std::string* out, const Command& command) {
  MKS_ASSERT(!command.empty());
  AppendArrayHeader(out, command.size());
  for (const std::string& argument : command) AppendBulkString(out, argument);
}

}  // namespace mks::net::resp
