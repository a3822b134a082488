// CRC-32C (Castagnoli), the checksum LevelDB and iSCSI use, computed in
// portable code so every platform yields the same value.
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

}  // namespace mks
