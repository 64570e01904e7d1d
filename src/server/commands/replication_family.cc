// REPLICAOF / SLAVEOF and ROLE: a region following a Valkey or Redis primary (server/replica_of.h).
// SYNC, PSYNC and REPLCONF: Valkey replicas of a region and redis-cli --rdb
// (server/sync_replicas.h).
//
// CRDT notes: what the primary sends is applied as this region's own local writes, so the
// region's peers receive it as ordinary ops; REPLICAOF NO ONE only stops following (nothing is
// flushed). Every region of the shard is a primary in Lattice's sense: ROLE says "master" unless
// this region follows an outside primary.

#include <charconv>
#include <string>

#include "server/replica_of.h"
#include "server/server.h"
#include "server/sync_replicas.h"
#include "util/ascii.h"

namespace lattice::server {
namespace {

void CmdReplicaOf(CommandContext& ctx, ArgList args) {
  if (ctx.server.cluster() != nullptr) {
    ctx.reply.Error("ERR REPLICAOF not allowed in cluster mode.");
    return;
  }
  ReplicaOf& replica = ctx.server.replica_of();
  if (EqualsIgnoreCase(args[1], "no") && EqualsIgnoreCase(args[2], "one")) {
    replica.Stop();
    ctx.reply.Ok();
    return;
  }
  int port = 0;
  const auto [end, ec] = std::from_chars(args[2].data(), args[2].data() + args[2].size(), port);
  if (ec != std::errc() || end != args[2].data() + args[2].size() || port <= 0 || port > 65535) {
    ctx.reply.Error("ERR Invalid master port");
    return;
  }
  if (!replica.Follow(std::string(args[1]), port, ctx.now_ms)) {
    ctx.reply.SimpleString("OK Already connected to specified master");
    return;
  }
  ctx.reply.Ok();
}

// SYNC, and PSYNC <replid> <offset>: no reply here; +FULLRESYNC, the RDB and the stream, or
// +CONTINUE and the stream, are pushed (SyncReplicas).
void CmdSync(CommandContext& ctx, ArgList args) {
  if (ctx.client.in_multi) {
    ctx.reply.Error("ERR Command is not allowed inside a transaction");
    return;
  }
  const bool psync = EqualsIgnoreCase(args[0], "psync");
  int64_t wanted = -1;
  if (psync && !ParseInt64(args[2], &wanted)) wanted = -1;
  Result<void> attached = ctx.server.sync_replicas().Attach(
      ctx.client, psync, ctx.now_ms, psync ? args[1] : std::string_view("?"), wanted);
  if (!attached.ok()) ctx.reply.Error(attached.error().message);
}

// REPLCONF <option> <value> ...: listening-port, ip-address, capa, rdb-only, rdb-filter-only
// are taken (+OK); ACK <offset> [FACK <offset>] is recorded with no reply; GETACK is for
// replicas (ignored here).
void CmdReplconf(CommandContext& ctx, ArgList args) {
  if (args.size() % 2 == 0) {
    ctx.reply.Error(errors::kSyntax);
    return;
  }
  SyncReplicas& replicas = ctx.server.sync_replicas();
  for (size_t i = 1; i < args.size(); i += 2) {
    const std::string_view option = args[i];
    const std::string_view value = args[i + 1];
    int64_t number = 0;
    if (EqualsIgnoreCase(option, "ack")) {
      if (ParseInt64(value, &number)) (void)replicas.Ack(ctx.client, number, ctx.now_ms);
      return;  // no reply, as Valkey
    }
    if (EqualsIgnoreCase(option, "getack")) return;
    if (EqualsIgnoreCase(option, "listening-port")) {
      if (!ParseInt64(value, &number) || number < 0 || number > 65535) {
        ctx.reply.Error("ERR value is out of range");
        return;
      }
      replicas.SetListeningPort(ctx.client, static_cast<int>(number));
    } else if (EqualsIgnoreCase(option, "ip-address")) {
      replicas.SetIp(ctx.client, std::string(value));
    } else if (EqualsIgnoreCase(option, "rdb-only")) {
      if (value != "0" && value != "1") {
        ctx.reply.Error("ERR Invalid value, use 0 or 1");
        return;
      }
      replicas.SetRdbOnly(ctx.client, value == "1");
    } else if (!EqualsIgnoreCase(option, "capa") && !EqualsIgnoreCase(option, "rdb-filter-only") &&
               !EqualsIgnoreCase(option, "version")) {
      ctx.reply.Error("ERR Unrecognized REPLCONF option: " + std::string(option));
      return;
    }
  }
  ctx.reply.Ok();
}

void CmdRole(CommandContext& ctx, ArgList) {
  const ReplicaOf& replica = ctx.server.replica_of();
  if (!replica.following()) {
    const SyncReplicas& replicas = ctx.server.sync_replicas();
    ctx.reply.Array(3);
    ctx.reply.Bulk("master");
    ctx.reply.Integer(replicas.offset());
    ctx.reply.Array(replicas.online());
    for (const auto& r : replicas.replicas()) {
      if (r->state != SyncReplicas::State::kOnline) continue;
      ctx.reply.Array(3);
      ctx.reply.Bulk(r->ip);
      ctx.reply.Bulk(std::to_string(r->listening_port));
      ctx.reply.Bulk(std::to_string(r->ack_offset));
    }
    return;
  }
  ctx.reply.Array(5);
  ctx.reply.Bulk("slave");
  ctx.reply.Bulk(replica.host());
  ctx.reply.Integer(replica.port());
  ctx.reply.Bulk(replica.StateName());
  ctx.reply.Integer(replica.offset());
}

}  // namespace

void RegisterReplicationFamily(CommandRegistry& registry) {
  // clang-format off
  constexpr uint32_t kAdminAcl = kAclAdmin | kAclSlow | kAclDangerous;
  registry.Add({.name = "replicaof", .arity = 3, .flags = kAdmin | kNoScript | kStale, .acl = kAdminAcl, .handler = &CmdReplicaOf, .group = "server", .summary = "Configures a server as replica of another, or promotes it to a master.", .since = "5.0.0", .complexity = "O(1)"});
  registry.Add({.name = "slaveof", .arity = 3, .flags = kAdmin | kNoScript | kStale, .acl = kAdminAcl, .handler = &CmdReplicaOf, .group = "server", .summary = "Sets a server as a replica of another, or promotes it to being a master.", .since = "1.0.0", .complexity = "O(1)"});
  registry.Add({.name = "role", .arity = 1, .flags = kNoScript | kLoading | kStale | kFast, .acl = kAclAdmin | kAclFast | kAclDangerous, .handler = &CmdRole, .group = "server", .summary = "Returns the replication role.", .since = "2.8.12", .complexity = "O(1)"});
  registry.Add({.name = "sync", .arity = 1, .flags = kAdmin | kNoScript | kNoMulti, .acl = kAdminAcl, .handler = &CmdSync, .group = "server", .summary = "An internal command used in replication.", .since = "1.0.0"});
  registry.Add({.name = "psync", .arity = -3, .flags = kAdmin | kNoScript | kNoMulti, .acl = kAdminAcl, .handler = &CmdSync, .group = "server", .summary = "An internal command used in replication.", .since = "2.8.0"});
  registry.Add({.name = "replconf", .arity = -1, .flags = kAdmin | kNoScript | kLoading | kStale, .acl = kAdminAcl, .handler = &CmdReplconf, .group = "server", .summary = "An internal command for configuring the replication stream.", .since = "3.0.0", .complexity = "O(1)"});
  // clang-format on
}

}  // namespace lattice::server
