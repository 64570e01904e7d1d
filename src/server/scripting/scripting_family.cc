// Scripting commands: EVAL, EVALSHA, EVAL_RO, EVALSHA_RO, SCRIPT LOAD/EXISTS/FLUSH/KILL/HELP,
// FCALL, FCALL_RO and FUNCTION LOAD/LIST/DELETE/FLUSH/DUMP/RESTORE/STATS/KILL/HELP. The work is
// the ScriptEngine's (server/scripting/script_engine.h); these parse and reply.

#include "server/scripting/script_engine.h"
#include "server/server.h"
#include "util/ascii.h"
#include "util/glob.h"

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

void CmdFcall(CommandContext& ctx, ArgList args) { ctx.server.scripting().FCall(ctx, args, false); }
void CmdFcallRo(CommandContext& ctx, ArgList args) {
  ctx.server.scripting().FCall(ctx, args, true);
}

void SubcommandSyntaxError(CommandContext& ctx, ArgList args) {
  ctx.reply.Error("ERR unknown subcommand or wrong number of arguments for '" +
                  std::string(args[1]) + "'. Try FUNCTION HELP.");
}

void CmdFunctionLoad(CommandContext& ctx, ArgList args) {
  bool replace = false;
  for (size_t i = 2; i + 1 < args.size(); ++i) {
    if (!EqualsIgnoreCase(args[i], "replace")) {
      ctx.reply.Error("ERR Unknown option given: " + std::string(args[i]));
      return;
    }
    replace = true;
  }
  Result<std::string> name = ctx.server.scripting().LoadLibrary(args.back(), replace, ctx.now_ms);
  if (!name.ok()) {
    ctx.reply.Error(name.error().message);
    return;
  }
  ctx.reply.Bulk(*name);
}

void CmdFunctionList(CommandContext& ctx, ArgList args) {
  bool with_code = false;
  std::optional<std::string_view> pattern;
  for (size_t i = 2; i < args.size(); ++i) {
    if (!with_code && EqualsIgnoreCase(args[i], "withcode")) {
      with_code = true;
    } else if (!pattern && EqualsIgnoreCase(args[i], "libraryname")) {
      if (i + 1 >= args.size()) {
        ctx.reply.Error("ERR library name argument was not given");
        return;
      }
      pattern = args[++i];
    } else {
      ctx.reply.Error("ERR Unknown argument " + std::string(args[i]));
      return;
    }
  }
  ScriptEngine& engine = ctx.server.scripting();
  std::vector<const FunctionLibrary*> listed;
  for (const auto& [name, library] : engine.libraries()) {
    if (!pattern || GlobMatch(*pattern, name, /*nocase=*/true)) listed.push_back(&library);
  }
  ctx.reply.Array(listed.size());
  for (const FunctionLibrary* library : listed) {
    ctx.reply.Map(with_code ? 4 : 3);
    ctx.reply.Bulk("library_name");
    ctx.reply.Bulk(library->name);
    ctx.reply.Bulk("engine");
    ctx.reply.Bulk("LUA");
    ctx.reply.Bulk("functions");
    ctx.reply.Array(library->functions.size());
    for (const std::string& name : library->functions) {
      const FunctionInfo& info = *engine.FindFunction(name);
      ctx.reply.Map(3);
      ctx.reply.Bulk("name");
      ctx.reply.Bulk(info.name);
      ctx.reply.Bulk("description");
      if (info.description) {
        ctx.reply.Bulk(*info.description);
      } else {
        ctx.reply.Null();
      }
      ctx.reply.Bulk("flags");
      WriteFunctionFlags(ctx.reply, info.flags);
    }
    if (with_code) {
      ctx.reply.Bulk("library_code");
      ctx.reply.Bulk(library->code);
    }
  }
}

void CmdFunctionDelete(CommandContext& ctx, ArgList args) {
  if (!ctx.server.scripting().DeleteLibrary(std::string(args[2]), ctx.now_ms)) {
    ctx.reply.Error("ERR Library not found");
    return;
  }
  ctx.reply.Ok();
}

