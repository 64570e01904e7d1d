// Generic keyspace commands: DEL, UNLINK, EXISTS, TOUCH, TYPE, RENAME, RENAMENX, COPY, MOVE,
// RANDOMKEY, SWAPDB, SCAN, KEYS, the EXPIRE and TTL families, PERSIST, OBJECT, DEBUG DIGEST and
// DIGEST-VALUE.
//
// CRDT notes (docs/commands/generic.md has the table): DEL is an observed-remove, so a write made
// concurrently in another region survives it. RENAME, COPY and MOVE read the visible value at
// the command's instant and rebuild it in the destination as fresh local writes
// (Keyspace::WriteVisible); the source of RENAME/MOVE is then removed by an observed-remove DEL.
// SWAPDB swaps this node's databases only and is not replicated; it writes a snapshot, as the op
// log cannot record it.

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "server/server.h"
#include "store/replication.h"
#include "util/glob.h"
#include "util/sha1.h"

namespace lattice::server {
namespace {

using crdt::ObjectType;

constexpr std::string_view kNoSuchKey = "ERR no such key";
constexpr std::string_view kSameObject = "ERR source and destination objects are the same";
constexpr std::string_view kDbOutOfRange = "ERR DB index is out of range";

// Valkey's getIntFromObjectOrReply: a long long that also fits an int.
bool ParseInt32(std::string_view text, int* out) {
  int64_t value = 0;
  if (!ParseInt64(text, &value) || value < std::numeric_limits<int>::min() ||
      value > std::numeric_limits<int>::max()) {
    return false;
  }
  *out = static_cast<int>(value);
  return true;
}

// ---- DEL, UNLINK, EXISTS, TOUCH, TYPE ------------------------------------------------------

void CmdDel(CommandContext& ctx, ArgList args) {
  int64_t removed = 0;
  for (size_t i = 1; i < args.size(); ++i) {
    removed += ctx.keyspace().Delete(ctx.db(), args[i], ctx.now_ms) ? 1 : 0;
  }
  ctx.reply.Integer(removed);
}

// EXISTS and TOUCH: a key named twice counts twice (Valkey's rule). Reading a key updates its
// access time (Server's CommandContext::Read), which is what TOUCH is for.
void CmdExists(CommandContext& ctx, ArgList args) {
  int64_t count = 0;
  for (size_t i = 1; i < args.size(); ++i) {
    count += *ctx.ReadNoTouch(args[i]) != nullptr ? 1 : 0;
  }
  ctx.reply.Integer(count);
}

void CmdType(CommandContext& ctx, ArgList args) {
  KeyRef found = *ctx.ReadNoTouch(args[1]);
  ctx.reply.SimpleString(
      TypeName(found == nullptr ? crdt::ObjectType::kNone : found->TypeAt(ctx.now_ms)));
}

// ---- RENAME, RENAMENX, COPY, MOVE ------------------------------------------------------------

enum class MoveResult { kNoSource, kDestinationExists, kDone };

// Rebuilds `from` (in the client's db) into `to` (db `to_db`); removes the source when
// `remove_source`. `replace` allows overwriting an existing destination. COPY's source lookup is
// a read (Valkey counts a keyspace hit or miss for it); RENAME's and MOVE's are writes.
MoveResult OpTransfer(CommandContext& ctx, std::string_view from, int to_db, std::string_view to,
                      bool replace, bool remove_source) {
  Keyspace& ks = ctx.keyspace();
  const int from_db = ctx.db();
  const int64_t now_ms = ctx.now_ms;
  KeyRef source = *(remove_source ? ctx.Peek(from) : ctx.Read(from));
  if (source == nullptr) {
    return MoveResult::kNoSource;
  }
  if (!replace && ks.Find(to_db, to, now_ms) != nullptr) {
    return MoveResult::kDestinationExists;
  }
  // A copy first: writing the destination may rehash the table that holds the source.
  const VisibleValue value = ReadVisible(*source, now_ms);
  ks.WriteVisible(to_db, to, value, now_ms);
  if (remove_source) {
    (void)ks.Delete(from_db, from, now_ms);
  }
  return MoveResult::kDone;
}

void RenameGeneric(CommandContext& ctx, ArgList args, bool nx) {
  Keyspace& ks = ctx.keyspace();
  if (ks.Find(ctx.db(), args[1], ctx.now_ms) == nullptr) {
    ctx.reply.Error(kNoSuchKey);
    return;
  }
  if (args[1] == args[2]) {
    nx ? ctx.reply.Integer(0) : ctx.reply.Ok();
    return;
  }
  const MoveResult result = OpTransfer(ctx, args[1], ctx.db(), args[2], /*replace=*/!nx,
                                       /*remove_source=*/true);
  if (nx) {
    ctx.reply.Integer(result == MoveResult::kDone ? 1 : 0);
  } else {
    ctx.reply.Ok();
  }
}

void CmdRename(CommandContext& ctx, ArgList args) { RenameGeneric(ctx, args, false); }
void CmdRenameNx(CommandContext& ctx, ArgList args) { RenameGeneric(ctx, args, true); }

// Parses a DB index argument as Valkey's MOVE/COPY do; replies and returns false on error.
bool ParseDbIndex(CommandContext& ctx, std::string_view text, int* db) {
  if (!ParseInt32(text, db)) {
    ctx.reply.Error(errors::kNotInteger);
    return false;
  }
  if (*db < 0 || *db >= ctx.keyspace().databases()) {
    ctx.reply.Error(kDbOutOfRange);
    return false;
  }
  return true;
}

// COPY source destination [DB destination-db] [REPLACE]
void CmdCopy(CommandContext& ctx, ArgList args) {
  int dst_db = ctx.db();
  bool replace = false;
  for (size_t j = 3; j < args.size(); ++j) {
    const bool has_more = j + 1 < args.size();
    if (EqualsIgnoreCase(args[j], "replace")) {
      replace = true;
    } else if (EqualsIgnoreCase(args[j], "db") && has_more) {
      if (!ParseDbIndex(ctx, args[j + 1], &dst_db)) {
        return;
      }
      ++j;
    } else {
      ctx.reply.Error(errors::kSyntax);
      return;
    }
  }
  if (ctx.server.config().cluster_enabled() && (ctx.db() != 0 || dst_db != 0)) {
    ctx.reply.Error("ERR Copying to another database is not allowed in cluster mode");
    return;
  }
  if (dst_db == ctx.db() && args[1] == args[2]) {
    ctx.reply.Error(kSameObject);
    return;
  }
  const MoveResult result = OpTransfer(ctx, args[1], dst_db, args[2], replace,
                                       /*remove_source=*/false);
  ctx.reply.Integer(result == MoveResult::kDone ? 1 : 0);
}

void CmdMove(CommandContext& ctx, ArgList args) {
  int dst_db = 0;
  if (!ParseDbIndex(ctx, args[2], &dst_db)) {
    return;
  }
  if (dst_db == ctx.db()) {
    ctx.reply.Error(kSameObject);
    return;
  }
  const MoveResult result = OpTransfer(ctx, args[1], dst_db, args[1], /*replace=*/false,
                                       /*remove_source=*/true);
  ctx.reply.Integer(result == MoveResult::kDone ? 1 : 0);
}

// ---- RANDOMKEY, SWAPDB, KEYS, SCAN -----------------------------------------------------------

void CmdRandomKey(CommandContext& ctx, ArgList /*args*/) {
  Keyspace& ks = ctx.keyspace();
  std::string key = ks.RandomKey(ctx.db(), ctx.now_ms, ctx.server.rng());
  // "" is both "none" and a valid key name: tell them apart by looking it up.
  if (key.empty() && ks.Find(ctx.db(), "", ctx.now_ms) == nullptr) {
    ctx.reply.Null();
    return;
  }
  ctx.reply.Bulk(key);
}

void CmdSwapDb(CommandContext& ctx, ArgList args) {
  if (ctx.server.config().cluster_enabled()) {
    ctx.reply.Error("ERR SWAPDB is not allowed in cluster mode");
    return;
  }
  int a = 0, b = 0;
  if (!ParseInt32(args[1], &a)) {
    ctx.reply.Error("ERR invalid first DB index");
    return;
  }
  if (!ParseInt32(args[2], &b)) {
    ctx.reply.Error("ERR invalid second DB index");
    return;
  }
  const int dbs = ctx.keyspace().databases();
  if (a < 0 || a >= dbs || b < 0 || b >= dbs) {
    ctx.reply.Error(kDbOutOfRange);
    return;
  }
  ctx.keyspace().SwapDb(a, b);
  // The op log names databases by number and cannot record a swap: without a checkpoint, a
  // restart would replay earlier writes into the unswapped databases and undo it.
  if (Replication* replication = ctx.server.replication(); replication != nullptr) {
    if (Result<void> written = replication->Checkpoint(ctx.now_ms); !written.ok()) {
      ctx.keyspace().SwapDb(a, b);
      ctx.reply.Error("ERR SWAPDB failed to write a snapshot: " + written.error().message);
      return;
    }
  }
  ctx.reply.Ok();
}

// A lone "*" matches everything, including the empty key (GlobMatch("*", "") is false, as
// Valkey's stringmatchlen; Valkey short-circuits the same way). GlobMatch costs O(pattern *
// key) at worst, never exponential, so client patterns need no further cap.
bool KeyMatches(std::string_view pattern, bool all, std::string_view key) {
  return all || GlobMatch(pattern, key);
}

void CmdKeys(CommandContext& ctx, ArgList args) {
  const std::string_view pattern = args[1];
  const bool all = pattern == "*";
  std::vector<const std::string*> keys;
  const Keyspace& ks = ctx.keyspace();
  ks.ForEachListed(ctx.db(), [&](const std::string& key, const crdt::Key& value) {
    if (KeyMatches(pattern, all, key) && value.TypeAt(ctx.now_ms) != ObjectType::kNone) {
      keys.push_back(&key);
    }
  });
  ctx.reply.Array(keys.size());
  for (const std::string* key : keys) {
    ctx.reply.Bulk(*key);
  }
}

void CmdScan(CommandContext& ctx, ArgList args) {
  uint64_t cursor = 0;
  if (!ParseScanCursor(args[1], &cursor)) {
    ctx.reply.Error(errors::kInvalidCursor);
    return;
  }
  Result<ScanArgs> parsed = ParseScanArgs(args.subspan(2), kScanType);
  if (!parsed.ok()) {
    ctx.reply.Error(parsed.error());
    return;
  }
  const ScanArgs& options = *parsed;
  // Keyspace::Scan visits about `count` entries (hidden expired ones included), as Valkey's
  // COUNT bounds the work, not the reply; filters apply to what was visited.
  std::vector<const std::string*> keys;
  const uint64_t next = ctx.keyspace().Scan(
      ctx.db(), cursor, options.count, [&](const std::string& key, const crdt::Key& value) {
        const ObjectType type = value.TypeAt(ctx.now_ms);
        if (type == ObjectType::kNone || options.type_never ||
            (options.type && *options.type != type) || !options.Matches(key)) {
          return;
        }
        keys.push_back(&key);
      });
  ctx.reply.Array(2);
  ctx.reply.Bulk(std::to_string(next));
  ctx.reply.Array(keys.size());
  for (const std::string* key : keys) {
    ctx.reply.Bulk(*key);
  }
}

// ---- EXPIRE family, TTL family, PERSIST ------------------------------------------------------

enum ExpireFlag : unsigned { kExpireNx = 1, kExpireXx = 2, kExpireGt = 4, kExpireLt = 8 };

bool ParseExpireFlags(CommandContext& ctx, ArgList args, unsigned* flags) {
  for (size_t j = 3; j < args.size(); ++j) {
    if (EqualsIgnoreCase(args[j], "nx")) {
      *flags |= kExpireNx;
    } else if (EqualsIgnoreCase(args[j], "xx")) {
      *flags |= kExpireXx;
    } else if (EqualsIgnoreCase(args[j], "gt")) {
      *flags |= kExpireGt;
    } else if (EqualsIgnoreCase(args[j], "lt")) {
      *flags |= kExpireLt;
    } else {
      ctx.reply.Error("ERR Unsupported option " + std::string(args[j]));
      return false;
    }
  }
  if ((*flags & kExpireNx) && (*flags & (kExpireXx | kExpireGt | kExpireLt))) {
    ctx.reply.Error("ERR NX and XX, GT or LT options at the same time are not compatible");
    return false;
  }
  if ((*flags & kExpireGt) && (*flags & kExpireLt)) {
    ctx.reply.Error("ERR GT and LT options at the same time are not compatible");
    return false;
  }
  return true;
}

// Whether the NX/XX/GT/LT condition lets a new expiry `when` replace `current` (-1: none).
// No TTL counts as infinite: GT always fails on it, LT always succeeds.
bool ExpireConditionHolds(unsigned flags, int64_t current, int64_t when) {
  if ((flags & kExpireNx) && current != -1) {
    return false;
  }
  if ((flags & kExpireXx) && current == -1) {
    return false;
  }
  if ((flags & kExpireGt) && (current == -1 || when <= current)) {
    return false;
  }
  if ((flags & kExpireLt) && current != -1 && when >= current) {
    return false;
  }
  return true;
}

// Sets the key's expiry to `when_ms` if the condition holds: 1 if set (or, for a time already
// past, if the key was deleted), 0 otherwise.
int64_t OpExpire(Keyspace& ks, int db, std::string_view key, int64_t when_ms, unsigned flags,
                 int64_t now_ms) {
  KeyRef found = ks.Find(db, key, now_ms);
  if (found == nullptr) {
    return 0;
  }
  if (!ExpireConditionHolds(flags, found->ExpiryMs().value_or(-1), when_ms)) {
    return 0;
  }
  if (when_ms <= now_ms) {
    (void)ks.Delete(db, key, now_ms);  // Valkey deletes (and propagates a DEL)
    return 1;
  }
  Result<void> done =
      ks.Write(db, key, now_ms, [&](crdt::Key& k, const crdt::Writer& w, crdt::DotContext& shard) {
        return k.Expire(when_ms, w, shard);
      });
  return done.ok() ? 1 : 0;
}

// EXPIRE/PEXPIRE (relative: basetime is now) and EXPIREAT/PEXPIREAT (basetime 0).
void ExpireGeneric(CommandContext& ctx, ArgList args, int64_t basetime_ms, bool seconds) {
  unsigned flags = 0;
  if (!ParseExpireFlags(ctx, args, &flags)) {
    return;
  }
  int64_t when = 0;
  if (!ParseInt64(args[2], &when)) {
    ctx.reply.Error(errors::kNotInteger);
    return;
  }
  const std::string invalid = "ERR invalid expire time in '" + ctx.command.full_name + "' command";
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  constexpr int64_t kMin = std::numeric_limits<int64_t>::min();
  if (seconds) {
    if (when > kMax / 1000 || when < kMin / 1000) {
      ctx.reply.Error(invalid);
      return;
    }
    when *= 1000;
  }
  if (when > kMax - basetime_ms) {
    ctx.reply.Error(invalid);
    return;
  }
  when += basetime_ms;
  ctx.reply.Integer(OpExpire(ctx.keyspace(), ctx.db(), args[1], when, flags, ctx.now_ms));
}

void CmdExpire(CommandContext& ctx, ArgList args) { ExpireGeneric(ctx, args, ctx.now_ms, true); }
void CmdPExpire(CommandContext& ctx, ArgList args) { ExpireGeneric(ctx, args, ctx.now_ms, false); }
void CmdExpireAt(CommandContext& ctx, ArgList args) { ExpireGeneric(ctx, args, 0, true); }
void CmdPExpireAt(CommandContext& ctx, ArgList args) { ExpireGeneric(ctx, args, 0, false); }

// TTL (relative) or EXPIRETIME (absolute), in ms or rounded seconds: -2 missing, -1 no expiry.
void TtlGeneric(CommandContext& ctx, ArgList args, bool output_ms, bool absolute) {
  KeyRef found = *ctx.ReadNoTouch(args[1]);
  if (found == nullptr) {
    ctx.reply.Integer(-2);
    return;
  }
  const std::optional<int64_t> at = found->ExpiryMs();
  if (!at.has_value()) {
    ctx.reply.Integer(-1);
    return;
  }
  int64_t value = absolute ? *at : std::max<int64_t>(*at - ctx.now_ms, 0);
  if (!output_ms) {
    // (ms + 500) / 1000 without overflowing at INT64_MAX (PEXPIREAT k 9223372036854775807).
    value = value / 1000 + (value % 1000 >= 500 ? 1 : 0);
  }
  ctx.reply.Integer(value);
}

void CmdTtl(CommandContext& ctx, ArgList args) { TtlGeneric(ctx, args, false, false); }
void CmdPTtl(CommandContext& ctx, ArgList args) { TtlGeneric(ctx, args, true, false); }
void CmdExpireTime(CommandContext& ctx, ArgList args) { TtlGeneric(ctx, args, false, true); }
void CmdPExpireTime(CommandContext& ctx, ArgList args) { TtlGeneric(ctx, args, true, true); }

void CmdPersist(CommandContext& ctx, ArgList args) {
  Keyspace& ks = ctx.keyspace();
  KeyRef found = ks.Find(ctx.db(), args[1], ctx.now_ms);
  if (found == nullptr || !found->ExpiryMs().has_value()) {
    ctx.reply.Integer(0);
    return;
  }
  Result<void> done =
      ctx.Write(args[1], [&](crdt::Key& k, const crdt::Writer& w, crdt::DotContext& shard) {
        return k.Expire(0, w, shard);  // 0 is PERSIST
      });
  ctx.reply.Integer(done.ok() ? 1 : 0);
}

// ---- OBJECT ----------------------------------------------------------------------------------

int64_t ConfigInt(const Config& config, std::string_view name) {
  const std::string_view patterns[] = {name};
  const auto values = config.Get(patterns);
  int64_t value = 0;
  if (values.empty() || !ParseInt64(values.front().second, &value)) {
    return 0;
  }
  return value;
}

bool FitsInt64(std::string_view text) {
  int64_t ignored = 0;
  return text.size() <= 20 && ParseInt64(text, &ignored);
}

// The encoding Valkey would choose for the value as it is now (Valkey never converts a hash, set
// or zset back to a compact encoding after deletes; Lattice reports from the current contents),
// and for a list the one Valkey's conversions leave (crdt::List::SettleEncoding).
std::string_view OpEncoding(const Config& config, const KeyRef& key, int64_t now_ms) {
  const VisibleValue value = ReadVisible(key, now_ms);
  switch (value.type) {
    case ObjectType::kString:
      return FitsInt64(value.string) ? "int" : value.string.size() <= 44 ? "embstr" : "raw";
    case ObjectType::kHash: {
      const auto max_entries = ConfigInt(config, "hash-max-listpack-entries");
      const auto max_value = ConfigInt(config, "hash-max-listpack-value");
      bool compact = static_cast<int64_t>(value.hash.size()) <= max_entries;
      for (const auto& entry : value.hash) {
        compact = compact && entry.ttl_at_ms == 0 &&
                  static_cast<int64_t>(entry.field.size()) <= max_value &&
                  static_cast<int64_t>(entry.value.size()) <= max_value;
      }
      return compact ? "listpack" : "hashtable";
    }
    case ObjectType::kSet: {
      const auto size = static_cast<int64_t>(value.set.size());
      const bool all_ints = std::all_of(value.set.begin(), value.set.end(), FitsInt64);
      if (all_ints && size <= ConfigInt(config, "set-max-intset-entries")) {
        return "intset";
      }
      const auto max_value = ConfigInt(config, "set-max-listpack-value");
      const bool short_members = std::all_of(
          value.set.begin(), value.set.end(),
          [&](const std::string& m) { return static_cast<int64_t>(m.size()) <= max_value; });
      return short_members && size <= ConfigInt(config, "set-max-listpack-entries") ? "listpack"
                                                                                    : "hashtable";
    }
    case ObjectType::kZSet: {
      const auto max_value = ConfigInt(config, "zset-max-listpack-value");
      bool compact =
          static_cast<int64_t>(value.zset.size()) <= ConfigInt(config, "zset-max-listpack-entries");
      for (const auto& [member, score] : value.zset) {
        compact = compact && static_cast<int64_t>(member.size()) <= max_value;
      }
      return compact ? "listpack" : "skiplist";
    }
    case ObjectType::kStream:
      return "stream";
    case ObjectType::kList:  // as Valkey converts: crdt::List::SettleEncoding
      return key.full()->list().Quicklist(
                 crdt::ListpackLimits::OfFill(ConfigInt(config, "list-max-listpack-size")))
                 ? "quicklist"
                 : "listpack";
    case ObjectType::kNone:
      break;
  }
  return "";
}

void CmdObjectEncoding(CommandContext& ctx, ArgList args) {
  KeyRef found = *ctx.Read(args[2]);
  if (found == nullptr) {
    ctx.reply.Null();
    return;
  }
  ctx.reply.Bulk(OpEncoding(ctx.server.config(), *found, ctx.now_ms));
}

// Valkey shares the integers 0..9999 between keys (refcount INT_MAX); everything else is 1.
void CmdObjectRefCount(CommandContext& ctx, ArgList args) {
  KeyRef found = *ctx.Read(args[2]);
  if (found == nullptr) {
    ctx.reply.Null();
    return;
  }
  const std::optional<std::string> text = found->GetString(ctx.now_ms);
  int64_t n = -1;
  const bool shared = text && ParseInt64(*text, &n) && n >= 0 && n < 10000;
  ctx.reply.Integer(shared ? std::numeric_limits<int>::max() : 1);
}

// OBJECT IDLETIME and FREQ read the key's access word without touching it (Valkey's
// LOOKUP_NOTOUCH); as Valkey, a missing key answers null before the policy is checked.
void CmdObjectIdleTime(CommandContext& ctx, ArgList args) {
  KeyRef found = *ctx.Peek(args[2]);
  if (found == nullptr) {
    ctx.reply.Null();
    return;
  }
  const Evictor& evictor = ctx.server.evictor();
  if (evictor.lfu()) {
    ctx.reply.Error(
        "ERR An LFU maxmemory policy is selected, idle time not tracked. Please note that when "
        "switching between policies at runtime LRU and LFU data will take some time to adjust.");
    return;
  }
  ctx.reply.Integer(static_cast<int64_t>(evictor.IdleMs(*found.stored(), ctx.now_ms) / 1000));
}

void CmdObjectFreq(CommandContext& ctx, ArgList args) {
  KeyRef found = *ctx.Peek(args[2]);
  if (found == nullptr) {
    ctx.reply.Null();
    return;
  }
  const Evictor& evictor = ctx.server.evictor();
  if (!evictor.lfu()) {
    ctx.reply.Error(
        "ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note "
        "that when switching between policies at runtime LRU and LFU data will take some time "
        "to adjust.");
    return;
  }
  ctx.reply.Integer(evictor.Frequency(*found.stored(), ctx.now_ms));
}

void CmdObjectHelp(CommandContext& ctx, ArgList /*args*/) {
  static constexpr std::string_view kLines[] = {
      "OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
      "ENCODING <key>",
      "    Return the kind of internal representation used in order to store the value",
      "    associated with a <key>.",
      "FREQ <key>",
      "    Return the access frequency index of the <key>. The returned integer is",
      "    proportional to the logarithm of the recent access frequency of the key.",
      "IDLETIME <key>",
      "    Return the idle time of the <key>, that is the approximated number of",
      "    seconds elapsed since the last access to the key.",
      "REFCOUNT <key>",
      "    Return the number of references of the value associated with the specified",
      "    <key>.",
      "HELP",
      "    Print this help.",
  };
  ctx.reply.Array(std::size(kLines));
  for (std::string_view line : kLines) {
    ctx.reply.SimpleString(line);
  }
}

// ---- DEBUG DIGEST, DEBUG DIGEST-VALUE --------------------------------------------------------

// Valkey's digest primitives (debug.c): xor folds a SHA-1 into the digest (order-independent);
// mix makes the digest depend on order: digest = SHA1(digest ^ SHA1(data)).
void XorDigest(Sha1Digest& digest, std::string_view data) {
  const Sha1Digest hash = Sha1(data);
  for (size_t i = 0; i < digest.size(); ++i) {
    digest[i] ^= hash[i];
  }
}

void MixDigest(Sha1Digest& digest, std::string_view data) {
  XorDigest(digest, data);
  digest = Sha1(std::string_view(reinterpret_cast<const char*>(digest.data()), digest.size()));
}

std::string_view BigEndian32(uint32_t value, char (&buf)[4]) {
  for (int i = 0; i < 4; ++i) {
    buf[i] = static_cast<char>(value >> (24 - 8 * i));
  }
  return std::string_view(buf, 4);
}

// Valkey's xorObjectDigest over the logical value, folded into `digest`: type, then elements
// (xor-combined for unordered types), then the expiry. Valkey adds only the marker "!!expire!!"
// for a volatile key; Lattice also mixes the absolute expiry time, so replicas that disagree on
// a TTL give different digests. Datasets without TTLs digest exactly as Valkey's.
void DigestValueInto(Sha1Digest& digest, const VisibleValue& value) {
  static constexpr uint32_t kValkeyType[] = {0, 0, 4, 2, 3, 1, 6};  // OBJ_STRING, OBJ_HASH, ...
  char buf[4];
  MixDigest(digest, BigEndian32(kValkeyType[static_cast<int>(value.type)], buf));
  auto as_view = [](const Sha1Digest& d) {
    return std::string_view(reinterpret_cast<const char*>(d.data()), d.size());
  };
  switch (value.type) {
    case ObjectType::kString:
      MixDigest(digest, value.string);
      break;
    case ObjectType::kSet:
      for (const std::string& member : value.set) {
        XorDigest(digest, member);
      }
      break;
    case ObjectType::kList:
      for (const std::string& element : value.list) {
        MixDigest(digest, element);
      }
      break;
    case ObjectType::kStream:  // the entries in order (Valkey digests its listpack bytes)
      for (const auto& [id, fields] : value.stream) {
        MixDigest(digest, std::to_string(id.ms) + "-" + std::to_string(id.seq));
        for (const std::string& field : fields) MixDigest(digest, field);
      }
      break;
    case ObjectType::kZSet:
      for (const auto& [member, score] : value.zset) {
        Sha1Digest element{};
        MixDigest(element, member);
        MixDigest(element, FormatDouble(score));
        XorDigest(digest, as_view(element));
      }
      break;
    case ObjectType::kHash:
      for (const auto& entry : value.hash) {
        Sha1Digest element{};
        MixDigest(element, entry.field);
        MixDigest(element, entry.value);
        if (entry.ttl_at_ms != 0) {
          MixDigest(element, std::to_string(entry.ttl_at_ms));
        }
        XorDigest(digest, as_view(element));
      }
      break;
    case ObjectType::kNone:
      break;
  }
  if (value.expiry_ms.has_value()) {
    XorDigest(digest, "!!expire!!");
    MixDigest(digest, std::to_string(*value.expiry_ms));
  }
}

std::string Hex(const Sha1Digest& digest) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (uint8_t byte : digest) {
    out.push_back(kHex[byte >> 4]);
    out.push_back(kHex[byte & 15]);
  }
  return out;
}

// Valkey's computeDatasetDigest over the visible keys: per non-empty db, mix in the db id; per
// key, xor in (mix(name) then its value). Xor makes the result independent of table order, so
// two converged replicas give the same digest whatever their insertion history.
Sha1Digest OpDatasetDigest(const Keyspace& ks, int64_t now_ms) {
  Sha1Digest final_digest{};
  for (int db = 0; db < ks.databases(); ++db) {
    std::vector<Sha1Digest> keys;
    ks.ForEach(db, [&](const std::string& key, const crdt::Key& stored) {
      const VisibleValue value = ReadVisible(stored, now_ms);
      if (value.type == ObjectType::kNone) {
        return;
      }
      Sha1Digest digest{};
      MixDigest(digest, key);
      DigestValueInto(digest, value);
      keys.push_back(digest);
    });
    if (keys.empty()) {
      continue;
    }
    char buf[4];
    MixDigest(final_digest, BigEndian32(static_cast<uint32_t>(db), buf));
    for (const Sha1Digest& digest : keys) {
      XorDigest(final_digest, std::string_view(reinterpret_cast<const char*>(digest.data()), 20));
    }
  }
  return final_digest;
}

// DEBUG is refused unless enable-debug-command allows it (Valkey's protected action).
bool DebugAllowed(const CommandContext& ctx) {
  return ProtectedActionAllowed(ctx.server.config().enable_debug_command(), ctx.client.is_local);
}

void DebugHelp(CommandContext& ctx) {
  static constexpr std::string_view kLines[] = {
      "DEBUG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
      "DIGEST",
      "    Output a hex signature representing the current DB content.",
      "DIGEST-VALUE <key> [<key> ...]",
      "    Output a hex signature of the values of all the specified keys.",
      "HELP",
      "    Print this help.",
  };
  ctx.reply.Array(std::size(kLines));
  for (std::string_view line : kLines) {
    ctx.reply.SimpleString(line);
  }
}

// DEBUG is one command with its own dispatch (as in Valkey), so the protection check comes
// before any subcommand lookup.
void CmdDebug(CommandContext& ctx, ArgList args) {
  if (!DebugAllowed(ctx)) {
    ctx.reply.Error(ProtectedActionError("DEBUG", "enable-debug-command"));
    return;
  }
  const std::string_view sub = args[1];
  if (EqualsIgnoreCase(sub, "digest") && args.size() == 2) {
    ctx.reply.SimpleString(Hex(OpDatasetDigest(ctx.keyspace(), ctx.now_ms)));
  } else if (EqualsIgnoreCase(sub, "digest-value") && args.size() >= 2) {
    ctx.reply.Array(args.size() - 2);
    for (size_t j = 2; j < args.size(); ++j) {
      Sha1Digest digest{};
      if (const KeyRef found = ctx.keyspace().Find(ctx.db(), args[j], ctx.now_ms)) {
        DigestValueInto(digest, ReadVisible(*found, ctx.now_ms));
      }
      ctx.reply.SimpleString(Hex(digest));
    }
  } else if (EqualsIgnoreCase(sub, "help") && args.size() == 2) {
    DebugHelp(ctx);
  } else {
    ctx.reply.Error(errors::UnknownSubcommand(sub, "debug"));
  }
}

}  // namespace

