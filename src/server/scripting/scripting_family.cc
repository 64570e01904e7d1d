// Scripting commands: EVAL, EVALSHA, EVAL_RO, EVALSHA_RO and SCRIPT LOAD/EXISTS/FLUSH/KILL/HELP.
// The work is the ScriptEngine's (server/scripting/script_engine.h); these parse and reply.

#include "server/scripting/script_engine.h"
#include "server/server.h"

namespace lattice::server {
namespace {

void CmdEval(CommandContext& ctx, ArgList args) {
  ctx.server.scripting().Eval(ctx, args, false, false);
}
void CmdEvalSha(CommandContext& ctx, ArgList args) {
  ctx.server.scripting().Eval(ctx, args, true, false);
}
void CmdEvalRo(CommandContext& ctx, ArgList args) {
  ctx.server.scripting().Eval(ctx, args, false, true);
}
void CmdEvalShaRo(CommandContext& ctx, ArgList args) {
  ctx.server.scripting().Eval(ctx, args, true, true);
}

void CmdScriptLoad(CommandContext& ctx, ArgList args) {
  Result<std::string> sha = ctx.server.scripting().Load(args[2]);
  if (!sha.ok()) {
    ctx.reply.Error(sha.error().message);
    return;
  }
  ctx.reply.Bulk(*sha);
}

void CmdScriptExists(CommandContext& ctx, ArgList args) {
  ctx.reply.Array(args.size() - 2);
  for (size_t i = 2; i < args.size(); ++i) {
    ctx.reply.Integer(ctx.server.scripting().Exists(args[i]) ? 1 : 0);
  }
}

void CmdScriptFlush(CommandContext& ctx, ArgList args) {
  if (args.size() > 3 || (args.size() == 3 && !EqualsIgnoreCase(args[2], "sync") &&
                          !EqualsIgnoreCase(args[2], "async"))) {
    ctx.reply.Error("ERR SCRIPT FLUSH only support SYNC|ASYNC option");
    return;
  }
  ctx.server.scripting().Flush();
  ctx.reply.Ok();
}

void CmdScriptKill(CommandContext& ctx, ArgList /*args*/) {
  ctx.server.scripting().Kill(ctx.reply);
}

void CmdScriptHelp(CommandContext& ctx, ArgList /*args*/) {
  ReplyHelp(
      ctx,
      {
          "SCRIPT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
          "EXISTS <sha1> [<sha1> ...]",
          "    Return information about the existence of the scripts in the script cache.",
          "FLUSH [ASYNC|SYNC]",
          "    Flush the Lua scripts cache. Very dangerous on replicas.",
          "    When called without the optional mode argument, the behavior is determined by the",
          "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
          "    * ASYNC: Asynchronously flush the scripts cache.",
          "    * SYNC: Synchronously flush the scripts cache.",
          "KILL",
          "    Kill the currently executing Lua script.",
          "LOAD <script>",
          "    Load a script into the scripts cache without executing it.",
          "HELP",
          "    Print this help.",
      });
}

}  // namespace

void RegisterScriptingFamily(CommandRegistry& registry) {
  // clang-format off
  constexpr uint32_t kEvalFlags = kNoScript | kSkipMonitor | kMayReplicate | kStale | kMovableKeys;
  constexpr uint32_t kEvalRoFlags = kNoScript | kSkipMonitor | kReadOnly | kStale | kMovableKeys;
  constexpr KeySpec kEvalKeys = {.numkeys_index = 2};
  constexpr uint32_t kAcl = kAclSlow | kAclScripting;
  registry.Add({.name = "eval", .arity = -3, .flags = kEvalFlags, .keys = kEvalKeys, .acl = kAcl, .handler = &CmdEval,
                .group = "scripting", .summary = "Executes a server-side Lua script.", .since = "2.6.0", .complexity = "Depends on the script that is executed."});
  registry.Add({.name = "evalsha", .arity = -3, .flags = kEvalFlags, .keys = kEvalKeys, .acl = kAcl, .handler = &CmdEvalSha,
                .group = "scripting", .summary = "Executes a server-side Lua script by SHA1 digest.", .since = "2.6.0", .complexity = "Depends on the script that is executed."});
  registry.Add({.name = "eval_ro", .arity = -3, .flags = kEvalRoFlags, .keys = kEvalKeys, .acl = kAcl, .handler = &CmdEvalRo,
                .group = "scripting", .summary = "Executes a read-only server-side Lua script.", .since = "7.0.0", .complexity = "Depends on the script that is executed."});
  registry.Add({.name = "evalsha_ro", .arity = -3, .flags = kEvalRoFlags, .keys = kEvalKeys, .acl = kAcl, .handler = &CmdEvalShaRo,
                .group = "scripting", .summary = "Executes a read-only server-side Lua script by SHA1 digest.", .since = "7.0.0", .complexity = "Depends on the script that is executed."});
  registry.Add({.name = "script", .arity = -2, .acl = kAclSlow, .group = "scripting", .summary = "A container for Lua scripts management commands.", .since = "2.6.0",
                .subcommands = {
      {.name = "load", .arity = 3, .flags = kNoScript | kStale, .acl = kAcl, .handler = &CmdScriptLoad, .group = "scripting",
       .summary = "Loads a server-side Lua script to the script cache.", .since = "2.6.0", .complexity = "O(N) with N being the length in bytes of the script body."},
      {.name = "exists", .arity = -3, .flags = kNoScript | kStale, .acl = kAcl, .handler = &CmdScriptExists, .group = "scripting",
       .summary = "Determines whether server-side Lua scripts exist in the script cache.", .since = "2.6.0", .complexity = "O(N) with N being the number of scripts to check."},
      {.name = "flush", .arity = -2, .flags = kNoScript | kStale, .acl = kAcl, .handler = &CmdScriptFlush, .group = "scripting",
       .summary = "Removes all server-side Lua scripts from the script cache.", .since = "2.6.0", .complexity = "O(N) with N being the number of scripts in cache"},
      {.name = "kill", .arity = 2, .flags = kNoScript | kAllowBusy, .acl = kAcl, .handler = &CmdScriptKill, .group = "scripting",
       .summary = "Terminates a server-side Lua script during execution.", .since = "2.6.0", .complexity = "O(1)"},
      {.name = "help", .arity = 2, .flags = kLoading | kStale, .acl = kAclSlow, .handler = &CmdScriptHelp, .group = "scripting",
       .summary = "Returns helpful text about the different subcommands.", .since = "5.0.0", .complexity = "O(1)"},
  }});
  // clang-format on
}

}  // namespace lattice::server
