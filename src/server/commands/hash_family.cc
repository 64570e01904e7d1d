// The hash command family: HSET, HGET and friends, HSCAN, HRANDFIELD, and Valkey 9's per-field
// TTL commands (HSETEX, HGETEX, HEXPIRE/HPEXPIRE/HEXPIREAT/HPEXPIREAT, HTTL/HPTTL/HEXPIRETIME/
// HPEXPIRETIME, HPERSIST) on the CRDT OrHash (crdt/or_hash.h).
//
// Shape (Dragonfly's): Cmd* functions parse arguments and write the reply; Op* functions hold the
// logic and return a result. Every write is one ctx.Write (Keyspace::Write) per CRDT op; a
// command that writes several fields issues one op per field, re-opening the key each time so
// that a reference never outlives a commit that may have dropped an emptied key. Reads look up
// with Access::kRead, which counts keyspace hits and misses as Valkey does.
//
// Expired but unreclaimed fields are hidden from every read (OrHash::Get takes now_ms); HLEN
// counts them, as Valkey does, until the active cycle or the next write to the key reclaims
// them (Keyspace::Open reclaims before a write).

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "lattice/crdt/numeric.h"
#include "server/server.h"
#include "util/glob.h"

namespace lattice::server {
namespace {

using crdt::ObjectType;

constexpr std::string_view kHashNotInteger = "ERR hash value is not an integer";
constexpr std::string_view kHashNotFloat = "ERR hash value is not a float";
constexpr std::string_view kNumFields =
    "ERR numfields should be greater than 0 and match the provided number of fields";
// A negative HRANDFIELD count asks for that many picks with repeats. Valkey streams them until
// the client's output limit closes it; we refuse counts that could not fit in memory instead.
constexpr uint64_t kMaxRandomPicks = uint64_t{1} << 24;

// ---- lookups --------------------------------------------------------------------------------

// A read of the hash at `key`: missing (key == nullptr), a visible hash, or another type.
struct HashLookup {
  KeyRef key;
  bool wrong_type = false;
};

// kRead lookups count keyspace hits and misses (Valkey's lookupKeyRead); kWrite ones, made to
// write the key (lookupKeyWrite), do not.
enum class Access { kRead, kWrite };

HashLookup LookupHash(CommandContext& ctx, std::string_view key, Access access = Access::kWrite) {
  Result<KeyRef> found =
      access == Access::kRead ? ctx.Read(key, ObjectType::kHash) : ctx.Peek(key, ObjectType::kHash);
  return found.ok() ? HashLookup{*found, false} : HashLookup{nullptr, true};
}

std::optional<std::string> VisibleValue(const HashLookup& hash, std::string_view field,
                                        int64_t now_ms) {
  if (hash.key == nullptr) {
    return std::nullopt;
  }
  return hash.key->HashGet(field, now_ms);
}

// Whether `field` is visible, without copying its value (a compact hash answers from its bytes).
bool Visible(const HashLookup& hash, std::string_view field, int64_t now_ms) {
  if (hash.key == nullptr) {
    return false;
  }
  return hash.key->full() != nullptr ? hash.key->hash().Visible(field, now_ms)
                                     : hash.key->HashGet(field, now_ms).has_value();
}

// The TTL of a visible field: nullopt for "no field", 0 for "no TTL", else the absolute ms.
std::optional<int64_t> VisibleTtl(const HashLookup& hash, std::string_view field, int64_t now_ms) {
  if (!Visible(hash, field, now_ms)) {
    return std::nullopt;
  }
  const std::optional<int64_t> at = hash.key->hash().FieldExpiry(field);
  return at.has_value() && *at > 0 ? *at : 0;
}

Result<void> SetField(CommandContext& ctx, std::string_view key, std::string_view field,
                      std::string_view value, bool keep_ttl) {
  return ctx.Write(key, [&](crdt::Key& k, const crdt::Writer& w, crdt::DotContext& shard) {
    return k.HSet(std::string(field), std::string(value), keep_ttl, w, shard);
  });
}

Result<void> DeleteFields(CommandContext& ctx, std::string_view key,
                          const std::vector<std::string>& fields) {
  auto done = ctx.Write(key, [&](crdt::Key& k, const crdt::Writer& w, crdt::DotContext& s) {
    return k.HDel(fields, w, s);
  });
  if (done.ok() && ctx.keyspace().Find(ctx.db(), key, ctx.now_ms) == nullptr) {
    // The last field went: Valkey deletes the key. HDEL leaves the hash's creation event
    // behind (it is compacted only once stable), so a DEL removes it and the entry goes now,
    // and DBSIZE, SCAN and RANDOMKEY stop seeing it.
    (void)ctx.keyspace().Delete(ctx.db(), key, ctx.now_ms);
  }
  return done;
}

// at_ms == 0 removes the TTL (HPERSIST).
Result<void> ExpireField(CommandContext& ctx, std::string_view key, std::string_view field,
                         int64_t at_ms) {
  return ctx.Write(key, [&](crdt::Key& k, const crdt::Writer& w, crdt::DotContext& shard) {
    return k.HExpire(std::string(field), at_ms, w, shard);
  });
}

// ---- HSET, HSETNX, HMSET, HDEL --------------------------------------------------------------

// Sets each (field, value) pair; returns how many fields were created.
Result<int64_t> OpSetFields(CommandContext& ctx, std::string_view key, ArgList pairs,
                            bool keep_ttl) {
  const HashLookup hash = LookupHash(ctx, key);
  if (hash.wrong_type) {
    return Unexpected(ErrorCode::kWrongType);
  }
  // One op for the whole command; a field named twice is created at most once.
  std::vector<std::pair<std::string, std::string>> writes;
  writes.reserve(pairs.size() / 2);
  int64_t created = 0;
  if (pairs.size() == 2) {  // the common case, without the set of names
    created = Visible(hash, pairs[0], ctx.now_ms) ? 0 : 1;
    writes.emplace_back(std::string(pairs[0]), std::string(pairs[1]));
  } else {
    absl::flat_hash_set<std::string_view> created_fields;
    for (size_t i = 0; i + 1 < pairs.size(); i += 2) {
      if (!Visible(hash, pairs[i], ctx.now_ms)) {
        created_fields.insert(pairs[i]);
      }
      writes.emplace_back(std::string(pairs[i]), std::string(pairs[i + 1]));
    }
    created = static_cast<int64_t>(created_fields.size());
  }
  // Key::HSetMany, in place on a compact hash.
  auto done = ctx.keyspace().HSetMany(ctx.db(), key, std::move(writes), keep_ttl, ctx.now_ms);
  if (!done.ok()) {
    return Unexpected(done.error());
  }
  return created;
}

void CmdHSet(CommandContext& ctx, ArgList args) {
  if (args.size() % 2 == 1) {
    ctx.reply.Error(errors::WrongArity(ctx.command.full_name));
    return;
  }
  Result<int64_t> created = OpSetFields(ctx, args[1], args.subspan(2), /*keep_ttl=*/false);
  if (!created.ok()) {
    ctx.reply.Error(created.error());
  } else if (ctx.command.full_name == "hmset") {
    ctx.reply.Ok();
  } else {
    ctx.reply.Integer(*created);
  }
}

void CmdHSetNx(CommandContext& ctx, ArgList args) {
  const HashLookup hash = LookupHash(ctx, args[1]);
  if (hash.wrong_type) {
    ctx.reply.Error(errors::kWrongType);
  } else if (Visible(hash, args[2], ctx.now_ms)) {
    ctx.reply.Integer(0);
  } else if (auto done = SetField(ctx, args[1], args[2], args[3], false); !done.ok()) {
    ctx.reply.Error(done.error());
  } else {
    ctx.reply.Integer(1);
  }
}

// Deletes the visible fields among `fields`; returns how many distinct ones it removed.
Result<int64_t> OpDeleteFields(CommandContext& ctx, std::string_view key, ArgList fields) {
  const HashLookup hash = LookupHash(ctx, key);
  if (hash.wrong_type) {
    return Unexpected(ErrorCode::kWrongType);
  }
  std::vector<std::string> present;
  for (std::string_view field : fields) {
    std::string name(field);
    if (Visible(hash, name, ctx.now_ms) &&
        std::find(present.begin(), present.end(), name) == present.end()) {
      present.push_back(std::move(name));
    }
  }
  if (present.empty()) {
    return 0;
  }
  if (auto done = DeleteFields(ctx, key, present); !done.ok()) {
    return Unexpected(done.error());
  }
  return static_cast<int64_t>(present.size());
}

void CmdHDel(CommandContext& ctx, ArgList args) {
  Result<int64_t> deleted = OpDeleteFields(ctx, args[1], args.subspan(2));
  if (deleted.ok()) {
    ctx.reply.Integer(*deleted);
  } else {
    ctx.reply.Error(deleted.error());
  }
}

// ---- reads ----------------------------------------------------------------------------------

void CmdHGet(CommandContext& ctx, ArgList args) {
  const HashLookup hash = LookupHash(ctx, args[1], Access::kRead);
  if (hash.wrong_type) {
    ctx.reply.Error(errors::kWrongType);
  } else if (auto value = VisibleValue(hash, args[2], ctx.now_ms)) {
    ctx.reply.Bulk(*value);
  } else {
    ctx.reply.Null();
  }
}

void CmdHMGet(CommandContext& ctx, ArgList args) {
  const HashLookup hash = LookupHash(ctx, args[1], Access::kRead);
  if (hash.wrong_type) {
    ctx.reply.Error(errors::kWrongType);
    return;
  }
  ctx.reply.Array(args.size() - 2);
  for (size_t i = 2; i < args.size(); ++i) {
    if (auto value = VisibleValue(hash, args[i], ctx.now_ms)) {
      ctx.reply.Bulk(*value);
    } else {
      ctx.reply.Null();
    }
  }
}

enum class Parts { kFields, kValues, kBoth };

void ReplyAll(CommandContext& ctx, ArgList args, Parts parts) {
  const HashLookup hash = LookupHash(ctx, args[1], Access::kRead);
  if (hash.wrong_type) {
    ctx.reply.Error(errors::kWrongType);
    return;
  }
  std::vector<std::pair<std::string, std::string>> all;
  if (hash.key != nullptr) {
    all = hash.key->hash().GetAll(ctx.now_ms);
  }
  if (parts == Parts::kBoth) {
    ctx.reply.Map(all.size());
  } else {
    ctx.reply.Array(all.size());
  }
  for (const auto& [field, value] : all) {
    if (parts != Parts::kValues) {
      ctx.reply.Bulk(field);
    }
    if (parts != Parts::kFields) {
      ctx.reply.Bulk(value);
    }
  }
}

void CmdHGetAll(CommandContext& ctx, ArgList args) { ReplyAll(ctx, args, Parts::kBoth); }
void CmdHKeys(CommandContext& ctx, ArgList args) { ReplyAll(ctx, args, Parts::kFields); }
void CmdHVals(CommandContext& ctx, ArgList args) { ReplyAll(ctx, args, Parts::kValues); }

void CmdHLen(CommandContext& ctx, ArgList args) {
  const HashLookup hash = LookupHash(ctx, args[1], Access::kRead);
  if (hash.wrong_type) {
    ctx.reply.Error(errors::kWrongType);
    return;
  }
  // Counts fields whose TTL has passed but that are not reclaimed yet (Valkey's HLEN).
  ctx.reply.Integer(hash.key != nullptr ? static_cast<int64_t>(hash.key->HashLen()) : 0);
}

void CmdHExists(CommandContext& ctx, ArgList args) {
  const HashLookup hash = LookupHash(ctx, args[1], Access::kRead);
  if (hash.wrong_type) {
    ctx.reply.Error(errors::kWrongType);
  } else {
    ctx.reply.Integer(Visible(hash, args[2], ctx.now_ms) ? 1 : 0);
  }
}

void CmdHStrLen(CommandContext& ctx, ArgList args) {
  const HashLookup hash = LookupHash(ctx, args[1], Access::kRead);
  if (hash.wrong_type) {
    ctx.reply.Error(errors::kWrongType);
  } else {
    auto value = VisibleValue(hash, args[2], ctx.now_ms);
    ctx.reply.Integer(value ? static_cast<int64_t>(value->size()) : 0);
  }
}

// ---- HINCRBY, HINCRBYFLOAT ------------------------------------------------------------------

// A counter cell made only of increments is not alive when they sum to zero (the crdt counter
// rule), so HINCRBY h f 0 on a new field would create nothing. Valkey creates the field with
// "0": we assign "0" first, an LWW base that the increment then adds to. Concurrent first
// increments from two regions still add up: each region's increment counts on any base.
// (HINCRBYFLOAT assigns its result directly and needs no base.)
Result<void> EnsureCounterBase(CommandContext& ctx, std::string_view key, std::string_view field) {
  if (VisibleValue(LookupHash(ctx, key), field, ctx.now_ms)) {
    return {};
  }
  return SetField(ctx, key, field, "0", /*keep_ttl=*/true);
}

Result<int64_t> OpHIncrBy(CommandContext& ctx, std::string_view key, std::string_view field,
                          int64_t by) {
  const HashLookup hash = LookupHash(ctx, key);
  if (hash.wrong_type) {
    return Unexpected(ErrorCode::kWrongType);
  }
  int64_t current = 0;
  if (auto text = VisibleValue(hash, field, ctx.now_ms)) {
    if (!ParseInt64(*text, &current)) {
      return Unexpected(std::string(kHashNotInteger));
    }
  }
  int64_t sum = 0;
  if (__builtin_add_overflow(current, by, &sum)) {
    return Unexpected(ErrorCode::kOverflow);
  }
  if (auto based = EnsureCounterBase(ctx, key, field); !based.ok()) {
    return Unexpected(based.error());
  }
  auto done = ctx.Write(key, [&](crdt::Key& k, const crdt::Writer& w, crdt::DotContext& s) {
    return k.HIncrBy(std::string(field), by, w, s);
  });
  if (!done.ok()) {
    // The counter refuses an increment that overflows this replica's running total even when
    // the visible value does not; assign the (checked) result instead.
    if (auto set = SetField(ctx, key, field, std::to_string(sum), true); !set.ok()) {
      return Unexpected(set.error());
    }
  }
  return sum;
}

void CmdHIncrBy(CommandContext& ctx, ArgList args) {
  int64_t by = 0;
  if (!ParseInt64(args[3], &by)) {
    ctx.reply.Error(errors::kNotInteger);
    return;
  }
  Result<int64_t> value = OpHIncrBy(ctx, args[1], args[2], by);
  if (value.ok()) {
    ctx.reply.Integer(*value);
  } else {
    ctx.reply.Error(value.error());
  }
}

Result<std::string> OpHIncrByFloat(CommandContext& ctx, std::string_view key,
                                   std::string_view field, long double by) {
  const HashLookup hash = LookupHash(ctx, key);
  if (hash.wrong_type) {
    return Unexpected(ErrorCode::kWrongType);
  }
  long double current = 0;
  if (auto text = VisibleValue(hash, field, ctx.now_ms)) {
    auto parsed = crdt::ParseLongDouble(*text);
    if (!parsed) {
      return Unexpected(std::string(kHashNotFloat));
    }
    current = *parsed;
  }
  const long double sum = current + by;
  if (std::isnan(sum) || std::isinf(sum)) {
    return Unexpected(ErrorCode::kNanOrInfinity);
  }
  // Valkey formats the result and replicates it as an HSET of that text, so that rounding can
  // never differ between replicas; we write it the same way (an LWW assignment that keeps the
  // TTL). A counter of long-double increments would round differently from Valkey's
  // step-by-step text round trips.
  std::string text = crdt::FormatLongDouble(sum);
  if (auto done = SetField(ctx, key, field, text, /*keep_ttl=*/true); !done.ok()) {
    return Unexpected(done.error());
  }
  return text;
}

void CmdHIncrByFloat(CommandContext& ctx, ArgList args) {
  auto by = crdt::ParseLongDouble(args[3]);
  if (!by) {
    ctx.reply.Error(errors::kNotFloat);
    return;
  }
  if (std::isnan(*by) || std::isinf(*by)) {
    ctx.reply.Error("ERR value is NaN or Infinity");
    return;
  }
  Result<std::string> value = OpHIncrByFloat(ctx, args[1], args[2], *by);
  if (value.ok()) {
    ctx.reply.Bulk(*value);
  } else {
    ctx.reply.Error(value.error());
  }
}

// ---- HRANDFIELD -----------------------------------------------------------------------------

void ReplyPicks(CommandContext& ctx, const std::vector<std::pair<std::string, std::string>>& all,
                const std::vector<size_t>& picks, bool with_values) {
  const bool nested = with_values && ctx.reply.protocol() == Protocol::kResp3;
  ctx.reply.Array(with_values && !nested ? picks.size() * 2 : picks.size());
  for (size_t index : picks) {
    if (nested) {
      ctx.reply.Array(2);
    }
    ctx.reply.Bulk(all[index].first);
    if (with_values) {
      ctx.reply.Bulk(all[index].second);
    }
  }
}

// Indices of the picked fields: `count` with repeats when !unique, else min(count, size)
// distinct ones (a partial Fisher-Yates shuffle).
std::vector<size_t> PickIndices(Rng& rng, size_t size, uint64_t count, bool unique) {
  std::vector<size_t> picks;
  if (size == 0) {
    return picks;
  }
  if (!unique) {
    picks.reserve(count);
    for (uint64_t i = 0; i < count; ++i) {
      picks.push_back(static_cast<size_t>(rng.Uniform(size)));
    }
    return picks;
  }
  picks.resize(size);
  for (size_t i = 0; i < size; ++i) {
    picks[i] = i;
  }
  const size_t take = static_cast<size_t>(std::min<uint64_t>(count, size));
  for (size_t i = 0; i < take && take < size; ++i) {
    std::swap(picks[i], picks[i + static_cast<size_t>(rng.Uniform(size - i))]);
  }
  picks.resize(take);
  return picks;
}

void CmdHRandField(CommandContext& ctx, ArgList args) {
  int64_t count = 0;
  bool with_values = false;
  if (args.size() >= 3) {
    if (!ParseInt64(args[2], &count)) {
      ctx.reply.Error(errors::kNotInteger);
      return;
    }
    if (count == std::numeric_limits<int64_t>::min()) {
      ctx.reply.Error(
          "ERR value is out of range, value must between -9223372036854775807 and "
          "9223372036854775807");
      return;
    }
    if (args.size() > 4 || (args.size() == 4 && !EqualsIgnoreCase(args[3], "withvalues"))) {
      ctx.reply.Error(errors::kSyntax);
      return;
    }
    with_values = args.size() == 4;
    constexpr int64_t kHalf = std::numeric_limits<int64_t>::max() / 2;
    if (with_values && (count < -kHalf || count > kHalf)) {
      ctx.reply.Error("ERR value is out of range");
      return;
    }
  }
  const HashLookup hash = LookupHash(ctx, args[1], Access::kRead);
  if (hash.wrong_type) {
    ctx.reply.Error(errors::kWrongType);
    return;
  }
  std::vector<std::pair<std::string, std::string>> all;
  if (hash.key != nullptr) {
    all = hash.key->hash().GetAll(ctx.now_ms);
  }
  if (args.size() < 3) {
    if (all.empty()) {
      ctx.reply.Null();
    } else {
      ctx.reply.Bulk(all[ctx.server.rng().Uniform(all.size())].first);
    }
    return;
  }
  const uint64_t magnitude = count < 0 ? static_cast<uint64_t>(-count) : count;
  if (count < 0 && !all.empty() && magnitude > kMaxRandomPicks) {
    ctx.reply.Error("ERR value is out of range");
    return;
  }
  ReplyPicks(ctx, all, PickIndices(ctx.server.rng(), all.size(), magnitude, count >= 0),
             with_values);
}

// ---- HSCAN ----------------------------------------------------------------------------------

// StableHash folded into [1, 2^63): the order in which a large hash is scanned, the same in
// every run, so a cursor stays meaningful while fields come and go.
uint64_t FieldHash(std::string_view field) {
  const uint64_t h = StableHash(field) & ((uint64_t{1} << 63) - 1);
  return h == 0 ? 1 : h;
}

int64_t ConfigInt(const Config& config, std::string_view name, int64_t fallback) {
  const std::string_view names[] = {name};
  auto found = config.Get(names);
  int64_t value = fallback;
  if (found.size() != 1 || !ParseInt64(found[0].second, &value)) {
    return fallback;
  }
  return value;
}

// Valkey keeps a small hash as a listpack and HSCAN returns all of it at once with cursor 0;
// a hash with TTL fields, many fields or long strings is a hash table, scanned in steps.
bool ScansAtOnce(CommandContext& ctx, const KeyRef& key,
                 const std::vector<std::pair<std::string, std::string>>& all) {
  const Config& config = ctx.server.config();
  const int64_t max_entries = ConfigInt(config, "hash-max-listpack-entries", 128);
  const int64_t max_value = ConfigInt(config, "hash-max-listpack-value", 64);
  if (static_cast<int64_t>(all.size()) > max_entries) {
    return false;
  }
  for (const auto& [field, value] : all) {
    if (static_cast<int64_t>(field.size()) > max_value ||
        static_cast<int64_t>(value.size()) > max_value ||
        key.hash().FieldExpiry(field).value_or(0) > 0) {
      return false;
    }
  }
  return true;
}

// Picks the fields of this HSCAN step. Large hashes are visited in FieldHash order from the
// cursor; a step stops only between two different hash values, so every field present for the
// whole scan is returned at least once (Valkey's SCAN guarantee), however the hash changes.
uint64_t ScanStep(const std::vector<std::pair<std::string, std::string>>& all, uint64_t cursor,
                  size_t count, std::vector<size_t>* out) {
  std::vector<std::pair<uint64_t, size_t>> order;
  for (size_t i = 0; i < all.size(); ++i) {
    const uint64_t h = FieldHash(all[i].first);
    if (h >= cursor) {
      order.emplace_back(h, i);
    }
  }
  std::sort(order.begin(), order.end());
  for (size_t i = 0; i < order.size(); ++i) {
    if (out->size() >= count && order[i].first != order[i - 1].first) {
      return order[i].first;
    }
    out->push_back(order[i].second);
  }
  return 0;
}

void CmdHScan(CommandContext& ctx, ArgList args) {
  uint64_t cursor = 0;
  if (!ParseScanCursor(args[2], &cursor)) {
    ctx.reply.Error(errors::kInvalidCursor);
    return;
  }
  const HashLookup hash = LookupHash(ctx, args[1], Access::kRead);
  if (hash.wrong_type) {
    ctx.reply.Error(errors::kWrongType);
    return;
  }
  if (hash.key == nullptr) {  // Valkey answers an empty scan before it reads the options
    ctx.reply.Array(2);
    ctx.reply.Bulk("0");
    ctx.reply.Array(0);
    return;
  }
  Result<ScanArgs> options = ParseScanArgs(args.subspan(3), kScanNoValues);
  if (!options.ok()) {
    ctx.reply.Error(options.error());
    return;
  }
  const auto all = hash.key->hash().GetAll(ctx.now_ms);
  std::vector<size_t> picked;
  uint64_t next = 0;
  if (ScansAtOnce(ctx, *hash.key, all)) {
    for (size_t i = 0; i < all.size(); ++i) {
      picked.push_back(i);
    }
  } else {
    next = ScanStep(all, cursor, options->count, &picked);
  }
  std::vector<size_t> matched;
  for (size_t index : picked) {
    if (options->Matches(all[index].first)) {
      matched.push_back(index);
    }
  }
  ctx.reply.Array(2);
  ctx.reply.Bulk(std::to_string(next));
  ctx.reply.Array(options->no_values ? matched.size() : matched.size() * 2);
  for (size_t index : matched) {
    ctx.reply.Bulk(all[index].first);
    if (!options->no_values) {
      ctx.reply.Bulk(all[index].second);
    }
  }
}

// ---- field TTL: argument parsing --------------------------------------------------------------

enum class TimeOption : uint8_t { kNone, kEx, kPx, kExAt, kPxAt };

// The options of HSETEX / HGETEX (Valkey's parseExtendedCommandArgumentsOrReply) and the
// FIELDS block of every field-TTL command.
struct FieldTtlArgs {
  bool fnx = false;
  bool fxx = false;
  bool keep_ttl = false;
  bool persist = false;
  TimeOption time = TimeOption::kNone;
  std::string_view time_arg;
  size_t fields_index = 0;  // first field
  int64_t num_fields = 0;
};

// Index of the first FIELDS token in [from, argc - 1), or 0 when there is none.
size_t FindFieldsToken(ArgList args, size_t from) {
  for (size_t i = from; i + 1 < args.size(); ++i) {
    if (EqualsIgnoreCase(args[i], "fields")) {
      return i;
    }
  }
  return 0;
}

// Parses args[begin, end) as HSETEX (is_set) or HGETEX options. Conflicts are syntax errors;
// repeating the same option is allowed and the last one wins, as in SET.
Result<void> ParseSetGetOptions(ArgList args, size_t begin, size_t end, bool is_set,
                                FieldTtlArgs* out) {
  for (size_t j = begin; j < end; ++j) {
    const std::string_view opt = args[j];
    const bool has_next = j + 1 < end;
    const TimeOption t = out->time;
    auto time_ok = [&](TimeOption want) {
      return !out->keep_ttl && !out->persist && (t == TimeOption::kNone || t == want) && has_next;
    };
    if (is_set && EqualsIgnoreCase(opt, "fnx") && !out->fxx) {
      out->fnx = true;
    } else if (is_set && EqualsIgnoreCase(opt, "fxx") && !out->fnx) {
      out->fxx = true;
    } else if (is_set && EqualsIgnoreCase(opt, "keepttl") && t == TimeOption::kNone) {
      out->keep_ttl = true;
    } else if (!is_set && EqualsIgnoreCase(opt, "persist") && t == TimeOption::kNone) {
      out->persist = true;
    } else {
      TimeOption want = TimeOption::kNone;
      if (EqualsIgnoreCase(opt, "ex")) {
        want = TimeOption::kEx;
      } else if (EqualsIgnoreCase(opt, "px")) {
        want = TimeOption::kPx;
      } else if (EqualsIgnoreCase(opt, "exat")) {
        want = TimeOption::kExAt;
      } else if (EqualsIgnoreCase(opt, "pxat")) {
        want = TimeOption::kPxAt;
      }
      if (want == TimeOption::kNone || !time_ok(want)) {
        return Unexpected(ErrorCode::kSyntax);
      }
      out->time = want;
      out->time_arg = args[++j];
    }
  }
  return {};
}

// The FIELDS block of HSETEX (pairs) / HGETEX: options before the first FIELDS token, then the
// count, which must match the arguments that follow.
Result<FieldTtlArgs> ParseSetGetArgs(ArgList args, bool is_set) {
  FieldTtlArgs out;
  out.num_fields = is_set ? 0 : -1;
  out.fields_index = args.size();
  // Valkey scans for FIELDS from argv[0], so a key named "fields" is taken for the token.
  if (const size_t token = FindFieldsToken(args, 1); token != 0) {
    if (auto parsed = ParseSetGetOptions(args, 2, token, is_set, &out); !parsed.ok()) {
      return Unexpected(parsed.error());
    }
    if (!ParseInt64(args[token + 1], &out.num_fields)) {
      return Unexpected(ErrorCode::kNotInteger);
    }
    out.fields_index = token + 2;
  }
  const auto rest = static_cast<int64_t>(args.size() - out.fields_index);
  const bool bad =
      is_set ? (out.num_fields <= 0 || out.num_fields > std::numeric_limits<int64_t>::max() / 2 ||
                out.num_fields * 2 != rest)
             : (out.num_fields == 0 || out.num_fields != rest);
  if (bad) {
    return Unexpected(std::string(kNumFields));
  }
  return out;
}

// Valkey's convertExpireArgumentToUnixTime for field TTLs: an absolute time in ms.
Result<int64_t> ExpireTimeMs(CommandContext& ctx, std::string_view text, bool seconds,
                             bool absolute) {
  int64_t when = 0;
  if (!ParseInt64(text, &when)) {
    return Unexpected(ErrorCode::kNotInteger);
  }
  const std::string invalid = "ERR invalid expire time in '" + ctx.command.full_name + "' command";
  if (when < 0) {
    return Unexpected(invalid);
  }
  if (seconds) {
    if (when > std::numeric_limits<int64_t>::max() / 1000) {
      return Unexpected(invalid);
    }
    when *= 1000;
  }
  const int64_t base = absolute ? 0 : ctx.now_ms;
  if (when > std::numeric_limits<int64_t>::max() - base) {
    return Unexpected(invalid);
  }
  return when + base;
}

Result<int64_t> OptionTimeMs(CommandContext& ctx, const FieldTtlArgs& parsed) {
  const bool seconds = parsed.time == TimeOption::kEx || parsed.time == TimeOption::kExAt;
  const bool absolute = parsed.time == TimeOption::kExAt || parsed.time == TimeOption::kPxAt;
  return ExpireTimeMs(ctx, parsed.time_arg, seconds, absolute);
}

// ---- HSETEX ---------------------------------------------------------------------------------

// Whether the FNX/FXX condition holds for every field (checked before anything changes).
bool FieldConditionHolds(CommandContext& ctx, const HashLookup& hash, const FieldTtlArgs& p,
                         ArgList args) {
  if (!p.fnx && !p.fxx) {
    return true;
  }
  for (size_t i = p.fields_index; i < args.size(); i += 2) {
    const bool exists = Visible(hash, args[i], ctx.now_ms);
    if ((p.fnx && exists) || (p.fxx && !exists)) {
      return false;
    }
  }
  return true;
}

// Returns HSETEX's reply: 1 when applied, 0 when FNX/FXX failed.
Result<int64_t> OpHSetEx(CommandContext& ctx, ArgList args, const FieldTtlArgs& p) {
  const std::string_view key = args[1];
  const HashLookup hash = LookupHash(ctx, key);
  if (hash.wrong_type) {
    return Unexpected(ErrorCode::kWrongType);
  }
  std::optional<int64_t> when;
  if (p.time != TimeOption::kNone) {
    Result<int64_t> at = OptionTimeMs(ctx, p);
    if (!at.ok()) {
      return Unexpected(at.error());
    }
    when = *at;
  }
  if (!FieldConditionHolds(ctx, hash, p, args)) {
    return 0;
  }
  if (when && *when <= ctx.now_ms) {  // a past time deletes the fields (Valkey: reply 1)
    if (auto done = OpDeleteFields(ctx, key, args.subspan(p.fields_index)); !done.ok()) {
      return Unexpected(done.error());
    }
    return 1;
  }
  for (size_t i = p.fields_index; i + 1 < args.size(); i += 2) {
    const bool keep = p.keep_ttl || when.has_value();  // a new TTL replaces the old one below
    if (auto done = SetField(ctx, key, args[i], args[i + 1], keep); !done.ok()) {
      return Unexpected(done.error());
    }
    if (when) {
      if (auto done = ExpireField(ctx, key, args[i], *when); !done.ok()) {
        return Unexpected(done.error());
      }
    }
  }
  return 1;
}

void CmdHSetEx(CommandContext& ctx, ArgList args) {
  Result<FieldTtlArgs> parsed = ParseSetGetArgs(args, /*is_set=*/true);
  if (!parsed.ok()) {
    ctx.reply.Error(parsed.error());
    return;
  }
  Result<int64_t> result = OpHSetEx(ctx, args, *parsed);
  if (result.ok()) {
    ctx.reply.Integer(*result);
  } else {
    ctx.reply.Error(result.error());
  }
}

// ---- HGETEX ---------------------------------------------------------------------------------

// Applies HGETEX's change to the fields after their values were read.
Result<void> ApplyGetEx(CommandContext& ctx, std::string_view key, ArgList fields,
                        std::optional<int64_t> when, bool persist) {
  if (when && *when <= ctx.now_ms) {
    auto done = OpDeleteFields(ctx, key, fields);
    return done.ok() ? Result<void>() : Result<void>(Unexpected(done.error()));
  }
  for (std::string_view field : fields) {
    const std::optional<int64_t> ttl = VisibleTtl(LookupHash(ctx, key), field, ctx.now_ms);
    if (!ttl || (persist && *ttl == 0) || (!persist && !when)) {
      continue;
    }
    if (auto done = ExpireField(ctx, key, field, persist ? 0 : *when); !done.ok()) {
      return done;
    }
  }
  return {};
}

void CmdHGetEx(CommandContext& ctx, ArgList args) {
  Result<FieldTtlArgs> parsed = ParseSetGetArgs(args, /*is_set=*/false);
  if (!parsed.ok()) {
    ctx.reply.Error(parsed.error());
    return;
  }
  const HashLookup hash = LookupHash(ctx, args[1]);
  if (hash.wrong_type) {
    ctx.reply.Error(errors::kWrongType);
    return;
  }
  std::optional<int64_t> when;
  if (parsed->time != TimeOption::kNone) {
    Result<int64_t> at = OptionTimeMs(ctx, *parsed);
    if (!at.ok()) {
      ctx.reply.Error(at.error());
      return;
    }
    when = *at;
  }
  const ArgList fields = args.subspan(parsed->fields_index);
  ctx.reply.Array(fields.size());
  for (std::string_view field : fields) {
    if (auto value = VisibleValue(hash, field, ctx.now_ms)) {
      ctx.reply.Bulk(*value);
    } else {
      ctx.reply.Null();
    }
  }
  if (hash.key != nullptr) {
    // Every mutator here was type-checked above; a failure would be a bug, not a reply.
    Result<void> applied = ApplyGetEx(ctx, args[1], fields, when, parsed->persist);
    LATTICE_ASSERT_MSG(applied.ok(), "HGETEX write failed after its checks");
  }
}

// ---- HEXPIRE family -------------------------------------------------------------------------

enum ExpireCondition : uint8_t { kNx = 1, kXx = 2, kGt = 4, kLt = 8 };

// Valkey's parseExtendedExpireArgumentsOrReply over args[begin, end).
Result<uint8_t> ParseExpireConditions(ArgList args, size_t begin, size_t end) {
  uint8_t flags = 0;
  for (size_t j = begin; j < end; ++j) {
    if (EqualsIgnoreCase(args[j], "nx")) {
      flags |= kNx;
    } else if (EqualsIgnoreCase(args[j], "xx")) {
      flags |= kXx;
    } else if (EqualsIgnoreCase(args[j], "gt")) {
      flags |= kGt;
    } else if (EqualsIgnoreCase(args[j], "lt")) {
      flags |= kLt;
    } else {
      return Unexpected("ERR Unsupported option " + std::string(args[j]));
    }
  }
  if ((flags & kNx) && (flags & (kXx | kGt | kLt))) {
    return Unexpected(
        std::string("ERR NX and XX, GT or LT options at the same time are not compatible"));
  }
  if ((flags & kGt) && (flags & kLt)) {
    return Unexpected(std::string("ERR GT and LT options at the same time are not compatible"));
  }
  return flags;
}

// The NX/XX/GT/LT condition for a field whose current TTL is `current` (0: none, infinite).
bool ExpireConditionHolds(uint8_t flags, int64_t current, int64_t when) {
  if ((flags & kNx) && current != 0) {
    return false;
  }
  if ((flags & kXx) && current == 0) {
    return false;
  }
  if ((flags & kGt) && (current == 0 || when <= current)) {
    return false;
  }
  if ((flags & kLt) && current != 0 && when >= current) {
    return false;
  }
  return true;
}

// One field of HEXPIRE & co: -2 no field, 0 condition not met, 1 set, 2 deleted (past time).
Result<int64_t> OpExpireOne(CommandContext& ctx, std::string_view key, std::string_view field,
                            uint8_t flags, int64_t when) {
  const std::optional<int64_t> ttl = VisibleTtl(LookupHash(ctx, key), field, ctx.now_ms);
  if (!ttl) {
    return -2;
  }
  if (!ExpireConditionHolds(flags, *ttl, when)) {
    return 0;  // checked before the past-time delete, as Valkey does
  }
  if (when <= ctx.now_ms) {
    auto done = DeleteFields(ctx, key, {std::string(field)});
    return done.ok() ? Result<int64_t>(2) : Result<int64_t>(Unexpected(done.error()));
  }
  auto done = ExpireField(ctx, key, field, when);
  return done.ok() ? Result<int64_t>(1) : Result<int64_t>(Unexpected(done.error()));
}

void HExpireGeneric(CommandContext& ctx, ArgList args, bool seconds, bool absolute) {
  int64_t num_fields = 0;
  size_t fields_index = args.size();
  uint8_t flags = 0;
  if (const size_t token = FindFieldsToken(args, 3); token != 0) {
    Result<uint8_t> parsed = ParseExpireConditions(args, 3, token);
    if (!parsed.ok()) {
      ctx.reply.Error(parsed.error());
      return;
    }
    flags = *parsed;
    if (!ParseInt64(args[token + 1], &num_fields)) {
      ctx.reply.Error(errors::kNotInteger);
      return;
    }
    fields_index = token + 2;
  }
  if (num_fields == 0 || num_fields != static_cast<int64_t>(args.size() - fields_index)) {
    ctx.reply.Error(kNumFields);
    return;
  }
  Result<int64_t> when = ExpireTimeMs(ctx, args[2], seconds, absolute);
  if (!when.ok()) {
    ctx.reply.Error(when.error());
    return;
  }
  if (LookupHash(ctx, args[1]).wrong_type) {
    ctx.reply.Error(errors::kWrongType);
    return;
  }
  ctx.reply.Array(static_cast<size_t>(num_fields));
  for (size_t i = fields_index; i < args.size(); ++i) {
    Result<int64_t> code = OpExpireOne(ctx, args[1], args[i], flags, *when);
    LATTICE_ASSERT_MSG(code.ok(), "HEXPIRE write failed after its checks");
    ctx.reply.Integer(*code);
  }
}

void CmdHExpire(CommandContext& ctx, ArgList args) { HExpireGeneric(ctx, args, true, false); }
void CmdHPExpire(CommandContext& ctx, ArgList args) { HExpireGeneric(ctx, args, false, false); }
void CmdHExpireAt(CommandContext& ctx, ArgList args) { HExpireGeneric(ctx, args, true, true); }
void CmdHPExpireAt(CommandContext& ctx, ArgList args) { HExpireGeneric(ctx, args, false, true); }

// ---- HPERSIST, HTTL family ------------------------------------------------------------------

// argv[3] is the count (argv[2] is not checked to be FIELDS, as in Valkey).
bool ParseFixedFields(CommandContext& ctx, ArgList args, std::string_view mismatch) {
  int64_t num_fields = 0;
  if (!ParseInt64(args[3], &num_fields)) {
    ctx.reply.Error(errors::kNotInteger);
    return false;
  }
  if (num_fields == 0 || num_fields != static_cast<int64_t>(args.size() - 4)) {
    ctx.reply.Error(mismatch);
    return false;
  }
  return true;
}

void CmdHPersist(CommandContext& ctx, ArgList args) {
  if (!ParseFixedFields(ctx, args, kNumFields)) {
    return;
  }
  if (LookupHash(ctx, args[1]).wrong_type) {
    ctx.reply.Error(errors::kWrongType);
    return;
  }
  ctx.reply.Array(args.size() - 4);
  for (size_t i = 4; i < args.size(); ++i) {
    const std::optional<int64_t> ttl = VisibleTtl(LookupHash(ctx, args[1]), args[i], ctx.now_ms);
    if (!ttl) {
      ctx.reply.Integer(-2);
    } else if (*ttl == 0) {
      ctx.reply.Integer(-1);
    } else {
      Result<void> done = ExpireField(ctx, args[1], args[i], 0);
      LATTICE_ASSERT_MSG(done.ok(), "HPERSIST write failed after its checks");
      ctx.reply.Integer(1);
    }
  }
}

void HTtlGeneric(CommandContext& ctx, ArgList args, bool seconds, bool absolute) {
  if (!ParseFixedFields(ctx, args, errors::kSyntax)) {
    return;
  }
  const HashLookup hash = LookupHash(ctx, args[1], Access::kRead);
  if (hash.wrong_type) {
    ctx.reply.Error(errors::kWrongType);
    return;
  }
  ctx.reply.Array(args.size() - 4);
  for (size_t i = 4; i < args.size(); ++i) {
    const std::optional<int64_t> ttl = VisibleTtl(hash, args[i], ctx.now_ms);
    if (!ttl) {
      ctx.reply.Integer(-2);
    } else if (*ttl == 0) {
      ctx.reply.Integer(-1);
    } else {
      const int64_t ms = std::max<int64_t>(*ttl - (absolute ? 0 : ctx.now_ms), 0);
      ctx.reply.Integer(seconds ? (ms + 500) / 1000 : ms);
    }
  }
}

void CmdHTtl(CommandContext& ctx, ArgList args) { HTtlGeneric(ctx, args, true, false); }
void CmdHPTtl(CommandContext& ctx, ArgList args) { HTtlGeneric(ctx, args, false, false); }
void CmdHExpireTime(CommandContext& ctx, ArgList args) { HTtlGeneric(ctx, args, true, true); }
void CmdHPExpireTime(CommandContext& ctx, ArgList args) { HTtlGeneric(ctx, args, false, true); }

}  // namespace

// clang-format off
void RegisterHashFamily(CommandRegistry& registry) {
  constexpr KeySpec kKey{.first = 1, .last = 1, .step = 1};
  constexpr uint32_t kWriteFast = kWrite | kDenyOom | kFast;
  constexpr uint32_t kAclWriteFast = kAclWrite | kAclHash | kAclFast;
  constexpr uint32_t kAclReadFast = kAclRead | kAclHash | kAclFast;
  constexpr uint32_t kAclReadSlow = kAclRead | kAclHash | kAclSlow;
  const std::string_view kOne = "O(1)";
  const std::string_view kPerField = "O(N) where N is the number of specified fields.";
  const std::string_view kWhole = "O(N) where N is the size of the hash.";

  registry.Add({.name = "hset", .arity = -4, .flags = kWriteFast, .keys = kKey, .acl = kAclWriteFast, .handler = &CmdHSet, .group = "hash", .summary = "Creates or modifies the value of a field in a hash.", .since = "2.0.0", .complexity = "O(1) for each field/value pair added, so O(N) to add N field/value pairs when the command is called with multiple field/value pairs."});
  registry.Add({.name = "hsetnx", .arity = 4, .flags = kWriteFast, .keys = kKey, .acl = kAclWriteFast, .handler = &CmdHSetNx, .group = "hash", .summary = "Sets the value of a field in a hash only when the field doesn't exist.", .since = "2.0.0", .complexity = kOne});
  registry.Add({.name = "hmset", .arity = -4, .flags = kWriteFast, .keys = kKey, .acl = kAclWriteFast, .handler = &CmdHSet, .group = "hash", .summary = "Sets the values of multiple fields.", .since = "2.0.0", .complexity = "O(N) where N is the number of fields being set."});
  registry.Add({.name = "hget", .arity = 3, .flags = kReadOnly | kFast, .keys = kKey, .acl = kAclReadFast, .handler = &CmdHGet, .group = "hash", .summary = "Returns the value of a field in a hash.", .since = "2.0.0", .complexity = kOne});
  registry.Add({.name = "hmget", .arity = -3, .flags = kReadOnly | kFast, .keys = kKey, .acl = kAclReadFast, .handler = &CmdHMGet, .group = "hash", .summary = "Returns the values of all fields in a hash.", .since = "2.0.0", .complexity = "O(N) where N is the number of fields being requested."});
  registry.Add({.name = "hgetall", .arity = 2, .flags = kReadOnly, .keys = kKey, .acl = kAclReadSlow, .handler = &CmdHGetAll, .group = "hash", .summary = "Returns all fields and values in a hash.", .since = "2.0.0", .complexity = kWhole});
  registry.Add({.name = "hkeys", .arity = 2, .flags = kReadOnly, .keys = kKey, .acl = kAclReadSlow, .handler = &CmdHKeys, .group = "hash", .summary = "Returns all fields in a hash.", .since = "2.0.0", .complexity = kWhole});
  registry.Add({.name = "hvals", .arity = 2, .flags = kReadOnly, .keys = kKey, .acl = kAclReadSlow, .handler = &CmdHVals, .group = "hash", .summary = "Returns all values in a hash.", .since = "2.0.0", .complexity = kWhole});
  registry.Add({.name = "hlen", .arity = 2, .flags = kReadOnly | kFast, .keys = kKey, .acl = kAclReadFast, .handler = &CmdHLen, .group = "hash", .summary = "Returns the number of fields in a hash.", .since = "2.0.0", .complexity = kOne});
  registry.Add({.name = "hexists", .arity = 3, .flags = kReadOnly | kFast, .keys = kKey, .acl = kAclReadFast, .handler = &CmdHExists, .group = "hash", .summary = "Determines whether a field exists in a hash.", .since = "2.0.0", .complexity = kOne});
  registry.Add({.name = "hdel", .arity = -3, .flags = kWrite | kFast, .keys = kKey, .acl = kAclWriteFast, .handler = &CmdHDel, .group = "hash", .summary = "Deletes one or more fields and their values from a hash. Deletes the hash if no fields remain.", .since = "2.0.0", .complexity = "O(N) where N is the number of fields to be removed."});
  registry.Add({.name = "hincrby", .arity = 4, .flags = kWriteFast, .keys = kKey, .acl = kAclWriteFast, .handler = &CmdHIncrBy, .group = "hash", .summary = "Increments the integer value of a field in a hash by a number. Uses 0 as initial value if the field doesn't exist.", .since = "2.0.0", .complexity = kOne});
  registry.Add({.name = "hincrbyfloat", .arity = 4, .flags = kWriteFast, .keys = kKey, .acl = kAclWriteFast, .handler = &CmdHIncrByFloat, .group = "hash", .summary = "Increments the floating point value of a field by a number. Uses 0 as initial value if the field doesn't exist.", .since = "2.6.0", .complexity = kOne});
  registry.Add({.name = "hstrlen", .arity = 3, .flags = kReadOnly | kFast, .keys = kKey, .acl = kAclReadFast, .handler = &CmdHStrLen, .group = "hash", .summary = "Returns the length of the value of a field.", .since = "3.2.0", .complexity = kOne});
  registry.Add({.name = "hrandfield", .arity = -2, .flags = kReadOnly, .keys = kKey, .acl = kAclReadSlow, .handler = &CmdHRandField, .group = "hash", .summary = "Returns one or more random fields from a hash.", .since = "6.2.0", .complexity = "O(N) where N is the number of fields returned"});
  registry.Add({.name = "hscan", .arity = -3, .flags = kReadOnly, .keys = kKey, .acl = kAclReadSlow, .handler = &CmdHScan, .group = "hash", .summary = "Iterates over fields and values of a hash.", .since = "2.8.0", .complexity = "O(1) for every call. O(N) for a complete iteration, including enough command calls for the cursor to return back to 0. N is the number of elements inside the collection."});

  registry.Add({.name = "hsetex", .arity = -6, .flags = kWriteFast, .keys = kKey, .acl = kAclWriteFast, .handler = &CmdHSetEx, .group = "hash", .summary = "Set the value of one or more fields of a given hash key, and optionally set their expiration time.", .since = "9.0.0", .complexity = kPerField});
  registry.Add({.name = "hgetex", .arity = -5, .flags = kWrite | kFast, .keys = kKey, .acl = kAclWriteFast, .handler = &CmdHGetEx, .group = "hash", .summary = "Get the value of one or more fields of a given hash key, and optionally set their expiration time or time-to-live (TTL).", .since = "9.0.0", .complexity = kPerField});
  registry.Add({.name = "hexpire", .arity = -6, .flags = kWrite | kFast, .keys = kKey, .acl = kAclWriteFast, .handler = &CmdHExpire, .group = "hash", .summary = "Sets expiry time on hash fields.", .since = "9.0.0", .complexity = kPerField});
  registry.Add({.name = "hpexpire", .arity = -6, .flags = kWrite | kFast, .keys = kKey, .acl = kAclWriteFast, .handler = &CmdHPExpire, .group = "hash", .summary = "Sets expiry time on hash object fields in milliseconds.", .since = "9.0.0", .complexity = kPerField});
  registry.Add({.name = "hexpireat", .arity = -6, .flags = kWrite | kFast, .keys = kKey, .acl = kAclWriteFast, .handler = &CmdHExpireAt, .group = "hash", .summary = "Sets expiry time on hash fields as a unix timestamp in seconds.", .since = "9.0.0", .complexity = kPerField});
  registry.Add({.name = "hpexpireat", .arity = -6, .flags = kWrite | kFast, .keys = kKey, .acl = kAclWriteFast, .handler = &CmdHPExpireAt, .group = "hash", .summary = "Sets expiry time on hash fields as a unix timestamp in milliseconds.", .since = "9.0.0", .complexity = kPerField});
  registry.Add({.name = "httl", .arity = -5, .flags = kReadOnly | kFast, .keys = kKey, .acl = kAclReadFast, .handler = &CmdHTtl, .group = "hash", .summary = "Returns the remaining time to live (in seconds) of a hash key's field(s) that have an associated expiration.", .since = "9.0.0", .complexity = kPerField});
  registry.Add({.name = "hpttl", .arity = -5, .flags = kReadOnly | kFast, .keys = kKey, .acl = kAclReadFast, .handler = &CmdHPTtl, .group = "hash", .summary = "Returns the remaining time to live in milliseconds of a hash key's field(s) that have an associated expiration.", .since = "9.0.0", .complexity = kPerField});
  registry.Add({.name = "hexpiretime", .arity = -5, .flags = kReadOnly | kFast, .keys = kKey, .acl = kAclReadFast, .handler = &CmdHExpireTime, .group = "hash", .summary = "Returns the expiration time of a hash field as a Unix timestamp, in seconds.", .since = "9.0.0", .complexity = kPerField});
  registry.Add({.name = "hpexpiretime", .arity = -5, .flags = kReadOnly | kFast, .keys = kKey, .acl = kAclReadFast, .handler = &CmdHPExpireTime, .group = "hash", .summary = "Returns the expiration time of a hash field as a Unix timestamp, in msec.", .since = "9.0.0", .complexity = kPerField});
  registry.Add({.name = "hpersist", .arity = -5, .flags = kWrite | kFast, .keys = kKey, .acl = kAclWriteFast, .handler = &CmdHPersist, .group = "hash", .summary = "Remove the existing expiration on a hash key's field(s).", .since = "9.0.0", .complexity = kPerField});
}
// clang-format on

}  // namespace lattice::server
