#pragma once
// One key's value in Valkey's RDB encoding: what DUMP writes and RESTORE reads, and what an RDB
// file holds after each key's type byte, so a value moves between Lattice and Valkey or
// redis-server (MIGRATE, DUMP/RESTORE) in both directions. The framing (lengths, strings, LZF,
// the payload footer) is util/rdb.h's.
//
// Writing: a type byte then the value in the plain encodings every Valkey and Redis since 2.4
// loads (and converts to its compact encodings as its limits say): string (0), list (1), set
// (2), hash (4), sorted set with binary scores (5); a hash some of whose fields have a TTL is
// Valkey 9's hash with field TTLs (22); a stream, with its consumer groups, is Redis 7.0's
// listpacks (19), or 21 when a consumer's active time must be kept (store/rdb_stream.h). DUMP
// payloads carry RDB version 10, the newest redis-server 7.0 accepts (it refuses any payload
// newer than its own RDB_VERSION), 11 for a stream of type 21, or 80 (Valkey 9) for a hash with
// field TTLs, which only Valkey 9 reads.
// Reading: those, plus every encoding Valkey 9, Valkey 7/8 and Redis 2.6 to 7.2 write: zset
// with text scores (3), ziplist list/zset/hash (10, 12, 13), intset (11), quicklist of ziplists
// (14) or listpacks (18), listpack hash/zset/set (16, 17, 20), Valkey 9's hash with field TTLs
// (22: field, value, absolute expiry ms or -1), streams (15, 19, 21: entries, metadata and
// consumer groups into the value, the groups also in their RDB form beside it). Not read: the
// zipmap hash (9, Redis before 2.6) and modules (Lattice has no such type): a kCorrupt error.
// The key's TTL is not part of a value (RESTORE takes the TTL apart); field TTLs are kept both
// ways (type 22).
//
// Every length and count is checked against the bytes given; decoding never reserves more than
// a bounded multiple of its input. Pure functions; thread-safe.

#include <cstdint>
#include <string>
#include <string_view>

#include "lattice/common/result.h"
#include "store/keyspace.h"
#include "store/rdb_stream.h"
#include "util/rdb.h"

namespace lattice::server {

// The RDB version Lattice's DUMP payloads carry (redis-server 7.0's RDB_VERSION).
inline constexpr uint16_t kDumpRdbVersion = 10;

// The RDB version of Redis 7.2 / Valkey 7.2 and 8, the first with stream type 21.
inline constexpr uint16_t kStream3RdbVersion = 11;

// The RDB version of Valkey 9, whose hash with field TTLs (type 22) redis-server 7.0 cannot read.
inline constexpr uint16_t kFieldTtlRdbVersion = 80;

// Whether `value` is a hash with a field that has a TTL: written as type 22, which needs RDB
// version 80 (RdbVersionFor: 80 then, 11 for a stream of type 21, else kDumpRdbVersion).
bool HasFieldTtls(const VisibleValue& value);
uint16_t RdbVersionFor(const VisibleValue& value);

// The type byte and the value (no key expiry). `value.type` is not kNone. A hash with field TTLs
// is Valkey 9's type 22 (each field's absolute expiry in ms, -1 for none); a stream carries its
// consumer groups (value.stream_groups); every other value is in a plain encoding every version
// reads.
std::string EncodeRdbValue(const VisibleValue& value);
// Reads one value (type byte first) from the whole of `bytes`: kCorrupt on anything malformed,
// trailing bytes included. A stream's consumer groups go to value.stream_groups and, in their
// RDB form, to *groups when given (cleared first; empty for other types).
Result<VisibleValue> DecodeRdbValue(std::string_view bytes, RdbStreamGroups* groups = nullptr);

// Whether ReadRdbValue reads `rdb_type` (one of the types above; not modules).
bool RdbValueTypeKnown(uint8_t rdb_type);
// Reads one value of `rdb_type` at `in`'s position (what follows the key in an RDB file), leaving
// `in` after it; false when malformed, empty or of a type not read. The value has no expiry.
// Groups as DecodeRdbValue.
bool ReadRdbValue(RdbReader& in, uint8_t rdb_type, VisibleValue* value,
                  RdbStreamGroups* groups = nullptr);

// DUMP's payload: EncodeRdbValue, then the version and CRC-64 footer.
std::string EncodeDumpPayload(const VisibleValue& value);
// RESTORE's reading: kInvalid ("DUMP payload version or checksum are wrong") when the footer
// fails, kCorrupt ("Bad data format") when the value does not decode. Groups as DecodeRdbValue.
Result<VisibleValue> DecodeDumpPayload(std::string_view payload, bool relaxed,
                                       RdbStreamGroups* groups = nullptr);

}  // namespace lattice::server
