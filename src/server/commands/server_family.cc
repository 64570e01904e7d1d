// Server commands: INFO, CONFIG, COMMAND, DBSIZE, FLUSHDB, FLUSHALL, TIME, SHUTDOWN (MEMORY,
// SLOWLOG and LATENCY are in observability_family.cc).

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "server/info.h"
#include "server/server.h"
#include "spdlog/spdlog.h"
#include "store/replication.h"
#include "util/glob.h"

namespace lattice::server {
namespace {

void CmdInfo(CommandContext& ctx, ArgList args) {
  ctx.reply.Verbatim(BuildInfo(ctx.server, args.subspan(1)));
}

void CmdDbSize(CommandContext& ctx, ArgList /*args*/) {
  ctx.reply.Integer(static_cast<int64_t>(ctx.server.DbSize(ctx.client.db)));
}

// FLUSHDB / FLUSHALL [ASYNC|SYNC]: both modes free at once (the keyspace has no lazy free).
bool FlushModeOk(ArgList args) {
  return args.size() == 1 || (args.size() == 2 && (EqualsIgnoreCase(args[1], "async") ||
                                                   EqualsIgnoreCase(args[1], "sync")));
}

void CmdFlushDb(CommandContext& ctx, ArgList args) {
  if (!FlushModeOk(args)) {
    ctx.reply.Error(errors::kSyntax);
    return;
  }
  ctx.server.FlushDb(ctx.client.db);
  ctx.reply.Ok();
}

void CmdFlushAll(CommandContext& ctx, ArgList args) {
  if (!FlushModeOk(args)) {
    ctx.reply.Error(errors::kSyntax);
    return;
  }
  ctx.server.FlushAll();
  ctx.reply.Ok();
}

void CmdTime(CommandContext& ctx, ArgList /*args*/) {
  const int64_t now_us = ctx.server.clock().NowUs();
  ctx.reply.Array(2);
  ctx.reply.Bulk(std::to_string(now_us / 1000000));
  ctx.reply.Bulk(std::to_string(now_us % 1000000));
}

// LOLWUT [VERSION v]: a small drawing of a lattice (a square grid seen along a diagonal), then
// the version line Valkey ends with. Any version draws the same picture.
void CmdLolwut(CommandContext& ctx, ArgList args) {
  if (args.size() >= 3 && EqualsIgnoreCase(args[1], "version")) {
    int64_t version = 0;
    if (!ParseInt64(args[2], &version)) {
      ctx.reply.Error(errors::kNotInteger);
      return;
    }
  }
  constexpr int kRows = 7;
  constexpr int kColumns = 33;
  std::string art;
  for (int row = 0; row < kRows; ++row) {
    for (int column = 0; column < kColumns; ++column) {
      const int up = (column + row) % 4;
      const int down = (column - row + 4 * kRows) % 4;
      art += up == 0 ? '/' : down == 0 ? '\\' : ' ';
    }
    art += '\n';
  }
  ctx.reply.Verbatim(art + "\nValkey ver. " + std::string(kValkeyVersion) + "\n");
}

void CmdShutdown(CommandContext& ctx, ArgList args) {
  for (size_t i = 1; i < args.size(); ++i) {
    const std::string_view option = args[i];
    if (EqualsIgnoreCase(option, "abort")) {
      ctx.reply.Error("ERR No shutdown in progress.");
      return;
    }
    if (!EqualsIgnoreCase(option, "nosave") && !EqualsIgnoreCase(option, "save") &&
        !EqualsIgnoreCase(option, "now") && !EqualsIgnoreCase(option, "force")) {
      ctx.reply.Error(errors::kSyntax);
      return;
    }
  }
  // No reply: as Valkey, the connection closes when the server exits.
  ctx.client.close_after_reply = true;
  ctx.server.RequestShutdown();
}

// ---- CONFIG ----------------------------------------------------------------------------------

void CmdConfigGet(CommandContext& ctx, ArgList args) {
  const auto pairs = ctx.server.config().Get(args.subspan(2));
  ctx.reply.Map(pairs.size());
  for (const auto& [name, value] : pairs) {
    ctx.reply.Bulk(name);
    ctx.reply.Bulk(value);
  }
}

void CmdConfigSet(CommandContext& ctx, ArgList args) {
  if (args.size() % 2 != 0) {
    ctx.reply.Error(errors::WrongArity("config|set"));
    return;
  }
  std::vector<std::pair<std::string_view, std::string_view>> pairs;
  for (size_t i = 2; i + 1 < args.size(); i += 2) {
    pairs.emplace_back(args[i], args[i + 1]);
  }
  Result<void> result = ctx.server.config().Set(pairs, ctx.client.is_local);
  if (!result.ok()) {
    ctx.reply.Error(result.error());
    return;
  }
  for (const auto& [name, value] : pairs) {
    if (EqualsIgnoreCase(name, "requirepass")) ctx.server.acl().SetDefaultPassword(value);
  }
  for (const std::string& name : ctx.server.config().TakeNotApplicableNotices()) {
    spdlog::info("Config '{}' is accepted for compatibility but does not apply to Lattice", name);
  }
  ctx.reply.Ok();
}

// CONFIG REWRITE: the peers are the ones dialed now (config lines plus CRDT.PEER ADD, less
// CRDT.PEER REMOVE), so they survive a restart too.
void CmdConfigRewrite(CommandContext& ctx, ArgList /*args*/) {
  std::vector<std::string> peers;
  const Replication* replication = ctx.server.replication();
  const bool dialing = replication != nullptr && replication->peer_directory() != nullptr;
  if (dialing) {
    for (const PeerDirectory::Address& peer : replication->peer_directory()->Addresses()) {
      peers.push_back(peer.address);
    }
  }
  Result<void> rewritten = ctx.server.config().Rewrite(dialing ? &peers : nullptr);
  if (!rewritten.ok()) {
    spdlog::warn("CONFIG REWRITE failed: {}", rewritten.error().message);
    ctx.reply.Error(rewritten.error().message);
    return;
  }
  spdlog::info("CONFIG REWRITE executed with success.");
  ctx.reply.Ok();
}

void CmdConfigResetStat(CommandContext& ctx, ArgList /*args*/) {
  ctx.server.ResetStats();
  ctx.reply.Ok();
}

void CmdConfigHelp(CommandContext& ctx, ArgList /*args*/) {
  ReplyHelp(
      ctx,
      {"CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:", "GET <pattern>",
       "    Return parameters matching the glob-like <pattern> and their values.",
       "SET <directive> <value>", "    Set the configuration <directive> to <value>.", "RESETSTAT",
       "    Reset statistics reported by the INFO command.", "HELP", "    Print this help."});
}

// ---- COMMAND ---------------------------------------------------------------------------------

void ReplyRangeKeySpec(ReplyBuilder& reply, const Command& command) {
  const KeySpec& keys = command.spec.keys;
  reply.Map(3);
  reply.Bulk("flags");
  reply.Set(1);
  reply.SimpleString((command.spec.flags & kWrite) ? "RW" : "RO");
  reply.Bulk("begin_search");
  reply.Map(2);
  reply.Bulk("type");
  reply.Bulk("index");
  reply.Bulk("spec");
  reply.Map(1);
  reply.Bulk("index");
  reply.Integer(keys.first);
  reply.Bulk("find_keys");
  reply.Map(2);
  reply.Bulk("type");
  reply.Bulk("range");
  reply.Bulk("spec");
  reply.Map(3);
  reply.Bulk("lastkey");
  reply.Integer(keys.last < 0 ? keys.last : keys.last - keys.first);
  reply.Bulk("keystep");
  reply.Integer(keys.step);
  reply.Bulk("limit");
  reply.Integer(0);
}

// Valkey's "keynum" spec: the count at numkeys_index, then that many keys.
void ReplyKeynumKeySpec(ReplyBuilder& reply, const Command& command) {
  reply.Map(3);
  reply.Bulk("flags");
  reply.Set(1);
  reply.SimpleString("RO");
  reply.Bulk("begin_search");
  reply.Map(2);
  reply.Bulk("type");
  reply.Bulk("index");
  reply.Bulk("spec");
  reply.Map(1);
  reply.Bulk("index");
  reply.Integer(command.spec.keys.numkeys_index);
  reply.Bulk("find_keys");
  reply.Map(2);
  reply.Bulk("type");
  reply.Bulk("keynum");
  reply.Bulk("spec");
  reply.Map(3);
  reply.Bulk("keynumidx");
  reply.Integer(0);
  reply.Bulk("firstkey");
  reply.Integer(1);
  reply.Bulk("keystep");
  reply.Integer(1);
}

void ReplyKeySpecs(ReplyBuilder& reply, const Command& command) {
  const KeySpec& keys = command.spec.keys;
  const bool range = keys.first > 0;
  const bool keynum = keys.numkeys_index > 0;
  reply.Array((range ? 1 : 0) + (keynum ? 1 : 0));
  if (range) ReplyRangeKeySpec(reply, command);
  if (keynum) ReplyKeynumKeySpec(reply, command);
}

void ReplyCommandInfo(ReplyBuilder& reply, const Command& command) {
  const CommandSpec& spec = command.spec;
  reply.Array(10);
  reply.Bulk(command.full_name);
  reply.Integer(spec.arity);
  const auto flags = FlagNames(spec.flags);
  reply.Set(flags.size());
  for (std::string_view flag : flags) reply.SimpleString(flag);
  reply.Integer(spec.keys.first);
  reply.Integer(spec.keys.last);
  reply.Integer(spec.keys.step);
  const auto categories = AclCategoryNames(spec.acl);
  reply.Set(categories.size());
  for (std::string_view category : categories) reply.SimpleString(category);
  reply.Set(0);  // tips
  ReplyKeySpecs(reply, command);
  std::vector<const Command*> subs;
  for (const auto& [name, sub] : command.subcommands) subs.push_back(sub.get());
  std::sort(subs.begin(), subs.end(),
            [](const Command* a, const Command* b) { return a->full_name < b->full_name; });
  reply.Array(subs.size());
  for (const Command* sub : subs) ReplyCommandInfo(reply, *sub);
}

void ReplyCommandDocs(ReplyBuilder& reply, const Command& command) {
  const CommandSpec& spec = command.spec;
  const bool has_complexity = !spec.complexity.empty();
  const bool has_subs = command.has_subcommands();
  reply.Map(3 + (has_complexity ? 1 : 0) + (has_subs ? 1 : 0));
  reply.Bulk("summary");
  reply.Bulk(spec.summary);
  reply.Bulk("since");
  reply.Bulk(spec.since);
  reply.Bulk("group");
  reply.Bulk(spec.group);
  if (has_complexity) {
    reply.Bulk("complexity");
    reply.Bulk(spec.complexity);
  }
  if (has_subs) {
    std::vector<const Command*> subs;
    for (const auto& [name, sub] : command.subcommands) subs.push_back(sub.get());
    std::sort(subs.begin(), subs.end(),
              [](const Command* a, const Command* b) { return a->full_name < b->full_name; });
    reply.Bulk("subcommands");
    reply.Map(subs.size());
    for (const Command* sub : subs) {
      reply.Bulk(sub->full_name);
      ReplyCommandDocs(reply, *sub);
    }
  }
}

void CmdCommand(CommandContext& ctx, ArgList /*args*/) {
  const auto all = ctx.server.registry().All();
  ctx.reply.Array(all.size());
  for (const Command* command : all) ReplyCommandInfo(ctx.reply, *command);
}

void CmdCommandCount(CommandContext& ctx, ArgList /*args*/) {
  ctx.reply.Integer(static_cast<int64_t>(ctx.server.registry().size()));
}

// Finds "name" or "container|sub" for COMMAND INFO/DOCS.
const Command* FindByFullName(const CommandRegistry& registry, std::string_view name) {
  const size_t bar = name.find('|');
  if (bar == std::string_view::npos) {
    return registry.Find(name);
  }
  const Command* parent = registry.Find(name.substr(0, bar));
  return parent == nullptr ? nullptr : registry.FindSubcommand(*parent, name.substr(bar + 1));
}

void CmdCommandInfo(CommandContext& ctx, ArgList args) {
  if (args.size() == 2) {
    CmdCommand(ctx, args);
    return;
  }
  ctx.reply.Array(args.size() - 2);
  for (size_t i = 2; i < args.size(); ++i) {
    const Command* command = FindByFullName(ctx.server.registry(), args[i]);
    if (command == nullptr) {
      ctx.reply.NullArray();
    } else {
      ReplyCommandInfo(ctx.reply, *command);
    }
  }
}

void CmdCommandDocs(CommandContext& ctx, ArgList args) {
  std::vector<const Command*> commands;
  if (args.size() == 2) {
    commands = ctx.server.registry().All();
  } else {
    for (size_t i = 2; i < args.size(); ++i) {
      if (const Command* c = FindByFullName(ctx.server.registry(), args[i])) commands.push_back(c);
    }
  }
  ctx.reply.Map(commands.size());
  for (const Command* command : commands) {
    ctx.reply.Bulk(command->full_name);
    ReplyCommandDocs(ctx.reply, *command);
  }
}

void CmdCommandList(CommandContext& ctx, ArgList args) {
  std::string_view pattern, category;
  if (args.size() == 5 && EqualsIgnoreCase(args[2], "filterby")) {
    if (EqualsIgnoreCase(args[3], "pattern")) {
      pattern = args[4];
    } else if (EqualsIgnoreCase(args[3], "aclcat")) {
      category = args[4];
    } else if (!EqualsIgnoreCase(args[3], "module")) {
      ctx.reply.Error(errors::kSyntax);
      return;
    }
  } else if (args.size() != 2) {
    ctx.reply.Error(errors::kSyntax);
    return;
  }
  std::vector<std::string> names;
  const bool module_filter = args.size() == 5 && EqualsIgnoreCase(args[3], "module");
  for (const Command* command : ctx.server.registry().AllWithSubcommands()) {
    if (module_filter) break;  // no modules
    if (!pattern.empty() && !GlobMatch(pattern, command->full_name, true)) continue;
    if (!category.empty()) {
      const auto cats = AclCategoryNames(command->spec.acl);
      const bool found = std::any_of(cats.begin(), cats.end(), [&](std::string_view c) {
        return EqualsIgnoreCase(c.substr(1), category);
      });
      if (!found) continue;
    }
    names.push_back(command->full_name);
  }
  ctx.reply.Array(names.size());
  for (const std::string& name : names) ctx.reply.Bulk(name);
}

// The command COMMAND GETKEYS / GETKEYSANDFLAGS name and the positions of its keys, or nullptr
// after replying with Valkey's error.
const Command* FindKeys(CommandContext& ctx, ArgList target, std::vector<size_t>* positions) {
  const Command* command = ctx.server.registry().Find(target[0]);
  if (command == nullptr) {
    ctx.reply.Error("ERR Invalid command specified");
    return nullptr;
  }
  if (command->has_subcommands() && target.size() >= 2) {
    if (const Command* sub = ctx.server.registry().FindSubcommand(*command, target[1])) {
      command = sub;
    }
  }
  if (!command->ArityOk(target.size())) {
    ctx.reply.Error("ERR Invalid number of arguments specified for command");
    return nullptr;
  }
  std::optional<std::vector<size_t>> found = KeyPositions(*command, target);
  if (!found.has_value()) {
    ctx.reply.Error("ERR Invalid arguments specified for command");
    return nullptr;
  }
  if (found->empty()) {
    ctx.reply.Error("ERR The command has no key arguments");
    return nullptr;
  }
  *positions = std::move(*found);
  return command;
}

void CmdCommandGetKeys(CommandContext& ctx, ArgList args) {
  const ArgList target = args.subspan(2);
  std::vector<size_t> positions;
  if (FindKeys(ctx, target, &positions) == nullptr) return;
  ctx.reply.Array(positions.size());
  for (size_t position : positions) ctx.reply.Bulk(target[position]);
}

// Each key with the flags of its key spec as COMMAND INFO shows them here (RW or RO).
void CmdCommandGetKeysAndFlags(CommandContext& ctx, ArgList args) {
  const ArgList target = args.subspan(2);
  std::vector<size_t> positions;
  const Command* command = FindKeys(ctx, target, &positions);
  if (command == nullptr) return;
  ctx.reply.Array(positions.size());
  for (size_t position : positions) {
    ctx.reply.Array(2);
    ctx.reply.Bulk(target[position]);
    ctx.reply.Array(1);
    ctx.reply.SimpleString((command->spec.flags & kWrite) ? "RW" : "RO");
  }
}

void CmdCommandHelp(CommandContext& ctx, ArgList /*args*/) {
  ReplyHelp(ctx, {"COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                  "(no subcommand)", "    Return details about all commands.", "COUNT",
                  "    Return the total number of commands in this server.",
                  "LIST [FILTERBY (MODULE <module-name>|ACLCAT <category>|PATTERN <pattern>)]",
                  "    Return a list of all commands in this server.", "INFO [<command-name> ...]",
                  "    Return details about the given commands.", "DOCS [<command-name> ...]",
                  "    Return documentation details about commands.", "GETKEYS <full-command>",
                  "    Return the keys from a full command.", "GETKEYSANDFLAGS <full-command>",
                  "    Return the keys and the access flags from a full command.", "HELP",
                  "    Print this help."});
}

}  // namespace

void RegisterServerFamily(CommandRegistry& registry) {
  // clang-format off
  constexpr uint32_t kAdminAcl = kAclAdmin | kAclSlow | kAclDangerous;
  registry.Add({.name = "info", .arity = -1, .flags = kLoading | kStale, .acl = kAclSlow | kAclDangerous,
                .handler = &CmdInfo, .group = "server", .summary = "Returns information and statistics about the server.", .since = "1.0.0"});
  registry.Add({.name = "dbsize", .arity = 1, .flags = kReadOnly | kFast, .acl = kAclKeyspace | kAclRead | kAclFast,
                .handler = &CmdDbSize, .group = "server", .summary = "Returns the number of keys in the database.", .since = "1.0.0", .complexity = "O(1)"});
  registry.Add({.name = "flushdb", .arity = -1, .flags = kWrite, .acl = kAclKeyspace | kAclWrite | kAclSlow | kAclDangerous,
                .handler = &CmdFlushDb, .group = "server", .summary = "Removes all keys from the current database.", .since = "1.0.0"});
  registry.Add({.name = "flushall", .arity = -1, .flags = kWrite, .acl = kAclKeyspace | kAclWrite | kAclSlow | kAclDangerous,
                .handler = &CmdFlushAll, .group = "server", .summary = "Removes all keys from all databases.", .since = "1.0.0"});
  registry.Add({.name = "lolwut", .arity = -1, .flags = kReadOnly | kFast, .acl = kAclFast, .handler = &CmdLolwut,
                .group = "server", .summary = "Displays computer art and the Valkey version", .since = "5.0.0"});
  registry.Add({.name = "time", .arity = 1, .flags = kLoading | kStale | kFast, .acl = kAclFast,
                .handler = &CmdTime, .group = "server", .summary = "Returns the server time.", .since = "2.6.0", .complexity = "O(1)"});
  registry.Add({.name = "shutdown", .arity = -1, .flags = kAdmin | kNoScript | kLoading | kStale | kNoMulti | kAllowBusy,
                .acl = kAdminAcl, .handler = &CmdShutdown, .group = "server", .summary = "Synchronously saves the database(s) to disk and shuts down the server.", .since = "1.0.0"});
  constexpr uint32_t kCfg = kAdmin | kNoScript | kLoading | kStale;
  registry.Add({.name = "config", .arity = -2, .acl = kAclSlow, .group = "server", .summary = "A container for server configuration commands.", .since = "2.0.0",
                .subcommands = {
      {.name = "get", .arity = -3, .flags = kCfg, .acl = kAdminAcl, .handler = &CmdConfigGet, .group = "server", .summary = "Returns the effective values of configuration parameters.", .since = "2.0.0"},
      {.name = "set", .arity = -4, .flags = kCfg | kMayReplicate, .acl = kAdminAcl, .handler = &CmdConfigSet, .group = "server", .summary = "Sets configuration parameters in-flight.", .since = "2.0.0"},
      {.name = "rewrite", .arity = 2, .flags = kCfg, .acl = kAdminAcl, .handler = &CmdConfigRewrite, .group = "server", .summary = "Persists the effective configuration to file.", .since = "2.8.0"},
      {.name = "resetstat", .arity = 2, .flags = kCfg, .acl = kAdminAcl, .handler = &CmdConfigResetStat, .group = "server", .summary = "Resets the server's statistics.", .since = "2.0.0"},
      {.name = "help", .arity = 2, .flags = kLoading | kStale, .acl = kAclSlow, .handler = &CmdConfigHelp, .group = "server", .summary = "Returns helpful text about the different subcommands.", .since = "5.0.0"},
  }});
  constexpr uint32_t kCmd = kLoading | kStale;
  registry.Add({.name = "command", .arity = -1, .flags = kCmd, .acl = kAclConnection | kAclSlow, .handler = &CmdCommand,
                .group = "server", .summary = "Returns detailed information about all commands.", .since = "2.8.13",
                .subcommands = {
      {.name = "count", .arity = 2, .flags = kCmd, .acl = kAclConnection | kAclSlow, .handler = &CmdCommandCount, .group = "server", .summary = "Returns a count of commands.", .since = "2.8.13"},
      {.name = "info", .arity = -2, .flags = kCmd, .acl = kAclConnection | kAclSlow, .handler = &CmdCommandInfo, .group = "server", .summary = "Returns information about one, multiple or all commands.", .since = "2.8.13"},
      {.name = "docs", .arity = -2, .flags = kCmd, .acl = kAclConnection | kAclSlow, .handler = &CmdCommandDocs, .group = "server", .summary = "Returns documentary information about one, multiple or all commands.", .since = "7.0.0"},
      {.name = "list", .arity = -2, .flags = kCmd, .acl = kAclConnection | kAclSlow, .handler = &CmdCommandList, .group = "server", .summary = "Returns a list of command names.", .since = "7.0.0"},
      {.name = "getkeys", .arity = -3, .flags = kCmd, .acl = kAclConnection | kAclSlow, .handler = &CmdCommandGetKeys, .group = "server", .summary = "Extracts the key names from an arbitrary command.", .since = "2.8.13"},
      {.name = "getkeysandflags", .arity = -3, .flags = kCmd, .acl = kAclConnection | kAclSlow, .handler = &CmdCommandGetKeysAndFlags, .group = "server", .summary = "Extracts the key names and access flags for an arbitrary command.", .since = "7.0.0"},
      {.name = "help", .arity = 2, .flags = kCmd, .acl = kAclConnection | kAclSlow, .handler = &CmdCommandHelp, .group = "server", .summary = "Returns helpful text about the different subcommands.", .since = "5.0.0"},
  }});
  // clang-format on
}

}  // namespace lattice::server
