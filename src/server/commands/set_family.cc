// The set command family: SADD, SREM, SMEMBERS, SISMEMBER, SMISMEMBER, SCARD, SPOP, SRANDMEMBER,
// SMOVE, SINTER, SUNION, SDIFF, their *STORE variants, SINTERCARD and SSCAN, on the CRDT OrSet
// (crdt/or_set.h). Replies and errors follow Valkey 9's t_set.c byte for byte.
//
// Writes and the ops they ship:
// - SADD is an add of every named member (a re-add of a present member takes a fresh dot, so the
//   user's intent "m is in the set" survives a concurrent SREM under the add-wins rule); SREM is
//   an observed remove of the members that are present here.
// - SPOP is an observed SREM of the members it chose (Valkey propagates SREM too); SMOVE is an
//   SREM on the source and an SADD on the destination (two ops).
// - S*STORE replaces the destination: an observed-remove DEL of what was there, then one SADD of
//   the result (two ops); an empty result only deletes.
// Randomness (SPOP, SRANDMEMBER) comes from the server's Rng, never from a clock.

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <limits>
#include <numeric>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "server/server.h"
#include "util/glob.h"

namespace lattice::server {
namespace {

using crdt::OrSet;
using Members = std::vector<std::string>;

constexpr std::string_view kPopCountError = "ERR value is out of range, must be positive";
constexpr std::string_view kRandCountError =
    "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807";
constexpr std::string_view kRepeatsError = "ERR value is out of range";
// SRANDMEMBER with a negative count may repeat members, so its reply is not bounded by the set:
// Valkey streams it until memory runs out. Lattice refuses counts whose reply could not be
// built in reasonable memory (documented difference).
constexpr uint64_t kRandomRepeatsMax = uint64_t{1} << 24;
// SSCAN returns a small set whole with cursor 0, as Valkey does for its listpack and intset
// encodings (set-max-listpack-entries is 128).
constexpr size_t kScanWholeMax = 128;
// A scan call costs O(size) (hashing every member), so a batch is at least size/kScanPassesMax
// members: a full scan then costs O(size * kScanPassesMax) whatever COUNT says (a hint, as in
// Valkey).
constexpr size_t kScanPassesMax = 32;

// ---- lookups and writes ---------------------------------------------------------------------

// kRead lookups count keyspace hits and misses (Valkey's lookupKeyRead); kWrite ones do not.
enum class Access { kRead, kWrite };

// The visible set at `key`; nullptr when the key is missing (every command treats it as empty).
// The pointer is valid until the next write to the keyspace.
Result<const OrSet*> FindSet(CommandContext& ctx, std::string_view key,
                             Access access = Access::kRead) {
  Result<KeyRef> found = access == Access::kRead ? ctx.Read(key, crdt::ObjectType::kSet)
                                                 : ctx.Peek(key, crdt::ObjectType::kSet);
  if (!found.ok()) {
    return Unexpected(found.error());
  }
  return *found == nullptr ? nullptr : &(*found)->set();
}

// Every set named by `keys` (nullptr for a missing key), or WRONGTYPE if any key holds another
// type: as in Valkey, every key is checked before anything is computed.
Result<std::vector<const OrSet*>> FindSets(CommandContext& ctx, ArgList keys) {
  std::vector<const OrSet*> sets;
  sets.reserve(keys.size());
  for (std::string_view key : keys) {
    Result<const OrSet*> set = FindSet(ctx, key);
    if (!set.ok()) {
      return Unexpected(set.error());
    }
    sets.push_back(*set);
  }
  return sets;
}

enum class Mutation { kAdd, kRemove };

// Applies one SADD or SREM of `members` (not empty) to `key` as one op.
Result<void> Write(CommandContext& ctx, std::string_view key, const Members& members,
                   Mutation mutation) {
  return ctx.Write(key, [&](crdt::Key& k, const crdt::Writer& w, crdt::DotContext& shard) {
    return mutation == Mutation::kAdd ? k.SAdd(members, w, shard) : k.SRem(members, w, shard);
  });
}

// Up to this many members are deduplicated by comparing each with those kept.
constexpr size_t kFewMembers = 8;

// The distinct members named in `args`, in first-seen order.
Members Distinct(ArgList args) {
  if (args.size() <= kFewMembers) {  // the usual SADD/SREM of one or a few members
    Members distinct;
    distinct.reserve(args.size());
    for (std::string_view arg : args) {
      if (std::find(distinct.begin(), distinct.end(), arg) == distinct.end()) {
        distinct.emplace_back(arg);
      }
    }
    return distinct;
  }
  Members members(args.begin(), args.end());
  std::vector<size_t> order(members.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return members[a] < members[b]; });
  std::vector<bool> keep(members.size(), true);
  for (size_t i = 1; i < order.size(); ++i) {
    if (members[order[i]] == members[order[i - 1]]) {
      keep[order[i]] = false;
    }
  }
  Members distinct;
  for (size_t i = 0; i < members.size(); ++i) {
    if (keep[i]) {
      distinct.push_back(std::move(members[i]));
    }
  }
  return distinct;
}

void ReplySet(CommandContext& ctx, const Members& members) {
  ctx.reply.Set(members.size());
  for (const std::string& member : members) {
    ctx.reply.Bulk(member);
  }
}

void ReplyArray(CommandContext& ctx, const Members& members) {
  ctx.reply.Array(members.size());
  for (const std::string& member : members) {
    ctx.reply.Bulk(member);
  }
}

// `count` distinct members of `members` (count < size) in random order: a partial
// Fisher-Yates shuffle.
Members Sample(Members members, size_t count, Rng& rng) {
  for (size_t i = 0; i < count; ++i) {
    const size_t j = i + static_cast<size_t>(rng.Uniform(members.size() - i));
    std::swap(members[i], members[j]);
  }
  members.resize(count);
  return members;
}

// ---- SADD, SREM, SMOVE ----------------------------------------------------------------------

// Keyspace::SAdd counts the members it added as it writes them (one lookup of each), and
// refuses another type before writing.
Result<int64_t> OpAdd(CommandContext& ctx, std::string_view key, const Members& members) {
  Result<size_t> added = ctx.keyspace().SAdd(ctx.db(), key, members, ctx.now_ms);
  if (!added.ok()) {
    return Unexpected(added.error());
  }
  return static_cast<int64_t>(*added);
}

Result<int64_t> OpRemove(CommandContext& ctx, std::string_view key, const Members& members) {
  Result<const OrSet*> set = FindSet(ctx, key, Access::kWrite);
  if (!set.ok() || *set == nullptr) {
    return set.ok() ? Result<int64_t>(0) : Unexpected(set.error());
  }
  Members present;
  for (const std::string& member : members) {
    if ((*set)->Contains(member)) {
      present.push_back(member);
    }
  }
  if (present.empty()) {
    return 0;  // nothing observed to remove: no op
  }
  Result<void> written = Write(ctx, key, present, Mutation::kRemove);
  if (!written.ok()) {
    return Unexpected(written.error());
  }
  return static_cast<int64_t>(present.size());
}

// SMOVE: both keys are type-checked before anything is written.
Result<int64_t> OpMove(CommandContext& ctx, std::string_view source, std::string_view destination,
                       const std::string& member) {
  Result<const OrSet*> from = FindSet(ctx, source, Access::kWrite);
  if (from.ok() && *from == nullptr) {
    return 0;  // Valkey answers 0 for a missing source before looking at the destination
  }
  Result<const OrSet*> to = FindSet(ctx, destination, Access::kWrite);
  if (!from.ok() || !to.ok()) {
    return Unexpected(ErrorCode::kWrongType);
  }
  const bool present = (*from)->Contains(member);
  if (source == destination || !present) {
    return present ? 1 : 0;
  }
  const Members one{member};
  Result<void> removed = Write(ctx, source, one, Mutation::kRemove);
  if (!removed.ok()) {
    return Unexpected(removed.error());
  }
  Result<void> added = Write(ctx, destination, one, Mutation::kAdd);
  if (!added.ok()) {
    return Unexpected(added.error());
  }
  return 1;
}

void CmdSAdd(CommandContext& ctx, ArgList args) {
  Result<int64_t> added = OpAdd(ctx, args[1], Distinct(args.subspan(2)));
  added.ok() ? ctx.reply.Integer(*added) : ctx.reply.Error(added.error());
}

void CmdSRem(CommandContext& ctx, ArgList args) {
  Result<int64_t> removed = OpRemove(ctx, args[1], Distinct(args.subspan(2)));
  removed.ok() ? ctx.reply.Integer(*removed) : ctx.reply.Error(removed.error());
}

void CmdSMove(CommandContext& ctx, ArgList args) {
  Result<int64_t> moved = OpMove(ctx, args[1], args[2], std::string(args[3]));
  moved.ok() ? ctx.reply.Integer(*moved) : ctx.reply.Error(moved.error());
}

// ---- reads of one set ----------------------------------------------------------------------

void CmdSMembers(CommandContext& ctx, ArgList args) {
  Result<const OrSet*> set = FindSet(ctx, args[1]);
  if (!set.ok()) {
    ctx.reply.Error(set.error());
  } else {
    ReplySet(ctx, *set == nullptr ? Members() : (*set)->Members());
  }
}

// The point reads take the KeyRef, which answers them without materialising a compact set.
void CmdSIsMember(CommandContext& ctx, ArgList args) {
  Result<KeyRef> set = ctx.Read(args[1], crdt::ObjectType::kSet);
  if (!set.ok()) {
    ctx.reply.Error(set.error());
  } else {
    ctx.reply.Integer(*set != nullptr && (*set)->SetContains(args[2]) ? 1 : 0);
  }
}

void CmdSMIsMember(CommandContext& ctx, ArgList args) {
  Result<KeyRef> set = ctx.Read(args[1], crdt::ObjectType::kSet);
  if (!set.ok()) {
    ctx.reply.Error(set.error());
    return;
  }
  ctx.reply.Array(args.size() - 2);
  for (std::string_view member : args.subspan(2)) {
    ctx.reply.Integer(*set != nullptr && (*set)->SetContains(member) ? 1 : 0);
  }
}

void CmdSCard(CommandContext& ctx, ArgList args) {
  Result<KeyRef> set = ctx.Read(args[1], crdt::ObjectType::kSet);
  if (!set.ok()) {
    ctx.reply.Error(set.error());
  } else {
    ctx.reply.Integer(*set == nullptr ? 0 : static_cast<int64_t>((*set)->SetSize()));
  }
}

// ---- SPOP and SRANDMEMBER -------------------------------------------------------------------

// SPOP: removes up to `count` random members (all when count >= size) and returns them.
Result<Members> OpPop(CommandContext& ctx, std::string_view key, uint64_t count) {
  Result<const OrSet*> set = FindSet(ctx, key, Access::kWrite);
  if (!set.ok() || *set == nullptr || count == 0) {
    return set.ok() ? Result<Members>(Members()) : Unexpected(set.error());
  }
  Members members = (*set)->Members();
  if (count < members.size()) {
    members = Sample(std::move(members), static_cast<size_t>(count), ctx.server.rng());
  }
  Result<void> removed = Write(ctx, key, members, Mutation::kRemove);
  if (!removed.ok()) {
    return Unexpected(removed.error());
  }
  return members;
}

void CmdSPop(CommandContext& ctx, ArgList args) {
  if (args.size() > 3) {
    ctx.reply.Error(errors::kSyntax);
    return;
  }
  int64_t count = 1;
  if (args.size() == 3 && (!ParseInt64(args[2], &count) || count < 0)) {
    ctx.reply.Error(kPopCountError);  // Valkey gives this text for a non-integer too
    return;
  }
  Result<Members> popped = OpPop(ctx, args[1], static_cast<uint64_t>(count));
  if (!popped.ok()) {
    ctx.reply.Error(popped.error());
  } else if (args.size() == 3) {
    ReplySet(ctx, *popped);
  } else if (popped->empty()) {
    ctx.reply.Null();
  } else {
    ctx.reply.Bulk(popped->front());
  }
}

// SRANDMEMBER key count: a non-negative count picks distinct members, a negative one picks
// |count| members independently (repeats allowed).
Result<Members> OpRandomMembers(CommandContext& ctx, std::string_view key, int64_t count) {
  Result<const OrSet*> set = FindSet(ctx, key);
  if (!set.ok() || *set == nullptr || count == 0) {
    return set.ok() ? Result<Members>(Members()) : Unexpected(set.error());
  }
  Members members = (*set)->Members();
  Rng& rng = ctx.server.rng();
  if (count > 0) {
    const auto wanted = static_cast<uint64_t>(count);
    return wanted >= members.size() ? members
                                    : Sample(std::move(members), static_cast<size_t>(wanted), rng);
  }
  const uint64_t wanted = static_cast<uint64_t>(-count);  // count > INT64_MIN (checked)
  if (wanted > kRandomRepeatsMax) {
    return Unexpected(std::string(kRepeatsError));
  }
  Members picked;
  picked.reserve(static_cast<size_t>(wanted));
  for (uint64_t i = 0; i < wanted; ++i) {
    picked.push_back(members[static_cast<size_t>(rng.Uniform(members.size()))]);
  }
  return picked;
}

void CmdSRandMember(CommandContext& ctx, ArgList args) {
  if (args.size() > 3) {
    ctx.reply.Error(errors::kSyntax);
    return;
  }
  if (args.size() == 2) {
    Result<Members> one = OpRandomMembers(ctx, args[1], 1);
    if (!one.ok()) {
      ctx.reply.Error(one.error());
    } else if (one->empty()) {
      ctx.reply.Null();
    } else {
      ctx.reply.Bulk(one->front());
    }
    return;
  }
  int64_t count = 0;
  if (!ParseInt64(args[2], &count)) {
    ctx.reply.Error(errors::kNotInteger);
    return;
  }
  if (count == std::numeric_limits<int64_t>::min()) {
    ctx.reply.Error(kRandCountError);
    return;
  }
  Result<Members> picked = OpRandomMembers(ctx, args[1], count);
  picked.ok() ? ReplyArray(ctx, *picked) : ctx.reply.Error(picked.error());
}

// ---- SINTER, SUNION, SDIFF and the *STORE variants -------------------------------------------

enum class Algebra { kInter, kUnion, kDiff };

// The members of the combination of `sets` (nullptr = empty), sorted by bytes.
Members Combine(std::vector<const OrSet*> sets, Algebra algebra) {
  if (sets.empty()) {
    return {};
  }
  if (algebra == Algebra::kInter) {
    if (std::find(sets.begin(), sets.end(), nullptr) != sets.end()) {
      return {};
    }
    // Walk the smallest set and probe the others, as Valkey does.
    std::sort(sets.begin(), sets.end(),
              [](const OrSet* a, const OrSet* b) { return a->Size() < b->Size(); });
    Members result;
    for (std::string& member : sets[0]->Members()) {
      if (std::all_of(sets.begin() + 1, sets.end(),
                      [&](const OrSet* other) { return other->Contains(member); })) {
        result.push_back(std::move(member));
      }
    }
    return result;
  }
  if (algebra == Algebra::kDiff) {
    Members result;
    if (sets[0] == nullptr) {
      return result;
    }
    for (std::string& member : sets[0]->Members()) {
      if (std::none_of(sets.begin() + 1, sets.end(), [&](const OrSet* other) {
            return other != nullptr && other->Contains(member);
          })) {
        result.push_back(std::move(member));
      }
    }
    return result;
  }
  Members result;
  for (const OrSet* set : sets) {
    if (set != nullptr) {
      Members members = set->Members();
      result.insert(result.end(), std::make_move_iterator(members.begin()),
                    std::make_move_iterator(members.end()));
    }
  }
  std::sort(result.begin(), result.end());
  result.erase(std::unique(result.begin(), result.end()), result.end());
  return result;
}

Result<Members> OpCombine(CommandContext& ctx, ArgList keys, Algebra algebra) {
  Result<std::vector<const OrSet*>> sets = FindSets(ctx, keys);
  if (!sets.ok()) {
    return Unexpected(sets.error());
  }
  return Combine(std::move(*sets), algebra);
}

// Replaces `destination` with `members`: an observed-remove DEL of whatever it held (of any
// type, as Valkey's setKey overwrites), then one SADD. Returns the new cardinality.
Result<int64_t> OpStore(CommandContext& ctx, std::string_view destination, const Members& members) {
  ctx.keyspace().Delete(ctx.db(), destination, ctx.now_ms);
  if (!members.empty()) {
    Result<void> added = Write(ctx, destination, members, Mutation::kAdd);
    if (!added.ok()) {
      return Unexpected(added.error());
    }
  }
  return static_cast<int64_t>(members.size());
}

void CombineCommand(CommandContext& ctx, ArgList args, Algebra algebra) {
  Result<Members> members = OpCombine(ctx, args.subspan(1), algebra);
  members.ok() ? ReplySet(ctx, *members) : ctx.reply.Error(members.error());
}

void StoreCommand(CommandContext& ctx, ArgList args, Algebra algebra) {
  Result<Members> members = OpCombine(ctx, args.subspan(2), algebra);
  if (!members.ok()) {
    ctx.reply.Error(members.error());
    return;
  }
  Result<int64_t> stored = OpStore(ctx, args[1], *members);
  stored.ok() ? ctx.reply.Integer(*stored) : ctx.reply.Error(stored.error());
}

void CmdSInter(CommandContext& ctx, ArgList args) { CombineCommand(ctx, args, Algebra::kInter); }
void CmdSUnion(CommandContext& ctx, ArgList args) { CombineCommand(ctx, args, Algebra::kUnion); }
void CmdSDiff(CommandContext& ctx, ArgList args) { CombineCommand(ctx, args, Algebra::kDiff); }
void CmdSInterStore(CommandContext& ctx, ArgList args) { StoreCommand(ctx, args, Algebra::kInter); }
void CmdSUnionStore(CommandContext& ctx, ArgList args) { StoreCommand(ctx, args, Algebra::kUnion); }
void CmdSDiffStore(CommandContext& ctx, ArgList args) { StoreCommand(ctx, args, Algebra::kDiff); }

// ---- SINTERCARD ----------------------------------------------------------------------------

// The size of the intersection, counting stops at `limit` (0 = no limit).
Result<int64_t> OpInterCard(CommandContext& ctx, ArgList keys, uint64_t limit) {
  Result<std::vector<const OrSet*>> found = FindSets(ctx, keys);
  if (!found.ok()) {
    return Unexpected(found.error());
  }
  std::vector<const OrSet*>& sets = *found;
  if (std::find(sets.begin(), sets.end(), nullptr) != sets.end()) {
    return 0;
  }
  std::sort(sets.begin(), sets.end(),
            [](const OrSet* a, const OrSet* b) { return a->Size() < b->Size(); });
  uint64_t cardinality = 0;
  for (const std::string& member : sets[0]->Members()) {
    if (std::all_of(sets.begin() + 1, sets.end(),
                    [&](const OrSet* other) { return other->Contains(member); })) {
      if (++cardinality == limit) {
        break;
      }
    }
  }
  return static_cast<int64_t>(cardinality);
}

void CmdSInterCard(CommandContext& ctx, ArgList args) {
  int64_t numkeys = 0;
  if (!ParseInt64(args[1], &numkeys) || numkeys < 1) {
    ctx.reply.Error("ERR numkeys should be greater than 0");
    return;
  }
  if (static_cast<uint64_t>(numkeys) > args.size() - 2) {
    ctx.reply.Error("ERR Number of keys can't be greater than number of args");
    return;
  }
  const size_t first_option = 2 + static_cast<size_t>(numkeys);
  int64_t limit = 0;
  for (size_t i = first_option; i < args.size(); ++i) {
    if (!EqualsIgnoreCase(args[i], "limit") || i + 1 >= args.size()) {
      ctx.reply.Error(errors::kSyntax);
      return;
    }
    if (!ParseInt64(args[++i], &limit) || limit < 0) {
      ctx.reply.Error("ERR LIMIT can't be negative");
      return;
    }
  }
  Result<int64_t> cardinality =
      OpInterCard(ctx, args.subspan(2, static_cast<size_t>(numkeys)), static_cast<uint64_t>(limit));
  cardinality.ok() ? ctx.reply.Integer(*cardinality) : ctx.reply.Error(cardinality.error());
}

// ---- SSCAN ---------------------------------------------------------------------------------

// A fixed (process-independent) 63-bit hash, plus one so that no member hashes to cursor 0:
// FNV-1a with a splitmix64 finaliser. Cursors mean the same in every run and on every replica.
uint64_t ScanHash(std::string_view member) {
  const uint64_t h = StableHash(member);
  return (h >> 1) + 1;
}

struct ScanPage {
  uint64_t next_cursor = 0;
  Members members;
};

// One page of a hash-ordered scan: the members whose hash is in [cursor, next_cursor). Members
// are visited in hash order and all members of one hash value together, so every member present
// for the whole scan is returned at least once however the set changes between calls.
ScanPage ScanByHash(const OrSet& set, uint64_t cursor, size_t batch) {
  std::vector<std::pair<uint64_t, std::string>> pending;
  for (std::string& member : set.Members()) {
    const uint64_t hash = ScanHash(member);
    if (hash >= cursor) {
      pending.emplace_back(hash, std::move(member));
    }
  }
  ScanPage page;
  if (pending.size() <= batch) {
    for (auto& entry : pending) {
      page.members.push_back(std::move(entry.second));
    }
    return page;
  }
  auto by_hash = [](const auto& a, const auto& b) { return a.first < b.first; };
  std::nth_element(pending.begin(), pending.begin() + static_cast<ptrdiff_t>(batch), pending.end(),
                   by_hash);
  uint64_t end = pending[batch].first;  // first hash of the next page
  const uint64_t lowest = std::min_element(pending.begin(), pending.end(), by_hash)->first;
  if (lowest == end) {
    ++end;  // more than `batch` members share one hash: return that whole group
  }
  for (auto& entry : pending) {
    if (entry.first < end) {
      page.members.push_back(std::move(entry.second));
    }
  }
  page.next_cursor = end > (uint64_t{1} << 63) ? 0 : end;
  return page;
}

ScanPage OpScan(const OrSet& set, uint64_t cursor, const ScanArgs& options) {
  ScanPage page;
  const size_t size = set.Size();
  if (size <= kScanWholeMax) {
    page.members = set.Members();
  } else {
    page = ScanByHash(set, cursor, std::max(options.count, size / kScanPassesMax));
  }
  std::erase_if(page.members, [&](const std::string& member) { return !options.Matches(member); });
  return page;
}

void CmdSScan(CommandContext& ctx, ArgList args) {
  uint64_t cursor = 0;
  if (!ParseScanCursor(args[2], &cursor)) {
    ctx.reply.Error(errors::kInvalidCursor);
    return;
  }
  Result<const OrSet*> set = FindSet(ctx, args[1]);
  if (!set.ok()) {
    ctx.reply.Error(set.error());
    return;
  }
  ScanPage page;
  if (*set != nullptr) {  // Valkey checks the options only once it has a set to scan
    Result<ScanArgs> options = ParseScanArgs(args.subspan(3), kScanNameOtherFlags);
    if (!options.ok()) {
      ctx.reply.Error(options.error());
      return;
    }
    page = OpScan(**set, cursor, *options);
  }
  ctx.reply.Array(2);
  ctx.reply.Bulk(std::to_string(page.next_cursor));
  ReplyArray(ctx, page.members);
}

}  // namespace

