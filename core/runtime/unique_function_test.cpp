#include "core/runtime/unique_function.h"

#include <gtest/gtest.h>

#include <array>
#include <memory>
#include <string>
#include <utility>

namespace mks::runtime {
namespace {

// Counts live copies of a callable's state, to see that every target is
// destroyed exactly once, wherever it lives.
struct Tally {
  explicit Tally(int* live) : live_(live) { ++*live_; }
  Tally(Tally&& other) noexcept : live_(other.live_) { ++*live_; }
  Tally(const Tally&) = delete;
  ~Tally() { --*live_; }
  int* live_;
};

TEST(UniqueFunctionTest, SmallCallablesLiveInlineLargeOnesOnTheHeap) {
  std::string text(100, 'x');
  UniqueFunction<size_t()> small = [text] { return text.size(); };
  EXPECT_TRUE(small.is_inline());
  EXPECT_EQ(small(), 100u);
  std::array<char, 200> big{};
  big[7] = 'y';
  UniqueFunction<char()> large = [big] { return big[7]; };
  EXPECT_FALSE(large.is_inline());
  EXPECT_EQ(large(), 'y');
  UniqueFunction<void()> empty;
  EXPECT_FALSE(empty);
  EXPECT_FALSE(empty.is_inline());
}

TEST(UniqueFunctionTest, OwnsMoveOnlyStateAndPassesArguments) {
  auto owned = std::make_unique<int>(40);
  UniqueFunction<int(int, std::string)> add =
      [owned = std::move(owned)](int a, std::string b) { return *owned + a + static_cast<int>(b.size()); };
  EXPECT_EQ(add(1, "ab"), 43);
  UniqueFunction<int(int, std::string)> moved = std::move(add);
  EXPECT_FALSE(add);  // NOLINT: a moved-from function is empty
  EXPECT_EQ(moved(0, ""), 40);
}

TEST(UniqueFunctionTest, EveryTargetIsDestroyedExactlyOnce) {
  int live = 0;
  {
    UniqueFunction<int()> inline_function = [tally = Tally(&live)] { return *tally.live_; };
    std::array<char, 100> padding{};
    UniqueFunction<int()> heap_function = [tally = Tally(&live), padding] {
      return *tally.live_ + padding[0];
    };
    EXPECT_TRUE(inline_function.is_inline());
    EXPECT_FALSE(heap_function.is_inline());
    EXPECT_EQ(live, 2);
    UniqueFunction<int()> target = std::move(inline_function);
    EXPECT_EQ(live, 2);
    target = std::move(heap_function);  // drops the inline target
    EXPECT_EQ(live, 1);
    EXPECT_EQ(target(), 1);
    target = nullptr;
    EXPECT_EQ(live, 0);
    EXPECT_FALSE(target);
    UniqueFunction<int()> again = [tally = Tally(&live)] { return 5; };
    again = std::move(again);  // self-assignment keeps the target
    EXPECT_EQ(live, 1);
    EXPECT_EQ(again(), 5);
  }
  EXPECT_EQ(live, 0);
}

// A callable whose move may throw cannot be relocated by a noexcept move of
// the wrapper, so it goes to the heap even when small.
TEST(UniqueFunctionTest, ThrowingMovesGoToTheHeap) {
  struct MayThrow {
    MayThrow() = default;
    MayThrow(MayThrow&&) noexcept(false) {}
    int operator()() const { return 3; }
  };
  UniqueFunction<int()> function = MayThrow{};
  EXPECT_FALSE(function.is_inline());
  UniqueFunction<int()> moved = std::move(function);
  EXPECT_EQ(moved(), 3);
}

}  // namespace
}  // namespace mks::runtime
