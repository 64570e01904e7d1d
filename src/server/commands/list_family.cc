// The list command family: LPUSH, RPUSH, LPUSHX, RPUSHX, LPOP, RPOP, LRANGE, LINDEX, LINSERT,
// LLEN, LPOS, LREM, LSET, LTRIM, LMOVE, RPOPLPUSH and LMPOP, on the CRDT List (crdt/list.h), and
// the blocking forms BLPOP, BRPOP, BLMPOP, BLMOVE and BRPOPLPUSH (server/blocking.h). Replies and
// errors follow Valkey 9's t_list.c.
//
// Writes and the ops they ship (docs/commands/list.md says what each does under concurrency):
// - LPUSH/RPUSH/LPUSHX/RPUSHX/LINSERT insert elements with positions between the neighbours the
//   writer saw; LSET writes a new value of one element (last writer wins on that element).
// - LPOP/RPOP/LMPOP/LREM/LTRIM remove the elements they saw (observed remove), so an element a
//   concurrent write inserted survives, and two regions popping concurrently may both return the
//   same element (at-least-once).
// - LMOVE/RPOPLPUSH within one key is one op (remove and push); between two keys, a pop and a
//   push (two ops).

#include <algorithm>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "lattice/common/assert.h"
#include "server/server.h"

namespace lattice::server {

using crdt::List;
using crdt::ListEnd;
using Elements = std::vector<std::string>;

namespace {

constexpr std::string_view kPositiveError = "ERR value is out of range, must be positive";
constexpr std::string_view kNoSuchKey = "ERR no such key";
constexpr std::string_view kIndexOutOfRange = "ERR index out of range";
constexpr std::string_view kRankZero =
    "ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use "
    "negative to start from the end of the list";
constexpr std::string_view kRankRange =
    "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807";

// kRead lookups count keyspace hits and misses (Valkey's lookupKeyRead); kWrite ones do not.
enum class Access { kRead, kWrite };

// The visible list at `key`; nullptr when the key is missing. Valid until the next write.
Result<const List*> FindList(CommandContext& ctx, std::string_view key, Access access) {
  Result<KeyRef> found = access == Access::kRead ? ctx.Read(key, crdt::ObjectType::kList)
                                                 : ctx.Peek(key, crdt::ObjectType::kList);
  if (!found.ok()) {
    return Unexpected(found.error());
  }
  if (*found == nullptr) {
    return static_cast<const List*>(nullptr);
  }
  const crdt::Key* full = (*found).full();
  LATTICE_ASSERT(full != nullptr);  // a list is never stored compact
  return &full->list();
}

// "LEFT"/"RIGHT" (Valkey's getListPositionFromObjectOrReply).
std::optional<ListEnd> ParseEnd(std::string_view text) {
  if (EqualsIgnoreCase(text, "left")) return ListEnd::kHead;
  if (EqualsIgnoreCase(text, "right")) return ListEnd::kTail;
  return std::nullopt;
}

// Valkey's index arithmetic: a negative index counts from the tail.
int64_t Resolve(int64_t index, size_t size) {
  return index < 0 ? static_cast<int64_t>(size) + index : index;
}

// The inclusive range [start, stop] of LRANGE/LTRIM clamped to the list, or nullopt if empty.
std::optional<std::pair<size_t, size_t>> Clamp(int64_t start, int64_t stop, size_t size) {
  start = std::max<int64_t>(Resolve(start, size), 0);
  stop = Resolve(stop, size);
  if (start > stop || start >= static_cast<int64_t>(size)) {
    return std::nullopt;
  }
  stop = std::min<int64_t>(stop, static_cast<int64_t>(size) - 1);
  return std::pair{static_cast<size_t>(start), static_cast<size_t>(stop)};
}

// CommandContext::Write for a list write: after `mutate` writes, the list settles its OBJECT
// ENCODING state under list-max-listpack-size (crdt::List::SettleEncoding).
template <typename Mutate>
Result<void> WriteList(CommandContext& ctx, std::string_view key, Mutate&& mutate) {
  return ctx.Write(key, [&](crdt::Key& k, const crdt::Writer& w, crdt::DotContext& shard) {
    Result<crdt::KeyOp> op = mutate(k, w, shard);
    if (op.ok()) {
      k.SettleListEncoding(ctx.server.list_limits());
    }
    return op;
  });
}

// Removes the elements at `indexes` (ascending, distinct) of `key` as one op.
Result<void> Remove(CommandContext& ctx, std::string_view key, const std::vector<size_t>& indexes) {
  return WriteList(ctx, key, [&](crdt::Key& k, const crdt::Writer& w, crdt::DotContext& shard) {
    return k.LEdit(indexes, ListEnd::kHead, {}, w, shard);
  });
}

void ReplyElements(CommandContext& ctx, const Elements& elements) {
  ctx.reply.Array(elements.size());
  for (const std::string& element : elements) {
    ctx.reply.Bulk(element);
  }
}

// ---- pushes ---------------------------------------------------------------------------------

void Push(CommandContext& ctx, ArgList args, ListEnd end, bool only_existing) {
  if (only_existing) {
    Result<const List*> list = FindList(ctx, args[1], Access::kWrite);
    if (!list.ok() || *list == nullptr) {
      list.ok() ? ctx.reply.Integer(0) : ctx.reply.Error(list.error());
      return;
    }
  }
  const Elements values(args.begin() + 2, args.end());
  size_t length = 0;
  Result<void> done =
      WriteList(ctx, args[1], [&](crdt::Key& k, const crdt::Writer& w, crdt::DotContext& shard) {
        Result<crdt::KeyOp> op = k.LEdit({}, end, values, w, shard);
        length = k.list().Size();
        return op;
      });
  done.ok() ? ctx.reply.Integer(static_cast<int64_t>(length)) : ctx.reply.Error(done.error());
}

void CmdLPush(CommandContext& ctx, ArgList args) { Push(ctx, args, ListEnd::kHead, false); }
void CmdRPush(CommandContext& ctx, ArgList args) { Push(ctx, args, ListEnd::kTail, false); }
void CmdLPushX(CommandContext& ctx, ArgList args) { Push(ctx, args, ListEnd::kHead, true); }
void CmdRPushX(CommandContext& ctx, ArgList args) { Push(ctx, args, ListEnd::kTail, true); }

// ---- pops -----------------------------------------------------------------------------------

void Pop(CommandContext& ctx, ArgList args, ListEnd end) {
  if (args.size() > 3) {
    ctx.reply.Error(errors::WrongArity(ctx.command.full_name));
    return;
  }
  const bool has_count = args.size() == 3;
  int64_t count = 1;
  if (has_count && (!ParseInt64(args[2], &count) || count < 0)) {
    ctx.reply.Error(kPositiveError);  // Valkey gives this text for a non-integer too
    return;
  }
  Result<std::optional<Elements>> popped = ListPop(ctx, args[1], end, static_cast<size_t>(count));
  if (!popped.ok()) {
    ctx.reply.Error(popped.error());
  } else if (!popped->has_value()) {
    has_count ? ctx.reply.NullArray() : ctx.reply.Null();
  } else if (has_count) {
    ReplyElements(ctx, **popped);
  } else {
    ctx.reply.Bulk((*popped)->front());
  }
}

void CmdLPop(CommandContext& ctx, ArgList args) { Pop(ctx, args, ListEnd::kHead); }
void CmdRPop(CommandContext& ctx, ArgList args) { Pop(ctx, args, ListEnd::kTail); }

// What LMPOP/BLMPOP/BLPOP/BRPOP pop: from the first of `keys` that holds a list, up to `count`
// elements at `end`. `nested`: the reply is [key, [elements]] (LMPOP), else [key, element].
struct MultiPop {
  std::vector<std::string> keys;
  ListEnd end = ListEnd::kHead;
  size_t count = 1;
  bool nested = true;
};

// numkeys key [key ...] LEFT|RIGHT [COUNT count] from args[numkeys_index], with Valkey's errors
// in its order (lmpopGenericCommand).
Result<MultiPop> ParseMultiPop(ArgList args, size_t numkeys_index) {
  int64_t numkeys = 0;
  if (!ParseInt64(args[numkeys_index], &numkeys) || numkeys < 1) {
    return Unexpected(std::string("ERR numkeys should be greater than 0"));
  }
  if (static_cast<uint64_t>(numkeys) >= args.size() - numkeys_index - 1) {
    return Unexpected(ErrorCode::kSyntax);  // no LEFT|RIGHT after the keys
  }
  const size_t where = numkeys_index + 1 + static_cast<size_t>(numkeys);
  const std::optional<ListEnd> end = ParseEnd(args[where]);
  if (!end) {
    return Unexpected(ErrorCode::kSyntax);
  }
  int64_t count = -1;
  for (size_t i = where + 1; i < args.size(); ++i) {
    if (count != -1 || !EqualsIgnoreCase(args[i], "count") || i + 1 == args.size()) {
      return Unexpected(ErrorCode::kSyntax);
    }
    if (!ParseInt64(args[++i], &count) || count < 1) {
      return Unexpected(std::string("ERR count should be greater than 0"));
    }
  }
  return MultiPop{.keys = {args.begin() + numkeys_index + 1, args.begin() + where},
                  .end = *end,
                  .count = static_cast<size_t>(std::max<int64_t>(count, 1))};
}

// Pops from the first key holding a list and replies; false (no reply) when none holds one. A
// key of another type before it replies WRONGTYPE, as Valkey's.
bool TryMultiPop(CommandContext& ctx, const MultiPop& pop) {
  for (const std::string& key : pop.keys) {
    Result<std::optional<Elements>> popped = ListPop(ctx, key, pop.end, pop.count);
    if (!popped.ok()) {
      ctx.reply.Error(popped.error());
      return true;
    }
    if (popped->has_value()) {
      ctx.reply.Array(2);
      ctx.reply.Bulk(key);
      if (pop.nested) {
        ReplyElements(ctx, **popped);
      } else {
        ctx.reply.Bulk((*popped)->front());
      }
      return true;
    }
  }
  return false;
}

// LMPOP numkeys key [key ...] LEFT|RIGHT [COUNT count]
void CmdLMPop(CommandContext& ctx, ArgList args) {
  const Result<MultiPop> pop = ParseMultiPop(args, 1);
  if (!pop.ok()) {
    ctx.reply.Error(pop.error());
    return;
  }
  if (!TryMultiPop(ctx, *pop)) {
    ctx.reply.NullArray();
  }
}

void Move(CommandContext& ctx, std::string_view source, std::string_view destination, ListEnd from,
          ListEnd to) {
  Result<std::optional<std::string>> moved = ListMove(ctx, source, destination, from, to);
  if (!moved.ok()) {
    ctx.reply.Error(moved.error());
  } else if (!moved->has_value()) {
    ctx.reply.Null();
  } else {
    ctx.reply.Bulk(**moved);
  }
}

void CmdLMove(CommandContext& ctx, ArgList args) {
  const std::optional<ListEnd> from = ParseEnd(args[3]);
  const std::optional<ListEnd> to = ParseEnd(args[4]);
  if (!from || !to) {
    ctx.reply.Error(errors::kSyntax);
    return;
  }
  Move(ctx, args[1], args[2], *from, *to);
}

void CmdRPopLPush(CommandContext& ctx, ArgList args) {
  Move(ctx, args[1], args[2], ListEnd::kTail, ListEnd::kHead);
}

// ---- blocking forms (server/blocking.h) -----------------------------------------------------

// Whether some key holds a non-empty list: a woken client runs its pop only then, as Valkey wakes
// a client blocked on a list only when the ready key holds one.
bool AnyListReady(CommandContext& ctx, const std::vector<std::string>& keys) {
  for (const std::string& key : keys) {
    const Result<const List*> list = FindList(ctx, key, Access::kWrite);
    if (list.ok() && *list != nullptr && !(*list)->empty()) {
      return true;
    }
  }
  return false;
}

// Pop now; or reply null where blocking is denied (MULTI, scripts); or wait until a key gets
// elements or the deadline passes (a null array).
void BlockingPop(CommandContext& ctx, ArgList args, MultiPop pop, std::string_view timeout) {
  BlockRequest request{.keys = pop.keys};
  request.serve = [pop](CommandContext& woken) {
    return AnyListReady(woken, pop.keys) && TryMultiPop(woken, pop);
  };
  BlockOrServe(
      ctx, args, timeout, [&pop](CommandContext& now) { return TryMultiPop(now, pop); },
      std::move(request));
}

// BLPOP/BRPOP key [key ...] timeout
void CmdBLPop(CommandContext& ctx, ArgList args) {
  BlockingPop(
      ctx, args,
      MultiPop{.keys = {args.begin() + 1, args.end() - 1}, .end = ListEnd::kHead, .nested = false},
      args.back());
}
void CmdBRPop(CommandContext& ctx, ArgList args) {
  BlockingPop(
      ctx, args,
      MultiPop{.keys = {args.begin() + 1, args.end() - 1}, .end = ListEnd::kTail, .nested = false},
      args.back());
}

// BLMPOP timeout numkeys key [key ...] LEFT|RIGHT [COUNT count]
void CmdBLMPop(CommandContext& ctx, ArgList args) {
  Result<MultiPop> pop = ParseMultiPop(args, 2);
  if (!pop.ok()) {
    ctx.reply.Error(pop.error());
    return;
  }
  BlockingPop(ctx, args, std::move(*pop), args[1]);
}

// LMOVE now when the source holds a list (or is of another type: WRONGTYPE); else a null bulk
// where blocking is denied, or wait for the source (a null bulk on timeout).
void BlockingMove(CommandContext& ctx, ArgList args, ListEnd from, ListEnd to,
                  std::string_view timeout) {
  const std::string source(args[1]);
  const std::string destination(args[2]);
  BlockRequest request{.keys = {source}};
  request.serve = [source, destination, from, to](CommandContext& woken) {
    if (!AnyListReady(woken, {source})) {
      return false;
    }
    Move(woken, source, destination, from, to);
    return true;
  };
  request.timed_out = [](CommandContext& woken) { woken.reply.Null(); };
  const auto now = [&](CommandContext& now_ctx) {
    const Result<const List*> list = FindList(now_ctx, source, Access::kWrite);
    if (list.ok() && *list == nullptr) {
      return false;  // missing: wait
    }
    Move(now_ctx, source, destination, from, to);  // a list, or WRONGTYPE
    return true;
  };
  BlockOrServe(ctx, args, timeout, now, std::move(request));
}

// BLMOVE source destination LEFT|RIGHT LEFT|RIGHT timeout
void CmdBLMove(CommandContext& ctx, ArgList args) {
  const std::optional<ListEnd> from = ParseEnd(args[3]);
  const std::optional<ListEnd> to = ParseEnd(args[4]);
  if (!from || !to) {
    ctx.reply.Error(errors::kSyntax);
    return;
  }
  BlockingMove(ctx, args, *from, *to, args[5]);
}

// BRPOPLPUSH source destination timeout
void CmdBRPopLPush(CommandContext& ctx, ArgList args) {
  BlockingMove(ctx, args, ListEnd::kTail, ListEnd::kHead, args[3]);
}

// ---- reads ----------------------------------------------------------------------------------

void CmdLLen(CommandContext& ctx, ArgList args) {
  Result<const List*> list = FindList(ctx, args[1], Access::kRead);
  if (!list.ok()) {
    ctx.reply.Error(list.error());
    return;
  }
  ctx.reply.Integer(*list == nullptr ? 0 : static_cast<int64_t>((*list)->Size()));
}

void CmdLRange(CommandContext& ctx, ArgList args) {
  int64_t start = 0;
  int64_t stop = 0;
  if (!ParseInt64(args[2], &start) || !ParseInt64(args[3], &stop)) {
    ctx.reply.Error(errors::kNotInteger);
    return;
  }
  Result<const List*> list = FindList(ctx, args[1], Access::kRead);
  if (!list.ok()) {
    ctx.reply.Error(list.error());
    return;
  }
  const auto range = *list == nullptr ? std::nullopt : Clamp(start, stop, (*list)->Size());
  if (!range) {
    ctx.reply.Array(0);
    return;
  }
  ctx.reply.Array(range->second - range->first + 1);
  (*list)->Walk(ListEnd::kHead, [&](size_t index, std::string_view value) {
    if (index >= range->first) {
      ctx.reply.Bulk(value);
    }
    return index < range->second;
  });
}

void CmdLIndex(CommandContext& ctx, ArgList args) {
  Result<const List*> list = FindList(ctx, args[1], Access::kRead);
  if (!list.ok() || *list == nullptr) {
    list.ok() ? ctx.reply.Null() : ctx.reply.Error(list.error());
    return;
  }
  int64_t index = 0;
  if (!ParseInt64(args[2], &index)) {
    ctx.reply.Error(errors::kNotInteger);
    return;
  }
  index = Resolve(index, (*list)->Size());
  const auto value = index < 0 ? std::nullopt : (*list)->At(static_cast<size_t>(index));
  value ? ctx.reply.Bulk(*value) : ctx.reply.Null();
}

// LPOS key element [RANK rank] [COUNT num-matches] [MAXLEN len]
void CmdLPos(CommandContext& ctx, ArgList args) {
  int64_t rank = 1;
  int64_t count = -1;  // -1: no COUNT (a single index reply)
  int64_t maxlen = 0;
  for (size_t i = 3; i < args.size(); ++i) {
    const bool more = i + 1 < args.size();
    if (EqualsIgnoreCase(args[i], "rank") && more) {
      if (!ParseInt64(args[++i], &rank)) {
        ctx.reply.Error(errors::kNotInteger);
        return;
      }
      if (rank == std::numeric_limits<int64_t>::min()) {
        ctx.reply.Error(kRankRange);
        return;
      }
      if (rank == 0) {
        ctx.reply.Error(kRankZero);
        return;
      }
    } else if (EqualsIgnoreCase(args[i], "count") && more) {
      if (!ParseInt64(args[++i], &count) || count < 0) {
        ctx.reply.Error("ERR COUNT can't be negative");
        return;
      }
    } else if (EqualsIgnoreCase(args[i], "maxlen") && more) {
      if (!ParseInt64(args[++i], &maxlen) || maxlen < 0) {
        ctx.reply.Error("ERR MAXLEN can't be negative");
        return;
      }
    } else {
      ctx.reply.Error(errors::kSyntax);
      return;
    }
  }
  Result<const List*> list = FindList(ctx, args[1], Access::kRead);
  if (!list.ok()) {
    ctx.reply.Error(list.error());
    return;
  }
  if (*list == nullptr) {
    count != -1 ? ctx.reply.Array(0) : ctx.reply.Null();
    return;
  }
  const ListEnd from = rank > 0 ? ListEnd::kHead : ListEnd::kTail;
  const uint64_t skip = (rank > 0 ? static_cast<uint64_t>(rank) : static_cast<uint64_t>(-rank)) - 1;
  std::vector<int64_t> found;
  uint64_t matches = 0;
  uint64_t compared = 0;
  (*list)->Walk(from, [&](size_t index, std::string_view value) {
    if (maxlen != 0 && compared >= static_cast<uint64_t>(maxlen)) {
      return false;
    }
    ++compared;
    if (value != args[2] || matches++ < skip) {
      return true;
    }
    found.push_back(static_cast<int64_t>(index));
    return count == -1 ? false : count == 0 || found.size() < static_cast<uint64_t>(count);
  });
  if (count == -1) {
    found.empty() ? ctx.reply.Null() : ctx.reply.Integer(found.front());
    return;
  }
  ctx.reply.Array(found.size());
  for (int64_t index : found) {
    ctx.reply.Integer(index);
  }
}

// ---- other writes ---------------------------------------------------------------------------

// LINSERT key BEFORE|AFTER pivot element
void CmdLInsert(CommandContext& ctx, ArgList args) {
  const bool before = EqualsIgnoreCase(args[2], "before");
  if (!before && !EqualsIgnoreCase(args[2], "after")) {
    ctx.reply.Error(errors::kSyntax);
    return;
  }
  Result<const List*> list = FindList(ctx, args[1], Access::kWrite);
  if (!list.ok() || *list == nullptr) {
    list.ok() ? ctx.reply.Integer(0) : ctx.reply.Error(list.error());
    return;
  }
  std::optional<size_t> pivot;
  (*list)->Walk(ListEnd::kHead, [&](size_t index, std::string_view value) {
    if (value == args[3]) {
      pivot = index;
    }
    return !pivot;
  });
  if (!pivot) {
    ctx.reply.Integer(-1);
    return;
  }
  size_t length = 0;
  Result<void> done =
      WriteList(ctx, args[1], [&](crdt::Key& k, const crdt::Writer& w, crdt::DotContext& shard) {
        Result<crdt::KeyOp> op = k.LInsert(*pivot, before, args[4], w, shard);
        length = k.list().Size();
        return op;
      });
  done.ok() ? ctx.reply.Integer(static_cast<int64_t>(length)) : ctx.reply.Error(done.error());
}

// LREM key count element
void CmdLRem(CommandContext& ctx, ArgList args) {
  int64_t count = 0;
  if (!ParseInt64(args[2], &count)) {
    ctx.reply.Error(errors::kNotInteger);
    return;
  }
  Result<const List*> list = FindList(ctx, args[1], Access::kWrite);
  if (!list.ok() || *list == nullptr) {
    list.ok() ? ctx.reply.Integer(0) : ctx.reply.Error(list.error());
    return;
  }
  const uint64_t limit = count == 0  ? std::numeric_limits<uint64_t>::max()
                         : count > 0 ? static_cast<uint64_t>(count)
                                     : 0 - static_cast<uint64_t>(count);
  std::vector<size_t> indexes;
  (*list)->Walk(count >= 0 ? ListEnd::kHead : ListEnd::kTail,
                [&](size_t index, std::string_view value) {
                  if (value == args[3]) {
                    indexes.push_back(index);
                  }
                  return indexes.size() < limit;
                });
  if (indexes.empty()) {
    ctx.reply.Integer(0);
    return;
  }
  std::sort(indexes.begin(), indexes.end());
  Result<void> done = Remove(ctx, args[1], indexes);
  done.ok() ? ctx.reply.Integer(static_cast<int64_t>(indexes.size()))
            : ctx.reply.Error(done.error());
}

// LSET key index element
void CmdLSet(CommandContext& ctx, ArgList args) {
  Result<const List*> list = FindList(ctx, args[1], Access::kWrite);
  if (!list.ok() || *list == nullptr) {
    list.ok() ? ctx.reply.Error(kNoSuchKey) : ctx.reply.Error(list.error());
    return;
  }
  int64_t index = 0;
  if (!ParseInt64(args[2], &index)) {
    ctx.reply.Error(errors::kNotInteger);
    return;
  }
  index = Resolve(index, (*list)->Size());
  if (index < 0 || index >= static_cast<int64_t>((*list)->Size())) {
    ctx.reply.Error(kIndexOutOfRange);
    return;
  }
  Result<void> done =
      WriteList(ctx, args[1], [&](crdt::Key& k, const crdt::Writer& w, crdt::DotContext& shard) {
        return k.LSet(static_cast<size_t>(index), args[3], w, shard);
      });
  done.ok() ? ctx.reply.Ok() : ctx.reply.Error(done.error());
}

// LTRIM key start stop
void CmdLTrim(CommandContext& ctx, ArgList args) {
  int64_t start = 0;
  int64_t stop = 0;
  if (!ParseInt64(args[2], &start) || !ParseInt64(args[3], &stop)) {
    ctx.reply.Error(errors::kNotInteger);
    return;
  }
  Result<const List*> list = FindList(ctx, args[1], Access::kWrite);
  if (!list.ok() || *list == nullptr) {
    list.ok() ? ctx.reply.Ok() : ctx.reply.Error(list.error());
    return;
  }
  const size_t size = (*list)->Size();
  const auto keep = Clamp(start, stop, size);
  std::vector<size_t> indexes;
  const size_t kept_first = keep ? keep->first : size;
  const size_t kept_last = keep ? keep->second : size;
  for (size_t i = 0; i < kept_first; ++i) {
    indexes.push_back(i);
  }
  for (size_t i = kept_last + 1; i < size; ++i) {
    indexes.push_back(i);
  }
  if (!indexes.empty()) {
    Result<void> done = Remove(ctx, args[1], indexes);
    if (!done.ok()) {
      ctx.reply.Error(done.error());
      return;
    }
  }
  ctx.reply.Ok();
}

}  // namespace

Result<std::optional<Elements>> ListPop(CommandContext& ctx, std::string_view key, ListEnd end,
                                        size_t count) {
  Result<const List*> list = FindList(ctx, key, Access::kWrite);
  if (!list.ok()) {
    return Unexpected(list.error());
  }
  if (*list == nullptr) {
    return std::optional<Elements>();
  }
  Elements popped;
  if (count == 0) {
    return std::optional<Elements>(std::move(popped));
  }
  Result<void> done =
      WriteList(ctx, key, [&](crdt::Key& k, const crdt::Writer& w, crdt::DotContext& shard) {
        const size_t size = k.list().Size();
        const size_t n = std::min(count, size);
        const size_t first = end == ListEnd::kHead ? 0 : size - n;
        std::vector<size_t> indexes(n);
        for (size_t i = 0; i < n; ++i) {
          indexes[i] = first + i;
        }
        popped = k.list().Range(first, first + n - 1);
        if (end == ListEnd::kTail) {
          std::reverse(popped.begin(), popped.end());
        }
        return k.LEdit(indexes, end, {}, w, shard);
      });
  if (!done.ok()) {
    return Unexpected(done.error());
  }
  return std::optional<Elements>(std::move(popped));
}

Result<std::optional<std::string>> ListMove(CommandContext& ctx, std::string_view source,
                                            std::string_view destination, ListEnd from,
                                            ListEnd to) {
  Result<const List*> list = FindList(ctx, source, Access::kWrite);
  if (!list.ok()) {
    return Unexpected(list.error());
  }
  if (*list == nullptr) {
    return std::optional<std::string>();
  }
  if (Result<KeyRef> target = ctx.Peek(destination, crdt::ObjectType::kList); !target.ok()) {
    return Unexpected(target.error());
  }
  const size_t index = from == ListEnd::kHead ? 0 : (*list)->Size() - 1;
  std::string value(*(*list)->At(index));
  if (source == destination) {
    Result<void> done =
        WriteList(ctx, source, [&](crdt::Key& k, const crdt::Writer& w, crdt::DotContext& shard) {
          return k.LEdit({index}, to, {value}, w, shard);
        });
    if (!done.ok()) {
      return Unexpected(done.error());
    }
    return std::optional<std::string>(std::move(value));
  }
  if (Result<void> done = Remove(ctx, source, {index}); !done.ok()) {
    return Unexpected(done.error());
  }
  Result<void> pushed = WriteList(
      ctx, destination, [&](crdt::Key& k, const crdt::Writer& w, crdt::DotContext& shard) {
        return k.LEdit({}, to, {value}, w, shard);
      });
  if (!pushed.ok()) {
    return Unexpected(pushed.error());
  }
  return std::optional<std::string>(std::move(value));
}

void RegisterListFamily(CommandRegistry& registry) {
  // clang-format off
  constexpr uint32_t kW = kAclWrite | kAclList;
  constexpr uint32_t kR = kAclRead | kAclList;
  constexpr KeySpec kOne{.first = 1, .last = 1, .step = 1};
  constexpr KeySpec kTwo{.first = 1, .last = 2, .step = 1};
  registry.Add({.name = "lpush", .arity = -3, .flags = kWrite | kDenyOom | kFast, .keys = kOne, .acl = kW | kAclFast, .handler = &CmdLPush, .group = "list", .summary = "Prepends one or more elements to a list. Creates the key if it doesn't exist.", .since = "1.0.0", .complexity = "O(1) for each element added, so O(N) to add N elements when the command is called with multiple arguments."});
  registry.Add({.name = "rpush", .arity = -3, .flags = kWrite | kDenyOom | kFast, .keys = kOne, .acl = kW | kAclFast, .handler = &CmdRPush, .group = "list", .summary = "Appends one or more elements to a list. Creates the key if it doesn't exist.", .since = "1.0.0", .complexity = "O(1) for each element added, so O(N) to add N elements when the command is called with multiple arguments."});
  registry.Add({.name = "lpushx", .arity = -3, .flags = kWrite | kDenyOom | kFast, .keys = kOne, .acl = kW | kAclFast, .handler = &CmdLPushX, .group = "list", .summary = "Prepends one or more elements to a list only when the list exists.", .since = "2.2.0", .complexity = "O(1) for each element added, so O(N) to add N elements when the command is called with multiple arguments."});
  registry.Add({.name = "rpushx", .arity = -3, .flags = kWrite | kDenyOom | kFast, .keys = kOne, .acl = kW | kAclFast, .handler = &CmdRPushX, .group = "list", .summary = "Appends an element to a list only when the list exists.", .since = "2.2.0", .complexity = "O(1) for each element added, so O(N) to add N elements when the command is called with multiple arguments."});
  registry.Add({.name = "lpop", .arity = -2, .flags = kWrite | kFast, .keys = kOne, .acl = kW | kAclFast, .handler = &CmdLPop, .group = "list", .summary = "Returns the first elements in a list after removing it. Deletes the list if the last element was popped.", .since = "1.0.0", .complexity = "O(N) where N is the number of elements returned"});
  registry.Add({.name = "rpop", .arity = -2, .flags = kWrite | kFast, .keys = kOne, .acl = kW | kAclFast, .handler = &CmdRPop, .group = "list", .summary = "Returns and removes the last elements of a list. Deletes the list if the last element was popped.", .since = "1.0.0", .complexity = "O(N) where N is the number of elements returned"});
  registry.Add({.name = "lrange", .arity = 4, .flags = kReadOnly, .keys = kOne, .acl = kR | kAclSlow, .handler = &CmdLRange, .group = "list", .summary = "Returns a range of elements from a list.", .since = "1.0.0", .complexity = "O(S+N) where S is the distance of start offset from HEAD for small lists, from nearest end (HEAD or TAIL) for large lists; and N is the number of elements in the specified range."});
  registry.Add({.name = "lindex", .arity = 3, .flags = kReadOnly, .keys = kOne, .acl = kR | kAclSlow, .handler = &CmdLIndex, .group = "list", .summary = "Returns an element from a list by its index.", .since = "1.0.0", .complexity = "O(N) where N is the number of elements to traverse to get to the element at index. This makes asking for the first or the last element of the list O(1)."});
  registry.Add({.name = "linsert", .arity = 5, .flags = kWrite | kDenyOom, .keys = kOne, .acl = kW | kAclSlow, .handler = &CmdLInsert, .group = "list", .summary = "Inserts an element before or after another element in a list.", .since = "2.2.0", .complexity = "O(N) where N is the number of elements to traverse before seeing the value pivot. This means that inserting somewhere on the left end on the list (head) can be considered O(1) and inserting somewhere on the right end (tail) is O(N)."});
  registry.Add({.name = "llen", .arity = 2, .flags = kReadOnly | kFast, .keys = kOne, .acl = kR | kAclFast, .handler = &CmdLLen, .group = "list", .summary = "Returns the length of a list.", .since = "1.0.0", .complexity = "O(1)"});
  registry.Add({.name = "lpos", .arity = -3, .flags = kReadOnly, .keys = kOne, .acl = kR | kAclSlow, .handler = &CmdLPos, .group = "list", .summary = "Returns the index of matching elements in a list.", .since = "6.0.6", .complexity = "O(N) where N is the number of elements in the list, for the average case. When searching for elements near the head or the tail of the list, or when the MAXLEN option is provided, the command may run in constant time."});
  registry.Add({.name = "lrem", .arity = 4, .flags = kWrite, .keys = kOne, .acl = kW | kAclSlow, .handler = &CmdLRem, .group = "list", .summary = "Removes elements from a list. Deletes the list if the last element was removed.", .since = "1.0.0", .complexity = "O(N+M) where N is the length of the list and M is the number of elements removed."});
  registry.Add({.name = "lset", .arity = 4, .flags = kWrite | kDenyOom, .keys = kOne, .acl = kW | kAclSlow, .handler = &CmdLSet, .group = "list", .summary = "Sets the value of an element in a list by its index.", .since = "1.0.0", .complexity = "O(N) where N is the length of the list. Setting either the first or the last element of the list is O(1)."});
  registry.Add({.name = "ltrim", .arity = 4, .flags = kWrite, .keys = kOne, .acl = kW | kAclSlow, .handler = &CmdLTrim, .group = "list", .summary = "Removes elements from both ends a list. Deletes the list if all elements were trimmed.", .since = "1.0.0", .complexity = "O(N) where N is the number of elements to be removed by the operation."});
  registry.Add({.name = "lmove", .arity = 5, .flags = kWrite | kDenyOom, .keys = kTwo, .acl = kW | kAclSlow, .handler = &CmdLMove, .group = "list", .summary = "Returns an element after popping it from one list and pushing it to another. Deletes the list if the last element was moved.", .since = "6.2.0", .complexity = "O(1)"});
  registry.Add({.name = "rpoplpush", .arity = 3, .flags = kWrite | kDenyOom, .keys = kTwo, .acl = kW | kAclSlow, .handler = &CmdRPopLPush, .group = "list", .summary = "Returns the last element of a list after removing and pushing it to another list. Deletes the list if the last element was popped.", .since = "1.2.0", .complexity = "O(1)"});
  // Keys are found through numkeys (a keynum key spec): legacy range 0 0 0 and movablekeys.
  registry.Add({.name = "lmpop", .arity = -4, .flags = kWrite | kMovableKeys, .keys = {.numkeys_index = 1}, .acl = kW | kAclSlow, .handler = &CmdLMPop, .group = "list", .summary = "Returns multiple elements from a list after removing them. Deletes the list if the last element was popped.", .since = "7.0.0", .complexity = "O(N+M) where N is the number of provided keys and M is the number of elements returned."});
  constexpr KeySpec kAllButLast{.first = 1, .last = -2, .step = 1};
  registry.Add({.name = "blpop", .arity = -3, .flags = kWrite | kBlocking, .keys = kAllButLast, .acl = kW | kAclSlow | kAclBlocking, .handler = &CmdBLPop, .group = "list", .summary = "Removes and returns the first element in a list. Blocks until an element is available otherwise. Deletes the list if the last element was popped.", .since = "2.0.0", .complexity = "O(N) where N is the number of provided keys."});
  registry.Add({.name = "brpop", .arity = -3, .flags = kWrite | kBlocking, .keys = kAllButLast, .acl = kW | kAclSlow | kAclBlocking, .handler = &CmdBRPop, .group = "list", .summary = "Removes and returns the last element in a list. Blocks until an element is available otherwise. Deletes the list if the last element was popped.", .since = "2.0.0", .complexity = "O(N) where N is the number of provided keys."});
  registry.Add({.name = "blmove", .arity = 6, .flags = kWrite | kDenyOom | kBlocking, .keys = kTwo, .acl = kW | kAclSlow | kAclBlocking, .handler = &CmdBLMove, .group = "list", .summary = "Pops an element from a list, pushes it to another list and returns it. Blocks until an element is available otherwise. Deletes the list if the last element was moved.", .since = "6.2.0", .complexity = "O(1)"});
  registry.Add({.name = "brpoplpush", .arity = 4, .flags = kWrite | kDenyOom | kBlocking, .keys = kTwo, .acl = kW | kAclSlow | kAclBlocking, .handler = &CmdBRPopLPush, .group = "list", .summary = "Pops an element from a list, pushes it to another list and returns it. Block until an element is available otherwise. Deletes the list if the last element was popped.", .since = "2.2.0", .complexity = "O(1)"});
  registry.Add({.name = "blmpop", .arity = -5, .flags = kWrite | kBlocking | kMovableKeys, .keys = {.numkeys_index = 2}, .acl = kW | kAclSlow | kAclBlocking, .handler = &CmdBLMPop, .group = "list", .summary = "Pops the first element from one of multiple lists. Blocks until an element is available otherwise. Deletes the list if the last element was popped.", .since = "7.0.0", .complexity = "O(N+M) where N is the number of provided keys and M is the number of elements returned."});
  // clang-format on
}

}  // namespace lattice::server
