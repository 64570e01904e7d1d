#pragma once
// Loads an RDB file (store/rdb_file.h) into a Server as ordinary local writes: every key is
// Keyspace::WriteVisible (as RESTORE), so the ops are logged and replicate to the shard's other
// regions like any client's writes, and every FUNCTION2 library is FUNCTION LOAD REPLACE'd
// (replicated through the system db). Used by `lattice-server --import-rdb FILE` and by a
// replica's full resync (REPLICAOF).
//
// Nothing half-loaded: the file is read through once to check it (structure, values,
// checksum, database numbers) before the first write. Keys whose TTL has already passed are
// not loaded (as Valkey's loading as a primary), nor hash fields whose TTL has passed; keys of
// types Lattice does not hold (modules) are counted and logged, never dropped silently, and so
// are streams' consumer groups while ApplyStreamGroups loads none (the stream's entries and
// metadata are loaded).
// Not thread-safe: the event-loop thread owns the Server.

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "lattice/common/result.h"
#include "store/rdb_file.h"

namespace lattice::server {

class Server;

struct RdbImportSummary {
  RdbFileSummary file;
  std::map<std::string, uint64_t> loaded;  // keys written, by type name ("string", "hash", ...)
  uint64_t expired = 0;                    // keys whose TTL had passed: not written
  uint64_t functions_loaded = 0;
  uint64_t stream_groups_not_loaded = 0;     // streams whose consumer groups were not applied
  std::vector<std::string> function_errors;  // libraries FUNCTION LOAD refused, with why
  std::string source_version;                // the writer's redis-ver / valkey-ver aux field
  double seconds = 0;
};

struct RdbImportOptions {
  // Refuse when any client-visible database holds a key (--import-rdb's rule).
  bool require_empty = true;
  // Called after every `batch` keys written (the caller ends the turn: the op log is written
  // and peers are sent to, so memory stays bounded on a large file).
  std::function<void()> on_batch;
  uint64_t batch = 10000;
};

// kCorrupt for a file that does not read (nothing written), kInvalid when the region is not
// empty or a key's database is beyond `databases`.
Result<RdbImportSummary> ImportRdb(Server& server, std::string_view bytes,
                                   const RdbImportOptions& options);

// The one place a stream's consumer groups, read from an RDB file (ImportRdb) or a DUMP payload
// (RESTORE), are applied to the stream key just written. Consumer groups are not in the CRDT
// stream yet (issue #24, consumer groups): it applies nothing and returns false, and callers
// report the groups as not loaded (kStreamGroupsLoaded says so before anything is written).
inline constexpr bool kStreamGroupsLoaded = false;
bool ApplyStreamGroups(Server& server, int db, std::string_view key, const RdbStreamGroups& groups,
                       int64_t now_ms);

// The summary as log lines: version, keys by type, skipped types with counts, functions, time.
std::vector<std::string> DescribeImport(const RdbImportSummary& summary);

}  // namespace lattice::server
