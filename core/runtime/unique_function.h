// A move-only callable wrapper, for callbacks that own move-only state (a
// Promise, a unique_ptr). std::function requires copyable targets, and
// std::move_only_function is C++23.
//
// Small callables live inline, so the common timer and delivery callbacks
// (a few pointers, ids and perhaps one std::string) cost no allocation;
// larger ones, and those whose move may throw, go to the heap.
#pragma once

#include <cstddef>
#include <new>
#include <type_traits>
#include <utility>

#include "core/assertions.h"

namespace mks::runtime {

template <typename Signature>
class UniqueFunction;

template <typename R, typename... Args>
class UniqueFunction<R(Args...)> {
 public:
  // Room for a std::string plus two words: a simulated message delivery.
  static constexpr size_t kInlineBytes = 48;

  UniqueFunction() = default;
  UniqueFunction(std::nullptr_t) {}  // NOLINT: mirrors std::function
  template <typename F,
            typename = std::enable_if_t<!std::is_same_v<std::decay_t<F>, UniqueFunction>>>
  UniqueFunction(F callable) {  // NOLINT: implicit like std::function
    if constexpr (kFitsInline<F>) {
      ::new (static_cast<void*>(storage_)) F(std::move(callable));
      ops_ = &kInlineOps<F>;
    } else {
      ::new (static_cast<void*>(storage_)) F*(new F(std::move(callable)));
      ops_ = &kHeapOps<F>;
    }
  }

  UniqueFunction(UniqueFunction&& other) noexcept { TakeFrom(other); }
  UniqueFunction& operator=(UniqueFunction&& other) noexcept {
    if (this != &other) {
      Reset();
      TakeFrom(other);
    }
    return *this;
  }
  ~UniqueFunction() { Reset(); }

  explicit operator bool() const { return ops_ != nullptr; }

  // Whether the target lives inside this object (no allocation was made).
  bool is_inline() const { return ops_ != nullptr && ops_->is_inline; }

  R operator()(Args... args) {
    MKS_ASSERT_MSG(ops_ != nullptr, "call of an empty UniqueFunction");
    return ops_->call(storage_, std::forward<Args>(args)...);
  }

 private:
  // What the wrapper does with its target, per target type. Invariant:
  // `ops_` is null exactly when `storage_` holds nothing; otherwise it
  // holds either the target itself (is_inline) or a pointer to it.
  struct Ops {
    R (*call)(void* storage, Args&&... args);
    // Move-constructs the target into `to` and destroys it in `from`.
    void (*relocate)(void* from, void* to) noexcept;
    void (*destroy)(void* storage) noexcept;
    bool is_inline;
  };

  template <typename F>
  static constexpr bool kFitsInline = sizeof(F) <= kInlineBytes &&
                                      alignof(F) <= alignof(std::max_align_t) &&
                                      std::is_nothrow_move_constructible_v<F>;

  template <typename F>
  static constexpr Ops kInlineOps = {
      [](void* storage, Args&&... args) -> R {
        return (*std::launder(static_cast<F*>(storage)))(std::forward<Args>(args)...);
      },
      [](void* from, void* to) noexcept {
        F* source = std::launder(static_cast<F*>(from));
        ::new (to) F(std::move(*source));
        source->~F();
      },
      [](void* storage) noexcept { std::launder(static_cast<F*>(storage))->~F(); },
      true,
  };

  template <typename F>
  static constexpr Ops kHeapOps = {
      [](void* storage, Args&&... args) -> R {
        return (**std::launder(static_cast<F**>(storage)))(std::forward<Args>(args)...);
      },
      [](void* from, void* to) noexcept {
        ::new (to) F*(*std::launder(static_cast<F**>(from)));
      },
      [](void* storage) noexcept { delete *std::launder(static_cast<F**>(storage)); },
      false,
  };

  void TakeFrom(UniqueFunction& other) noexcept {
    MKS_ASSERT(ops_ == nullptr);
    if (other.ops_ == nullptr) return;
    other.ops_->relocate(other.storage_, storage_);
    ops_ = other.ops_;
    other.ops_ = nullptr;
  }

  // Empties this wrapper before the target's destructor runs, so a
  // destructor that reaches back here sees an empty function.
  void Reset() noexcept {
    const Ops* ops = ops_;
    ops_ = nullptr;
    if (ops != nullptr) ops->destroy(storage_);
  }

  alignas(std::max_align_t) unsigned char storage_[kInlineBytes];
  const Ops* ops_ = nullptr;
};

}  // namespace mks::runtime
