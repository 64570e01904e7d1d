// Persistence and key transfer commands: SAVE, BGSAVE, BGREWRITEAOF and LASTSAVE (a checkpoint
// of the op log into a snapshot, server/persistence.h), DUMP and RESTORE (Valkey's payload
// format, store/rdb_value.h), so MIGRATE from Valkey into Lattice works and redis-server accepts
// Lattice's payloads.
//
// CRDT notes: RESTORE is an ordinary local write (Keyspace::WriteVisible: an observed-remove DEL
// of what REPLACE overwrites, then fresh writes of the value and its TTL), so it replicates as
// ops and a write another region made concurrently survives as for RENAME; a stream's consumer
// groups are restored with it (docs/semantics.md, "RESTORE of a stream with groups"). IDLETIME
// and FREQ set the restored key's access word in this region as Valkey's objectSetLRUOrLFU does
// (IDLETIME under an LRU or no LFU policy, FREQ under an LFU policy); access words are per
// region and do not replicate.

#include <cstdint>
#include <string>

#include "server/server.h"
#include "store/rdb_value.h"

namespace lattice::server {
namespace {

using crdt::ObjectType;
using Start = Persistence::Start;

constexpr std::string_view kNoDataDir = "ERR this node runs without a data dir (--dir)";

void CmdSave(CommandContext& ctx, ArgList /*args*/) {
  Persistence& persistence = ctx.server.persistence();
  if (persistence.bgsave_in_progress()) {
    ctx.reply.Error("ERR Background save already in progress");
    return;
  }
  Result<void> saved = persistence.Save(ctx.now_ms);
  if (!saved.ok()) {
    ctx.reply.Error(ctx.server.replication() == nullptr ? std::string(kNoDataDir)
                                                        : "ERR " + saved.error().message);
    return;
  }
  ctx.reply.Ok();
}

// BGSAVE [SCHEDULE | CANCEL]
void CmdBgSave(CommandContext& ctx, ArgList args) {
  Persistence& persistence = ctx.server.persistence();
  const bool schedule = args.size() == 2 && EqualsIgnoreCase(args[1], "schedule");
  if (args.size() == 2 && EqualsIgnoreCase(args[1], "cancel")) {
    if (persistence.CancelBackgroundSave()) {
      ctx.reply.SimpleString("Background saving cancelled");
    } else {
      ctx.reply.Error("ERR Background saving is currently not in progress or scheduled");
    }
    return;
  }
  if (args.size() > 2 || (args.size() == 2 && !schedule)) {
    ctx.reply.Error(errors::kSyntax);
    return;
  }
  switch (persistence.BackgroundSave(schedule)) {
    case Start::kStarted:
      ctx.reply.SimpleString("Background saving started");
      return;
    case Start::kScheduled:
      ctx.reply.SimpleString("Background saving scheduled");
      return;
    case Start::kAlreadyInProgress:
      ctx.reply.Error("ERR Background save already in progress");
      return;
    case Start::kBusy:
      ctx.reply.Error(
          "ERR Another child process is active (AOF?): can't BGSAVE right now. Use BGSAVE "
          "SCHEDULE in order to schedule a BGSAVE whenever possible.");
      return;
    case Start::kNotPossible:
      ctx.reply.Error(kNoDataDir);
      return;
  }
}

void CmdBgRewriteAof(CommandContext& ctx, ArgList /*args*/) {
  switch (ctx.server.persistence().BackgroundRewrite()) {
    case Start::kStarted:
      ctx.reply.SimpleString("Background append only file rewriting started");
      return;
    case Start::kScheduled:
      ctx.reply.SimpleString("Background append only file rewriting scheduled");
      return;
    case Start::kAlreadyInProgress:
    case Start::kBusy:
      ctx.reply.Error("ERR Background append only file rewriting already in progress");
      return;
    case Start::kNotPossible:
      ctx.reply.Error(kNoDataDir);
      return;
  }
}

void CmdLastSave(CommandContext& ctx, ArgList /*args*/) {
  ctx.server.persistence().Refresh();
  ctx.reply.Integer(ctx.server.persistence().last_save_s());
}

void CmdDump(CommandContext& ctx, ArgList args) {
  KeyRef found = *ctx.Read(args[1]);
  if (found == nullptr) {
    ctx.reply.Null();
    return;
  }
  ctx.reply.Bulk(EncodeDumpPayload(ReadVisible(found, ctx.now_ms)));
}

struct RestoreArgs {
  bool replace = false;
  bool absttl = false;
  int64_t idle_s = -1;  // IDLETIME seconds, -1 when not given
  int64_t freq = -1;    // FREQ (0..255), -1 when not given
};

// The options after the payload, with Valkey's checks and texts (IDLETIME and FREQ together are
// a syntax error).
Result<RestoreArgs> ParseRestoreArgs(ArgList args) {
  RestoreArgs out;
  for (size_t j = 4; j < args.size(); ++j) {
    const bool more = j + 1 < args.size();
    if (EqualsIgnoreCase(args[j], "replace")) {
      out.replace = true;
    } else if (EqualsIgnoreCase(args[j], "absttl")) {
      out.absttl = true;
    } else if (EqualsIgnoreCase(args[j], "idletime") && more && out.freq == -1) {
      if (!ParseInt64(args[++j], &out.idle_s)) return Unexpected(std::string(errors::kNotInteger));
      if (out.idle_s < 0)
        return Unexpected(std::string("ERR Invalid IDLETIME value, must be >= 0"));
    } else if (EqualsIgnoreCase(args[j], "freq") && more && out.idle_s == -1) {
      if (!ParseInt64(args[++j], &out.freq)) return Unexpected(std::string(errors::kNotInteger));
      if (out.freq < 0 || out.freq > 255) {
        return Unexpected(std::string("ERR Invalid FREQ value, must be >= 0 and <= 255"));
      }
    } else {
      return Unexpected(std::string(errors::kSyntax));
    }
  }
  return out;
}

// RESTORE's IDLETIME or FREQ, as Valkey's objectSetLRUOrLFU: FREQ is the LFU counter now under
// an LFU policy; IDLETIME backdates the LRU clock under any other policy.
void SetRestoredAccess(CommandContext& ctx, const StoredKey& restored, const RestoreArgs& args) {
  if (ctx.server.evictor().lfu()) {
    if (args.freq >= 0) {
      restored.set_access((LfuMinutes(ctx.now_ms) << 8) | static_cast<uint32_t>(args.freq));
    }
    return;
  }
  if (args.idle_s >= 0) {
    const uint64_t units = static_cast<uint64_t>(args.idle_s) * 1000 / kLruResolutionMs;
    const uint64_t span = uint64_t{kLruClockMax} + 1;
    const uint64_t clock = LruClock(ctx.now_ms);
    restored.set_access(static_cast<uint32_t>((clock + span - units % span) % span));
  }
}

// RESTORE key ttl payload [REPLACE] [ABSTTL] [IDLETIME s] [FREQ f], in Valkey's order of checks:
// options, an existing key, the TTL, the payload's footer, its value.
void CmdRestore(CommandContext& ctx, ArgList args) {
  Result<RestoreArgs> options = ParseRestoreArgs(args);
  if (!options.ok()) {
    ctx.reply.Error(options.error().message);
    return;
  }
  Keyspace& ks = ctx.keyspace();
  const bool exists = *ctx.Peek(args[1]) != nullptr;
  if (!options->replace && exists) {
    ctx.reply.Error("BUSYKEY Target key name already exists.");
    return;
  }
  int64_t ttl = 0;
  if (!ParseInt64(args[2], &ttl)) {
    ctx.reply.Error(errors::kNotInteger);
    return;
  }
  if (ttl < 0) {
    ctx.reply.Error("ERR Invalid TTL value, must be >= 0");
    return;
  }
  const bool relaxed = ctx.server.config().ValueOf("rdb-version-check") == "relaxed";
  Result<VisibleValue> value = DecodeDumpPayload(args[3], relaxed);
  if (!value.ok()) {
    ctx.reply.Error("ERR " + value.error().message);
    return;
  }
  if (ttl != 0 && !options->absttl) {
    ttl = ttl > INT64_MAX - ctx.now_ms ? INT64_MAX : ttl + ctx.now_ms;
  }
  if (ttl != 0 && ttl <= ctx.now_ms) {  // already expired: only what REPLACE removes is done
    if (exists) (void)ks.Delete(ctx.db(), args[1], ctx.now_ms);
    ctx.reply.Ok();
    return;
  }
  if (ttl != 0) value->expiry_ms = ttl;
  ks.WriteVisible(ctx.db(), args[1], *value, ctx.now_ms);
  if (const StoredKey* restored = ks.Stored(ctx.db(), args[1]); restored != nullptr) {
    SetRestoredAccess(ctx, *restored, *options);
  }
  ctx.reply.Ok();
}

}  // namespace

void RegisterPersistenceFamily(CommandRegistry& registry) {
  // clang-format off
  constexpr uint32_t kKs = kAclKeyspace;
  constexpr KeySpec kOne = {.first = 1, .last = 1, .step = 1};
  constexpr uint32_t kAdminAcl = kAclAdmin | kAclSlow | kAclDangerous;
  registry.Add({.name = "save", .arity = 1, .flags = kAdmin | kNoScript | kNoMulti, .acl = kAdminAcl, .handler = &CmdSave, .group = "server", .summary = "Synchronously saves the database(s) to disk.", .since = "1.0.0", .complexity = "O(N) where N is the total number of keys in all databases"});
  registry.Add({.name = "bgsave", .arity = -1, .flags = kAdmin | kNoScript, .acl = kAdminAcl, .handler = &CmdBgSave, .group = "server", .summary = "Asynchronously saves the database(s) to disk.", .since = "1.0.0", .complexity = "O(1)"});
  registry.Add({.name = "bgrewriteaof", .arity = 1, .flags = kAdmin | kNoScript, .acl = kAdminAcl, .handler = &CmdBgRewriteAof, .group = "server", .summary = "Asynchronously rewrites the append-only file to disk.", .since = "1.0.0", .complexity = "O(1)"});
  registry.Add({.name = "lastsave", .arity = 1, .flags = kLoading | kStale | kFast, .acl = kAclAdmin | kAclFast | kAclDangerous, .handler = &CmdLastSave, .group = "server", .summary = "Returns the Unix timestamp of the last successful save to disk.", .since = "1.0.0", .complexity = "O(1)"});
  registry.Add({.name = "dump", .arity = 2, .flags = kReadOnly, .keys = kOne, .acl = kKs | kAclRead | kAclSlow, .handler = &CmdDump, .group = "generic", .summary = "Returns a serialized representation of the value stored at a key.", .since = "2.6.0", .complexity = "O(1) to access the key and additional O(N*M) to serialize it, where N is the number of Redis objects composing the value and M their average size. For small string values the time complexity is thus O(1)+O(1*M) where M is small, so simply O(1)."});
  registry.Add({.name = "restore", .arity = -4, .flags = kWrite | kDenyOom, .keys = kOne, .acl = kKs | kAclWrite | kAclSlow | kAclDangerous, .handler = &CmdRestore, .group = "generic", .summary = "Creates a key from the serialized representation of a value.", .since = "2.6.0", .complexity = "O(1) to create the new key and additional O(N*M) to reconstruct the serialized value, where N is the number of Redis objects composing the value and M their average size. For small string values the time complexity is thus O(1)+O(1*M) where M is small, so simply O(1). However for sorted set values the complexity is O(N*M*log(N)) because inserting values into sorted sets is O(log(N))."});
  registry.Add({.name = "restore-asking", .arity = -4, .flags = kWrite, .keys = kOne, .acl = kKs | kAclWrite | kAclSlow | kAclDangerous, .handler = &CmdRestore, .group = "server", .summary = "An internal command for migrating keys in a cluster.", .since = "3.0.0", .complexity = "O(1) to create the new key and additional O(N*M) to reconstruct the serialized value, where N is the number of Redis objects composing the value and M their average size."});
  // clang-format on
}

}  // namespace lattice::server
