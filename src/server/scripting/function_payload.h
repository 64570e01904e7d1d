#pragma once
// FUNCTION DUMP / RESTORE payloads in Valkey's format, so a payload moves between Lattice and
// Valkey (or Redis 7) in both directions:
//   for each library: the byte 245 (RDB_OPCODE_FUNCTION2), then the library code as an RDB
//   string (length-prefixed; Valkey may also write it LZF-compressed, which is read here);
//   then the RDB version (2 bytes, little-endian) and the CRC-64/Jones of everything before it
//   (8 bytes, little-endian).
// Lattice writes RDB version 80 (Valkey 9's) and uncompressed strings. Reading accepts versions
// up to 11 and 80 (Valkey 9's rule, rdb-version-check strict), any version when relaxed.
// Pure functions of their input; every length is checked against it.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "lattice/common/result.h"

namespace lattice::server {

inline constexpr uint16_t kRdbVersion = 80;

// CRC-64/Jones as Valkey's crc64 (reflected, polynomial 0xad93d23594c935a9, no final xor):
// Crc64(0, "123456789") == 0xe9c6d914c4b8d9ca.
uint64_t Crc64(uint64_t crc, std::string_view data);

std::string EncodeFunctionPayload(const std::vector<std::string>& codes);

// The libraries' code, in payload order; on error the reply text (without "ERR ").
Result<std::vector<std::string>> DecodeFunctionPayload(std::string_view payload, bool relaxed);

// LZF decompression (the format Valkey's RDB strings use) of `in` into exactly `size` bytes;
// false when the input is malformed or does not produce `size` bytes.
bool LzfDecompress(std::string_view in, size_t size, std::string* out);

}  // namespace lattice::server
