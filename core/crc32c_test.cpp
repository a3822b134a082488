#include "core/crc32c.h"

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <string>

namespace mks {
namespace {

// Check values from RFC 3720 (iSCSI), appendix B.4.
TEST(Crc32cTest, MatchesPublishedCheckValues) {
  EXPECT_EQ(Crc32c("123456789"), 0xe3069283u);
  EXPECT_EQ(Crc32c(std::string(32, '\0')), 0x8a9136aau);
  EXPECT_EQ(Crc32c(std::string(32, '\xff')), 0x62a8ab43u);
  std::string ascending;
  for (int i = 0; i < 32; ++i) ascending.push_back(static_cast<char>(i));
  EXPECT_EQ(Crc32c(ascending), 0x46dd794eu);
  EXPECT_EQ(Crc32c(""), 0u);
}

TEST(Crc32cTest, PortableCodeMatchesPublishedCheckValues) {
  EXPECT_EQ(Crc32cPortable("123456789"), 0xe3069283u);
  EXPECT_EQ(Crc32cPortable(std::string(32, '\xff')), 0x62a8ab43u);
  EXPECT_EQ(Crc32cPortable(""), 0u);
}

// Whichever code Crc32c picks on this machine, it agrees with the portable
// one, at every length and alignment and continued from any initial value.
RC_GTEST_PROP(Crc32cProperty, AgreesWithThePortableCode,
              (const std::string& data, uint32_t initial, size_t skip_seed)) {
  const size_t skip = data.empty() ? 0 : skip_seed % (data.size() + 1);
  const std::string_view view = std::string_view(data).substr(skip);
  RC_ASSERT(Crc32c(view, initial) == Crc32cPortable(view, initial));
}

RC_GTEST_PROP(Crc32cProperty, ExtendsAcrossSplits,
              (const std::string& data, size_t split_seed)) {
  const size_t split = data.empty() ? 0 : split_seed % (data.size() + 1);
  const std::string_view view(data);
  RC_ASSERT(Crc32c(view.substr(split), Crc32c(view.substr(0, split))) ==
            Crc32c(view));
}

RC_GTEST_PROP(Crc32cProperty, DetectsEverySingleBitFlip,
              (const std::string& data, size_t bit_seed)) {
  RC_PRE(!data.empty());
  std::string damaged = data;
  const size_t bit = bit_seed % (data.size() * 8);
  damaged[bit / 8] = static_cast<char>(damaged[bit / 8] ^ (1 << (bit % 8)));
  RC_ASSERT(Crc32c(damaged) != Crc32c(data));
}

}  // namespace
}  // namespace mks
