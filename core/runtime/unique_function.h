// A move-only callable wrapper, for callbacks that own move-only state (a
// Promise, a unique_ptr). std::function requires copyable targets, and
// std::move_only_function is C++23.
#pragma once

#include <memory>
#include <type_traits>
#include <utility>

#include "core/assertions.h"

namespace mks::runtime {

template <typename Signature>
class UniqueFunction;

template <typename R, typename... Args>
class UniqueFunction<R(Args...)> {
 public:
  UniqueFunction() = default;
  UniqueFunction(std::nullptr_t) {}  // NOLINT: mirrors std::function
  template <typename F,
            typename = std::enable_if_t<!std::is_same_v<std::decay_t<F>, UniqueFunction>>>
  UniqueFunction(F callable)  // NOLINT: implicit like std::function
      : target_(std::make_unique<Holder<F>>(std::move(callable))) {}

  UniqueFunction(UniqueFunction&&) noexcept = default;
  UniqueFunction& operator=(UniqueFunction&&) noexcept = default;

  explicit operator bool() const { return target_ != nullptr; }

  R operator()(Args... args) {
    MKS_ASSERT_MSG(target_ != nullptr, "call of an empty UniqueFunction");
    return target_->Call(std::forward<Args>(args)...);
  }

 private:
  struct Base {
    virtual ~Base() = default;
    virtual R Call(Args... args) = 0;
  };
  template <typename F>
  struct Holder final : Base {
    explicit Holder(F f) : callable(std::move(f)) {}
    R Call(Args... args) override { return callable(std::forward<Args>(args)...); }
    F callable;
  };
  std::unique_ptr<Base> target_;
};

}  // namespace mks::runtime
