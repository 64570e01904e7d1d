// The sorted-set command family: ZADD and friends on crdt::SortedSet.
//
// Every read of an order (ranges, ranks, counts, pops) comes from the SortedSet's OrderIndex, an
// order-statistic skip list: ranks are O(log n), a score bound is a CountBelow, a lex bound is a
// binary search over ranks (lex ranges assume equal scores, as Valkey's do), and a range is a walk
// from a rank. Nothing here sorts a stored set on read; only computed results (ZUNION, ZINTER,
// ZDIFF) are sorted, as Valkey builds a fresh skip list for them.
//
// Writes go through the Keyspace Open/Commit protocol. The crdt API takes one member per ZADD or
// ZINCRBY, so a ZADD with n changed members ships n ops; a removal of many members (ZREM, ZPOP*,
// ZREMRANGEBY*) is one op; a *STORE is a DEL op followed by one op per stored member.
//
// Parsing follows Valkey's t_zset.c, including the order in which errors are detected.

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <climits>
#include <cmath>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "server/server.h"
#include "util/glob.h"

namespace lattice::server {
namespace {

using crdt::OrderIndex;
using crdt::SortedSet;
// (score, member) pairs in the order they are replied.
using Items = std::vector<std::pair<double, std::string>>;

constexpr std::string_view kRangeNotFloat = "ERR min or max is not a float";
constexpr std::string_view kRangeNotLex = "ERR min or max not valid string range item";
constexpr std::string_view kNanScore = "ERR resulting score is not a number (NaN)";
constexpr std::string_view kMustBePositive = "ERR value is out of range, must be positive";
// Valkey keeps sorted sets up to this size (and member length) in a listpack, which ZSCAN
// returns whole with cursor 0; we do the same, so small scans match Valkey exactly.
constexpr size_t kSmallEntries = 128;
constexpr size_t kSmallValueBytes = 64;
// ZRANDMEMBER with a negative count repeats members; Valkey streams any count until the output
// buffer limit closes the client. We refuse counts that could not be buffered (documented).
constexpr uint64_t kMaxRepeatedSamples = uint64_t{1} << 22;

// ---- parsing ---------------------------------------------------------------------------------

// Valkey's string2d: strtod over the whole text, no leading space, no overflow, no NaN.
bool ParseScore(std::string_view text, double* out) {
  if (text.empty() || std::isspace(static_cast<unsigned char>(text[0]))) {
    return false;
  }
  const std::string buffer(text);
  errno = 0;
  char* end = nullptr;
  const double value = std::strtod(buffer.c_str(), &end);
  if (static_cast<size_t>(end - buffer.c_str()) != buffer.size() || std::isnan(value)) {
    return false;
  }
  if (errno == ERANGE &&
      (value == HUGE_VAL || value == -HUGE_VAL || std::fpclassify(value) == FP_ZERO)) {
    return false;
  }
  *out = value;
  return true;
}

struct ScoreRange {
  double min = 0;
  double max = 0;
  bool min_exclusive = false;
  bool max_exclusive = false;
};

// One bound of zslParseRange: "(" makes it exclusive; strtod on the C string (so a leading space
// is skipped and an embedded NUL ends the number, as in Valkey); NaN is refused.
bool ParseScoreBound(std::string_view text, double* value, bool* exclusive) {
  const std::string buffer(text);
  const char* start = buffer.c_str();
  *exclusive = !buffer.empty() && buffer[0] == '(';
  if (*exclusive) {
    ++start;
  }
  char* end = nullptr;
  *value = std::strtod(start, &end);
  return end[0] == '\0' && !std::isnan(*value);
}

bool ParseScoreRange(std::string_view min, std::string_view max, ScoreRange* range) {
  return ParseScoreBound(min, &range->min, &range->min_exclusive) &&
         ParseScoreBound(max, &range->max, &range->max_exclusive);
}

// A lex bound: "-" (below everything), "+" (above everything), "(x" or "[x".
struct LexBound {
  enum Kind { kMinString, kMaxString, kValue } kind = kValue;
  std::string value;
  bool exclusive = false;
};

struct LexRange {
  LexBound min;
  LexBound max;
};

bool ParseLexBound(std::string_view text, LexBound* bound) {
  if (text.empty()) {
    return false;
  }
  // Valkey reads the argument as a C string: "+" followed by a NUL is still "+".
  const bool alone = text.size() == 1 || text[1] == '\0';
  switch (text[0]) {
    case '+':
    case '-':
      if (!alone) {
        return false;
      }
      bound->kind = text[0] == '+' ? LexBound::kMaxString : LexBound::kMinString;
      bound->exclusive = true;
      return true;
    case '(':
    case '[':
      bound->kind = LexBound::kValue;
      bound->value = std::string(text.substr(1));
      bound->exclusive = text[0] == '(';
      return true;
    default:
      return false;
  }
}

bool ParseLexRange(std::string_view min, std::string_view max, LexRange* range) {
  return ParseLexBound(min, &range->min) && ParseLexBound(max, &range->max);
}

// Valkey's sdscmplex between two bounds: the shared min/max strings compare by identity first.
int CompareBounds(const LexBound& a, const LexBound& b) {
  if (a.kind != LexBound::kValue && a.kind == b.kind) {
    return 0;
  }
  if (a.kind == LexBound::kMinString || b.kind == LexBound::kMaxString) {
    return -1;
  }
  if (a.kind == LexBound::kMaxString || b.kind == LexBound::kMinString) {
    return 1;
  }
  const int c = a.value.compare(b.value);
  return c < 0 ? -1 : (c > 0 ? 1 : 0);
}

int CompareToBound(std::string_view value, const LexBound& bound) {
  if (bound.kind == LexBound::kMinString) {
    return 1;
  }
  if (bound.kind == LexBound::kMaxString) {
    return -1;
  }
  const int c = value.compare(bound.value);
  return c < 0 ? -1 : (c > 0 ? 1 : 0);
}

bool LexGteMin(std::string_view value, const LexRange& range) {
  const int c = CompareToBound(value, range.min);
  return range.min.exclusive ? c > 0 : c >= 0;
}

bool LexLteMax(std::string_view value, const LexRange& range) {
  const int c = CompareToBound(value, range.max);
  return range.max.exclusive ? c < 0 : c <= 0;
}

// ---- reading ---------------------------------------------------------------------------------

// The visible sorted set at `key`: zset is null when the key is missing (or wrong_type is set).
struct ZSetLookup {
  const SortedSet* zset = nullptr;
  bool wrong_type = false;
};

// kRead lookups count keyspace hits and misses (Valkey's lookupKeyRead); kWrite ones, made to
// write the key (lookupKeyWrite), do not.
enum class Access { kRead, kWrite };

ZSetLookup LookupZSet(CommandContext& ctx, std::string_view key, Access access = Access::kWrite) {
  Result<KeyRef> found = access == Access::kRead ? ctx.Read(key, crdt::ObjectType::kZSet)
                                                 : ctx.Peek(key, crdt::ObjectType::kZSet);
  if (!found.ok()) {
    return {nullptr, true};
  }
  return {*found == nullptr ? nullptr : &(*found)->zset(), false};
}

// Ranks [first, last) of the members whose score is in `range`: two CountBelow lookups.
std::pair<size_t, size_t> ScoreSpan(const OrderIndex& index, const ScoreRange& range) {
  if (range.min > range.max ||
      (range.min == range.max && (range.min_exclusive || range.max_exclusive))) {
    return {0, 0};
  }
  const size_t first = index.CountBelow(range.min, range.min_exclusive);
  const size_t last = index.CountBelow(range.max, !range.max_exclusive);
  return first < last ? std::make_pair(first, last) : std::make_pair(size_t{0}, size_t{0});
}

// The first rank in [0, size) whose member satisfies `pred`, for a pred that is false then true
// along the order (true for members in lex order when all scores are equal).
template <typename Pred>
size_t FirstRankWhere(const OrderIndex& index, Pred pred) {
  size_t low = 0;
  size_t high = index.size();
  while (low < high) {
    const size_t mid = low + (high - low) / 2;
    if (pred(index.At(mid).second)) {
      high = mid;
    } else {
      low = mid + 1;
    }
  }
  return low;
}

// Ranks [first, last) of the members in the lex range: two binary searches over ranks.
std::pair<size_t, size_t> LexSpan(const OrderIndex& index, const LexRange& range) {
  const int c = CompareBounds(range.min, range.max);
  if (c > 0 || (c == 0 && (range.min.exclusive || range.max.exclusive))) {
    return {0, 0};
  }
  const size_t first =
      FirstRankWhere(index, [&](std::string_view m) { return LexGteMin(m, range); });
  const size_t last =
      FirstRankWhere(index, [&](std::string_view m) { return !LexLteMax(m, range); });
  return first < last ? std::make_pair(first, last) : std::make_pair(size_t{0}, size_t{0});
}

// Valkey's rank sanitising (ZRANGE, ZREMRANGEBYRANK): ranks [first, last) or empty.
std::pair<size_t, size_t> RankSpan(int64_t start, int64_t end, size_t size) {
  const int64_t length = static_cast<int64_t>(size);
  if (start < 0) {
    start += length;
  }
  if (end < 0) {
    end += length;
  }
  if (start < 0) {
    start = 0;
  }
  if (start > end || start >= length) {
    return {0, 0};
  }
  if (end >= length) {
    end = length - 1;
  }
  return {static_cast<size_t>(start), static_cast<size_t>(end) + 1};
}

// Members of ranks [first, last), walked forward or backward.
Items ItemsOfSpan(const OrderIndex& index, std::pair<size_t, size_t> span, bool reverse) {
  Items items = index.Range(span.first, span.second - span.first);
  if (reverse) {
    std::reverse(items.begin(), items.end());
  }
  return items;
}

// Applies LIMIT offset count to a span, as Valkey walks it (from the far end when reversed). A
// negative offset selects nothing (Redis 7 and Valkey's listpack encoding); a negative count
// means no limit.
Items LimitedItems(const OrderIndex& index, std::pair<size_t, size_t> span, bool reverse,
                   int64_t offset, int64_t limit) {
  const size_t available = span.second - span.first;
  if (offset < 0 || static_cast<uint64_t>(offset) >= available) {
    return {};
  }
  size_t count = available - static_cast<size_t>(offset);
  if (limit >= 0 && static_cast<uint64_t>(limit) < count) {
    count = static_cast<size_t>(limit);
  }
  const size_t first = reverse ? span.second - static_cast<size_t>(offset) - count
                               : span.first + static_cast<size_t>(offset);
  return ItemsOfSpan(index, {first, first + count}, reverse);
}

// Replies members (and scores): flat in RESP2, [member, score] pairs in RESP3.
void ReplyItems(ReplyBuilder& reply, const Items& items, bool with_scores) {
  const bool nested = with_scores && reply.protocol() == Protocol::kResp3;
  reply.Array(with_scores && !nested ? items.size() * 2 : items.size());
  for (const auto& [score, member] : items) {
    if (nested) {
      reply.Array(2);
    }
    reply.Bulk(member);
    if (with_scores) {
      reply.Double(score);
    }
  }
}

// ---- writing ---------------------------------------------------------------------------------

// One ZADD (score assignment) or ZINCRBY (increment) of one member: one op.
Result<void> WriteMember(CommandContext& ctx, std::string_view key, const std::string& member,
                         double value, bool increment) {
  return ctx.Write(key, [&](crdt::Key& k, const crdt::Writer& w, crdt::DotContext& shard) {
    return increment ? k.ZIncrBy(member, value, w, shard) : k.ZAdd(member, value, w, shard);
  });
}

// Removes members of a zset known to exist: one observed-remove op.
void RemoveMembers(CommandContext& ctx, std::string_view key, std::vector<std::string> members) {
  if (members.empty()) {
    return;
  }
  (void)ctx.Write(key, [&](crdt::Key& k, const crdt::Writer& w, crdt::DotContext& shard) {
    return k.ZRem(members, w, shard);
  });
}

std::vector<std::string> MembersOf(const Items& items) {
  std::vector<std::string> members;
  members.reserve(items.size());
  for (const auto& item : items) {
    members.push_back(item.second);
  }
  return members;
}

// *STORE: replaces `destination` (of any type, dropping its TTL) with `items`. An empty result
// deletes it, as Valkey does.
void StoreItems(CommandContext& ctx, std::string_view destination, const Items& items) {
  ctx.keyspace().Delete(ctx.db(), destination, ctx.now_ms);
  if (items.empty()) {
    return;
  }
  std::vector<std::pair<std::string, double>> pairs;
  pairs.reserve(items.size());
  for (const auto& [score, member] : items) {
    pairs.emplace_back(member, score);
  }
  (void)ctx.Write(destination, [&](crdt::Key& k, const crdt::Writer& w, crdt::DotContext& shard) {
    return k.ZAddMany(pairs, w, shard);  // one op
  });
}

// ---- ZADD, ZINCRBY -------------------------------------------------------------------------

struct ZAddOptions {
  bool nx = false;
  bool xx = false;
  bool gt = false;
  bool lt = false;
  bool ch = false;
  bool incr = false;
};

struct ZAddOutcome {
  int64_t added = 0;
  int64_t updated = 0;
  int64_t processed = 0;
  double score = 0;  // the last processed member's score (the INCR reply)
  std::optional<std::string> error;
};

// Valkey's zsetAdd for each pair in turn (a later pair sees the earlier ones). Score writes
// (no INCR) go out as one op for the whole command; an INCR (one pair) is written at once.
ZAddOutcome OpZAdd(CommandContext& ctx, std::string_view key, const ZAddOptions& options,
                   const std::vector<std::pair<double, std::string>>& pairs) {
  ZAddOutcome out;
  std::vector<std::pair<std::string, double>> writes;
  absl::flat_hash_map<std::string_view, double> batched;  // written by this command, so far
  // The KeyRef reads a compact zset's scores without materialising it.
  const Result<KeyRef> before =
      options.incr ? Result<KeyRef>(nullptr) : ctx.Peek(key, crdt::ObjectType::kZSet);
  for (const auto& [score, member] : pairs) {
    const Result<KeyRef> lookup = options.incr ? ctx.Peek(key, crdt::ObjectType::kZSet) : before;
    auto pending = batched.find(member);
    const std::optional<double> current =
        pending != batched.end()            ? std::optional<double>(pending->second)
        : lookup.ok() && *lookup != nullptr ? (*lookup)->ZScore(member)
                                            : std::nullopt;
    double next = score;
    if (current.has_value()) {
      if (options.nx) {
        continue;
      }
      next = options.incr ? *current + score : score;
      if (std::isnan(next)) {
        out.error = std::string(kNanScore);
        break;
      }
      if ((options.lt && next >= *current) || (options.gt && next <= *current)) {
        continue;
      }
      ++out.processed;
      out.score = next;
      if (next == *current) {
        continue;
      }
      ++out.updated;
    } else {
      if (options.xx) {
        continue;
      }
      ++out.processed;
      ++out.added;
      out.score = next;
    }
    if (!options.incr) {
      writes.emplace_back(member, next);
      batched[member] = next;
      continue;
    }
    // INCR ships an increment, so concurrent increments from other regions add up. A zero
    // increment of a new member creates nothing in the crdt, so it is written as a score.
    const bool increment = options.incr && score != 0;
    if (auto written = WriteMember(ctx, key, member, increment ? score : next, increment);
        !written.ok()) {
      out.error = ErrorReply(written.error());
      break;
    }
    // The crdt drops a member whose score is only increments that sum to 0 (no assigned base):
    // a second op assigns the score so the member stays, as in Valkey.
    const ZSetLookup after = increment ? LookupZSet(ctx, key) : ZSetLookup{};
    if (increment && (after.zset == nullptr || !after.zset->Score(member).has_value())) {
      (void)WriteMember(ctx, key, member, next, /*increment=*/false);
    }
  }
  if (!writes.empty() && !out.error.has_value()) {
    // Key::ZAddMany, in place on a compact zset.
    auto done = ctx.keyspace().ZAddMany(ctx.db(), key, writes, ctx.now_ms);
    if (!done.ok()) {
      out.error = ErrorReply(done.error());
    }
  }
  return out;
}

// Parses the flags; returns the index of the first score, or 0 after replying an error.
size_t ParseZAddOptions(CommandContext& ctx, ArgList args, ZAddOptions* options) {
  size_t i = 2;
  for (; i < args.size(); ++i) {
    const std::string_view a = args[i];
    bool* flag = EqualsIgnoreCase(a, "nx")     ? &options->nx
                 : EqualsIgnoreCase(a, "xx")   ? &options->xx
                 : EqualsIgnoreCase(a, "ch")   ? &options->ch
                 : EqualsIgnoreCase(a, "incr") ? &options->incr
                 : EqualsIgnoreCase(a, "gt")   ? &options->gt
                 : EqualsIgnoreCase(a, "lt")   ? &options->lt
                                               : nullptr;
    if (flag == nullptr) {
      break;
    }
    *flag = true;
  }
  const size_t elements = args.size() - i;
  if (elements == 0 || elements % 2 != 0) {
    ctx.reply.Error(errors::kSyntax);
    return 0;
  }
  if (options->nx && options->xx) {
    ctx.reply.Error("ERR XX and NX options at the same time are not compatible");
    return 0;
  }
  if ((options->gt && options->nx) || (options->lt && options->nx) ||
      (options->gt && options->lt)) {
    ctx.reply.Error("ERR GT, LT, and/or NX options at the same time are not compatible");
    return 0;
  }
  if (options->incr && elements > 2) {
    ctx.reply.Error("ERR INCR option supports a single increment-element pair");
    return 0;
  }
  return i;
}

void RunZAdd(CommandContext& ctx, ArgList args, const ZAddOptions& options, size_t first) {
  std::vector<std::pair<double, std::string>> pairs;
  for (size_t i = first; i + 1 < args.size(); i += 2) {
    double score = 0;
    if (!ParseScore(args[i], &score)) {
      ctx.reply.Error(errors::kNotFloat);
      return;
    }
    pairs.emplace_back(score, std::string(args[i + 1]));
  }
  if (!ctx.Peek(args[1], crdt::ObjectType::kZSet).ok()) {  // a type check: nothing materialised
    ctx.reply.Error(errors::kWrongType);
    return;
  }
  const ZAddOutcome out = OpZAdd(ctx, args[1], options, pairs);
  if (out.error.has_value()) {
    ctx.reply.Error(*out.error);
  } else if (options.incr) {
    if (out.processed > 0) {
      ctx.reply.Double(out.score);
    } else {
      ctx.reply.Null();
    }
  } else {
    ctx.reply.Integer(options.ch ? out.added + out.updated : out.added);
  }
}

}  // namespace

void ZAddScores(CommandContext& ctx, std::string_view key, bool nx, bool xx, bool ch,
                const std::vector<std::pair<double, std::string>>& pairs) {
  if (!ctx.Peek(key, crdt::ObjectType::kZSet).ok()) {
    ctx.reply.Error(errors::kWrongType);
    return;
  }
  const ZAddOutcome out = OpZAdd(ctx, key, ZAddOptions{.nx = nx, .xx = xx, .ch = ch}, pairs);
  if (out.error.has_value()) {
    ctx.reply.Error(*out.error);
  } else {
    ctx.reply.Integer(ch ? out.added + out.updated : out.added);
  }
}

void ZStoreScores(CommandContext& ctx, std::string_view destination,
                  const std::vector<std::pair<double, std::string>>& items) {
  StoreItems(ctx, destination, items);
}

namespace {

void CmdZAdd(CommandContext& ctx, ArgList args) {
  ZAddOptions options;
  const size_t first = ParseZAddOptions(ctx, args, &options);
  if (first != 0) {
    RunZAdd(ctx, args, options, first);
  }
}

void CmdZIncrBy(CommandContext& ctx, ArgList args) {
  ZAddOptions options;
  options.incr = true;
  RunZAdd(ctx, args, options, 2);
}

// ---- point reads -----------------------------------------------------------------------------

// A member's score, or null when the key or the member is missing.
// The point reads take the KeyRef, which answers them without materialising a compact zset.
void ReplyScore(CommandContext& ctx, const KeyRef& key, std::string_view member) {
  const std::optional<double> score = key != nullptr ? key->ZScore(member) : std::nullopt;
  if (score.has_value()) {
    ctx.reply.Double(*score);
  } else {
    ctx.reply.Null();
  }
}

void CmdZScore(CommandContext& ctx, ArgList args) {
  const Result<KeyRef> found = ctx.Read(args[1], crdt::ObjectType::kZSet);
  if (!found.ok()) {
    ctx.reply.Error(errors::kWrongType);
    return;
  }
  ReplyScore(ctx, *found, args[2]);
}

void CmdZMScore(CommandContext& ctx, ArgList args) {
  const Result<KeyRef> found = ctx.Read(args[1], crdt::ObjectType::kZSet);
  if (!found.ok()) {
    ctx.reply.Error(errors::kWrongType);
    return;
  }
  ctx.reply.Array(args.size() - 2);
  for (size_t i = 2; i < args.size(); ++i) {
    ReplyScore(ctx, *found, args[i]);
  }
}

void CmdZCard(CommandContext& ctx, ArgList args) {
  const Result<KeyRef> found = ctx.Read(args[1], crdt::ObjectType::kZSet);
  if (!found.ok()) {
    ctx.reply.Error(errors::kWrongType);
    return;
  }
  ctx.reply.Integer(*found != nullptr ? static_cast<int64_t>((*found)->ZSize()) : 0);
}

void RankCommand(CommandContext& ctx, ArgList args, bool reverse) {
  if (args.size() > 4) {
    ctx.reply.Error(errors::WrongArity(ctx.command.full_name));
    return;
  }
  const bool with_score = args.size() == 4;
  if (with_score && !EqualsIgnoreCase(args[3], "withscore")) {
    ctx.reply.Error(errors::kSyntax);
    return;
  }
  const ZSetLookup lookup = LookupZSet(ctx, args[1], Access::kRead);
  if (lookup.wrong_type) {
    ctx.reply.Error(errors::kWrongType);
    return;
  }
  const std::string member(args[2]);
  const std::optional<size_t> rank =
      lookup.zset != nullptr ? lookup.zset->Rank(member) : std::nullopt;
  if (!rank.has_value()) {
    with_score ? ctx.reply.NullArray() : ctx.reply.Null();
    return;
  }
  const size_t size = lookup.zset->Size();
  if (with_score) {
    ctx.reply.Array(2);
  }
  ctx.reply.Integer(static_cast<int64_t>(reverse ? size - 1 - *rank : *rank));
  if (with_score) {
    ctx.reply.Double(*lookup.zset->Score(member));
  }
}

void CmdZRank(CommandContext& ctx, ArgList args) { RankCommand(ctx, args, false); }
void CmdZRevRank(CommandContext& ctx, ArgList args) { RankCommand(ctx, args, true); }

void CmdZCount(CommandContext& ctx, ArgList args) {
  ScoreRange range;
  if (!ParseScoreRange(args[2], args[3], &range)) {
    ctx.reply.Error(kRangeNotFloat);
    return;
  }
  const ZSetLookup lookup = LookupZSet(ctx, args[1], Access::kRead);
  if (lookup.wrong_type) {
    ctx.reply.Error(errors::kWrongType);
    return;
  }
  if (lookup.zset == nullptr) {
    ctx.reply.Integer(0);
    return;
  }
  const auto span = ScoreSpan(lookup.zset->index(), range);
  ctx.reply.Integer(static_cast<int64_t>(span.second - span.first));
}

void CmdZLexCount(CommandContext& ctx, ArgList args) {
  LexRange range;
  if (!ParseLexRange(args[2], args[3], &range)) {
    ctx.reply.Error(kRangeNotLex);
    return;
  }
  const ZSetLookup lookup = LookupZSet(ctx, args[1], Access::kRead);
  if (lookup.wrong_type) {
    ctx.reply.Error(errors::kWrongType);
    return;
  }
  if (lookup.zset == nullptr) {
    ctx.reply.Integer(0);
    return;
  }
  const auto span = LexSpan(lookup.zset->index(), range);
  ctx.reply.Integer(static_cast<int64_t>(span.second - span.first));
}

// ---- ZRANGE and its variants -----------------------------------------------------------------

enum class RangeType { kAuto, kRank, kScore, kLex };

struct RangeRequest {
  RangeType type = RangeType::kAuto;
  std::optional<bool> reverse;  // unset: ZRANGE's default (forward) unless REV is given
  bool with_scores = false;
  int64_t offset = 0;
  int64_t limit = -1;
  int64_t start = 0;
  int64_t end = 0;
  ScoreRange score;
  LexRange lex;
};

// Parses the options after <src> <min> <max> (zrangeGenericCommand step 1). Returns false after
// replying an error.
bool ParseRangeOptions(CommandContext& ctx, ArgList args, size_t key_index, bool store,
                       RangeRequest* req) {
  for (size_t j = key_index + 3; j < args.size(); ++j) {
    const size_t left = args.size() - j - 1;
    if (!store && EqualsIgnoreCase(args[j], "withscores")) {
      req->with_scores = true;
    } else if (EqualsIgnoreCase(args[j], "limit") && left >= 2) {
      if (!ParseInt64(args[j + 1], &req->offset) || !ParseInt64(args[j + 2], &req->limit)) {
        ctx.reply.Error(errors::kNotInteger);
        return false;
      }
      j += 2;
    } else if (!req->reverse.has_value() && EqualsIgnoreCase(args[j], "rev")) {
      req->reverse = true;
    } else if (req->type == RangeType::kAuto && EqualsIgnoreCase(args[j], "bylex")) {
      req->type = RangeType::kLex;
    } else if (req->type == RangeType::kAuto && EqualsIgnoreCase(args[j], "byscore")) {
      req->type = RangeType::kScore;
    } else {
      ctx.reply.Error(errors::kSyntax);
      return false;
    }
  }
  return true;
}

// Checks option conflicts and parses the range itself (steps 1b and 2).
bool ParseRangeBounds(CommandContext& ctx, ArgList args, size_t key_index, RangeRequest* req) {
  if (req->type == RangeType::kAuto) {
    req->type = RangeType::kRank;
  }
  if (req->limit != -1 && req->type == RangeType::kRank) {
    ctx.reply.Error(
        "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX");
    return false;
  }
  if (req->with_scores && req->type == RangeType::kLex) {
    ctx.reply.Error("ERR syntax error, WITHSCORES not supported in combination with BYLEX");
    return false;
  }
  size_t min_index = key_index + 1;
  size_t max_index = key_index + 2;
  if (*req->reverse && req->type != RangeType::kRank) {
    std::swap(min_index, max_index);  // the REV forms take [max, min]
  }
  switch (req->type) {
    case RangeType::kScore:
      if (!ParseScoreRange(args[min_index], args[max_index], &req->score)) {
        ctx.reply.Error(kRangeNotFloat);
        return false;
      }
      return true;
    case RangeType::kLex:
      if (!ParseLexRange(args[min_index], args[max_index], &req->lex)) {
        ctx.reply.Error(kRangeNotLex);
        return false;
      }
      return true;
    default:
      if (!ParseInt64(args[min_index], &req->start) || !ParseInt64(args[max_index], &req->end)) {
        ctx.reply.Error(errors::kNotInteger);
        return false;
      }
      return true;
  }
}

Items OpRange(const SortedSet& zset, const RangeRequest& req) {
  const OrderIndex& index = zset.index();
  const bool reverse = *req.reverse;
  switch (req.type) {
    case RangeType::kScore:
      if (req.offset > 0 && static_cast<uint64_t>(req.offset) >= index.size()) {
        return {};
      }
      return LimitedItems(index, ScoreSpan(index, req.score), reverse, req.offset, req.limit);
    case RangeType::kLex:
      return LimitedItems(index, LexSpan(index, req.lex), reverse, req.offset, req.limit);
    default: {
      const auto span = RankSpan(req.start, req.end, index.size());
      if (span.first == span.second) {
        return {};
      }
      // A reversed rank range counts from the end: ranks [size-end-1, size-start-1].
      const size_t size = index.size();
      const auto forward = reverse ? std::make_pair(size - span.second, size - span.first) : span;
      return ItemsOfSpan(index, forward, reverse);
    }
  }
}

// The shared body of ZRANGE, ZRANGESTORE and the deprecated forms. `type` and `reverse` are
// fixed by the older commands and open (kAuto, unset) for ZRANGE/ZRANGESTORE.
void RangeCommand(CommandContext& ctx, ArgList args, size_t key_index, bool store, RangeType type,
                  std::optional<bool> reverse) {
  RangeRequest req;
  req.type = type;
  req.reverse = reverse;
  if (!ParseRangeOptions(ctx, args, key_index, store, &req)) {
    return;
  }
  if (!req.reverse.has_value()) {
    req.reverse = false;
  }
  if (!ParseRangeBounds(ctx, args, key_index, &req)) {
    return;
  }
  const ZSetLookup lookup = LookupZSet(ctx, args[key_index], Access::kRead);
  if (lookup.wrong_type) {
    ctx.reply.Error(errors::kWrongType);
    return;
  }
  const Items items = lookup.zset != nullptr ? OpRange(*lookup.zset, req) : Items{};
  if (store) {
    StoreItems(ctx, args[1], items);
    ctx.reply.Integer(static_cast<int64_t>(items.size()));
  } else {
    ReplyItems(ctx.reply, items, req.with_scores);
  }
}

void CmdZRange(CommandContext& ctx, ArgList args) {
  RangeCommand(ctx, args, 1, false, RangeType::kAuto, std::nullopt);
}
void CmdZRangeStore(CommandContext& ctx, ArgList args) {
  RangeCommand(ctx, args, 2, true, RangeType::kAuto, std::nullopt);
}
void CmdZRevRange(CommandContext& ctx, ArgList args) {
  RangeCommand(ctx, args, 1, false, RangeType::kRank, true);
}
void CmdZRangeByScore(CommandContext& ctx, ArgList args) {
  RangeCommand(ctx, args, 1, false, RangeType::kScore, false);
}
void CmdZRevRangeByScore(CommandContext& ctx, ArgList args) {
  RangeCommand(ctx, args, 1, false, RangeType::kScore, true);
}
void CmdZRangeByLex(CommandContext& ctx, ArgList args) {
  RangeCommand(ctx, args, 1, false, RangeType::kLex, false);
}
void CmdZRevRangeByLex(CommandContext& ctx, ArgList args) {
  RangeCommand(ctx, args, 1, false, RangeType::kLex, true);
}

// ---- removals --------------------------------------------------------------------------------

void CmdZRem(CommandContext& ctx, ArgList args) {
  const ZSetLookup lookup = LookupZSet(ctx, args[1]);
  if (lookup.wrong_type) {
    ctx.reply.Error(errors::kWrongType);
    return;
  }
  if (lookup.zset == nullptr) {
    ctx.reply.Integer(0);
    return;
  }
  absl::flat_hash_set<std::string> present;
  for (size_t i = 2; i < args.size(); ++i) {
    std::string member(args[i]);
    if (lookup.zset->Score(member).has_value()) {
      present.insert(std::move(member));
    }
  }
  const int64_t removed = static_cast<int64_t>(present.size());
  RemoveMembers(ctx, args[1], std::vector<std::string>(present.begin(), present.end()));
  ctx.reply.Integer(removed);
}

// ZREMRANGEBYRANK/SCORE/LEX: parse, look up, remove the span in one op, reply the count.
void RemoveRangeCommand(CommandContext& ctx, ArgList args, RangeType type) {
  int64_t start = 0, end = 0;
  ScoreRange score;
  LexRange lex;
  if (type == RangeType::kRank && (!ParseInt64(args[2], &start) || !ParseInt64(args[3], &end))) {
    ctx.reply.Error(errors::kNotInteger);
    return;
  }
  if (type == RangeType::kScore && !ParseScoreRange(args[2], args[3], &score)) {
    ctx.reply.Error(kRangeNotFloat);
    return;
  }
  if (type == RangeType::kLex && !ParseLexRange(args[2], args[3], &lex)) {
    ctx.reply.Error(kRangeNotLex);
    return;
  }
  const ZSetLookup lookup = LookupZSet(ctx, args[1]);
  if (lookup.wrong_type) {
    ctx.reply.Error(errors::kWrongType);
    return;
  }
  if (lookup.zset == nullptr) {
    ctx.reply.Integer(0);
    return;
  }
  const OrderIndex& index = lookup.zset->index();
  const auto span = type == RangeType::kRank    ? RankSpan(start, end, index.size())
                    : type == RangeType::kScore ? ScoreSpan(index, score)
                                                : LexSpan(index, lex);
  const Items items = ItemsOfSpan(index, span, false);
  RemoveMembers(ctx, args[1], MembersOf(items));
  ctx.reply.Integer(static_cast<int64_t>(items.size()));
}

void CmdZRemRangeByRank(CommandContext& ctx, ArgList args) {
  RemoveRangeCommand(ctx, args, RangeType::kRank);
}
void CmdZRemRangeByScore(CommandContext& ctx, ArgList args) {
  RemoveRangeCommand(ctx, args, RangeType::kScore);
}
void CmdZRemRangeByLex(CommandContext& ctx, ArgList args) {
  RemoveRangeCommand(ctx, args, RangeType::kLex);
}

void PopCommand(CommandContext& ctx, ArgList args, bool max) {
  if (args.size() > 3) {
    ctx.reply.Error(errors::kSyntax);
    return;
  }
  int64_t count = -1;  // -1: no count given (a flat single pair in every protocol)
  if (args.size() == 3 && (!ParseInt64(args[2], &count) || count < 0)) {
    ctx.reply.Error(kMustBePositive);
    return;
  }
  const ZSetLookup lookup = LookupZSet(ctx, args[1]);
  if (lookup.wrong_type) {
    ctx.reply.Error(errors::kWrongType);
    return;
  }
  if (lookup.zset == nullptr || count == 0) {
    ctx.reply.Array(0);
    return;
  }
  const size_t size = lookup.zset->Size();
  const size_t take = count < 0 ? 1 : std::min<uint64_t>(static_cast<uint64_t>(count), size);
  const auto span = max ? std::make_pair(size - take, size) : std::make_pair(size_t{0}, take);
  const Items items = ItemsOfSpan(lookup.zset->index(), span, max);
  const bool nested = count >= 0 && ctx.reply.protocol() == Protocol::kResp3;
  ctx.reply.Array(nested ? items.size() : items.size() * 2);
  for (const auto& [score, member] : items) {
    if (nested) {
      ctx.reply.Array(2);
    }
    ctx.reply.Bulk(member);
    ctx.reply.Double(score);
  }
  RemoveMembers(ctx, args[1], MembersOf(items));
}

void CmdZPopMin(CommandContext& ctx, ArgList args) { PopCommand(ctx, args, false); }
void CmdZPopMax(CommandContext& ctx, ArgList args) { PopCommand(ctx, args, true); }

// ---- ZMPOP, BZPOPMIN, BZPOPMAX, BZMPOP --------------------------------------------------------

// A pop from the first non-empty sorted set of several keys (Valkey's genericZpopCommand).
struct MultiPop {
  std::vector<std::string> keys;
  bool max = false;
  int64_t count = -1;   // -1: BZPOPMIN/BZPOPMAX, one member replied flat as [key, member, score]
  bool nested = false;  // ZMPOP/BZMPOP: [key, [[member, score], ...]]
};

// Pops from the first key holding a non-empty sorted set and replies; a key of another type met
// first replies WRONGTYPE. False (nothing written) when every key is missing or empty.
bool TryMultiPop(CommandContext& ctx, const MultiPop& pop) {
  for (const std::string& key : pop.keys) {
    const ZSetLookup lookup = LookupZSet(ctx, key);
    if (lookup.wrong_type) {
      ctx.reply.Error(errors::kWrongType);
      return true;
    }
    if (lookup.zset == nullptr || lookup.zset->Size() == 0) {
      continue;
    }
    const size_t size = lookup.zset->Size();
    const size_t take = pop.count < 0 ? 1 : std::min<uint64_t>(pop.count, size);
    const auto span = pop.max ? std::make_pair(size - take, size) : std::make_pair(size_t{0}, take);
    const Items items = ItemsOfSpan(lookup.zset->index(), span, pop.max);
    ctx.reply.Array(pop.nested ? 2 : 3);
    ctx.reply.Bulk(key);
    if (pop.nested) {
      ctx.reply.Array(items.size());
    }
    for (const auto& [score, member] : items) {
      if (pop.nested) {
        ctx.reply.Array(2);
      }
      ctx.reply.Bulk(member);
      ctx.reply.Double(score);
    }
    RemoveMembers(ctx, key, MembersOf(items));
    return true;
  }
  return false;
}

// Whether some key holds a non-empty sorted set: a woken client runs its pop only then, as
// Valkey wakes a client blocked on a zset only when the ready key holds one.
bool AnyZSetReady(CommandContext& ctx, const std::vector<std::string>& keys) {
  for (const std::string& key : keys) {
    const ZSetLookup lookup = LookupZSet(ctx, key);
    if (lookup.zset != nullptr && lookup.zset->Size() > 0) {
      return true;
    }
  }
  return false;
}

// The blocking forms: pop now, or reply null where blocking is denied (MULTI, scripts), or block
// until a key gets members (server/blocking.h) or the deadline passes (a null array).
void BlockingPop(CommandContext& ctx, ArgList args, MultiPop pop, std::string_view timeout) {
  BlockRequest request{.keys = pop.keys};
  request.serve = [pop](CommandContext& woken) {
    return AnyZSetReady(woken, pop.keys) && TryMultiPop(woken, pop);
  };
  BlockOrServe(
      ctx, args, timeout, [&pop](CommandContext& now) { return TryMultiPop(now, pop); },
      std::move(request));
}

// BZPOPMIN/BZPOPMAX key [key ...] timeout
void BlockingPopOne(CommandContext& ctx, ArgList args, bool max) {
  MultiPop pop{.keys = {args.begin() + 1, args.end() - 1}, .max = max};
  BlockingPop(ctx, args, std::move(pop), args.back());
}
void CmdBZPopMin(CommandContext& ctx, ArgList args) { BlockingPopOne(ctx, args, false); }
void CmdBZPopMax(CommandContext& ctx, ArgList args) { BlockingPopOne(ctx, args, true); }

// numkeys key [key ...] MIN|MAX [COUNT count] from args[numkeys_index], with Valkey's errors in
// its order (zmpopGenericCommand).
Result<MultiPop> ParseMultiPop(ArgList args, size_t numkeys_index) {
  int64_t numkeys = 0;
  if (!ParseInt64(args[numkeys_index], &numkeys) || numkeys < 1) {
    return Unexpected(std::string("ERR numkeys should be greater than 0"));
  }
  if (static_cast<uint64_t>(numkeys) >= args.size() - numkeys_index - 1) {
    return Unexpected(ErrorCode::kSyntax);  // no room for MIN|MAX after the keys
  }
  const size_t where = numkeys_index + static_cast<size_t>(numkeys) + 1;
  MultiPop pop{.keys = {args.begin() + numkeys_index + 1, args.begin() + where}, .nested = true};
  if (EqualsIgnoreCase(args[where], "max")) {
    pop.max = true;
  } else if (!EqualsIgnoreCase(args[where], "min")) {
    return Unexpected(ErrorCode::kSyntax);
  }
  for (size_t j = where + 1; j < args.size(); ++j) {
    if (pop.count != -1 || !EqualsIgnoreCase(args[j], "count") || j + 1 == args.size()) {
      return Unexpected(ErrorCode::kSyntax);
    }
    if (!ParseInt64(args[++j], &pop.count) || pop.count < 1) {
      return Unexpected(std::string("ERR count should be greater than 0"));
    }
  }
  pop.count = std::max<int64_t>(pop.count, 1);
  return pop;
}

// ZMPOP numkeys key [key ...] MIN|MAX [COUNT count]
void CmdZMPop(CommandContext& ctx, ArgList args) {
  Result<MultiPop> pop = ParseMultiPop(args, 1);
  if (!pop.ok()) {
    ctx.reply.Error(pop.error());
    return;
  }
  if (!TryMultiPop(ctx, *pop)) {
    ctx.reply.NullArray();
  }
}

// BZMPOP timeout numkeys key [key ...] MIN|MAX [COUNT count]
void CmdBZMPop(CommandContext& ctx, ArgList args) {
  Result<MultiPop> pop = ParseMultiPop(args, 2);
  if (!pop.ok()) {
    ctx.reply.Error(pop.error());
    return;
  }
  BlockingPop(ctx, args, std::move(*pop), args[1]);
}

// ---- ZUNION, ZINTER, ZDIFF and their STORE forms, ZINTERCARD ---------------------------------

enum class SetOp { kUnion, kInter, kDiff };
enum class Aggregate { kSum, kMin, kMax };

// One input: a sorted set, a plain set (every score 1), or a missing key (empty).
struct Source {
  KeyRef key;
  bool is_set = false;
  double weight = 1.0;
  size_t size() const {
    if (key == nullptr) {
      return 0;
    }
    return is_set ? key->set().Size() : key->zset().Size();
  }
  std::optional<double> Find(const std::string& member) const {
    if (key == nullptr) {
      return std::nullopt;
    }
    if (is_set) {
      return key->set().Contains(member) ? std::optional<double>(1.0) : std::nullopt;
    }
    return key->zset().Score(member);
  }
  Items Elements() const {
    if (key == nullptr) {
      return {};
    }
    if (!is_set) {
      return key->zset().index().Range(0, key->zset().Size());
    }
    Items items;
    for (std::string& member : key->set().Members()) {
      items.emplace_back(1.0, std::move(member));
    }
    return items;
  }
};

struct SetOpRequest {
  SetOp op = SetOp::kUnion;
  bool store = false;
  bool cardinality_only = false;
  std::vector<Source> sources;
  Aggregate aggregate = Aggregate::kSum;
  bool with_scores = false;
  int64_t limit = 0;  // ZINTERCARD: 0 is no limit
};

void AggregateInto(double* target, double value, Aggregate aggregate) {
  if (aggregate == Aggregate::kSum) {
    *target = *target + value;
    if (std::isnan(*target)) {
      *target = 0.0;  // +inf and -inf met
    }
  } else if (aggregate == Aggregate::kMin) {
    *target = value < *target ? value : *target;
  } else {
    *target = value > *target ? value : *target;
  }
}

// Looks up numkeys and the keys (type errors first, as Valkey). False after replying an error.
bool LoadSources(CommandContext& ctx, ArgList args, size_t numkeys_index, SetOpRequest* req,
                 size_t* next) {
  int64_t numkeys = 0;
  if (!ParseInt64(args[numkeys_index], &numkeys)) {
    ctx.reply.Error(errors::kNotInteger);
    return false;
  }
  if (numkeys < 1) {
    ctx.reply.Error("ERR at least 1 input key is needed for '" + ctx.command.full_name +
                    "' command");
    return false;
  }
  if (static_cast<uint64_t>(numkeys) > args.size() - (numkeys_index + 1)) {
    ctx.reply.Error(errors::kSyntax);
    return false;
  }
  size_t j = numkeys_index + 1;
  for (int64_t i = 0; i < numkeys; ++i, ++j) {
    Source source;
    KeyRef found = *ctx.Read(args[j]);
    const crdt::ObjectType type =
        found != nullptr ? found->TypeAt(ctx.now_ms) : crdt::ObjectType::kNone;
    if (type != crdt::ObjectType::kNone && type != crdt::ObjectType::kZSet &&
        type != crdt::ObjectType::kSet) {
      ctx.reply.Error(errors::kWrongType);
      return false;
    }
    if (type != crdt::ObjectType::kNone) {
      source.key = found;
      source.is_set = type == crdt::ObjectType::kSet;
    }
    req->sources.push_back(source);
  }
  *next = j;
  return true;
}

// WEIGHTS, AGGREGATE, WITHSCORES and LIMIT, each where Valkey accepts it.
bool ParseSetOpOptions(CommandContext& ctx, ArgList args, size_t j, SetOpRequest* req) {
  const size_t setnum = req->sources.size();
  const bool scored = req->op != SetOp::kDiff && !req->cardinality_only;
  while (j < args.size()) {
    const size_t remaining = args.size() - j;
    if (scored && remaining >= setnum + 1 && EqualsIgnoreCase(args[j], "weights")) {
      ++j;
      for (size_t i = 0; i < setnum; ++i, ++j) {
        if (!ParseScore(args[j], &req->sources[i].weight)) {
          ctx.reply.Error("ERR weight value is not a float");
          return false;
        }
      }
    } else if (scored && remaining >= 2 && EqualsIgnoreCase(args[j], "aggregate")) {
      const std::string_view how = args[j + 1];
      if (EqualsIgnoreCase(how, "sum")) {
        req->aggregate = Aggregate::kSum;
      } else if (EqualsIgnoreCase(how, "min")) {
        req->aggregate = Aggregate::kMin;
      } else if (EqualsIgnoreCase(how, "max")) {
        req->aggregate = Aggregate::kMax;
      } else {
        ctx.reply.Error(errors::kSyntax);
        return false;
      }
      j += 2;
    } else if (!req->store && !req->cardinality_only && EqualsIgnoreCase(args[j], "withscores")) {
      req->with_scores = true;
      ++j;
    } else if (req->cardinality_only && remaining >= 2 && EqualsIgnoreCase(args[j], "limit")) {
      if (!ParseInt64(args[j + 1], &req->limit) || req->limit < 0) {
        ctx.reply.Error("ERR LIMIT can't be negative");
        return false;
      }
      j += 2;
    } else {
      ctx.reply.Error(errors::kSyntax);
      return false;
    }
  }
  return true;
}

Items OpUnion(const std::vector<Source>& sources, Aggregate aggregate) {
  absl::flat_hash_map<std::string, double> scores;
  for (const Source& source : sources) {
    for (auto& [score, member] : source.Elements()) {
      double weighted = source.weight * score;
      if (std::isnan(weighted)) {
        weighted = 0;  // inf * 0
      }
      auto [it, inserted] = scores.try_emplace(std::move(member), weighted);
      if (!inserted) {
        AggregateInto(&it->second, weighted, aggregate);
      }
    }
  }
  Items items;
  items.reserve(scores.size());
  for (auto& [member, score] : scores) {
    items.emplace_back(score, member);
  }
  return items;
}

// Members of the smallest input found in every other input; with `limit` (ZINTERCARD) stops
// counting there. Returns the members with their aggregated scores.
Items OpInter(const std::vector<Source>& sources, Aggregate aggregate, uint64_t limit) {
  Items items;
  if (sources.empty() || sources[0].size() == 0) {
    return items;
  }
  for (auto& [score, member] : sources[0].Elements()) {
    double total = sources[0].weight * score;
    if (std::isnan(total)) {
      total = 0;
    }
    size_t j = 1;
    for (; j < sources.size(); ++j) {
      std::optional<double> value =
          sources[j].key == sources[0].key ? std::optional<double>(score) : sources[j].Find(member);
      if (!value.has_value()) {
        break;
      }
      AggregateInto(&total, *value * sources[j].weight, aggregate);
    }
    if (j == sources.size()) {
      items.emplace_back(total, std::move(member));
      if (limit != 0 && items.size() >= limit) {
        break;
      }
    }
  }
  return items;
}

Items OpDiff(const std::vector<Source>& sources) {
  Items items;
  for (size_t j = 1; j < sources.size(); ++j) {
    if (sources[j].key != nullptr && sources[j].key == sources[0].key) {
      return items;  // the first input minus itself
    }
  }
  for (auto& [score, member] : sources[0].Elements()) {
    bool found = false;
    for (size_t j = 1; j < sources.size() && !found; ++j) {
      found = sources[j].Find(member).has_value();
    }
    if (!found) {
      items.emplace_back(score, std::move(member));
    }
  }
  return items;
}

Items OpSetOperation(SetOpRequest& req) {
  if (req.op != SetOp::kDiff) {
    // Smallest first, as Valkey orders its inputs (this also fixes the order of summation).
    std::stable_sort(req.sources.begin(), req.sources.end(),
                     [](const Source& a, const Source& b) { return a.size() < b.size(); });
  }
  Items items = req.op == SetOp::kUnion ? OpUnion(req.sources, req.aggregate)
                : req.op == SetOp::kInter
                    ? OpInter(req.sources, req.aggregate, static_cast<uint64_t>(req.limit))
                    : OpDiff(req.sources);
  if (!req.cardinality_only) {
    std::sort(items.begin(), items.end());  // a computed result: (score, member) order
  }
  return items;
}

void SetOpCommand(CommandContext& ctx, ArgList args, SetOp op, bool store, bool card) {
  SetOpRequest req;
  req.op = op;
  req.store = store;
  req.cardinality_only = card;
  size_t next = 0;
  if (!LoadSources(ctx, args, store ? 2 : 1, &req, &next) ||
      !ParseSetOpOptions(ctx, args, next, &req)) {
    return;
  }
  const Items items = OpSetOperation(req);
  if (card) {
    ctx.reply.Integer(static_cast<int64_t>(items.size()));
  } else if (store) {
    StoreItems(ctx, args[1], items);
    ctx.reply.Integer(static_cast<int64_t>(items.size()));
  } else {
    ReplyItems(ctx.reply, items, req.with_scores);
  }
}

void CmdZUnion(CommandContext& ctx, ArgList args) {
  SetOpCommand(ctx, args, SetOp::kUnion, false, false);
}
void CmdZInter(CommandContext& ctx, ArgList args) {
  SetOpCommand(ctx, args, SetOp::kInter, false, false);
}
void CmdZDiff(CommandContext& ctx, ArgList args) {
  SetOpCommand(ctx, args, SetOp::kDiff, false, false);
}
void CmdZUnionStore(CommandContext& ctx, ArgList args) {
  SetOpCommand(ctx, args, SetOp::kUnion, true, false);
}
void CmdZInterStore(CommandContext& ctx, ArgList args) {
  SetOpCommand(ctx, args, SetOp::kInter, true, false);
}
void CmdZDiffStore(CommandContext& ctx, ArgList args) {
  SetOpCommand(ctx, args, SetOp::kDiff, true, false);
}
void CmdZInterCard(CommandContext& ctx, ArgList args) {
  SetOpCommand(ctx, args, SetOp::kInter, false, true);
}

// ---- ZRANDMEMBER -----------------------------------------------------------------------------

// Ranks to reply for ZRANDMEMBER with a count (Valkey's cases): repeats allowed for a negative
// count; the whole set in order when the count covers it; otherwise distinct random ranks.
std::vector<size_t> RandomRanks(Rng& rng, size_t size, int64_t count) {
  std::vector<size_t> ranks;
  const bool unique = count > 0;
  const uint64_t wanted =
      unique ? static_cast<uint64_t>(count) : static_cast<uint64_t>(-(count + 1)) + 1;
  if (!unique || wanted == 1) {
    for (uint64_t i = 0; i < wanted; ++i) {
      ranks.push_back(static_cast<size_t>(rng.Uniform(size)));
    }
    return ranks;
  }
  if (wanted >= size) {
    for (size_t i = 0; i < size; ++i) {
      ranks.push_back(i);
    }
    return ranks;
  }
  if (wanted * 3 > size) {  // close to the whole set: a partial shuffle
    for (size_t i = 0; i < size; ++i) {
      ranks.push_back(i);
    }
    for (size_t i = 0; i < wanted; ++i) {
      std::swap(ranks[i], ranks[i + rng.Uniform(size - i)]);
    }
    ranks.resize(wanted);
    return ranks;
  }
  absl::flat_hash_set<size_t> seen;
  while (ranks.size() < wanted) {
    const size_t rank = static_cast<size_t>(rng.Uniform(size));
    if (seen.insert(rank).second) {
      ranks.push_back(rank);
    }
  }
  return ranks;
}

void RandMemberWithCount(CommandContext& ctx, ArgList args, int64_t count, bool with_scores) {
  const ZSetLookup lookup = LookupZSet(ctx, args[1], Access::kRead);
  if (lookup.wrong_type) {
    ctx.reply.Error(errors::kWrongType);
    return;
  }
  if (lookup.zset == nullptr || count == 0) {
    ctx.reply.Array(0);
    return;
  }
  if (count < 0 && static_cast<uint64_t>(-(count + 1)) + 1 > kMaxRepeatedSamples) {
    ctx.reply.Error("ERR value is out of range");
    return;
  }
  const OrderIndex& index = lookup.zset->index();
  Items items;
  for (size_t rank : RandomRanks(ctx.server.rng(), index.size(), count)) {
    const auto [score, member] = index.At(rank);
    items.emplace_back(score, std::string(member));
  }
  ReplyItems(ctx.reply, items, with_scores);
}

void CmdZRandMember(CommandContext& ctx, ArgList args) {
  if (args.size() >= 3) {
    int64_t count = 0;
    if (!ParseInt64(args[2], &count)) {
      ctx.reply.Error(errors::kNotInteger);
      return;
    }
    if (count == INT64_MIN) {
      ctx.reply.Error(
          "ERR value is out of range, value must between -9223372036854775807 and "
          "9223372036854775807");
      return;
    }
    const bool with_scores = args.size() == 4 && EqualsIgnoreCase(args[3], "withscores");
    if (args.size() > 4 || (args.size() == 4 && !with_scores)) {
      ctx.reply.Error(errors::kSyntax);
      return;
    }
    if (with_scores && (count < -(INT64_MAX / 2) || count > INT64_MAX / 2)) {
      ctx.reply.Error("ERR value is out of range");
      return;
    }
    RandMemberWithCount(ctx, args, count, with_scores);
    return;
  }
  const ZSetLookup lookup = LookupZSet(ctx, args[1], Access::kRead);
  if (lookup.wrong_type) {
    ctx.reply.Error(errors::kWrongType);
    return;
  }
  if (lookup.zset == nullptr) {
    ctx.reply.Null();
    return;
  }
  const OrderIndex& index = lookup.zset->index();
  ctx.reply.Bulk(index.At(static_cast<size_t>(ctx.server.rng().Uniform(index.size()))).second);
}

// ---- ZSCAN -----------------------------------------------------------------------------------

// The cursor of a large zset is a 63-bit member hash threshold (odd, so never 0): members are
// visited in hash order and a group of equal hashes is never split, so every member present for
// the whole scan is returned at least once however the set changes in between.
uint64_t MemberCursorHash(std::string_view member) {
  const uint64_t h = StableHash(member);
  return (h >> 1) | 1;
}

bool IsSmall(const SortedSet& zset) {
  if (zset.Size() > kSmallEntries) {
    return false;
  }
  for (const auto& [score, member] : zset.index().Range(0, zset.Size())) {
    if (member.size() > kSmallValueBytes) {
      return false;
    }
  }
  return true;
}

// One ZSCAN step: the members to reply and the next cursor.
uint64_t OpScan(const SortedSet& zset, uint64_t cursor, size_t count, Items* out) {
  Items all = zset.index().Range(0, zset.Size());
  if (IsSmall(zset)) {
    *out = std::move(all);
    return 0;
  }
  std::vector<std::pair<uint64_t, size_t>> order;  // (hash, position in all)
  for (size_t i = 0; i < all.size(); ++i) {
    const uint64_t h = MemberCursorHash(all[i].second);
    if (h >= cursor) {
      order.emplace_back(h, i);
    }
  }
  std::sort(order.begin(), order.end());
  for (size_t i = 0; i < order.size(); ++i) {
    // Stop only between two different hashes, so a group of equal hashes is never split.
    if (i >= count && order[i].first != order[i - 1].first) {
      return order[i].first;
    }
    out->push_back(std::move(all[order[i].second]));
  }
  return 0;
}

void CmdZScan(CommandContext& ctx, ArgList args) {
  uint64_t cursor = 0;
  if (!ParseScanCursor(args[2], &cursor)) {
    ctx.reply.Error(errors::kInvalidCursor);
    return;
  }
  const ZSetLookup lookup = LookupZSet(ctx, args[1], Access::kRead);
  if (lookup.wrong_type) {
    ctx.reply.Error(errors::kWrongType);
    return;
  }
  if (lookup.zset == nullptr) {
    ctx.reply.Array(2);
    ctx.reply.Bulk("0");
    ctx.reply.Array(0);
    return;
  }
  Result<ScanArgs> parsed = ParseScanArgs(args.subspan(3), kScanNoScores);
  if (!parsed.ok()) {
    ctx.reply.Error(parsed.error());
    return;
  }
  const ScanArgs& options = *parsed;
  Items items;
  const uint64_t next = OpScan(*lookup.zset, cursor, options.count, &items);
  std::erase_if(items, [&](const auto& item) { return !options.Matches(item.second); });
  ctx.reply.Array(2);
  ctx.reply.Bulk(std::to_string(next));
  ctx.reply.Array(options.no_scores ? items.size() : items.size() * 2);
  for (const auto& [score, member] : items) {
    ctx.reply.Bulk(member);
    if (!options.no_scores) {
      ctx.reply.Bulk(FormatDouble(score));
    }
  }
}

}  // namespace

void RegisterZSetFamily(CommandRegistry& registry) {
  // clang-format off
  constexpr KeySpec kOne{.first = 1, .last = 1, .step = 1};
  constexpr KeySpec kNumKeys{.numkeys_index = 1};  // ZUNION numkeys key...
  constexpr KeySpec kStore{.first = 1, .last = 1, .step = 1, .numkeys_index = 2};
  constexpr uint32_t kRead = kAclRead | kAclSortedSet;
  constexpr uint32_t kWriteAcl = kAclWrite | kAclSortedSet;
  const auto add = [&](std::string_view name, int arity, uint32_t flags, KeySpec keys,
                       uint32_t acl, CommandHandler handler, std::string_view since,
                       std::string_view summary, std::string_view complexity) {
    registry.Add({.name = name, .arity = arity, .flags = flags, .keys = keys, .acl = acl,
                  .handler = handler, .group = "sorted_set", .summary = summary, .since = since,
                  .complexity = complexity});
  };
  add("zadd", -4, kWrite | kDenyOom | kFast, kOne, kWriteAcl | kAclFast, &CmdZAdd, "1.2.0",
      "Adds members to a sorted set, or updates their scores.", "O(log(N)) per member");
  add("zincrby", 4, kWrite | kDenyOom | kFast, kOne, kWriteAcl | kAclFast, &CmdZIncrBy, "1.2.0",
      "Increments the score of a member in a sorted set.", "O(log(N))");
  add("zscore", 3, kReadOnly | kFast, kOne, kRead | kAclFast, &CmdZScore, "1.2.0",
      "Returns the score of a member in a sorted set.", "O(1)");
  add("zmscore", -3, kReadOnly | kFast, kOne, kRead | kAclFast, &CmdZMScore, "6.2.0",
      "Returns the score of one or more members in a sorted set.", "O(N)");
  add("zcard", 2, kReadOnly | kFast, kOne, kRead | kAclFast, &CmdZCard, "1.2.0",
      "Returns the number of members in a sorted set.", "O(1)");
  add("zrange", -4, kReadOnly, kOne, kRead | kAclSlow, &CmdZRange, "1.2.0",
      "Returns members in a sorted set within a range of indexes, scores or lex.",
      "O(log(N)+M)");
  add("zrangestore", -5, kWrite | kDenyOom, KeySpec{.first = 1, .last = 2, .step = 1},
      kWriteAcl | kAclSlow, &CmdZRangeStore, "6.2.0",
      "Stores a range of members from sorted set in a key.", "O(log(N)+M)");
  add("zrangebyscore", -4, kReadOnly, kOne, kRead | kAclSlow, &CmdZRangeByScore, "1.0.5",
      "Returns members in a sorted set within a range of scores.", "O(log(N)+M)");
  add("zrevrangebyscore", -4, kReadOnly, kOne, kRead | kAclSlow, &CmdZRevRangeByScore, "2.2.0",
      "Returns members in a sorted set within a range of scores, high to low.", "O(log(N)+M)");
  add("zrangebylex", -4, kReadOnly, kOne, kRead | kAclSlow, &CmdZRangeByLex, "2.8.9",
      "Returns members in a sorted set within a lexicographical range.", "O(log(N)+M)");
  add("zrevrangebylex", -4, kReadOnly, kOne, kRead | kAclSlow, &CmdZRevRangeByLex, "2.8.9",
      "Returns members in a sorted set within a lexicographical range, reversed.",
      "O(log(N)+M)");
  add("zrevrange", -4, kReadOnly, kOne, kRead | kAclSlow, &CmdZRevRange, "1.2.0",
      "Returns members in a sorted set within a range of indexes, high to low.",
      "O(log(N)+M)");
  add("zrank", -3, kReadOnly | kFast, kOne, kRead | kAclFast, &CmdZRank, "2.0.0",
      "Returns the index of a member in a sorted set ordered by ascending scores.",
      "O(log(N))");
  add("zrevrank", -3, kReadOnly | kFast, kOne, kRead | kAclFast, &CmdZRevRank, "2.0.0",
      "Returns the index of a member in a sorted set ordered by descending scores.",
      "O(log(N))");
  add("zcount", 4, kReadOnly | kFast, kOne, kRead | kAclFast, &CmdZCount, "2.0.0",
      "Returns the count of members in a sorted set that have scores within a range.",
      "O(log(N))");
  add("zlexcount", 4, kReadOnly | kFast, kOne, kRead | kAclFast, &CmdZLexCount, "2.8.9",
      "Returns the number of members in a sorted set within a lexicographical range.",
      "O(log(N))");
  add("zpopmin", -2, kWrite | kFast, kOne, kWriteAcl | kAclFast, &CmdZPopMin, "5.0.0",
      "Removes and returns the members with the lowest scores.", "O(log(N)*M)");
  add("zpopmax", -2, kWrite | kFast, kOne, kWriteAcl | kAclFast, &CmdZPopMax, "5.0.0",
      "Removes and returns the members with the highest scores.", "O(log(N)*M)");
  add("zmpop", -4, kWrite | kMovableKeys, kNumKeys, kWriteAcl | kAclSlow, &CmdZMPop, "7.0.0",
      "Returns the highest- or lowest-scoring members from one or more sorted sets after "
      "removing them.", "O(K) + O(M*log(N))");
  add("bzpopmin", -3, kWrite | kFast | kBlocking, KeySpec{.first = 1, .last = -2, .step = 1},
      kWriteAcl | kAclFast | kAclBlocking, &CmdBZPopMin, "5.0.0",
      "Removes and returns the member with the lowest score from one or more sorted sets. "
      "Blocks until a member is available otherwise.", "O(log(N))");
  add("bzpopmax", -3, kWrite | kFast | kBlocking, KeySpec{.first = 1, .last = -2, .step = 1},
      kWriteAcl | kAclFast | kAclBlocking, &CmdBZPopMax, "5.0.0",
      "Removes and returns the member with the highest score from one or more sorted sets. "
      "Blocks until a member is available otherwise.", "O(log(N))");
  add("bzmpop", -5, kWrite | kBlocking | kMovableKeys, KeySpec{.numkeys_index = 2},
      kWriteAcl | kAclSlow | kAclBlocking, &CmdBZMPop, "7.0.0",
      "Removes and returns a member by score from one or more sorted sets. Blocks until a "
      "member is available otherwise.", "O(K) + O(M*log(N))");
  add("zrem", -3, kWrite | kFast, kOne, kWriteAcl | kAclFast, &CmdZRem, "1.2.0",
      "Removes one or more members from a sorted set.", "O(M*log(N))");
  add("zremrangebyrank", 4, kWrite, kOne, kWriteAcl | kAclSlow, &CmdZRemRangeByRank, "2.0.0",
      "Removes members in a sorted set within a range of indexes.", "O(log(N)+M)");
  add("zremrangebyscore", 4, kWrite, kOne, kWriteAcl | kAclSlow, &CmdZRemRangeByScore, "1.2.0",
      "Removes members in a sorted set within a range of scores.", "O(log(N)+M)");
  add("zremrangebylex", 4, kWrite, kOne, kWriteAcl | kAclSlow, &CmdZRemRangeByLex, "2.8.9",
      "Removes members in a sorted set within a lexicographical range.", "O(log(N)+M)");
  add("zunionstore", -4, kWrite | kDenyOom | kMovableKeys, kStore, kWriteAcl | kAclSlow,
      &CmdZUnionStore, "2.0.0", "Stores the union of multiple sorted sets in a key.",
      "O(N)+O(M log(M))");
  add("zinterstore", -4, kWrite | kDenyOom | kMovableKeys, kStore, kWriteAcl | kAclSlow,
      &CmdZInterStore, "2.0.0", "Stores the intersect of multiple sorted sets in a key.",
      "O(N*K)+O(M*log(M))");
  add("zdiffstore", -4, kWrite | kDenyOom | kMovableKeys, kStore, kWriteAcl | kAclSlow,
      &CmdZDiffStore, "6.2.0", "Stores the difference of multiple sorted sets in a key.",
      "O(L + (N-K)log(N))");
  add("zunion", -3, kReadOnly | kMovableKeys, kNumKeys, kRead | kAclSlow, &CmdZUnion, "6.2.0",
      "Returns the union of multiple sorted sets.", "O(N)+O(M*log(M))");
  add("zinter", -3, kReadOnly | kMovableKeys, kNumKeys, kRead | kAclSlow, &CmdZInter, "6.2.0",
      "Returns the intersect of multiple sorted sets.", "O(N*K)+O(M*log(M))");
  add("zdiff", -3, kReadOnly | kMovableKeys, kNumKeys, kRead | kAclSlow, &CmdZDiff, "6.2.0",
      "Returns the difference between multiple sorted sets.", "O(L + (N-K)log(N))");
  add("zintercard", -3, kReadOnly | kMovableKeys, kNumKeys, kRead | kAclSlow, &CmdZInterCard,
      "7.0.0", "Returns the number of members of the intersect of multiple sorted sets.",
      "O(N*K)");
  add("zrandmember", -2, kReadOnly, kOne, kRead | kAclSlow, &CmdZRandMember, "6.2.0",
      "Returns one or more random members from a sorted set.", "O(N)");
  add("zscan", -3, kReadOnly, kOne, kRead | kAclSlow, &CmdZScan, "2.8.0",
      "Iterates over members and scores of a sorted set.", "O(1) per call, O(N) in all");
  // clang-format on
}

}  // namespace lattice::server
