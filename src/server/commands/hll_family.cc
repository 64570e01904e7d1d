// The HyperLogLog command family: PFADD, PFCOUNT, PFMERGE, PFDEBUG and PFSELFTEST, on strings
// holding Valkey's HyperLogLog bytes (crdt/hll.h). Replies, errors and the bytes left in the key
// follow Valkey 9's hyperloglog.c: TYPE says string, GET returns the bytes, SET of a copied value
// is a HyperLogLog again.
//
// CRDT mapping (docs/commands/hyperloglog.md): a PFADD on a dense HyperLogLog ships only the
// registers it raised, as an entry beside the others (crdt/hll_key.h); every other write (PFADD
// on a sparse value, PFMERGE, a single-key PFCOUNT that refreshes the cached cardinality, PFDEBUG
// GETREG/TODENSE converting to dense) is a read-modify-write SET of the new bytes that keeps the
// TTL. Concurrent writes of HyperLogLog values are kept side by side by the string register, and
// a read shows their register-wise max (Key::GetString, hll::MergeValues): a join, so concurrent
// PFADDs merge exactly.

#include <string>
#include <string_view>

#include "lattice/crdt/hll.h"
#include "lattice/crdt/hll_key.h"
#include "server/server.h"
#include "util/ascii.h"

namespace lattice::server {
namespace {

namespace hll = crdt::hll;

constexpr std::string_view kNotHll = "WRONGTYPE Key is not a valid HyperLogLog string value.";
constexpr std::string_view kCorrupted = "INVALIDOBJ Corrupted HLL object detected";

size_t SparseMaxBytes(const CommandContext& ctx) {
  return static_cast<size_t>(ctx.server.config().hll_sparse_max_bytes());
}

// The HyperLogLog at `entry` (Valkey's isHLLObjectOrReply): nullopt, after replying, when the
// key holds another type or a string that is not a HyperLogLog.
std::optional<std::string> HllOrReply(CommandContext& ctx, const KeyRef& entry) {
  if (entry.TypeAt(ctx.now_ms) != crdt::ObjectType::kString) {
    ctx.reply.Error(errors::kWrongType);
    return std::nullopt;
  }
  std::optional<std::string> value = entry.GetString(ctx.now_ms);
  if (!value || !hll::Valid(*value)) {
    ctx.reply.Error(kNotHll);
    return std::nullopt;
  }
  return value;
}

void Store(CommandContext& ctx, std::string_view key, std::string value) {
  ctx.keyspace().SetString(ctx.db(), key, std::move(value), /*keep_ttl=*/true, ctx.now_ms);
}

// PFADD on a dense HyperLogLog, read in place: no write when no register rises, else an op of
// the raised registers only. False, having replied nothing, when the whole-value write applies.
bool TryRaise(CommandContext& ctx, ArgList args, const KeyRef& entry) {
  std::optional<hll::Entries> entries;
  if (std::optional<std::string_view> value = entry.CompactValue()) {
    entries = hll::RaiseEntries(*value);
  } else if (const crdt::Key* key = entry.full()) {
    entries = hll::RaiseEntries(*key, ctx.now_ms);
  }
  if (!entries) return false;
  hll::AddPlan plan = hll::PlanAdd(*entries, args.subspan(2));
  if (plan.kind == hll::AddPlan::Kind::kWhole) return false;
  const bool raised = plan.kind == hll::AddPlan::Kind::kRaise;
  if (raised) {
    // The views into the key are not used past this point: the write may move its storage.
    Result<void> written = ctx.Write(
        args[1], [&](crdt::Key& key, const crdt::Writer& writer, crdt::DotContext& shard) {
          return Result<crdt::KeyOp>(hll::AddBeside(key, std::move(plan.raise), writer, shard));
        });
    LATTICE_ASSERT_MSG(written.ok(), "PFADD raise failed after its checks");
  }
  ctx.reply.Integer(raised ? 1 : 0);
  return true;
}

void CmdPfAdd(CommandContext& ctx, ArgList args) {
  KeyRef entry = ctx.keyspace().Find(ctx.db(), args[1], ctx.now_ms);
  if (entry != nullptr && TryRaise(ctx, args, entry)) return;
  std::string value;
  int updated = 0;
  if (entry == nullptr) {
    value = hll::NewSparse();
    updated = 1;
  } else {
    std::optional<std::string> found = HllOrReply(ctx, *entry);
    if (!found) return;
    value = std::move(*found);
  }
  const size_t max_bytes = SparseMaxBytes(ctx);
  for (size_t i = 2; i < args.size(); ++i) {
    const int changed = hll::Add(value, args[i], max_bytes);
    if (changed < 0) {
      ctx.reply.Error(kCorrupted);
      return;
    }
    updated += changed;
  }
  if (updated != 0) {
    value[15] = static_cast<char>(value[15] | 0x80);  // the cached cardinality is stale
    Store(ctx, args[1], std::move(value));
  }
  ctx.reply.Integer(updated != 0 ? 1 : 0);
}

void CmdPfCount(CommandContext& ctx, ArgList args) {
  if (args.size() > 2) {  // the union's estimate; nothing is cached or written
    hll::Registers max{};
    for (size_t i = 1; i < args.size(); ++i) {
      KeyRef entry = *ctx.Read(args[i]);
      if (entry == nullptr) continue;
      std::optional<std::string> value = HllOrReply(ctx, *entry);
      if (!value) return;
      if (!hll::MaxInto(max, *value)) {
        ctx.reply.Error(kCorrupted);
        return;
      }
    }
    ctx.reply.Integer(static_cast<int64_t>(hll::Estimate(max)));
    return;
  }
  KeyRef entry = *ctx.Read(args[1]);
  if (entry == nullptr) {
    ctx.reply.Integer(0);
    return;
  }
  std::optional<std::string> value = HllOrReply(ctx, *entry);
  if (!value) return;
  if (std::optional<uint64_t> cached = hll::CachedCount(*value)) {
    ctx.reply.Integer(static_cast<int64_t>(*cached));
    return;
  }
  const std::optional<uint64_t> count = hll::Count(*value);
  if (!count) {
    ctx.reply.Error(kCorrupted);
    return;
  }
  hll::StoreCachedCount(*value, *count);  // as Valkey, PFCOUNT refreshes the cache in the key
  Store(ctx, args[1], std::move(*value));
  ctx.reply.Integer(static_cast<int64_t>(*count));
}

void CmdPfMerge(CommandContext& ctx, ArgList args) {
  hll::Registers max{};
  bool dense = false;
  std::optional<std::string> target;
  for (size_t i = 1; i < args.size(); ++i) {
    KeyRef entry = *ctx.Read(args[i]);
    if (entry == nullptr) continue;
    std::optional<std::string> value = HllOrReply(ctx, *entry);
    if (!value) return;
    dense = dense || (*value)[4] == static_cast<char>(hll::kDense);
    if (!hll::MaxInto(max, *value)) {
      ctx.reply.Error(kCorrupted);
      return;
    }
    if (i == 1) target = std::move(*value);
  }
  std::string out = target ? std::move(*target) : hll::NewSparse();
  if (!hll::WriteMax(out, max, dense, SparseMaxBytes(ctx))) {
    ctx.reply.Error(kCorrupted);
    return;
  }
  Store(ctx, args[1], std::move(out));
  ctx.reply.Ok();
}

void CmdPfDebug(CommandContext& ctx, ArgList args) {
  std::string lowered;
  const std::string_view cmd = AsciiLower(args[1], lowered);
  KeyRef entry = ctx.keyspace().Find(ctx.db(), args[2], ctx.now_ms);
  if (entry == nullptr) {
    ctx.reply.Error("ERR The specified key does not exist");
    return;
  }
  std::optional<std::string> value = HllOrReply(ctx, *entry);
  if (!value) return;
  const bool sparse = (*value)[4] == static_cast<char>(hll::kSparse);
  auto arity = [&]() {
    if (args.size() == 3) return true;
    ctx.reply.Error("ERR Wrong number of arguments for the '" + std::string(args[1]) +
                    "' subcommand");
    return false;
  };
  if (cmd == "getreg" || cmd == "todense") {
    if (!arity()) return;
    if (sparse) {
      if (!hll::ToDense(*value)) {
        ctx.reply.Error(kCorrupted);
        return;
      }
      Store(ctx, args[2], *value);  // Valkey propagates the conversion
    }
    if (cmd == "todense") {
      ctx.reply.Integer(sparse ? 1 : 0);
      return;
    }
    hll::Registers regs{};
    hll::MaxInto(regs, *value);
    ctx.reply.Array(regs.size());
    for (uint8_t r : regs) ctx.reply.Integer(r);
  } else if (cmd == "decode") {
    if (!arity()) return;
    std::optional<std::string> decoded = hll::Decode(*value);
    if (!decoded) {
      ctx.reply.Error("ERR HLL encoding is not sparse");
      return;
    }
    ctx.reply.Bulk(*decoded);
  } else if (cmd == "encoding") {
    if (!arity()) return;
    ctx.reply.SimpleString(sparse ? "sparse" : "dense");
  } else {
    ctx.reply.Error("ERR Unknown PFDEBUG subcommand '" + std::string(args[1]) + "'");
  }
}

void CmdPfSelfTest(CommandContext& ctx, ArgList /*args*/) {
  const std::string failure = hll::SelfTest();
  if (failure.empty()) {
    ctx.reply.Ok();
  } else {
    ctx.reply.Error(failure);
  }
}

}  // namespace

void RegisterHllFamily(CommandRegistry& registry) {
  // clang-format off
  constexpr KeySpec kOne{.first = 1, .last = 1, .step = 1};
  constexpr KeySpec kAll{.first = 1, .last = -1, .step = 1};
  constexpr std::string_view kGroup = "hyperloglog";
  registry.Add({.name = "pfadd", .arity = -2, .flags = kWrite | kDenyOom | kFast, .keys = kOne, .acl = kAclWrite | kAclHyperLogLog | kAclFast, .handler = &CmdPfAdd, .group = kGroup, .summary = "Adds elements to a HyperLogLog key. Creates the key if it doesn't exist.", .since = "2.8.9", .complexity = "O(1) to add every element."});
  registry.Add({.name = "pfcount", .arity = -2, .flags = kReadOnly | kMayReplicate, .keys = kAll, .acl = kAclRead | kAclHyperLogLog | kAclSlow, .handler = &CmdPfCount, .group = kGroup, .summary = "Returns the approximated cardinality of the set(s) observed by the HyperLogLog key(s).", .since = "2.8.9", .complexity = "O(1) with a very small average constant time when called with a single key. O(N) with N being the number of keys, and much bigger constant times, when called with multiple keys."});
  registry.Add({.name = "pfmerge", .arity = -2, .flags = kWrite | kDenyOom, .keys = kAll, .acl = kAclWrite | kAclHyperLogLog | kAclSlow, .handler = &CmdPfMerge, .group = kGroup, .summary = "Merges one or more HyperLogLog values into a single key.", .since = "2.8.9", .complexity = "O(N) to merge N HyperLogLogs, but with high constant times."});
  registry.Add({.name = "pfdebug", .arity = 3, .flags = kWrite | kDenyOom | kAdmin, .keys = {.first = 2, .last = 2, .step = 1}, .acl = kAclWrite | kAclHyperLogLog | kAclAdmin | kAclSlow | kAclDangerous, .handler = &CmdPfDebug, .group = kGroup, .summary = "Internal commands for debugging HyperLogLog values.", .since = "2.8.9", .complexity = "N/A"});
  registry.Add({.name = "pfselftest", .arity = 1, .flags = kAdmin, .keys = {}, .acl = kAclHyperLogLog | kAclAdmin | kAclSlow | kAclDangerous, .handler = &CmdPfSelfTest, .group = kGroup, .summary = "An internal command for testing HyperLogLog values.", .since = "2.8.9", .complexity = "N/A"});
  // clang-format on
}

}  // namespace lattice::server
