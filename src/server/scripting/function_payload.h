#pragma once
// FUNCTION DUMP / RESTORE payloads in Valkey's format, so a payload moves between Lattice and
// Valkey (or Redis 7) in both directions:
//   for each library: the byte 245 (RDB_OPCODE_FUNCTION2), then the library code as an RDB
//   string (length-prefixed; Valkey may also write it LZF-compressed, which is read here);
//   then the RDB version (2 bytes, little-endian) and the CRC-64/Jones of everything before it
//   (8 bytes, little-endian).
// Lattice writes RDB version 80 (Valkey 9's) and uncompressed strings. Reading accepts versions
// up to 11 and 80 (Valkey 9's rule, rdb-version-check strict), any version when relaxed.
// The framing (RDB strings, LZF, the footer) is util/rdb.h's. Pure functions of their input;
// every length is checked against it.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "lattice/common/result.h"
#include "util/rdb.h"

namespace lattice::server {

inline constexpr uint16_t kRdbVersion = 80;

std::string EncodeFunctionPayload(const std::vector<std::string>& codes);

// The libraries' code, in payload order; on error the reply text (without "ERR ").
Result<std::vector<std::string>> DecodeFunctionPayload(std::string_view payload, bool relaxed);

}  // namespace lattice::server