void RegisterGenericFamily(CommandRegistry& registry) {
  // clang-format off
  constexpr uint32_t kKs = kAclKeyspace;
  constexpr KeySpec kOne = {.first = 1, .last = 1, .step = 1};
  constexpr KeySpec kAll = {.first = 1, .last = -1, .step = 1};
  constexpr KeySpec kTwo = {.first = 1, .last = 2, .step = 1};
  registry.Add({.name = "del", .arity = -2, .flags = kWrite, .keys = kAll, .acl = kKs | kAclWrite | kAclSlow, .handler = &CmdDel, .group = "generic", .summary = "Deletes one or more keys.", .since = "1.0.0", .complexity = "O(N)"});
  registry.Add({.name = "unlink", .arity = -2, .flags = kWrite | kFast, .keys = kAll, .acl = kKs | kAclWrite | kAclFast, .handler = &CmdDel, .group = "generic", .summary = "Asynchronously deletes one or more keys.", .since = "4.0.0", .complexity = "O(1) for each key removed regardless of its size."});
  registry.Add({.name = "exists", .arity = -2, .flags = kReadOnly | kFast, .keys = kAll, .acl = kKs | kAclRead | kAclFast, .handler = &CmdExists, .group = "generic", .summary = "Determines whether one or more keys exist.", .since = "1.0.0", .complexity = "O(N) where N is the number of keys to check."});
  registry.Add({.name = "touch", .arity = -2, .flags = kReadOnly | kFast, .keys = kAll, .acl = kKs | kAclRead | kAclFast, .handler = &CmdExists, .group = "generic", .summary = "Returns the number of existing keys out of those specified after updating the time they were last accessed.", .since = "3.2.1", .complexity = "O(N) where N is the number of keys that will be touched."});
  registry.Add({.name = "type", .arity = 2, .flags = kReadOnly | kFast, .keys = kOne, .acl = kKs | kAclRead | kAclFast, .handler = &CmdType, .group = "generic", .summary = "Determines the type of value stored at a key.", .since = "1.0.0", .complexity = "O(1)"});
  registry.Add({.name = "rename", .arity = 3, .flags = kWrite, .keys = kTwo, .acl = kKs | kAclWrite | kAclSlow, .handler = &CmdRename, .group = "generic", .summary = "Renames a key and overwrites the destination.", .since = "1.0.0", .complexity = "O(1)"});
  registry.Add({.name = "renamenx", .arity = 3, .flags = kWrite | kFast, .keys = kTwo, .acl = kKs | kAclWrite | kAclFast, .handler = &CmdRenameNx, .group = "generic", .summary = "Renames a key only when the target key name doesn't exist.", .since = "1.0.0", .complexity = "O(1)"});
  registry.Add({.name = "copy", .arity = -3, .flags = kWrite | kDenyOom, .keys = kTwo, .acl = kKs | kAclWrite | kAclSlow, .handler = &CmdCopy, .group = "generic", .summary = "Copies the value of a key to a new key.", .since = "6.2.0", .complexity = "O(N) worst case for collections, where N is the number of nested items. O(1) for string values."});
  registry.Add({.name = "move", .arity = 3, .flags = kWrite | kFast, .keys = kOne, .acl = kKs | kAclWrite | kAclFast, .handler = &CmdMove, .group = "generic", .summary = "Moves a key to another database.", .since = "1.0.0", .complexity = "O(1)"});
  registry.Add({.name = "randomkey", .arity = 1, .flags = kReadOnly, .acl = kKs | kAclRead | kAclSlow, .handler = &CmdRandomKey, .group = "generic", .summary = "Returns a random key name from the database.", .since = "1.0.0", .complexity = "O(1)"});
  registry.Add({.name = "swapdb", .arity = 3, .flags = kWrite | kFast, .acl = kKs | kAclWrite | kAclFast | kAclDangerous, .handler = &CmdSwapDb, .group = "server", .summary = "Swaps two databases.", .since = "4.0.0", .complexity = "O(N) where N is the count of clients watching or blocking on keys from both databases."});
  registry.Add({.name = "scan", .arity = -2, .flags = kReadOnly, .acl = kKs | kAclRead | kAclSlow, .handler = &CmdScan, .group = "generic", .summary = "Iterates over the key names in the database.", .since = "2.8.0", .complexity = "O(1) for every call. O(N) for a complete iteration, including enough command calls for the cursor to return back to 0. N is the number of elements inside the collection."});
  registry.Add({.name = "keys", .arity = 2, .flags = kReadOnly, .acl = kKs | kAclRead | kAclSlow | kAclDangerous, .handler = &CmdKeys, .group = "generic", .summary = "Returns all key names that match a pattern.", .since = "1.0.0", .complexity = "O(N) with N being the number of keys in the database, under the assumption that the key names in the database and the given pattern have limited length."});
  constexpr uint32_t kExpireFlags = kWrite | kFast;
  constexpr uint32_t kExpireAcl = kKs | kAclWrite | kAclFast;
  registry.Add({.name = "expire", .arity = -3, .flags = kExpireFlags, .keys = kOne, .acl = kExpireAcl, .handler = &CmdExpire, .group = "generic", .summary = "Sets the expiration time of a key in seconds.", .since = "1.0.0", .complexity = "O(1)"});
  registry.Add({.name = "pexpire", .arity = -3, .flags = kExpireFlags, .keys = kOne, .acl = kExpireAcl, .handler = &CmdPExpire, .group = "generic", .summary = "Sets the expiration time of a key in milliseconds.", .since = "2.6.0", .complexity = "O(1)"});
  registry.Add({.name = "expireat", .arity = -3, .flags = kExpireFlags, .keys = kOne, .acl = kExpireAcl, .handler = &CmdExpireAt, .group = "generic", .summary = "Sets the expiration time of a key to a Unix timestamp.", .since = "1.2.0", .complexity = "O(1)"});
  registry.Add({.name = "pexpireat", .arity = -3, .flags = kExpireFlags, .keys = kOne, .acl = kExpireAcl, .handler = &CmdPExpireAt, .group = "generic", .summary = "Sets the expiration time of a key to a Unix milliseconds timestamp.", .since = "2.6.0", .complexity = "O(1)"});
  constexpr uint32_t kTtlFlags = kReadOnly | kFast;
  constexpr uint32_t kTtlAcl = kKs | kAclRead | kAclFast;
  registry.Add({.name = "ttl", .arity = 2, .flags = kTtlFlags, .keys = kOne, .acl = kTtlAcl, .handler = &CmdTtl, .group = "generic", .summary = "Returns the expiration time in seconds of a key.", .since = "1.0.0", .complexity = "O(1)"});
  registry.Add({.name = "pttl", .arity = 2, .flags = kTtlFlags, .keys = kOne, .acl = kTtlAcl, .handler = &CmdPTtl, .group = "generic", .summary = "Returns the expiration time in milliseconds of a key.", .since = "2.6.0", .complexity = "O(1)"});
  registry.Add({.name = "expiretime", .arity = 2, .flags = kTtlFlags, .keys = kOne, .acl = kTtlAcl, .handler = &CmdExpireTime, .group = "generic", .summary = "Returns the expiration time of a key as a Unix timestamp.", .since = "7.0.0", .complexity = "O(1)"});
  registry.Add({.name = "pexpiretime", .arity = 2, .flags = kTtlFlags, .keys = kOne, .acl = kTtlAcl, .handler = &CmdPExpireTime, .group = "generic", .summary = "Returns the expiration time of a key as a Unix milliseconds timestamp.", .since = "7.0.0", .complexity = "O(1)"});
  registry.Add({.name = "persist", .arity = 2, .flags = kWrite | kFast, .keys = kOne, .acl = kKs | kAclWrite | kAclFast, .handler = &CmdPersist, .group = "generic", .summary = "Removes the expiration time of a key.", .since = "2.2.0", .complexity = "O(1)"});
  constexpr KeySpec kSubKey = {.first = 2, .last = 2, .step = 1};
  constexpr uint32_t kObjAcl = kKs | kAclRead | kAclSlow;
  registry.Add({.name = "object", .arity = -2, .acl = kAclSlow, .group = "generic", .summary = "A container for object introspection commands.", .since = "2.2.3", .complexity = "Depends on subcommand.", .subcommands = {
      {.name = "encoding", .arity = 3, .flags = kReadOnly, .keys = kSubKey, .acl = kObjAcl, .handler = &CmdObjectEncoding, .group = "generic", .summary = "Returns the internal encoding of a Redis object.", .since = "2.2.3", .complexity = "O(1)"},
      {.name = "freq", .arity = 3, .flags = kReadOnly, .keys = kSubKey, .acl = kObjAcl, .handler = &CmdObjectFreq, .group = "generic", .summary = "Returns the logarithmic access frequency counter of a Redis object.", .since = "4.0.0", .complexity = "O(1)"},
      {.name = "idletime", .arity = 3, .flags = kReadOnly, .keys = kSubKey, .acl = kObjAcl, .handler = &CmdObjectIdleTime, .group = "generic", .summary = "Returns the time since the last access to a Redis object.", .since = "2.2.3", .complexity = "O(1)"},
      {.name = "refcount", .arity = 3, .flags = kReadOnly, .keys = kSubKey, .acl = kObjAcl, .handler = &CmdObjectRefCount, .group = "generic", .summary = "Returns the reference count of a value of a key.", .since = "2.2.3", .complexity = "O(1)"},
      {.name = "help", .arity = 2, .flags = kLoading | kStale, .acl = kKs | kAclSlow, .handler = &CmdObjectHelp, .group = "generic", .summary = "Returns helpful text about the different subcommands.", .since = "6.2.0", .complexity = "O(1)"},
  }});
  registry.Add({.name = "debug", .arity = -2, .flags = kAdmin | kNoScript | kLoading | kStale, .acl = kAclAdmin | kAclSlow | kAclDangerous, .handler = &CmdDebug, .group = "server", .summary = "A container for debugging commands.", .since = "1.0.0", .complexity = "Depends on subcommand."});
  // clang-format on
}

}  // namespace lattice::server
