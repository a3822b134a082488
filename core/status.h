// Status and Result: the error currency of my-key-store.
//
// Every fallible operation returns a Status or a Result<T>. Both are
// [[nodiscard]]: an error is handled or passed up, never dropped silently.
// A Status is cheap when OK (no allocation) and carries a code plus a
// human-readable message otherwise. Exceptions are used only inside the fiber
// runtime, where Boost.Context needs them to unwind a killed fiber's stack.
#pragma once

#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

#include "core/assertions.h"

namespace mks {

enum class StatusCode : uint8_t {
  kOk = 0,
  kNotFound,            // the key or object does not exist
  kInvalidArgument,     // the caller passed something unacceptable
  kCorruption,          // stored or received bytes failed a checksum/parse
  kIOError,             // the underlying device or engine failed
  kTimedOut,            // a deadline passed before the operation finished
  kUnavailable,         // not enough replicas or peers reachable right now
  kCancelled,           // the operation was abandoned (its owner died)
  kBrokenPromise,       // a promise was destroyed without a value
  kResourceExhausted,   // a bounded queue or limit is full
  kInternal,            // a bug: an invariant of our own did not hold
  // The caller acted on a ring (epoch) older than the receiver's for the
  // data concerned: it must catch up on the metadata and retry.
  kStaleEpoch,
};

std::string_view StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK
  Status(StatusCode code, std::string message)
      : code_(code), message_(std::move(message)) {
    MKS_ASSERT_NE(static_cast<int>(code), static_cast<int>(StatusCode::kOk));
  }

  static Status Ok() { return Status(); }
  static Status NotFound(std::string m) { return {StatusCode::kNotFound, std::move(m)}; }
  static Status InvalidArgument(std::string m) { return {StatusCode::kInvalidArgument, std::move(m)}; }
  static Status Corruption(std::string m) { return {StatusCode::kCorruption, std::move(m)}; }
  static Status IOError(std::string m) { return {StatusCode::kIOError, std::move(m)}; }
  static Status TimedOut(std::string m) { return {StatusCode::kTimedOut, std::move(m)}; }
  static Status Unavailable(std::string m) { return {StatusCode::kUnavailable, std::move(m)}; }
  static Status Cancelled(std::string m) { return {StatusCode::kCancelled, std::move(m)}; }
  static Status BrokenPromise(std::string m) { return {StatusCode::kBrokenPromise, std::move(m)}; }
  static Status ResourceExhausted(std::string m) { return {StatusCode::kResourceExhausted, std::move(m)}; }
  static Status StaleEpoch(std::string m) { return {StatusCode::kStaleEpoch, std::move(m)}; }
  static Status Internal(std::string m) { return {StatusCode::kInternal, std::move(m)}; }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  bool IsNotFound() const { return code_ == StatusCode::kNotFound; }
  bool IsTimedOut() const { return code_ == StatusCode::kTimedOut; }
  bool IsCorruption() const { return code_ == StatusCode::kCorruption; }
  bool IsInvalidArgument() const { return code_ == StatusCode::kInvalidArgument; }
  bool IsUnavailable() const { return code_ == StatusCode::kUnavailable; }
  bool IsIOError() const { return code_ == StatusCode::kIOError; }
  bool IsResourceExhausted() const { return code_ == StatusCode::kResourceExhausted; }
  bool IsStaleEpoch() const { return code_ == StatusCode::kStaleEpoch; }

  // "NotFound: key 'x'" or "OK".
  std::string ToString() const;

  // Marks a deliberately ignored status; the call site must say why.
  void IgnoreError() const {}

  friend bool operator==(const Status& a, const Status& b) {
    return a.code_ == b.code_ && a.message_ == b.message_;
  }

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

std::ostream& operator<<(std::ostream& out, const Status& status);

// Result<T> holds either a T or a non-OK Status. Invariant: exactly one of
// the two is present, and the Status is never OK.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) {  // NOLINT
    MKS_ASSERT(!status_.ok());
  }

  bool ok() const { return value_.has_value(); }
  const Status& status() const {
    static const Status kOkStatus;
    return ok() ? kOkStatus : status_;
  }
  T& value() & {
    MKS_ASSERT(ok());
    return *value_;
  }
  const T& value() const& {
    MKS_ASSERT(ok());
    return *value_;
  }
  T&& value() && {
    MKS_ASSERT(ok());
    return std::move(*value_);
  }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::optional<T> value_;
  Status status_;
};

// Result<void> is a Status with Result's spelling, so generic code (futures
// of void) can treat both alike.
template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Status status) : status_(std::move(status)) {}  // NOLINT
  bool ok() const { return status_.ok(); }
  const Status& status() const { return status_; }
  void value() const { MKS_ASSERT(ok()); }

 private:
  Status status_;
};

}  // namespace mks

// Evaluates a Status-returning expression and returns it from the enclosing
// function when it is not OK.
#define MKS_RETURN_IF_ERROR(expr)             \
  do {                                        \
    ::mks::Status mks_status_ = (expr);       \
    if (!mks_status_.ok()) return mks_status_; \
  } while (0)