void RegisterSetFamily(CommandRegistry& registry) {
  // clang-format off
  constexpr uint32_t kW = kAclWrite | kAclSet;
  constexpr uint32_t kR = kAclRead | kAclSet;
  constexpr KeySpec kOne{.first = 1, .last = 1, .step = 1};
  constexpr KeySpec kAll{.first = 1, .last = -1, .step = 1};
  registry.Add({.name = "sadd", .arity = -3, .flags = kWrite | kDenyOom | kFast, .keys = kOne, .acl = kW | kAclFast, .handler = &CmdSAdd, .group = "set", .summary = "Adds one or more members to a set. Creates the key if it doesn't exist.", .since = "1.0.0", .complexity = "O(1) for each element added, so O(N) to add N elements when the command is called with multiple arguments."});
  registry.Add({.name = "srem", .arity = -3, .flags = kWrite | kFast, .keys = kOne, .acl = kW | kAclFast, .handler = &CmdSRem, .group = "set", .summary = "Removes one or more members from a set. Deletes the set if the last member was removed.", .since = "1.0.0", .complexity = "O(N) where N is the number of members to be removed."});
  registry.Add({.name = "smembers", .arity = 2, .flags = kReadOnly, .keys = kOne, .acl = kR | kAclSlow, .handler = &CmdSMembers, .group = "set", .summary = "Returns all members of a set.", .since = "1.0.0", .complexity = "O(N) where N is the set cardinality."});
  registry.Add({.name = "sismember", .arity = 3, .flags = kReadOnly | kFast, .keys = kOne, .acl = kR | kAclFast, .handler = &CmdSIsMember, .group = "set", .summary = "Determines whether a member belongs to a set.", .since = "1.0.0", .complexity = "O(1)"});
  registry.Add({.name = "smismember", .arity = -3, .flags = kReadOnly | kFast, .keys = kOne, .acl = kR | kAclFast, .handler = &CmdSMIsMember, .group = "set", .summary = "Determines whether multiple members belong to a set.", .since = "6.2.0", .complexity = "O(N) where N is the number of elements being checked for membership"});
  registry.Add({.name = "scard", .arity = 2, .flags = kReadOnly | kFast, .keys = kOne, .acl = kR | kAclFast, .handler = &CmdSCard, .group = "set", .summary = "Returns the number of members in a set.", .since = "1.0.0", .complexity = "O(1)"});
  registry.Add({.name = "spop", .arity = -2, .flags = kWrite | kFast, .keys = kOne, .acl = kW | kAclFast, .handler = &CmdSPop, .group = "set", .summary = "Returns one or more random members from a set after removing them. Deletes the set if the last member was popped.", .since = "1.0.0", .complexity = "Without the count argument O(1), otherwise O(N) where N is the value of the passed count."});
  registry.Add({.name = "srandmember", .arity = -2, .flags = kReadOnly, .keys = kOne, .acl = kR | kAclSlow, .handler = &CmdSRandMember, .group = "set", .summary = "Get one or multiple random members from a set", .since = "1.0.0", .complexity = "Without the count argument O(1), otherwise O(N) where N is the absolute value of the passed count."});
  registry.Add({.name = "smove", .arity = 4, .flags = kWrite | kFast, .keys = {.first = 1, .last = 2, .step = 1}, .acl = kW | kAclFast, .handler = &CmdSMove, .group = "set", .summary = "Moves a member from one set to another.", .since = "1.0.0", .complexity = "O(1)"});
  registry.Add({.name = "sinter", .arity = -2, .flags = kReadOnly, .keys = kAll, .acl = kR | kAclSlow, .handler = &CmdSInter, .group = "set", .summary = "Returns the intersect of multiple sets.", .since = "1.0.0", .complexity = "O(N*M) worst case where N is the cardinality of the smallest set and M is the number of sets."});
  registry.Add({.name = "sunion", .arity = -2, .flags = kReadOnly, .keys = kAll, .acl = kR | kAclSlow, .handler = &CmdSUnion, .group = "set", .summary = "Returns the union of multiple sets.", .since = "1.0.0", .complexity = "O(N) where N is the total number of elements in all given sets."});
  registry.Add({.name = "sdiff", .arity = -2, .flags = kReadOnly, .keys = kAll, .acl = kR | kAclSlow, .handler = &CmdSDiff, .group = "set", .summary = "Returns the difference of multiple sets.", .since = "1.0.0", .complexity = "O(N) where N is the total number of elements in all given sets."});
  registry.Add({.name = "sinterstore", .arity = -3, .flags = kWrite | kDenyOom, .keys = kAll, .acl = kW | kAclSlow, .handler = &CmdSInterStore, .group = "set", .summary = "Stores the intersect of multiple sets in a key.", .since = "1.0.0", .complexity = "O(N*M) worst case where N is the cardinality of the smallest set and M is the number of sets."});
  registry.Add({.name = "sunionstore", .arity = -3, .flags = kWrite | kDenyOom, .keys = kAll, .acl = kW | kAclSlow, .handler = &CmdSUnionStore, .group = "set", .summary = "Stores the union of multiple sets in a key.", .since = "1.0.0", .complexity = "O(N) where N is the total number of elements in all given sets."});
  registry.Add({.name = "sdiffstore", .arity = -3, .flags = kWrite | kDenyOom, .keys = kAll, .acl = kW | kAclSlow, .handler = &CmdSDiffStore, .group = "set", .summary = "Stores the difference of multiple sets in a key.", .since = "1.0.0", .complexity = "O(N) where N is the total number of elements in all given sets."});
  // Keys are found through numkeys (a keynum key spec), which KeySpec cannot express: the legacy
  // range is 0 0 0 and the command is flagged movablekeys, as in Valkey's COMMAND INFO.
  registry.Add({.name = "sintercard", .arity = -3, .flags = kReadOnly | kMovableKeys, .keys = {.numkeys_index = 1}, .acl = kR | kAclSlow, .handler = &CmdSInterCard, .group = "set", .summary = "Returns the number of members of the intersect of multiple sets.", .since = "7.0.0", .complexity = "O(N*M) worst case where N is the cardinality of the smallest set and M is the number of sets."});
  registry.Add({.name = "sscan", .arity = -3, .flags = kReadOnly, .keys = kOne, .acl = kR | kAclSlow, .handler = &CmdSScan, .group = "set", .summary = "Iterates over members of a set.", .since = "2.8.0", .complexity = "O(1) for every call. O(N) for a complete iteration, including enough command calls for the cursor to return back to 0. N is the number of elements inside the collection."});
  // clang-format on
}

}  // namespace lattice::server
