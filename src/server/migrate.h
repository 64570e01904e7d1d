#pragma once
// MIGRATE's arguments, and its copy of values to any Valkey-compatible server (Valkey's DUMP +
// RESTORE + DEL). Between Lattice shards during a slot's migration a key moves with its CRDT
// state instead (commands/cluster_family.cc); every other MIGRATE is a value copy: the region
// sends each existing key as `RESTORE key ttl payload [REPLACE]` (RESTORE-ASKING in cluster mode)
// after AUTH and SELECT, through the Server's Outbound (server/outbound.h), and deletes the keys
// the target took unless COPY is given.
//
// Unlike Valkey, whose MIGRATE blocks the whole server while it talks to the target, only the
// calling client waits: the region keeps serving others, so a write to a migrated key during the
// transfer is deleted with it (unless COPY). The payloads are taken when the command starts.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lattice/common/result.h"
#include "resp/request_parser.h"

namespace lattice::server {

class CommandContext;

struct MigrateArgs {
  std::string host;
  int64_t port = 0;
  int64_t db = 0;
  int64_t timeout_ms = 1000;  // Valkey: 0 or less means 1000
  bool copy = false;
  bool replace = false;
  std::optional<std::string> username;  // AUTH2
  std::optional<std::string> password;  // AUTH, AUTH2
  std::vector<std::string_view> keys;   // the key, or the KEYS list (views into the args)
};

// Valkey's parse order and error texts: the options first (syntax errors, the KEYS rule), then
// the timeout and the db as integers. The error is the reply text.
Result<MigrateArgs> ParseMigrateArgs(ArgList args);

// Copies `migrate.keys` that exist (NOKEY when none does) to the target and blocks the client
// until the target answered: OK, or Valkey's errors (IOERR ..., "ERR Target instance replied
// with error: ...").
void MigrateValues(CommandContext& ctx, ArgList args, const MigrateArgs& migrate);

}  // namespace lattice::server
