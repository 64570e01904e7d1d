// The CRDT.* commands: what an operator of an active-active shard needs beyond Valkey's set.
//   CRDT.STATUS                  this replica, its vectors, its op log and every peer
//   CRDT.PEER ADD host:port      dial another region's replication port (not persisted by itself:
//                                CONFIG REWRITE writes the dialed peers as `peer` lines)
//   CRDT.PEER REMOVE host:port   stop dialing it, close its link, stop holding back compaction
//   CRDT.PEER LIST               the configured addresses and the replica behind each
//   CRDT.POLICY SET|GET|LIST|DEL conflict rules by key pattern and type (server/policy_table.h)
//   CRDT.WAIT regions timeout    block until `regions` other regions applied this client's last
//                                write (or the timeout, ms; 0 = forever); replies the count
// Replies are maps (RESP3) or flat key/value arrays (RESP2), as CLUSTER SHARDS replies.

#include <algorithm>

#include "fmt/format.h"
#include "server/replica_of.h"
#include "server/server.h"
#include "store/replication.h"

namespace lattice::server {
namespace {

constexpr std::string_view kNotRunning = "ERR replication is not running on this node";

void Field(ReplyBuilder& reply, std::string_view name, std::string_view value) {
  reply.Bulk(name);
  reply.Bulk(value);
}
void Field(ReplyBuilder& reply, std::string_view name, int64_t value) {
  reply.Bulk(name);
  reply.Integer(value);
}

// The address configured for `replica`, "" if it dialed us or is not configured.
std::string AddressOf(const PeerDirectory* directory, ReplicaId replica) {
  if (directory == nullptr) return "";
  for (const PeerDirectory::Address& address : directory->Addresses()) {
    if (address.replica == replica) return address.address;
  }
  return "";
}

void CmdCrdtStatus(CommandContext& ctx, ArgList /*args*/) {
  Replication* replication = ctx.server.replication();
  if (replication == nullptr) {
    ctx.reply.Error(kNotRunning);
    return;
  }
  const repl::ReplicatorStatus status = replication->Status(ctx.now_ms);
  const ReplicationStats& stats = replication->stats();
  const ReplicationOptions& options = replication->options();
  ReplyBuilder& reply = ctx.reply;
  reply.Map(13);
  Field(reply, "replica_id", ReplicaIdText(status.replica));
  Field(reply, "region", status.region);
  Field(reply, "shard_id", options.shard_id);
  Field(reply, "applied", VectorText(status.applied));
  Field(reply, "stable", VectorText(status.stable));
  Field(reply, "backlog_ops", static_cast<int64_t>(status.backlog_ops));
  Field(reply, "buffered_ops", static_cast<int64_t>(status.buffered_ops));
  Field(reply, "duplicate_ops", static_cast<int64_t>(status.duplicate_ops));
  Field(reply, "appendfsync", repl::FsyncPolicyName(options.fsync));
  Field(reply, "log_records", static_cast<int64_t>(stats.log_records));
  Field(reply, "log_bytes", static_cast<int64_t>(stats.log_bytes));
  Field(reply, "snapshots_written", static_cast<int64_t>(stats.snapshots_written));
  reply.Bulk("peers");
  reply.Array(status.peers.size());
  const PeerDirectory* directory = replication->peer_directory();
  for (const repl::PeerStatus& peer : status.peers) {
    reply.Map(13);
    Field(reply, "replica_id", ReplicaIdText(peer.replica));
    Field(reply, "region", peer.region);
    Field(reply, "address", AddressOf(directory, peer.replica));
    Field(reply, "state", repl::PeerStateName(peer.state));
    Field(reply, "acked", VectorText(peer.acked));
    Field(reply, "lag_ops", static_cast<int64_t>(peer.lag_ops));
    Field(reply, "lag_ms", peer.lag_ms);
    Field(reply, "bytes_in",
          directory ? static_cast<int64_t>(directory->BytesIn(peer.replica)) : 0);
    Field(reply, "bytes_out",
          directory ? static_cast<int64_t>(directory->BytesOut(peer.replica)) : 0);
    Field(reply, "ops_sent", static_cast<int64_t>(peer.ops_sent));
    Field(reply, "ops_received", static_cast<int64_t>(peer.ops_received));
    Field(reply, "snapshots_sent", static_cast<int64_t>(peer.snapshots_sent));
    Field(reply, "last_error", peer.last_error);
  }
}

PeerDirectory* DirectoryOrError(CommandContext& ctx) {
  Replication* replication = ctx.server.replication();
  if (replication == nullptr || replication->peer_directory() == nullptr) {
    ctx.reply.Error(kNotRunning);
    return nullptr;
  }
  return replication->peer_directory();
}

// Which regions this one replicates with is as dangerous as `dir`: a peer receives every write.
// Adding or removing one at runtime is a protected action, as enable-protected-configs says.
bool PeerChangeAllowed(CommandContext& ctx, std::string_view what) {
  if (ProtectedActionAllowed(ctx.server.config().enable_protected_configs(), ctx.client.is_local)) {
    return true;
  }
  ctx.reply.Error(ProtectedActionError(what, "enable-protected-configs"));
  return false;
}

void CmdCrdtPeerAdd(CommandContext& ctx, ArgList args) {
  if (!PeerChangeAllowed(ctx, "CRDT.PEER ADD")) return;
  PeerDirectory* directory = DirectoryOrError(ctx);
  if (directory == nullptr) return;
  if (Result<void> added = directory->AddAddress(std::string(args[2])); !added.ok()) {
    const std::string& message = added.error().message;
    ctx.reply.Error(message.starts_with("ERR ") ? message : "ERR " + message);
    return;
  }
  ctx.reply.Ok();
}

void CmdCrdtPeerRemove(CommandContext& ctx, ArgList args) {
  if (!PeerChangeAllowed(ctx, "CRDT.PEER REMOVE")) return;
  PeerDirectory* directory = DirectoryOrError(ctx);
  if (directory == nullptr) return;
  Result<ReplicaId> removed = directory->RemoveAddress(std::string(args[2]));
  if (!removed.ok()) {
    ctx.reply.Error(removed.error());
    return;
  }
  if (*removed != kNoReplica) {
    ctx.server.replication()->RemovePeer(*removed);
  }
  ctx.reply.Ok();
}

void CmdCrdtPeerList(CommandContext& ctx, ArgList /*args*/) {
  PeerDirectory* directory = DirectoryOrError(ctx);
  if (directory == nullptr) return;
  const std::vector<PeerDirectory::Address> addresses = directory->Addresses();
  ctx.reply.Array(addresses.size());
  for (const PeerDirectory::Address& address : addresses) {
    ctx.reply.Map(4);
    Field(ctx.reply, "address", address.address);
    Field(ctx.reply, "replica_id",
          address.replica == kNoReplica ? std::string() : ReplicaIdText(address.replica));
    Field(ctx.reply, "state", address.state);
    Field(ctx.reply, "last_error", address.last_error);
  }
}

// A WAIT-style timeout in milliseconds, as Valkey's getTimeoutFromObjectOrReply: the deadline,
// 0 for none (a timeout of 0), or the error to reply.
Result<int64_t> ParseWaitDeadline(std::string_view text, int64_t now_ms) {
  int64_t timeout_ms = 0;
  if (!ParseInt64(text, &timeout_ms)) {
    return Unexpected(std::string("ERR timeout is not an integer or out of range"));
  }
  if (timeout_ms < 0) {
    return Unexpected(std::string("ERR timeout is negative"));
  }
  if (timeout_ms > 0 && timeout_ms > INT64_MAX - now_ms) {
    return Unexpected(std::string("ERR timeout is out of range"));
  }
  return timeout_ms == 0 ? 0 : now_ms + timeout_ms;
}

// Replies at once with `reply` when `done` holds or the client may not block (MULTI, scripts);
// otherwise blocks it (server/blocking.h) until `done` holds -- acknowledgements and log syncs
// wake the kAcks channel -- or the deadline passes, then replies the same way. CLIENT UNBLOCK
// ends the wait with the current reply, as Valkey's WAIT.
void WaitUntil(CommandContext& ctx, ArgList args, int64_t deadline_ms,
               std::function<bool(CommandContext&)> done,
               std::function<void(CommandContext&)> reply) {
  if (done(ctx) || !ctx.server.MayBlock()) {
    reply(ctx);
    return;
  }
  BlockRequest request{.channel = BlockChannel::kAcks, .deadline_ms = deadline_ms};
  request.serve = [done, reply](CommandContext& c) {
    if (!done(c)) return false;
    reply(c);
    return true;
  };
  request.timed_out = reply;
  ctx.server.blocking().Block(ctx, args, std::move(request));
}

// How many other regions acknowledged the client's last write.
int64_t RegionsHavingLastWrite(CommandContext& ctx) {
  return ctx.server.replication()->RegionsHaving(ctx.client.last_write_seq);
}

// CRDT.WAIT regions timeout-ms: like WAIT, for regions; refused inside MULTI and scripts.
// WAIT numreplicas timeout-ms: Valkey's WAIT with the other regions of the shard as the
// replicas (docs/commands/crdt.md): a region counts once it acknowledged the client's last
// write (applied it and wrote it to its op log). Never blocks inside MULTI or a script.
void CmdWait(CommandContext& ctx, ArgList args) {
  const bool crdt = !EqualsIgnoreCase(args[0], "wait");
  if (!crdt && ctx.server.replica_of().following()) {
    ctx.reply.Error(
        "ERR WAIT cannot be used with replica instances. Please also note that since Redis 4.0 "
        "if a replica is configured to be writable (which is not the default) writes to "
        "replicas are just local and are not propagated.");
    return;
  }
  int64_t regions = 0;
  if (!ParseInt64(args[1], &regions)) {
    ctx.reply.Error(errors::kNotInteger);
    return;
  }
  const Result<int64_t> deadline = ParseWaitDeadline(args[2], ctx.now_ms);
  if (!deadline.ok()) {
    ctx.reply.Error(deadline.error());
    return;
  }
  if (ctx.server.replication() == nullptr) {
    ctx.reply.Error(kNotRunning);
    return;
  }
  WaitUntil(
      ctx, args, *deadline,
      [regions](CommandContext& c) { return RegionsHavingLastWrite(c) >= regions; },
      [](CommandContext& c) { c.reply.Integer(RegionsHavingLastWrite(c)); });
}

// WAITAOF numlocal numreplicas timeout-ms: [1 once this region's op log is synced past the
// client's last write, the regions that acknowledged it]. A WAITAOF waiting on the local sync
// asks for one at the end of this turn (not the next everysec tick).
void CmdWaitAof(CommandContext& ctx, ArgList args) {
  int64_t numlocal = 0;
  int64_t numreplicas = 0;
  for (auto [arg, out] : {std::pair{args[1], &numlocal}, std::pair{args[2], &numreplicas}}) {
    if (!ParseInt64(arg, out)) {
      ctx.reply.Error(errors::kNotInteger);
      return;
    }
    if (*out < 0) {
      ctx.reply.Error("ERR value is out of range, must be positive");
      return;
    }
  }
  Result<int64_t> deadline = ParseWaitDeadline(args[3], ctx.now_ms);
  if (!deadline.ok()) {
    ctx.reply.Error(deadline.error());
    return;
  }
  if (ctx.server.replication() == nullptr) {
    ctx.reply.Error(kNotRunning);
    return;
  }
  if (ctx.server.replica_of().following()) {
    ctx.reply.Error(
        "ERR WAITAOF cannot be used with replica instances. Please also note that writes to "
        "replicas are just local and are not propagated.");
    return;
  }
  const auto local = [](CommandContext& c) -> int64_t {
    return c.server.replication()->LocalSyncedSeq() >= c.client.last_write_seq ? 1 : 0;
  };
  if (numlocal > local(ctx)) {
    ctx.server.replication()->RequestSync();
  }
  WaitUntil(
      ctx, args, *deadline,
      [=](CommandContext& c) {
        return local(c) >= numlocal && RegionsHavingLastWrite(c) >= numreplicas;
      },
      [=](CommandContext& c) {
        c.reply.Array(2);
        c.reply.Integer(local(c));
        c.reply.Integer(RegionsHavingLastWrite(c));
      });
}

// ---- CRDT.CONFLICTS ---------------------------------------------------------------------------

// CRDT.CONFLICTS [COUNT n] | RESET
void CmdCrdtConflicts(CommandContext& ctx, ArgList args) {
  ConflictLog& log = ctx.keyspace().conflicts();
  size_t count = 10;
  if (args.size() == 2 && EqualsIgnoreCase(args[1], "reset")) {
    log.Reset();
    ctx.reply.Ok();
    return;
  }
  if (args.size() == 3 && EqualsIgnoreCase(args[1], "count")) {
    int64_t n = 0;
    if (!ParseInt64(args[2], &n) || n < 0) {
      ctx.reply.Error(errors::kNotInteger);
      return;
    }
    count = static_cast<size_t>(n);
  } else if (args.size() != 1) {
    ctx.reply.Error(errors::kSyntax);
    return;
  }
  const std::vector<Conflict> recent = log.Recent(count);
  // Regions are named beside replica ids: this region for a local write, a peer's from its Hello
  // ("" for a replica that is no longer linked).
  std::vector<std::pair<ReplicaId, std::string>> regions;
  if (const Replication* replication = ctx.server.replication()) {
    const repl::ReplicatorStatus status = replication->Status(ctx.now_ms);
    regions.emplace_back(kNoReplica, status.region);
    regions.emplace_back(status.replica, status.region);
    for (const repl::PeerStatus& peer : status.peers)
      regions.emplace_back(peer.replica, peer.region);
  }
  const auto region_of = [&regions](ReplicaId replica) {
    for (const auto& [id, name] : regions) {
      if (id == replica) return name;
    }
    return std::string();
  };
  ctx.reply.Array(recent.size());
  for (const Conflict& c : recent) {
    ctx.reply.Map(14);
    Field(ctx.reply, "time_ms", c.time_ms);
    Field(ctx.reply, "db", c.db);
    Field(ctx.reply, "key", c.key);
    Field(ctx.reply, "field", c.field);
    Field(ctx.reply, "type", c.type);
    Field(ctx.reply, "rule", c.rule);
    Field(ctx.reply, "winner",
          c.winner == kNoReplica ? std::string("local") : ReplicaIdText(c.winner));
    Field(ctx.reply, "winner_region", region_of(c.winner));
    Field(ctx.reply, "winner_hlc", static_cast<int64_t>(c.winner_hlc));
    Field(ctx.reply, "winner_value", c.winner_value);
    Field(ctx.reply, "loser",
          c.loser == kNoReplica ? std::string("local") : ReplicaIdText(c.loser));
    Field(ctx.reply, "loser_region", region_of(c.loser));
    Field(ctx.reply, "loser_hlc", static_cast<int64_t>(c.loser_hlc));
    Field(ctx.reply, "loser_value", c.loser_value);
  }
}

// ---- CRDT.POLICY ----------------------------------------------------------------------------

std::string Lower(std::string_view text) {
  std::string out;
  return std::string(AsciiLower(text, out));
}

void CmdCrdtPolicySet(CommandContext& ctx, ArgList args) {
  Result<void> set =
      ctx.keyspace().SetPolicy(std::string(args[2]), Lower(args[3]), Lower(args[4]), ctx.now_ms);
  if (!set.ok()) {
    ctx.reply.Error(set.error());
    return;
  }
  ctx.reply.Ok();
}

void CmdCrdtPolicyDel(CommandContext& ctx, ArgList args) {
  ctx.reply.Integer(ctx.keyspace().DelPolicy(std::string(args[2]), Lower(args[3]), ctx.now_ms));
}

void CmdCrdtPolicyGet(CommandContext& ctx, ArgList args) {
  std::vector<PolicyChoice> why;
  (void)ctx.keyspace().policy_table().For(args[2], &why);
  ctx.reply.Array(why.size());
  for (const PolicyChoice& choice : why) {
    ctx.reply.Map(3);
    Field(ctx.reply, "type", choice.type);
    Field(ctx.reply, "rule", choice.rule);
    Field(ctx.reply, "pattern", choice.pattern.empty() ? "(default)" : choice.pattern);
  }
}

void CmdCrdtPolicyList(CommandContext& ctx, ArgList /*args*/) {
  const std::vector<PolicyEntry> entries = ctx.keyspace().policy_table().List();
  ctx.reply.Array(entries.size());
  for (const PolicyEntry& entry : entries) {
    ctx.reply.Map(4);
    Field(ctx.reply, "pattern", entry.pattern);
    Field(ctx.reply, "type", entry.type);
    Field(ctx.reply, "rule", entry.rule);
    Field(ctx.reply, "source", entry.from_config ? "config" : "runtime");
  }
}

void CmdCrdtPolicyHelp(CommandContext& ctx, ArgList /*args*/) {
  ReplyHelp(
      ctx,
      {"CRDT.POLICY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
       "SET <pattern> <type> <rule>",
       "    Bind keys matching <pattern> to <rule> for <type>; replicated to every region.",
       "    string: counter|lww, hash: counter|lww, set: add-wins|remove-wins,",
       "    zset: add-wins|remove-wins, expiry: lww|longest|shortest,",
       "    type: newest-creator-wins|fixed-precedence.", "GET <key>",
       "    The rules in force for <key>, per type, and the pattern that chose each.", "LIST",
       "    Every policy entry, from the config file and set at runtime.", "DEL <pattern> <type>",
       "    Remove a runtime entry; replicated.", "HELP", "    Print this help."});
}

void CmdCrdtPeerHelp(CommandContext& ctx, ArgList /*args*/) {
  ReplyHelp(
      ctx, {"CRDT.PEER <subcommand> [<arg> [value] [opt] ...]. Subcommands are:", "ADD <host:port>",
            "    Dial the replication port of another region of this shard.", "REMOVE <host:port>",
            "    Stop dialing it and close its link.", "LIST",
            "    Return the configured peer addresses and the replica behind each.", "HELP",
            "    Print this help."});
}

}  // namespace

void RegisterCrdtFamily(CommandRegistry& registry) {
  // clang-format off
  constexpr uint32_t kAdminFlags = kAdmin | kNoScript | kLoading | kStale;
  constexpr uint32_t kAdminAcl = kAclAdmin | kAclSlow | kAclDangerous;
  registry.Add({.name = "crdt.status", .arity = 1, .flags = kLoading | kStale, .acl = kAclRead | kAclSlow,
                .handler = &CmdCrdtStatus, .group = "server",
                .summary = "Returns this replica's replication state: vectors, op log and peers.",
                .since = "0.1.0"});
  registry.Add({.name = "crdt.wait", .arity = 3, .flags = kNoScript | kNoMulti, .acl = kAclSlow | kAclConnection,
                .handler = &CmdWait, .group = "server",
                .summary = "Blocks until the client's last write is acknowledged by that many other regions, or the timeout.",
                .since = "0.1.0"});
  registry.Add({.name = "wait", .arity = 3, .flags = kBlocking, .acl = kAclSlow | kAclConnection,
                .handler = &CmdWait, .group = "generic",
                .summary = "Blocks until the asynchronous replication of all preceding write commands sent by the connection is completed.",
                .since = "3.0.0", .complexity = "O(1)"});
  registry.Add({.name = "waitaof", .arity = 4, .flags = kBlocking, .acl = kAclSlow | kAclConnection,
                .handler = &CmdWaitAof, .group = "generic",
                .summary = "Blocks until all of the preceding write commands sent by the connection are written to the append-only file of the primary and/or replicas.",
                .since = "7.2.0", .complexity = "O(1)"});
  // Admin: it shows winning and losing values of any key, past users' key patterns.
  registry.Add({.name = "crdt.conflicts", .arity = -1, .flags = kLoading | kStale, .acl = kAdminAcl,
                .handler = &CmdCrdtConflicts, .group = "server",
                .summary = "Returns the most recent conflicts the merge rules decided, or resets them.",
                .since = "0.1.0"});
  registry.Add({.name = "crdt.policy", .arity = -2, .acl = kAclSlow, .group = "server",
                .summary = "A container for conflict policy commands.", .since = "0.1.0",
                .subcommands = {
      {.name = "set", .arity = 5, .flags = kAdminFlags | kWrite, .acl = kAdminAcl, .handler = &CmdCrdtPolicySet, .group = "server", .summary = "Binds a key pattern and a data type to a conflict rule.", .since = "0.1.0"},
      {.name = "get", .arity = 3, .flags = kLoading | kStale, .acl = kAclRead | kAclSlow, .handler = &CmdCrdtPolicyGet, .group = "server", .summary = "Returns the conflict rules in force for a key and why.", .since = "0.1.0"},
      {.name = "list", .arity = 2, .flags = kLoading | kStale, .acl = kAclRead | kAclSlow, .handler = &CmdCrdtPolicyList, .group = "server", .summary = "Lists the conflict policy entries.", .since = "0.1.0"},
      {.name = "del", .arity = 4, .flags = kAdminFlags | kWrite, .acl = kAdminAcl, .handler = &CmdCrdtPolicyDel, .group = "server", .summary = "Removes a conflict policy entry.", .since = "0.1.0"},
      {.name = "help", .arity = 2, .flags = kLoading | kStale, .acl = kAclSlow, .handler = &CmdCrdtPolicyHelp, .group = "server", .summary = "Returns helpful text about the different subcommands.", .since = "0.1.0"},
  }});
  registry.Add({.name = "crdt.peer", .arity = -2, .acl = kAclSlow, .group = "server",
                .summary = "A container for peer region commands.", .since = "0.1.0",
                .subcommands = {
      {.name = "add", .arity = 3, .flags = kAdminFlags, .acl = kAdminAcl, .handler = &CmdCrdtPeerAdd, .group = "server", .summary = "Dials the replication port of another region of this shard.", .since = "0.1.0"},
      {.name = "remove", .arity = 3, .flags = kAdminFlags, .acl = kAdminAcl, .handler = &CmdCrdtPeerRemove, .group = "server", .summary = "Stops replicating with a peer address.", .since = "0.1.0"},
      {.name = "list", .arity = 2, .flags = kAdminFlags, .acl = kAdminAcl, .handler = &CmdCrdtPeerList, .group = "server", .summary = "Lists the configured peer addresses.", .since = "0.1.0"},
      {.name = "help", .arity = 2, .flags = kLoading | kStale, .acl = kAclSlow, .handler = &CmdCrdtPeerHelp, .group = "server", .summary = "Returns helpful text about the different subcommands.", .since = "0.1.0"},
  }});
  // clang-format on
}

}  // namespace lattice::server
