// The string command family: GET, SET and its variants, MGET/MSET, APPEND, SETRANGE, GETRANGE,
// STRLEN and the counters. Replies and errors follow Valkey 9's t_string.c, including the order
// in which it checks things (option syntax, then expire time, then type), because clients and
// the differential test can observe that order.
//
// CRDT mapping (docs/commands/string.md): SET-like commands are LWW register writes; APPEND and
// SETRANGE are read-modify-write SETs of the whole new value that keep the TTL; INCR* are counter
// updates under the default policy (concurrent increments add up); GETDEL is an observed-remove
// DEL. Each key written produces one op; MSET writes one op per key.

#include <algorithm>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "lattice/crdt/numeric.h"
#include "lattice/crdt/string_value.h"
#include "server/server.h"

namespace lattice::server {
namespace {

std::string InvalidExpireTime(const CommandContext& ctx) {
  return "ERR invalid expire time in '" + ctx.command.full_name + "' command";
}

bool IsString(const CommandContext& ctx, const KeyRef& key) {
  return key.TypeAt(ctx.now_ms) == crdt::ObjectType::kString;
}

// ---- logic (Op*): no argument parsing, no reply ---------------------------------------------

Result<void> OpSet(CommandContext& ctx, std::string_view key, std::string value, bool keep_ttl,
                   std::optional<int64_t> expire_at_ms) {
  if (!expire_at_ms.has_value()) {
    ctx.keyspace().SetString(ctx.db(), key, value, keep_ttl, ctx.now_ms);  // in place
    return {};
  }
  return ctx.Write(key, [&](crdt::Key& k, const crdt::Writer& w, crdt::DotContext& shard) {
    return k.Set(std::move(value), keep_ttl, expire_at_ms, w, shard);
  });
}

Result<void> OpExpire(CommandContext& ctx, std::string_view key, int64_t at_ms) {
  return ctx.Write(key, [&](crdt::Key& k, const crdt::Writer& w, crdt::DotContext& shard) {
    return k.Expire(at_ms, w, shard);
  });
}

// Valkey's checkStringLength: the resulting size must fit proto-max-bulk-len (no overflow).
bool StringLengthOk(const CommandContext& ctx, uint64_t size, uint64_t append) {
  const uint64_t limit = ctx.server.config().proto_max_bulk_len();
  return size <= limit && append <= limit - size;
}

constexpr std::string_view kTooLong =
    "ERR string exceeds maximum allowed size (proto-max-bulk-len)";

// INCRBY / INCRBYFLOAT. Replies the value Valkey would produce from the current value, which
// is also what this replica then renders. The crdt counter keeps one cumulative total per
// replica beside the last SET and renders SET + totals; two corners differ from Valkey's
// "parse, add, print" and are written as a SET of Valkey's value instead (keeping the TTL):
// a per-replica int64 total that would overflow although the value does not, and a rendering
// that differs (a base such as "+1" or "1e3" with a zero float sum, or long double rounding in
// a different order). A SET records the increments it observed, so increments made
// concurrently elsewhere still add on top of it.
Result<std::string> OpIncrement(CommandContext& ctx, std::string_view key, int64_t by,
                                std::optional<long double> float_by) {
  KeyRef entry = ctx.keyspace().Find(ctx.db(), key, ctx.now_ms);
  if (entry != nullptr && !IsString(ctx, *entry)) {
    return Unexpected(ErrorCode::kWrongType);
  }
  const std::optional<std::string> current =
      entry == nullptr ? std::nullopt : entry->GetString(ctx.now_ms);
  Result<std::string> expected =
      crdt::NextCounterValue(current, by, float_by.value_or(0), float_by.has_value());
  if (!expected.ok()) {
    return expected;
  }
  Result<void> written =
      float_by ? ctx.Write(key,
                           [&](crdt::Key& k, const crdt::Writer& w, crdt::DotContext& shard) {
                             return k.IncrByFloat(*float_by, w, shard);
                           })
               : ctx.keyspace().IncrString(ctx.db(), key, by, ctx.now_ms);
  KeyRef after = ctx.keyspace().Find(ctx.db(), key, ctx.now_ms);
  if (!written.ok() || after == nullptr || after->GetString(ctx.now_ms) != *expected) {
    Result<void> set = OpSet(ctx, key, *expected, /*keep_ttl=*/true, std::nullopt);
    LATTICE_ASSERT_MSG(set.ok(), "SET cannot fail");
  }
  return expected;
}

// INCRBY / DECRBY: in place on a missing key or an integer counter (Keyspace::IncrCounter, one
// lookup, no text), else OpIncrement. The corners OpIncrement writes as a SET are written so here.
Result<int64_t> OpIncrementInt(CommandContext& ctx, std::string_view key, int64_t by) {
  Result<std::optional<Keyspace::CounterIncrement>> fast =
      ctx.keyspace().IncrCounter(ctx.db(), key, by, ctx.now_ms);
  if (!fast.ok()) {
    return Unexpected(fast.error());
  }
  if (fast->has_value()) {
    const Keyspace::CounterIncrement& done = **fast;
    if (!done.written || !done.rendered) {
      Result<void> set = OpSet(ctx, key, std::to_string(done.value), /*keep_ttl=*/true, {});
      LATTICE_ASSERT_MSG(set.ok(), "SET cannot fail");
    }
    return done.value;
  }
  Result<std::string> value = OpIncrement(ctx, key, by, std::nullopt);
  if (!value.ok()) {
    return Unexpected(value.error());
  }
  int64_t number = 0;
  LATTICE_ASSERT_MSG(ParseInt64(*value, &number), "a local increment rendered a non-integer");
  return number;
}

// ---- SET / GETEX option parsing -------------------------------------------------------------

enum class Condition : uint8_t { kNone, kNx, kXx, kIfEq };
enum class ExpireKind : uint8_t { kNone, kEx, kPx, kExAt, kPxAt, kKeepTtl, kPersist };

struct ExtendedOptions {
  Condition condition = Condition::kNone;
  std::string_view compare;  // IFEQ's value
  bool get = false;
  ExpireKind expire = ExpireKind::kNone;
  std::string_view expire_arg;
};

// Valkey's parseExtendedCommandArgumentsOrReply: `for_set` selects SET's options, otherwise
// GETEX's. Repeating the same option is accepted (the last time wins); conflicting ones are a
// syntax error. Returns false on a syntax error.
bool ParseExtended(ArgList args, size_t start, bool for_set, ExtendedOptions* out) {
  for (size_t j = start; j < args.size(); ++j) {
    const std::string_view opt = args[j];
    const bool has_next = j + 1 < args.size();
    const ExpireKind e = out->expire;
    const bool timed = e == ExpireKind::kEx || e == ExpireKind::kPx || e == ExpireKind::kExAt ||
                       e == ExpireKind::kPxAt;
    const Condition c = out->condition;
    if (for_set && EqualsIgnoreCase(opt, "nx") && c != Condition::kXx && c != Condition::kIfEq) {
      out->condition = Condition::kNx;
    } else if (for_set && EqualsIgnoreCase(opt, "xx") && c != Condition::kNx &&
               c != Condition::kIfEq) {
      out->condition = Condition::kXx;
    } else if (for_set && EqualsIgnoreCase(opt, "ifeq") && has_next && c == Condition::kNone) {
      out->condition = Condition::kIfEq;
      out->compare = args[++j];
    } else if (for_set && EqualsIgnoreCase(opt, "get")) {
      out->get = true;
    } else if (for_set && EqualsIgnoreCase(opt, "keepttl") && !timed) {
      out->expire = ExpireKind::kKeepTtl;
    } else if (!for_set && EqualsIgnoreCase(opt, "persist") && !timed) {
      out->expire = ExpireKind::kPersist;
    } else {
      ExpireKind kind = ExpireKind::kNone;
      if (EqualsIgnoreCase(opt, "ex")) {
        kind = ExpireKind::kEx;
      } else if (EqualsIgnoreCase(opt, "px")) {
        kind = ExpireKind::kPx;
      } else if (EqualsIgnoreCase(opt, "exat")) {
        kind = ExpireKind::kExAt;
      } else if (EqualsIgnoreCase(opt, "pxat")) {
        kind = ExpireKind::kPxAt;
      }
      const bool other_time = e != ExpireKind::kNone && e != kind;
      if (kind == ExpireKind::kNone || other_time || !has_next) {
        return false;
      }
      out->expire = kind;
      out->expire_arg = args[++j];
    }
  }
  return true;
}

bool HasTime(ExpireKind kind) {
  return kind == ExpireKind::kEx || kind == ExpireKind::kPx || kind == ExpireKind::kExAt ||
         kind == ExpireKind::kPxAt;
}

// Valkey's getExpireMillisecondsOrReply: the absolute expiry in ms, or the error to reply.
Result<int64_t> ExpireAtMs(const CommandContext& ctx, ExpireKind kind, std::string_view arg) {
  int64_t value = 0;
  if (!ParseInt64(arg, &value)) {
    return Unexpected(ErrorCode::kNotInteger);
  }
  const bool seconds = kind == ExpireKind::kEx || kind == ExpireKind::kExAt;
  if (value <= 0 || (seconds && value > std::numeric_limits<int64_t>::max() / 1000)) {
    return Unexpected(InvalidExpireTime(ctx));
  }
  if (seconds) {
    value *= 1000;
  }
  if (kind == ExpireKind::kEx || kind == ExpireKind::kPx) {
    if (__builtin_add_overflow(value, ctx.now_ms, &value)) {
      return Unexpected(InvalidExpireTime(ctx));
    }
  }
  return value;
}

// ---- commands (Cmd*): parse, call the logic, reply ------------------------------------------

// Valkey's getGenericCommand: replies with the value or nil; false (after replying WRONGTYPE)
// when the key holds another type.
bool ReplyGet(CommandContext& ctx, std::string_view key) {
  KeyRef entry = *ctx.Read(key);
  if (entry == nullptr) {
    ctx.reply.Null();
    return true;
  }
  if (!IsString(ctx, *entry)) {
    ctx.reply.Error(errors::kWrongType);
    return false;
  }
  if (const std::optional<std::string_view> value = entry->CompactValue()) {
    ctx.reply.Bulk(*value);  // no copy
  } else {
    ctx.reply.Bulk(*entry->GetString(ctx.now_ms));
  }
  return true;
}

void CmdGet(CommandContext& ctx, ArgList args) { ReplyGet(ctx, args[1]); }

// What SET decides before writing: whether its condition (NX, XX, IFEQ) lets it write. Replies
// WRONGTYPE for IFEQ against another type and returns nullopt then.
std::optional<bool> SetConditionHolds(CommandContext& ctx, const ExtendedOptions& options,
                                      std::string_view key) {
  if (options.condition == Condition::kNone) {
    return true;  // a plain SET looks the key up once, when it writes
  }
  KeyRef entry = ctx.keyspace().Find(ctx.db(), key, ctx.now_ms);
  const bool found = entry != nullptr;
  switch (options.condition) {
    case Condition::kNone:
      return true;
    case Condition::kNx:
      return !found;
    case Condition::kXx:
      return found;
    case Condition::kIfEq:
      if (!found) {
        return false;
      }
      if (!IsString(ctx, *entry)) {
        ctx.reply.Error(errors::kWrongType);  // with GET, ReplyGet already refused the type
        return std::nullopt;
      }
      return *entry->GetString(ctx.now_ms) == options.compare;
  }
  return false;
}

// Valkey's setGenericCommand; `ok_reply` / `abort_reply` let SETNX answer :1 / :0.
void SetGeneric(CommandContext& ctx, const ExtendedOptions& options, std::string_view key,
                std::string_view value, bool integer_replies) {
  std::optional<int64_t> expire_at;
  if (HasTime(options.expire)) {
    Result<int64_t> at = ExpireAtMs(ctx, options.expire, options.expire_arg);
    if (!at.ok()) {
      ctx.reply.Error(at.error());
      return;
    }
    expire_at = *at;
  }
  if (options.get && !ReplyGet(ctx, key)) {
    return;
  }
  const std::optional<bool> holds = SetConditionHolds(ctx, options, key);
  if (!holds) {
    return;
  }
  if (!*holds) {
    if (!options.get) {
      integer_replies ? ctx.reply.Integer(0) : ctx.reply.Null();
    }
    return;
  }
  if (expire_at && *expire_at <= ctx.now_ms) {
    // Valkey 9 does not store a key that is born expired; it deletes what was there.
    ctx.keyspace().Delete(ctx.db(), key, ctx.now_ms);
  } else {
    Result<void> written =
        OpSet(ctx, key, std::string(value), options.expire == ExpireKind::kKeepTtl, expire_at);
    LATTICE_ASSERT_MSG(written.ok(), "SET cannot fail once its options are valid");
  }
  if (!options.get) {
    integer_replies ? ctx.reply.Integer(1) : ctx.reply.Ok();
  }
}

void CmdSet(CommandContext& ctx, ArgList args) {
  ExtendedOptions options;
  if (!ParseExtended(args, 3, /*for_set=*/true, &options)) {
    ctx.reply.Error(errors::kSyntax);
    return;
  }
  SetGeneric(ctx, options, args[1], args[2], /*integer_replies=*/false);
}

void CmdSetNx(CommandContext& ctx, ArgList args) {
  SetGeneric(ctx, ExtendedOptions{.condition = Condition::kNx}, args[1], args[2],
             /*integer_replies=*/true);
}

void CmdSetEx(CommandContext& ctx, ArgList args) {
  SetGeneric(ctx, ExtendedOptions{.expire = ExpireKind::kEx, .expire_arg = args[2]}, args[1],
             args[3], /*integer_replies=*/false);
}

void CmdPSetEx(CommandContext& ctx, ArgList args) {
  SetGeneric(ctx, ExtendedOptions{.expire = ExpireKind::kPx, .expire_arg = args[2]}, args[1],
             args[3], /*integer_replies=*/false);
}

void CmdGetSet(CommandContext& ctx, ArgList args) {
  if (!ReplyGet(ctx, args[1])) {
    return;
  }
  Result<void> written = OpSet(ctx, args[1], std::string(args[2]), false, std::nullopt);
  LATTICE_ASSERT_MSG(written.ok(), "GETSET's SET cannot fail");
}

void CmdGetDel(CommandContext& ctx, ArgList args) {
  if (ReplyGet(ctx, args[1])) {
    ctx.keyspace().Delete(ctx.db(), args[1], ctx.now_ms);
  }
}

// GETEX: Valkey 9.0 looks the key up and checks its type before validating the time.
void CmdGetEx(CommandContext& ctx, ArgList args) {
  ExtendedOptions options;
  if (!ParseExtended(args, 2, /*for_set=*/false, &options)) {
    ctx.reply.Error(errors::kSyntax);
    return;
  }
  KeyRef entry = *ctx.Read(args[1]);
  if (entry == nullptr) {
    ctx.reply.Null();
    return;
  }
  if (!IsString(ctx, *entry)) {
    ctx.reply.Error(errors::kWrongType);
    return;
  }
  int64_t at_ms = 0;
  if (HasTime(options.expire)) {
    Result<int64_t> at = ExpireAtMs(ctx, options.expire, options.expire_arg);
    if (!at.ok()) {
      ctx.reply.Error(at.error());
      return;
    }
    at_ms = *at;
  }
  ctx.reply.Bulk(*entry->GetString(ctx.now_ms));
  const bool absolute = options.expire == ExpireKind::kExAt || options.expire == ExpireKind::kPxAt;
  Result<void> written;
  if (absolute && at_ms <= ctx.now_ms) {
    ctx.keyspace().Delete(ctx.db(), args[1], ctx.now_ms);
  } else if (HasTime(options.expire)) {
    written = OpExpire(ctx, args[1], at_ms);
  } else if (options.expire == ExpireKind::kPersist && entry->ExpiryMs().has_value()) {
    written = OpExpire(ctx, args[1], 0);  // 0 is PERSIST
  }
  LATTICE_ASSERT_MSG(written.ok(), "GETEX on a live string cannot fail");
}

void CmdMGet(CommandContext& ctx, ArgList args) {
  ctx.reply.Array(args.size() - 1);
  for (size_t i = 1; i < args.size(); ++i) {
    KeyRef entry = *ctx.Read(args[i]);
    if (entry == nullptr || !IsString(ctx, *entry)) {
      ctx.reply.Null();
    } else {
      ctx.reply.Bulk(*entry->GetString(ctx.now_ms));
    }
  }
}

void MSetGeneric(CommandContext& ctx, ArgList args, bool nx) {
  if (args.size() % 2 == 0) {
    ctx.reply.Error(errors::WrongArity(ctx.command.full_name));
    return;
  }
  if (nx) {
    for (size_t i = 1; i < args.size(); i += 2) {
      if (ctx.keyspace().Find(ctx.db(), args[i], ctx.now_ms) != nullptr) {
        ctx.reply.Integer(0);
        return;
      }
    }
  }
  for (size_t i = 1; i < args.size(); i += 2) {
    Result<void> written = OpSet(ctx, args[i], std::string(args[i + 1]), false, std::nullopt);
    LATTICE_ASSERT_MSG(written.ok(), "MSET's SET cannot fail");
  }
  nx ? ctx.reply.Integer(1) : ctx.reply.Ok();
}

void CmdMSet(CommandContext& ctx, ArgList args) { MSetGeneric(ctx, args, false); }
void CmdMSetNx(CommandContext& ctx, ArgList args) { MSetGeneric(ctx, args, true); }

// APPEND is a read-modify-write SET of the whole value that keeps the TTL (as Valkey's APPEND
// leaves the expiry alone). Under concurrent writes the later write wins whole.
void CmdAppend(CommandContext& ctx, ArgList args) {
  KeyRef entry = ctx.keyspace().Find(ctx.db(), args[1], ctx.now_ms);
  std::string value;
  if (entry != nullptr) {
    if (!IsString(ctx, *entry)) {
      ctx.reply.Error(errors::kWrongType);
      return;
    }
    value = *entry->GetString(ctx.now_ms);
    if (!StringLengthOk(ctx, value.size(), args[2].size())) {
      ctx.reply.Error(kTooLong);
      return;
    }
  }
  value.append(args[2]);
  const int64_t length = static_cast<int64_t>(value.size());
  Result<void> written = OpSet(ctx, args[1], std::move(value), /*keep_ttl=*/true, std::nullopt);
  LATTICE_ASSERT_MSG(written.ok(), "APPEND's SET cannot fail");
  ctx.reply.Integer(length);
}

void CmdStrLen(CommandContext& ctx, ArgList args) {
  KeyRef entry = *ctx.Read(args[1]);
  if (entry == nullptr) {
    ctx.reply.Integer(0);
  } else if (!IsString(ctx, *entry)) {
    ctx.reply.Error(errors::kWrongType);
  } else {
    ctx.reply.Integer(static_cast<int64_t>(entry->GetString(ctx.now_ms)->size()));
  }
}

// SETRANGE: like APPEND, a whole-value SET that keeps the TTL.
void CmdSetRange(CommandContext& ctx, ArgList args) {
  int64_t offset = 0;
  if (!ParseInt64(args[2], &offset)) {
    ctx.reply.Error(errors::kNotInteger);
    return;
  }
  if (offset < 0) {
    ctx.reply.Error("ERR offset is out of range");
    return;
  }
  const std::string_view patch = args[3];
  KeyRef entry = ctx.keyspace().Find(ctx.db(), args[1], ctx.now_ms);
  if (entry != nullptr && !IsString(ctx, *entry)) {
    ctx.reply.Error(errors::kWrongType);
    return;
  }
  if (patch.empty()) {  // nothing to write: the current length (0 for a missing key)
    std::string scratch;
    std::string_view none;
    const size_t size =
        entry == nullptr ? 0 : entry->ReadStringRange(0, 0, ctx.now_ms, scratch, none).value_or(0);
    ctx.reply.Integer(static_cast<int64_t>(size));
    return;
  }
  if (!StringLengthOk(ctx, static_cast<uint64_t>(offset), patch.size())) {
    ctx.reply.Error(kTooLong);
    return;
  }
  // Only the chunks of the bytes it writes are read and travel, as SETBIT's
  // (docs/commands/bitmap.md).
  const size_t end = static_cast<size_t>(offset) + patch.size();
  BitmapWindow window = ReadBitmapWindow(entry, static_cast<size_t>(offset), end, end, ctx.now_ms);
  window.bytes.replace(static_cast<size_t>(offset) - window.begin, patch.size(), patch);
  StoreBitmapBytes(ctx, args[1], window.bytes, window.begin, window.size,
                   static_cast<size_t>(offset), end);
  ctx.reply.Integer(static_cast<int64_t>(window.size));
}

void CmdGetRange(CommandContext& ctx, ArgList args) {
  int64_t start = 0;
  int64_t end = 0;
  if (!ParseInt64(args[2], &start) || !ParseInt64(args[3], &end)) {
    ctx.reply.Error(errors::kNotInteger);
    return;
  }
  KeyRef entry = *ctx.Read(args[1]);
  if (entry == nullptr) {
    ctx.reply.Bulk("");
    return;
  }
  if (!IsString(ctx, *entry)) {
    ctx.reply.Error(errors::kWrongType);
    return;
  }
  const std::string value = *entry->GetString(ctx.now_ms);
  const auto length = static_cast<int64_t>(value.size());
  if (start < 0 && end < 0 && start > end) {
    ctx.reply.Bulk("");
    return;
  }
  // Both are >= INT64_MIN and length < 2^63, so the sums cannot overflow.
  if (start < 0) {
    start = std::max<int64_t>(length + start, 0);
  }
  if (end < 0) {
    end = std::max<int64_t>(length + end, 0);
  }
  end = std::min(end, length - 1);
  if (start > end || length == 0) {
    ctx.reply.Bulk("");
  } else {
    ctx.reply.Bulk(std::string_view(value).substr(static_cast<size_t>(start),
                                                  static_cast<size_t>(end - start + 1)));
  }
}

void ReplyIncrement(CommandContext& ctx, std::string_view key, int64_t by) {
  Result<int64_t> value = OpIncrementInt(ctx, key, by);
  if (!value.ok()) {
    ctx.reply.Error(value.error());
    return;
  }
  ctx.reply.Integer(*value);
}

void CmdIncr(CommandContext& ctx, ArgList args) { ReplyIncrement(ctx, args[1], 1); }
void CmdDecr(CommandContext& ctx, ArgList args) { ReplyIncrement(ctx, args[1], -1); }

void CmdIncrBy(CommandContext& ctx, ArgList args) {
  int64_t by = 0;
  if (!ParseInt64(args[2], &by)) {
    ctx.reply.Error(errors::kNotInteger);
    return;
  }
  ReplyIncrement(ctx, args[1], by);
}

void CmdDecrBy(CommandContext& ctx, ArgList args) {
  int64_t by = 0;
  if (!ParseInt64(args[2], &by)) {
    ctx.reply.Error(errors::kNotInteger);
    return;
  }
  if (by == std::numeric_limits<int64_t>::min()) {  // negating it would overflow
    ctx.reply.Error("ERR decrement would overflow");
    return;
  }
  ReplyIncrement(ctx, args[1], -by);
}

// INCRBYFLOAT checks the key's type before it parses the increment (Valkey's order); an
// unparsable current value and an unparsable increment share one error text.
void CmdIncrByFloat(CommandContext& ctx, ArgList args) {
  const std::optional<long double> by = crdt::ParseLongDouble(args[2]);
  if (!by) {
    const crdt::ObjectType type = ctx.keyspace().TypeOf(ctx.db(), args[1], ctx.now_ms);
    const bool wrong = type != crdt::ObjectType::kNone && type != crdt::ObjectType::kString;
    ctx.reply.Error(wrong ? errors::kWrongType : errors::kNotFloat);
    return;
  }
  Result<std::string> value = OpIncrement(ctx, args[1], 0, *by);
  if (!value.ok()) {
    ctx.reply.Error(value.error());
    return;
  }
  ctx.reply.Bulk(*value);
}

// ---- LCS -------------------------------------------------------------------------------------

struct LcsOptions {
  bool len = false;
  bool idx = false;
  bool with_match_len = false;
  int64_t min_match_len = 0;
};

// The string at `key` for LCS ("" when missing); nullopt when it holds another type.
std::optional<std::string> LcsInput(CommandContext& ctx, std::string_view key) {
  Result<KeyRef> found = ctx.Read(key, crdt::ObjectType::kString);
  if (!found.ok()) {
    return std::nullopt;
  }
  return *found == nullptr ? std::string() : *(*found)->GetString(ctx.now_ms);
}

bool ParseLcsOptions(CommandContext& ctx, ArgList args, LcsOptions* options) {
  for (size_t j = 3; j < args.size(); ++j) {
    if (EqualsIgnoreCase(args[j], "idx")) {
      options->idx = true;
    } else if (EqualsIgnoreCase(args[j], "len")) {
      options->len = true;
    } else if (EqualsIgnoreCase(args[j], "withmatchlen")) {
      options->with_match_len = true;
    } else if (EqualsIgnoreCase(args[j], "minmatchlen") && j + 1 < args.size()) {
      if (!ParseInt64(args[++j], &options->min_match_len)) {
        ctx.reply.Error(errors::kNotInteger);
        return false;
      }
      options->min_match_len = std::max<int64_t>(options->min_match_len, 0);
    } else {
      ctx.reply.Error(errors::kSyntax);
      return false;
    }
  }
  if (options->idx && options->len) {
    ctx.reply.Error("ERR If you want both the length and indexes, please just use IDX.");
    return false;
  }
  return true;
}

// One matching range of LCS IDX: a[a_start..a_end] == b[b_start..b_end].
struct LcsMatch {
  uint32_t a_start, a_end, b_start, b_end;
};

// Valkey's dynamic programme and its backward walk, which yields the LCS text and its maximal
// matching ranges from the end of the strings towards their start.
std::string LcsWalk(std::string_view a, std::string_view b, std::vector<LcsMatch>* matches) {
  const size_t width = b.size() + 1;
  std::vector<uint32_t> table((a.size() + 1) * width, 0);
  const auto at = [&](size_t i, size_t j) -> uint32_t& { return table[j + i * width]; };
  for (size_t i = 1; i <= a.size(); ++i) {
    for (size_t j = 1; j <= b.size(); ++j) {
      at(i, j) = a[i - 1] == b[j - 1] ? at(i - 1, j - 1) + 1 : std::max(at(i - 1, j), at(i, j - 1));
    }
  }
  std::string result(at(a.size(), b.size()), '\0');
  size_t idx = result.size();
  size_t i = a.size();
  size_t j = b.size();
  std::optional<LcsMatch> range;
  while (i > 0 && j > 0) {
    bool emit = false;
    if (a[i - 1] == b[j - 1]) {
      result[--idx] = a[i - 1];
      if (!range.has_value()) {
        range = LcsMatch{static_cast<uint32_t>(i - 1), static_cast<uint32_t>(i - 1),
                         static_cast<uint32_t>(j - 1), static_cast<uint32_t>(j - 1)};
      } else {  // a match right after a match extends the range backwards
        --range->a_start;
        --range->b_start;
      }
      emit = range->a_start == 0 || range->b_start == 0;
      --i;
      --j;
    } else {
      if (at(i - 1, j) > at(i, j - 1)) {
        --i;
      } else {
        --j;
      }
      emit = range.has_value();
    }
    if (emit) {
      matches->push_back(*range);
      range.reset();
    }
  }
  return result;
}

void CmdLcs(CommandContext& ctx, ArgList args) {
  const std::optional<std::string> a = LcsInput(ctx, args[1]);
  const std::optional<std::string> b = LcsInput(ctx, args[2]);
  if (!a.has_value() || !b.has_value()) {
    ctx.reply.Error("ERR The specified keys must contain string values");
    return;
  }
  LcsOptions options;
  if (!ParseLcsOptions(ctx, args, &options)) {
    return;
  }
  const uint64_t cells = (uint64_t{a->size()} + 1) * (uint64_t{b->size()} + 1);
  if (cells * sizeof(uint32_t) > ctx.server.config().proto_max_bulk_len()) {
    ctx.reply.Error("ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len");
    return;
  }
  std::vector<LcsMatch> matches;
  const std::string result = LcsWalk(*a, *b, &matches);
  if (!options.idx) {
    options.len ? ctx.reply.Integer(static_cast<int64_t>(result.size())) : ctx.reply.Bulk(result);
    return;
  }
  std::erase_if(matches, [&](const LcsMatch& m) {
    return static_cast<int64_t>(m.a_end - m.a_start + 1) < options.min_match_len;
  });
  ctx.reply.Map(2);
  ctx.reply.Bulk("matches");
  ctx.reply.Array(matches.size());
  for (const LcsMatch& m : matches) {
    ctx.reply.Array(options.with_match_len ? 3 : 2);
    ctx.reply.Array(2);
    ctx.reply.Integer(m.a_start);
    ctx.reply.Integer(m.a_end);
    ctx.reply.Array(2);
    ctx.reply.Integer(m.b_start);
    ctx.reply.Integer(m.b_end);
    if (options.with_match_len) {
      ctx.reply.Integer(m.a_end - m.a_start + 1);
    }
  }
  ctx.reply.Bulk("len");
  ctx.reply.Integer(static_cast<int64_t>(result.size()));
}

}  // namespace

void RegisterStringFamily(CommandRegistry& registry) {
  // clang-format off
  constexpr KeySpec kOne{.first = 1, .last = 1, .step = 1};
  constexpr uint32_t kRead = kAclRead | kAclString;
  constexpr uint32_t kWriteAcl = kAclWrite | kAclString;
  constexpr std::string_view kGroup = "string";
  registry.Add({.name = "get", .arity = 2, .flags = kReadOnly | kFast, .keys = kOne, .acl = kRead | kAclFast, .handler = &CmdGet, .group = kGroup, .summary = "Returns the string value of a key.", .since = "1.0.0", .complexity = "O(1)"});
  registry.Add({.name = "set", .arity = -3, .flags = kWrite | kDenyOom, .keys = kOne, .acl = kWriteAcl | kAclSlow, .handler = &CmdSet, .group = kGroup, .summary = "Sets the string value of a key, ignoring its type. The key is created if it doesn't exist.", .since = "1.0.0", .complexity = "O(1)"});
  registry.Add({.name = "setnx", .arity = 3, .flags = kWrite | kDenyOom | kFast, .keys = kOne, .acl = kWriteAcl | kAclFast, .handler = &CmdSetNx, .group = kGroup, .summary = "Set the string value of a key only when the key doesn't exist.", .since = "1.0.0", .complexity = "O(1)"});
  registry.Add({.name = "setex", .arity = 4, .flags = kWrite | kDenyOom, .keys = kOne, .acl = kWriteAcl | kAclSlow, .handler = &CmdSetEx, .group = kGroup, .summary = "Sets the string value and expiration time of a key. Creates the key if it doesn't exist.", .since = "2.0.0", .complexity = "O(1)"});
  registry.Add({.name = "psetex", .arity = 4, .flags = kWrite | kDenyOom, .keys = kOne, .acl = kWriteAcl | kAclSlow, .handler = &CmdPSetEx, .group = kGroup, .summary = "Sets both string value and expiration time in milliseconds of a key. The key is created if it doesn't exist.", .since = "2.6.0", .complexity = "O(1)"});
  registry.Add({.name = "getset", .arity = 3, .flags = kWrite | kDenyOom | kFast, .keys = kOne, .acl = kWriteAcl | kAclFast, .handler = &CmdGetSet, .group = kGroup, .summary = "Returns the previous string value of a key after setting it to a new value.", .since = "1.0.0", .complexity = "O(1)"});
  registry.Add({.name = "getdel", .arity = 2, .flags = kWrite | kFast, .keys = kOne, .acl = kWriteAcl | kAclFast, .handler = &CmdGetDel, .group = kGroup, .summary = "Returns the string value of a key after deleting the key.", .since = "6.2.0", .complexity = "O(1)"});
  registry.Add({.name = "getex", .arity = -2, .flags = kWrite | kFast, .keys = kOne, .acl = kWriteAcl | kAclFast, .handler = &CmdGetEx, .group = kGroup, .summary = "Returns the string value of a key after setting its expiration time.", .since = "6.2.0", .complexity = "O(1)"});
  registry.Add({.name = "mget", .arity = -2, .flags = kReadOnly | kFast, .keys = {.first = 1, .last = -1, .step = 1}, .acl = kRead | kAclFast, .handler = &CmdMGet, .group = kGroup, .summary = "Atomically returns the string values of one or more keys.", .since = "1.0.0", .complexity = "O(N) where N is the number of keys to retrieve."});
  registry.Add({.name = "mset", .arity = -3, .flags = kWrite | kDenyOom, .keys = {.first = 1, .last = -1, .step = 2}, .acl = kWriteAcl | kAclSlow, .handler = &CmdMSet, .group = kGroup, .summary = "Atomically creates or modifies the string values of one or more keys.", .since = "1.0.1", .complexity = "O(N) where N is the number of keys to set."});
  registry.Add({.name = "msetnx", .arity = -3, .flags = kWrite | kDenyOom, .keys = {.first = 1, .last = -1, .step = 2}, .acl = kWriteAcl | kAclSlow, .handler = &CmdMSetNx, .group = kGroup, .summary = "Atomically modifies the string values of one or more keys only when all keys don't exist.", .since = "1.0.1", .complexity = "O(N) where N is the number of keys to set."});
  registry.Add({.name = "append", .arity = 3, .flags = kWrite | kDenyOom | kFast, .keys = kOne, .acl = kWriteAcl | kAclFast, .handler = &CmdAppend, .group = kGroup, .summary = "Appends a string to the value of a key. Creates the key if it doesn't exist.", .since = "2.0.0", .complexity = "O(1). The amortized time complexity is O(1) assuming the appended value is small and the already present value is of any size, since the dynamic string library used by the server will double the free space available on every reallocation."});
  registry.Add({.name = "strlen", .arity = 2, .flags = kReadOnly | kFast, .keys = kOne, .acl = kRead | kAclFast, .handler = &CmdStrLen, .group = kGroup, .summary = "Returns the length of a string value.", .since = "2.2.0", .complexity = "O(1)"});
  registry.Add({.name = "setrange", .arity = 4, .flags = kWrite | kDenyOom, .keys = kOne, .acl = kWriteAcl | kAclSlow, .handler = &CmdSetRange, .group = kGroup, .summary = "Overwrites a part of a string value with another by an offset. Creates the key if it doesn't exist.", .since = "2.2.0", .complexity = "O(1), not counting the time taken to copy the new string in place. Usually, this string is very small so the amortized complexity is O(1). Otherwise, complexity is O(M) with M being the length of the value argument."});
  registry.Add({.name = "getrange", .arity = 4, .flags = kReadOnly, .keys = kOne, .acl = kRead | kAclSlow, .handler = &CmdGetRange, .group = kGroup, .summary = "Returns a substring of the string stored at a key.", .since = "2.4.0", .complexity = "O(N) where N is the length of the returned string. The complexity is ultimately determined by the returned length, but because creating a substring from an existing string is very cheap, it can be considered O(1) for small strings."});
  registry.Add({.name = "incr", .arity = 2, .flags = kWrite | kDenyOom | kFast, .keys = kOne, .acl = kWriteAcl | kAclFast, .handler = &CmdIncr, .group = kGroup, .summary = "Increments the integer value of a key by one. Uses 0 as initial value if the key doesn't exist.", .since = "1.0.0", .complexity = "O(1)"});
  registry.Add({.name = "decr", .arity = 2, .flags = kWrite | kDenyOom | kFast, .keys = kOne, .acl = kWriteAcl | kAclFast, .handler = &CmdDecr, .group = kGroup, .summary = "Decrements the integer value of a key by one. Uses 0 as initial value if the key doesn't exist.", .since = "1.0.0", .complexity = "O(1)"});
  registry.Add({.name = "incrby", .arity = 3, .flags = kWrite | kDenyOom | kFast, .keys = kOne, .acl = kWriteAcl | kAclFast, .handler = &CmdIncrBy, .group = kGroup, .summary = "Increments the integer value of a key by a number. Uses 0 as initial value if the key doesn't exist.", .since = "1.0.0", .complexity = "O(1)"});
  registry.Add({.name = "decrby", .arity = 3, .flags = kWrite | kDenyOom | kFast, .keys = kOne, .acl = kWriteAcl | kAclFast, .handler = &CmdDecrBy, .group = kGroup, .summary = "Decrements a number from the integer value of a key. Uses 0 as initial value if the key doesn't exist.", .since = "1.0.0", .complexity = "O(1)"});
  registry.Add({.name = "incrbyfloat", .arity = 3, .flags = kWrite | kDenyOom | kFast, .keys = kOne, .acl = kWriteAcl | kAclFast, .handler = &CmdIncrByFloat, .group = kGroup, .summary = "Increment the floating point value of a key by a number. Uses 0 as initial value if the key doesn't exist.", .since = "2.6.0", .complexity = "O(1)"});
  // LCS and SUBSTR (SUBSTR is GETRANGE's old name, kept by Valkey).
  registry.Add({.name = "lcs", .arity = -3, .flags = kReadOnly, .keys = {.first = 1, .last = 2, .step = 1}, .acl = kRead | kAclSlow, .handler = &CmdLcs, .group = kGroup, .summary = "Finds the longest common substring.", .since = "7.0.0", .complexity = "O(N*M) where N and M are the lengths of s1 and s2, respectively"});
  registry.Add({.name = "substr", .arity = 4, .flags = kReadOnly, .keys = kOne, .acl = kRead | kAclSlow, .handler = &CmdGetRange, .group = kGroup, .summary = "Returns a substring from a string value.", .since = "1.0.0", .complexity = "O(N) where N is the length of the returned string. The complexity is ultimately determined by the returned length, but because creating a substring from an existing string is very cheap, it can be considered O(1) for small strings."});
  // clang-format on
}

}  // namespace lattice::server