void CmdFunctionFlush(CommandContext& ctx, ArgList args) {
  if (args.size() > 3) {
    SubcommandSyntaxError(ctx, args);
    return;
  }
  if (args.size() == 3 && !EqualsIgnoreCase(args[2], "sync") &&
      !EqualsIgnoreCase(args[2], "async")) {
    ctx.reply.Error("ERR FUNCTION FLUSH only supports SYNC|ASYNC option");
    return;
  }
  ctx.server.scripting().FlushLibraries(ctx.now_ms);
  ctx.reply.Ok();
}

void CmdFunctionDump(CommandContext& ctx, ArgList /*args*/) {
  ctx.reply.Bulk(ctx.server.scripting().DumpLibraries());
}

void CmdFunctionRestore(CommandContext& ctx, ArgList args) {
  if (args.size() > 4) {
    SubcommandSyntaxError(ctx, args);
    return;
  }
  RestorePolicy policy = RestorePolicy::kAppend;
  if (args.size() == 4) {
    if (EqualsIgnoreCase(args[3], "append")) {
      policy = RestorePolicy::kAppend;
    } else if (EqualsIgnoreCase(args[3], "replace")) {
      policy = RestorePolicy::kReplace;
    } else if (EqualsIgnoreCase(args[3], "flush")) {
      policy = RestorePolicy::kFlush;
    } else {
      ctx.reply.Error(
          "ERR Wrong restore policy given, value should be either FLUSH, APPEND or REPLACE.");
      return;
    }
  }
  Result<void> restored = ctx.server.scripting().RestoreLibraries(args[2], policy, ctx.now_ms);
  if (!restored.ok()) {
    ctx.reply.Error(restored.error().message);
    return;
  }
  ctx.reply.Ok();
}

void CmdFunctionStats(CommandContext& ctx, ArgList /*args*/) {
  ctx.server.scripting().FunctionStats(ctx.reply);
}

void CmdFunctionKill(CommandContext& ctx, ArgList /*args*/) {
  ctx.server.scripting().Kill(ctx.reply, /*function=*/true);
}

