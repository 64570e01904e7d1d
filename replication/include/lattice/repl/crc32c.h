#pragma once
// CRC32C (Castagnoli polynomial 0x1EDC6F41, reflected 0x82F63B78), the checksum of every
// replication frame and op log record. On x86-64 CPUs with SSE4.2 the crc32 instruction computes
// it (detected once at run time); elsewhere a portable table-driven implementation (slicing by 8)
// does. Both give the same value for every input (tested), so every build and the simulator
// agree. Pure functions; thread-safe. Check value: Crc32c("123456789") == 0xE3069283.

#include <cstdint>
#include <string_view>

namespace lattice::repl {

// Extends `crc` (the CRC32C of earlier bytes, 0 for none) with `data`.
uint32_t Crc32cExtend(uint32_t crc, std::string_view data);

inline uint32_t Crc32c(std::string_view data) { return Crc32cExtend(0, data); }

// The two implementations behind Crc32cExtend, for tests and benchmarks. Crc32cExtendHardware
// may be called only when Crc32cHardwareAvailable().
uint32_t Crc32cExtendSoftware(uint32_t crc, std::string_view data);
uint32_t Crc32cExtendHardware(uint32_t crc, std::string_view data);
bool Crc32cHardwareAvailable();

}  // namespace lattice::repl
