#pragma once
// The RDB file writer, the reader's counterpart (store/rdb_file.h): what `redis-cli --rdb`, a
// Valkey or redis-server replica of a Lattice region (SYNC, PSYNC) and a move back to Valkey load.
// A file is:
// - the header: "REDIS0010" (RDB version 10: redis-server 7.0 and every later Redis and Valkey
//   load it), "REDIS0011" (Redis 7.2, Valkey 7.2 and 8) when some stream is written as type 21
//   (a consumer's active time differs from its seen time), or "VALKEY080" (Valkey 9) when some
//   hash has field TTLs, whose type (22) needs it;
// - AUX fields: redis-ver, redis-bits, ctime, used-mem, repl-id and repl-offset (what a replica
//   takes as its primary's replication id and offset), aof-base 0;
// - per non-empty db: SELECTDB and RESIZEDB (keys, keys with a TTL), then each visible key:
//   EXPIRETIME_MS when it has a TTL, the value through store/rdb_value.h's EncodeRdbValue (the
//   encoding DUMP writes: one encoder; a stream with its consumer groups, as type 19, which
//   every version from redis-server 7.0 on reads, or 21), and the key;
// - EOF and the CRC-64 of everything before it.
// The system db (the policy table) is not written: it is Lattice's, invisible to commands.
// Only what a key shows at `now_ms` is written: CRDT metadata (tombstones, dots) never leaves.
//
// The writer streams through a callback in bounded chunks, so a large keyspace is never held
// twice; callers run it in a forked child (store/child_process.h) to write a consistent view
// without blocking the event loop. Not thread-safe.

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "lattice/common/result.h"
#include "store/keyspace.h"

namespace lattice::server {

struct RdbWriteOptions {
  std::string redis_ver = "7.2.4";  // what INFO's redis_version says
  int64_t ctime_s = 0;
  uint64_t used_mem = 0;
  std::string repl_id;  // empty: no repl-id / repl-offset AUX fields
  int64_t repl_offset = 0;
};

struct RdbWriteSummary {
  uint64_t keys = 0;
  uint64_t bytes = 0;
  int version = 0;  // 10, or 80 with field TTLs
};

// Writes the whole file through `out` (chunks of at most about 64 KB; false from `out` stops
// the write with an error). `now_ms` judges which keys and fields are still visible.
Result<RdbWriteSummary> WriteRdb(const Keyspace& keyspace, int64_t now_ms,
                                 const RdbWriteOptions& options,
                                 const std::function<bool(std::string_view)>& out);

// WriteRdb into `path` (written to `path`.tmp, synced, then renamed over it).
Result<RdbWriteSummary> WriteRdbFile(const Keyspace& keyspace, int64_t now_ms,
                                     const RdbWriteOptions& options, const std::string& path);

}  // namespace lattice::server