void CmdFunctionHelp(CommandContext& ctx, ArgList /*args*/) {
  ReplyHelp(
      ctx,
      {
          "FUNCTION <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
          "LOAD [REPLACE] <FUNCTION CODE>",
          "    Create a new library with the given library name and code.",
          "DELETE <LIBRARY NAME>",
          "    Delete the given library.",
          "LIST [LIBRARYNAME PATTERN] [WITHCODE]",
          "    Return general information on all the libraries:",
          "    * Library name",
          "    * The engine used to run the Library",
          "    * Functions list",
          "    * Library code (if WITHCODE is given)",
          "    It also possible to get only function that matches a pattern using LIBRARYNAME "
          "argument.",
          "STATS",
          "    Return information about the current function running:",
          "    * Function name",
          "    * Command used to run the function",
          "    * Duration in MS that the function is running",
          "    If no function is running, return nil",
          "    In addition, returns a list of available engines.",
          "KILL",
          "    Kill the current running function.",
          "FLUSH [ASYNC|SYNC]",
          "    Delete all the libraries.",
          "    When called without the optional mode argument, the behavior is determined by the",
          "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
          "    * ASYNC: Asynchronously flush the libraries.",
          "    * SYNC: Synchronously flush the libraries.",
          "DUMP",
          "    Return a serialized payload representing the current libraries, can be restored "
          "using FUNCTION RESTORE command",
          "RESTORE <PAYLOAD> [FLUSH|APPEND|REPLACE]",
          "    Restore the libraries represented by the given payload, it is possible to give a "
          "restore policy to",
          "    control how to handle existing libraries (default APPEND):",
          "    * FLUSH: delete all existing libraries.",
          "    * APPEND: appends the restored libraries to the existing libraries. On collision, "
          "abort.",
          "    * REPLACE: appends the restored libraries to the existing libraries, On collision, "
          "replace the old",
          "      libraries with the new libraries (notice that even on this option there is a "
          "chance of failure",
          "      in case of functions name collision with another library).",
          "HELP",
          "    Print this help.",
      });
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
  constexpr uint32_t kFcallFlags = kNoScript | kSkipMonitor | kMayReplicate | kStale | kMovableKeys;
  constexpr uint32_t kFcallRoFlags = kNoScript | kSkipMonitor | kReadOnly | kStale | kMovableKeys;
  registry.Add({.name = "fcall", .arity = -3, .flags = kFcallFlags, .keys = kEvalKeys, .acl = kAcl, .handler = &CmdFcall,
                .group = "scripting", .summary = "Invokes a function.", .since = "7.0.0", .complexity = "Depends on the function that is executed."});
  registry.Add({.name = "fcall_ro", .arity = -3, .flags = kFcallRoFlags, .keys = kEvalKeys, .acl = kAcl, .handler = &CmdFcallRo,
                .group = "scripting", .summary = "Invokes a read-only function.", .since = "7.0.0", .complexity = "Depends on the function that is executed."});
  constexpr uint32_t kFunctionWrite = kWrite | kDenyOom | kNoScript;
  registry.Add({.name = "function", .arity = -2, .acl = kAclSlow, .group = "scripting", .summary = "A container for function commands.", .since = "7.0.0",
                .subcommands = {
      {.name = "load", .arity = -3, .flags = kFunctionWrite, .acl = kAcl, .handler = &CmdFunctionLoad, .group = "scripting",
       .summary = "Creates a library.", .since = "7.0.0", .complexity = "O(1) (considering compilation time is redundant)"},
      {.name = "list", .arity = -2, .flags = kNoScript, .acl = kAcl, .handler = &CmdFunctionList, .group = "scripting",
       .summary = "Returns information about all libraries.", .since = "7.0.0", .complexity = "O(N) where N is the number of functions"},
      {.name = "delete", .arity = 3, .flags = kWrite | kNoScript, .acl = kAcl, .handler = &CmdFunctionDelete, .group = "scripting",
       .summary = "Deletes a library and its functions.", .since = "7.0.0", .complexity = "O(1)"},
      {.name = "flush", .arity = -2, .flags = kWrite | kNoScript, .acl = kAcl, .handler = &CmdFunctionFlush, .group = "scripting",
       .summary = "Deletes all libraries and functions.", .since = "7.0.0", .complexity = "O(N) where N is the number of functions deleted"},
      {.name = "dump", .arity = 2, .flags = kNoScript, .acl = kAcl, .handler = &CmdFunctionDump, .group = "scripting",
       .summary = "Dumps all libraries into a serialized binary payload.", .since = "7.0.0", .complexity = "O(N) where N is the number of functions"},
      {.name = "restore", .arity = -3, .flags = kFunctionWrite, .acl = kAcl, .handler = &CmdFunctionRestore, .group = "scripting",
       .summary = "Restores all libraries from a payload.", .since = "7.0.0", .complexity = "O(N) where N is the number of functions on the payload"},
      {.name = "stats", .arity = 2, .flags = kNoScript | kAllowBusy, .acl = kAcl, .handler = &CmdFunctionStats, .group = "scripting",
       .summary = "Returns information about a function during execution.", .since = "7.0.0", .complexity = "O(1)"},
      {.name = "kill", .arity = 2, .flags = kNoScript | kAllowBusy, .acl = kAcl, .handler = &CmdFunctionKill, .group = "scripting",
       .summary = "Terminates a function during execution.", .since = "7.0.0", .complexity = "O(1)"},
      {.name = "help", .arity = 2, .flags = kLoading | kStale, .acl = kAclSlow, .handler = &CmdFunctionHelp, .group = "scripting",
       .summary = "Returns helpful text about the different subcommands.", .since = "7.0.0", .complexity = "O(1)"},
  }});
  // clang-format on
}

}  // namespace lattice::server
