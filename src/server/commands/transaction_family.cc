// Transactions: MULTI, EXEC, DISCARD, WATCH, UNWATCH. Queueing happens in Server::Execute; the
// queued commands run back to back on the event-loop thread, so a transaction is atomic here.
// Under active-active replication each command's ops still merge with concurrent writes from
// other regions (documented in docs/commands/transactions.md).

#include "server/server.h"

namespace lattice::server {
namespace {

void Discard(CommandContext& ctx) {
  ctx.client.in_multi = false;
  ctx.client.multi_dirty = false;
  ctx.client.queued.clear();
  ctx.server.Unwatch(ctx.client);
}

void CmdMulti(CommandContext& ctx, ArgList /*args*/) {
  if (ctx.client.in_multi) {
    ctx.reply.Error("ERR MULTI calls can not be nested");
    return;
  }
  ctx.client.in_multi = true;
  ctx.client.multi_dirty = false;
  ctx.client.queued.clear();
  ctx.reply.Ok();
}

// A watched key that was visible at WATCH time and is gone now expired in between: Valkey
// counts that as a modification.
bool WatchedKeyExpired(CommandContext& ctx) {
  for (const ClientState::WatchedKey& watched : ctx.client.watched) {
    if (watched.existed && ctx.keyspace().Find(watched.db, watched.key, ctx.now_ms) == nullptr) {
      return true;
    }
  }
  return false;
}

void CmdExec(CommandContext& ctx, ArgList /*args*/) {
  if (!ctx.client.in_multi) {
    ctx.reply.Error("ERR EXEC without MULTI");
    return;
  }
  if (ctx.client.multi_dirty) {
    Discard(ctx);
    ctx.reply.Error("EXECABORT Transaction discarded because of previous errors.");
    return;
  }
  if (ctx.client.watch_dirty || WatchedKeyExpired(ctx)) {
    Discard(ctx);
    ctx.reply.NullArray();
    return;
  }
  ctx.server.Unwatch(ctx.client);
  ctx.server.ExecQueued(ctx.client, ctx.reply);
}

void CmdDiscard(CommandContext& ctx, ArgList /*args*/) {
  if (!ctx.client.in_multi) {
    ctx.reply.Error("ERR DISCARD without MULTI");
    return;
  }
  Discard(ctx);
  ctx.reply.Ok();
}

void CmdWatch(CommandContext& ctx, ArgList args) {
  if (ctx.client.in_multi) {
    ctx.reply.Error("ERR WATCH inside MULTI is not allowed");
    return;
  }
  for (size_t i = 1; i < args.size(); ++i) {
    ctx.server.Watch(ctx.client, ctx.db(), args[i]);
  }
  ctx.reply.Ok();
}

void CmdUnwatch(CommandContext& ctx, ArgList /*args*/) {
  ctx.server.Unwatch(ctx.client);
  ctx.reply.Ok();
}

}  // namespace

void RegisterTransactionFamily(CommandRegistry& registry) {
  // clang-format off
  constexpr uint32_t kTx = kNoScript | kLoading | kStale | kFast | kAllowBusy;
  registry.Add({.name = "multi", .arity = 1, .flags = kTx, .acl = kAclTransaction | kAclFast,
                .handler = &CmdMulti, .group = "transactions", .summary = "Starts a transaction.", .since = "1.2.0", .complexity = "O(1)"});
  registry.Add({.name = "exec", .arity = 1, .flags = kNoScript | kLoading | kStale | kSkipSlowlog, .acl = kAclTransaction | kAclSlow,
                .handler = &CmdExec, .group = "transactions", .summary = "Executes all commands in a transaction.", .since = "1.2.0"});
  registry.Add({.name = "discard", .arity = 1, .flags = kTx, .acl = kAclTransaction | kAclFast,
                .handler = &CmdDiscard, .group = "transactions", .summary = "Discards a transaction.", .since = "2.0.0"});
  registry.Add({.name = "watch", .arity = -2, .flags = kTx, .keys = {.first = 1, .last = -1, .step = 1},
                .acl = kAclTransaction | kAclFast, .handler = &CmdWatch, .group = "transactions", .summary = "Monitors changes to keys to determine the execution of a transaction.", .since = "2.2.0"});
  registry.Add({.name = "unwatch", .arity = 1, .flags = kTx, .acl = kAclTransaction | kAclFast,
                .handler = &CmdUnwatch, .group = "transactions", .summary = "Forgets about watched keys of a transaction.", .since = "2.2.0"});
  // clang-format on
}

}  // namespace lattice::server
