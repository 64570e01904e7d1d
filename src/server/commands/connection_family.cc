// Connection commands: PING, ECHO, HELLO, AUTH, SELECT, QUIT, RESET and CLIENT. They touch only
// the calling client's state (and, for CLIENT KILL/LIST, the server's index of clients).

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>

#include "server/server.h"
#include "server/tracking.h"

namespace lattice::server {
namespace {

// Client names and library attributes: printable ASCII without spaces (Valkey's rule).
bool ValidClientAttribute(std::string_view value) {
  for (char c : value) {
    if (c < '!' || c > '~') {
      return false;
    }
  }
  return true;
}

// AUTH and HELLO AUTH: on success the client becomes `name`; a failure goes to the ACL LOG.
bool Authenticate(CommandContext& ctx, std::string_view command, std::string_view name,
                  std::string_view password) {
  const AclUser* user = ctx.server.acl().Authenticate(name, password);
  if (user == nullptr) {
    ctx.server.LogAclDenial(ctx.client, AclDenial::kAuth, std::string(command), std::string(name));
    return false;
  }
  ctx.client.authenticated = true;
  ctx.client.user = user->name;
  ctx.client.acl_user = user;
  return true;
}

void CmdPing(CommandContext& ctx, ArgList args) {
  if (args.size() > 2) {
    ctx.reply.Error(errors::WrongArity("ping"));
  } else if (ctx.client.subscribed() && ctx.client.protocol == Protocol::kResp2) {
    ctx.reply.Array(2);  // subscribed mode: ["pong", message or ""]
    ctx.reply.Bulk("pong");
    ctx.reply.Bulk(args.size() == 2 ? args[1] : "");
  } else if (args.size() == 2) {
    ctx.reply.Bulk(args[1]);
  } else {
    ctx.reply.SimpleString("PONG");
  }
}

void CmdEcho(CommandContext& ctx, ArgList args) { ctx.reply.Bulk(args[1]); }

void CmdAuth(CommandContext& ctx, ArgList args) {
  if (args.size() > 3) {
    ctx.reply.Error(errors::kSyntax);
    return;
  }
  if (args.size() == 2 && ctx.server.acl().default_user().nopass) {
    ctx.reply.Error(
        "ERR AUTH <password> called without any password configured for the default user. "
        "Are you sure your configuration is correct?");
    return;
  }
  const std::string_view user = args.size() == 3 ? args[1] : std::string_view("default");
  if (!Authenticate(ctx, args[0], user, args.back())) {
    ctx.reply.Error(errors::kWrongPass);
    return;
  }
  ctx.reply.Ok();
}

void ReplyHello(CommandContext& ctx) {
  ReplyBuilder& reply = ctx.reply;
  reply.Map(7);
  reply.Bulk("server");
  reply.Bulk("valkey");
  reply.Bulk("version");
  reply.Bulk(kValkeyVersion);
  reply.Bulk("proto");
  reply.Integer(static_cast<int64_t>(ctx.client.protocol));
  reply.Bulk("id");
  reply.Integer(static_cast<int64_t>(ctx.client.id));
  reply.Bulk("mode");
  reply.Bulk(ctx.server.config().cluster_enabled() ? "cluster" : "standalone");
  reply.Bulk("role");
  reply.Bulk("master");
  reply.Bulk("modules");
  reply.Array(0);
}

void CmdHello(CommandContext& ctx, ArgList args) {
  int64_t version = static_cast<int64_t>(ctx.client.protocol);
  if (args.size() >= 2) {
    if (!ParseInt64(args[1], &version)) {
      ctx.reply.Error("ERR Protocol version is not an integer or out of range");
      return;
    }
    if (version < 2 || version > 3) {
      ctx.reply.Error("NOPROTO unsupported protocol version");
      return;
    }
  }
  std::string_view user, password, name;
  bool has_auth = false, has_name = false;
  for (size_t i = 2; i < args.size(); ++i) {
    const size_t more = args.size() - i - 1;
    if (EqualsIgnoreCase(args[i], "auth") && more >= 2) {
      user = args[i + 1];
      password = args[i + 2];
      has_auth = true;
      i += 2;
    } else if (EqualsIgnoreCase(args[i], "setname") && more >= 1) {
      name = args[i + 1];
      has_name = true;
      i += 1;
    } else {
      ctx.reply.Error("ERR Syntax error in HELLO option '" + std::string(args[i]) + "'");
      return;
    }
  }
  if (!has_auth && !ctx.client.authenticated) {
    ctx.reply.Error(
        "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO "
        "<proto> AUTH <user> <pass> option can be used to authenticate the client and select the "
        "RESP protocol version at the same time");
    return;
  }
  if (has_auth && !Authenticate(ctx, args[0], user, password)) {
    ctx.reply.Error(errors::kWrongPass);
    return;
  }
  if (has_name && !ValidClientAttribute(name)) {
    ctx.reply.Error("ERR Client names cannot contain spaces, newlines or special characters.");
    return;
  }
  if (has_name) {
    ctx.client.name = std::string(name);
  }
  ctx.client.protocol = static_cast<Protocol>(version);
  ctx.reply.set_protocol(ctx.client.protocol);
  ReplyHello(ctx);
}

void CmdSelect(CommandContext& ctx, ArgList args) {
  int64_t db = 0;
  if (!ParseInt64(args[1], &db)) {
    ctx.reply.Error(errors::kNotInteger);
    return;
  }
  if (db < 0 || db >= ctx.server.config().databases()) {
    ctx.reply.Error("ERR DB index is out of range");
    return;
  }
  ctx.client.db = static_cast<int>(db);
  ctx.reply.Ok();
}

void CmdQuit(CommandContext& ctx, ArgList /*args*/) {
  ctx.client.close_after_reply = true;
  ctx.reply.Ok();
}

void CmdReset(CommandContext& ctx, ArgList /*args*/) {
  ClientState& client = ctx.client;
  client.in_multi = false;
  client.multi_dirty = false;
  client.queued.clear();
  ctx.server.Unwatch(client);
  ctx.server.pubsub().UnsubscribeAll(client);
  ctx.server.tracking().Disable(client);
  client.db = 0;
  client.name.clear();
  client.protocol = Protocol::kResp2;
  ctx.reply.set_protocol(Protocol::kResp2);
  client.authenticated = !ctx.server.auth_required();
  client.user = "default";
  client.acl_user = nullptr;
  ctx.reply.SimpleString("RESET");
}

// ---- CLIENT ----------------------------------------------------------------------------------

// Valkey's flags letters that apply: x in MULTI, d when a WATCHed key changed; N for none.
std::string ClientFlags(const Server& server, const ClientState& client) {
  std::string flags;
  if (client.subscribed()) flags += 'P';
  if (client.in_multi) flags += 'x';
  if (server.blocking().IsBlocked(&client)) flags += 'b';
  if (client.watch_dirty) flags += 'd';
  if (client.tracking.on) flags += 't';
  if (client.tracking.broken_redirect) flags += 'R';
  if (client.tracking.bcast) flags += 'B';
  if (client.no_evict) flags += 'e';
  return flags.empty() ? "N" : flags;
}

size_t ArgsBytes(const std::vector<std::string>& args) {
  size_t bytes = 0;
  for (const std::string& arg : args) bytes += arg.size();
  return bytes;
}

}  // namespace

// Memory fields as Lattice accounts them: argv-mem is a command held for a paused slot, multi-mem
// the queued MULTI commands, tot-mem those plus the pending query buffer, the WATCHed key names
// and the client's own state and pending replies. The pending replies are shown as Valkey's
// buffers would hold them: the first 16 KiB in its reply buffer (obl), the rest in a list of
// 16 KiB blocks (oll blocks, omem bytes).
std::string ClientInfoLine(const Server& server, const ClientState& client) {
  constexpr size_t kReplyChunk = 16 * 1024;  // Valkey's PROTO_REPLY_CHUNK_BYTES
  const size_t output_bytes = client.output_bytes ? client.output_bytes() : 0;
  const size_t obl = std::min(output_bytes, kReplyChunk);
  const size_t omem = output_bytes - obl;
  const size_t oll = (omem + kReplyChunk - 1) / kReplyChunk;
  const int64_t now_ms = server.clock().NowMs();
  size_t multi_bytes = 0;
  for (const std::vector<std::string>& queued : client.queued) multi_bytes += ArgsBytes(queued);
  size_t watched_bytes = 0;
  for (const ClientState::WatchedKey& watched : client.watched) watched_bytes += watched.key.size();
  const size_t argv_bytes = ArgsBytes(client.paused_command);
  const size_t total_bytes = sizeof(ClientState) + client.query_buffer_bytes + argv_bytes +
                             multi_bytes + watched_bytes + output_bytes;
  std::string line;
  line.reserve(320);
  line += "id=" + std::to_string(client.id);
  line += " addr=" + client.addr + " laddr=" + client.laddr;
  line += " fd=" + std::to_string(client.fd) + " name=" + client.name;
  line += " age=" + std::to_string((now_ms - client.created_ms) / 1000);
  line += " idle=" + std::to_string((now_ms - client.last_interaction_ms) / 1000);
  line += " flags=" + ClientFlags(server, client) + " db=" + std::to_string(client.db);
  line += " sub=" + std::to_string(client.subscriptions[PubSub::kChannel]);
  line += " psub=" + std::to_string(client.subscriptions[PubSub::kPattern]);
  line += " ssub=" + std::to_string(client.subscriptions[PubSub::kShard]);
  line += " multi=";
  line += client.in_multi ? std::to_string(client.queued.size()) : "-1";
  line += " watch=" + std::to_string(client.watched.size());
  line += " qbuf=" + std::to_string(client.query_buffer_bytes) + " qbuf-free=0";
  line += " argv-mem=" + std::to_string(argv_bytes);
  line += " multi-mem=" + std::to_string(multi_bytes);
  line += " rbs=16384 rbp=0 obl=" + std::to_string(obl) + " oll=" + std::to_string(oll);
  line += " omem=" + std::to_string(omem) + " tot-mem=" + std::to_string(total_bytes);
  line += " events=r cmd=" + client.last_command + " user=" + client.user;
  line += " redir=";
  line += client.tracking.on ? std::to_string(client.tracking.redirect) : "-1";
  line += " resp=" + std::to_string(static_cast<int>(client.protocol));
  line += " lib-name=" + client.lib_name + " lib-ver=" + client.lib_ver;
  line += " tot-net-in=" + std::to_string(client.net_input_bytes);
  line += " tot-net-out=" + std::to_string(client.net_output_bytes);
  line += " tot-cmds=" + std::to_string(client.commands_processed);
  return line;
}

namespace {

void CmdClientId(CommandContext& ctx, ArgList /*args*/) {
  ctx.reply.Integer(static_cast<int64_t>(ctx.client.id));
}

void CmdClientSetName(CommandContext& ctx, ArgList args) {
  if (!ValidClientAttribute(args[2])) {
    ctx.reply.Error("ERR Client names cannot contain spaces, newlines or special characters.");
    return;
  }
  ctx.client.name = std::string(args[2]);
  ctx.reply.Ok();
}

void CmdClientGetName(CommandContext& ctx, ArgList /*args*/) {
  if (ctx.client.name.empty()) {
    ctx.reply.Null();
  } else {
    ctx.reply.Bulk(ctx.client.name);
  }
}

void CmdClientSetInfo(CommandContext& ctx, ArgList args) {
  const bool lib_name = EqualsIgnoreCase(args[2], "lib-name");
  if (!lib_name && !EqualsIgnoreCase(args[2], "lib-ver")) {
    ctx.reply.Error("ERR Unrecognized option '" + std::string(args[2]) + "'");
    return;
  }
  if (!ValidClientAttribute(args[3])) {
    ctx.reply.Error("ERR " + std::string(lib_name ? "lib-name" : "lib-ver") +
                    " cannot contain spaces, newlines or special characters.");
    return;
  }
  (lib_name ? ctx.client.lib_name : ctx.client.lib_ver) = std::string(args[3]);
  ctx.reply.Ok();
}

void CmdClientInfo(CommandContext& ctx, ArgList /*args*/) {
  ctx.reply.Verbatim(ClientInfoLine(ctx.server, ctx.client) + "\n");
}

void CmdClientList(CommandContext& ctx, ArgList args) {
  std::vector<uint64_t> ids;
  std::optional<char> wanted;  // a TYPE: 'N' normal, 'P' pubsub, 0 none of the clients
  for (size_t i = 2; i < args.size(); ++i) {
    if (EqualsIgnoreCase(args[i], "type") && i + 1 < args.size()) {
      const std::string_view type = args[++i];
      if (!EqualsIgnoreCase(type, "normal") && !EqualsIgnoreCase(type, "master") &&
          !EqualsIgnoreCase(type, "replica") && !EqualsIgnoreCase(type, "slave") &&
          !EqualsIgnoreCase(type, "pubsub")) {
        ctx.reply.Error("ERR Unknown client type '" + std::string(type) + "'");
        return;
      }
      // pubsub: the clients with subscriptions; normal: the others; no replicas or masters.
      wanted = EqualsIgnoreCase(type, "normal") ? 'N' : EqualsIgnoreCase(type, "pubsub") ? 'P' : 0;
    } else if (EqualsIgnoreCase(args[i], "id") && i + 1 < args.size()) {
      for (++i; i < args.size(); ++i) {
        int64_t id = 0;
        if (!ParseInt64(args[i], &id) || id <= 0) {
          ctx.reply.Error("ERR Invalid client ID");
          return;
        }
        ids.push_back(static_cast<uint64_t>(id));
      }
    } else {
      ctx.reply.Error(errors::kSyntax);
      return;
    }
  }
  std::string text;
  for (const auto& [id, client] : ctx.server.clients()) {
    if (!ids.empty() && std::find(ids.begin(), ids.end(), id) == ids.end()) {
      continue;
    }
    if (wanted.has_value() && *wanted != (client->subscribed() ? 'P' : 'N')) continue;
    text += ClientInfoLine(ctx.server, *client);
    text += '\n';
  }
  ctx.reply.Verbatim(text);
}

struct KillFilter {
  uint64_t id = 0;
  std::string_view addr, laddr, user;
  bool skip_me = true;
  int64_t max_age_s = -1;
  bool Matches(const ClientState& client, const ClientState& me, int64_t now_ms) const {
    if (id != 0 && client.id != id) return false;
    if (!addr.empty() && client.addr != addr) return false;
    if (!laddr.empty() && client.laddr != laddr) return false;
    if (!user.empty() && client.user != user) return false;
    if (skip_me && &client == &me) return false;
    if (max_age_s >= 0 && (now_ms - client.created_ms) / 1000 < max_age_s) return false;
    return true;
  }
};

// Parses the filter form of CLIENT KILL; writes an error and returns false when malformed.
bool ParseKillFilter(CommandContext& ctx, ArgList args, KillFilter* filter) {
  if ((args.size() - 2) % 2 != 0) {
    ctx.reply.Error(errors::kSyntax);
    return false;
  }
  for (size_t i = 2; i + 1 < args.size(); i += 2) {
    const std::string_view option = args[i], value = args[i + 1];
    int64_t number = 0;
    if (EqualsIgnoreCase(option, "id")) {
      if (!ParseInt64(value, &number) || number <= 0) {
        ctx.reply.Error("ERR client-id should be greater than 0");
        return false;
      }
      filter->id = static_cast<uint64_t>(number);
    } else if (EqualsIgnoreCase(option, "addr")) {
      filter->addr = value;
    } else if (EqualsIgnoreCase(option, "laddr")) {
      filter->laddr = value;
    } else if (EqualsIgnoreCase(option, "user")) {
      filter->user = value;
    } else if (EqualsIgnoreCase(option, "skipme") &&
               (EqualsIgnoreCase(value, "yes") || EqualsIgnoreCase(value, "no"))) {
      filter->skip_me = EqualsIgnoreCase(value, "yes");
    } else if (EqualsIgnoreCase(option, "maxage") && ParseInt64(value, &number)) {
      filter->max_age_s = number;
    } else if (EqualsIgnoreCase(option, "type") && EqualsIgnoreCase(value, "normal")) {
      // every Lattice client connection is a normal client
    } else {
      ctx.reply.Error(errors::kSyntax);
      return false;
    }
  }
  return true;
}

// Closes `victim`: oneself after the reply is flushed, another connection at once.
void Kill(ClientState& victim, ClientState& me) {
  if (&victim == &me) {
    me.close_after_reply = true;
    return;
  }
  victim.killed = true;
  if (victim.close_hook) {
    victim.close_hook();
  }
}

void CmdClientKill(CommandContext& ctx, ArgList args) {
  const int64_t now_ms = ctx.server.clock().NowMs();
  if (args.size() == 3) {  // legacy form: CLIENT KILL addr:port
    for (const auto& [id, client] : ctx.server.clients()) {
      if (client->addr == args[2]) {
        Kill(*client, ctx.client);
        ctx.reply.Ok();
        return;
      }
    }
    ctx.reply.Error("ERR No such client");
    return;
  }
  KillFilter filter;
  if (!ParseKillFilter(ctx, args, &filter)) {
    return;
  }
  std::vector<ClientState*> victims;
  for (const auto& [id, client] : ctx.server.clients()) {
    if (filter.Matches(*client, ctx.client, now_ms)) {
      victims.push_back(client);
    }
  }
  for (ClientState* victim : victims) {
    Kill(*victim, ctx.client);
  }
  ctx.reply.Integer(static_cast<int64_t>(victims.size()));
}

// CLIENT UNBLOCK id [TIMEOUT|ERROR]: ends another client's blocking command (server/blocking.h)
// with its timeout reply or an -UNBLOCKED error; 1 when it was blocked, else 0.
void CmdClientUnblock(CommandContext& ctx, ArgList args) {
  bool error = false;
  if (args.size() == 4) {
    error = EqualsIgnoreCase(args[3], "error");
    if (!error && !EqualsIgnoreCase(args[3], "timeout")) {
      ctx.reply.Error("ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR");
      return;
    }
  } else if (args.size() != 3) {
    ctx.reply.Error(errors::kSyntax);
    return;
  }
  int64_t id = 0;
  if (!ParseInt64(args[2], &id)) {
    ctx.reply.Error(errors::kNotInteger);
    return;
  }
  ClientState* target = ctx.server.FindClient(static_cast<uint64_t>(id));
  const bool unblocked =
      target != nullptr &&
      ctx.server.blocking().Unblock(
          target, error ? "UNBLOCKED client unblocked via CLIENT UNBLOCK" : std::string_view());
  ctx.reply.Integer(unblocked ? 1 : 0);
}

// CLIENT PAUSE timeout [WRITE|ALL] (server/client_pause.h): the mode is checked before the
// timeout, as Valkey does; a timeout of 0 pauses nothing.
void CmdClientPause(CommandContext& ctx, ArgList args) {
  bool all = true;
  if (args.size() == 4) {
    if (EqualsIgnoreCase(args[3], "write")) {
      all = false;
    } else if (!EqualsIgnoreCase(args[3], "all")) {
      ctx.reply.Error("ERR CLIENT PAUSE mode must be WRITE or ALL");
      return;
    }
  } else if (args.size() > 4) {
    ctx.reply.Error("ERR unknown subcommand or wrong number of arguments for '" +
                    std::string(args[1].substr(0, 128)) + "'. Try CLIENT HELP.");
    return;
  }
  int64_t timeout_ms = 0;
  if (!ParseInt64(args[2], &timeout_ms)) {
    ctx.reply.Error("ERR timeout is not an integer or out of range");
    return;
  }
  if (timeout_ms < 0) {
    ctx.reply.Error("ERR timeout is negative");
    return;
  }
  if (timeout_ms > INT64_MAX - ctx.now_ms) {
    ctx.reply.Error("ERR timeout is out of range");
    return;
  }
  if (timeout_ms > 0) ctx.server.client_pause().Pause(ctx.now_ms + timeout_ms, all, ctx.now_ms);
  ctx.reply.Ok();
}

void CmdClientUnpause(CommandContext& ctx, ArgList /*args*/) {
  ctx.server.UnpauseClients();
  ctx.reply.Ok();
}

// CLIENT REPLY ON|OFF|SKIP: OFF and SKIP take effect in Server::Execute, which drops the replies
// of the commands they cover: OFF and SKIP reply nothing themselves, SKIP drops the next reply.
void CmdClientReply(CommandContext& ctx, ArgList args) {
  ClientState& client = ctx.client;
  if (EqualsIgnoreCase(args[2], "on")) {
    client.reply_off = false;
    client.reply_skip_next = false;
    ctx.reply.Ok();
  } else if (EqualsIgnoreCase(args[2], "off")) {
    client.reply_off = true;
  } else if (EqualsIgnoreCase(args[2], "skip")) {
    client.reply_skip_next = !client.reply_off;
  } else {
    ctx.reply.Error(errors::kSyntax);
  }
}

// CLIENT NO-EVICT ON|OFF: recorded and shown (flag e); Lattice does not evict clients for
// memory (maxmemory-clients), so it changes nothing else.
void CmdClientNoEvict(CommandContext& ctx, ArgList args) {
  if (EqualsIgnoreCase(args[2], "on")) {
    ctx.client.no_evict = true;
  } else if (EqualsIgnoreCase(args[2], "off")) {
    ctx.client.no_evict = false;
  } else {
    ctx.reply.Error(errors::kSyntax);
    return;
  }
  ctx.reply.Ok();
}

void CmdClientHelp(CommandContext& ctx, ArgList /*args*/) {
  ReplyHelp(ctx, {
                     "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                     "GETNAME",
                     "    Return the name of the current connection.",
                     "ID",
                     "    Return the ID of the current connection.",
                     "INFO",
                     "    Return information about the current client connection.",
                     "KILL <ip:port>",
                     "    Kill connection made from <ip:port>.",
                     "KILL <option> <value> [<option> <value> [...]]",
                     "    Kill connections. Options are: ID, ADDR, LADDR, USER, SKIPME (yes|no), "
                     "TYPE, MAXAGE.",
                     "LIST [TYPE <type>] [ID <id> [<id> ...]]",
                     "    Return information about client connections.",
                     "NO-EVICT (ON|OFF)",
                     "    Protect current client connection from eviction.",
                     "PAUSE <timeout> [WRITE|ALL]",
                     "    Suspend all, or just write, clients for <timeout> milliseconds.",
                     "REPLY (ON|OFF|SKIP)",
                     "    Control the replies sent to the current connection.",
                     "SETINFO <option> <value>",
                     "    Set client meta attr. Options are: LIB-NAME, LIB-VER.",
                     "SETNAME <name>",
                     "    Assign the name <name> to the current connection.",
                     "UNBLOCK <clientid> [TIMEOUT|ERROR]",
                     "    Unblock the specified blocked client.",
                     "UNPAUSE",
                     "    Stop the current client pause, resuming traffic.",
                     "HELP",
                     "    Print this help.",
                 });
}

}  // namespace

void RegisterConnectionFamily(CommandRegistry& registry) {
  // clang-format off
  constexpr uint32_t kConn = kAclConnection;
  registry.Add({.name = "ping", .arity = -1, .flags = kFast | kStale, .acl = kConn | kAclFast,
                .handler = &CmdPing, .group = "connection", .summary = "Returns the server's liveliness response.", .since = "1.0.0"});
  registry.Add({.name = "echo", .arity = 2, .flags = kLoading | kStale | kFast, .acl = kConn | kAclFast,
                .handler = &CmdEcho, .group = "connection", .summary = "Returns the given string.", .since = "1.0.0"});
  registry.Add({.name = "auth", .arity = -2, .flags = kNoScript | kLoading | kStale | kFast | kNoAuth | kAllowBusy,
                .acl = kConn | kAclFast, .handler = &CmdAuth, .group = "connection", .summary = "Authenticates the connection.", .since = "1.0.0"});
  registry.Add({.name = "hello", .arity = -1, .flags = kNoScript | kLoading | kStale | kFast | kNoAuth | kAllowBusy,
                .acl = kConn | kAclFast, .handler = &CmdHello, .group = "connection", .summary = "Handshakes with the server.", .since = "6.0.0"});
  registry.Add({.name = "select", .arity = 2, .flags = kLoading | kStale | kFast, .acl = kConn | kAclFast,
                .handler = &CmdSelect, .group = "connection", .summary = "Changes the selected database.", .since = "1.0.0"});
  registry.Add({.name = "quit", .arity = -1, .flags = kNoScript | kLoading | kStale | kFast | kNoAuth | kAllowBusy,
                .acl = kConn | kAclFast, .handler = &CmdQuit, .group = "connection", .summary = "Closes the connection.", .since = "1.0.0"});
  registry.Add({.name = "reset", .arity = 1, .flags = kNoScript | kLoading | kStale | kFast | kNoAuth | kAllowBusy,
                .acl = kConn | kAclFast, .handler = &CmdReset, .group = "connection", .summary = "Resets the connection.", .since = "6.2.0"});
  constexpr uint32_t kClientFlags = kNoScript | kLoading | kStale;
  CommandSpec client{.name = "client", .arity = -2, .acl = kAclSlow, .group = "connection",
                .summary = "A container for client connection commands.", .since = "2.4.0",
                .subcommands = {
      {.name = "id", .arity = 2, .flags = kClientFlags, .acl = kConn | kAclSlow, .handler = &CmdClientId, .group = "connection", .summary = "Returns the unique client ID of the connection.", .since = "5.0.0"},
      {.name = "setname", .arity = 3, .flags = kClientFlags, .acl = kConn | kAclSlow, .handler = &CmdClientSetName, .group = "connection", .summary = "Sets the connection name.", .since = "2.6.9"},
      {.name = "getname", .arity = 2, .flags = kClientFlags, .acl = kConn | kAclSlow, .handler = &CmdClientGetName, .group = "connection", .summary = "Returns the name of the connection.", .since = "2.6.9"},
      {.name = "setinfo", .arity = 4, .flags = kClientFlags, .acl = kConn | kAclSlow, .handler = &CmdClientSetInfo, .group = "connection", .summary = "Sets information specific to the client or connection.", .since = "7.2.0"},
      {.name = "info", .arity = 2, .flags = kClientFlags, .acl = kConn | kAclSlow, .handler = &CmdClientInfo, .group = "connection", .summary = "Returns information about the connection.", .since = "6.2.0"},
      {.name = "list", .arity = -2, .flags = kAdmin | kClientFlags, .acl = kConn | kAclAdmin | kAclSlow | kAclDangerous, .handler = &CmdClientList, .group = "connection", .summary = "Lists open connections.", .since = "2.4.0"},
      {.name = "kill", .arity = -3, .flags = kAdmin | kClientFlags, .acl = kConn | kAclAdmin | kAclSlow | kAclDangerous, .handler = &CmdClientKill, .group = "connection", .summary = "Terminates open connections.", .since = "2.4.0"},
      {.name = "unblock", .arity = -3, .flags = kAdmin | kClientFlags, .acl = kConn | kAclAdmin | kAclSlow | kAclDangerous, .handler = &CmdClientUnblock, .group = "connection", .summary = "Unblocks a client blocked by a blocking command from a different connection.", .since = "5.0.0"},
      {.name = "pause", .arity = -3, .flags = kAdmin | kClientFlags, .acl = kConn | kAclAdmin | kAclSlow | kAclDangerous, .handler = &CmdClientPause, .group = "connection", .summary = "Suspends commands processing.", .since = "3.0.0"},
      {.name = "unpause", .arity = 2, .flags = kAdmin | kClientFlags, .acl = kConn | kAclAdmin | kAclSlow | kAclDangerous, .handler = &CmdClientUnpause, .group = "connection", .summary = "Resumes processing commands from paused clients.", .since = "6.2.0"},
      {.name = "reply", .arity = 3, .flags = kClientFlags, .acl = kConn | kAclSlow, .handler = &CmdClientReply, .group = "connection", .summary = "Instructs the server whether to reply to commands.", .since = "3.2.0"},
      {.name = "no-evict", .arity = 3, .flags = kAdmin | kClientFlags, .acl = kConn | kAclAdmin | kAclSlow | kAclDangerous, .handler = &CmdClientNoEvict, .group = "connection", .summary = "Sets the client eviction mode of the connection.", .since = "7.0.0"},
      {.name = "help", .arity = 2, .flags = kLoading | kStale, .acl = kConn | kAclSlow, .handler = &CmdClientHelp, .group = "connection", .summary = "Returns helpful text about the different subcommands.", .since = "5.0.0"},
  }};
  for (CommandSpec& tracking : TrackingSubcommands()) client.subcommands.push_back(std::move(tracking));
  registry.Add(std::move(client));
  // clang-format on
}

}  // namespace lattice::server
