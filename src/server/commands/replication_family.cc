// REPLICAOF / SLAVEOF and ROLE: a region following a Valkey or Redis primary (server/replica_of.h).
//
// CRDT notes: what the primary sends is applied as this region's own local writes, so the
// region's peers receive it as ordinary ops; REPLICAOF NO ONE only stops following (nothing is
// flushed). Every region of the shard is a primary in Lattice's sense: ROLE says "master" unless
// this region follows an outside primary.

#include <charconv>
#include <string>

#include "server/replica_of.h"
#include "server/server.h"
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

void CmdRole(CommandContext& ctx, ArgList) {
  const ReplicaOf& replica = ctx.server.replica_of();
  if (!replica.following()) {
    ctx.reply.Array(3);
    ctx.reply.Bulk("master");
    ctx.reply.Integer(0);
    ctx.reply.Array(0);
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
  // clang-format on
}

}  // namespace lattice::server
