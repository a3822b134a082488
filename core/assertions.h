// Always-on assertions.
//
// Assertions in my-key-store stay on in release builds: a violated invariant
// in a database is a bug that must stop the process before it writes bad data,
// not a warning. A failed assertion prints the expression, both operands (for
// the comparison forms), the file and line, then calls std::abort(). Tools
// that need a distinct exit status (mks-sim exits 5) catch SIGABRT.
#pragma once

#include <sstream>
#include <string>
#include <type_traits>

namespace mks::assert_detail {

[[noreturn]] void Fail(const char* file, int line, const char* expression,
                       const std::string& detail);

template <typename T, typename = void>
struct IsStreamable : std::false_type {};
template <typename T>
struct IsStreamable<T, std::void_t<decltype(std::declval<std::ostream&>()
                                            << std::declval<const T&>())>>
    : std::true_type {};

template <typename T>
std::string Describe(const T& value) {
  if constexpr (std::is_same_v<T, bool>) {
    return value ? "true" : "false";
  } else if constexpr (std::is_integral_v<T> && sizeof(T) == 1) {
    return std::to_string(static_cast<int>(value));
  } else if constexpr (std::is_enum_v<T>) {
    return std::to_string(static_cast<long long>(value));
  } else if constexpr (IsStreamable<T>::value) {
    std::ostringstream out;
    out << value;
    return out.str();
  } else {
    return "<unprintable>";
  }
}

template <typename A, typename B>
[[noreturn]] void FailCompare(const char* file, int line,
                              const char* expression, const A& a,
                              const B& b) {
  Fail(file, line, expression,
       "left = " + Describe(a) + ", right = " + Describe(b));
}

}  // namespace mks::assert_detail

#define MKS_ASSERT(condition)                                         \
  do {                                                                \
    if (!(condition)) [[unlikely]]                                    \
      ::mks::assert_detail::Fail(__FILE__, __LINE__, #condition, ""); \
  } while (0)

#define MKS_ASSERT_MSG(condition, message)                                 \
  do {                                                                     \
    if (!(condition)) [[unlikely]]                                         \
      ::mks::assert_detail::Fail(__FILE__, __LINE__, #condition, message); \
  } while (0)

#define MKS_ASSERT_OP_(a, op, b)                                        \
  do {                                                                  \
    const auto& mks_a_ = (a);                                           \
    const auto& mks_b_ = (b);                                           \
    if (!(mks_a_ op mks_b_)) [[unlikely]]                               \
      ::mks::assert_detail::FailCompare(__FILE__, __LINE__,             \
                                        #a " " #op " " #b, mks_a_, mks_b_); \
  } while (0)

#define MKS_ASSERT_EQ(a, b) MKS_ASSERT_OP_(a, ==, b)
#define MKS_ASSERT_NE(a, b) MKS_ASSERT_OP_(a, !=, b)
#define MKS_ASSERT_LT(a, b) MKS_ASSERT_OP_(a, <, b)
#define MKS_ASSERT_LE(a, b) MKS_ASSERT_OP_(a, <=, b)
#define MKS_ASSERT_GT(a, b) MKS_ASSERT_OP_(a, >, b)
#define MKS_ASSERT_GE(a, b) MKS_ASSERT_OP_(a, >=, b)

// Marks code that must never be reached.
#define MKS_UNREACHABLE(message) \
  ::mks::assert_detail::Fail(__FILE__, __LINE__, "unreachable", message)
