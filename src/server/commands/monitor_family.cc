// MONITOR (server/monitor.h): the command, and the Server's feeds of it (every command run, and
// every op applied from another region, marked with the region's name).

#include <string>

#include "fmt/format.h"
#include "server/monitor_feed.h"
#include "server/scripting/script_engine.h"
#include "server/server.h"
#include "store/replication.h"

namespace lattice::server {

namespace {

// The line of one command: "[<db> <addr>]", or "lua" as the address inside a script.
void FeedCommand(Server& server, const ClientState& client, const Command& command, ArgList args) {
  const std::string origin =
      fmt::format("{} {}", client.db, server.scripting().running() ? "lua" : client.addr);
  server.monitors().FeedCommand(server.clock().NowUs(), origin, args, RedactedArgs(command, args));
}

uint32_t FlagsOf(const Command& command) {
  return command.spec.flags | (command.parent != nullptr ? command.parent->spec.flags : 0);
}

}  // namespace

// As Valkey: admin commands are not shown; a script (EVAL, FCALL: flagged skip-monitor) is shown
// before it runs (FeedMonitorsBeforeRun), so that its line comes before those of the commands it
// calls; every other command after it ran.
void Server::FeedMonitors(const ClientState& client, const Command& command, ArgList args) {
  if ((FlagsOf(command) & (kAdmin | kSkipMonitor)) == 0) FeedCommand(*this, client, command, args);
}

void FeedMonitorsBeforeRun(Server& server, const ClientState& client, const Command& command,
                           ArgList args) {
  const uint32_t flags = FlagsOf(command);
  if ((flags & kSkipMonitor) != 0 && (flags & kAdmin) == 0) {
    FeedCommand(server, client, command, args);
  }
}

// The origin region's name as the peer announced it (its replica id before its Hello).
void Server::FeedMonitorsRemoteOp(int db, std::string_view key, const crdt::KeyOp& op) {
  const ReplicaId origin = op.first_dot.replica;
  std::string region = origin == kNoReplica ? "?" : ReplicaIdText(origin);
  if (replication_ != nullptr && origin != kNoReplica) {
    if (std::string named = replication_->PeerRegion(origin); !named.empty()) region = named;
  }
  std::string line = MonitorHead(clock_.NowUs(), fmt::format("{} region:{}", db, region));
  AppendMonitorArg(line, "crdt.apply");
  AppendMonitorArg(line, key);
  AppendMonitorArg(line, TypeName(op.delta.Type()));
  line += "\r\n";
  monitors_.FeedLine(line);
}

namespace {

void CmdMonitor(CommandContext& ctx, ArgList /*args*/) {
  if (!ctx.server.MayBlock()) {
    ctx.reply.Error("ERR MONITOR isn't allowed for DENY BLOCKING client");
    return;
  }
  if (!ctx.server.monitors().Add(&ctx.client)) {
    ctx.reply.Error("ERR MONITOR needs a connection that can receive pushed lines");
    return;
  }
  ctx.reply.Ok();
}

}  // namespace

void RegisterMonitorFamily(CommandRegistry& registry) {
  // clang-format off
  registry.Add({.name = "monitor", .arity = 1, .flags = kAdmin | kNoScript | kLoading | kStale, .acl = kAclAdmin | kAclSlow | kAclDangerous, .handler = &CmdMonitor, .group = "server", .summary = "Listens for all requests received by the server in real-time.", .since = "1.0.0"});
  // clang-format on
}

}  // namespace lattice::server
