#pragma once
// CRC32C (Castagnoli polynomial 0x1EDC6F41, reflected 0x82F63B78), the checksum of every
// replication frame. A portable table-driven software implementation (slicing by 8); no CPU
// intrinsics, so every build and the simulator compute the same value. Pure functions;
// thread-safe. Check value: Crc32c("123456789") == 0xE3069283.

#include <cstdint>
#include <string_view>

namespace lattice::repl {

// Extends `crc` (the CRC32C of earlier bytes, 0 for none) with `data`.
uint32_t Crc32cExtend(uint32_t crc, std::string_view data);

inline uint32_t Crc32c(std::string_view data) { return Crc32cExtend(0, data); }

}  // namespace lattice::repl
