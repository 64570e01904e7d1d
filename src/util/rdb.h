#pragma once
// The framing Valkey's RDB format shares between its files and its DUMP payloads, so that
// FUNCTION DUMP/RESTORE, DUMP/RESTORE (store/rdb_value.h) and a future RDB file reader read and
// write it once:
// - lengths: 6 bits (00xxxxxx), 14 bits (01xxxxxx xxxxxxxx, big-endian), 32 or 64 bits (0x80 or
//   0x81, then big-endian), or a special encoding (11xxxxxx: 0..2 an integer string of 1, 2 or 4
//   bytes little-endian, 3 an LZF-compressed string);
// - strings: a length then the bytes, or a special encoding;
// - payloads (DUMP, FUNCTION DUMP): the body, the RDB version (2 bytes little-endian) and the
//   CRC-64/Jones of everything before it (8 bytes little-endian).
// Pure functions of their input; RdbReader checks every length against the bytes it was given
// and never allocates more than a bounded multiple of them. Not thread-safe per reader.

#include <cstdint>
#include <string>
#include <string_view>

#include "lattice/common/result.h"

namespace lattice::server {

// CRC-64/Jones as Valkey's crc64 (reflected, polynomial 0xad93d23594c935a9, no final xor):
// Crc64(0, "123456789") == 0xe9c6d914c4b8d9ca.
uint64_t Crc64(uint64_t crc, std::string_view data);

// LZF decompression (the format Valkey's RDB strings use) of `in` into exactly `size` bytes;
// false when the input is malformed or does not produce `size` bytes.
bool LzfDecompress(std::string_view in, size_t size, std::string* out);

void RdbPutLength(std::string& out, uint64_t len);
void RdbPutString(std::string& out, std::string_view bytes);  // always uncompressed
void RdbPutU16(std::string& out, uint16_t value);             // little-endian

// Appends the version and the CRC-64 footer to `body`.
std::string RdbSealPayload(std::string body, uint16_t version);

// The RDB versions a payload may carry: up to 11 (Redis 7.2, Valkey 7.2 and 8) and 80 (Valkey
// 9), Valkey 9's rule under rdb-version-check strict; any version when relaxed.
bool RdbVersionAccepted(uint16_t version, bool relaxed);

// The body of a payload whose footer is well formed, whose version is accepted and whose CRC
// matches; an error (kInvalid, "DUMP payload version or checksum are wrong") otherwise.
Result<std::string_view> RdbOpenPayload(std::string_view payload, bool relaxed);

// Reads RDB lengths and strings from a bounded input. Every call returns false (and reads
// nothing useful) once the input is exhausted or malformed.
class RdbReader {
 public:
  explicit RdbReader(std::string_view in) : in_(in) {}
  bool done() const { return pos_ == in_.size(); }
  size_t remaining() const { return in_.size() - pos_; }
  size_t pos() const { return pos_; }  // bytes read so far: a corrupt file's error offset
  bool Byte(uint8_t* out);
  bool Take(uint64_t len, std::string_view* out);
  // A length, or (encoded = true) a special encoding's type in *len.
  bool Length(uint64_t* len, bool* encoded);
  // A plain length (a special encoding is an error).
  bool Length(uint64_t* len);
  // A string of at most `size_max` bytes once decoded (integers print in decimal).
  bool String(std::string* out, uint64_t size_max);
  bool LittleEndian(int bytes, uint64_t* out);

 private:
  bool BigEndian(int bytes, uint64_t* out);
  std::string_view in_;
  size_t pos_ = 0;
};

}  // namespace lattice::server
