// CRC-32C (Castagnoli), the checksum LevelDB and iSCSI use. Computed with
// the CPU's crc32 instruction where there is one (x86-64 with SSE4.2) and in
// portable code elsewhere; both give the same value on every platform.
//
// Detects every error of up to three flipped bits and every burst of up to
// 32 bits in the messages the store writes; it is a guard against bit rot and
// torn writes, not against an adversary.
#pragma once

#include <cstdint>
#include <string_view>

namespace mks {

// Returns the CRC-32C of `data` continued from `initial`, the CRC of the
// bytes before it (0 for a fresh start): Crc32c(b, Crc32c(a)) == Crc32c(a+b).
uint32_t Crc32c(std::string_view data, uint32_t initial = 0);

// The same function in portable code only; Crc32c uses it where the CPU has
// no crc32 instruction. Exposed so tests can compare the two.
uint32_t Crc32cPortable(std::string_view data, uint32_t initial = 0);

}  // namespace mks
