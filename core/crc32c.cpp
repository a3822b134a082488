#include "core/crc32c.h"

#include <array>
#include <cstring>

namespace mks {

namespace {

constexpr uint32_t kPolynomialReflected = 0x82f63b78;

// Slicing-by-4 tables: table[0] is the classic byte table, table[k] advances
// a byte that sits k positions further back. Computed at compile time, so
// there is no mutable global.
constexpr std::array<std::array<uint32_t, 256>, 4> MakeTables() {
  std::array<std::array<uint32_t, 256>, 4> tables{};
  for (uint32_t byte = 0; byte < 256; ++byte) {
    uint32_t crc = byte;
    for (int bit = 0; bit < 8; ++bit) {
      crc = (crc >> 1) ^ ((crc & 1) ? kPolynomialReflected : 0);
    }
    tables[0][byte] = crc;
  }
  for (uint32_t byte = 0; byte < 256; ++byte) {
    for (int k = 1; k < 4; ++k) {
      const uint32_t previous = tables[k - 1][byte];
      tables[k][byte] = (previous >> 8) ^ tables[0][previous & 0xff];
    }
  }
  return tables;
}

constexpr auto kTables = MakeTables();

#if defined(__x86_64__)
// The SSE4.2 crc32 instruction computes exactly this polynomial (it was
// added for iSCSI), eight bytes per instruction.
__attribute__((target("sse4.2"))) uint32_t Crc32cSse42(std::string_view data,
                                                       uint32_t initial) {
  uint64_t crc = ~initial;
  const char* bytes = data.data();
  size_t remaining = data.size();
  while (remaining >= 8) {
    uint64_t word;
    std::memcpy(&word, bytes, sizeof word);
    crc = __builtin_ia32_crc32di(crc, word);
    bytes += 8;
    remaining -= 8;
  }
  auto crc32 = static_cast<uint32_t>(crc);
  while (remaining > 0) {
    crc32 = __builtin_ia32_crc32qi(crc32, static_cast<uint8_t>(*bytes));
    ++bytes;
    --remaining;
  }
  return ~crc32;
}

bool HasSse42() {
  // Decided once per process from CPUID; never changes afterwards.
  static const bool has_sse42 = __builtin_cpu_supports("sse4.2");
  return has_sse42;
}
#endif

}  // namespace

uint32_t Crc32c(std::string_view data, uint32_t initial) {
#if defined(__x86_64__)
  if (HasSse42()) return Crc32cSse42(data, initial);
#endif
  return Crc32cPortable(data, initial);
}

uint32_t Crc32cPortable(std::string_view data, uint32_t initial) {
  uint32_t crc = ~initial;
  const auto* bytes = reinterpret_cast<const uint8_t*>(data.data());
  size_t remaining = data.size();
  while (remaining >= 4) {
    crc ^= static_cast<uint32_t>(bytes[0]) |
           (static_cast<uint32_t>(bytes[1]) << 8) |
           (static_cast<uint32_t>(bytes[2]) << 16) |
           (static_cast<uint32_t>(bytes[3]) << 24);
    crc = kTables[3][crc & 0xff] ^ kTables[2][(crc >> 8) & 0xff] ^
          kTables[1][(crc >> 16) & 0xff] ^ kTables[0][crc >> 24];
    bytes += 4;
    remaining -= 4;
  }
  while (remaining > 0) {
    crc = (crc >> 8) ^ kTables[0][(crc ^ *bytes) & 0xff];
    ++bytes;
    --remaining;
  }
  return ~crc;
}

}  // namespace mks
